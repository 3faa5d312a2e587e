"""Speculative decoding is lossless: its output is the verifier's greedy decoding, whatever the
drafter proposes (float64, tiny models), with the source AR model or the A2D model itself in its
AR mode (``self``) as the verifier; perfect drafts are all accepted."""

import copy
import json

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.models import causal_mode
from a2dkit.samplers import BD3LMSampler, MDLMSampler
from a2dkit.samplers.drafters import sampler_drafter
from a2dkit.samplers.speculative import (
    CausalVerifier,
    SpeculativeStats,
    speculative_decode,
    speculative_decode_batch,
    speculative_greedy,
)

PROMPTS = [[5, 17, 42], [8, 99, 23, 61, 7, 30], [11]]


@pytest.fixture(scope="module")
def pair(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    source = make_tiny_ar("qwen3", tok).double().eval()
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), tok)
    return source, a2d.double().eval(), tok


def _greedy(model, prompt, n, eos=None):
    out = model.generate(torch.tensor([prompt]), max_new_tokens=n, do_sample=False,
                         eos_token_id=eos, pad_token_id=0)  # fmt: skip
    return out[0, len(prompt) :].tolist()


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
def test_the_output_is_the_verifiers_greedy_decoding(pair, sampler_cls):
    source, a2d, tok = pair
    stats = SpeculativeStats()
    drafter = sampler_drafter(sampler_cls(a2d, tok), stats)
    for prompt in PROMPTS:
        got = speculative_greedy(source, drafter, prompt, 10, draft_length=4, stats=stats)
        assert got == _greedy(source, prompt, 10)
    assert stats.drafter_forwards > 0 and stats.tokens == 30
    assert sum(stats.accepted.values()) <= stats.verifier_forwards


def test_generation_stops_at_the_verifiers_eos(pair):
    source, a2d, tok = pair
    free = _greedy(source, PROMPTS[1], 10)
    eos = free[4]  # a token the verifier emits: call it EOS
    drafter = sampler_drafter(BD3LMSampler(a2d, tok))
    got = speculative_greedy(source, drafter, PROMPTS[1], 10, 3, eos_token_id=eos)
    assert got == _greedy(source, PROMPTS[1], 10, eos=eos) and got[-1] == eos
    assert len(got) == free.index(eos) + 1  # control: EOS cut the run short


def test_perfect_drafts_are_all_accepted(pair):
    source, _, _ = pair
    drafter = lambda prefix, k: _greedy(source, prefix, k)  # noqa: E731  the verifier's own
    stats = SpeculativeStats()
    got = speculative_greedy(source, drafter, PROMPTS[0], 15, draft_length=4, stats=stats)
    assert got == _greedy(source, PROMPTS[0], 15)
    assert stats.accepted == {4: 3}  # 3 rounds of 4 drafts + the verifier's own token
    assert stats.verifier_forwards == 1 + 3 and stats.tokens_per_verifier_forward == 15 / 4


def test_an_a2d_model_in_causal_mode_verifies_as_its_source(pair):
    source, a2d, tok = pair
    drafter = sampler_drafter(MDLMSampler(a2d, tok))
    got = speculative_greedy(a2d, drafter, PROMPTS[1], 8, draft_length=3)  # self: causal_mode
    assert got == _greedy(source, PROMPTS[1], 8)


@pytest.fixture(scope="module")
def own(pair):
    """An A2D model whose AR mode is its own, not its source's (perturbed, as joint training
    would leave it), and its AR-mode greedy decoding (``causal_mode`` + ``generate``)."""
    source, a2d, tok = pair
    model = copy.deepcopy(a2d)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.model.layers[0].parameters():
            p.add_(0.5 * torch.randn(p.shape, generator=gen, dtype=p.dtype))

    def ar_greedy(prompt, n, eos=None):
        with causal_mode(model):
            return _greedy(model, prompt, n, eos)

    assert any(ar_greedy(p, 10) != _greedy(source, p, 10) for p in PROMPTS)  # control
    return model, tok, ar_greedy


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
def test_self_mode_is_the_models_own_ar_greedy_decoding(own, sampler_cls):
    model, tok, ar_greedy = own
    stats = SpeculativeStats()
    drafter = sampler_drafter(sampler_cls(model, tok), stats)  # the same weights, bidirectional
    for prompt in PROMPTS:
        got = speculative_greedy(CausalVerifier(model), drafter, prompt, 10, 4, stats=stats)
        assert got == ar_greedy(prompt, 10)
    eos = ar_greedy(PROMPTS[1], 10)[3]
    got = speculative_greedy(model, drafter, PROMPTS[1], 10, 3, eos_token_id=eos)
    assert got == ar_greedy(PROMPTS[1], 10, eos=eos) and got[-1] == eos
    assert not model.a2d_causal  # drafting between verifier calls stays bidirectional


def test_a_causal_verifier_needs_an_a2d_model(pair):
    source, _, _ = pair
    with pytest.raises(TypeError, match="causal_mode needs an A2D model"):
        CausalVerifier(source)


def test_statistics_as_json(pair):
    source, a2d, tok = pair
    stats = SpeculativeStats()
    drafter = sampler_drafter(BD3LMSampler(a2d, tok), stats)
    speculative_decode(source, drafter, PROMPTS[0], 9, 4, stats=stats)
    d = json.loads(json.dumps(stats.as_dict()))
    assert d["tokens"] == 9 and d["tokens_per_second"] > 0 and d["seconds"] > 0
    rounds = sum(d["acceptance_histogram"].values())
    assert rounds == stats.verifier_forwards - 1  # every forward but the prefill verifies
    accepted = sum(int(n) * c for n, c in d["acceptance_histogram"].items())
    assert accepted + rounds == 9 and d["accepted_per_verifier_forward"] == accepted / rounds
    want = (stats.verifier_forwards + stats.drafter_forwards) / 9
    assert d["forwards_per_token"] == want


def test_bad_input_is_refused(pair):
    source, _, _ = pair
    with pytest.raises(ValueError, match="draft_length=0"):
        speculative_greedy(source, lambda p, k: [1] * k, [5], 4, draft_length=0)
    with pytest.raises(ValueError, match="returned 1 tokens; 3 were asked for"):
        speculative_greedy(source, lambda p, k: [1], [5], 8, draft_length=3)
    with pytest.raises(ValueError, match="sampling .* needs a drafter that returns q"):
        speculative_decode(source, lambda p, k: [1] * k, [5], 4, 2, temperature=1.0)
    with pytest.raises(ValueError, match="temperature=-1.0 must be a finite number"):
        speculative_decode(source, lambda p, k: [1] * k, [5], 4, 2, temperature=-1.0)


# --- batches: rows of different lengths verified together, each its own greedy decoding ------


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
@pytest.mark.parametrize("shift", [False, True])
def test_a_padded_batch_is_every_rows_greedy_decoding(pair, sampler_cls, shift):
    source, a2d, tok = pair
    batched, alone = SpeculativeStats(), SpeculativeStats()
    options = {"right_shift_logits": shift}
    got = speculative_decode_batch(source, sampler_drafter(sampler_cls(a2d, tok), batched,
                                   **options), PROMPTS, 10, 4, stats=batched)  # fmt: skip
    assert got == [_greedy(source, p, 10) for p in PROMPTS]  # lengths 3, 6 and 1
    for p in PROMPTS:  # the same rows one at a time: the same counts, forward for forward
        speculative_decode(source, sampler_drafter(sampler_cls(a2d, tok), alone, **options), p,
                           10, 4, stats=alone)  # fmt: skip
    assert batched.accepted == alone.accepted and batched.tokens == alone.tokens == 30
    assert batched.verifier_forwards == alone.verifier_forwards
    assert batched.drafter_forwards == alone.drafter_forwards


def test_rows_stop_at_their_own_eos_and_the_rest_go_on(pair):
    source, a2d, tok = pair
    free = [_greedy(source, p, 10) for p in PROMPTS]
    eos = next(t for t in free[1][1:] if t not in free[1][:1] and all(t not in f for f in free[:1]))
    drafter = sampler_drafter(BD3LMSampler(a2d, tok))
    got = speculative_decode_batch(source, drafter, PROMPTS, 10, 3, eos_token_id=eos)
    assert got == [_greedy(source, p, 10, eos=eos) for p in PROMPTS]
    assert got[1][-1] == eos and 1 < len(got[1]) < 10 and len(got[0]) == 10  # one row cut


@pytest.mark.parametrize("sampler_cls", [MDLMSampler, BD3LMSampler])
def test_self_mode_in_a_batch_is_each_rows_own_ar_decoding(own, sampler_cls):
    model, tok, ar_greedy = own
    drafter = sampler_drafter(sampler_cls(model, tok))
    got = speculative_decode_batch(model, drafter, PROMPTS, 10, 4)
    assert got == [ar_greedy(p, 10) for p in PROMPTS]


def test_the_ragged_cache_hides_padding_and_rejected_drafts(pair):
    """Every row's logits through a cache with holes equal the row's own forward (float64); a
    hole left visible changes them (the control)."""
    from a2dkit.samplers.ragged_cache import RaggedCache

    source = pair[0]
    rows = [[5, 17, 42, 9], [8, 99]]

    def through(cache_holes: bool) -> list[torch.Tensor]:
        cache = RaggedCache(2, "cpu")
        ids = torch.tensor([[5, 17, 42, 9], [8, 99, 0, 0]])
        cache.forward(source, ids, ids != 0)
        cache.keep(0, 0, 3, 4)  # row 0 rejects its last token: a hole
        if not cache_holes:
            cache.keys[:] = True  # control: padding and the rejected token seen as keys
        nxt = torch.tensor([[7, 3], [7, 3]])
        return cache.forward(source, nxt, torch.ones(2, 2, dtype=torch.bool))

    got, leaky = through(True), through(False)
    with torch.no_grad():
        for b, row in enumerate(rows):
            kept = row[:3] if b == 0 else row
            want = source(torch.tensor([[*kept, 7, 3]])).logits[0, -2:]
            torch.testing.assert_close(got[b], want, rtol=0, atol=1e-10)
            assert (leaky[b] - want).abs().max() > 1e-4


def test_a_batch_with_an_empty_prompt_is_refused(pair):
    source = pair[0]
    with pytest.raises(ValueError, match="every prompt must hold at least one token"):
        speculative_decode_batch(source, lambda p, k: [1] * k, [[5], []], 4, 2)
    with pytest.raises(ValueError, match="every prompt must hold at least one token"):
        speculative_decode_batch(source, lambda p, k: [1] * k, [], 4, 2)
