"""The attention contract: float64 checks every converted model must pass (padding invariance, the
future reaching the past, BD3LM's staircase with a KV cache, block isolation, sliding windows),
and the per-family gate on a tiny random instance. ``python -m a2dkit.contract`` runs it.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2 staircase mask).
"""

from a2dkit.contract.checks import run_contract
from a2dkit.contract.family_gate import first_failure, gate_family, shrink_config
from a2dkit.contract.result import TOLERANCE, ContractResult, format_result, tolerance

__all__ = [
    "TOLERANCE",
    "ContractResult",
    "first_failure",
    "format_result",
    "gate_family",
    "run_contract",
    "shrink_config",
    "tolerance",
]
