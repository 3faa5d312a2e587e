"""A2D model classes: the source architecture with non-causal attention and a mask-aware forward.

One generic mechanism for every supported family: ``config.is_causal = False`` (honoured by the
transformers 5.x mask factory for eager and sdpa) plus a forward that turns boolean 4-D masks into
additive ones: ``eager`` *adds* the mask to the scores, so a bool mask would be silently ignored.
Read top-down: the cache, the two helpers of the forward (normalise the mask, cut the window),
then the mixin that composes them.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D (model_type ``a2d-<family>``).
"""

from __future__ import annotations

import contextlib

import torch
from transformers import DynamicCache

from a2dkit.diffusion.attention import (
    bidirectional_padding_mask,
    padding_position_ids,
    to_additive_mask,
)
from a2dkit.models.conventions import check_attention_implementation
from a2dkit.models.families import SLIDING, sliding_window

__all__ = ["A2DCache", "a2d_cache", "A2DForwardMixin", "causal_mode"]


class A2DCache(DynamicCache):
    """A full-layer KV cache that also remembers each cached key's position (B, K).

    Sliding-window families cut the window by position, not by column: BD3LM's ``[x_t ; x_0]``
    halves repeat positions, and left padding shifts them. Full layers keep every key, so
    ``crop`` rewinds exactly (a transformers sliding cache drops keys the window mask indexes).
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.key_positions: torch.Tensor | None = None  # (B, K), written after each forward


def a2d_cache(config) -> DynamicCache:
    """A KV cache for A2D models: full layers (the window lives in the mask), so crop rewinds."""
    if sliding_window(config) is not None:
        return A2DCache()
    return DynamicCache(config=config)


def _key_positions(prev: torch.Tensor | None, past: int, new: torch.Tensor) -> torch.Tensor:
    """(B, past + Q): the recorded positions of the cached keys (0..past-1 when unknown), then
    the queries' own."""
    batch = new.shape[0]
    if prev is None or prev.shape[1] < past or prev.shape[0] != batch:
        prev = torch.arange(past, device=new.device)[None].expand(batch, -1)
    return torch.cat([prev[:, :past], new], dim=1)


def _check_full_cache(cache) -> None:
    if cache is not None and any(getattr(cache, "is_sliding", None) or ()):
        raise ValueError(
            "a sliding-window cache (DynamicCache(config=...)) drops keys the A2D window mask "
            "indexes and cannot be cropped; pass a2dkit.models.a2d_cache(config) instead"
        )


def _normalise_mask(
    mask, position_ids, batch: int, q_len: int, past: int, device, windowed: bool, causal: bool
):
    """The model cards' four mask conventions -> (mask, position ids (B, Q) or None).

    None or a 2-D padding mask stays as it is (transformers makes it bidirectional) unless the
    window must cut it or ``causal_mode`` asks for the AR mask, which both need a 4-D mask;
    position ids then skip left padding. A 4-D mask without position ids continues the cache.
    A ``BlockMask`` passes through.
    """
    if (windowed or causal) and (mask is None or mask.dim() == 2):
        keys = mask if mask is not None else torch.ones(batch, past + q_len, dtype=torch.bool,
                                                        device=device)  # fmt: skip
        if position_ids is None:
            position_ids = padding_position_ids(keys)[:, -q_len:]  # (B, Q)
        if causal:
            mask = _causal_mask(keys, q_len, past)  # (B, 1, Q, K)
        else:
            mask = bidirectional_padding_mask(keys, q_len)  # (B, 1, Q, K)
    if torch.is_tensor(mask) and mask.dim() == 4 and position_ids is None:
        # positions continue the cache, never read off the mask (opt derives them from it)
        position_ids = torch.arange(past, past + q_len, device=device)[None].expand(batch, -1)
    elif torch.is_tensor(mask) and mask.dim() == 2 and position_ids is None:
        position_ids = padding_position_ids(mask)[:, -q_len:]  # (B, Q)
    return mask, position_ids


def _causal_mask(keys: torch.Tensor, q_len: int, past: int) -> torch.Tensor:
    """(B, 1, Q, K) bool: query ``past + q`` sees the real keys at or before it (the AR mask).

    Args:
        keys: (B, K) 1/True for real keys (K = past + Q).
    """
    query_pos = past + torch.arange(q_len, device=keys.device)  # (Q,)
    before = torch.arange(keys.shape[1], device=keys.device)[None] <= query_pos[:, None]  # (Q, K)
    return (before[None] & keys.bool()[:, None, :])[:, None]  # (B, 1, Q, K)


def _window_masks(mask, keys: torch.Tensor, position_ids, window: int, dtype, layer_types):
    """{layer type: additive (B, 1, Q, K) mask}: sliding layers see keys within the window.

    Args:
        keys: (B, K) position of every key; position_ids: (B, Q) of every query.
    """
    near = (position_ids[:, :, None] - keys[:, None, :]).abs() < window  # (B, Q, K)
    full = to_additive_mask(mask, dtype)
    sliding = full.masked_fill(~near[:, None], torch.finfo(dtype).min)
    if layer_types is None:  # every layer is a sliding layer
        return sliding
    return {"full_attention": full, SLIDING: sliding}


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

    a2d_causal = False  # True inside causal_mode(): None / 2-D masks become the AR mask

    def __init__(self, config, *args, **kwargs):
        super().__init__(config, *args, **kwargs)
        for module in self.modules():  # sdpa falls back to module.is_causal when a layer
            if module is not self and getattr(module, "is_causal", None) is True:  # gets no kwarg
                module.is_causal = False

    def forward(self, input_ids=None, attention_mask=None, position_ids=None, **kwargs):
        check_attention_implementation(self.config._attn_implementation)
        ref = input_ids if input_ids is not None else kwargs["inputs_embeds"]
        batch, q_len = ref.shape[:2]
        window = sliding_window(self.config)
        cache = kwargs.get("past_key_values")
        if window is not None and cache is None and kwargs.get("use_cache", self.config.use_cache):
            cache = kwargs["past_key_values"] = a2d_cache(self.config)
        if window is not None:
            _check_full_cache(cache)
        past = cache.get_seq_length() if cache is not None else 0
        mask, position_ids = _normalise_mask(
            attention_mask, position_ids, batch, q_len, past, ref.device,
            windowed=window is not None, causal=self.a2d_causal,
        )  # fmt: skip
        prev = cache.key_positions if isinstance(cache, A2DCache) else None
        if torch.is_tensor(mask) and mask.dim() == 4 and window is not None:
            keys = _key_positions(prev, mask.shape[-1] - q_len, position_ids)  # (B, K)
            layer_types = getattr(self.config, "layer_types", None)
            mask = _window_masks(mask, keys, position_ids, window, self.dtype, layer_types)
        elif torch.is_tensor(mask) and mask.dim() == 4:
            mask = to_additive_mask(mask, self.dtype)  # (B, 1, Q, K)
        out = super().forward(
            input_ids=input_ids, attention_mask=mask, position_ids=position_ids, **kwargs
        )
        if isinstance(cache, A2DCache):  # the positions of every key the cache now holds
            cache.key_positions = _key_positions(prev, past, position_ids)
        return out


@contextlib.contextmanager
def causal_mode(model: torch.nn.Module):
    """Run an A2D model as an AR model: a missing or 2-D padding mask becomes the causal one, so
    ``model.generate`` decodes left to right (a checkpoint trained with the joint AR loss,
    ``--ar_loss_weight``, is meant for it; a fresh conversion reproduces its source exactly).
    Explicit 4-D masks pass unchanged. Sliding-window families are refused (their window needs
    the A2D cache, which ``generate`` does not build)."""
    if not isinstance(model, A2DForwardMixin):
        raise TypeError(f"causal_mode needs an A2D model, got {type(model).__name__}")
    if sliding_window(model.config) is not None:
        raise ValueError(
            f"causal_mode: model_type={model.config.model_type!r} has a sliding window, which "
            "generate's cache cannot keep; sample it with the a2dkit samplers instead"
        )
    previous, model.a2d_causal = model.a2d_causal, True
    try:
        yield model
    finally:
        model.a2d_causal = previous
