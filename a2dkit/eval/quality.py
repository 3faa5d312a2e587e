"""Checkable measures of generated text: an AR model's NLL of a continuation, distinct-token ratio,
and whether it is words at all (the share of its words that a reference text uses).

Used to compare sampler settings (steps, remasking, blocks, temperature) on the same prompts.
References: MDLM arXiv 2406.07524 (generative perplexity: samples scored by an AR model).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
import torch.nn.functional as F

__all__ = ["continuation_nll", "distinct_ratio", "words", "known_word_rate"]

_WORD = re.compile(r"[A-Za-z]+(?:'[A-Za-z]+)?")


def _check(sequences: torch.Tensor, start: int) -> None:
    if sequences.dim() != 2:
        raise ValueError(f"sequences must be (B, T); got shape {tuple(sequences.shape)}")
    if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < sequences.shape[1]:
        raise ValueError(
            f"start={start!r} must be an int in [1, {sequences.shape[1] - 1}] (the first "
            "generated column; at least one context token comes before it)"
        )


@torch.no_grad()
def continuation_nll(
    model: torch.nn.Module,
    sequences: torch.Tensor,
    start: int,
    attention_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Mean next-token NLL (nats per token) of ``sequences[:, start:]`` under a causal LM.

    Args:
        model: an AR (causal) language model, e.g. the source model of chapter 1.
        sequences: (B, T) long, prompts then continuations (``SamplerOutput.sequences``).
        start: first continuation column (``SamplerOutput.gen_start``).
        attention_mask: optional (B, T), 0 on (left) padding, which is neither scored nor seen.

    Returns:
        (B,) float32.
    """
    _check(sequences, start)
    sequences = sequences.to(model.device)
    valid = torch.ones_like(sequences) if attention_mask is None else attention_mask.to(sequences)
    position_ids = (valid.cumsum(-1) - 1).clamp(min=0)  # (B, T): padding does not shift positions
    out = model(sequences, attention_mask=valid, position_ids=position_ids)
    logits = out.logits[:, start - 1 : -1].float()  # (B, T - start, V): position i predicts i + 1
    targets = sequences[:, start:]  # (B, T - start)
    nll = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (B, T - start)
    scored = valid[:, start:].to(nll.dtype)
    return (nll * scored).sum(-1) / scored.sum(-1).clamp(min=1)


def distinct_ratio(sequences: torch.Tensor, start: int) -> torch.Tensor:
    """Distinct tokens / length of each continuation ``sequences[:, start:]`` (1 = no repeats).

    Args:
        sequences: (B, T) long; start: first continuation column.

    Returns:
        (B,) float32 in (0, 1].
    """
    _check(sequences, start)
    gen = sequences[:, start:]  # (B, N)
    return torch.tensor([len(set(row.tolist())) / gen.shape[1] for row in gen])


def words(text: str) -> list[str]:
    """The lower-cased words of ``text`` (letters, with an inner apostrophe: "o'er", "i'll")."""
    return [w.lower() for w in _WORD.findall(text)]


def known_word_rate(texts: Iterable[str], vocabulary: set[str]) -> tuple[float, float]:
    """(share of the words of ``texts`` found in ``vocabulary``, mean words per text).

    Both must be high for text to read as language: line breaks and punctuation have no words,
    and invented sub-word fragments ("wis", "assortment" in Shakespeare) are not in the vocabulary.

    Args:
        texts: decoded continuations.
        vocabulary: lower-cased words of a reference text, e.g. ``set(words(corpus))``.
    """
    per_text = [words(t) for t in texts]
    if not per_text:
        raise ValueError("texts is empty: nothing to measure")
    found = [w for ws in per_text for w in ws]
    rate = sum(w in vocabulary for w in found) / len(found) if found else 0.0
    return rate, len(found) / len(per_text)
