"""A2D model classes: the source architecture with non-causal attention and a mask-aware forward.

One generic mechanism for every supported family: ``config.is_causal = False`` (honoured by the
transformers 5.x mask factory for eager and sdpa) plus a forward that turns boolean 4-D masks into
additive ones: ``eager`` *adds* the mask to the scores, so a bool mask would be silently ignored.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D (model_type ``a2d-<family>``).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from a2dkit import families
from a2dkit.attention import bidirectional_padding_mask, padding_position_ids, to_additive_mask

# families registered at import (every other one registers on first lookup)
FAMILIES: tuple[str, ...] = ("qwen3", "qwen2", "llama", "mistral", "gpt2")
# attention back-ends that can honour an arbitrary (bidirectional / staircase) mask
MASKABLE_ATTENTION = ("sdpa", "eager", "flex_attention")

A2D_CONFIGS: dict[str, type] = {}  # "a2d-qwen3" -> A2DQwen3Config
A2D_MODELS: dict[str, type] = {}  # "a2d-qwen3" -> A2DQwen3LMHeadModel


a2d_model_type = families.a2d_model_type


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
    * 4-D boolean ``(B, 1, Q, K)``: True = may attend; converted to an additive bias. Without
      ``position_ids``, positions continue the cache (families like opt derive them from the mask).
    * 4-D float: treated as additive already. FlexAttention ``BlockMask``: passed through.
    * Sliding-window families: every mask is cut to ``|pos_q - pos_k| < window`` for the sliding
      layers (a dict keyed by layer type), by position so BD3LM's ``[x_t ; x_0]`` halves keep it.
    """

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        for module in self.modules():  # sdpa falls back to module.is_causal when a layer
            if module is not self and getattr(module, "is_causal", None) is True:  # gets no kwarg
                module.is_causal = False

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        check_attention_implementation(self.config._attn_implementation)
        ref = input_ids if input_ids is not None else kwargs["inputs_embeds"]
        batch, q_len = ref.shape[:2]
        window = families.sliding_window(self.config)
        cache = kwargs.get("past_key_values")
        if window is not None:
            if cache is None and kwargs.get("use_cache", self.config.use_cache):
                cache = kwargs["past_key_values"] = a2d_cache(self.config)
            _check_full_cache(cache)
        past = cache.get_seq_length() if cache is not None else 0
        if window is not None and (attention_mask is None or attention_mask.dim() == 2):
            keys = attention_mask
            if keys is None:
                keys = torch.ones(batch, past + q_len, dtype=torch.bool, device=ref.device)
            if position_ids is None:
                position_ids = padding_position_ids(keys)[:, -q_len:]  # (B, Q)
            attention_mask = bidirectional_padding_mask(keys, q_len)  # (B, 1, Q, K)
        if torch.is_tensor(attention_mask) and attention_mask.dim() == 4:
            if position_ids is None:  # positions continue the cache, never read off the mask
                position_ids = torch.arange(past, past + q_len, device=ref.device)[None]
                position_ids = position_ids.expand(batch, -1)
            if window is not None:
                attention_mask = self._window_masks(attention_mask, position_ids, cache, window)
            else:
                attention_mask = to_additive_mask(attention_mask, self.dtype)  # (B, 1, Q, K)
        elif torch.is_tensor(attention_mask) and attention_mask.dim() == 2 and position_ids is None:
            position_ids = padding_position_ids(attention_mask)[:, -q_len:]  # (B, Q)
        out = super().forward(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, **kwargs
        )
        if window is not None and cache is not None:
            cache.a2d_positions = _key_positions(cache, past, position_ids)
        return out

    def _window_masks(self, mask, position_ids, cache, window: int):
        """{layer type: additive (B, 1, Q, K) mask}: sliding layers see keys within the window."""
        past = mask.shape[-1] - position_ids.shape[1]
        keys = _key_positions(cache, past, position_ids)  # (B, K)
        near = (position_ids[:, :, None] - keys[:, None, :]).abs() < window  # (B, Q, K)
        full = to_additive_mask(mask, self.dtype)
        blocked = torch.finfo(self.dtype).min
        sliding = full.masked_fill(~near[:, None], blocked)
        if getattr(self.config, "layer_types", None) is None:  # every layer is a sliding layer
            return sliding
        return {"full_attention": full, families.SLIDING: sliding}


def a2d_cache(config) -> DynamicCache:
    """A KV cache for A2D models: full layers (the window lives in the mask), so crop rewinds."""
    if families.sliding_window(config) is not None:
        return DynamicCache()
    return DynamicCache(config=config)


def _check_full_cache(cache) -> None:
    if cache is not None and any(getattr(cache, "is_sliding", None) or ()):
        raise ValueError(
            "a sliding-window cache (DynamicCache(config=...)) drops keys the A2D window mask "
            "indexes and cannot be cropped; pass a2dkit.modeling.a2d_cache(config) instead"
        )


def _key_positions(cache, past: int, position_ids: torch.Tensor) -> torch.Tensor:
    """Positions of every key: the cached ones (recorded by earlier calls) then the new queries."""
    batch = position_ids.shape[0]
    prev = getattr(cache, "a2d_positions", None) if cache is not None else None
    if prev is None or prev.shape[1] < past or prev.shape[0] != batch:
        prev = torch.arange(past, device=position_ids.device)[None].expand(batch, -1)
    return torch.cat([prev[:, :past], position_ids], dim=1)


def register_all() -> None:
    """Register the built-in families now and every other ``a2d-<family>`` on first lookup."""
    for family in FAMILIES:
        families.register(family)
    families.install_lazy_registration()
