"""chrF: how close a converted model's answers are to its source model's, character by character.

chrF (Popović 2015, "chrF: character n-gram F-score for automatic MT evaluation", WMT): the
character n-grams of orders 1..6 of each text with its whitespace removed; per order, precision
and recall of the hypothesis's n-grams against the reference's (clipped counts); both averaged
over the orders that occur in both texts, then the F-score with beta = 2 (recall weighs
beta^2 = 4 times as much as precision). A corpus score sums the counts over all pairs first. This
is sacreBLEU's ``CHRF()`` default, on a 0-1 scale instead of 0-100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

__all__ = ["CHAR_ORDER", "BETA", "char_ngrams", "chrf_statistics", "chrf", "sentence_chrf"]

CHAR_ORDER = 6  # n-gram orders 1..6 (Popović 2015)
BETA = 2.0  # recall weighs beta^2 times precision


def char_ngrams(text: str, n: int) -> Counter[str]:
    """Counts of the character n-grams of ``text`` with all whitespace removed."""
    chars = "".join(text.split())
    return Counter(chars[i : i + n] for i in range(len(chars) - n + 1))


def chrf_statistics(hypothesis: str, reference: str, order: int = CHAR_ORDER) -> list[list[int]]:
    """Per order n = 1..order: [hypothesis n-grams, reference n-grams, clipped matches].

    An order the reference is too short to have counts no hypothesis n-grams either (sacreBLEU's
    convention), so a short reference does not lower a corpus score's precision at that order.
    """
    stats = []
    for n in range(1, order + 1):
        hyp, ref = char_ngrams(hypothesis, n), char_ngrams(reference, n)
        matches = sum(min(count, ref[gram]) for gram, count in hyp.items())
        stats.append([sum(hyp.values()) if ref else 0, sum(ref.values()), matches])
    return stats


def _f_score(stats: list[list[int]], beta: float) -> float:
    """F_beta of the precision and recall averaged over the orders present in both texts."""
    precision = recall = 0.0
    orders = 0
    for n_hyp, n_ref, n_match in stats:
        if n_hyp > 0 and n_ref > 0:  # an order absent from either text is left out
            precision, recall, orders = (
                precision + n_match / n_hyp,
                recall + n_match / n_ref,
                orders + 1,
            )
    if orders == 0:
        return 0.0
    precision, recall = precision / orders, recall / orders
    if precision + recall == 0:
        return 0.0
    factor = beta**2
    return (1 + factor) * precision * recall / (factor * precision + recall)


def _check(hypotheses: Sequence[str], references: Sequence[str]) -> None:
    if isinstance(hypotheses, str) or isinstance(references, str):
        raise TypeError("hypotheses and references must be sequences of strings, not one string")
    if len(hypotheses) != len(references):
        raise ValueError(
            f"len(hypotheses)={len(hypotheses)} != len(references)={len(references)}; "
            "pass one hypothesis per reference"
        )
    if not references:
        raise ValueError("chrF needs at least one (hypothesis, reference) pair; got 0")


def chrf(
    hypotheses: Sequence[str],
    references: Sequence[str],
    *,
    order: int = CHAR_ORDER,
    beta: float = BETA,
) -> float:
    """Corpus chrF in [0, 1]: the n-gram counts of every pair summed, then one F-score."""
    _check(hypotheses, references)
    if order < 1 or beta <= 0:
        raise ValueError(f"order={order} must be >= 1 and beta={beta} > 0 (chrF: 6 and 2)")
    total = [[0, 0, 0] for _ in range(order)]
    for hyp, ref in zip(hypotheses, references, strict=True):
        for row, counts in zip(total, chrf_statistics(hyp, ref, order), strict=True):
            for i, c in enumerate(counts):
                row[i] += c
    return _f_score(total, beta)


def sentence_chrf(hypothesis: str, reference: str, **kwargs) -> float:
    """chrF of one pair, in [0, 1]."""
    return chrf([hypothesis], [reference], **kwargs)
