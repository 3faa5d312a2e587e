"""Local lm-eval tasks shipped with a2dkit (``a2dkit_synthetic``, ``a2dkit_synthetic_mc``).

Pass ``TASKS_DIR`` as lm-eval's ``include_path`` (``python -m a2dkit.eval`` adds it) or use
``task_manager()``. References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from a2dkit.data.synthetic import make_synthetic_dataset

__all__ = ["TASKS_DIR", "task_manager", "synthetic_task_rows"]

TASKS_DIR = Path(__file__).parent


def task_manager(**kwargs: Any):
    """An lm-eval ``TaskManager`` that also knows a2dkit's local tasks (``a2dkit_synthetic``...).

    Args:
        kwargs: passed to ``lm_eval.tasks.TaskManager`` (e.g. ``include_defaults=False``).
    """
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=str(TASKS_DIR), **kwargs)


def synthetic_task_rows(num_rows: int = 100, seed: int = 0, num_choices: int = 4) -> list[dict]:
    """The rows of the ``a2dkit_synthetic`` tasks (the shipped ``test.jsonl`` is exactly these).

    Prompts are drawn after the first 2000 rows of ``make_synthetic_dataset(seed=seed)``, so they
    never appear in an SFT train split of <= 2000 rows with the same seed (prompts are unique).
    Distractors are answers of other train rows of the same task, never a prefix of the answer.

    Args:
        num_rows: number of test rows.
        seed: seed of the synthetic set and of the choice shuffling.
        num_choices: answer options of the multiple-choice variant (correct one included).

    Returns:
        dicts with ``prompt``, ``answer``, ``task``, ``choices`` (list[str]) and ``label`` (int).
    """
    import random

    data = make_synthetic_dataset(num_train=2000, num_test=num_rows, seed=seed)
    pool: dict[str, list[str]] = {}
    for row in data["train"]:
        pool.setdefault(row["task"], []).append(row["answer"])
    rng, rows = random.Random(seed), []
    for row in data["test"]:
        answer = row["answer"]
        others = sorted({a for a in pool[row["task"]] if not _prefix_related(a, answer)})
        choices = [answer, *rng.sample(others, num_choices - 1)]
        rng.shuffle(choices)
        prompt = row["messages"][0]["content"]
        rows.append(dict(prompt=prompt, answer=answer, task=row["task"], choices=choices,
                         label=choices.index(answer)))  # fmt: skip
    return rows


def _prefix_related(a: str, b: str) -> bool:
    return a.startswith(b) or b.startswith(a)
