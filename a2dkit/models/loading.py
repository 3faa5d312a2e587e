"""Safe loading for every entry point: a model's own Python code runs only with an explicit
``trust_remote_code=True``, pickle weights load only with ``allow_pickle_weights=True``, nothing
prompts on stdin, and a Hub id already in the local cache loads offline.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (A2D checkpoints are standard HF ones).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from a2dkit._env import hub_offline
from a2dkit.models.registry import register_all

__all__ = [
    "PICKLE_SUFFIXES",
    "ModelPathError",
    "NotA2DModelError",
    "RemoteCodeError",
    "PickleWeightsError",
    "resolve_model_path",
    "check_remote_code",
    "check_weights",
    "load_config",
    "check_a2d",
    "load_tokenizer",
    "from_pretrained_safely",
]

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")
CONVERT_HINT = "convert it first with python -m a2dkit.convert"


class ModelPathError(ValueError):
    """Neither a local directory with config.json nor a reachable (or cached) Hub id."""


class NotA2DModelError(ValueError):
    """An entry point that needs a converted model got an AR (or foreign) one."""


class RemoteCodeError(ValueError):
    """The checkpoint needs its own Python code and ``trust_remote_code`` was not given."""


class PickleWeightsError(ValueError):
    """The checkpoint holds only pickle weights and ``allow_pickle_weights`` was not given."""


def _not_found(name: str, why: str) -> ModelPathError:
    return ModelPathError(
        f"model path {name!r} not found (a local directory with config.json, or a Hub id): {why}"
    )


def _cached_snapshot(repo_id: str) -> str | None:
    """The local snapshot of a Hub id in the HF cache (``HF_HUB_CACHE`` read now), else None."""
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(
            repo_id, local_files_only=True, cache_dir=os.environ.get("HF_HUB_CACHE") or None
        )
    except (OSError, ValueError):  # not cached, or not a valid repo id
        return None
    return path if (Path(path) / "config.json").is_file() else None


def resolve_model_path(name: str | os.PathLike) -> str:
    """A local directory holding config.json, a cached Hub id's snapshot, or (online) the id.

    Raises:
        ModelPathError: a missing directory, one without config.json, or an uncached id offline.
    """
    name = str(name)
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise _not_found(name, f"the directory {str(path)!r} has no config.json")
        return str(path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise _not_found(name, "no such directory")
    cached = _cached_snapshot(name)
    if cached is not None:
        return cached
    if hub_offline():
        raise _not_found(name, "the Hub is offline (HF_HUB_OFFLINE=1) and it is not in the cache")
    return name  # a Hub id: transformers downloads it (safetensors only, see load_model)


def check_remote_code(path: str, trust_remote_code: bool) -> None:
    """Refuse a local checkpoint whose config names custom code (``auto_map``) for a model type
    transformers does not know, unless ``trust_remote_code`` (transformers would prompt)."""
    from transformers import CONFIG_MAPPING

    config_file = Path(path) / "config.json"
    if trust_remote_code or not config_file.is_file():
        return
    try:
        config = json.loads(config_file.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{str(config_file)!r} is not valid JSON: {err}") from err
    register_all()
    if "auto_map" in config and config.get("model_type") not in CONFIG_MAPPING:
        raise RemoteCodeError(
            f"model {path!r} needs its own Python code (config.json auto_map "
            f"{sorted(config['auto_map'])}, model_type={config.get('model_type')!r}); a2dkit never "
            "runs it unless you pass --trust_remote_code True (read that code first)"
        )


def check_weights(path: str, allow_pickle_weights: bool) -> None:
    """Refuse a local checkpoint with only pickle weights (unpickling can run code)."""
    folder = Path(path)
    if not folder.is_dir() or allow_pickle_weights:
        return
    files = [f for f in folder.iterdir() if f.is_file()]
    if any(f.name.endswith((".safetensors", ".safetensors.index.json")) for f in files):
        return
    pickles = sorted(f.name for f in files if f.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise PickleWeightsError(
            f"model {path!r} has only pickle weights ({pickles[0]}); loading them can run code. "
            "Re-save them as safetensors or pass --allow_pickle_weights True"
        )


def load_config(name: str | os.PathLike, trust_remote_code: bool = False):
    """(resolved path, ``PretrainedConfig``); never prompts, a2d-* types registered."""
    from transformers import AutoConfig

    register_all()
    path = resolve_model_path(name)
    check_remote_code(path, trust_remote_code)
    try:
        return path, AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        if isinstance(err, RemoteCodeError):
            raise
        raise ValueError(f"model_name_or_path={str(name)!r} could not be loaded: {err}") from err


def check_a2d(name: str | os.PathLike, config) -> None:
    """Refuse a config that is not a converted (``a2d-*``) model."""
    if not config.model_type.startswith("a2d-"):
        raise NotA2DModelError(
            f"not an A2D model: {str(name)!r} has model_type={config.model_type!r}; {CONVERT_HINT} "
            f"--model_name_or_path {name} --output_dir DIR"
        )


def load_tokenizer(name: str | os.PathLike, trust_remote_code: bool = False):
    """``AutoTokenizer`` from a local directory or a cached Hub id, never prompting."""
    from transformers import AutoTokenizer

    path = resolve_model_path(name) if not Path(str(name)).is_dir() else str(name)
    try:
        return AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise ValueError(f"tokenizer of {str(name)!r} could not be loaded: {err}") from err


def from_pretrained_safely(auto_cls, path: str, kwargs: dict):
    """``auto_cls.from_pretrained``; unreadable or truncated weights name the checkpoint."""
    from safetensors import SafetensorError

    try:
        return auto_cls.from_pretrained(path, **kwargs)
    except (OSError, SafetensorError, json.JSONDecodeError) as err:
        raise ValueError(
            f"model {path!r}: its weights could not be read ({type(err).__name__}: {err}); "
            "the checkpoint is incomplete or corrupt, re-save or re-convert it"
        ) from err
