"""Lossless speculative decoding: a drafter proposes k tokens, an AR verifier checks them in one
forward; the output is token for token the verifier's greedy decoding (temperature 0) or, when
sampling, distributed exactly as the verifier's own samples.

The drafter is any ``draft(prefix, k) -> Draft`` (``a2dkit.samplers.drafters``): a converted A2D
model's block sampler or, for the bound of perfect drafts, the verifier itself. The verifier (the
source AR model, or an A2D model as its own AR model, ``CausalVerifier``) keeps one KV cache:
each forward reads the pending token (the last one committed, not yet cached) and the draft,
accepts a prefix of the draft (``acceptance``), adds its own token at the first rejection (or
after a fully accepted draft), and crops the cache back to what was accepted.
References: speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §2.3); TiDAR /
DFlash / I-DLM (a diffusion drafter, an AR verifier).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import torch
from transformers import DynamicCache

from a2dkit.models.forward import A2DForwardMixin, causal_mode
from a2dkit.samplers.acceptance import greedy_accept, speculative_accept
from a2dkit.samplers.drafters import Draft, Drafter
from a2dkit.samplers.kv_cache import truncate

__all__ = [
    "SpeculativeStats",
    "VerifierStep",
    "CausalVerifier",
    "speculative_decode",
    "speculative_greedy",
]


@dataclass
class SpeculativeStats:
    """Counts of one or more runs: forward passes of each model, tokens committed, accepted
    draft lengths (a histogram), wall seconds."""

    verifier_forwards: int = 0
    drafter_forwards: int = 0
    tokens: int = 0
    accepted: Counter = field(default_factory=Counter)  # accepted draft length -> times
    seconds: float = 0.0

    @property
    def tokens_per_verifier_forward(self) -> float:
        return self.tokens / max(self.verifier_forwards, 1)

    @property
    def accepted_per_verifier_forward(self) -> float:
        """Drafted tokens accepted per verifying forward (the prefill not counted)."""
        return sum(n * c for n, c in self.accepted.items()) / max(sum(self.accepted.values()), 1)

    @property
    def forwards_per_token(self) -> float:
        """Drafter and verifier forwards together, per committed token."""
        return (self.verifier_forwards + self.drafter_forwards) / max(self.tokens, 1)

    @property
    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict:
        """The counts and rates, JSON-ready (histogram keys as strings, sorted)."""
        names = ("verifier_forwards", "drafter_forwards", "tokens", "seconds",
                 "tokens_per_verifier_forward", "accepted_per_verifier_forward",
                 "forwards_per_token", "tokens_per_second")  # fmt: skip
        histogram = {str(n): self.accepted[n] for n in sorted(self.accepted)}
        return {n: getattr(self, n) for n in names} | {"acceptance_histogram": histogram}


@dataclass(frozen=True)
class VerifierStep:
    """One verifying forward of ``speculative_decode(..., trace=[])``: the draft it scored, how
    many of its tokens it accepted, its own token (the correction at the first rejection, or the
    bonus token after a fully accepted draft), and what it committed (``draft[:accepted]`` and
    ``token``, cut after EOS). ``start``: tokens generated before it; ``drafter_forwards``: the
    drafter's forwards for this draft (as counted in ``SpeculativeStats``)."""

    start: int
    draft: list[int]
    accepted: int
    token: int
    committed: list[int]
    drafter_forwards: int = 0


class CausalVerifier:
    """An A2D model as its own AR verifier (``self`` mode): every call runs the same weights under
    ``causal_mode``, so the drafter's calls between them stay bidirectional."""

    def __init__(self, model: torch.nn.Module):
        with causal_mode(model):  # refuses a non-A2D model and sliding windows, by name
            pass
        self.model = model

    @property
    def device(self) -> torch.device:
        return self.model.device

    def __call__(self, **kwargs):
        with causal_mode(self.model):
            return self.model(**kwargs)


def _as_verifier(verifier):
    """An A2D model is verified in its AR mode; an AR model (or a ``CausalVerifier``) as is."""
    return CausalVerifier(verifier) if isinstance(verifier, A2DForwardMixin) else verifier


@torch.no_grad()
def _logits(verifier, ids: list[int], cache: DynamicCache) -> torch.Tensor:
    """(len(ids), V) next-token logits of ``ids`` appended to the cached prefix."""
    past = cache.get_seq_length()
    x = torch.tensor([ids], device=verifier.device)
    positions = torch.arange(past, past + len(ids), device=verifier.device)[None]
    return verifier(input_ids=x, position_ids=positions, past_key_values=cache,
                    use_cache=True).logits[0]  # fmt: skip


def _check(prompt: list[int], max_new_tokens: int, draft_length: int, temperature: float):
    if draft_length <= 0 or max_new_tokens <= 0:
        raise ValueError(f"draft_length={draft_length} and max_new_tokens={max_new_tokens} must "
                         "be > 0")  # fmt: skip
    if not prompt:
        raise ValueError("the prompt must hold at least one token")
    if not temperature >= 0 or temperature == float("inf"):
        raise ValueError(f"temperature={temperature} must be a finite number >= 0")


def _draft(drafter: Drafter, prefix: list[int], k: int, sampling: bool) -> Draft:
    draft = drafter(prefix, k) if k > 0 else Draft([], torch.zeros(0, 1, dtype=torch.float64))
    draft = draft if isinstance(draft, Draft) else Draft(list(draft))
    if len(draft.tokens) != k:
        raise ValueError(f"the drafter returned {len(draft.tokens)} tokens; {k} were asked for")
    if sampling and draft.q is None:
        raise ValueError("sampling (temperature > 0) needs a drafter that returns q, e.g. "
                         "drafters.proposal_drafter")  # fmt: skip
    return draft


def speculative_decode(
    verifier,
    drafter: Drafter,
    prompt: list[int],
    max_new_tokens: int,
    draft_length: int,
    *,
    temperature: float = 0.0,
    eos_token_id: int | None = None,
    stats: SpeculativeStats | None = None,
    generator: torch.Generator | None = None,
    trace: list[VerifierStep] | None = None,
) -> list[int]:
    """The verifier's continuation of ``prompt`` (``max_new_tokens`` or up to its EOS), computed
    with drafts of ``draft_length`` tokens: its greedy decoding at temperature 0, else a sample
    distributed as its own at ``temperature`` (arXiv 2211.17192, Algorithm 1).

    Args:
        verifier: an AR model, or an A2D model (run in ``causal_mode``: ``self`` mode).
        drafter: ``draft(prefix, k)``; when sampling it must return q (``proposal_drafter``).
        prompt: ids, at least one.
        trace: if given, one ``VerifierStep`` is appended per verifying forward (for
            ``a2dkit.viz.speculation``); the output does not depend on it.

    Returns:
        The generated ids (EOS included when reached).
    """
    _check(prompt, max_new_tokens, draft_length, temperature)
    stats = stats if stats is not None else SpeculativeStats()
    verifier, clock, cache = _as_verifier(verifier), time.perf_counter(), DynamicCache()
    if len(prompt) > 1:
        _logits(verifier, prompt[:-1], cache)  # prefill all but the pending token
        stats.verifier_forwards += 1
    out, pending = [], prompt[-1]
    while len(out) < max_new_tokens:
        k = min(draft_length, max_new_tokens - len(out) - 1)  # room for the verifier's token
        drafted = stats.drafter_forwards
        draft = _draft(drafter, prompt + out, k, temperature > 0)
        start = cache.get_seq_length()
        logits = _logits(verifier, [pending, *draft.tokens], cache)  # (k + 1, V)
        stats.verifier_forwards += 1
        if temperature == 0:
            n, token = greedy_accept(draft.tokens, logits)
        else:
            n, token = speculative_accept(draft.tokens, draft.q, logits, temperature, generator)
        stats.accepted[n] += 1
        new = [*draft.tokens[:n], token]  # the accepted prefix, then the verifier's own token
        truncate(cache, start + 1 + n)  # keep the pending token and the accepted draft
        if eos_token_id is not None and eos_token_id in new:
            new = new[: new.index(eos_token_id) + 1]
        if trace is not None:
            trace.append(VerifierStep(len(out), list(draft.tokens), n, token, list(new),
                                      stats.drafter_forwards - drafted))  # fmt: skip
        out += new
        stats.tokens += len(new)
        if eos_token_id is not None and out[-1] == eos_token_id:
            break
        pending = out[-1]
    stats.seconds += time.perf_counter() - clock
    return out[:max_new_tokens]


def speculative_greedy(
    verifier,
    drafter: Drafter,
    prompt: list[int],
    max_new_tokens: int,
    draft_length: int,
    eos_token_id: int | None = None,
    stats: SpeculativeStats | None = None,
) -> list[int]:
    """``speculative_decode`` at temperature 0: the verifier's greedy decoding, token for token."""
    return speculative_decode(verifier, drafter, prompt, max_new_tokens, draft_length,
                              eos_token_id=eos_token_id, stats=stats)  # fmt: skip
