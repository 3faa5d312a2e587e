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
sampling, so the output is distributed as the model's own AR-mode samples. Greedy decoding can
verify a draft tree instead (``candidates``): the block's next choices for the first drafted token
beside it, as siblings under tree attention, each with its own block.
References: TiDAR arXiv 2511.08923 (§3, pre-drafting for every acceptance outcome); I-DLM arXiv
2604.11035 and Nemotron-Labs-Diffusion (one checkpoint drafting and verifying in one pass);
speculative decoding, Leviathan et al. 2023 (arXiv 2211.17192, §2.3); SpecInfer arXiv 2305.09781
(§4, tree attention).
"""

from __future__ import annotations

import time

import torch
from transformers import DynamicCache

from a2dkit.models.conventions import trained_shift
from a2dkit.models.forward import causal_mode
from a2dkit.samplers.acceptance import greedy_accept, greedy_tree_accept, speculative_accept
from a2dkit.samplers.kv_cache import keep_columns
from a2dkit.samplers.prompts import check_nonnegative_finite
from a2dkit.samplers.speculative import SpeculativeStats, VerifierStep

__all__ = ["draft_parents", "one_pass_layout", "one_pass_self_decode", "read_rows"]


def draft_parents(draft_length: int, siblings: int = 0) -> list[int]:
    """The parent column of each verifying column of one forward: the pending token (column 0),
    a chain of ``draft_length`` drafted tokens, then ``siblings`` alternatives to the first one
    (children of column 0: a draft tree, SpecInfer arXiv 2305.09781 §4)."""
    return [-1, *range(draft_length)] + [0] * siblings


def one_pass_layout(
    past: int, verify: int, width: int, parents: list[int] | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The attention mask (1, 1, Q, past + Q) bool and position ids (1, Q) of one forward, Q =
    verify + verify · width: ``verify`` causal columns, then one block of ``width`` masks after
    each of them (width 0: no blocks).

    ``parents``: each verifying column's parent column (-1: the cache's last token, and always
    for column 0), earlier than itself; None: a chain, column i after column i - 1. A column sees
    its ancestors and itself (tree attention, SpecInfer arXiv 2305.09781 §4), a block its
    column's ancestors, its column and itself."""
    parents = list(range(-1, verify - 1)) if parents is None else parents
    seen, depth = torch.eye(verify, dtype=torch.bool), [0] * verify  # (V, V): self + ancestors
    for i, parent in enumerate(parents[1:], start=1):
        if not 0 <= parent < i:
            raise ValueError(f"parents={parents}: column {i}'s parent must be an earlier column")
        seen[i] |= seen[parent]
        depth[i] = depth[parent] + 1
    blocks = verify if width else 0
    q = verify + blocks * width
    col = torch.arange(q)
    in_block = col >= verify
    # the verifying column whose ancestry a query sees: its own, or its block's (TiDAR §3)
    owner = torch.where(in_block, (col - verify).div(max(width, 1), rounding_mode="floor"), col)
    block = torch.where(in_block, owner, -1)
    mask = torch.zeros(q, past + q, dtype=torch.bool)
    mask[:, :past] = True  # the committed prefix
    mask[:, past : past + verify] = seen[owner]  # causal along the tree, never the masks
    mask[:, past + verify :] = in_block[:, None] & (block[:, None] == block[None, verify:])
    inside = col - verify - owner * width  # a mask's column in its block
    offset = torch.tensor(depth)[owner] + torch.where(in_block, 1 + inside, 0)
    return mask[None, None], (past + offset)[None]


def read_rows(verify: int, width: int, shift: int) -> torch.Tensor:
    """The rows of a forward (``one_pass_layout``'s columns) whose logits the decoder reads: every
    verifying column, then each block's ``width - 1`` draft rows (row j holds token j after the
    block's first column, j >= 1, read at row j - ``shift``), so block b's rows start at kept row
    verify + b · (width - 1). The LM head runs on these alone (``logits_to_keep``), as
    ``generate`` keeps only its last row."""
    rows = [*range(verify)]
    for block in range(verify if width else 0):
        start = verify + block * width - shift
        rows += range(start + 1, start + width)
    return torch.tensor(rows)


def _check_options(prompt_length: int, max_new_tokens: int, draft_length: int, candidates: int,
                   temperature: float) -> None:  # fmt: skip
    if draft_length <= 0 or max_new_tokens <= 0 or not prompt_length:
        raise ValueError(f"draft_length={draft_length}, max_new_tokens={max_new_tokens} must be "
                         f"> 0 and the prompt non-empty (got {prompt_length} ids)")  # fmt: skip
    check_nonnegative_finite("temperature", temperature)
    if isinstance(candidates, bool) or not isinstance(candidates, int) or candidates < 1:
        raise ValueError(f"candidates={candidates!r} must be an int >= 1 (1: one draft)")
    if candidates > 1 and temperature > 0:
        raise ValueError(f"candidates={candidates} verifies a draft tree greedily: it needs "
                         f"temperature 0, not {temperature} (candidates=1 samples)")  # fmt: skip


def _prefill(model, prompt: list[int], stats: SpeculativeStats) -> DynamicCache:
    """The causal cache of the prompt but its last token (which the first forward verifies)."""
    cache = DynamicCache()
    if len(prompt) > 1:
        with causal_mode(model):
            model(input_ids=torch.tensor([prompt[:-1]], device=model.device),
                  past_key_values=cache, use_cache=True)  # fmt: skip
        stats.verifier_forwards += 1
    return cache


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
    candidates: int = 1,
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
        candidates: > 1 (greedy only): a draft tree, the block's next ``candidates - 1`` choices
            for the first drafted token verified beside it (siblings, each with its own pre-draft
            block), so a rejected first token is often replaced rather than lost; a forward then
            reads (k + m)(k + 2) columns.
        right_shift_logits: read token i from the logits at i - 1 (None: as the checkpoint was
            trained).
        temperature: 0: greedy matching; > 0: drafts drawn from the blocks' softmax(logits / T)
            and accepted by speculative sampling (arXiv 2211.17192, Algorithm 1).
        generator: the draws' random numbers (temperature > 0).
        stats: every forward counts as a verifier forward; there are no drafter forwards.

    Returns:
        The generated ids (EOS included when reached).
    """
    _check_options(len(prompt), max_new_tokens, draft_length, candidates, temperature)
    with causal_mode(model):  # refuses a model without a causal path, by name
        pass
    shift = int(trained_shift(model) if right_shift_logits is None else right_shift_logits)
    stats = stats if stats is not None else SpeculativeStats()
    clock, cache, device = time.perf_counter(), _prefill(model, prompt, stats), model.device
    out, pending, draft, others, q = [], prompt[-1], [], [], None
    while len(out) < max_new_tokens:
        draft = draft[: max_new_tokens - len(out) - 1]  # tokens after the verifier's own
        others = others if draft else []  # siblings of draft[0]
        nxt = min(draft_length, max(max_new_tokens - len(out) - 2, 0))  # the next draft's length
        tokens = [pending, *draft, *others]
        past, verify = cache.get_seq_length(), len(tokens)
        width = nxt + 1 if nxt else 0  # the verifier's token's column, then the next draft
        # the chain, then the siblings of its first token (a tree when there are any)
        parents = draft_parents(len(draft), len(others))
        mask, positions = one_pass_layout(past, verify, width, parents)
        logits = model(  # (verify + verify · (width - 1), V): the rows read_rows names
            input_ids=torch.tensor([tokens + [mask_token_id] * (verify * width)], device=device),
            position_ids=positions.to(device),
            past_key_values=cache,
            use_cache=True,
            attention_mask=mask.to(device),
            logits_to_keep=read_rows(verify, width, shift).to(device),
        ).logits[0]
        stats.verifier_forwards += 1
        if others:
            path, token = greedy_tree_accept(tokens, parents, logits[:verify])
            branch = draft if len(path) < 2 or path[1] == 1 else [tokens[path[1]]]
        else:
            if temperature > 0:  # q: the distributions the draft was drawn from (k, V)
                q = q[: len(draft)] if draft else logits.new_zeros(0, logits.shape[-1])
                n, token = speculative_accept(draft, q, logits[:verify], temperature, generator)
            else:
                n, token = greedy_accept(draft, logits[:verify])
            path, branch = list(range(n + 1)), draft
        keep_columns(cache, past, path)  # the pending token and the accepted branch
        n = len(path) - 1
        stats.accepted[n] += 1
        new = [*branch[:n], token]
        if eos_token_id is not None and eos_token_id in new:
            new = new[: new.index(eos_token_id) + 1]
        if trace is not None:
            trace.append(VerifierStep(len(out), list(branch), n, token, list(new), 0))
        out += new
        stats.tokens += len(new)
        if eos_token_id is not None and out[-1] == eos_token_id:
            break
        pending, draft, others = token, [], []
        if width:  # the block after the accepted column was drafted on exactly the committed
            # prefix; its column j holds token j after it (j = 0: the verifier's own), read at
            # row j (j - 1 when shifted): kept in order by read_rows
            start = verify + path[-1] * (width - 1)
            draft, q = _draft(logits[start : start + width - 1], temperature, generator)
            others = logits[start].topk(candidates).indices[1:].tolist()  # draft[0]'s siblings
    stats.seconds += time.perf_counter() - clock
    return out[:max_new_tokens]
