"""Offline stand-in for alpaca: tiny chat-format instruction tasks a small model learns on CPU.

Tasks (user prompt -> exact assistant answer): add ("Add 23 and 58." -> "81"), copy, reverse, sort,
and the one-digit lookups first and last (a tiny model learns them in seconds: smoke SFT uses them).
Their held-out split is scored by ``a2dkit.eval.exact_match``.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (SFT data stays the AR chat format).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence

from datasets import Dataset, DatasetDict

__all__ = [
    "TASKS",
    "DEFAULT_TASKS",
    "WORDS",
    "STOP_STRINGS",
    "make_synthetic_dataset",
]

# Short, common words: each is one or two BPE tokens in any real tokenizer.
WORDS = (
    "red blue green black white cat dog bird fish cow sun moon star rain snow tree leaf rock "
    "sea sky one two three four five big small hot cold fast slow up down left right"
).split()
# Generation stops here (ChatML end of turn, end of text); exact_match cuts predictions at these.
STOP_STRINGS = ("<|im_end|>", "<|endoftext|>")


def _add(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"Add {a} and {b}.", str(a + b)


def _copy(rng: random.Random) -> tuple[str, str]:
    words = " ".join(rng.choices(WORDS, k=rng.randint(2, 4)))
    return f"Copy: {words}", words


def _reverse(rng: random.Random) -> tuple[str, str]:
    words = rng.choices(WORDS, k=rng.randint(3, 4))
    return f"Reverse the words: {' '.join(words)}", " ".join(reversed(words))


def _sort(rng: random.Random) -> tuple[str, str]:
    digits = [rng.randint(0, 9) for _ in range(rng.randint(3, 5))]
    return f"Sort the digits: {' '.join(map(str, digits))}", " ".join(map(str, sorted(digits)))


def _first(rng: random.Random) -> tuple[str, str]:
    digits = [str(rng.randint(0, 9)) for _ in range(rng.randint(3, 6))]
    return f"First digit: {' '.join(digits)}", digits[0]


def _last(rng: random.Random) -> tuple[str, str]:
    digits = [str(rng.randint(0, 9)) for _ in range(rng.randint(3, 6))]
    return f"Last digit: {' '.join(digits)}", digits[-1]


# task name -> generator(rng) -> (prompt, answer); answers are at most ~10 tokens.
TASKS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "add": _add,
    "copy": _copy,
    "reverse": _reverse,
    "sort": _sort,
    "first": _first,
    "last": _last,
}
# make_synthetic_dataset's default mix (the shipped a2dkit_synthetic lm-eval rows are drawn from it)
DEFAULT_TASKS = ("add", "copy", "reverse", "sort")


def _rows(rows: list[tuple[str, str, str]]) -> Dataset:
    return Dataset.from_dict(
        {
            "messages": [
                [{"role": "user", "content": p}, {"role": "assistant", "content": a}]
                for _, p, a in rows
            ],
            "answer": [a for _, _, a in rows],
            "task": [t for t, _, _ in rows],
        }
    )


def make_synthetic_dataset(
    num_train: int = 2000,
    num_test: int = 200,
    seed: int = 0,
    tasks: Sequence[str] = DEFAULT_TASKS,
) -> DatasetDict:
    """Deterministic synthetic SFT data with disjoint train/test prompts.

    Args:
        num_train: number of train rows (>= 0).
        num_test: number of held-out rows (>= 0); no user prompt appears in both splits.
        seed: RNG seed; the same arguments always give the same rows.
        tasks: subset of ``TASKS`` keys (default ``DEFAULT_TASKS``); each row draws its task
            uniformly from these.

    Returns:
        DatasetDict with splits "train"/"test" and columns ``messages`` (user, assistant),
        ``answer`` (str, the assistant content) and ``task`` (str).
    """
    tasks = [tasks] if isinstance(tasks, str) else list(tasks)
    unknown = [t for t in tasks if t not in TASKS]
    if not tasks or unknown:
        raise ValueError(f"tasks={tasks!r} must be a non-empty subset of {sorted(TASKS)}")
    for name, n in (("num_train", num_train), ("num_test", num_test)):
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"{name}={n!r} must be an integer >= 0")
    rng, seen, rows = random.Random(seed), set(), []
    total, budget = num_train + num_test, 50 * (num_train + num_test) + 1000
    while len(rows) < total and budget > 0:
        budget -= 1
        task = rng.choice(tasks)
        prompt, answer = TASKS[task](rng)
        if prompt not in seen:  # unique prompts -> train and test are disjoint
            seen.add(prompt)
            rows.append((task, prompt, answer))
    if len(rows) < total:
        raise ValueError(
            f"could only draw {len(rows)} distinct prompts for tasks={tasks}, "
            f"but num_train + num_test = {total}; ask for fewer rows or add tasks"
        )
    return DatasetDict({"train": _rows(rows[:num_train]), "test": _rows(rows[num_train:])})
