"""Training losses: the MDLM weighted masked cross-entropy.

MDLM and BD3LM share ``mdlm_loss``; they differ only in the model inputs (``blocks.bd3lm_inputs``).
References: MDLM arXiv 2406.07524 (§3, NELBO); BD3LM arXiv 2503.09573 (§3.2, vectorized training).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from a2dkit._env import check_choice
from a2dkit.diffusion.schedules import Schedule

__all__ = [
    "NORM_TYPES",
    "LOSS_WEIGHT_TYPES",
    "masked_nll",
    "shift_logits_right",
    "loss_weights",
    "loss_denominator",
    "mdlm_loss",
    "next_token_nll",
]

NORM_TYPES = ("token", "sequence", "batch")
LOSS_WEIGHT_TYPES = ("scheduler", "uniform")


def masked_nll(logits: torch.Tensor, x0: torch.Tensor, masked: torch.Tensor) -> torch.Tensor:
    """Per-token negative log-likelihood -log p(x0 | x_t) on masked positions, 0 elsewhere.

    Only the masked rows are upcast, so bf16 logits cost (N_masked, V) extra float32 memory.

    Args:
        logits: (B, L, V) any float dtype.
        x0: (B, L) long, clean target ids.
        masked: (B, L) bool, positions that were masked in x_t.

    Returns:
        (B, L) float32 (float64 if logits are float64).
    """
    if logits.dim() != 3 or logits.shape[:2] != x0.shape or masked.shape != x0.shape:
        raise ValueError(
            f"expected logits (B, L, V), x0 (B, L), masked (B, L); got {tuple(logits.shape)}, "
            f"{tuple(x0.shape)}, {tuple(masked.shape)}"
        )
    if masked.dtype != torch.bool:
        raise TypeError(f"masked must be a bool tensor, got dtype={masked.dtype}")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    # MDLM §3 (SUBS): unmasked tokens are copied, so only masked positions carry a CE term
    ce = F.cross_entropy(logits[masked].to(dtype), x0[masked], reduction="none")  # (N,)
    return torch.zeros(x0.shape, dtype=dtype, device=x0.device).masked_scatter(masked, ce)


def shift_logits_right(logits: torch.Tensor) -> torch.Tensor:
    """Let position i use the logits of position i - 1 (AR-style "next token" head), as in dLLM.

    Position 0 keeps its own logits; it is normally a BOS / prompt token with label -100.

    Args:
        logits: (B, L, V).

    Returns:
        (B, L, V): ``cat([logits[:, :1], logits[:, :-1]], dim=1)``.
    """
    return torch.cat([logits[:, :1], logits[:, :-1]], dim=1)  # (B, L, V)


def loss_weights(
    t: torch.Tensor,
    schedule: Schedule,
    loss_weight_type: Literal["scheduler", "uniform"] = "scheduler",
) -> torch.Tensor:
    """Per-sequence loss weight.

    Args:
        t: (B,) float diffusion times.
        schedule: gives w(t) = -alpha'(t) / (1 - alpha(t)) for "scheduler".
        loss_weight_type: "scheduler" (the ELBO weight) or "uniform" (all ones, plain masked CE).

    Returns:
        (B,) float.
    """
    check_choice("loss_weight_type", loss_weight_type, LOSS_WEIGHT_TYPES)
    if loss_weight_type == "uniform":
        return torch.ones_like(t, dtype=torch.promote_types(t.dtype, torch.float32))
    return schedule.weight(t)  # (B,)


def loss_denominator(
    maskable: torch.Tensor, norm_type: Literal["token", "sequence", "batch"] = "token"
) -> torch.Tensor:
    """The quantity ``mdlm_loss`` divides by; sum it over micro-batches to get ``num_items``.

    Args:
        maskable: (B, L) bool, ``labels != -100``.
        norm_type: "token" -> number of maskable tokens; "sequence" / "batch" -> B.

    Returns:
        () float32 tensor on ``maskable``'s device.
    """
    check_choice("norm_type", norm_type, NORM_TYPES)
    if maskable.dim() != 2:
        raise ValueError(f"maskable must be (B, L); got shape {tuple(maskable.shape)}")
    if norm_type == "token":
        return maskable.sum().to(torch.float32)
    return torch.tensor(float(maskable.shape[0]), device=maskable.device)


def _per_token_weight(weight: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """(B,), (B, 1) or (B, L) weight -> broadcastable against (B, L)."""
    weight = torch.as_tensor(weight)
    if weight.dim() == 1 and weight.shape[0] == shape[0]:
        return weight[:, None]  # (B, 1)
    if weight.dim() == 2 and weight.shape[0] == shape[0] and weight.shape[1] in (1, shape[1]):
        return weight
    raise ValueError(
        f"weight has shape {tuple(weight.shape)}; expected ({shape[0]},) or ({shape[0]}, 1) "
        f"or {tuple(shape)}"
    )


def mdlm_loss(
    logits: torch.Tensor,
    x0: torch.Tensor,
    masked: torch.Tensor,
    maskable: torch.Tensor,
    weight: torch.Tensor,
    *,
    norm_type: Literal["token", "sequence", "batch"] = "token",
    right_shift_logits: bool = False,
    num_items: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """MDLM loss: w(t) * CE on masked positions, normalised by token, sequence or batch.

    Normalisations (S = summed weighted CE, n_b = maskable tokens of sequence b):
    "token": S / sum_b n_b; "sequence": sum_b (S_b / n_b) / B; "batch": S / B.
    With gradient accumulation pass ``num_items`` = the sum of ``loss_denominator`` over all
    micro-batches of the optimizer step; the micro-batch losses then add up to the full-batch loss.

    Args:
        logits: (B, L, V) model output on x_t (for BD3LM, the x_t half: ``bd3lm_logits``).
        x0: (B, L) long, clean targets.
        masked: (B, L) bool, masked positions of x_t.
        maskable: (B, L) bool, ``labels != -100`` (the denominator's tokens).
        weight: (B,) float, e.g. ``loss_weights(t, schedule)``; (B, L) also accepted.
        norm_type: "token", "sequence" or "batch".
        right_shift_logits: predict token i from the logits at i - 1 (``shift_logits_right``).
        num_items: global denominator; None uses this micro-batch's ``loss_denominator``.

    Returns:
        () float32 loss (float64 for float64 logits).
    """
    check_choice("norm_type", norm_type, NORM_TYPES)
    if maskable.shape != x0.shape:
        raise ValueError(f"maskable shape {tuple(maskable.shape)} != x0 shape {tuple(x0.shape)}")
    if right_shift_logits:
        logits = shift_logits_right(logits)
    nll = masked_nll(logits, x0, masked)  # (B, L)
    # MDLM §3 (NELBO): weight each masked token's CE by w(t) = -α'(t) / (1 - α(t))
    w = _per_token_weight(weight, x0.shape).to(device=nll.device, dtype=nll.dtype)  # (B, 1|L)
    # where(): an infinite w(t=0) must not turn the unmasked zeros into 0 * inf = nan
    weighted = torch.where(masked, nll * w, torch.zeros_like(nll))  # (B, L)
    if norm_type == "sequence":
        per_seq = maskable.sum(dim=1).clamp(min=1).to(nll.dtype)  # (B,)
        numerator = (weighted.sum(dim=1) / per_seq).sum()
    else:
        numerator = weighted.sum()
    denom = loss_denominator(maskable, norm_type) if num_items is None else num_items
    denom = torch.as_tensor(denom, dtype=nll.dtype, device=nll.device)
    return numerator / denom.clamp(min=1.0)


def next_token_nll(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int = -100):
    """Summed causal next-token cross-entropy: Σ_i CE(logits_{i-1}, x_i) over labelled i >= 1.

    The AR term of the joint AR + diffusion loss (Nemotron-Labs-Diffusion; I-DLM arXiv 2604.11035):
    the same weights, run under a causal mask, scored as the source AR model was trained.

    Args:
        logits: (B, L, V) of a causal forward; labels: (B, L) long, ``ignore_index`` = unscored.

    Returns:
        () float32 (float64 kept) sum over the scored tokens.
    """
    if logits.dim() != 3 or logits.shape[:2] != labels.shape:
        raise ValueError(f"logits (B, L, V) and labels (B, L) disagree: {tuple(logits.shape)}, "
                         f"{tuple(labels.shape)}")  # fmt: skip
    dtype = torch.promote_types(logits.dtype, torch.float32)
    pred, target = logits[:, :-1].to(dtype), labels[:, 1:]  # (B, L-1, V), (B, L-1)
    return F.cross_entropy(pred.flatten(0, 1), target.flatten(), ignore_index=ignore_index,
                           reduction="sum")  # fmt: skip
