"""Convert a checkpoint on disk: every check before the weights load, the contract on a tiny
instance of the family, the identity gate, then a standard HF checkpoint and its manifest.

Run: python -m a2dkit.convert --model_name_or_path Qwen/Qwen3-0.6B --output_dir models/a2d/Qwen3
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D convert.py (same flags).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import torch
from transformers import PretrainedConfig

from a2dkit._version import __version__
from a2dkit.contract.family_gate import first_failure, gate_family
from a2dkit.convert import sources
from a2dkit.convert.core import gate_batch, identity_gate, to_diffusion
from a2dkit.models.conventions import MASK_TOKEN, check_attention_implementation
from a2dkit.models.families import CONTRACT, UnsupportedModelError, check_attention_support
from a2dkit.models.loading import check_remote_code, resolve_model_path

__all__ = ["contract_gate", "manifest_dict", "convert"]


def contract_gate(config: PretrainedConfig, attn_implementation: str = "sdpa") -> dict:
    """The contract in float64 on a tiny random instance of ``config``'s family.

    Raises:
        UnsupportedModelError: naming the failing check and its number.
    """
    try:
        results = gate_family(config, attns=(attn_implementation,))
    except Exception as err:  # a family that builds but cannot even run the contract
        raise UnsupportedModelError(
            f"model_type={config.model_type!r} is refused: {CONTRACT}: the contract "
            f"could not run on a tiny instance ({type(err).__name__}: {err})"
        ) from err
    failure = first_failure(results)
    if failure is not None:
        raise UnsupportedModelError(
            f"model_type={config.model_type!r} is refused: {CONTRACT} on a tiny float64 "
            f"instance of the family: {failure}"
        )
    return {a: {r.name: r.value for r in checks} for a, checks in results.items()}


def manifest_dict(**entries) -> dict:
    """Versions and provenance written beside every converted checkpoint."""
    import transformers

    versions = {
        "a2dkit": __version__,
        "transformers": transformers.__version__,
        "torch": torch.__version__,
    }
    return {
        "versions": versions,
        **{k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v) for k, v in entries.items()},
    }


def _check_output_dir(output_dir: Path, overwrite: bool, source: str) -> None:
    if Path(source).is_dir() and output_dir.resolve() == Path(source).resolve():
        raise ValueError(
            f"output_dir={str(output_dir)!r} is the source model's directory; converting there "
            "would overwrite the source config and weights: choose another output_dir"
        )
    if output_dir.exists() and any(output_dir.iterdir()) and not overwrite:
        raise ValueError(
            f"output_dir={str(output_dir)!r} exists and is not empty; "
            "pass --overwrite True or choose another directory"
        )


def convert(
    model_name_or_path: str,
    output_dir: str | os.PathLike,
    *,
    overwrite: bool = False,
    trust_remote_code: bool = False,
    allow_pickle_weights: bool = False,
    attn_implementation: str = "sdpa",
    mask_token: str = MASK_TOKEN,
    gguf_file: str | None = None,
    dtype: str = "auto",
) -> Path:
    """Convert a checkpoint on disk (or on the Hub) and save a standard HF checkpoint + manifest.

    Every check (output dir, config or GGUF header, architecture, weight format, dtype) runs
    before the weights load; nothing is written unless the identity gate passes.

    Args:
        gguf_file: a GGUF file inside ``model_name_or_path`` to convert instead of safetensors
            (dequantised; needs ``pip install "a2dkit[gguf]"``).
        dtype: ``auto`` (the checkpoint's dtype; float32 for GGUF), ``float32``, ``bfloat16``, ...
    """
    out, name = Path(output_dir), str(model_name_or_path)
    if gguf_file is None:
        path = resolve_model_path(name)  # a cached Hub id -> its local snapshot
        check_remote_code(path, trust_remote_code)
    else:
        path = name  # a directory holding the GGUF file (no config.json)
    _check_output_dir(out, overwrite, path)
    check_attention_implementation(attn_implementation)
    sources.torch_dtype(dtype)  # validates the name
    plan = sources.plan_source(path, gguf_file, trust_remote_code, allow_pickle_weights)
    plan.manifest["name_or_path"] = name
    config = plan.config
    check_attention_support(config.model_type, attn_implementation)
    contract = contract_gate(config, attn_implementation)
    source, tokenizer = sources.load_source(plan, dtype, attn_implementation)
    converted, tokenizer, info = to_diffusion(source, tokenizer, mask_token)
    gate = identity_gate(source, converted, gate_batch(source.config.vocab_size))
    if not gate["passed"]:
        raise RuntimeError(f"identity gate failed, nothing saved: {gate}")
    out.mkdir(parents=True, exist_ok=True)
    converted.save_pretrained(out, safe_serialization=True)
    tokenizer.save_pretrained(out)
    manifest = manifest_dict(
        source=plan.manifest,
        dtype=str(converted.dtype).removeprefix("torch."),
        verdict=plan.verdict,
        identity_gate=gate,
        contract_tiny_float64=contract,
        **info,
    )
    (out / "a2d_manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
