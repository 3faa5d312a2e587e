"""BD3LM sampler: block diffusion with a KV cache (the prefix is encoded once, block by block).

References: BD3LM arXiv 2503.09573; Fast-dLLM arXiv 2505.22618 (``threshold``).
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from typing import Literal

import torch

from a2dkit.diffusion.attention import block_causal_mask
from a2dkit.diffusion.blocks import block_padding
from a2dkit.diffusion.denoise import guide
from a2dkit.models.conventions import causal_clean_stream
from a2dkit.models.forward import a2d_cache
from a2dkit.samplers.base import BaseSampler, Canvas, SamplerConfig, SamplerOutput, head_logits

__all__ = ["KV_CACHE_MODES", "BD3LMSamplerConfig", "BD3LMSampler"]

# "reuse": a2dkit's cache (prefix encoded once, cropped after each step); "card": the released
# model card's (prefix re-encoded every block, cache deep-copied every step), kept as a baseline
KV_CACHE_MODES = ("reuse", "card")


@dataclass
class BD3LMSamplerConfig(SamplerConfig):
    """BD3LM sampling; ``steps_per_block`` overrides ``ceil(steps / num_blocks)``;
    ``kv_cache`` in ``KV_CACHE_MODES`` (both give the same tokens; "card" only to compare speed)."""

    block_size: int = 32
    steps_per_block: int | None = None
    kv_cache: Literal["reuse", "card"] = "reuse"

    def __post_init__(self):
        if self.kv_cache not in KV_CACHE_MODES:
            raise ValueError(
                f"kv_cache={self.kv_cache!r} is not valid; choose one of {KV_CACHE_MODES}"
            )
        super().__post_init__()

    def _check_steps(self) -> None:
        if self.steps_per_block is None:
            return super()._check_steps()
        if not isinstance(self.steps_per_block, int) or self.steps_per_block <= 0:
            raise ValueError(f"steps_per_block={self.steps_per_block!r} must be positive or None")

    @property
    def block_steps(self) -> int:
        return self.steps_per_block or super().block_steps


class BD3LMSampler(BaseSampler):
    """Block diffusion with a KV cache: the prefix is encoded once and extended block by block;
    the steps of a block run only the block against the cache, which is rewound after each step
    (never copied). A row that produced EOS is finished: its later blocks are padding.
    """

    config_class = BD3LMSamplerConfig

    def _generate(self, prompts: list[list[int]], config: SamplerConfig) -> SamplerOutput:
        bs = config.block_size
        longest = max(len(p) for p in prompts)
        start = longest + block_padding(longest, bs)  # prompts left-padded to whole blocks
        c = self._canvas(prompts, start, config.max_new_tokens)
        history, total = ([c.ids.clone()] if config.return_history else None), c.ids.shape[1]
        cache, last, nfe = a2d_cache(self.model.config), None, 0
        finished = torch.zeros(len(prompts), dtype=torch.bool, device=c.ids.device)
        for s in range(start, total, bs):
            if s > 0 and (s == start or config.kv_cache == "card"):  # card: re-encode the prefix
                cache = a2d_cache(self.model.config)
                last, nfe = self._forward(cache, c, (0, s), config, keep=True), nfe + 1
            e = min(s + bs, total)
            c.ids[finished, s:e], c.valid[finished, s:e] = self.pad_id, False
            logits_fn = functools.partial(self._step_logits, cache, c, (s, e), config, last)
            nfe += self._denoise_block(c, (s, e), config, logits_fn, history)
            if self.eos_id is not None:
                finished |= (c.ids[:, s:e] == self.eos_id).any(-1)
            if finished.all() or e == total:
                break
            if config.kv_cache == "reuse":  # extend the cache with the finished block
                last, nfe = self._forward(cache, c, (s, e), config, keep=True), nfe + 1
        return self._finish(c, history, nfe, e)  # max_new_tokens > 0: the loop ran

    def _step_logits(self, cache, c: Canvas, span, config: SamplerConfig, last) -> torch.Tensor:
        logits = self._forward(cache, c, span, config, keep=False)  # (B, L, V)
        if config.right_shift_logits:  # position i predicts with the logits of i - 1
            logits = torch.cat([last, logits], dim=1)
        return logits

    def _forward(self, cache, c: Canvas, span, config: SamplerConfig, keep: bool):
        """Run columns ``span`` against the cached prefix -> guided logits.

        A denoising step (``keep=False``) needs the logits of the block, (B, L, V), or with right
        -shifted logits of all its columns but the last, (B, L - 1, V); a cache write
        (``keep=True``) only those of its last column, (B, 1, V), the right-shifted logits of the
        next block's first position. ``keep=False`` crops the cache back, because the model
        appends to a passed cache even with use_cache=False (transformers 5.x).
        """
        s, e = span
        x, valid, pos = self._batch(c, config)
        if not keep and config.kv_cache == "card":
            cache = copy.deepcopy(cache)  # the card copies the whole cache at every step
        # BD3LM §3: block b attends to blocks < b and bidirectionally within itself; a cache
        # write of a model trained with a causal clean stream (TiDAR) encodes the block causally
        size = 1 if keep and causal_clean_stream(self.model) else config.block_size
        mask = block_causal_mask(valid[:, :e], size)[:, :, s:e]  # (B', 1, L, e)
        # a cache write keeps its last column; a step all columns, or right-shifted all but the
        # last (column i predicts token i + 1; the block's first token reads ``last``)
        first, stop = (e - s - 1, e - s) if keep else (0, e - s - int(config.right_shift_logits))
        columns = torch.arange(first, stop, device=x.device)
        logits = head_logits(self.model, x[:, s:e], columns, attention_mask=mask,
                             position_ids=pos[:, s:e], past_key_values=cache,
                             use_cache=True)  # fmt: skip
        if not keep and config.kv_cache == "reuse":
            cache.crop(-(e - s))  # a negative argument drops that many trailing tokens
        return guide(logits, config.cfg_scale)

    def _finish(self, c: Canvas, history, nfe: int, end: int) -> SamplerOutput:
        """Blocks never reached (every row finished early) become padding."""
        left = c.ids[:, c.start :] == self.mask_id
        if left.any():
            c.ids[:, c.start :] = c.ids[:, c.start :].masked_fill(left, self.pad_id)
            if history is not None:
                history.append(c.ids.clone())
        return SamplerOutput(c.ids, history, nfe, c.start, end, c.proposals)
