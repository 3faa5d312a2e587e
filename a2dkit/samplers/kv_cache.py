"""Column surgery on a transformers ``DynamicCache``: Fast-dLLM's approximate block caches, and
the accepted branch of a verified draft tree.

A cache holds, per layer, keys and values (B, H, T, D) with RoPE already applied, so attention
does not care in which order the cached columns sit: only the mask has to follow that order.
References: Fast-dLLM arXiv 2505.22618 (§3.2 prefix and dual cache).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

__all__ = ["drop_columns", "keep_columns", "truncate"]


def drop_columns(cache: DynamicCache, start: int, end: int) -> DynamicCache:
    """Remove columns ``start:end`` from every layer of ``cache`` (in place); returns it.

    Dual cache: after a full forward over [prefix; block; suffix] the cache keeps
    [prefix; suffix], and each denoising step appends the block at the end.
    """
    for layer in cache.layers:
        if getattr(layer, "is_initialized", True):
            layer.keys = torch.cat([layer.keys[..., :start, :], layer.keys[..., end:, :]], dim=-2)
            layer.values = torch.cat(
                [layer.values[..., :start, :], layer.values[..., end:, :]], dim=-2
            )
    return cache


def truncate(cache: DynamicCache, length: int) -> DynamicCache:
    """Keep the first ``length`` columns of ``cache`` (in place); returns it."""
    extra = cache.get_seq_length() - length
    if extra < 0:
        raise ValueError(f"cannot truncate a cache of {cache.get_seq_length()} to {length}")
    if extra:
        cache.crop(-extra)  # transformers 5.x: a negative argument drops trailing columns
    return cache


def keep_columns(cache: DynamicCache, past: int, columns: list[int]) -> DynamicCache:
    """Keep the first ``past`` columns and then ``past + c`` for each c of ``columns``, in that
    order (in place); returns it. Tree verification: only the accepted branch stays."""
    if columns == list(range(len(columns))):  # a prefix of the new columns: crop
        return truncate(cache, past + len(columns))
    index = torch.tensor([*range(past), *(past + c for c in columns)])
    for layer in cache.layers:
        if getattr(layer, "is_initialized", True):
            idx = index.to(layer.keys.device)
            layer.keys = layer.keys.index_select(-2, idx)
            layer.values = layer.values.index_select(-2, idx)
    return cache
