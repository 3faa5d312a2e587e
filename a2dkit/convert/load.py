"""Load a model for any entry point: a converted A2D checkpoint, or an AR one converted in memory.

Every check of ``a2dkit.models.loading`` runs first: custom code only with ``trust_remote_code``,
pickle weights only with ``allow_pickle_weights``, a cached Hub id loads offline.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (A2D checkpoints are standard HF ones).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from a2dkit.convert.core import to_diffusion
from a2dkit.models.loading import (
    check_a2d,
    check_weights,
    from_pretrained_safely,
    load_config,
    load_tokenizer,
    resolve_model_path,
)

__all__ = ["load_model", "load_ar_model", "manifest_source"]
MANIFEST = "a2d_manifest.json"  # written beside every converted checkpoint (convert.on_disk)


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


def load_ar_model(
    name: str | os.PathLike,
    *,
    trust_remote_code: bool = False,
    allow_pickle_weights: bool = False,
    **kwargs: Any,
):
    """(model, tokenizer) of an AR checkpoint as it is (e.g. a speculative verifier), with the
    same checks as ``load_model``; an A2D checkpoint is refused (run it in ``causal_mode``)."""
    from transformers import AutoModelForCausalLM

    path, config = load_config(name, trust_remote_code)
    if config.model_type.startswith("a2d-"):
        raise ValueError(f"{str(name)!r} is an A2D model (model_type={config.model_type!r}), "
                         "not an AR one")  # fmt: skip
    check_weights(path, allow_pickle_weights)
    tokenizer = load_tokenizer(path, trust_remote_code)
    kwargs |= dict(trust_remote_code=trust_remote_code)
    kwargs["use_safetensors"] = None if allow_pickle_weights else True
    return from_pretrained_safely(AutoModelForCausalLM, path, kwargs), tokenizer


def manifest_source(name: str | os.PathLike, trust_remote_code: bool = False) -> str | None:
    """The source a converted checkpoint records in its ``a2d_manifest.json`` (None: no manifest,
    e.g. a trained checkpoint; an AR checkpoint is its own source)."""
    path, config = load_config(name, trust_remote_code)
    if not config.model_type.startswith("a2d-"):
        return str(name)
    manifest = Path(resolve_model_path(path)) / MANIFEST
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("source", {}).get("name_or_path")
