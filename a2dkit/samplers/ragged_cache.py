"""A verifier's KV cache for a batch whose rows hold different numbers of tokens.

Speculative decoding accepts a different number of drafted tokens in every row. Rather than
rewinding each row to its own length, every forward appends the same number of columns to all
rows, and a (B, S) key mask records which columns are real: left padding, a finished row's
columns, and the drafted tokens a row rejected are holes that no later query attends to. Each
row's position ids count its real tokens only, so a row sees exactly what it would see alone.
Trailing columns that no row keeps are cropped, so a batch of one never holds a hole.
References: speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §2.3); padded batched
decoding as in transformers' ``generate`` (a 2-D attention mask over the cache).
"""

from __future__ import annotations

import torch
from transformers import DynamicCache

from a2dkit.samplers.kv_cache import truncate

__all__ = ["RaggedCache"]


class RaggedCache:
    """A ``DynamicCache`` with a per-row key mask and per-row token counts."""

    def __init__(self, batch: int, device: torch.device | str):
        self.cache = DynamicCache()
        self.keys = torch.zeros(batch, 0, dtype=torch.bool, device=device)  # (B, S)
        self.lengths = torch.zeros(batch, dtype=torch.long, device=device)  # real tokens per row

    @property
    def columns(self) -> int:
        return self.keys.shape[1]

    @torch.no_grad()
    def forward(self, model, ids: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """(B, Q, V) logits of ``ids`` (B, Q) appended to every row; ``valid`` (B, Q) bool marks
        the real tokens (each row's real tokens first, its padding after)."""
        positions = self.lengths[:, None] + valid.long().cumsum(1) - 1  # real tokens count up
        mask = torch.cat([self.keys, valid], dim=1)  # (B, S + Q)
        out = model(input_ids=ids, attention_mask=mask.long(), position_ids=positions.clamp(min=0),
                    past_key_values=self.cache, use_cache=True)  # fmt: skip
        self.keys, self.lengths = mask, self.lengths + valid.sum(1)
        return out.logits

    def keep(self, row: int, start: int, n: int, appended: int) -> None:
        """Of the ``appended`` columns the last forward gave ``row`` from column ``start``, keep
        the first ``n`` (the pending token and the accepted draft); the rest become holes."""
        drop = self.keys[row, start + n : start + appended]
        self.lengths[row] -= drop.sum()
        self.keys[row, start + n : start + appended] = False

    def crop(self) -> None:
        """Drop the trailing columns no row keeps."""
        real = self.keys.any(0).nonzero()
        length = int(real[-1]) + 1 if len(real) else 0
        if length < self.columns:
            truncate(self.cache, length)
            self.keys = self.keys[:, :length]
