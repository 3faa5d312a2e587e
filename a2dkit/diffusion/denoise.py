"""One reverse step of masked diffusion, shared by both samplers: how many tokens to reveal, how
to draw them (Gumbel-max), how confident they are, which to commit (top-k or a threshold).

References: MDLM arXiv 2406.07524; LLaDA arXiv 2502.09992 (low-confidence remasking);
Fast-dLLM arXiv 2505.22618 (confidence-threshold parallel decoding).
"""

from __future__ import annotations

from collections.abc import Iterable

import torch

from a2dkit.diffusion.schedules import LinearSchedule, Schedule

__all__ = [
    "REMASKING",
    "num_transfer_tokens",
    "sample_tokens",
    "token_confidence",
    "suppress",
    "guide",
    "select_transfer",
    "denoise_step",
]

REMASKING = ("low_confidence", "random")


def num_transfer_tokens(
    mask_count: torch.Tensor,
    steps: int,
    schedule: Schedule | None = None,
    stochastic: bool = False,
) -> torch.Tensor:
    """How many masked tokens each step reveals; every row sums to its ``mask_count``.

    Without a schedule (and not stochastic): an even split, remainder on the first steps (LLaDA).
    Otherwise each step reveals each remaining mask w.p. (alpha_s - alpha_t) / (1 - alpha_t),
    rounded (dLLM) or drawn binomially (``stochastic``); the linear schedule is the default.

    Args:
        mask_count: (B,) long, masked tokens per row.
        steps: number of denoising steps.

    Returns:
        (B, steps) long.
    """
    if schedule is None and not stochastic:
        base, rem = mask_count // steps, mask_count % steps  # (B,)
        return base[:, None] + (torch.arange(steps, device=mask_count.device) < rem[:, None])
    schedule = schedule or LinearSchedule()
    remaining, counts = mask_count.clone(), []
    for j in range(steps):
        t, s = (steps - j) / steps, (steps - j - 1) / steps  # float32 below, as dLLM
        alpha_t, alpha_s = schedule.alpha(t), schedule.alpha(s)
        # MDLM §3 reverse process: a mask at time t is revealed by time s w.p. 1-(1-α_s)/(1-α_t),
        # in float32 in this very order: the ties rounded then match dLLM's get_num_transfer_tokens
        p = 1.0 - float(((1 - alpha_s) / (1 - alpha_t)).clamp(0, 1)) if j < steps - 1 else 1.0
        n = remaining.double() * p
        if stochastic and p < 1:
            n = torch.distributions.Binomial(remaining.double(), torch.full_like(n, p)).sample()
        n = torch.minimum(n.round().long(), remaining)
        remaining = remaining - n
        counts.append(n)
    return torch.stack(counts, dim=1)  # (B, steps)


def sample_tokens(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Gumbel-max draw from softmax(logits / temperature) in float64; argmax at temperature 0.

    Equal in law to dLLM's ``exp(logits) / (-log u) ** temperature`` trick, without the overflow.

    Args:
        logits: (B, L, V) float.

    Returns:
        (B, L) long.
    """
    if temperature == 0:
        return logits.argmax(-1)
    u = torch.rand(logits.shape, dtype=torch.float64, device=logits.device)
    gumbel = -torch.log(-torch.log(u.clamp_min(torch.finfo(torch.float64).tiny)))
    return (logits.double() / temperature + gumbel).argmax(-1)


def token_confidence(logits: torch.Tensor, x0: torch.Tensor, remasking: str) -> torch.Tensor:
    """``low_confidence``: probability of the drawn token x0; ``random``: U(0, 1) scores.

    Args:
        logits: (B, L, V); x0: (B, L) long.

    Returns:
        (B, L) float.
    """
    if remasking == "random":
        return torch.rand(x0.shape, device=x0.device)
    probs = torch.softmax(logits.float(), dim=-1)  # (B, L, V)
    return probs.gather(-1, x0[..., None]).squeeze(-1)


def suppress(logits: torch.Tensor, token_ids: Iterable[int]) -> torch.Tensor:
    """Copy of ``logits`` (B, L, V) with the given vocabulary entries set to -inf."""
    ids = list(token_ids)
    if not ids:
        return logits
    logits = logits.clone()
    logits[..., ids] = float("-inf")
    return logits


def guide(logits: torch.Tensor, cfg_scale: float) -> torch.Tensor:
    """Classifier-free guidance on a (2B, L, V) batch [conditional; unconditional] -> (B, L, V)."""
    if cfg_scale == 0:
        return logits
    cond, uncond = logits.chunk(2, dim=0)
    return uncond + (cfg_scale + 1) * (cond - uncond)  # LLaDA §2.4 / dLLM convention


def select_transfer(
    confidence: torch.Tensor,
    candidates: torch.Tensor,
    k: torch.Tensor | None,
    threshold: float | None = None,
) -> torch.Tensor:
    """Which candidates to commit: the top-``k`` per row, or (``threshold``) every candidate with
    confidence > threshold plus the row's most confident one (Fast-dLLM parallel decoding).

    Args:
        confidence: (B, L) float; candidates: (B, L) bool (still-masked positions).
        k: (B,) long, ignored when ``threshold`` is set.

    Returns:
        (B, L) bool.
    """
    conf = confidence.masked_fill(~candidates, float("-inf"))
    best = torch.zeros_like(candidates).scatter_(-1, conf.argmax(-1, keepdim=True), True)
    if threshold is not None:
        return candidates & ((conf > threshold) | best)
    k = torch.minimum(k, candidates.sum(-1))  # (B,)
    order = conf.argsort(dim=-1, descending=True, stable=True)  # (B, L)
    ranks = torch.empty_like(order).scatter_(
        -1, order, torch.arange(conf.shape[-1], device=conf.device).expand_as(order)
    )
    return ranks < k[:, None]


def denoise_step(
    logits: torch.Tensor,
    block: torch.Tensor,
    mask_token_id: int,
    k: torch.Tensor | None,
    *,
    temperature: float = 0.0,
    remasking: str = "low_confidence",
    threshold: float | None = None,
    suppress_tokens: Iterable[int] = (),
) -> torch.Tensor:
    """One reverse step on a block: draw x0 everywhere, commit the chosen masked positions.

    Args:
        logits: (B, L, V) for the block; block: (B, L) long; k: (B,) tokens to commit (None when
            ``threshold`` is set).

    Returns:
        (B, L) long, the block with newly committed tokens (committed tokens never change).
    """
    logits = suppress(logits, suppress_tokens)  # before drawing (dLLM applies some after: #105)
    x0 = sample_tokens(logits, temperature)  # (B, L)
    confidence = token_confidence(logits, x0, remasking)
    commit = select_transfer(confidence, block == mask_token_id, k, threshold)
    # MDLM §3 (SUBS): unmasked tokens are carried over unchanged
    return torch.where(commit, x0, block)
