"""a2dkit: turn an autoregressive LM into a diffusion LM (MDLM, BD3LM).

Importing a2dkit registers the A2D model types (``a2d-qwen3``, ``a2d-llama``, ...) with the
transformers Auto classes, so converted and released Tiny-A2D checkpoints load without remote code.
Heavier parts (trainers, samplers, data) are imported on first use.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# convert (like testing and tiny) is imported lazily, so `python -m a2dkit.convert` runs it fresh
from a2dkit import attention, losses, masking, modeling, schedules  # noqa: E402

modeling.register_all()

# public name -> module that defines it (imported lazily by __getattr__)
_LAZY = {
    "SUPPORTED_MODEL_TYPES": "convert",
    "UnsupportedModelError": "convert",
    "detect": "convert",
    "identity_gate": "convert",
    "to_diffusion": "convert",
    "ModelArguments": "config",
    "DataArguments": "config",
    "MDLMConfig": "config",
    "BD3LMConfig": "config",
    "MDLMTrainer": "trainers",
    "BD3LMTrainer": "trainers",
    "PreemptionCallback": "trainers",
    "MDLMSampler": "samplers",
    "BD3LMSampler": "samplers",
    "MDLMSamplerConfig": "samplers",
    "BD3LMSamplerConfig": "samplers",
    "SamplerOutput": "samplers",
    "load_dataset_args": "data",
    "parse_dataset_args": "data",
    "DiffusionCollator": "preprocess",
    "make_synthetic_dataset": "synthetic",
    "load_tiny_shakespeare": "corpus",
}
_MODULES = (
    "config",
    "convert",
    "corpus",
    "curves",
    "data",
    "eval",
    "grpo",
    "lora",
    "preprocess",
    "quality",
    "samplers",
    "synthetic",
    "testing",
    "tiny",
    "trainers",
    "viz",
)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"a2dkit.{_LAZY[name]}"), name)
    if name in _MODULES:
        return importlib.import_module(f"a2dkit.{name}")
    raise AttributeError(f"module 'a2dkit' has no attribute {name!r}")


__all__ = [
    "__version__",
    "attention",
    "convert",
    "losses",
    "masking",
    "modeling",
    "schedules",
    *_LAZY,
]
