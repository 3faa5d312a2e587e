"""Offline puzzle generators with held-out splits: countdown and 4x4 sudoku, as GRPO prompts in
d1's reasoning format.

Each puzzle is assigned to "train" or "test" by a hash of its content, so the splits are disjoint
for every seed and size (a test puzzle can never be trained on). References: d1 arXiv 2504.12216
(countdown with 3 numbers, 4x4 sudoku); TinyZero's Countdown-Tasks-3to4 format.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import random

from datasets import Dataset

__all__ = ["SPLITS", "OPS", "SYSTEM_PROMPT", "split_of", "countdown_puzzles", "sudoku_puzzles",
           "solve_sudoku", "chat", "countdown_prompt", "sudoku_prompt", "kit_countdown",
           "kit_sudoku", "KIT_PUZZLES", "load_puzzles"]  # fmt: skip

SPLITS = ("train", "test")
TEST_FRACTION = 0.2
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}  # countdown's combinations


def split_of(key: str) -> str:
    """ "test" for a fixed ~20% of puzzle keys (by sha256), "train" for the rest."""
    h = int(hashlib.sha256(key.encode()).hexdigest()[:8], 16) / 16**8
    return "test" if h < TEST_FRACTION else "train"


def _check(split: str, n: int) -> None:
    if split not in SPLITS:
        raise ValueError(f"split={split!r} is not valid; choose one of {SPLITS}")
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise ValueError(f"n={n!r} must be a positive integer")


def _countdown_one(rng: random.Random, count: int, high: int) -> dict | None:
    """Numbers, a target reached by combining them left to right with + - * (exact ints), and
    that combination as an ``equation`` (``"(7 + 3) * 2"``: a known solution)."""
    nums = [rng.randint(1, high) for _ in range(count)]
    order = rng.sample(nums, count)
    value, equation = order[0], str(order[0])
    for n in order[1:]:
        op = rng.choice("+-*") if value * n <= 999 else "+"
        value = OPS[op](value, n)
        equation = f"({equation}) {op} {n}" if " " in equation else f"{equation} {op} {n}"
    if value <= 0:
        return None
    return {"nums": nums, "target": value, "equation": equation}


def countdown_puzzles(
    n: int, split: str = "train", seed: int = 0, count: int = 3, high: int = 20
) -> list[dict]:
    """``n`` distinct countdown puzzles ``{"nums", "target", "equation"}`` of ``split`` (each
    solvable: ``equation`` is one solution)."""
    _check(split, n)
    rng, seen, out = random.Random(seed), set(), []
    for _ in range(200 * n):
        p = _countdown_one(rng, count, high)
        key = f"{sorted(p['nums'])}->{p['target']}" if p else None
        if p and key not in seen and split_of("countdown" + key) == split:
            seen.add(key)
            out.append(p)
            if len(out) == n:
                return out
    raise ValueError(f"could only make {len(out)} distinct {split} puzzles; lower n={n}")


def _base_grid() -> list[list[int]]:
    return [[1, 2, 3, 4], [3, 4, 1, 2], [2, 1, 4, 3], [4, 3, 2, 1]]


def _shuffled_grid(rng: random.Random) -> list[list[int]]:
    """A random valid 4x4 grid: relabel digits, permute rows in bands, bands, then transpose."""
    digits = rng.sample(range(1, 5), 4)
    grid = [[digits[v - 1] for v in row] for row in _base_grid()]
    bands = rng.sample([[0, 1], [2, 3]], 2)
    rows = [r for band in bands for r in rng.sample(band, 2)]
    grid = [grid[r] for r in rows]
    return [list(c) for c in zip(*grid, strict=True)] if rng.random() < 0.5 else grid


def _ok(grid: list[int], k: int, v: int) -> bool:
    r, c = divmod(k, 4)
    box = [(r // 2 * 2 + i) * 4 + c // 2 * 2 + j for i in range(2) for j in range(2)]
    peers = [r * 4 + j for j in range(4)] + [i * 4 + c for i in range(4)] + box
    return all(grid[p] != v for p in peers if p != k)


def solve_sudoku(puzzle: str, limit: int = 2) -> list[str]:
    """Up to ``limit`` solutions of a 16-character 4x4 puzzle ("0" = empty), by backtracking."""
    grid, out = [int(c) for c in puzzle], []

    def go(k: int) -> None:
        if len(out) >= limit:
            return
        if k == 16:
            out.append("".join(map(str, grid)))
            return
        if grid[k]:
            return go(k + 1)
        for v in range(1, 5):
            if _ok(grid, k, v):
                grid[k] = v
                go(k + 1)
                grid[k] = 0

    go(0)
    return out


def sudoku_puzzles(n: int, split: str = "train", seed: int = 0, empty: int = 8) -> list[dict]:
    """``n`` distinct 4x4 puzzles ``{"puzzle", "solution"}`` with ``empty`` blanks and one
    solution each (16-character strings, row-major, "0" = empty)."""
    _check(split, n)
    if not 1 <= empty <= 12:
        raise ValueError(f"empty={empty} must lie in [1, 12] for a 4x4 sudoku")
    rng, seen, out = random.Random(seed), set(), []
    for _ in range(200 * n):
        solution = "".join(str(v) for v in itertools.chain(*_shuffled_grid(rng)))
        holes = set(rng.sample(range(16), empty))
        puzzle = "".join("0" if k in holes else ch for k, ch in enumerate(solution))
        if puzzle in seen or split_of("sudoku" + puzzle) != split:
            continue
        if solve_sudoku(puzzle) == [solution]:  # unique solution: the reward is well defined
            seen.add(puzzle)
            out.append({"puzzle": puzzle, "solution": solution})
            if len(out) == n:
                return out
    raise ValueError(f"could only make {len(out)} distinct {split} puzzles; lower n={n}")


# d1's reasoning format: the format rewards check for exactly these tags
SYSTEM_PROMPT = (
    "Respond in the following format:\n<reasoning>\n...\n</reasoning>\n<answer>\n...\n</answer>"
)


def chat(question: str, system: str | None = SYSTEM_PROMPT) -> list[dict]:
    turns = [{"role": "system", "content": system}] if system else []
    return turns + [{"role": "user", "content": question}]


def countdown_prompt(nums: list[int], target: int) -> list[dict]:
    q = (f"Using the numbers {list(nums)}, create an equation that equals {target}. You can use "
         "basic arithmetic operations (+, -, *, /) and each number exactly once. Put the equation "
         "alone in the answer, e.g. <answer>(1 + 2) * 3</answer>.")  # fmt: skip
    return chat(q)


def sudoku_prompt(puzzle: str) -> list[dict]:
    rows = "\n".join(puzzle[r * 4 : r * 4 + 4] for r in range(4))
    q = (f"Solve this 4x4 sudoku (0 = empty; every row, column and 2x2 box holds 1-4):\n{rows}\n"
         "Give the full grid as 16 digits in the answer.")  # fmt: skip
    return chat(q)


def kit_countdown(split: str, n: int, seed: int) -> Dataset:
    rows = countdown_puzzles(n, split, seed)
    prompts = [countdown_prompt(r["nums"], r["target"]) for r in rows]
    return Dataset.from_list([{**r, "prompt": p} for r, p in zip(rows, prompts, strict=True)])


def kit_sudoku(split: str, n: int, seed: int) -> Dataset:
    rows = sudoku_puzzles(n, split, seed)
    return Dataset.from_list([{**r, "prompt": sudoku_prompt(r["puzzle"])} for r in rows])


# the kit's offline puzzle sets by their --dataset name (a2dkit.grpo.tasks.TASKS)
KIT_PUZZLES = {"a2dkit/countdown": kit_countdown, "sudoku": kit_sudoku}


def load_puzzles(task: str, split: str, n: int, seed: int = 0) -> Dataset:
    """``n`` prompt rows of one of ``KIT_PUZZLES`` from ``split``."""
    if task not in KIT_PUZZLES:
        raise ValueError(f"unknown puzzle set {task!r}; valid: {sorted(KIT_PUZZLES)}")
    _check(split, n)
    return KIT_PUZZLES[task](split, n, seed)
