"""What a committed token was drawn from: the exact distribution of each draw (a speculative
drafter's q), and ``left_to_right`` remasking, under which that distribution is the token's
left-to-right conditional given the prefix.

Low-confidence remasking commits the tokens whose draws came out most probable, and in any order,
so a committed token is neither distributed as the softmax it was drawn from nor conditioned only
on its left; committing the leftmost masks, whatever was drawn, makes q exact.
References: Leviathan et al. 2023, arXiv 2211.17192 (§2.3); MDLM arXiv 2406.07524 (SUBS).
"""

from __future__ import annotations

import torch

from a2dkit.diffusion.denoise import REMASKING, sample_tokens, select_transfer, suppress

__all__ = ["SAMPLER_REMASKING", "draw_distribution", "left_to_right_step"]

SAMPLER_REMASKING = (*REMASKING, "left_to_right")


def draw_distribution(logits: torch.Tensor, banned: list[int], temperature: float) -> torch.Tensor:
    """The distribution ``sample_tokens`` draws from: softmax(logits / T) with ``banned`` at
    zero, in float64 as the draw; one-hot on the argmax at temperature 0.

    Args:
        logits: (B, L, V).

    Returns:
        (B, L, V) float64.
    """
    logits = suppress(logits, banned).double()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).double()
    return torch.softmax(logits / temperature, dim=-1)


def left_to_right_step(
    logits: torch.Tensor,
    block: torch.Tensor,
    mask_token_id: int,
    k: torch.Tensor,
    temperature: float,
    suppress_tokens: list[int],
) -> torch.Tensor:
    """One reverse step committing the ``k`` leftmost masks of each row: the choice never looks at
    the draws, so a token is drawn from exactly ``draw_distribution`` given the tokens left of it.

    Args:
        logits: (B, L, V); block: (B, L) long; k: (B,) long.

    Returns:
        (B, L) long, the block with newly committed tokens.
    """
    logits = suppress(logits, suppress_tokens)
    x0 = sample_tokens(logits, temperature)  # (B, L)
    leftmost = -torch.arange(block.shape[-1], device=block.device, dtype=torch.float)
    commit = select_transfer(leftmost.expand(block.shape), block == mask_token_id, k)
    return torch.where(commit, x0, block)  # MDLM §3 (SUBS): committed tokens are carried over
