"""BD3LM blocks: the ``[x_t ; x_0]`` training input, its logits, and padding to whole blocks.

References: BD3LM arXiv 2503.09573 (§3.2, vectorized training; Eq. 3, the block factorisation).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from a2dkit.diffusion import attention
from a2dkit.diffusion.losses import shift_logits_right

__all__ = [
    "block_padding",
    "pad_to_blocks",
    "bd3lm_inputs",
    "bd3lm_logits",
    "bd3lm_shift_columns",
    "bd3lm_shift_logits_right",
]


def check_block_size(block_size: int) -> None:
    """A block size is a positive int (never a bool)."""
    if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1:
        raise ValueError(f"block_size={block_size!r} must be a positive int (e.g. 32)")


def block_padding(length: int, block_size: int) -> int:
    """Tokens that round ``length`` up to a whole number of blocks (0 when it already is)."""
    check_block_size(block_size)
    return -length % block_size


def pad_to_blocks(
    x: torch.Tensor, block_size: int, *, side: Literal["left", "right"] = "right", value=0
) -> torch.Tensor:
    """(B, L) -> (B, L'), L' the next multiple of ``block_size``, padded on ``side`` with ``value``.

    BD3LM samples whole blocks: the sampler left-pads the prompt so the answer starts on a block
    boundary, and an answer (or an ELBO target) is right-padded to end on one.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side={side!r} must be 'left' or 'right'")
    extra = block_padding(x.shape[1], block_size)
    return F.pad(x, (extra, 0) if side == "left" else (0, extra), value=value)


def _check_bd3lm_shapes(xt: torch.Tensor, x0: torch.Tensor, block_size: int) -> None:
    if xt.dim() != 2 or xt.shape != x0.shape:
        raise ValueError(f"xt and x0 must both be (B, L); got {tuple(xt.shape)}, {tuple(x0.shape)}")
    seq_len = xt.shape[1]
    if isinstance(block_size, bool) or not isinstance(block_size, int):
        raise TypeError(f"block_size must be an int, got {type(block_size).__name__}")
    if block_size < 1 or seq_len % block_size != 0:
        valid = [d for d in range(1, seq_len + 1) if seq_len % d == 0]
        raise ValueError(
            f"block_size={block_size} must be a positive divisor of seq_len={seq_len}; "
            f"try one of {valid}"
        )


def bd3lm_inputs(
    xt: torch.Tensor, x0: torch.Tensor, block_size: int, causal_clean: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Build the vectorized BD3LM training input: one forward pass over ``[x_t ; x_0]``.

    Args:
        xt: (B, L) long, noised ids.
        x0: (B, L) long, clean ids.
        block_size: tokens per block; must divide L.
        causal_clean: the clean half token-causal (TiDAR; its logits are the AR mode's).

    Returns:
        input_ids: (B, 2L) long, ``cat([xt, x0], dim=1)``.
        position_ids: (B, 2L) long, ``[0..L-1, 0..L-1]``: both halves share positions.
        mask: (1, 1, 2L, 2L) bool staircase mask (True = may attend), broadcast over B and heads.
    """
    _check_bd3lm_shapes(xt, x0, block_size)
    batch, seq_len = xt.shape
    # BD3LM §3.2: concatenate noisy and clean copies so all blocks train in one pass
    input_ids = torch.cat([xt, x0], dim=1)  # (B, 2L)
    pos = torch.arange(seq_len, device=xt.device)  # (L,)
    position_ids = torch.cat([pos, pos]).expand(batch, -1).contiguous()  # (B, 2L)
    mask = attention.staircase_mask(seq_len, block_size, xt.device, causal_clean)  # (2L, 2L)
    return input_ids, position_ids, mask[None, None]  # ..., (1, 1, 2L, 2L)


def bd3lm_logits(logits: torch.Tensor) -> torch.Tensor:
    """Keep the x_t half of a ``[x_t ; x_0]`` forward pass (only x_t positions are scored).

    Args:
        logits: (B, 2L, V).

    Returns:
        (B, L, V) view.
    """
    if logits.dim() != 3 or logits.shape[1] % 2 != 0:
        raise ValueError(f"expected (B, 2L, V) logits with even length; got {tuple(logits.shape)}")
    return logits[:, : logits.shape[1] // 2]  # (B, L, V)


def bd3lm_shift_columns(seq_len: int, block_size: int, device=None) -> torch.Tensor:
    """Columns of a ``[x_t ; x_0]`` forward that right-shifted BD3LM logits read: all of x_t, then
    the clean x_0 column ending each block but the last, (L + L / block_size - 1,) long."""
    ends = torch.arange(block_size - 1, seq_len - 1, block_size, device=device)  # x_0 block ends
    return torch.cat([torch.arange(seq_len, device=device), seq_len + ends])


def bd3lm_shift_logits_right(kept: torch.Tensor, seq_len: int, block_size: int) -> torch.Tensor:
    """Right-shifted BD3LM logits, as the block sampler reads them: token i uses column i - 1 of
    x_t inside a block, and the clean x_0 column i - 1 at a block's first token (the noisy x_t
    copy of the previous block is not what sampling conditions on).

    Args:
        kept: (B, L + L / block_size - 1, V), the logits of ``bd3lm_shift_columns``.

    Returns:
        (B, L, V); position 0 keeps its own logits (as ``shift_logits_right``).
    """
    out = shift_logits_right(kept[:, :seq_len])  # (B, L, V), a new tensor
    out[:, block_size::block_size] = kept[:, seq_len:]  # block starts: clean x_0 of i - 1
    return out
