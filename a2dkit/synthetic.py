"""Offline stand-in for alpaca: tiny chat-format instruction tasks a small model learns on CPU.

Tasks (user prompt -> exact assistant answer): add ("Add 23 and 58." -> "81"), copy, reverse, sort,
and the one-digit lookups first and last (a tiny model learns them in seconds: smoke SFT uses them).
``exact_match_eval`` samples answers to the held-out split with a diffusion sampler and scores them;
``compare_decoders`` runs it with fixed steps and with Fast-dLLM threshold decoding.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (SFT data stays the AR chat format);
Fast-dLLM arXiv 2505.22618.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Any

from datasets import Dataset, DatasetDict

__all__ = [
    "TASKS",
    "DEFAULT_TASKS",
    "WORDS",
    "STOP_STRINGS",
    "make_synthetic_dataset",
    "exact_match",
    "chat_prompts",
    "exact_match_eval",
    "compare_decoders",
    "decoder_table",
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


def _normalize(text: str) -> str:
    for stop in STOP_STRINGS:
        text = text.split(stop, 1)[0]
    return text.strip()


def exact_match(predictions: list[str], references: list[str]) -> float:
    """Fraction of predictions equal to their reference after normalisation.

    Both sides are cut at the first ``<|im_end|>`` / ``<|endoftext|>`` and stripped of whitespace.

    Args:
        predictions: N generated strings.
        references: N reference answers.

    Returns:
        Accuracy in [0, 1].
    """
    if len(predictions) != len(references):
        raise ValueError(
            f"len(predictions)={len(predictions)} != len(references)={len(references)}; "
            "pass one prediction per reference"
        )
    if not references:
        raise ValueError("exact_match needs at least one (prediction, reference) pair; got 0")
    hits = sum(_normalize(p) == _normalize(r) for p, r in zip(predictions, references, strict=True))
    return hits / len(references)


def chat_prompts(dataset: Dataset, tokenizer) -> list[list[int]]:
    """Token ids of each row's prompt: every turn but the last, templated with the generation
    header (e.g. ``<|im_start|>assistant\\n``), exactly the prefix that SFT leaves un-noised.

    Args:
        dataset: rows with ``messages`` (role/content) or ``conversations`` (from/value).
        tokenizer: HF tokenizer with a chat template.

    Returns:
        One list of token ids per row.
    """
    from a2dkit.preprocess import normalize_messages

    prompts = []
    for row in dataset:
        messages = normalize_messages(row)[:-1]  # drop the answer turn
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return prompts


def _check_eval_args(dataset, sampler_cls, batch_size: int) -> None:
    from a2dkit.samplers import BD3LMSampler, MDLMSampler

    if not {"messages", "conversations"} & set(dataset.column_names or []):
        raise ValueError(
            f"dataset columns {dataset.column_names} need 'messages' (or 'conversations'); "
            "use a split of make_synthetic_dataset or of an SFT set from a2dkit.data"
        )
    if len(dataset) == 0:
        raise ValueError("dataset is empty: nothing to evaluate")
    if not (isinstance(sampler_cls, type) and issubclass(sampler_cls, (MDLMSampler, BD3LMSampler))):
        raise TypeError(f"sampler_cls must be MDLMSampler or BD3LMSampler, got {sampler_cls!r}")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r} must be a positive integer")


def _references(dataset: Dataset) -> list[str]:
    from a2dkit.preprocess import normalize_messages

    if "answer" in dataset.column_names:
        return list(dataset["answer"])
    return [normalize_messages(row)[-1]["content"] for row in dataset]


def exact_match_eval(
    model, tokenizer, dataset: Dataset, sampler_cls: type, *, batch_size: int = 8, **sampler_kwargs
) -> dict[str, Any]:
    """Sample an answer for every row of a synthetic split and score it by exact match.

    Args:
        model: an A2D model (converted, optionally trained) in eval mode.
        tokenizer: its tokenizer (with ``<|mask|>`` and a chat template).
        dataset: rows with ``messages`` (a split of ``make_synthetic_dataset``); the reference is
            the ``answer`` column, else the content of the last turn (e.g. alpaca's output).
        sampler_cls: ``MDLMSampler`` or ``BD3LMSampler``.
        batch_size: prompts per ``sample`` call.
        **sampler_kwargs: sampler config fields (``max_new_tokens``, ``steps``, ``threshold``...).

    Returns:
        dict with ``accuracy`` (exact match in [0, 1]), ``by_task`` (task -> accuracy),
        ``nfe`` (model forward calls), ``tokens`` (generated positions per row, summed over
        batches), ``nfe_per_token`` (= nfe / tokens), ``predictions`` and ``references``.
    """
    _check_eval_args(dataset, sampler_cls, batch_size)
    sampler, prompts = sampler_cls(model, tokenizer), chat_prompts(dataset, tokenizer)
    predictions, nfe, tokens = [], 0, 0
    for i in range(0, len(prompts), batch_size):
        out = sampler.sample(prompts[i : i + batch_size], return_history=False, **sampler_kwargs)
        gen = out.sequences[:, out.gen_start : out.gen_end]  # (B, generated positions)
        predictions += tokenizer.batch_decode(gen.tolist(), skip_special_tokens=False)
        nfe, tokens = nfe + out.nfe, tokens + gen.shape[1]  # one batched forward serves each row
    references = _references(dataset)
    hits = [_normalize(p) == _normalize(r) for p, r in zip(predictions, references, strict=True)]
    tasks = dataset["task"] if "task" in dataset.column_names else ["all"] * len(hits)
    by_task = {
        t: sum(h for h, u in zip(hits, tasks, strict=True) if u == t) / tasks.count(t)
        for t in sorted(set(tasks))
    }
    return dict(
        accuracy=exact_match(predictions, references),
        by_task=by_task,
        nfe=nfe,
        tokens=tokens,
        nfe_per_token=nfe / tokens,
        predictions=predictions,
        references=references,
    )


def compare_decoders(
    model,
    tokenizer,
    dataset: Dataset,
    sampler_cls: type,
    *,
    threshold: float = 0.9,
    **kwargs,
) -> dict[str, Any]:
    """``exact_match_eval`` with the fixed-steps sampler and with threshold decoding (Fast-dLLM:
    commit every masked token whose confidence exceeds ``threshold``, at least one per step).

    Args:
        threshold: confidence threshold in (0, 1]; Fast-dLLM's default is 0.9.
        **kwargs: ``batch_size`` and sampler config fields shared by both runs.

    Returns:
        dict with ``fixed`` and ``threshold`` (each an ``exact_match_eval`` result) and
        ``nfe_ratio`` = fixed / threshold forward passes per token (> 1: threshold is cheaper).
    """
    fixed = exact_match_eval(model, tokenizer, dataset, sampler_cls, **kwargs)
    fast = exact_match_eval(model, tokenizer, dataset, sampler_cls, threshold=threshold, **kwargs)
    ratio = fixed["nfe_per_token"] / fast["nfe_per_token"]
    return dict(fixed=fixed, threshold=fast, nfe_ratio=ratio)


def decoder_table(results: dict[str, dict[str, Any]]) -> str:
    """Text table of ``compare_decoders`` results keyed by a name (e.g. "mdlm", "bd3lm").

    Columns: forward passes per generated token (fixed, threshold), their ratio, exact match.
    """
    lines = ["name      NFE/token: fixed  threshold  fewer   exact match: fixed  threshold"]
    for name, r in results.items():
        fixed, fast = r["fixed"], r["threshold"]
        lines.append(
            f"{name:8s} {fixed['nfe_per_token']:17.3f} {fast['nfe_per_token']:10.3f} "
            f"{r['nfe_ratio']:6.2f}x {fixed['accuracy']:19.3f} {fast['accuracy']:10.3f}"
        )
    return "\n".join(lines)
