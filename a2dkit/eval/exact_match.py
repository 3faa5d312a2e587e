"""Exact match on held-out chat rows: sample an answer with a diffusion sampler, compare it with
the reference; ``compare_decoders`` runs it with fixed steps and with Fast-dLLM threshold decoding.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; Fast-dLLM arXiv 2505.22618.
"""

from __future__ import annotations

from typing import Any

from datasets import Dataset

from a2dkit.data.preprocess import chat_prompts, normalize_messages
from a2dkit.data.synthetic import STOP_STRINGS
from a2dkit.samplers import BD3LMSampler, MDLMSampler

__all__ = ["exact_match", "exact_match_eval", "compare_decoders", "decoder_table"]


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


def _check_eval_args(dataset, sampler_cls, batch_size: int) -> None:
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
