"""LoRA (peft) and 4-bit loading for every training entry point (SFT, pretraining, GRPO).

``--lora_r > 0`` trains low-rank adapters on the linear layers; at the end the adapter is saved
in ``<output_dir>/lora-adapter`` and the merged model in ``checkpoint-final`` (a full A2D
checkpoint every other tool loads). ``--load_in_4bit`` (QLoRA) needs a CUDA GPU and bitsandbytes.
References: LoRA arXiv 2106.09685; QLoRA arXiv 2305.14314; dLLM's ``--lora_r`` flags.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

from a2dkit.training.config import ModelArguments

__all__ = ["ADAPTER_DIR", "lora_config", "quantization_kwargs", "apply_lora", "save_final"]

ADAPTER_DIR = "lora-adapter"


def lora_config(args: ModelArguments):
    """A ``peft.LoraConfig`` from the flags, or None when ``lora_r == 0``."""
    if args.lora_r == 0:
        return None
    from peft import LoraConfig

    targets = args.lora_target_modules
    modules = targets if targets == "all-linear" else [m.strip() for m in targets.split(",")]
    return LoraConfig(
        r=args.lora_r, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        target_modules=modules, bias="none",
    )  # fmt: skip


def quantization_kwargs(args: ModelArguments) -> dict[str, Any]:
    """``from_pretrained`` kwargs for ``--load_in_4bit`` (empty without it); raises on CPU or
    without bitsandbytes, naming what is missing."""
    if not args.load_in_4bit:
        return {}
    if not torch.cuda.is_available():
        raise ValueError("--load_in_4bit True needs a CUDA GPU (bitsandbytes 4-bit); none found")
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ValueError("--load_in_4bit True needs bitsandbytes: pip install bitsandbytes")
    from transformers import BitsAndBytesConfig

    config = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )  # fmt: skip
    return {"quantization_config": config}


def apply_lora(model, args: ModelArguments):
    """Wrap ``model`` in a peft ``PeftModel`` when ``--lora_r > 0`` (SFT / pretraining)."""
    config = lora_config(args)
    if config is None:
        return model
    from peft import get_peft_model, prepare_model_for_kbit_training

    if args.load_in_4bit:
        model = prepare_model_for_kbit_training(model)
    return get_peft_model(model, config)


def save_final(trainer, final: str | Path) -> None:
    """Save the trained model to ``final``: merged weights for a LoRA run (the adapter alone goes
    to ``<output_dir>/lora-adapter``), otherwise ``trainer.save_model``."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    if not hasattr(model, "merge_and_unload"):
        trainer.save_model(str(final))
        return
    adapter = Path(trainer.args.output_dir) / ADAPTER_DIR
    trainer.save_model(str(adapter))  # adapter_config.json + adapter weights (+ tokenizer)
    if trainer.args.should_save:
        merged = model.merge_and_unload()  # W + (alpha / r) B A, the adapter folded in
        merged.save_pretrained(str(final))
        trainer.processing_class.save_pretrained(str(final))
