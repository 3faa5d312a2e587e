"""Drafters for speculative decoding: ``draft(prefix, k) -> Draft`` of k tokens after the prefix,
from an a2dkit sampler (one block of k masks). For sampling (temperature > 0) a draft carries q,
the distribution each token was drawn from given the prefix and the tokens to its left (exact
only when the tokens are committed left to right: ``proposals``).
References: Leviathan et al. 2023, arXiv 2211.17192 (§2.3); MDLM arXiv 2406.07524; BD3LM
arXiv 2503.09573.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

__all__ = ["Draft", "Drafter", "sampler_drafter", "proposal_drafter"]


@dataclass
class Draft:
    """k drafted ids and, for sampling, q (k, V) float64: the distribution ``tokens[i]`` was
    drawn from given the prefix and ``tokens[:i]`` (None: a greedy draft)."""

    tokens: list[int]
    q: torch.Tensor | None = None


Drafter = Callable[[list[int], int], "Draft | list[int]"]


def _count(stats, out) -> None:
    if stats is not None:
        stats.drafter_forwards += out.nfe


def sampler_drafter(sampler, stats=None, **sampler_options) -> Drafter:
    """A greedy drafter from an a2dkit sampler: ``k`` new tokens after the prefix, one block (the
    sampler's forward passes count as drafter forwards in ``stats``, a ``SpeculativeStats``)."""

    def draft(prefix: list[int], k: int) -> Draft:
        options = {"block_size": k, "steps": k} | sampler_options | {"max_new_tokens": k}
        out = sampler.sample([prefix], return_history=False, **options)
        _count(stats, out)
        return Draft(out.sequences[0, out.gen_start : out.gen_start + k].tolist())

    return draft


def proposal_drafter(
    sampler, temperature: float, stats=None, steps: int | None = None, **sampler_options
) -> Drafter:
    """A sampling drafter: ``k`` tokens drawn at ``temperature`` with their q, committed left to
    right in ``steps`` forwards (default k: one token per forward; 1: all k from one forward).

    Args:
        sampler: an ``MDLMSampler`` or ``BD3LMSampler``.
        temperature: > 0, the drafter's own (q is whatever it draws from).
        steps: forwards per draft, capped at k.
    """
    if temperature <= 0:
        raise ValueError(f"temperature={temperature} must be > 0; greedy drafts: sampler_drafter")
    banned = {"remasking", "threshold", "cfg_scale"} & set(sampler_options)
    if banned:
        raise ValueError(f"{sorted(banned)} cannot be set: q is exact only with left-to-right "
                         "commits, fixed steps and no guidance")  # fmt: skip

    def draft(prefix: list[int], k: int) -> Draft:
        options = {"block_size": k} | sampler_options | {"max_new_tokens": k}
        out = sampler.sample([prefix], return_history=False, steps=min(steps or k, k),
                             temperature=temperature, remasking="left_to_right",
                             return_proposals=True, **options)  # fmt: skip
        _count(stats, out)
        s = out.gen_start
        return Draft(out.sequences[0, s : s + k].tolist(), out.proposals[0, :k])

    return draft
