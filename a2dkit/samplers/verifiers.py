"""Loading the AR verifier of speculative decoding, shared by the CLI (``--speculative``) and the
lm-eval models (``speculative=`` in ``--model_args``): the source a converted checkpoint records
in its ``a2d_manifest.json``, its vocabulary checked against the drafter's, its weights loaded
with the kit's safe loaders (no model code, no pickle, unless asked for).

References: speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192); MDLM arXiv
2406.07524.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from a2dkit.models.loading import check_weights, from_pretrained_safely, load_config, load_tokenizer

__all__ = ["MANIFEST", "manifest_source", "check_vocab", "load_ar_verifier"]

MANIFEST = "a2d_manifest.json"  # written beside every converted checkpoint (convert.on_disk)


def manifest_source(name: str, trust_remote_code: bool = False) -> str | None:
    """The source a converted checkpoint records (None: no manifest, e.g. a trained checkpoint;
    an AR checkpoint is its own source)."""
    path, config = load_config(name, trust_remote_code)
    if not config.model_type.startswith("a2d-"):
        return name
    manifest = Path(path) / MANIFEST
    if not manifest.is_file():
        return None
    return json.loads(manifest.read_text()).get("source", {}).get("name_or_path")


def check_vocab(tokenizer, verifier_tokenizer, path: str) -> None:
    """The drafter's vocabulary must be the verifier's plus (at most) its mask token."""
    drafter = dict(tokenizer.get_vocab())
    drafter.pop(tokenizer.mask_token, None)
    if drafter != verifier_tokenizer.get_vocab():
        extra = sorted(set(drafter) ^ set(verifier_tokenizer.get_vocab()))[:3]
        raise ValueError(
            f"verifier {path!r} has another tokenizer than the drafter ({len(drafter)} vs "
            f"{len(verifier_tokenizer)} tokens; e.g. {extra})"
        )


def load_ar_verifier(
    path: str,
    tokenizer,
    device: torch.device | str,
    *,
    dtype: str = "auto",
    trust_remote_code: bool = False,
    allow_pickle_weights: bool = False,
    attn_implementation: str | None = None,
) -> torch.nn.Module:
    """The AR model at ``path`` in eval mode on ``device``, after checking that its tokenizer is
    the drafter's (``tokenizer``, less its mask token).

    Args:
        dtype: ``"auto"`` (the checkpoint's) or a torch dtype name.

    Raises:
        ValueError: another vocabulary, or pickle weights without ``allow_pickle_weights``.
    """
    from transformers import AutoModelForCausalLM

    path, _ = load_config(path, trust_remote_code)
    check_weights(path, allow_pickle_weights)
    check_vocab(tokenizer, load_tokenizer(path, trust_remote_code), path)
    kwargs = dict(trust_remote_code=trust_remote_code,
                  use_safetensors=None if allow_pickle_weights else True,
                  dtype="auto" if dtype == "auto" else getattr(torch, dtype))  # fmt: skip
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    return from_pretrained_safely(AutoModelForCausalLM, path, kwargs).to(device).eval()
