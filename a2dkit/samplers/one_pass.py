"""One-pass self-speculative decoding: one A2D model verifies a draft and drafts the next one in the
same forward, and its output is token for token its own AR-mode greedy decoding.

Each forward reads, after a causal KV cache, the pending token and the draft d_1..d_k (causal:
exactly the model's AR mode, ``causal_mode``, so they verify the draft), then k + 1 blocks of
masks, block a conditioned on the pending token and d_1..d_a (TiDAR's pre-drafts, one for every
length the verifier may accept). Each block attends to its own prefix and to itself (a BD3LM block
after a clean prefix); its first mask sits where the verifier's own token goes and the rest draft
the tokens after it. Whatever the verifier accepts, the block drafted on exactly that prefix is the
next draft, so every forward verifies one. Only the verified columns stay in the cache. At a
temperature the draft tokens are drawn from the block's distributions and judged by speculative
sampling, so the output is distributed as the model's own AR-mode samples.
References: TiDAR arXiv 2511.08923 (§3, pre-drafting for every acceptance outcome); I-DLM arXiv
2604.11035 and Nemotron-Labs-Diffusion (one checkpoint drafting and verifying in one pass);
speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §2.3).
"""

from __future__ import annotations

import time

import torch
from transformers import DynamicCache

from a2dkit.models.conventions import trained_shift
from a2dkit.models.forward import causal_mode
from a2dkit.samplers.acceptance import greedy_accept, speculative_accept
from a2dkit.samplers.kv_cache import truncate
from a2dkit.samplers.prompts import check_nonnegative_finite
from a2dkit.samplers.speculative import SpeculativeStats, VerifierStep

__all__ = ["one_pass_layout", "one_pass_self_decode"]


def one_pass_layout(past: int, verify: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention mask (1, 1, Q, past + Q) bool and position ids (1, Q) of one forward, Q =
    verify + verify · width: ``verify`` causal columns, then one block of ``width`` masks after
    each of them (width 0: no blocks)."""
    blocks = verify if width else 0
    q = verify + blocks * width
    keys = torch.arange(past + q)[None]  # (1, K)
    col = torch.arange(q)[:, None]  # (Q, 1)
    block = (col - verify).div(max(width, 1), rounding_mode="floor")  # (Q, 1) block a of a mask
    # the last verifying column a query sees: its own (causal), or its block's prefix d_a
    seen = torch.where(col < verify, col, block)
    start = verify + block * width  # first column of the query's own block
    own = (col >= verify) & (keys >= past + start) & (keys < past + start + width)
    mask = (keys <= past + seen) | own  # TiDAR §3: causal prefix, bidirectional in the block
    offset = torch.where(col < verify, col, block + 1 + (col - start))  # block a sits after d_a
    return mask[None, None], (past + offset).T


def _draft(logits: torch.Tensor, temperature: float, generator) -> tuple[list[int], torch.Tensor]:
    """A block's draft from its (k, V) logits: the argmax, or a draw from softmax(logits / T) per
    position (a product of the block's marginals: a valid proposal for speculative sampling)."""
    if temperature == 0:
        return logits.argmax(-1).tolist(), logits
    q = torch.softmax(logits.double() / temperature, dim=-1)  # (k, V)
    return torch.multinomial(q.cpu(), 1, generator=generator)[:, 0].tolist(), q


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
    temperature: float = 0.0,
    generator: torch.Generator | None = None,
    stats: SpeculativeStats | None = None,
    trace: list[VerifierStep] | None = None,
) -> list[int]:
    """The A2D ``model``'s own AR-mode continuation of ``prompt`` (``max_new_tokens`` or up to
    EOS), drafted and verified by the same forwards (drafts of ``draft_length``): greedy at
    temperature 0, else distributed as its AR-mode samples at ``temperature``.

    A forward over a draft of k reads (k + 1)(k + 2) columns: keep k small where compute is the
    bottleneck (CPUs); on a memory-bound GPU the extra columns are nearly free (TiDAR §3).

    Args:
        model: an A2D model with a causal path (``causal_mode`` refuses sliding windows).
        right_shift_logits: read token i from the logits at i - 1 (None: as the checkpoint was
            trained).
        temperature: 0: greedy matching; > 0: drafts drawn from the blocks' softmax(logits / T)
            and accepted by speculative sampling (arXiv 2211.17192, Algorithm 1).
        generator: the draws' random numbers (temperature > 0).
        stats: every forward counts as a verifier forward; there are no drafter forwards.

    Returns:
        The generated ids (EOS included when reached).
    """
    if draft_length <= 0 or max_new_tokens <= 0 or not prompt:
        raise ValueError(f"draft_length={draft_length}, max_new_tokens={max_new_tokens} must be "
                         f"> 0 and the prompt non-empty (got {len(prompt)} ids)")  # fmt: skip
    check_nonnegative_finite("temperature", temperature)
    with causal_mode(model):  # refuses a model without a causal path, by name
        pass
    shift = int(trained_shift(model) if right_shift_logits is None else right_shift_logits)
    stats = stats if stats is not None else SpeculativeStats()
    clock, cache, device = time.perf_counter(), DynamicCache(), model.device
    if len(prompt) > 1:
        with causal_mode(model):
            model(input_ids=torch.tensor([prompt[:-1]], device=device), past_key_values=cache,
                  use_cache=True)  # fmt: skip
        stats.verifier_forwards += 1
    out, pending, draft, q = [], prompt[-1], [], None
    while len(out) < max_new_tokens:
        draft = draft[: max_new_tokens - len(out) - 1]  # tokens after the verifier's own
        nxt = min(draft_length, max(max_new_tokens - len(out) - 2, 0))  # the next draft's length
        past, verify = cache.get_seq_length(), 1 + len(draft)
        width = nxt + 1 if nxt else 0  # the verifier's token's column, then the next draft
        mask, positions = one_pass_layout(past, verify, width)
        ids = [pending, *draft] + [mask_token_id] * (verify * width)
        logits = model(
            input_ids=torch.tensor([ids], device=device),
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
            attention_mask=mask.to(device),
        ).logits[0]
        stats.verifier_forwards += 1
        if temperature > 0:  # q: the distributions the draft was drawn from (k, V)
            q = q[: len(draft)] if draft else logits.new_zeros(0, logits.shape[-1])
            n, token = speculative_accept(draft, q, logits[:verify], temperature, generator)
        else:
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
        pending, draft = token, []
        if width:  # block n was drafted on exactly the committed prefix; its column j holds
            # token j after d_n (j = 0: the verifier's own), read at row j (j - 1 when shifted)
            start = verify + n * width
            rows = torch.arange(start + 1, start + width, device=device) - shift
            draft, q = _draft(logits[rows], temperature, generator)
    stats.seconds += time.perf_counter() - clock
    return out[:max_new_tokens]
