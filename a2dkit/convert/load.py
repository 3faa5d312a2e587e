"""Load a model for any entry point: a converted A2D checkpoint, or an AR one converted in memory.

Every check of ``a2dkit.models.loading`` runs first: custom code only with ``trust_remote_code``,
pickle weights only with ``allow_pickle_weights``, a cached Hub id loads offline.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (A2D checkpoints are standard HF ones).
"""

from __future__ import annotations

import os
from typing import Any

from a2dkit.convert.core import to_diffusion
from a2dkit.models.loading import (
    check_a2d,
    check_weights,
    from_pretrained_safely,
    load_config,
    load_tokenizer,
)

__all__ = ["load_model"]


def load_model(
    name: str | os.PathLike,
    *,
    trust_remote_code: bool = False,
    allow_pickle_weights: bool = False,
    require_a2d: bool = False,
    **kwargs: Any,
):
    """(model, tokenizer): a converted A2D checkpoint, or an AR one converted in memory.

    Args:
        name: local directory or Hub id (a cached one loads offline).
        require_a2d: refuse an unconverted model (``NotA2DModelError``) instead of converting it.
        kwargs: forwarded to ``from_pretrained`` (``dtype``, ``attn_implementation``).
    """
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    path, config = load_config(name, trust_remote_code)
    is_a2d = config.model_type.startswith("a2d-")
    if require_a2d:
        check_a2d(name, config)
    check_weights(path, allow_pickle_weights)
    tokenizer = load_tokenizer(path, trust_remote_code)
    kwargs |= dict(trust_remote_code=trust_remote_code)
    kwargs["use_safetensors"] = None if allow_pickle_weights else True  # Hub ids: no .bin
    if is_a2d:
        return from_pretrained_safely(AutoModelForMaskedLM, path, kwargs), tokenizer
    print(f"[a2dkit] {config.model_type!r} is an AR model: converting it in memory", flush=True)
    source = from_pretrained_safely(AutoModelForCausalLM, path, kwargs)
    model, tokenizer, _ = to_diffusion(source, tokenizer)
    return model, tokenizer
