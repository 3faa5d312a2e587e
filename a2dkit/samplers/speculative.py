"""Lossless speculative decoding: a drafter proposes k tokens, an AR verifier checks them in one
forward, and the output is token for token the verifier's greedy decoding.

The drafter is any ``draft(prefix, k) -> k token ids``: a converted A2D model's block sampler
(``sampler_drafter``), or, for the bound of perfect drafts, the verifier itself. The verifier (the
source AR model, or an A2D model in ``models.causal_mode``) keeps one KV cache: each forward reads
the pending token (the last one committed, not yet cached) and the draft, accepts the longest
draft prefix that matches its own greedy choices, adds its own token at the first mismatch (or
after a fully accepted draft), and crops the cache back to what was accepted.
References: speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §2.3, greedy case);
TiDAR / DFlash / I-DLM (a diffusion drafter, an AR verifier).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from a2dkit.samplers.kv_cache import truncate

__all__ = ["SpeculativeStats", "speculative_greedy", "sampler_drafter"]

Drafter = Callable[[list[int], int], list[int]]


@dataclass
class SpeculativeStats:
    """Counts of one run: forward passes of each model, tokens committed, accepted lengths."""

    verifier_forwards: int = 0
    drafter_forwards: int = 0
    tokens: int = 0
    accepted: Counter = field(default_factory=Counter)  # accepted draft length -> times

    @property
    def tokens_per_verifier_forward(self) -> float:
        return self.tokens / max(self.verifier_forwards, 1)

    @property
    def forwards_per_token(self) -> float:
        """Drafter and verifier forwards together, per committed token."""
        return (self.verifier_forwards + self.drafter_forwards) / max(self.tokens, 1)


@torch.no_grad()
def _logits(verifier, ids: list[int], cache: DynamicCache) -> torch.Tensor:
    """(len(ids), V) next-token logits of ``ids`` appended to the cached prefix."""
    past = cache.get_seq_length()
    x = torch.tensor([ids], device=verifier.device)
    positions = torch.arange(past, past + len(ids), device=verifier.device)[None]
    return verifier(input_ids=x, position_ids=positions, past_key_values=cache,
                    use_cache=True).logits[0]  # fmt: skip


def speculative_greedy(
    verifier,
    drafter: Drafter,
    prompt: list[int],
    max_new_tokens: int,
    draft_length: int,
    eos_token_id: int | None = None,
    stats: SpeculativeStats | None = None,
) -> list[int]:
    """The verifier's greedy continuation of ``prompt`` (``max_new_tokens`` or up to its EOS),
    computed with drafts of ``draft_length`` tokens.

    Returns:
        The generated ids (EOS included when reached).
    """
    if draft_length <= 0 or max_new_tokens <= 0:
        raise ValueError(f"draft_length={draft_length} and max_new_tokens={max_new_tokens} must "
                         "be > 0")  # fmt: skip
    if not prompt:
        raise ValueError("the prompt must hold at least one token")
    stats = stats if stats is not None else SpeculativeStats()
    cache = DynamicCache()
    if len(prompt) > 1:
        _logits(verifier, prompt[:-1], cache)  # prefill all but the pending token
        stats.verifier_forwards += 1
    out, pending = [], prompt[-1]
    while len(out) < max_new_tokens:
        k = min(draft_length, max_new_tokens - len(out) - 1)  # room for the verifier's token
        draft = list(drafter(prompt + out, k))[:k] if k > 0 else []
        if len(draft) != k:
            raise ValueError(f"the drafter returned {len(draft)} tokens; {k} were asked for")
        start = cache.get_seq_length()
        choices = _logits(verifier, [pending, *draft], cache).argmax(-1).tolist()  # (k + 1,)
        stats.verifier_forwards += 1
        n = 0
        while n < k and draft[n] == choices[n]:
            n += 1
        stats.accepted[n] += 1
        new = [*draft[:n], choices[n]]  # the accepted prefix, then the verifier's own token
        truncate(cache, start + 1 + n)  # keep the pending token and the accepted draft
        if eos_token_id is not None and eos_token_id in new:
            new = new[: new.index(eos_token_id) + 1]
        out += new
        stats.tokens += len(new)
        if eos_token_id is not None and out[-1] == eos_token_id:
            break
        pending = out[-1]
    return out[:max_new_tokens]


def sampler_drafter(sampler, stats: SpeculativeStats | None = None, **sampler_options) -> Drafter:
    """A drafter from an a2dkit sampler: ``k`` new tokens after the prefix, one block (the
    sampler's forward passes count as drafter forwards in ``stats``)."""

    def draft(prefix: list[int], k: int) -> list[int]:
        options = {"block_size": k, "steps": k} | sampler_options | {"max_new_tokens": k}
        out = sampler.sample([prefix], return_history=False, **options)
        if stats is not None:
            stats.drafter_forwards += out.nfe
        return out.sequences[0, out.gen_start : out.gen_start + k].tolist()

    return draft
