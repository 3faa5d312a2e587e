"""GRPO datasets behind one ``--dataset NAME``: rows with a chat ``prompt`` and the columns their
rewards read. Offline: the kit's countdown and 4x4 sudoku puzzles (``a2dkit/countdown``,
``sudoku``) and synthetic tasks (``a2dkit/synthetic``); online: ``gsm8k`` (openai/gsm8k),
``countdown`` (Jiayi-Pan/Countdown-Tasks-3to4), ``math`` (ankner/math-500), ``code``
(KodCode/KodCode-Light-RL-10K). References: d1 arXiv 2504.12216 (prompts and rewards).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from datasets import Dataset

from a2dkit.data import puzzles
from a2dkit.data.puzzles import chat, countdown_prompt, kit_countdown, kit_sudoku
from a2dkit.data.synthetic import make_synthetic_dataset

__all__ = ["TASKS", "Task", "load_task"]

_FORMAT = ("xml_count", "soft_format", "strict_format")


def _kit_synthetic(split: str, n: int, seed: int, tasks: str = "first|last") -> Dataset:
    data = make_synthetic_dataset(num_train=n, num_test=n, seed=seed, tasks=tasks.split("|"))
    data = data[split]  # the SFT prompts, without the answer turn: as the SFT model saw them
    return data.map(lambda r: {"prompt": r["messages"][:-1]}, remove_columns=["messages"])


def _hub(path: str, split: str, n: int, seed: int, name: str | None = None):
    from datasets import load_dataset

    data = load_dataset(path, name, split=split).shuffle(seed=seed)
    return data.select(range(min(n, len(data))))


def gsm8k_row(row: dict) -> dict:
    return {"prompt": chat(row["question"]), "answer": row["answer"].split("####")[-1].strip()}


def math_row(row: dict) -> dict:
    q = row["problem"] + "\nPut the final answer in \\boxed{} inside the answer."
    return {"prompt": chat(q), "answer": row["answer"]}


def code_row(row: dict) -> dict:
    q = row["question"] + "\nWrite the solution as one ```python code block in the answer."
    return {"prompt": chat(q), "test": row["test"]}


def countdown_row(row: dict) -> dict:
    return {"prompt": countdown_prompt(row["nums"], row["target"]), "nums": row["nums"],
            "target": row["target"]}  # fmt: skip


def _online(path: str, to_row: Callable[[dict], dict], name: str | None = None, test="test"):
    def load(split: str, n: int, seed: int) -> Dataset:
        hub_split = test if split == "test" else "train"
        data = _hub(path, hub_split, n, seed, name)
        return data.map(to_row, remove_columns=data.column_names)

    return load


@dataclass(frozen=True)
class Task:
    """A dataset loader ``load(split, n, seed)`` and the names of its rewards (``REWARDS``)."""

    load: Callable[[str, int, int], Dataset]
    rewards: tuple[str, ...]
    offline: bool


TASKS: dict[str, Task] = {
    "a2dkit/countdown": Task(kit_countdown, ("countdown", *_FORMAT), True),
    "sudoku": Task(kit_sudoku, ("sudoku", *_FORMAT), True),
    "a2dkit/synthetic": Task(_kit_synthetic, ("exact_match",), True),
    "gsm8k": Task(_online("openai/gsm8k", gsm8k_row, "main"),
                  ("gsm8k_correctness", "integer", *_FORMAT), False),
    "countdown": Task(_online("Jiayi-Pan/Countdown-Tasks-3to4", countdown_row, test="train"),
                      ("countdown", *_FORMAT), False),
    "math": Task(_online("ankner/math-500", math_row), ("math_correctness", *_FORMAT), False),
    "code": Task(_online("KodCode/KodCode-Light-RL-10K", code_row, test="train"),
                 ("code", *_FORMAT), False),
}  # fmt: skip


def load_task(name: str, split: str = "train", n: int = 1000, seed: int = 0) -> Dataset:
    """Rows of ``--dataset name``; unknown names raise, listing the valid ones."""
    if name not in TASKS:
        raise ValueError(f"unknown dataset {name!r}; valid datasets: {sorted(TASKS)}")
    if split not in puzzles.SPLITS:
        raise ValueError(f"split={split!r} is not valid; choose one of {puzzles.SPLITS}")
    return TASKS[name].load(split, n, seed)
