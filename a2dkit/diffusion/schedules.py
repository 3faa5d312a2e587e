"""Noise schedules for masked diffusion: alpha(t) is the probability a token is still clean.

t runs from 0 (clean, alpha = 1) to 1 (fully masked, alpha = 0); p_mask(t) = 1 - alpha(t).
References: MDLM arXiv 2406.07524 (§3, continuous-time NELBO); BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch

__all__ = ["Schedule", "LinearSchedule", "CosineSchedule", "SCHEDULES", "make_schedule"]


def _as_float_tensor(t: torch.Tensor | float) -> torch.Tensor:
    """Python floats / integer tensors -> float32 tensor; float tensors are returned unchanged."""
    t = torch.as_tensor(t)
    return t if t.is_floating_point() else t.to(torch.float32)


class Schedule(ABC):
    """A masking schedule: subclasses define ``alpha`` and ``alpha_prime``; the rest follows.

    All methods are elementwise: ``t`` of any shape (e.g. (B,)) in [0, 1] gives the same shape.
    """

    name: str = "schedule"

    @abstractmethod
    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        """alpha(t): probability that a token of x0 is still unmasked in x_t."""

    @abstractmethod
    def alpha_prime(self, t: torch.Tensor | float) -> torch.Tensor:
        """d alpha / d t (<= 0: tokens only ever get masked as t grows)."""

    def p_mask(self, t: torch.Tensor | float) -> torch.Tensor:
        """p_mask(t) = 1 - alpha(t): per-token masking probability of the forward process."""
        return 1.0 - self.alpha(t)

    def weight(self, t: torch.Tensor | float) -> torch.Tensor:
        """ELBO weight w(t) = -alpha'(t) / (1 - alpha(t)); positive on (0, 1], infinite at t = 0.

        Args:
            t: diffusion times, any shape, float; sample them in [eps, 1) to keep w finite.
        """
        # MDLM §3 (continuous-time NELBO): w(t) = -α'(t) / (1 - α(t)) multiplies the masked CE
        return -self.alpha_prime(t) / self.p_mask(t)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class LinearSchedule(Schedule):
    """alpha(t) = 1 - t, so p_mask(t) = t and w(t) = 1 / t (the dLLM / LLaDA default)."""

    name = "linear"

    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        return 1.0 - _as_float_tensor(t)

    def alpha_prime(self, t: torch.Tensor | float) -> torch.Tensor:
        return -torch.ones_like(_as_float_tensor(t))

    def p_mask(self, t: torch.Tensor | float) -> torch.Tensor:
        # 1 - (1 - t) is not always t in floating point; return t itself so that w(t) == 1/t.
        return _as_float_tensor(t).clone()


class CosineSchedule(Schedule):
    """MDLM's cosine schedule alpha(t) = cos(pi t / 2) (``CosineNoise`` in the MDLM code, eps=0).

    Then p_mask(t) = 1 - cos(pi t / 2) and w(t) = (pi / 2) / tan(pi t / 4) ~ 2 / t near 0.
    Note: dLLM's ``CosineAlphaScheduler`` is the mirror image alpha(t) = 1 - sin(pi t / 2), which
    masks faster early on; a2dkit follows the MDLM paper here.
    """

    name = "cosine"

    def alpha(self, t: torch.Tensor | float) -> torch.Tensor:
        return torch.cos(0.5 * math.pi * _as_float_tensor(t))

    def alpha_prime(self, t: torch.Tensor | float) -> torch.Tensor:
        return -0.5 * math.pi * torch.sin(0.5 * math.pi * _as_float_tensor(t))

    def p_mask(self, t: torch.Tensor | float) -> torch.Tensor:
        # 1 - cos(x) = 2 sin^2(x / 2): no cancellation for small t, so w(t) stays accurate.
        return 2.0 * torch.sin(0.25 * math.pi * _as_float_tensor(t)) ** 2


SCHEDULES: dict[str, type[Schedule]] = {"linear": LinearSchedule, "cosine": CosineSchedule}


def make_schedule(name: str) -> Schedule:
    """Build a schedule by name (case-insensitive).

    Args:
        name: one of ``SCHEDULES`` ("linear", "cosine").

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"schedule name must be a str, got {type(name).__name__}: {name!r}")
    key = name.lower()
    if key not in SCHEDULES:
        raise ValueError(f"Unknown schedule {name!r}; valid: {sorted(SCHEDULES)}")
    return SCHEDULES[key]()
