"""GGUF checkpoints as conversion sources: inspect, dequantise, and rebuild a plain HF model.

transformers dequantises GGUF tensors on load (``from_pretrained(dir, gguf_file=...)``) but leaves
the GGUF quantizer attached, so ``save_pretrained`` raises; :func:`load_gguf_causal_lm` rebuilds the
same architecture without ``quantization_config`` and loads the dequantised state dict into it.
Needs the optional ``gguf`` package: ``pip install "a2dkit[gguf]"``.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch

GGUF_EXTRA = 'pip install "a2dkit[gguf]"  (or: pip install gguf)'


class GGUFError(ValueError):
    """A GGUF source that cannot be used; the message names the file and what is wrong."""


@dataclass(frozen=True)
class GGUFInfo:
    """What the GGUF header says: architecture, quantisation types and the file's sha256."""

    path: Path
    architecture: str
    file_type: str  # llama.cpp's general.file_type (e.g. MOSTLY_Q4_1)
    tensor_types: dict[str, int]  # quantisation type -> number of tensors
    sha256: str


def require_gguf() -> None:
    """Raise one clear ImportError when the optional ``gguf`` package is missing."""
    if importlib.util.find_spec("gguf") is None:
        raise ImportError(f"reading GGUF checkpoints needs the 'gguf' package: {GGUF_EXTRA}")


def gguf_path(model_dir: str | Path, gguf_file: str) -> Path:
    """``model_dir/gguf_file``, checked to exist and to start with the GGUF magic bytes."""
    path = Path(model_dir) / gguf_file
    if not path.is_file():
        raise GGUFError(f"GGUF file not found: {path} (gguf_file={gguf_file!r} in {model_dir})")
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic != b"GGUF":
        raise GGUFError(f"{path} is not a GGUF file (magic {magic!r}, expected b'GGUF')")
    return path


def inspect_gguf(model_dir: str | Path, gguf_file: str) -> GGUFInfo:
    """Read the header and tensor table (a truncated or corrupt file raises :class:`GGUFError`)."""
    require_gguf()
    path = gguf_path(model_dir, gguf_file)
    stat = path.stat()
    return _inspect(path, stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _inspect(path: Path, size: int, mtime_ns: int) -> GGUFInfo:
    """Parse once per file version (the tokenizer metadata alone takes seconds to read)."""
    import gguf

    try:
        reader = gguf.GGUFReader(str(path))
        arch = _field(reader, "general.architecture")
        ftype = (
            reader.fields["general.file_type"].parts[-1][0]
            if "general.file_type" in (reader.fields)
            else None
        )
        types: dict[str, int] = {}
        for tensor in reader.tensors:
            types[tensor.tensor_type.name] = types.get(tensor.tensor_type.name, 0) + 1
    except (ValueError, KeyError, IndexError, TypeError, OSError, EOFError, MemoryError) as err:
        raise GGUFError(f"{path} is truncated or corrupt: {type(err).__name__}: {err}") from err
    file_type = _file_type_name(gguf, ftype)
    return GGUFInfo(path, arch, file_type, types, _sha256(path))


def check_architecture(info: GGUFInfo) -> None:
    """Refuse an architecture transformers' GGUF loader does not map to a HF model class."""
    from transformers.modeling_gguf_pytorch_utils import GGUF_SUPPORTED_ARCHITECTURES

    if info.architecture not in GGUF_SUPPORTED_ARCHITECTURES:
        raise GGUFError(
            f"{info.path}: GGUF architecture {info.architecture!r} is not mapped by the "
            f"transformers GGUF loader; mapped: {sorted(GGUF_SUPPORTED_ARCHITECTURES)}"
        )


def load_gguf_causal_lm(
    model_dir: str | Path,
    gguf_file: str,
    dtype: torch.dtype = torch.float32,
    info: GGUFInfo | None = None,
    attn_implementation: str | None = None,
):
    """Dequantise a GGUF checkpoint into a plain ``*ForCausalLM`` (no quantizer attached).

    Args:
        info: :func:`inspect_gguf`'s result when the caller has it already (skips a re-read).

    Returns:
        (model, tokenizer, info): the model in eval mode, its weights exactly the dequantised
        tensors cast to ``dtype``; ``info`` is :func:`inspect_gguf`'s header summary.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info = inspect_gguf(model_dir, gguf_file) if info is None else info
    check_architecture(info)
    source = AutoModelForCausalLM.from_pretrained(
        model_dir, gguf_file=gguf_file, dtype=dtype, attn_implementation=attn_implementation
    )
    tokenizer = AutoTokenizer.from_pretrained(model_dir, gguf_file=gguf_file)
    config = source.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = type(source)(config)  # real (not meta) init: non-persistent buffers (RoPE) get data
    model.load_state_dict(source.state_dict(), strict=True)
    model.tie_weights()
    return model.to(dtype).eval(), tokenizer, info


def _field(reader, key: str) -> str:
    part = reader.fields[key].parts[-1]
    return bytes(part).decode("utf-8")


def _file_type_name(gguf, ftype) -> str:
    if ftype is None:
        return "unknown"
    try:
        return gguf.LlamaFileType(int(ftype)).name
    except ValueError:
        return f"file_type={int(ftype)}"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
