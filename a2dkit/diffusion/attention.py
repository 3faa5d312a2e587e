"""A2D attention masks: bidirectional-with-padding, block-causal (sampling), BD3LM staircase.

Every mask is built from one predicate, so the dense (sdpa/eager) and FlexAttention back-ends agree.
Convention: a boolean mask is True where the query may attend to the key.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3.2, Fig. 2: M_BD, M_OBC, M_BC);
attention-mask annealing, DiffuLLaMA arXiv 2410.17891 (§3.2).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = [
    "bidirectional_padding_mask",
    "block_causal_mask",
    "annealed_causal",
    "anneal_ratio",
    "padding_position_ids",
    "staircase_predicate",
    "staircase_mask",
    "staircase_mask_mod",
    "staircase_block_mask",
    "to_additive_mask",
    "flex_attention_available",
]


def _check_block_size(seq_len: int, block_size: int) -> None:
    if block_size <= 0 or seq_len % block_size != 0:
        valid = [d for d in range(1, seq_len + 1) if seq_len % d == 0]
        raise ValueError(
            f"block_size={block_size} must be a positive divisor of seq_len={seq_len}; "
            f"try one of {valid}"
        )


def bidirectional_padding_mask(attention_mask: torch.Tensor, query_length: int | None = None):
    """MDLM attention: every real token sees every real token (pads are never keys).

    Args:
        attention_mask: (B, K) 1/True for real tokens, 0/False for padding.
        query_length: number of trailing positions that are queries (default K, no cache).

    Returns:
        (B, 1, Q, K) bool mask.
    """
    keys = attention_mask.bool()  # (B, K)
    q = keys.shape[1] if query_length is None else query_length
    return keys[:, None, None, :].expand(-1, 1, q, -1)  # (B, 1, Q, K)


def padding_position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position ids that skip (left) padding: the i-th real token gets position i; pads get 0.

    Args:
        attention_mask: (B, L) 1 for real tokens.
    """
    valid = attention_mask.bool()
    pos = valid.long().cumsum(-1) - 1  # (B, L)
    return torch.where(valid, pos, torch.zeros_like(pos))


def block_causal_mask(valid: torch.Tensor, block_size: int) -> torch.Tensor:
    """Sampling mask: bidirectional inside a block, causal across blocks, pads excluded.

    Blocks are counted by column (position in the padded canvas), so prompts left-padded to a
    block multiple keep their blocks aligned across the batch.

    Args:
        valid: (B, L) bool, True for real (non-pad) tokens.
        block_size: tokens per block.

    Returns:
        (B, 1, L, L) bool mask.
    """
    if block_size <= 0:
        raise ValueError(f"block_size={block_size} must be a positive integer")
    _, seq_len = valid.shape
    block = torch.arange(seq_len, device=valid.device) // block_size  # (L,)
    causal_blocks = block[None, :] <= block[:, None]  # (L, L): key block <= query block
    pair_valid = valid[:, :, None] & valid[:, None, :]  # (B, L, L)
    return (causal_blocks[None] & pair_valid)[:, None]  # (B, 1, L, L)


def anneal_ratio(step: int, anneal_steps: int) -> float:
    """DiffuLLaMA's annealing ratio: the share of future keys a query sees, 0 -> 1 linearly over
    ``anneal_steps`` optimizer steps (1 from then on, and when ``anneal_steps`` is 0)."""
    return 1.0 if anneal_steps <= 0 else min(max(step, 0) / anneal_steps, 1.0)


def annealed_causal(
    seq_len: int, ratio: float, *, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """The causal mask plus each future key with probability ``ratio`` (DiffuLLaMA §3.2): 0 is
    causal, 1 bidirectional; one draw per call, shared by the batch.

    Returns:
        (L, L) bool.
    """
    idx = torch.arange(seq_len, device=device)
    causal = idx[None, :] <= idx[:, None]  # (L, L): key <= query
    extra = torch.rand((seq_len, seq_len), generator=generator, device=device) < ratio
    return causal | extra


def staircase_predicate(q, k, seq_len: int, block_size: int, causal_clean: bool = False):
    """The BD3LM training-mask predicate over ``[x_t ; x_0]`` (works on ints or index tensors).

    Indices ``< seq_len`` are the noisy half x_t, the rest the clean half x_0. ``causal_clean``:
    the clean stream is token-causal (TiDAR arXiv 2511.08923 §3: an AR model's prefix, whose
    logits are its next-token predictions) instead of block-causal.
    """
    q_clean, k_clean = q >= seq_len, k >= seq_len
    q_block = (q % seq_len) // block_size
    k_block = (k % seq_len) // block_size
    # BD3LM M_BD: block-diagonal, x_t sees its own noisy block
    noisy_diagonal = ~q_clean & ~k_clean & (q_block == k_block)
    # BD3LM M_OBC: x_t block b sees x_0 blocks < b (clean context of earlier blocks)
    offset_block_causal = ~q_clean & k_clean & (q_block > k_block)
    if causal_clean:  # TiDAR: x_0 token i sees x_0 tokens <= i
        clean = q_clean & k_clean & (k <= q)
    else:  # BD3LM M_BC (with M_BD's clean diagonal): x_0 block b sees x_0 blocks <= b
        clean = q_clean & k_clean & (q_block >= k_block)
    return noisy_diagonal | offset_block_causal | clean


def staircase_mask(
    seq_len: int,
    block_size: int,
    device: torch.device | str | None = None,
    causal_clean: bool = False,
):
    """Dense BD3LM training mask over ``[x_t ; x_0]``.

    Args:
        seq_len: L, the length of each half.
        block_size: must divide ``seq_len``.
        causal_clean: a token-causal clean stream (TiDAR) instead of a block-causal one.

    Returns:
        (2L, 2L) bool mask with ``L * (L + block_size)`` True entries (a causal clean stream:
        ``L * (L + (block_size + 1) / 2)``).
    """
    _check_block_size(seq_len, block_size)
    idx = torch.arange(2 * seq_len, device=device)
    return staircase_predicate(idx[:, None], idx[None, :], seq_len, block_size,
                               causal_clean)  # fmt: skip


def staircase_mask_mod(seq_len: int, block_size: int, causal_clean: bool = False) -> Callable:
    """FlexAttention ``mask_mod(b, h, q_idx, kv_idx)``: the predicate of ``staircase_mask``."""
    _check_block_size(seq_len, block_size)

    def mask_mod(b, h, q_idx, kv_idx):
        return staircase_predicate(q_idx, kv_idx, seq_len, block_size, causal_clean)

    return mask_mod


def staircase_block_mask(
    seq_len: int, block_size: int, keys: torch.Tensor | None, device=None, causal_clean=False
):
    """FlexAttention ``BlockMask`` of the staircase over ``[x_t ; x_0]`` (2L), pads never keys.

    Args:
        keys: (B, 2L) bool, False for padded keys; None when nothing is padded.
        causal_clean: a token-causal clean stream (TiDAR), as ``staircase_mask``.
    """
    from torch.nn.attention.flex_attention import create_block_mask

    staircase = staircase_mask_mod(seq_len, block_size, causal_clean)
    if keys is None:
        mask_mod = staircase
    else:

        def mask_mod(b, h, q_idx, kv_idx):
            return staircase(b, h, q_idx, kv_idx) & keys[b, kv_idx]

    n, batch = 2 * seq_len, None if keys is None else keys.shape[0]
    return create_block_mask(mask_mod, B=batch, H=None, Q_LEN=n, KV_LEN=n, device=device)


def to_additive_mask(mask: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Boolean mask -> additive bias (0 where allowed, the dtype's minimum where blocked).

    The finite minimum (not -inf) keeps fully-masked rows (pad queries) free of NaNs.
    Non-boolean masks are assumed additive already and are only cast.
    """
    if mask.dtype != torch.bool:
        return mask.to(dtype)
    zero = torch.zeros((), dtype=dtype, device=mask.device)
    blocked = torch.full((), torch.finfo(dtype).min, dtype=dtype, device=mask.device)
    return torch.where(mask, zero, blocked)


def flex_attention_available() -> bool:
    """True if ``torch.nn.attention.flex_attention`` can be imported (checked once, here)."""
    try:
        from torch.nn.attention import flex_attention  # noqa: F401
    except ImportError:
        return False
    return True
