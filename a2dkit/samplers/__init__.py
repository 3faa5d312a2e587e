"""Samplers for A2D models: MDLM (LLaDA-style, semi-autoregressive blocks, optional Fast-dLLM
prefix / dual KV caches) and BD3LM (block diffusion with a KV cache); both denoise with
``a2dkit.diffusion.denoise``. ``threshold``: Fast-dLLM decoding. ``speculative``: a drafter's
blocks (``drafters``) verified by an AR model, losslessly (``acceptance``: greedy, or speculative
sampling).

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992; Fast-dLLM
arXiv 2505.22618; speculative sampling arXiv 2211.17192.
"""

from a2dkit.samplers.base import BaseSampler, SamplerConfig, SamplerOutput, head_logits
from a2dkit.samplers.bd3lm import KV_CACHE_MODES, BD3LMSampler, BD3LMSamplerConfig
from a2dkit.samplers.drafters import Draft, SamplerDrafter, proposal_drafter, sampler_drafter
from a2dkit.samplers.mdlm import MDLM_KV_CACHE_MODES, MDLMSampler, MDLMSamplerConfig
from a2dkit.samplers.prompts import completion, encode
from a2dkit.samplers.speculative import (
    CausalVerifier,
    SpeculativeStats,
    VerifierStep,
    speculative_decode,
    speculative_decode_batch,
    speculative_greedy,
)

__all__ = [
    "SamplerOutput",
    "SamplerConfig",
    "BaseSampler",
    "MDLMSamplerConfig",
    "BD3LMSamplerConfig",
    "MDLMSampler",
    "BD3LMSampler",
    "KV_CACHE_MODES",
    "MDLM_KV_CACHE_MODES",
    "head_logits",
    "encode",
    "completion",
    "SpeculativeStats",
    "VerifierStep",
    "CausalVerifier",
    "Draft",
    "SamplerDrafter",
    "sampler_drafter",
    "proposal_drafter",
    "speculative_decode",
    "speculative_decode_batch",
    "speculative_greedy",
]
