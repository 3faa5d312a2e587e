"""A scale's models: its source AR model, and its diffusion runs trained once and cached.

``load_diffusion_model`` trains with the kit's own CLIs (``a2dkit.cli.<algo>.<pt|sft>``) into
``<output_dir>/<algo>-<pt|sft>``, keyed by the flags and the training code, so a notebook reruns
in seconds and a changed recipe retrains. References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from pathlib import Path
from typing import Any

from a2dkit.training.checkpoints import FINAL
from a2dkit.tutorial import tiny
from a2dkit.tutorial.scale_config import Algo, ScaleConfig

__all__ = ["load_source_model", "load_diffusion_model", "run_dir", "training_log"]


def load_source_model(cfg: ScaleConfig, *, attn_implementation: str = "sdpa"):
    """The scale's source AR model and tokenizer, in eval mode.

    ``smoke``: the tiny AR Qwen3, pretrained once and cached (``tiny.build_tiny_ar``);
    ``laptop``: SmolLM2-135M-Instruct from ``tutorial.assets`` (offline, built once); otherwise
    ``AutoModelForCausalLM.from_pretrained(cfg.source.model)`` (needs the Hub or its cache).

    Returns:
        (model, tokenizer, info) where info is the tiny pretraining summary (or {}).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info: dict[str, Any] = {}
    if cfg.is_tiny:
        info = tiny.build_tiny_ar(cfg.tiny_ar_args())  # pretrains once, then reuses the cache
    path = cfg.source_name_or_path()
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=getattr(torch, cfg.hardware.dtype), attn_implementation=attn_implementation
    )
    return model.to(cfg.device).eval(), AutoTokenizer.from_pretrained(path), info


def load_diffusion_model(
    cfg: ScaleConfig,
    algo: Algo,
    *,
    sft: bool = False,
    max_steps: int | None = None,
    tag: str | None = None,
    extra_flags: list[str] | tuple[str, ...] = (),
):
    """The scale's trained A2D model: ``<output_dir>/<algo>-<pt|sft>/checkpoint-final``
    (``max_steps``: a shorter run, in ``<algo>-<pt|sft>-s<max_steps>``; GRPO starts there;
    ``tag``: a run of a changed ``cfg``, e.g. another ``sft.dataset_args``, in ``...-<tag>``,
    so it never replaces the scale's own run; ``extra_flags``: more training flags, e.g. a
    recipe's, last so they win; give such a run its own ``tag``).

    Trained once with ``a2dkit.cli.<algo>.<pt|sft>`` (chapters 3, 5 and 7 write the same path),
    then loaded from disk; SFT starts from the source model, as in the Tiny-A2D recipe.

    Returns:
        (model, tokenizer) in eval mode on ``cfg.device``.
    """
    import importlib

    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out = run_dir(cfg, algo, sft=sft, max_steps=max_steps, tag=tag)
    final, stamp = out / FINAL, out / "a2dkit_run.json"
    flags = ["--model_name_or_path", cfg.source_name_or_path(), "--output_dir", str(out)]
    flags += cfg.cli_flags(algo, sft=sft, max_steps=max_steps) + [
        "--use_cpu",
        str(cfg.hardware.use_cpu),
    ]
    flags += ["--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none"]
    flags += ["--disable_tqdm", "True", "--bf16", str(cfg.hardware.dtype == "bfloat16")]
    flags += ["--logging_steps", "0.05"]  # 20 points of loss curve (``training_log``)
    flags += list(extra_flags)
    key = json.dumps({"flags": flags, "code": _training_code_digest()})
    if not (final / "config.json").exists() or not stamp.exists() or stamp.read_text() != key:
        shutil.rmtree(out, ignore_errors=True)  # trained with other flags or code: retrain
        load_source_model(cfg)  # builds the tiny source model at smoke
        module = importlib.import_module(f"a2dkit.cli.{algo}.{'sft' if sft else 'pt'}")
        if module.cli(flags) != 0:
            raise RuntimeError(f"training {algo} ({'sft' if sft else 'pt'}) into {out} failed")
        stamp.write_text(key)  # written last: marks a finished run of exactly these flags
    model = AutoModelForMaskedLM.from_pretrained(final, dtype=getattr(torch, cfg.hardware.dtype))
    return model.to(cfg.device).eval(), AutoTokenizer.from_pretrained(final)


def run_dir(
    cfg: ScaleConfig,
    algo: Algo,
    *,
    sft: bool = False,
    max_steps: int | None = None,
    tag: str | None = None,
) -> Path:
    """Where ``load_diffusion_model`` keeps a run: ``<algo>-<pt|sft>[-s<max_steps>][-<tag>]``."""
    if tag is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", tag):
        raise ValueError(f"tag={tag!r} must be a directory name: letters, digits, '_', '.', '-'")
    shorter = max_steps is not None and max_steps > 0
    name = f"{algo}-{'sft' if sft else 'pt'}" + (f"-s{max_steps}" if shorter else "")
    return cfg.output_dir(name + (f"-{tag}" if tag else ""))


# what a training run depends on, inside the package: a cached run is stale when any of it changes
TRAINING_CODE = ("diffusion", "models", "convert", "data", "training", "cli/train.py")
PACKAGE = Path(__file__).resolve().parents[1]  # the a2dkit package


def _training_code_files() -> list[Path]:
    """Every Python file of ``TRAINING_CODE``, in a fixed order."""
    files = []
    for entry in TRAINING_CODE:
        path = PACKAGE / entry
        files += sorted(path.rglob("*.py")) if path.is_dir() else [path]
    return files


def _training_code_digest() -> str:
    """sha256 over the paths and bytes of ``_training_code_files``."""
    digest = hashlib.sha256()
    for f in _training_code_files():
        digest.update(f.relative_to(PACKAGE).as_posix().encode() + b"\0" + f.read_bytes())
    return digest.hexdigest()


def training_log(cfg: ScaleConfig, algo: Algo, *, sft: bool = False) -> list[dict[str, float]]:
    """The training-loss records ``{"step", "loss", ...}`` of ``load_diffusion_model``'s run.

    Raises:
        FileNotFoundError: that run has not been trained yet (call ``load_diffusion_model``).
    """
    state = cfg.output_dir(f"{algo}-{'sft' if sft else 'pt'}", FINAL)
    state = state / "trainer_state.json"
    if not state.is_file():
        raise FileNotFoundError(f"{state} not found: train it with load_diffusion_model first")
    return [r for r in json.loads(state.read_text())["log_history"] if "loss" in r]
