"""Generic A2D families: ``a2d-<family>`` classes for any decoder-only transformers model type.

A family converts if its ``*ForCausalLM`` can be subclassed with ``forward.A2DForwardMixin``
and the contract holds on a tiny random instance (``a2dkit.contract.family_gate``). What can be said
from the config and the modeling source alone is said here, as named refusal reasons.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D (model_type ``a2d-<family>``).
"""

from __future__ import annotations

import functools
import importlib
import inspect

from transformers import PretrainedConfig
from transformers.models.auto import configuration_auto, modeling_auto

A2D_PREFIX = "a2d-"

# named refusal reasons (the keys the support matrix counts)
ENCODER_ONLY = "encoder-only"
ENCODER_DECODER = "encoder-decoder"
RECURRENT = "recurrent/SSM"
LINEAR_HYBRID = "linear-attention/SSM hybrid layers"
OWN_MASK = "own causal-mask code"
COMPOSITE = "composite (multimodal) config"
REMOTE_CODE = "remote code"
NO_CAUSAL_LM = "no causal-LM class"
WINDOW_TOO_LARGE = "window larger than the context"
ALREADY_A2D = "already non-causal"
CONTRACT = "contract failed"

REASONS_TEXT = {
    ENCODER_ONLY: "encoder-only model: already bidirectional and not an autoregressive LM",
    ENCODER_DECODER: "encoder-decoder model: A2D converts decoder-only LMs",
    RECURRENT: "state-space/recurrent model: no attention whose mask could be changed",
    LINEAR_HYBRID: "hybrid layers ({}) are causal by construction, whatever the mask",
    OWN_MASK: "the modeling code builds its own causal mask (no transformers mask factory), "
    "so is_causal=False and an explicit mask cannot open its attention",
    COMPOSITE: "composite config (sub-configs {}): convert its text model instead",
    REMOTE_CODE: "the config is not a transformers class (remote code); pass "
    "--trust_remote_code True to load it, then the contract decides",
    NO_CAUSAL_LM: "transformers has no causal-LM class for this model type",
    WINDOW_TOO_LARGE: "note: sliding_window={} is not smaller than max_position_embeddings={}: "
    "the window never cuts a key at this context, so its layers convert as full attention",
    ALREADY_A2D: "already non-causal (an A2D/diffusion checkpoint): nothing to convert",
}

_ENCODER_ONLY = frozenset(
    "bert bert-generation roberta roberta-prelayernorm xlm-roberta xlm-roberta-xl camembert "
    "data2vec-text electra ernie megatron-bert rembert roc_bert roformer xmod big_bird "
    "deberta deberta-v2 modernbert distilbert albert xlm xlnet".split()
)
_MODALITIES = frozenset({"text", "vision", "audio", "speech", "image", "video", "encoder"})
_RECURRENT = frozenset("mamba mamba2 falcon_mamba rwkv xlstm recurrent_gemma reformer".split())
# layer types that are attention whose mask a2dkit sets; anything else is a hybrid layer
ATTENTION_LAYER_TYPES = frozenset({"full_attention", "sliding_attention", "attention"})
SLIDING = "sliding_attention"
# names of the mask factory the generic mechanism relies on (masking_utils)
_MASK_FACTORY = (
    "create_causal_mask",
    "create_sliding_window_causal_mask",
    "create_masks_for_generate",
)


def causal_lm_model_types() -> list[str]:
    """Every model type the installed transformers has an ``AutoModelForCausalLM`` class for."""
    return sorted(modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


def is_a2d(model_type: str) -> bool:
    return model_type.startswith(A2D_PREFIX)


def a2d_model_type(family: str) -> str:
    """The ``model_type`` of a converted checkpoint, e.g. ``a2d-gemma``."""
    return f"{A2D_PREFIX}{family}"


@functools.cache
def _module(model_type: str):
    name = configuration_auto.model_type_to_module_name(model_type)
    return importlib.import_module(f"transformers.models.{name}")


def source_classes(model_type: str) -> tuple[type, type]:
    """(config class, causal-LM class) of a transformers model type; KeyError if it has none."""
    config_cls = configuration_auto.CONFIG_MAPPING[model_type]
    lm_name = modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[model_type]
    module = _module(model_type)
    lm_cls = getattr(module, lm_name, None) or getattr(
        importlib.import_module("transformers"), lm_name
    )
    return config_cls, lm_cls


def sliding_window(config: PretrainedConfig) -> int | None:
    """The window of the config's sliding layers, or None when every layer attends fully."""
    window = getattr(config, "sliding_window", None)
    if window is None or getattr(config, "use_sliding_window", True) is False:
        return None
    types = getattr(config, "layer_types", None)
    if types is not None and SLIDING not in types:
        return None
    return int(window)


def layer_kinds(config: PretrainedConfig) -> list[str]:
    """Per-layer attention kind: ``full_attention`` / ``sliding_attention`` (or a hybrid kind)."""
    types = getattr(config, "layer_types", None)
    if types is not None:
        return list(types)
    kind = SLIDING if sliding_window(config) is not None else "full_attention"
    return [kind] * config.num_hidden_layers


def _uses_mask_factory(lm_cls: type) -> bool:
    source = inspect.getsource(inspect.getmodule(lm_cls))
    return any(name in source for name in _MASK_FACTORY)


def _accepts_position_ids(lm_cls: type) -> bool:
    return "position_ids" in inspect.signature(lm_cls.forward).parameters


def check_attention_support(model_type: str, attn_implementation: str) -> None:
    """Refuse ``sdpa`` for a family whose modeling code has no sdpa path, naming the fix."""
    _, lm_cls = source_classes(model_type)
    if attn_implementation == "sdpa" and not getattr(lm_cls, "_supports_sdpa", True):
        raise ValueError(
            f"model_type={model_type!r} has no sdpa attention path in transformers "
            f"({lm_cls.__name__}._supports_sdpa is False); use --attn_implementation eager"
        )


def static_refusals(config: PretrainedConfig) -> list[tuple[str, str]]:
    """(reason key, explanation) pairs decidable from the config and modeling source alone."""
    mt = config.model_type
    if is_a2d(mt) or getattr(config, "is_causal", True) is False:
        return [(ALREADY_A2D, REASONS_TEXT[ALREADY_A2D])]
    if getattr(config, "is_encoder_decoder", False):
        return [(ENCODER_DECODER, REASONS_TEXT[ENCODER_DECODER])]
    if mt in _ENCODER_ONLY:
        return [(ENCODER_ONLY, REASONS_TEXT[ENCODER_ONLY])]
    if mt in _RECURRENT:
        return [(RECURRENT, REASONS_TEXT[RECURRENT])]
    foreign = mt not in configuration_auto.CONFIG_MAPPING_NAMES or getattr(config, "auto_map", None)
    if foreign and not type(config).__module__.startswith("transformers."):  # (a transformers
        return [(REMOTE_CODE, REASONS_TEXT[REMOTE_CODE])]  # class may merely carry an auto_map)
    if mt not in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return [(NO_CAUSAL_LM, REASONS_TEXT[NO_CAUSAL_LM])]
    modal = [
        k for k in getattr(config, "sub_configs", None) or {} if k.split("_")[0] in _MODALITIES
    ]
    if modal:
        return [(COMPOSITE, REASONS_TEXT[COMPOSITE].format(", ".join(sorted(modal))))]
    hybrid = sorted({t for t in getattr(config, "layer_types", None) or []} - ATTENTION_LAYER_TYPES)
    if hybrid:
        return [(LINEAR_HYBRID, REASONS_TEXT[LINEAR_HYBRID].format(", ".join(hybrid)))]
    _, lm_cls = source_classes(mt)
    reasons = []
    if not _uses_mask_factory(lm_cls) or not _accepts_position_ids(lm_cls):
        reasons.append((OWN_MASK, REASONS_TEXT[OWN_MASK]))
    return reasons


def window_note(config: PretrainedConfig) -> str | None:
    """What happens to the config's sliding window (None when it has none)."""
    window, context = sliding_window(config), getattr(config, "max_position_embeddings", None)
    if window is None:
        return None
    if context is not None and window >= context:
        return REASONS_TEXT[WINDOW_TOO_LARGE].format(window, context)
    return (
        f"keep the sliding window ({window} positions) in the MDLM, BD3LM training and "
        "block-sampling masks"
    )


class UnsupportedModelError(ValueError):
    """The model cannot be converted; the message names its ``model_type`` and every reason."""


def refusal_message(model_type: str, reasons: list[str]) -> str:
    """The one-line refusal of a model type, naming every reason and where the matrix is."""
    return (
        f"model_type={model_type!r} is not supported: {'; '.join(reasons)}. "
        "See book/support_matrix.md (python -m a2dkit.cli.support_matrix) for every family"
    )
