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

__all__ = ["Draft", "Drafter", "SamplerDrafter", "sampler_drafter", "proposal_drafter"]


@dataclass
class Draft:
    """k drafted ids and, for sampling, q (k, V) float64: the distribution ``tokens[i]`` was
    drawn from given the prefix and ``tokens[:i]`` (None: a greedy draft)."""

    tokens: list[int]
    q: torch.Tensor | None = None


Drafter = Callable[[list[int], int], "Draft | list[int]"]


class SamplerDrafter:
    """``draft(prefix, k)``, and ``draft.batch(prefixes, k)`` for a batch of prefixes in one
    sampler call: k tokens after each prefix, one block of k masks, in ``steps`` forwards (None:
    k; capped at k), with q when ``proposals``."""

    def __init__(self, sampler, stats, options: dict, *, steps: int | None, proposals: bool):
        self.sampler, self.stats, self.options = sampler, stats, options
        self.steps, self.proposals = steps, proposals

    def __call__(self, prefix: list[int], k: int) -> Draft:
        return self.batch([prefix], k)[0]

    def batch(self, prefixes: list[list[int]], k: int) -> list[Draft]:
        options = {"block_size": k} | self.options
        options |= {"max_new_tokens": k, "steps": min(self.steps or k, k)}
        out = self.sampler.sample(prefixes, return_history=False, **options)
        if self.stats is not None:  # forwards per row: a batched forward counts once per row
            self.stats.drafter_forwards += out.nfe * len(prefixes)
        s = out.gen_start
        tokens = out.sequences[:, s : s + k].tolist()
        if not self.proposals:
            return [Draft(t) for t in tokens]
        return [Draft(t, out.proposals[b, :k]) for b, t in enumerate(tokens)]


def sampler_drafter(sampler, stats=None, **sampler_options) -> SamplerDrafter:
    """A greedy drafter from an a2dkit sampler: ``k`` new tokens after the prefix, one block (the
    sampler's forward passes count as drafter forwards in ``stats``, a ``SpeculativeStats``)."""
    steps = sampler_options.pop("steps", None)
    return SamplerDrafter(sampler, stats, sampler_options, steps=steps, proposals=False)


def proposal_drafter(
    sampler, temperature: float, stats=None, steps: int | None = None, **sampler_options
) -> SamplerDrafter:
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
    options = sampler_options | {"temperature": temperature, "remasking": "left_to_right",
                                 "return_proposals": True}  # fmt: skip
    return SamplerDrafter(sampler, stats, options, steps=steps, proposals=True)
