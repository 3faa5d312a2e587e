"""eval.compare: the retention benchmark's rows. A right-shifted fresh conversion decoded as
BD3LM in blocks of one token is its source (BD3LM §3), so it agrees exactly and loses nothing;
an unshifted reading is the negative control. Forward passes are counted, not estimated."""

import copy

import pytest
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.eval.compare import answer_nll_gap, chat_inputs, decode, retention_row

PROMPTS = ["What is the capital of France?", "Name three colors.", "Say hello.", "Count to 3."]


@pytest.fixture(scope="module")
def pair(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    source = make_tiny_ar("qwen3", tok, seed=5).double().eval()
    a2d, a2d_tok, _ = convert.to_diffusion(copy.deepcopy(source), tok)
    a2d.config.right_shift_logits = True  # read as the AR head: the A2D convention
    return source, a2d.double().eval(), a2d_tok


def test_ar_decoding_counts_one_forward_per_generated_token(pair):
    source, _, tok = pair
    inputs = chat_inputs(tok, PROMPTS[:1])
    out = decode(source, tok, inputs, algo="ar", max_new_tokens=12, batch_size=1)
    assert out.forwards == out.tokens and out.forwards_per_token == 1.0
    assert out.tokens > 0 and out.tok_per_s > 0


def test_a_fresh_conversion_at_block_size_1_is_its_source(pair):
    source, a2d, tok = pair
    inputs = chat_inputs(tok, PROMPTS)
    reference = decode(source, tok, inputs, algo="ar", max_new_tokens=12, batch_size=2)
    kept = decode(a2d, tok, inputs, algo="bd3lm", max_new_tokens=12, block_size=1)
    assert kept.texts == reference.texts and any(reference.texts)
    nll = answer_nll_gap(source, a2d, tok, PROMPTS, reference.texts, algo="bd3lm", block_size=1,
                         mc_num=2)  # fmt: skip
    row = retention_row("a2d", "bd3lm", "plain", kept, reference.texts, nll=nll)
    assert row.chrf == 1.0 and row.exact_match == 1.0 and abs(row.nll_gap) < 1e-9
    a2d.config.right_shift_logits = False  # control: the same weights read unshifted
    try:
        lost = decode(a2d, tok, inputs, algo="bd3lm", max_new_tokens=12, block_size=1)
        nll_lost = answer_nll_gap(source, a2d, tok, PROMPTS, reference.texts, algo="bd3lm",
                                  block_size=1, mc_num=2)  # fmt: skip
    finally:
        a2d.config.right_shift_logits = True
    worse = retention_row("a2d", "bd3lm", "plain", lost, reference.texts, nll=nll_lost)
    assert worse.exact_match < 1.0 and worse.nll_gap > 1e-3


def test_bad_rows_are_refused(pair):
    source, _, tok = pair
    with pytest.raises(ValueError, match="algo='gpt' is not valid"):
        decode(source, tok, chat_inputs(tok, PROMPTS[:1]), algo="gpt", max_new_tokens=4)
    out = decode(source, tok, chat_inputs(tok, PROMPTS[:2]), algo="ar", max_new_tokens=4)
    with pytest.raises(ValueError, match="2 answers but 3 reference answers"):
        retention_row("x", "ar", "source", out, ["a", "b", "c"])


def test_speculation_is_the_verifiers_greedy_output(pair):
    """Drafts by the A2D model, verified by the source: every row equals the source's own greedy
    generate (float64); the statistics count both models' forwards."""
    from a2dkit.eval.compare import speculate

    source, a2d, tok = pair
    inputs = chat_inputs(tok, PROMPTS)
    spec = speculate(source, a2d, tok, inputs, algo="bd3lm", draft_length=4, max_new_tokens=12)
    assert spec.identical == len(PROMPTS) and spec.decoding.texts == spec.verifier.texts
    assert spec.stats.verifier_forwards > 0 and spec.stats.drafter_forwards > 0
    assert spec.decoding.forwards == spec.stats.verifier_forwards + spec.stats.drafter_forwards
    assert sum(spec.stats.accepted.values()) > 0
