"""What a converted model records and what it needs: its mask token, whether it was trained
with right-shifted logits, and the attention back-ends that can honour its masks.

Every sampler, trainer, ELBO and entry point asks these questions here, so each has one answer
and one error message. References: MDLM arXiv 2406.07524; DiffuLLaMA arXiv 2410.17891 (shift).
"""

from __future__ import annotations

import torch

__all__ = ["CLEAN_STREAMS", "MASK_TOKEN", "MASKABLE_ATTENTION", "check_attention_implementation",
           "causal_clean_stream", "mask_token_id", "trained_shift"]  # fmt: skip

MASK_TOKEN = "<|mask|>"  # the token conversion adds (dLLM's name)

# how a BD3LM checkpoint's clean prefix attends: BD3LM's block-causal, or TiDAR's token-causal
CLEAN_STREAMS = ("block", "causal")

# attention back-ends that can honour an arbitrary (bidirectional / staircase) mask
MASKABLE_ATTENTION = ("sdpa", "eager", "flex_attention")


def check_attention_implementation(impl: str | None) -> None:
    """Refuse attention back-ends that are causal-only (flash attention) with the reason."""
    if impl is not None and impl not in MASKABLE_ATTENTION:
        raise ValueError(
            f"attn_implementation={impl!r} cannot honour bidirectional or staircase masks "
            f"(it is causal-only); use one of {MASKABLE_ATTENTION}"
        )


def trained_shift(model: torch.nn.Module) -> bool:
    """Whether ``model`` was trained to predict token i from position i - 1 (DiffuLLaMA, Dream).

    The trainers record it as ``config.right_shift_logits``; a checkpoint without it (a fresh
    conversion, dLLM's releases) predicts token i at position i.
    """
    return bool(getattr(model.config, "right_shift_logits", False))


def causal_clean_stream(model: torch.nn.Module) -> bool:
    """Whether a BD3LM checkpoint was trained with a token-causal clean stream (``--clean_stream
    causal``, TiDAR arXiv 2511.08923 §3), so its prefix is encoded causally wherever it is read.

    The trainer records ``config.a2d_clean_stream``; a checkpoint without it is BD3LM's
    block-causal one. An unknown value is refused rather than read as either.
    """
    stream = getattr(model.config, "a2d_clean_stream", "block")
    if stream not in CLEAN_STREAMS:
        raise ValueError(f"config.a2d_clean_stream={stream!r} is not valid; one of {CLEAN_STREAMS}")
    return stream == "causal"


def mask_token_id(model: torch.nn.Module, tokenizer=None) -> int:
    """The mask token samplers and trainers use: the tokenizer's (the config's must agree), or,
    without a tokenizer, the one the conversion recorded in ``model.config.mask_token_id``.

    Raises:
        ValueError: with the fix that fits: a converted model whose tokenizer lost the mask token
            is told to load the tokenizer saved with it; an unconverted model to convert first.
    """
    config_id = getattr(getattr(model, "config", None), "mask_token_id", None)
    mask_id = config_id if tokenizer is None else getattr(tokenizer, "mask_token_id", None)
    if mask_id is None and config_id is not None:
        raise ValueError(
            f"the tokenizer has no mask token, but the model was converted with mask_token_id="
            f"{config_id}: load the tokenizer saved beside the converted model "
            f"(AutoTokenizer.from_pretrained(<its directory>)), which has {MASK_TOKEN}"
        )
    if mask_id is None:
        raise ValueError(
            "the model has no mask token (model.config.mask_token_id is unset and the tokenizer "
            f"has none): it is not a converted A2D model; convert it first with "
            f"python -m a2dkit.convert (or a2dkit.to_diffusion, which adds {MASK_TOKEN})"
        )
    if config_id is not None and config_id != mask_id:
        raise ValueError(
            f"tokenizer.mask_token_id={mask_id} differs from model.config.mask_token_id="
            f"{config_id}; a checkpoint trained so would not sample. Set one to the other"
        )
    return int(mask_id)
