"""Naive BD3LM sampler written from the released model card's description (the test/bench oracle).

Single prompt, temperature 0, low-confidence remasking. Every block re-encodes the whole prefix
with the block-causal mask (position ids from the non-pad cumsum); every denoising step runs the
block on a deep copy of that prefix cache. Not library code: a2dkit.samplers must agree with it.
References: BD3LM arXiv 2503.09573; dLLM Tiny-A2D BD3LM model card (quick-start ``generate``).
"""

from __future__ import annotations

import copy
import math

import torch


def staircase_inputs(x: torch.Tensor, block_size: int, pad_id: int):
    """(B, T) ids -> block-causal (B, 1, T, T) bool mask over non-pad tokens, (B, T) positions."""
    valid = x != pad_id
    positions = torch.where(valid, valid.long().cumsum(-1) - 1, 0)
    block = torch.arange(x.shape[1]) // block_size
    block = torch.where(valid, block, -1)  # (B, T): pads belong to no block
    q, k = block[:, None, :, None], block[:, None, None, :]
    return (k <= q) & (q >= 0) & (k >= 0), positions


def even_split(count: int, steps: int) -> list[int]:
    """``count`` tokens over ``steps`` steps, the remainder on the first steps."""
    return [count // steps + (i < count % steps) for i in range(steps)]


def _commit(logits: torch.Tensor, block: torch.Tensor, k: int, mask_id: int) -> torch.Tensor:
    """Greedy x0; commit the k most confident masked positions of the (1, L) block."""
    x0 = logits.argmax(-1)  # (1, L)
    conf = torch.softmax(logits, -1).gather(-1, x0[..., None])[..., 0]
    conf = torch.where(block == mask_id, conf, float("-inf"))
    k = min(k, int((block == mask_id).sum()))
    out = block.clone()
    if k > 0:
        idx = conf[0].topk(k).indices
        out[0, idx] = x0[0, idx]
    return out


@torch.no_grad()
def naive_bd3lm_generate(
    model, prompt: list[int], *, mask_id: int, pad_id: int, eos_id: int | None,
    max_new_tokens: int, block_size: int, steps: int,
) -> torch.Tensor:  # fmt: skip
    """Returns the (1, T') canvas: prompt + generated blocks (masks left where it stopped)."""
    x = torch.tensor([prompt], dtype=torch.long)
    steps_per_block = math.ceil(steps / math.ceil(max_new_tokens / block_size))
    generated = 0
    while generated < max_new_tokens:
        prefix_len = x.shape[1]
        cur = min(block_size - prefix_len % block_size, max_new_tokens - generated)
        mask, pos = staircase_inputs(x, block_size, pad_id)
        cache = model(x, attention_mask=mask, position_ids=pos, use_cache=True).past_key_values
        x = torch.cat([x, torch.full((1, cur), mask_id)], dim=1)
        mask, pos = staircase_inputs(x, block_size, pad_id)
        for k in even_split(cur, steps_per_block):
            block = x[:, prefix_len:]
            past = copy.deepcopy(cache)  # the card copies the cache: the model appends to it
            logits = model(block, attention_mask=mask[:, :, prefix_len:],
                           position_ids=pos[:, prefix_len:], past_key_values=past,
                           use_cache=False).logits  # fmt: skip
            x[:, prefix_len:] = _commit(logits, block, k, mask_id)
            if eos_id is not None and (x[:, prefix_len:] == eos_id).any():
                return x
        generated += cur
    return x


@torch.no_grad()
def trained_logits(model, canvas: torch.Tensor, algo: str, block_size: int, shift: bool,
                   block_starts_only: bool = False,
                   causal_clean: bool = False) -> torch.Tensor:  # fmt: skip
    """The logits the trainer scores canvas token i with, (T, V), for x_t = x_0 = ``canvas``.

    MDLM: the bidirectional forward of x_t. BD3LM: the ``[x_t ; x_0]`` staircase forward; a
    block's x_t only sees itself and the clean x_0 of earlier blocks, so x_0 = x_t is exact.
    ``shift``: as ``--right_shift_logits`` trains. ``block_starts_only`` (BD3LM, a negative
    control) shifts at block starts only and reads the rest unshifted. ``causal_clean``: the
    clean x_0 half token-causal (``--clean_stream causal``).
    """
    from a2dkit.diffusion import blocks, losses

    x, length = canvas[None], canvas.shape[0]
    if algo == "mdlm":
        logits = model(x).logits
        return (losses.shift_logits_right(logits) if shift else logits)[0]
    ids, pos, mask = blocks.bd3lm_inputs(x, x, block_size, causal_clean)
    full = model(input_ids=ids, position_ids=pos, attention_mask=mask).logits  # (1, 2T, V)
    if not shift:
        return full[0, :length]
    kept = full[:, blocks.bd3lm_shift_columns(length, block_size)]
    logits = blocks.bd3lm_shift_logits_right(kept, length, block_size)
    if block_starts_only:
        logits[:, 1:] = torch.where(
            (torch.arange(1, length) % block_size == 0)[None, :, None], logits[:, 1:],
            full[:, 1:length],
        )  # fmt: skip
    return logits[0]


def steps_off_reference(history: list[torch.Tensor], reference, mask_id: int,
                        block_size: int) -> int:  # fmt: skip
    """How many one-token greedy steps of a single-row ``history`` did not commit the reference's
    choice: the most confident masked position of the block, its argmax token (never <|mask|>).
    ``reference(canvas) -> (T, V)`` logits."""
    off = 0
    for before, after in zip(history[:-1], history[1:], strict=True):
        a, b = before[0], after[0]
        changed = (a != b).nonzero().flatten()
        if len(changed) == 0:
            continue
        logits = reference(a).clone()
        logits[:, mask_id] = float("-inf")
        conf, token = logits.softmax(-1).max(-1)
        block = torch.arange(block_size) + (changed[0] // block_size) * block_size
        masked = block[a[block] == mask_id]
        best = masked[conf[masked].argmax()]
        off += not (changed.tolist() == [best.item()] and b[best] == token[best])
    return off
