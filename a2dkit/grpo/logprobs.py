"""Per-token log-probabilities of a completion under a diffusion LM, for the GRPO ratio and KL.

A diffusion LM has no exact per-token likelihood; diffu-GRPO (d1, arXiv 2504.12216, §3.2) uses
a one-step estimate: mask every completion token, mask each prompt token with probability
``p_mask_prompt``, run the model once, and read log p(o_k | q', masked o) at every position k.
The prompt mask is drawn from a per-row seed, so old, new and reference log-probs of one GRPO
iteration see the same q'. For BD3LM the same estimate is taken block by block, as the block
sampler generates: block b of the completion is fully masked and conditioned on the clean earlier
blocks, all blocks at once through the staircase ``[x_t ; x_0]``
input of ``a2dkit.diffusion.blocks``.
"""

from __future__ import annotations

import torch

from a2dkit.diffusion.attention import padding_position_ids
from a2dkit.diffusion.blocks import bd3lm_inputs, block_padding, pad_to_blocks
from a2dkit.diffusion.denoise import guide
from a2dkit.models.conventions import causal_clean_stream

__all__ = [
    "check_p_mask_prompt",
    "prompt_mask",
    "mdlm_completion_logits",
    "bd3lm_completion_logits",
    "token_logprobs",
    "token_entropy",
]


def check_p_mask_prompt(p_mask_prompt: float) -> None:
    """Raise early for a prompt-masking probability outside [0, 1]."""
    if isinstance(p_mask_prompt, bool) or not 0.0 <= float(p_mask_prompt) <= 1.0:
        raise ValueError(f"p_mask_prompt={p_mask_prompt!r} must lie in [0, 1] (dLLM uses 0.15)")


def prompt_mask(
    prompt_valid: torch.Tensor, seeds: torch.Tensor, p_mask_prompt: float
) -> torch.Tensor:
    """Which prompt tokens to mask: each real token w.p. ``p_mask_prompt``, from its row's seed.

    The draws are aligned to the end of the prompt, so a row gets the same mask whatever the
    left padding of its batch (the generation batch and a training micro-batch may differ).

    Args:
        prompt_valid: (B, P) bool, real (non-pad) prompt tokens (left-padded).
        seeds: (B,) int, one seed per row.
        p_mask_prompt: in [0, 1].

    Returns:
        (B, P) bool.
    """
    check_p_mask_prompt(p_mask_prompt)
    if seeds.shape != prompt_valid.shape[:1]:
        raise ValueError(f"seeds {tuple(seeds.shape)} must be ({prompt_valid.shape[0]},)")
    width = prompt_valid.shape[1]
    draws = []
    for seed in seeds.tolist():
        gen = torch.Generator().manual_seed(int(seed))
        draws.append(torch.rand(width, generator=gen).flip(0))  # u[-1] belongs to the last token
    u = torch.stack(draws).to(prompt_valid.device) if draws else torch.empty(0, width)  # (B, P)
    return prompt_valid & (u < p_mask_prompt)


def _canvas_valid(attention_mask: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """Real prompt tokens and every completion column: the sampler's canvas is all masks at t = 1,
    including the columns after EOS (TRL's completion mask only drops them from the loss)."""
    valid = attention_mask.bool().clone()
    valid[:, prompt_len:] = True
    return valid


def _uncond(ids: torch.Tensor, prompt_cols: torch.Tensor, mask_id: int) -> torch.Tensor:
    """The unconditional CFG input: every prompt token masked."""
    return torch.where(prompt_cols, torch.full_like(ids, mask_id), ids)


def mdlm_completion_logits(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    mask_id: int,
    seeds: torch.Tensor,
    p_mask_prompt: float = 0.0,
    cfg_scale: float = 0.0,
) -> torch.Tensor:
    """Logits f_θ(q', mask^|o|) at the completion positions (d1 §3.2, Eq. 4 one-step estimate).

    Args:
        input_ids: (B, P + C) long, left-padded prompt then completion.
        attention_mask: (B, P + C), 1 for real tokens.
        logits_to_keep: C, the completion length.
        mask_id: the ``[MASK]`` token id.
        seeds: (B,) per-row seeds of the prompt mask.

    Returns:
        (B, C, V) logits.
    """
    prompt_len = input_ids.shape[1] - logits_to_keep
    valid = _canvas_valid(attention_mask, prompt_len)
    masked = torch.zeros_like(valid)
    masked[:, :prompt_len] = prompt_mask(valid[:, :prompt_len], seeds, p_mask_prompt)
    masked[:, prompt_len:] = True  # d1: the whole completion is masked
    xt = torch.where(masked, torch.full_like(input_ids, mask_id), input_ids)  # (B, P + C)
    if cfg_scale:
        prompt_cols = valid.clone()
        prompt_cols[:, prompt_len:] = False
        xt, valid = torch.cat([xt, _uncond(xt, prompt_cols, mask_id)]), valid.repeat(2, 1)
    logits = model(input_ids=xt, attention_mask=valid.long()).logits  # (B', P + C, V)
    return guide(logits, cfg_scale)[:, prompt_len:]


def _block_canvas(
    prompt: torch.Tensor, completion: torch.Tensor, valid: torch.Tensor, block_size: int, pad: int
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """BD3LM's sampling canvas: the prompt left-padded to whole blocks, the completion right-padded
    to whole blocks, as ``BD3LMSampler`` lays them out.

    Args:
        prompt: (B, P) ids; completion: (B, C) ids; valid: (B, P + C) bool, False on padding.
        pad: the id written into padding columns.

    Returns:
        x0: (B, L) ids, L a multiple of ``block_size``; valid: (B, L) bool (left pads invalid, the
        last block whole, as sampled); start: the first completion column.
    """
    p = prompt.shape[1]
    x0 = torch.cat([pad_to_blocks(prompt, block_size, side="left", value=pad),
                    pad_to_blocks(completion, block_size, value=pad)], 1)  # fmt: skip
    valid = torch.cat([pad_to_blocks(valid[:, :p], block_size, side="left", value=False),
                       pad_to_blocks(valid[:, p:], block_size, value=True)], 1)  # fmt: skip
    return x0, valid, p + block_padding(p, block_size)


def bd3lm_completion_logits(
    model,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    logits_to_keep: int,
    mask_id: int,
    seeds: torch.Tensor,
    block_size: int,
    p_mask_prompt: float = 0.0,
    cfg_scale: float = 0.0,
) -> torch.Tensor:
    """Per block b: logits of ``p_θ(o^b | q', o^{<b}, mask^{|b|})``, all blocks in one pass.

    BD3LM (arXiv 2503.09573, Eq. 3) factorises log p(x) = Σ_b log p(x^b | x^{<b}); each block's
    term is estimated at t = 1 (fully masked block), the state in which the block sampler starts
    it. The prompt is left-padded to a block multiple, as in ``BD3LMSampler``, so completion
    blocks start on block boundaries; the masked prompt q' is the context of every block.

    Args: as :func:`mdlm_completion_logits`, plus ``block_size``.

    Returns:
        (B, C, V) logits.
    """
    prompt_len = input_ids.shape[1] - logits_to_keep
    valid = _canvas_valid(attention_mask, prompt_len)  # (B, P + C)
    q_masked = prompt_mask(valid[:, :prompt_len], seeds, p_mask_prompt)  # (B, P)
    prompt = torch.where(q_masked, mask_id, input_ids[:, :prompt_len])  # (B, P): q'
    x0, valid, start = _block_canvas(prompt, input_ids[:, prompt_len:], valid, block_size, mask_id)
    completion_cols = torch.zeros_like(valid)
    completion_cols[:, start:] = True
    xt = torch.where(completion_cols, torch.full_like(x0, mask_id), x0)  # every block at t = 1
    if cfg_scale:
        prompt_cols = valid & ~completion_cols
        x0 = torch.cat([x0, _uncond(x0, prompt_cols, mask_id)])
        xt, valid = torch.cat([xt, _uncond(xt, prompt_cols, mask_id)]), valid.repeat(2, 1)
    causal = causal_clean_stream(model)  # the clean stream as the model was trained
    ids, _, mask = bd3lm_inputs(xt, x0, block_size, causal)  # (B', 2L), -, (1, 1, 2L, 2L)
    pos = padding_position_ids(valid)  # (B', L): positions skip the left padding
    keys = valid.repeat(1, 2)  # (B', 2L): pads are never keys
    keep = torch.arange(start, start + logits_to_keep, device=ids.device)  # completion of x_t
    out = model(input_ids=ids, attention_mask=mask & keys[:, None, None, :],
                position_ids=torch.cat([pos, pos], 1), logits_to_keep=keep)  # fmt: skip
    return guide(out.logits, cfg_scale)  # (B, C, V)


def token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log softmax(logits)[target] in float32 (float64 kept): (B, C, V), (B, C) -> (B, C)."""
    dtype = torch.promote_types(logits.dtype, torch.float32)
    logp = torch.log_softmax(logits.to(dtype), dim=-1)
    return logp.gather(-1, targets[..., None]).squeeze(-1)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of each position's predictive distribution: (B, C, V) -> (B, C)."""
    logp = torch.log_softmax(logits.to(torch.promote_types(logits.dtype, torch.float32)), -1)
    return -(logp.exp() * logp).sum(-1)
