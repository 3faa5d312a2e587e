"""One-pass self-speculative decoding: one A2D model verifies block j and drafts block j+1 in the
same forward, and its output is token for token its own AR-mode greedy decoding.

Each forward reads [pending token, draft (k), masks (k + 1)] after a causal KV cache. The pending
token and the draft attend causally (exactly the model's AR mode, ``causal_mode``), so they verify
the draft; the masks attend to everything before them and to each other (a BD3LM block after a
clean prefix), so they draft the next block. Only the verified columns stay in the cache. The masks
sit where the verifier's own token and the k tokens after it go: when the whole draft is accepted
the masks' block is the next draft, conditioned on what was committed; after a rejection it was
conditioned on rejected tokens and is dropped, and the next forward drafts from masks alone.
References: I-DLM arXiv 2604.11035 and Nemotron-Labs-Diffusion (one checkpoint drafting and
verifying in one pass); speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §2.3).
"""

from __future__ import annotations

import time

import torch
from transformers import DynamicCache

from a2dkit.models.conventions import trained_shift
from a2dkit.models.forward import causal_mode
from a2dkit.samplers.acceptance import greedy_accept
from a2dkit.samplers.kv_cache import truncate
from a2dkit.samplers.speculative import SpeculativeStats, VerifierStep

__all__ = ["one_pass_mask", "one_pass_self_decode"]


def one_pass_mask(past: int, verify: int, masks: int) -> torch.Tensor:
    """(1, 1, Q, past + Q) bool, Q = verify + masks: the first ``verify`` queries see the cache and
    the queries up to their own (causal); the masks see every key (block-bidirectional)."""
    q = verify + masks
    keys = torch.arange(past + q)[None]  # (1, K)
    rows = past + torch.arange(q)[:, None]  # (Q, 1)
    causal = keys <= rows
    return (causal | (torch.arange(q)[:, None] >= verify))[None, None]


@torch.no_grad()
def one_pass_self_decode(
    model,
    prompt: list[int],
    max_new_tokens: int,
    draft_length: int,
    mask_token_id: int,
    *,
    eos_token_id: int | None = None,
    right_shift_logits: bool | None = None,
    stats: SpeculativeStats | None = None,
    trace: list[VerifierStep] | None = None,
) -> list[int]:
    """The A2D ``model``'s own AR-mode greedy continuation of ``prompt`` (``max_new_tokens`` or up
    to EOS), drafted and verified by the same forwards (greedy; drafts of ``draft_length``).

    Args:
        model: an A2D model with a causal path (``causal_mode`` refuses sliding windows).
        right_shift_logits: read token i from the logits at i - 1 (None: as the checkpoint was
            trained).
        stats: every forward counts as a verifier forward; there are no drafter forwards.

    Returns:
        The generated ids (EOS included when reached).
    """
    if draft_length <= 0 or max_new_tokens <= 0 or not prompt:
        raise ValueError(f"draft_length={draft_length}, max_new_tokens={max_new_tokens} must be "
                         f"> 0 and the prompt non-empty (got {len(prompt)} ids)")  # fmt: skip
    with causal_mode(model):  # refuses a model without a causal path, by name
        pass
    shift = trained_shift(model) if right_shift_logits is None else right_shift_logits
    stats = stats if stats is not None else SpeculativeStats()
    clock, cache, device = time.perf_counter(), DynamicCache(), model.device
    if len(prompt) > 1:
        with causal_mode(model):
            model(input_ids=torch.tensor([prompt[:-1]], device=device), past_key_values=cache,
                  use_cache=True)  # fmt: skip
        stats.verifier_forwards += 1
    out, pending, draft = [], prompt[-1], []
    while len(out) < max_new_tokens:
        room = max_new_tokens - len(out) - 1  # tokens after the verifier's own
        draft = draft[:room]
        nxt = min(draft_length, max(room - len(draft) - 1, 0))  # after this draft and the token
        past, verify = cache.get_seq_length(), 1 + len(draft)
        masks = nxt + 1 if nxt > 0 else 0  # the verifier's token's column, then the next draft
        ids = torch.tensor([[pending, *draft] + [mask_token_id] * masks], device=device)
        positions = torch.arange(past, past + verify + masks, device=device)[None]
        logits = model(
            input_ids=ids,
            position_ids=positions,
            past_key_values=cache,
            use_cache=True,
            attention_mask=one_pass_mask(past, verify, masks).to(device),
        ).logits[0]
        stats.verifier_forwards += 1
        n, token = greedy_accept(draft, logits[:verify])
        stats.accepted[n] += 1
        truncate(cache, past + 1 + n)  # the pending token and the accepted draft
        new = [*draft[:n], token]
        if eos_token_id is not None and eos_token_id in new:
            new = new[: new.index(eos_token_id) + 1]
        if trace is not None:
            trace.append(VerifierStep(len(out), list(draft), n, token, list(new), 0))
        out += new
        stats.tokens += len(new)
        if eos_token_id is not None and out[-1] == eos_token_id:
            break
        pending = token
        # the masks' block drafted the k tokens after the verifier's token, valid only if it was
        # conditioned on what is now committed; token i is read at row i (or i - 1, shifted)
        draft = []
        if n == verify - 1 and masks:
            rows = torch.arange(verify + 1, verify + masks, device=device) - int(shift)
            draft = logits[rows].argmax(-1).tolist()
    stats.seconds += time.perf_counter() - clock
    return out[:max_new_tokens]
