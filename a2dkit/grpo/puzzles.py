"""Offline puzzle generators with held-out splits: countdown and 4x4 sudoku.

Each puzzle is assigned to "train" or "test" by a hash of its content, so the splits are disjoint
for every seed and size (a test puzzle can never be trained on). References: d1 arXiv 2504.12216
(countdown with 3 numbers, 4x4 sudoku); TinyZero's Countdown-Tasks-3to4 format.
"""

from __future__ import annotations

import hashlib
import itertools
import operator
import random

__all__ = ["SPLITS", "OPS", "split_of", "countdown_puzzles", "sudoku_puzzles", "solve_sudoku"]

SPLITS = ("train", "test")
TEST_FRACTION = 0.2
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul}  # countdown's combinations


def split_of(key: str) -> str:
    """"test" for a fixed ~20% of puzzle keys (by sha256), "train" for the rest."""
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
