"""Distillation from the AR source: a KL term to the frozen source model's next-token
distribution, at the positions where the student's conditioning contains the teacher's.

The teacher (the source AR model) predicts token i from the clean prefix x_0[<i]. A masked
student position has that prefix clean when no earlier token of its unit is masked: the first
masked token of each row (MDLM) or of each block after the clean blocks (BD3LM). There the
student is pulled towards the source's distribution, KL(p_teacher || p_student).
References: OPDLM arXiv 2606.06712 (distilling an AR teacher into a diffusion LM); Uno's clean-copy
logit matching; BD3LM arXiv 2503.09573 §3 (block i is conditioned on clean blocks < i).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["clean_prefix_positions", "teacher_kl"]


def clean_prefix_positions(masked: torch.Tensor, unit: int | None = None) -> torch.Tensor:
    """The first masked position of each unit: masked, with no masked token before it in the unit.

    Args:
        masked: (B, L) bool. unit: tokens per unit (the BD3LM block size; must divide L), or None
            for the whole row (MDLM).

    Returns:
        (B, L) bool.
    """
    batch, seq_len = masked.shape
    if unit is None:
        unit = seq_len
    if unit <= 0 or seq_len % unit:
        raise ValueError(f"unit={unit} must be a positive divisor of the row length {seq_len}")
    grouped = masked.reshape(batch, seq_len // unit, unit)  # (B, L / unit, unit)
    first = grouped & (grouped.int().cumsum(dim=-1) == 1)  # the unit's first masked token
    return first.reshape(batch, seq_len)


def teacher_kl(
    student_logits: torch.Tensor, teacher_logits: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor:
    """Summed KL(p_teacher || p_student) over ``positions``, both logits scoring the same token.

    A student vocabulary larger than the teacher's (the added mask token) is scored on the
    teacher's ids only: log p_student is normalised over the student's full vocabulary, so the
    sum stays >= 0 and is 0 only when the student matches the teacher and puts no mass elsewhere.

    Args:
        student_logits: (B, L, V_s); teacher_logits: (B, L, V_t) with V_t <= V_s; positions:
            (B, L) bool.

    Returns:
        () float32 (float64 kept).
    """
    vocab = teacher_logits.shape[-1]
    if student_logits.shape[:2] != teacher_logits.shape[:2] or student_logits.shape[-1] < vocab:
        raise ValueError(
            f"student logits {tuple(student_logits.shape)} cannot be scored against "
            f"teacher logits {tuple(teacher_logits.shape)}"
        )
    dtype = torch.promote_types(student_logits.dtype, torch.float32)
    log_q = F.log_softmax(student_logits[positions].to(dtype), dim=-1)[:, :vocab]  # (N, V_t)
    log_p = F.log_softmax(teacher_logits[positions].to(dtype), dim=-1)  # (N, V_t)
    # KL(p || q) = Σ_v p_v (log p_v - log q_v)
    return (log_p.exp() * (log_p - log_q)).sum()
