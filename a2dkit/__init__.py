"""a2dkit: turn an autoregressive LM into a diffusion LM (MDLM, BD3LM).

Importing a2dkit registers the A2D model types (``a2d-qwen3``, ``a2d-llama``, ...) with the
transformers Auto classes, so converted and released Tiny-A2D checkpoints load without remote code.
Every other subpackage (and the names below) is imported on first use.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import importlib

from a2dkit import models
from a2dkit._version import __version__

models.register_all()

# public name -> the subpackage that exports it (imported lazily by __getattr__)
_LAZY = {
    "UnsupportedModelError": "convert",
    "detect": "convert",
    "to_diffusion": "convert",
    "run_contract": "contract",
    "MDLMSampler": "samplers",
    "BD3LMSampler": "samplers",
    "MDLMSamplerConfig": "samplers",
    "BD3LMSamplerConfig": "samplers",
    "SamplerOutput": "samplers",
    "MDLMTrainer": "training",
    "BD3LMTrainer": "training",
    "MDLMConfig": "training",
    "BD3LMConfig": "training",
    "ModelArguments": "training",
    "DataArguments": "training",
    "load_dataset_args": "data",
    "DiffusionCollator": "data",
    "mdlm_elbo": "eval",
    "bd3lm_elbo": "eval",
}
SUBPACKAGES = (
    "diffusion",
    "models",
    "contract",
    "convert",
    "samplers",
    "data",
    "training",
    "eval",
    "grpo",
    "viz",
    "tutorial",
    "cli",
)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"a2dkit.{_LAZY[name]}"), name)
    if name in SUBPACKAGES:
        return importlib.import_module(f"a2dkit.{name}")
    raise AttributeError(f"module 'a2dkit' has no attribute {name!r}")


__all__ = ["__version__", *SUBPACKAGES, *_LAZY]
