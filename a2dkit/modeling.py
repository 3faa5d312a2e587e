"""A2D model classes: the source architecture with non-causal attention and a mask-aware forward.

One generic mechanism for every supported family: ``config.is_causal = False`` (honoured by the
transformers 5.x mask factory for eager and sdpa) plus a forward that turns boolean 4-D masks into
additive ones: ``eager`` *adds* the mask to the scores, so a bool mask would be silently ignored.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D (model_type ``a2d-<family>``).
"""

from __future__ import annotations

import importlib

import torch
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

from a2dkit.attention import padding_position_ids, to_additive_mask

# family -> (transformers module, config class, base model class, LM-head class)
FAMILIES: dict[str, tuple[str, str, str, str]] = {
    "qwen3": ("qwen3", "Qwen3Config", "Qwen3Model", "Qwen3ForCausalLM"),
    "qwen2": ("qwen2", "Qwen2Config", "Qwen2Model", "Qwen2ForCausalLM"),
    "llama": ("llama", "LlamaConfig", "LlamaModel", "LlamaForCausalLM"),
    "mistral": ("mistral", "MistralConfig", "MistralModel", "MistralForCausalLM"),
    "gpt2": ("gpt2", "GPT2Config", "GPT2Model", "GPT2LMHeadModel"),
}
# attention back-ends that can honour an arbitrary (bidirectional / staircase) mask
MASKABLE_ATTENTION = ("sdpa", "eager", "flex_attention")

A2D_CONFIGS: dict[str, type] = {}  # "a2d-qwen3" -> A2DQwen3Config
A2D_MODELS: dict[str, type] = {}  # "a2d-qwen3" -> A2DQwen3LMHeadModel


def a2d_model_type(family: str) -> str:
    """The ``model_type`` string of a converted checkpoint, e.g. ``a2d-qwen3``."""
    return f"a2d-{family}"


def check_attention_implementation(impl: str | None) -> None:
    """Refuse attention back-ends that are causal-only (flash attention) with the reason."""
    if impl is not None and impl not in MASKABLE_ATTENTION:
        raise ValueError(
            f"attn_implementation={impl!r} cannot honour bidirectional or staircase masks "
            f"(it is causal-only); use one of {MASKABLE_ATTENTION}"
        )


class A2DForwardMixin:
    """Normalises the calling convention of the released A2D model cards before the source forward.

    * ``attention_mask=None`` or a 2-D padding mask: fully bidirectional over the real tokens;
      position ids then skip left padding.
    * 4-D boolean ``(B, 1, Q, K)``: True = may attend; converted to an additive bias.
    * 4-D float: treated as additive already. FlexAttention ``BlockMask``: passed through.
    """

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        check_attention_implementation(self.config._attn_implementation)
        if torch.is_tensor(attention_mask) and attention_mask.dim() == 4:
            attention_mask = to_additive_mask(attention_mask, self.dtype)  # (B, 1, Q, K)
        elif torch.is_tensor(attention_mask) and attention_mask.dim() == 2 and position_ids is None:
            q_len = (input_ids if input_ids is not None else kwargs["inputs_embeds"]).shape[1]
            position_ids = padding_position_ids(attention_mask)[:, -q_len:]  # (B, Q)
        return super().forward(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs
        )


def _make_classes(family: str) -> tuple[type, type, type]:
    module_name, config_name, base_name, lm_name = FAMILIES[family]
    module = importlib.import_module(f"transformers.models.{module_name}")
    base_config, base_model, lm_model = (
        getattr(module, n) for n in (config_name, base_name, lm_name)
    )
    prefix = "A2D" + config_name.removesuffix("Config")
    model_type = a2d_model_type(family)

    def __init__(self, *args, is_causal: bool = False, **kwargs):
        base_config.__init__(self, *args, **kwargs)
        self.is_causal = is_causal  # honoured by transformers' mask factory (eager + sdpa)

    config_cls = type(
        f"{prefix}Config", (base_config,), {"model_type": model_type, "__init__": __init__}
    )
    attrs = {"config_class": config_cls, "__module__": __name__}
    model_cls = type(f"{prefix}Model", (A2DForwardMixin, base_model), dict(attrs))
    lm_cls = type(f"{prefix}LMHeadModel", (A2DForwardMixin, lm_model), dict(attrs))
    config_cls.__module__ = __name__
    return config_cls, model_cls, lm_cls


def register_all() -> None:
    """Register every A2D family with the transformers Auto classes (idempotent)."""
    for family in FAMILIES:
        model_type = a2d_model_type(family)
        if model_type in A2D_CONFIGS:
            continue
        config_cls, model_cls, lm_cls = _make_classes(family)
        globals()[config_cls.__name__] = config_cls
        globals()[model_cls.__name__] = model_cls
        globals()[lm_cls.__name__] = lm_cls
        AutoConfig.register(model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, model_cls, exist_ok=True)
        AutoModelForMaskedLM.register(config_cls, lm_cls, exist_ok=True)
        A2D_CONFIGS[model_type] = config_cls
        A2D_MODELS[model_type] = lm_cls
