"""AR-init vs random-init MDLM training curves (same architecture, same data) and steps-to-loss:
the central A2D claim is that starting from the AR model reaches a loss in far fewer steps.

References: MDLM arXiv 2406.07524; DiffuLLaMA arXiv 2410.17891 (adapting AR models to diffusion).
"""

from __future__ import annotations

from pathlib import Path

import torch
from transformers import PrinterCallback

from a2dkit import convert, data
from a2dkit.data import preprocess
from a2dkit.training.trainers import MDLMTrainer
from a2dkit.tutorial.runs import load_source_model
from a2dkit.tutorial.scale_config import ScaleConfig

__all__ = ["INITS", "compare_inits", "moving_average", "packed_rows", "random_init_like"]
__all__ += ["steps_to_loss", "train_losses"]

INITS = ("ar_init", "random_init")


def random_init_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A model of the same class and config with fresh weights from its own initializer."""
    torch.manual_seed(seed)
    return type(model)(model.config).to(dtype=model.dtype, device=model.device)


def packed_rows(cfg: ScaleConfig, tokenizer, split: str = "train"):
    """``cfg.pretrain.dataset_args`` tokenized and packed into rows of ``cfg.pretrain.max_length``
    (no EOS)."""
    raw = data.load_dataset_args(cfg.pretrain.dataset_args)
    if split not in raw:
        raise ValueError(f"split={split!r} not in {cfg.pretrain.dataset_args!r}; have {list(raw)}")
    pt = cfg.pretrain
    fields = dict(text_field=pt.text_field, max_length=pt.max_length, insert_eos=False)
    return preprocess.tokenize_and_pack(raw[split], tokenizer, **fields)


def train_losses(model: torch.nn.Module, tokenizer, rows, args) -> list[float]:
    """Train ``model`` with ``MDLMTrainer(args)`` on ``rows``; returns the loss of each log step."""
    trainer = MDLMTrainer(
        model=model.train(),
        args=args,
        train_dataset=rows,
        data_collator=preprocess.DiffusionCollator(tokenizer),
        processing_class=tokenizer,
    )
    trainer.remove_callback(PrinterCallback)  # one log line per step: keep them in log_history
    trainer.train()
    return [e["loss"] for e in trainer.state.log_history if "loss" in e]


def compare_inits(
    cfg: ScaleConfig,
    output_dir: str | Path | None = None,
    *,
    max_steps: int | None = None,
    **overrides,
) -> dict[str, list[float]]:
    """MDLM-train the converted source model and a random-init twin on the same packed rows
    (same seed, so the same batches and masking noise: only the initial weights differ).

    Args:
        cfg: the scale (source model, data, batch size, learning rate, ``pretrain.mdlm_steps``).
        output_dir: trainers' output root (default ``cfg.output_dir("ar-vs-random")``).
        max_steps: optimizer steps of each run; default ``cfg.pretrain.mdlm_steps``.
        **overrides: more ``MDLMConfig`` fields (e.g. ``antithetic_t=True``).

    Returns:
        {"ar_init": [loss per step], "random_init": [loss per step]}.
    """
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps <= 0):
        raise ValueError(f"max_steps={max_steps!r} must be a positive int or None")
    root = Path(output_dir) if output_dir is not None else cfg.output_dir("ar-vs-random")
    source, tokenizer, _ = load_source_model(cfg)
    a2d, tokenizer, _ = convert.to_diffusion(source, tokenizer)
    rows = packed_rows(cfg, tokenizer)
    overrides |= {} if max_steps is None else {"max_steps": max_steps}
    curves = {}
    for name, model in (("ar_init", a2d), ("random_init", random_init_like(a2d))):
        args = cfg.training_args("mdlm", root / name, logging_steps=1, **overrides)
        curves[name] = train_losses(model, tokenizer, rows, args)
    return curves


def moving_average(losses: list[float], window: int) -> list[float]:
    """Trailing mean over the last ``window`` values (fewer at the start), same length."""
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"window={window!r} must be a positive int")
    out, total = [], 0.0
    for i, x in enumerate(losses):
        total += x - (losses[i - window] if i >= window else 0.0)
        out.append(total / min(i + 1, window))
    return out


def steps_to_loss(losses: list[float], target: float, window: int = 1) -> int | None:
    """First step (1-based) whose trailing ``window``-mean loss is <= ``target``; None if never."""
    smooth = moving_average(losses, window)
    return next((step for step, value in enumerate(smooth, start=1) if value <= target), None)
