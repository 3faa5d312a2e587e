"""The verifier of ``--speculative``: found before any weights load (``--verifier_path``, else the
source a converted checkpoint records in its ``a2d_manifest.json``), loaded with the kit's safe
loaders, and checked to share the drafter's vocabulary.

References: speculative decoding arXiv 2211.17192; MDLM arXiv 2406.07524.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from a2dkit.models.families import sliding_window
from a2dkit.models.loading import check_weights, from_pretrained_safely, load_config, load_tokenizer
from a2dkit.samplers.speculative import CausalVerifier

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


def verifier_path(args) -> str | None:
    """The verifier to load (``source``), found before any weights load; None for ``self``."""
    if args.speculative == "self":
        _, config = load_config(args.model_name_or_path, args.trust_remote_code)
        if sliding_window(config) is not None:
            raise ValueError(f"--speculative self: model_type={config.model_type!r} has no causal "
                             "path (a sliding window); use --speculative source")  # fmt: skip
        return None
    path = args.verifier_path or manifest_source(args.model_name_or_path, args.trust_remote_code)
    if path is None:
        raise ValueError(f"{args.model_name_or_path!r} records no source (no {MANIFEST}): pass "
                         "--verifier_path")  # fmt: skip
    _, config = load_config(path, args.trust_remote_code)  # missing: before the drafter loads
    if config.model_type.startswith("a2d-"):
        raise ValueError(f"verifier {path!r} is an A2D model; for its AR mode use --speculative "
                         "self with it as --model_name_or_path")  # fmt: skip
    return path


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


def load_verifier(args, path: str | None, model, tokenizer):
    """The AR verifier: ``path`` loaded as ``load_model`` loads (remote code and pickle weights
    only with their flags), or the drafter's own weights in causal mode (``self``)."""
    from transformers import AutoModelForCausalLM

    if path is None:
        return CausalVerifier(model)
    path, _ = load_config(path, args.trust_remote_code)
    check_weights(path, args.allow_pickle_weights)
    verifier_tokenizer = load_tokenizer(path, args.trust_remote_code)
    check_vocab(tokenizer, verifier_tokenizer, path)
    kwargs = dict(trust_remote_code=args.trust_remote_code,
                  use_safetensors=None if args.allow_pickle_weights else True,
                  dtype="auto" if args.dtype == "auto" else getattr(torch, args.dtype),
                  attn_implementation=args.attn_implementation)  # fmt: skip
    verifier = from_pretrained_safely(AutoModelForCausalLM, path, kwargs)
    return verifier.to(model.device).eval()
