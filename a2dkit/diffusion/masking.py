"""The forward (noising) process of masked diffusion: sample t, then mask tokens with p_mask(t).

Only positions with a label (labels != -100) are ever masked; prompts and padding stay clean.
References: MDLM arXiv 2406.07524 (§3, forward masking process); BD3LM arXiv 2503.09573;
low-discrepancy time sampler from VDM arXiv 2107.00630; position-dependent masking after
Efficient-DLM (arXiv 2512.14067); complementary masking after LLaDA2.0 (arXiv 2512.15745) and
Fast-dLLM v2 (arXiv 2509.26328); semi-autoregressive blocks as LLaDA (arXiv 2502.09992) samples
them, scored as BD3LM's block NELBO (arXiv 2503.09573, §3).
"""

from __future__ import annotations

import torch

from a2dkit.diffusion.schedules import Schedule

__all__ = [
    "sample_t",
    "mask_tokens",
    "position_exponents",
    "positional_p_mask",
    "positional_weight",
    "complement_mask",
    "complement_time",
    "semi_ar_blocks",
    "sample_semi_ar_block",
    "semi_ar_p_mask",
    "semi_ar_weight",
]


def sample_t(
    batch_size: int,
    *,
    eps: float = 1e-3,
    antithetic: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw one diffusion time per sequence, t ~ U[eps, 1).

    Args:
        batch_size: B, number of sequences (>= 1).
        eps: lower bound ("time_epsilon" in dLLM) keeping w(t) = -alpha'/(1 - alpha) finite.
        antithetic: stratified / low-discrepancy sampling: one shared u ~ U[0, 1) and
            t_i = eps + (1 - eps) * ((u + i / B) mod 1), so each of the B strata of [eps, 1)
            holds exactly one t (lower-variance loss estimates, same marginal distribution).
        generator: optional torch.Generator for reproducibility (must live on ``device``).
        device: where to create t.

    Returns:
        t: (B,) float32 in [eps, 1).
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size={batch_size!r} must be a positive int")
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps={eps} must satisfy 0 <= eps < 1 (e.g. 1e-3)")
    if antithetic:
        u = torch.rand(1, generator=generator, device=device)  # (1,)
        strata = torch.arange(batch_size, device=device, dtype=torch.float32) / batch_size
        # MDLM training recipe: low-discrepancy sampler, one sample per stratum [i/B, (i+1)/B)
        unit = torch.remainder(u + strata, 1.0)  # (B,)
    else:
        unit = torch.rand(batch_size, generator=generator, device=device)  # (B,)
    return eps + (1.0 - eps) * unit  # (B,)


def _broadcast_p_mask(p_mask: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """(B,), (B, 1) or (B, L) -> something broadcastable against (B, L); validates shapes."""
    batch, seq_len = shape
    p_mask = torch.as_tensor(p_mask)
    if p_mask.dim() == 1 and p_mask.shape[0] == batch:
        return p_mask[:, None]  # (B, 1)
    if p_mask.dim() == 2 and p_mask.shape[0] == batch and p_mask.shape[1] in (1, seq_len):
        return p_mask  # (B, 1) or (B, L)
    raise ValueError(
        f"p_mask has shape {tuple(p_mask.shape)}; expected ({batch},), ({batch}, 1) "
        f"or ({batch}, {seq_len}) for x0 of shape ({batch}, {seq_len})"
    )


def mask_tokens(
    x0: torch.Tensor,
    p_mask: torch.Tensor,
    maskable: torch.Tensor,
    mask_token_id: int,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample x_t ~ q(x_t | x0): each maskable token becomes [MASK] independently w.p. p_mask.

    Args:
        x0: (B, L) long, clean token ids.
        p_mask: (B,) or (B, 1) float, 1 - alpha(t) per sequence; (B, L) also accepted (per token).
        maskable: (B, L) bool, True where masking is allowed (``labels != -100``).
        mask_token_id: id of the [MASK] token.
        generator: optional torch.Generator (on x0's device) for reproducible masks.

    Returns:
        xt: (B, L) long, x0 with the masked positions set to ``mask_token_id``.
        masked: (B, L) bool, True where xt was masked (always a subset of ``maskable``).
    """
    if x0.dim() != 2:
        raise ValueError(f"x0 must be (B, L); got shape {tuple(x0.shape)}")
    if maskable.shape != x0.shape or maskable.dtype != torch.bool:
        raise ValueError(
            f"maskable must be a bool tensor of shape {tuple(x0.shape)} (like x0); "
            f"got {maskable.dtype} {tuple(maskable.shape)}"
        )
    if isinstance(mask_token_id, bool) or not isinstance(mask_token_id, int) or mask_token_id < 0:
        raise ValueError(f"mask_token_id={mask_token_id!r} must be a non-negative int")
    p = _broadcast_p_mask(p_mask, x0.shape).to(device=x0.device, dtype=torch.float32)
    u = torch.rand(x0.shape, generator=generator, device=x0.device)  # (B, L)
    # MDLM §3 forward process: z_t = [MASK] w.p. 1 - alpha_t, else x0 (never for prompt/pad)
    masked = (u < p) & maskable  # (B, L)
    xt = torch.where(masked, torch.full_like(x0, mask_token_id), x0)  # (B, L)
    return xt, masked


def _maskable_rank(maskable: torch.Tensor) -> torch.Tensor:
    """(B, L) long: each token's 0-based rank among its row's maskable tokens."""
    return maskable.long().cumsum(dim=1) - 1


def position_exponents(maskable: torch.Tensor, strength: float) -> torch.Tensor:
    """k_i = exp(strength · (2 r_i - 1)): r_i in [0, 1] is token i's rank among its row's maskable
    tokens, so later tokens get larger exponents (masked more); ``strength`` 0 gives k = 1.

    Args:
        maskable: (B, L) bool. strength: >= 0.

    Returns:
        (B, L) float32 (1 where not maskable).
    """
    rank = _maskable_rank(maskable)  # (B, L)
    count = maskable.sum(dim=1, keepdim=True)  # (B, 1)
    r = rank / (count - 1).clamp(min=1)  # (B, L) in [0, 1]
    k = torch.exp(strength * (2 * r.float() - 1))
    return torch.where(maskable, k, torch.ones_like(k))


def positional_p_mask(schedule: Schedule, t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """Per-token masking probability 1 - α(t)^k: each token has its own schedule α_i = α^{k_i}.

    Args:
        t: (B,) or (B, L) times. k: (B, L) exponents (``position_exponents``).
    """
    t = t[:, None] if t.dim() == 1 else t
    return 1 - schedule.alpha(t) ** k  # (B, L)


def positional_weight(schedule: Schedule, t: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The per-token NELBO weight of α_i = α^{k_i}: w_i = -α_i' / (1 - α_i)
    = -k α^{k-1} α' / (1 - α^k) (MDLM §3 with a schedule per token; k = 1: -α'/(1 - α)).

    Args:
        t: (B,) or (B, L) times. k: (B, L) exponents.

    Returns:
        (B, L).
    """
    t = t[:, None] if t.dim() == 1 else t
    alpha, alpha_prime = schedule.alpha(t), schedule.alpha_prime(t)
    return -k * alpha ** (k - 1) * alpha_prime / (1 - alpha**k)


def complement_mask(
    x0: torch.Tensor, masked: torch.Tensor, maskable: torch.Tensor, mask_token_id: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """The complementary view: mask exactly the maskable tokens ``masked`` left clean, so every
    maskable token is scored in one of the two views (LLaDA2.0 / Fast-dLLM v2 SFT).

    Returns:
        xt: (B, L) long; masked: (B, L) bool, ``maskable & ~masked``.
    """
    other = maskable & ~masked
    return torch.where(other, torch.full_like(x0, mask_token_id), x0), other


def complement_time(p_mask, t: torch.Tensor, *, eps: float = 1e-3, iters: int = 60) -> torch.Tensor:
    """t' with p_mask(t') = 1 - p_mask(t), by bisection (p_mask increasing in t), kept >= eps so
    the complementary view's weight stays finite; elementwise for any shape of ``t``.

    Args:
        p_mask: callable t -> masking probability (e.g. ``schedule.p_mask``, or per token).
        t: times.
    """
    target = 1 - p_mask(t).double()
    lo, hi = torch.zeros_like(target), torch.ones_like(target)
    for _ in range(iters):  # 60 halvings: below float64 resolution
        mid = (lo + hi) / 2
        below = p_mask(mid) < target
        lo, hi = torch.where(below, mid, lo), torch.where(below, hi, mid)
    return ((lo + hi) / 2).clamp(min=eps).to(t.dtype)


def semi_ar_blocks(maskable: torch.Tensor, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Each maskable token's semi-AR block, counted from its row's first maskable token (rank //
    ``block_size``; -1 where not maskable), and each row's number of blocks (at least 1).

    Returns:
        block: (B, L) long; blocks: (B,) long.
    """
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size={block_size!r} must be a positive int")
    rank = _maskable_rank(maskable)  # (B, L)
    block = torch.where(maskable, rank.div(block_size, rounding_mode="floor"), -1)
    count = maskable.sum(dim=1)  # (B,)
    return block, (count + block_size - 1).div(block_size, rounding_mode="floor").clamp(min=1)


def sample_semi_ar_block(blocks: torch.Tensor) -> torch.Tensor:
    """One block per row, uniform over its ``blocks`` (B,) (one torch.rand draw of B)."""
    u = torch.rand(blocks.shape, device=blocks.device)
    return (u * blocks).floor().long().clamp(max=blocks - 1)  # (B,)


def semi_ar_p_mask(p_mask, block: torch.Tensor, current: torch.Tensor) -> torch.Tensor:
    """(B, L) masking probabilities of semi-AR sampling's canvas: ``p_mask`` inside each row's
    ``current`` block, 1 after it (still all masks), 0 before it (already decoded)."""
    p = _broadcast_p_mask(p_mask, block.shape).float().expand(block.shape)
    cur = current[:, None]  # (B, 1)
    return torch.where(block == cur, p, (block > cur).float())


def semi_ar_weight(
    weight: torch.Tensor, block: torch.Tensor, current: torch.Tensor, blocks: torch.Tensor
) -> torch.Tensor:
    """(B, L) loss weights: ``weight`` x the row's number of blocks inside its ``current`` block,
    0 elsewhere. A block drawn uniformly per row, scaled so, is an unbiased estimate of the sum of
    every block's NELBO given the blocks before it (BD3LM §3)."""
    w = weight if weight.dim() == 2 else weight[:, None]  # (B, L) or (B, 1)
    inside = block == current[:, None]  # (B, L)
    return torch.where(inside, w * blocks[:, None].to(w.dtype), torch.zeros_like(w))
