"""AR -> A2D conversion: detect from the config, convert in memory or on disk, load either kind.

``python -m a2dkit.convert`` converts a checkpoint (``a2dkit.cli.convert``).
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D convert.py (same flags).
"""

from a2dkit.convert.core import (
    Verdict,
    add_mask_token,
    check_tokenizer,
    detect,
    gate_batch,
    identity_gate,
    init_new_rows,
    to_diffusion,
)
from a2dkit.convert.load import load_model
from a2dkit.convert.on_disk import contract_gate, convert, manifest_dict
from a2dkit.models.conventions import MASK_TOKEN
from a2dkit.models.families import UnsupportedModelError

__all__ = [
    "MASK_TOKEN",
    "UnsupportedModelError",
    "Verdict",
    "add_mask_token",
    "check_tokenizer",
    "contract_gate",
    "convert",
    "detect",
    "gate_batch",
    "identity_gate",
    "init_new_rows",
    "load_model",
    "manifest_dict",
    "to_diffusion",
]
