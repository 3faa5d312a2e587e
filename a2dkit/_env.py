"""What every layer shares: the Hub's offline switch, the kit's cache, the label that losses
ignore, the names of the dtypes a flag may take, and the check of a flag's choice.

Nothing here imports a2dkit: every subpackage may import it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

__all__ = [
    "IGNORE_INDEX",
    "OFFLINE_FLAGS",
    "DTYPES",
    "MODEL_DTYPES",
    "hub_offline",
    "cache_dir",
    "torch_dtype",
    "check_choice",
]

IGNORE_INDEX = -100  # labels the loss never scores (prompt tokens, padding): PyTorch's default
# any of these set to 1 / true / yes / on keeps the kit off the Hub (huggingface_hub, datasets,
# transformers each read one of them)
OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE")
# the names a --dtype flag takes -> what from_pretrained takes ("auto": the checkpoint's own)
DTYPES: dict[str, torch.dtype | str] = {
    "auto": "auto",
    "float32": torch.float32,
    "bfloat16": torch.bfloat16,
    "float16": torch.float16,
    "float64": torch.float64,
}
# what a model may be loaded in for training, sampling and lm-eval (float64 is the contract's)
MODEL_DTYPES = ("auto", "float32", "bfloat16", "float16")


def hub_offline() -> bool:
    """True when any of ``OFFLINE_FLAGS`` is set to 1/true/yes/on (read now, not at import)."""
    flags = (os.environ.get(name, "") for name in OFFLINE_FLAGS)
    return any(flag.strip().lower() in ("1", "true", "yes", "on") for flag in flags)


def cache_dir() -> Path:
    """``$A2DKIT_CACHE`` or ``~/.cache/a2dkit``: where offline assets are built once (created)."""
    path = Path(os.environ.get("A2DKIT_CACHE") or Path.home() / ".cache" / "a2dkit")
    path.mkdir(parents=True, exist_ok=True)
    return path


def torch_dtype(name: str, choices: tuple[str, ...] | None = None) -> torch.dtype | str:
    """A dtype flag's value -> what ``from_pretrained`` takes; an unknown name (or one outside
    ``choices``) raises, listing the valid ones."""
    valid = tuple(DTYPES) if choices is None else choices
    if name not in valid:
        raise ValueError(f"dtype={name!r} is not supported; use one of {list(valid)}")
    return DTYPES[name]


def check_choice(name: str, value: object, valid: tuple) -> None:
    """``value`` must be one of ``valid``; the error names the option, the value and the choices."""
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {list(valid)}")
