"""The contract's verdicts: one ``ContractResult`` per check, the tolerance per dtype, and how a
result prints. Every check module (``checks``, ``window``, ``family_gate``) reports through these.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = [
    "CONTRACT_DTYPES",
    "TOLERANCE",
    "ContractResult",
    "tolerance",
    "max_diff",
    "format_result",
]

# one tolerance per dtype: differences <= it count as "equal", changes > it as "changed"
TOLERANCE: dict[torch.dtype, float] = {
    torch.float64: 1e-6,  # decisive: correct ~1e-12 or 0.0, wrong >= 1e-3
    torch.float32: 2e-3,  # 30-layer real model: correct up to ~5e-4; small leaks can hide here
    torch.bfloat16: 0.5,  # indicative only
    torch.float16: 0.5,
}


# the dtypes the contract runs in (``python -m a2dkit.contract --dtype``); float64 decides
CONTRACT_DTYPES = ("float64", "float32", "bfloat16")


@dataclass
class ContractResult:
    """One check: ``value`` is the measured max abs difference, compared with ``threshold``."""

    name: str
    passed: bool
    value: float
    threshold: float
    detail: str = ""


def tolerance(model) -> float:
    """The contract's tolerance for the model's dtype (see ``TOLERANCE``)."""
    if model.dtype not in TOLERANCE:
        raise ValueError(
            f"no contract tolerance for dtype={model.dtype}; use one of {list(CONTRACT_DTYPES)}"
        )
    return TOLERANCE[model.dtype]


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest absolute difference; a NaN anywhere counts as infinitely far (never a pass)."""
    diff = (a.double() - b.double()).abs()
    return float("inf") if diff.isnan().any() else diff.max().item()


def format_result(number: int, result: ContractResult) -> str:
    """One line: number, PASS/FAIL, name, measured value, threshold, detail."""
    status = "PASS" if result.passed else "FAIL"
    return (f"{number}. {status}  {result.name:32s} {result.value:.3g} "
            f"(threshold {result.threshold:g}) {result.detail}")  # fmt: skip
