"""One-pass self-speculative decoding: the same forward verifies a draft causally and drafts the
next block under masks, and the output is the model's own AR-mode greedy decoding (float64, tiny
models); a mask that let the verifying rows see the masks is caught."""

import copy

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.models import causal_mode
from a2dkit.samplers import one_pass
from a2dkit.samplers.one_pass import one_pass_mask, one_pass_self_decode
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


def test_the_mask_is_causal_for_the_verifying_rows_and_open_for_the_masks():
    m = one_pass_mask(past=2, verify=3, masks=2)[0, 0]  # (5, 7)
    assert m[0].tolist() == [True] * 3 + [False] * 4  # the pending token: cache + itself
    assert m[2].tolist() == [True] * 5 + [False] * 2  # the last drafted token: no mask
    assert m[3].all() and m[4].all()  # masks: every key, each other included


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


def test_a_draft_follows_only_a_fully_accepted_one(models):
    """The trace adds up to the output; a forward carries a draft only when the forward before
    it accepted all of its own (its masks were conditioned on what was committed)."""
    _, own, mask_id = models
    trace, stats = [], SpeculativeStats()
    got = one_pass_self_decode(own, PROMPTS[1], 16, 3, mask_id, stats=stats, trace=trace)
    assert [t for step in trace for t in step.committed] == got
    assert len(trace) == stats.verifier_forwards - 1  # the prefill verifies nothing
    for before, step in zip(trace, trace[1:], strict=False):
        assert not step.draft or before.accepted == len(before.draft)
    assert any(step.draft for step in trace)  # control: drafts were made


def test_eos_stops_the_run(models):
    _, own, mask_id = models
    free = _ar_greedy(own, PROMPTS[1], 12)
    eos = next(t for i, t in enumerate(free) if i >= 2 and t not in free[:i])
    got = one_pass_self_decode(own, PROMPTS[1], 12, 3, mask_id, eos_token_id=eos)
    assert got == _ar_greedy(own, PROMPTS[1], 12, eos=eos) and got[-1] == eos and len(got) < 12


def test_verifying_rows_that_see_the_masks_are_caught(models, monkeypatch):
    _, own, mask_id = models
    def full(past, verify, masks):  # every row sees every key, the masks included
        return torch.ones(1, 1, verify + masks, past + verify + masks, dtype=torch.bool)

    monkeypatch.setattr(one_pass, "one_pass_mask", full)
    got = [one_pass_self_decode(own, p, 12, 4, mask_id) for p in PROMPTS]
    assert got != [_ar_greedy(own, p, 12) for p in PROMPTS]


def test_bad_input_is_refused(models, small_tokenizer):
    fresh, _, mask_id = models
    with pytest.raises(ValueError, match="draft_length=0"):
        one_pass_self_decode(fresh, [5], 4, 0, mask_id)
    with pytest.raises(TypeError, match="causal_mode needs an A2D model"):
        one_pass_self_decode(make_tiny_ar("qwen3", small_tokenizer), [5], 4, 2, mask_id)
