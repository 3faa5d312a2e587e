"""MDLM sampler (LLaDA-style, semi-autoregressive blocks), exact or with Fast-dLLM's approximate
prefix / dual KV caches; ``threshold``: Fast-dLLM's confidence-threshold parallel decoding.

References: MDLM arXiv 2406.07524; LLaDA arXiv 2502.09992; Fast-dLLM arXiv 2505.22618 (§3.2).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Literal

import torch

from a2dkit.diffusion.denoise import guide
from a2dkit.models.forward import a2d_cache
from a2dkit.samplers.base import BaseSampler, Canvas, SamplerConfig, SamplerOutput, head_logits
from a2dkit.samplers.kv_cache import drop_columns, truncate

__all__ = ["MDLM_KV_CACHE_MODES", "MDLMSamplerConfig", "MDLMSampler"]

MDLM_KV_CACHE_MODES = ("none", "prefix", "dual")


@dataclass
class MDLMSamplerConfig(SamplerConfig):
    """MDLM sampling; ``block_size >= max_new_tokens`` means a single block (pure diffusion).

    ``kv_cache`` (Fast-dLLM §3.2), for semi-autoregressive sampling (``block_size <
    max_new_tokens``; otherwise a ValueError):

    * ``"none"``: exact, every step runs the whole canvas.
    * ``"prefix"``: at the first step of each block the whole canvas runs and the keys/values of
      the columns before the block are kept; the block's other steps run only the block and the
      masked suffix against them.
    * ``"dual"``: the suffix's keys/values are kept too; the other steps run only the block.

    Both are approximations: within a block, cached columns keep the keys/values of the canvas as
    it was at the block's first step, although bidirectional attention would let them see the
    tokens committed since. The first step of each block is exact (so a block filled in one step
    matches "none"), and so is a 1-layer model, whose keys/values depend only on their own token.
    With right-shifted logits the column left of the block is run with the block (not cached).
    ``bench/bench_decoding.py`` measures the agreement with "none" and the exact match.
    """

    kv_cache: Literal["none", "prefix", "dual"] = "none"

    def __post_init__(self):
        if self.kv_cache not in MDLM_KV_CACHE_MODES:
            raise ValueError(
                f"kv_cache={self.kv_cache!r} is not valid; choose one of {MDLM_KV_CACHE_MODES}"
            )
        super().__post_init__()
        if self.kv_cache != "none" and self.block_size >= self.max_new_tokens:
            raise ValueError(
                f"kv_cache={self.kv_cache!r} refreshes its cache at block boundaries, but "
                f"block_size={self.block_size} >= max_new_tokens={self.max_new_tokens} is a single "
                "block: use a block_size < max_new_tokens (semi-autoregressive) or kv_cache='none'"
            )


class MDLMSampler(BaseSampler):
    """LLaDA-style MDLM sampler: bidirectional over non-pads, blocks shorter than
    ``max_new_tokens`` denoised left to right (semi-autoregressive); the LM head runs only on the
    block. ``kv_cache="none"`` re-runs the whole canvas every step; see ``MDLMSamplerConfig``."""

    config_class = MDLMSamplerConfig

    def _generate(self, prompts: list[list[int]], config: SamplerConfig) -> SamplerOutput:
        c = self._canvas(prompts, max(len(p) for p in prompts), config.max_new_tokens)
        history, nfe = [c.ids.clone()] if config.return_history else None, 0
        total = c.ids.shape[1]
        for s in range(c.start, total, config.block_size):
            e = min(s + config.block_size, total)
            if config.kv_cache == "none":
                logits_fn = functools.partial(self._exact_logits, c, (s, e), config)
            else:
                logits_fn = _BlockCache(self, c, (s, e), config)
            nfe += self._denoise_block(c, (s, e), config, logits_fn, history)
        return SamplerOutput(c.ids, history, nfe, c.start, total, c.proposals)

    def _logits(self, c: Canvas, span, config: SamplerConfig, cache=None) -> torch.Tensor:
        """Run the whole canvas; logits of ``span`` (right-shifted: of the columns one to
        the left), (B', L, V) before guidance. ``cache`` (a DynamicCache) is filled if given."""
        x, valid, pos = self._batch(c, config)
        shift = int(config.right_shift_logits)  # prompts are non-empty then: span[0] >= 1
        keep = torch.arange(span[0] - shift, span[1] - shift, device=x.device)
        kw = dict(past_key_values=cache, use_cache=True) if cache is not None else {}
        return head_logits(self.model, x, keep, attention_mask=valid.long(), position_ids=pos,
                           **kw)  # fmt: skip

    def _exact_logits(self, c: Canvas, span, config: SamplerConfig) -> torch.Tensor:
        return guide(self._logits(c, span, config), config.cfg_scale)  # (B, L, V)


class _BlockCache:
    """Logits for the steps of one block with Fast-dLLM's prefix or dual cache (callable).

    The first call runs the whole canvas and keeps the keys/values of the prefix (and, "dual",
    of the suffix); later calls run the block (and, "prefix", the suffix) against them and crop
    what they appended, so every step sees the same cache. With right-shifted logits the column
    left of the block is run too (its logits predict the block's first token).
    """

    def __init__(self, sampler: MDLMSampler, c: Canvas, span, config: SamplerConfig):
        self.sampler, self.c, self.span, self.config = sampler, c, span, config
        self.first = span[0] - int(config.right_shift_logits)  # first column a step runs
        self.cache = None

    def __call__(self) -> torch.Tensor:
        logits = self._step() if self.cache is not None else self._refresh()
        return guide(logits, self.config.cfg_scale)  # (B, L, V)

    def _refresh(self) -> torch.Tensor:
        self.cache = a2d_cache(self.sampler.model.config)
        logits = self.sampler._logits(self.c, self.span, self.config, cache=self.cache)
        if self.config.kv_cache == "dual":
            drop_columns(self.cache, self.first, self.span[1])  # keeps [prefix; suffix]
        else:
            truncate(self.cache, self.first)  # keeps the prefix
        return logits

    def _step(self) -> torch.Tensor:
        (s, e), a, config = self.span, self.first, self.config
        x, valid, pos = self.sampler._batch(self.c, config)
        cached = self.cache.get_seq_length()
        if config.kv_cache == "dual":  # the keys sit in the order [prefix; suffix; block]
            q, keys = slice(a, e), torch.cat([valid[:, :a], valid[:, e:], valid[:, a:e]], dim=1)
        else:  # [prefix; block; suffix]
            q, keys = slice(a, x.shape[1]), valid
        n = q.stop - q.start
        mask = keys[:, None, None, :].expand(-1, 1, n, -1)  # (B', 1, n, T) bool, pads off
        keep = torch.arange(e - s, device=x.device)  # columns a .. a + L - 1 of the canvas
        logits = head_logits(self.sampler.model, x[:, q], keep, attention_mask=mask,
                             position_ids=pos[:, q], past_key_values=self.cache,
                             use_cache=True)  # fmt: skip
        truncate(self.cache, cached)  # the model appended the columns it ran
        return logits
