"""SFT rows that teach d1's answer format on the kit's puzzles, before GRPO.

A reward is a signal only where completions differ in it: a model that never writes
``<answer>...</answer>`` (or, for sudoku, 16 digits) scores 0 on every sample and GRPO has nothing
to follow. d1 therefore fine-tunes before diffu-GRPO (arXiv 2504.12216, §3.3: SFT, then RL).
These rows are the GRPO prompts (``a2dkit.data.puzzles``) answered with a known solution in the
format the rewards parse: ``--dataset_args "a2dkit/sudoku[train:800,test:32]"`` (or
``a2dkit/countdown``) for the SFT entry points, disjoint from the GRPO test puzzles.
"""

from __future__ import annotations

from datasets import Dataset

from a2dkit.data import puzzles

__all__ = ["SFT_TASKS", "d1_completion", "gold_completion", "sft_rows"]

SFT_TASKS = ("a2dkit/countdown", "sudoku")


def d1_completion(reasoning: str, answer: str) -> str:
    """``<reasoning>\\n...\\n</reasoning>\\n<answer>\\n...\\n</answer>``: what d1's strict format
    reward matches (``a2dkit.grpo.rewards``)."""
    return f"<reasoning>\n{reasoning}\n</reasoning>\n<answer>\n{answer}\n</answer>"


def _countdown_steps(equation: str) -> str:
    """The left-to-right steps of a kit equation: ``(7 + 3) * 2`` -> ``7 + 3 = 10, 10 * 2 = 20``."""
    tokens = equation.replace("(", "").replace(")", "").split()
    steps, value = [], int(tokens[0])
    for op, n in zip(tokens[1::2], tokens[2::2], strict=True):
        result = puzzles.OPS[op](value, int(n))
        steps.append(f"{value} {op} {n} = {result}")
        value = result
    return ", ".join(steps)


def gold_completion(task: str, row: dict) -> str:
    """A correct answer to one row of ``load_task(task)`` in d1's format."""
    if task == "a2dkit/countdown":
        return d1_completion(_countdown_steps(row["equation"]), row["equation"])
    if task == "sudoku":
        grid = "\n".join(row["solution"][r * 4 : r * 4 + 4] for r in range(4))
        return d1_completion("Each row, column and box holds 1, 2, 3 and 4 once.", grid)
    raise ValueError(f"no gold answers for task {task!r}; valid: {SFT_TASKS}")


def sft_rows(task: str, split: str, n: int, seed: int = 0) -> Dataset:
    """``n`` chat rows (``messages``: the GRPO prompt, then the gold answer) of ``split``."""
    if task not in SFT_TASKS:
        raise ValueError(f"no gold answers for task {task!r}; valid: {SFT_TASKS}")
    rows = puzzles.load_puzzles(task, split, n, seed)  # checks split and n
    messages = [
        [*r["prompt"], {"role": "assistant", "content": gold_completion(task, r)}] for r in rows
    ]
    return Dataset.from_dict({"messages": messages})
