"""What an A2D model is on the transformers side: the ``a2d-<family>`` classes and their
registration with the Auto classes, the mask-aware forward, what a converted model records (mask
token, shifted logits), and safe loading of configs and tokenizers.

Importing ``a2dkit`` imports this package, which registers the built-in families.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D (model_type ``a2d-<family>``).
"""

from a2dkit.models.conventions import (
    CLEAN_STREAMS,
    MASK_TOKEN,
    MASKABLE_ATTENTION,
    causal_clean_stream,
    check_attention_implementation,
    mask_token_id,
    trained_shift,
)
from a2dkit.models.families import UnsupportedModelError
from a2dkit.models.forward import A2DCache, A2DForwardMixin, a2d_cache, causal_mode
from a2dkit.models.loading import load_config, load_tokenizer
from a2dkit.models.registry import register, register_all, to_a2d_model

__all__ = [
    "CLEAN_STREAMS",
    "MASK_TOKEN",
    "MASKABLE_ATTENTION",
    "A2DCache",
    "A2DForwardMixin",
    "UnsupportedModelError",
    "a2d_cache",
    "causal_clean_stream",
    "causal_mode",
    "check_attention_implementation",
    "load_config",
    "load_tokenizer",
    "mask_token_id",
    "register",
    "register_all",
    "to_a2d_model",
    "trained_shift",
]
