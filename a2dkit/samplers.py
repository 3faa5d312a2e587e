"""Samplers for A2D models: MDLM (LLaDA-style, semi-autoregressive blocks, optional Fast-dLLM
prefix / dual KV caches) and BD3LM (block diffusion with a KV cache); both use
``a2dkit.denoise``. ``threshold``: Fast-dLLM decoding. The code lives in ``samplers_base``,
``samplers_mdlm``, ``samplers_bd3lm`` and ``kv_cache``; this module re-exports it.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992; Fast-dLLM
arXiv 2505.22618.
"""

from __future__ import annotations

from a2dkit.samplers_base import SamplerConfig, SamplerOutput, head_logits, trained_shift
from a2dkit.samplers_bd3lm import KV_CACHE_MODES, BD3LMSampler, BD3LMSamplerConfig
from a2dkit.samplers_mdlm import MDLM_KV_CACHE_MODES, MDLMSampler, MDLMSamplerConfig

__all__ = [
    "SamplerOutput",
    "SamplerConfig",
    "MDLMSamplerConfig",
    "BD3LMSamplerConfig",
    "MDLMSampler",
    "BD3LMSampler",
    "KV_CACHE_MODES",
    "MDLM_KV_CACHE_MODES",
    "head_logits",
    "trained_shift",
]
