"""The verifier of ``--speculative``: found before any weights load (``--verifier_path``, else the
source a converted checkpoint records in its ``a2d_manifest.json``), loaded with the kit's safe
loaders, and checked to share the drafter's vocabulary (``a2dkit.samplers.verifiers``).

References: speculative decoding arXiv 2211.17192; MDLM arXiv 2406.07524.
"""

from __future__ import annotations

from a2dkit.models.families import sliding_window
from a2dkit.models.loading import load_config
from a2dkit.samplers.speculative import CausalVerifier
from a2dkit.samplers.verifiers import MANIFEST, check_vocab, load_ar_verifier, manifest_source

__all__ = ["MANIFEST", "manifest_source", "check_vocab", "verifier_path", "load_verifier"]


def verifier_path(args) -> str | None:
    """The verifier to load (``source``), found before any weights load; None for ``self`` and
    ``one-pass`` (the drafter's own weights)."""
    if args.speculative in ("self", "one-pass"):
        _, config = load_config(args.model_name_or_path, args.trust_remote_code)
        if sliding_window(config) is not None:
            raise ValueError(f"--speculative {args.speculative}: model_type="
                             f"{config.model_type!r} has no causal path (a sliding window); use "
                             "--speculative source")  # fmt: skip
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


def load_verifier(args, path: str | None, model, tokenizer):
    """The AR verifier: ``path`` loaded as ``load_model`` loads (remote code and pickle weights
    only with their flags), or the drafter's own weights in causal mode (``self``)."""
    if path is None:
        return CausalVerifier(model)
    return load_ar_verifier(path, tokenizer, model.device, dtype=args.dtype,
                            trust_remote_code=args.trust_remote_code,
                            allow_pickle_weights=args.allow_pickle_weights,
                            attn_implementation=args.attn_implementation)  # fmt: skip
