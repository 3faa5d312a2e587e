"""The ``a2d-<family>`` classes: built from a transformers family, registered with the Auto classes.

``register(family)`` builds ``A2D<Name>Config`` / ``A2D<Name>LMHeadModel`` / ``A2D<Name>Model``
(the source classes with ``A2DForwardMixin`` in front) and publishes them in this module, so they
import by qualified name. ``to_a2d_model`` gives an in-memory AR model its A2D counterpart.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D (model_type ``a2d-<family>``).
"""

from __future__ import annotations

from transformers import PretrainedConfig, PreTrainedModel
from transformers.models.auto import configuration_auto, modeling_auto

from a2dkit.models.conventions import check_attention_implementation
from a2dkit.models.families import (
    A2D_PREFIX,
    UnsupportedModelError,
    _module,
    a2d_model_type,
    is_a2d,
    refusal_message,
    source_classes,
    static_refusals,
)
from a2dkit.models.forward import A2DForwardMixin

__all__ = [
    "FAMILIES",
    "A2D_CONFIGS",
    "A2D_MODELS",
    "build_classes",
    "register",
    "register_all",
    "refusal_reasons",
    "to_a2d_model",
]

# families registered at import (every other one registers on first lookup)
FAMILIES: tuple[str, ...] = ("qwen3", "qwen2", "llama", "mistral", "gpt2")
A2D_CONFIGS: dict[str, type] = {}  # "a2d-qwen3" -> A2DQwen3Config
A2D_MODELS: dict[str, type] = {}  # "a2d-qwen3" -> A2DQwen3LMHeadModel
# state-dict keys allowed to differ between the source and the A2D model (none today: same classes)
STATE_DICT_ALLOW_LIST: frozenset[str] = frozenset()


def _base_class(family: str) -> type | None:
    name = modeling_auto.MODEL_MAPPING_NAMES.get(family)
    return getattr(_module(family), name, None) if isinstance(name, str) else None


def build_classes(family: str) -> tuple[type, type, type | None]:
    """``A2D<Name>Config``, ``A2D<Name>LMHeadModel`` and ``A2D<Name>Model`` (None if no base)."""
    config_base, lm_base = source_classes(family)
    prefix = "A2D" + config_base.__name__.removesuffix("Config")
    model_type = a2d_model_type(family)

    def __init__(self, *args, is_causal: bool = False, **kwargs):
        config_base.__init__(self, *args, **kwargs)
        self.is_causal = is_causal  # honoured by transformers' mask factory (eager + sdpa)

    config_cls = type(
        f"{prefix}Config", (config_base,), {"model_type": model_type, "__init__": __init__}
    )
    lm_cls = type(
        f"{prefix}LMHeadModel",
        (A2DForwardMixin, lm_base),
        {"config_class": config_cls, "__module__": __name__},
    )
    base = _base_class(family)
    model_cls = None
    if base is not None:
        model_cls = type(
            f"{prefix}Model",
            (A2DForwardMixin, base),
            {"config_class": config_cls, "__module__": __name__},
        )
    config_cls.__module__ = __name__
    return config_cls, lm_cls, model_cls


def register(family: str) -> tuple[type, type]:
    """Build and register ``a2d-<family>`` with the Auto classes (idempotent)."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    model_type = a2d_model_type(family)
    if model_type in A2D_CONFIGS:
        return A2D_CONFIGS[model_type], A2D_MODELS[model_type]
    config_cls, lm_cls, model_cls = build_classes(family)
    for cls in (config_cls, lm_cls, model_cls):
        if cls is not None:
            globals()[cls.__name__] = cls  # importable by qualified name (a2dkit.models.registry)
    AutoConfig.register(model_type, config_cls, exist_ok=True)
    if model_cls is not None:
        AutoModel.register(config_cls, model_cls, exist_ok=True)
    AutoModelForMaskedLM.register(config_cls, lm_cls, exist_ok=True)
    A2D_CONFIGS[model_type] = config_cls
    A2D_MODELS[model_type] = lm_cls
    return config_cls, lm_cls


class _LazyA2DTable(dict):
    """``CONFIG_MAPPING._extra_content`` that builds ``a2d-<family>`` on first lookup."""

    def _build(self, key) -> bool:
        if dict.__contains__(self, key):
            return True
        if not isinstance(key, str) or not is_a2d(key):
            return False
        family = key.removeprefix(A2D_PREFIX)
        if family not in modeling_auto.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
            return False
        register(family)
        return dict.__contains__(self, key)

    def __contains__(self, key) -> bool:
        return self._build(key)

    def __getitem__(self, key):
        self._build(key)
        return dict.__getitem__(self, key)


def install_lazy_registration() -> None:
    """Any ``a2d-<family>`` config then resolves through AutoConfig / AutoModelForMaskedLM."""
    mapping = configuration_auto.CONFIG_MAPPING
    if not isinstance(mapping._extra_content, _LazyA2DTable):
        mapping._extra_content = _LazyA2DTable(mapping._extra_content)


def register_all() -> None:
    """Register the built-in families now and every other ``a2d-<family>`` on first lookup."""
    for family in FAMILIES:
        register(family)
    install_lazy_registration()


def refusal_reasons(config: PretrainedConfig) -> list[str]:
    """Every reason ``config`` cannot convert: the family's static refusals, then a causal-only
    attention back-end (flash attention). Empty when it converts (the contract decides next)."""
    reasons = [f"{key}: {text}" for key, text in static_refusals(config)]
    try:
        check_attention_implementation(getattr(config, "_attn_implementation", None))
    except ValueError as err:  # the one refusal of a causal-only back-end, worded once
        reasons.append(str(err))
    return reasons


def to_a2d_model(model: PreTrainedModel) -> PreTrainedModel:
    """The A2D counterpart of an in-memory AR model: same weights, ``model_type`` a2d-<family>."""
    reasons = refusal_reasons(model.config)
    if reasons:
        raise UnsupportedModelError(refusal_message(model.config.model_type, reasons))
    config_cls, lm_cls = register(model.config.model_type)
    cfg = model.config.to_dict()
    cfg.pop("model_type", None)
    cfg.pop("architectures", None)
    config = config_cls(**cfg, is_causal=False)
    config._attn_implementation = model.config._attn_implementation
    a2d = lm_cls(config).to(model.dtype)
    result = a2d.load_state_dict(model.state_dict(), strict=False)
    bad = (set(result.missing_keys) | set(result.unexpected_keys)) - STATE_DICT_ALLOW_LIST
    if bad:
        raise RuntimeError(f"state dict mismatch after conversion (not in the allow-list): {bad}")
    return a2d
