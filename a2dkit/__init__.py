"""a2dkit: turn an autoregressive LM into a diffusion LM (MDLM, BD3LM).

Importing a2dkit registers the A2D model types (``a2d-qwen3``, ``a2d-llama``, ...) with the
transformers Auto classes, so converted and released Tiny-A2D checkpoints load without remote code.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

__version__ = "0.1.0"

from a2dkit import attention, convert, modeling  # noqa: E402
from a2dkit.convert import (  # noqa: E402
    SUPPORTED_MODEL_TYPES,
    UnsupportedModelError,
    detect,
    identity_gate,
    to_diffusion,
)

modeling.register_all()

__all__ = [
    "__version__",
    "attention",
    "modeling",
    "SUPPORTED_MODEL_TYPES",
    "UnsupportedModelError",
    "convert",
    "detect",
    "identity_gate",
    "to_diffusion",
]
