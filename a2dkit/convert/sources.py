"""Conversion sources on disk: a HF checkpoint (safetensors, pickles on opt-in) or a GGUF file.

:func:`plan_source` runs every check that needs no weights (format, header, architecture, the
conversion verdict) so that bad input fails before anything is loaded or written;
:func:`load_source` then loads the AR model and tokenizer in the requested dtype.
References: dLLM A2D convert.py (same flags); GGUF loading via transformers' ``gguf_file``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

from a2dkit import _env
from a2dkit.convert import gguf
from a2dkit.convert.core import check_tokenizer, detect
from a2dkit.models.loading import load_config


@dataclass
class SourcePlan:
    """A checked source: what to load, and the provenance the manifest records."""

    name_or_path: str
    verdict: object  # core.Verdict
    config: object = None  # the source's transformers config
    gguf_file: str | None = None
    gguf_info: object = None  # gguf.GGUFInfo
    trust_remote_code: bool = False
    allow_pickle_weights: bool = False
    manifest: dict = field(default_factory=dict)


def torch_dtype(name: str, from_gguf: bool = False) -> torch.dtype | str:
    """``dtype`` flag -> what ``from_pretrained`` takes (``auto`` is float32 for GGUF)."""
    dtype = _env.torch_dtype(name)  # the checkpoint's own for "auto"; float32 for a GGUF file
    return torch.float32 if from_gguf and name == "auto" else dtype


def plan_source(
    name_or_path: str,
    gguf_file: str | None = None,
    trust_remote_code: bool = False,
    allow_pickle_weights: bool = False,
) -> SourcePlan:
    """Check a source without loading its weights; raise a clear error for anything wrong.

    Raises:
        ImportError: ``gguf_file`` given and the ``gguf`` package is missing.
        gguf.GGUFError: GGUF missing, truncated, corrupt or of an unmapped architecture.
        UnsupportedModelError: the architecture cannot be converted.
    """
    name = str(name_or_path)
    if gguf_file is None:
        config = load_config(name, trust_remote_code)[1]
        verdict = detect(config, trust_remote_code)
        verdict.raise_if_unsupported()
        weights = _source_weights(name, allow_pickle_weights)
        sha = _sha256_files(weights) if weights else None
        return SourcePlan(name, verdict, config, trust_remote_code=trust_remote_code,
                          allow_pickle_weights=allow_pickle_weights,
                          manifest={"name_or_path": name, "sha256": sha})  # fmt: skip
    from transformers import AutoConfig

    gguf.require_gguf()
    info = gguf.inspect_gguf(name, gguf_file)
    gguf.check_architecture(info)
    config = AutoConfig.from_pretrained(name, gguf_file=gguf_file)
    verdict = detect(config)
    verdict.raise_if_unsupported()
    manifest = {"name_or_path": name, "gguf_file": gguf_file, "sha256": info.sha256,
                "architecture": info.architecture, "quantization": info.file_type,
                "tensor_types": info.tensor_types}  # fmt: skip
    return SourcePlan(name, verdict, config, gguf_file=gguf_file, gguf_info=info,
                      manifest=manifest)  # fmt: skip


def load_source(plan: SourcePlan, dtype: str = "auto", attn_implementation: str = "sdpa"):
    """Load the planned AR source: (model, tokenizer); GGUF weights dequantised to ``dtype``."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if plan.gguf_file is not None:
        model, tokenizer, _ = gguf.load_gguf_causal_lm(
            plan.name_or_path, plan.gguf_file, torch_dtype(dtype, from_gguf=True), plan.gguf_info,
            attn_implementation=attn_implementation,
        )  # fmt: skip
        return model, tokenizer
    remote = plan.trust_remote_code
    tokenizer = AutoTokenizer.from_pretrained(plan.name_or_path, trust_remote_code=remote)
    check_tokenizer(tokenizer)  # before the weights load
    model = AutoModelForCausalLM.from_pretrained(
        plan.name_or_path,
        trust_remote_code=remote,
        attn_implementation=attn_implementation,
        use_safetensors=not plan.allow_pickle_weights or None,
        dtype=torch_dtype(dtype),
    )
    return model, tokenizer


def _source_weights(name: str, allow_pickle_weights: bool) -> list[Path]:
    """Local safetensors files of the source (empty for Hub ids); refuse pickles unless opted in."""
    path = Path(name)
    if not path.is_dir():
        return []
    safetensors = sorted(path.glob("*.safetensors"))
    pickles = sorted(path.glob("*.bin")) + sorted(path.glob("*.pt"))
    if not safetensors and pickles and not allow_pickle_weights:
        raise ValueError(
            f"{name!r} has only pickle weights ({pickles[0].name}); loading them can run code. "
            "Re-save as safetensors or pass --allow_pickle_weights True"
        )
    return safetensors or pickles


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        with open(path, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()
