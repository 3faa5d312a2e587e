"""The forward (noising) process of masked diffusion: sample t, then mask tokens with p_mask(t).

Only positions with a label (labels != -100) are ever masked; prompts and padding stay clean.
References: MDLM arXiv 2406.07524 (§3, forward masking process); BD3LM arXiv 2503.09573;
low-discrepancy time sampler from VDM arXiv 2107.00630.
"""

from __future__ import annotations

import torch

__all__ = ["sample_t", "mask_tokens"]


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
