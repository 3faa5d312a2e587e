"""One-pass self-speculative decoding: the same forward verifies a draft causally and drafts the
next one under masks after every prefix the verifier may accept (TiDAR's pre-drafts), and the
output is the model's own AR-mode greedy decoding (float64, tiny models); each next draft is the
one a fresh forward drafts on exactly the committed prefix; a mask that let the verifying rows see
the masks is caught."""

import copy

import pytest
import torch
from conftest import make_tiny_ar
from transformers import DynamicCache

from a2dkit import convert
from a2dkit.diffusion import blocks
from a2dkit.models import causal_mode
from a2dkit.samplers import one_pass
from a2dkit.samplers.one_pass import one_pass_layout, one_pass_self_decode
from a2dkit.samplers.speculative import SpeculativeStats

PROMPTS = [[5, 17, 42], [8, 99, 23, 61, 7, 30], [11]]


@pytest.fixture(scope="module")
def models(small_tokenizer):
    """(fresh conversion, perturbed conversion: its AR mode is its own), float64, and the mask."""
    tok = copy.deepcopy(small_tokenizer)
    source = make_tiny_ar("qwen3", tok).double().eval()
    fresh, tok, _ = convert.to_diffusion(copy.deepcopy(source), tok)
    own = copy.deepcopy(fresh).double().eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in own.model.layers[0].parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return fresh.double().eval(), own, tok.mask_token_id


def _ar_greedy(model, prompt, n, eos=None):
    with causal_mode(model):
        out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False,
                             eos_token_id=eos, pad_token_id=0)  # fmt: skip
    return out[0, len(prompt) :].tolist()


def test_the_mask_is_causal_for_the_verifying_rows_and_one_block_per_prefix():
    mask, positions = one_pass_layout(past=2, verify=2, width=2)  # Q = 2 + 2 * 2, K = 8
    m = mask[0, 0].int().tolist()
    assert m[0] == [1, 1, 1, 0, 0, 0, 0, 0]  # the pending token: cache + itself
    assert m[1] == [1, 1, 1, 1, 0, 0, 0, 0]  # d_1: causal, no mask
    assert m[2] == m[3] == [1, 1, 1, 0, 1, 1, 0, 0]  # block 0: cache, pending token, itself
    assert m[4] == m[5] == [1, 1, 1, 1, 0, 0, 1, 1]  # block 1: cache, pending token, d_1, itself
    assert positions.tolist() == [[2, 3, 3, 4, 4, 5]]  # block a sits right after d_a
    assert one_pass_layout(2, 3, 0)[0].shape == (1, 1, 3, 5)  # no next draft: the causal rows alone


@pytest.mark.parametrize("causal_clean", [True, False])
@torch.no_grad()
def test_a_pre_draft_reads_what_a_causal_clean_stream_trains(models, causal_clean):
    """The trainer's x_t logits of a fully masked block ([x_t ; x_0], ``--clean_stream causal``)
    are one-pass's pre-draft logits of that block after the same prefix (float64): TiDAR's recipe
    trains exactly what one-pass reads; BD3LM's block-causal x_0 half does not (control)."""
    _, model, mask_id = models
    x = torch.tensor([[5, 17, 42, 8, 99, 23, 61, 7]])  # L = 8, blocks of 4: block 1 masked
    xt = torch.cat([x[:, :4], torch.full((1, 4), mask_id)], dim=1)
    ids, pos, mask = blocks.bd3lm_inputs(xt, x, 4, causal_clean)
    trained = model(input_ids=ids, position_ids=pos, attention_mask=mask).logits[0, 4:8]
    cache = DynamicCache()
    with causal_mode(model):
        model(input_ids=x[:, :3], past_key_values=cache, use_cache=True)
    layout, positions = one_pass_layout(past=3, verify=1, width=4)  # pending x_3, one block
    drafted = model(input_ids=torch.tensor([[x[0, 3].item()] + [mask_id] * 4]),
                    position_ids=positions, past_key_values=cache, use_cache=True,
                    attention_mask=layout).logits[0, 1:]  # fmt: skip
    gap = (drafted - trained).abs().max().item()
    assert gap < 1e-12 if causal_clean else gap > 1e-8  # float64: 1e-16 against 5e-5


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("which", ["fresh", "own"])
def test_the_output_is_the_models_own_ar_greedy_decoding(models, shift, which):
    fresh, own, mask_id = models
    model = fresh if which == "fresh" else own
    stats = SpeculativeStats()
    for prompt in PROMPTS:
        got = one_pass_self_decode(model, prompt, 12, 4, mask_id, right_shift_logits=shift,
                                   stats=stats)  # fmt: skip
        assert got == _ar_greedy(model, prompt, 12)
    assert stats.tokens == 36 and stats.drafter_forwards == 0
    assert stats.verifier_forwards - 2 <= 36  # every forward commits at least one token


def _fresh_draft(model, committed: list[int], width: int, mask_id: int, shift: bool):
    """The draft after ``committed``, from one forward without a cache: ``committed`` causal, then
    ``width`` masks seeing all of it and each other (the first mask: the verifier's token)."""
    c = len(committed)
    keys = torch.arange(c + width)
    mask = (keys[None] <= keys[:, None]) | (keys[:, None] >= c)
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([committed + [mask_id] * width]),
                       attention_mask=mask[None, None]).logits[0]  # fmt: skip
    rows = torch.arange(c + 1, c + width) - int(shift)
    return logits[rows].argmax(-1).tolist()


@pytest.mark.parametrize("shift", [False, True])
def test_every_draft_is_the_one_drafted_on_the_committed_prefix(models, shift, monkeypatch):
    """Every forward after the first carries a draft, and it is the draft a fresh forward makes
    after exactly what was committed before the verifier's token, for every accepted length (the
    tiny model's drafts are rarely accepted, so the test makes the verifier accept 0, 1, 2, ...
    of each draft in turn; the output is then no longer lossless, only the drafts are checked)."""
    _, own, mask_id = models
    calls = []

    def cycling(draft, logits):  # accept len(calls) mod (k + 1) tokens, then the model's own
        n = len(calls) % (len(draft) + 1)
        calls.append(n)
        return n, int(logits[n].argmax())

    monkeypatch.setattr(one_pass, "greedy_accept", cycling)
    prompt, trace, stats = PROMPTS[1], [], SpeculativeStats()
    got = one_pass_self_decode(own, prompt, 16, 3, mask_id, stats=stats, trace=trace,
                               right_shift_logits=shift)  # fmt: skip
    assert [t for step in trace for t in step.committed] == got
    assert len(trace) == stats.verifier_forwards - 1  # the prefill verifies nothing
    for before, step in zip(trace, trace[1:], strict=False):
        committed = prompt + got[: before.start] + before.draft[: before.accepted]
        width = min(3, 16 - before.start - 2) + 1  # the block as drafted, cut to the room left
        fresh = _fresh_draft(own, committed, width, mask_id, shift)
        assert step.draft == fresh[: len(step.draft)]
    assert all(step.draft for step in trace[1:-2])  # control: a draft every time there was room
    assert {step.accepted for step in trace if len(step.draft) == 3} == {0, 1, 2, 3}


def test_eos_stops_the_run(models):
    _, own, mask_id = models
    free = _ar_greedy(own, PROMPTS[1], 12)
    eos = next(t for i, t in enumerate(free) if i >= 2 and t not in free[:i])
    got = one_pass_self_decode(own, PROMPTS[1], 12, 3, mask_id, eos_token_id=eos)
    assert got == _ar_greedy(own, PROMPTS[1], 12, eos=eos) and got[-1] == eos and len(got) < 12


def test_verifying_rows_that_see_the_masks_are_caught(models, monkeypatch):
    _, own, mask_id = models
    layout = one_pass_layout

    def full(past, verify, width, parents=None):  # every row sees every key, the masks too
        mask, positions = layout(past, verify, width, parents)
        return torch.ones_like(mask), positions

    monkeypatch.setattr(one_pass, "one_pass_layout", full)
    got = [one_pass_self_decode(own, p, 12, 4, mask_id) for p in PROMPTS]
    assert got != [_ar_greedy(own, p, 12) for p in PROMPTS]


def test_bad_input_is_refused(models, small_tokenizer):
    fresh, _, mask_id = models
    with pytest.raises(ValueError, match="draft_length=0"):
        one_pass_self_decode(fresh, [5], 4, 0, mask_id)
    with pytest.raises(TypeError, match="causal_mode needs an A2D model"):
        one_pass_self_decode(make_tiny_ar("qwen3", small_tokenizer), [5], 4, 2, mask_id)


def test_a_tree_layout_keeps_siblings_apart():
    """Columns 1 and 2 are siblings after column 0: neither sees the other, both sit one position
    after it, and each block sees only its own column's ancestry."""
    mask, positions = one_pass_layout(past=2, verify=3, width=2, parents=[-1, 0, 0])
    m = mask[0, 0].int().tolist()  # Q = 3 + 3 * 2, K = 11
    assert m[1] == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]  # column 1: cache, column 0, itself
    assert m[2] == [1, 1, 1, 0, 1, 0, 0, 0, 0, 0, 0]  # column 2: not its sibling
    assert m[7] == m[8] == [1, 1, 1, 0, 1, 0, 0, 0, 0, 1, 1]  # block after column 2
    assert positions.tolist() == [[2, 3, 3, 3, 4, 4, 5, 4, 5]]
    assert torch.equal(one_pass_layout(2, 3, 2, [-1, 0, 1])[0], one_pass_layout(2, 3, 2)[0])
    with pytest.raises(ValueError, match=r"column 2's parent must be an earlier column"):
        one_pass_layout(2, 3, 2, parents=[-1, 0, 2])


@pytest.mark.parametrize("shift", [False, True])
@pytest.mark.parametrize("candidates", [2, "all"])
def test_a_draft_tree_is_still_the_models_own_ar_greedy_decoding(models, shift, candidates):
    """Siblings of the first drafted token (the block's next choices) verified beside it: the
    output is unchanged. With every token a candidate (control) each forward that had a draft
    accepts one, through a sibling wherever the first choice was rejected."""
    _, own, mask_id = models
    m = own.config.vocab_size if candidates == "all" else candidates
    traces = []
    for prompt in PROMPTS:
        trace = []
        got = one_pass_self_decode(own, prompt, 12, 3, mask_id, candidates=m,
                                   right_shift_logits=shift, trace=trace)  # fmt: skip
        assert got == _ar_greedy(own, prompt, 12)
        assert [t for step in trace for t in step.committed] == got
        traces += trace
    if candidates == "all":
        drafted = [s for s in traces if s.draft]
        assert drafted and all(s.accepted >= 1 for s in drafted)
        assert any(s.accepted == 1 and len(s.draft) == 1 for s in drafted)  # a sibling's branch


def test_tree_attention_is_what_keeps_it_lossless(models, monkeypatch):
    """Negative control: siblings that see each other change the verifier's scores."""
    _, own, mask_id = models
    layout = one_pass_layout

    def leaky(past, verify, width, parents=None):  # every verifying column sees all of them
        mask, positions = layout(past, verify, width, parents)
        mask[..., :verify, past : past + verify] = True
        return mask, positions

    monkeypatch.setattr(one_pass, "one_pass_layout", leaky)
    got = [one_pass_self_decode(own, p, 12, 3, mask_id, candidates=4) for p in PROMPTS]
    assert got != [_ar_greedy(own, p, 12) for p in PROMPTS]


@pytest.mark.parametrize(
    "candidates, temperature, message",
    [(0, 0.0, r"candidates=0 must be an int >= 1"), (True, 0.0, r"candidates=True must be"),
     (2, 0.7, r"candidates=2 verifies a draft tree greedily: it needs temperature 0, not 0.7")],
)  # fmt: skip
def test_bad_tree_options_are_refused(models, candidates, temperature, message):
    _, own, mask_id = models
    with pytest.raises(ValueError, match=message):
        one_pass_self_decode(own, [5, 17], 4, 2, mask_id, candidates=candidates,
                             temperature=temperature)  # fmt: skip


def test_the_lm_head_runs_on_the_read_rows_only(models):
    """Each block has one column nobody reads (its first unshifted, its last shifted), so with a
    draft of 3 the head runs on 4 + 4 * 3 = 16 of a forward's 20 rows (as ``generate`` runs it on
    its last row alone); the run stays the model's AR-mode greedy output."""
    assert one_pass.read_rows(2, 2, shift=0).tolist() == [0, 1, 3, 5]
    assert one_pass.read_rows(2, 2, shift=1).tolist() == [0, 1, 2, 4]
    assert one_pass.read_rows(3, 0, shift=1).tolist() == [0, 1, 2]  # no blocks: verifiers alone
    _, own, mask_id = models
    rows = []
    hook = own.lm_head.register_forward_hook(lambda m, args, out: rows.append(args[0].shape[1]))
    try:
        got = one_pass_self_decode(own, PROMPTS[1], 12, 3, mask_id)
    finally:
        hook.remove()
    assert got == _ar_greedy(own, PROMPTS[1], 12)
    # the prefill (its own logits); the first forward: the pending token and its block's 3;
    # the second: 4 verifying rows and 4 blocks' 3 (of 20 columns: the control)
    assert rows[1:3] == [4, 16] and max(rows[1:]) == 16
