"""Lossless speculative decoding: a drafter proposes k tokens, an AR verifier checks them in one
forward; the output is token for token the verifier's greedy decoding (temperature 0) or, when
sampling, distributed exactly as the verifier's own samples.

The drafter is any ``draft(prefix, k) -> Draft`` (``a2dkit.samplers.drafters``): a converted A2D
model's block sampler or, for the bound of perfect drafts, the verifier itself. The verifier (the
source AR model, or an A2D model as its own AR model, ``CausalVerifier``) keeps one KV cache:
each forward reads the pending token (the last one committed, not yet cached) and the draft,
accepts a prefix of the draft (``acceptance``), adds its own token at the first rejection (or
after a fully accepted draft), and drops the rest of the draft from the cache. A batch of
prompts of any lengths is verified together (``speculative_decode_batch``): the rows share one
``RaggedCache``, in which padding and rejected drafts are holes no row attends to.
References: speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §2.3); TiDAR /
DFlash / I-DLM (a diffusion drafter, an AR verifier).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field

import torch

from a2dkit.models.forward import A2DForwardMixin, causal_mode
from a2dkit.samplers.acceptance import greedy_accept, speculative_accept
from a2dkit.samplers.drafters import Draft, Drafter
from a2dkit.samplers.prompts import check_nonnegative_finite
from a2dkit.samplers.ragged_cache import RaggedCache

__all__ = [
    "SpeculativeStats",
    "VerifierStep",
    "CausalVerifier",
    "speculative_decode",
    "speculative_decode_batch",
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


def _check(prompts: list[list[int]], max_new_tokens: int, draft_length: int, temperature: float):
    if draft_length <= 0 or max_new_tokens <= 0:
        raise ValueError(f"draft_length={draft_length} and max_new_tokens={max_new_tokens} must "
                         "be > 0")  # fmt: skip
    if not prompts or not all(prompts):
        raise ValueError("every prompt must hold at least one token (and at least one prompt)")
    check_nonnegative_finite("temperature", temperature)


def _drafts(drafter: Drafter, prefixes: list[list[int]], k: int, sampling: bool) -> list[Draft]:
    """k tokens after each prefix: one batched call when the drafter has ``batch``."""
    if k == 0:
        return [Draft([], torch.zeros(0, 1, dtype=torch.float64)) for _ in prefixes]
    batch = getattr(drafter, "batch", None)
    drafts = batch(prefixes, k) if batch is not None else [drafter(p, k) for p in prefixes]
    drafts = [d if isinstance(d, Draft) else Draft(list(d)) for d in drafts]
    for draft in drafts:
        if len(draft.tokens) != k:
            raise ValueError(f"the drafter returned {len(draft.tokens)} tokens; {k} were asked for")
        if sampling and draft.q is None:
            raise ValueError("sampling (temperature > 0) needs a drafter that returns q, e.g. "
                             "drafters.proposal_drafter")  # fmt: skip
    return drafts


def _padded(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ids (B, Q) and their valid mask (real tokens first in every row)."""
    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    valid = torch.zeros(len(rows), width, dtype=torch.bool)
    for b, r in enumerate(rows):
        ids[b, : len(r)], valid[b, : len(r)] = torch.tensor(r, dtype=torch.long), True
    return ids.to(device), valid.to(device)


def speculative_decode_batch(
    verifier,
    drafter: Drafter,
    prompts: list[list[int]],
    max_new_tokens: int,
    draft_length: int,
    *,
    temperature: float = 0.0,
    eos_token_id: int | None = None,
    stats: SpeculativeStats | None = None,
    generator: torch.Generator | None = None,
    traces: list[list[VerifierStep]] | None = None,
) -> list[list[int]]:
    """Every prompt's continuation by the verifier, the rows of different lengths verified
    together: each forward appends [pending token, draft] to every unfinished row of one
    ``RaggedCache`` (arXiv 2211.17192, Algorithm 1, per row).

    Forwards are counted per row (a batched forward over B unfinished rows counts B), so the
    statistics of a batch are those of its rows decoded alone.

    Args:
        verifier: an AR model, or an A2D model (run in ``causal_mode``: ``self`` mode).
        drafter: ``draft(prefix, k)``, batched through its ``batch(prefixes, k)`` if it has one.
        prompts: ids, at least one per prompt; they need not share a length.
        traces: if given, one list per prompt, each getting a ``VerifierStep`` per forward.

    Returns:
        Every prompt's generated ids (EOS included when reached).
    """
    _check(prompts, max_new_tokens, draft_length, temperature)
    stats = stats if stats is not None else SpeculativeStats()
    verifier, clock = _as_verifier(verifier), time.perf_counter()
    cache, pad = RaggedCache(len(prompts), verifier.device), 0
    if any(len(p) > 1 for p in prompts):  # prefill all but each row's pending token
        cache.forward(verifier, *_padded([p[:-1] for p in prompts], pad, verifier.device))
        cache.crop()
        stats.verifier_forwards += sum(len(p) > 1 for p in prompts)
    outs, pending = [[] for _ in prompts], [p[-1] for p in prompts]
    active = list(range(len(prompts)))
    while active:
        room = {b: min(draft_length, max_new_tokens - len(outs[b]) - 1) for b in active}
        drafts: dict[int, Draft] = {}
        spent: dict[int, float] = {}  # drafter forwards per row, for the trace
        for k in sorted(set(room.values())):  # rows near max_new_tokens draft fewer tokens
            rows = [b for b in active if room[b] == k]
            before = stats.drafter_forwards
            got = _drafts(drafter, [prompts[b] + outs[b] for b in rows], k, temperature > 0)
            drafts |= dict(zip(rows, got, strict=True))
            spent |= dict.fromkeys(rows, (stats.drafter_forwards - before) / len(rows))
        rows = [[pending[b], *drafts[b].tokens] if b in drafts else [] for b in range(len(prompts))]
        start = cache.columns
        logits = cache.forward(verifier, *_padded(rows, pad, verifier.device))  # (B, k + 1, V)
        stats.verifier_forwards += len(active)
        for b in list(active):
            draft = drafts[b]
            row_logits = logits[b, : len(rows[b])]  # (k + 1, V)
            if temperature == 0:
                n, token = greedy_accept(draft.tokens, row_logits)
            else:
                n, token = speculative_accept(draft.tokens, draft.q, row_logits, temperature,
                                              generator)  # fmt: skip
            stats.accepted[n] += 1
            cache.keep(b, start, 1 + n, len(rows[b]))  # the pending token and the accepted draft
            new = [*draft.tokens[:n], token]  # the accepted prefix, then the verifier's own token
            if eos_token_id is not None and eos_token_id in new:
                new = new[: new.index(eos_token_id) + 1]
            if traces is not None:
                traces[b].append(VerifierStep(len(outs[b]), list(draft.tokens), n, token,
                                              list(new), round(spent[b])))  # fmt: skip
            outs[b] += new
            stats.tokens += len(new)
            pending[b] = outs[b][-1]
            if len(outs[b]) >= max_new_tokens or new[-1] == eos_token_id:
                active.remove(b)
        cache.crop()
    stats.seconds += time.perf_counter() - clock
    return [out[:max_new_tokens] for out in outs]


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
    return speculative_decode_batch(verifier, drafter, [prompt], max_new_tokens, draft_length,
                                    temperature=temperature, eos_token_id=eos_token_id,
                                    stats=stats, generator=generator,
                                    traces=None if trace is None else [trace])[0]  # fmt: skip


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
