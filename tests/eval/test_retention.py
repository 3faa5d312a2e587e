"""eval.retention: the source's exact NLL beside the A2D model's ELBO bound, on the same tokens."""

import copy

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.eval.retention import likelihood_gap, source_nll

SEQ = [5, 17, 42, 8, 99, 23, 61, 7, 30, 11]


@pytest.fixture(scope="module")
def pair(small_tokenizer):
    """A tiny AR Qwen3 and its fresh conversion, both float64."""
    tok = copy.deepcopy(small_tokenizer)
    source = make_tiny_ar("qwen3", tok).double().eval()
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), tok)
    return source, a2d.double().eval()


def test_source_nll_equals_scoring_each_prefix_alone(pair):
    source, _ = pair
    ids = torch.tensor([SEQ])
    target = torch.zeros_like(ids, dtype=torch.bool)
    target[0, 4:] = True
    total, tokens = source_nll(source, ids, target)
    with torch.no_grad():
        loop = -sum(source(ids[:, :i]).logits[0, -1].log_softmax(-1)[SEQ[i]].item()
                    for i in range(4, len(SEQ)))  # fmt: skip
    assert tokens == len(SEQ) - 4 and total == pytest.approx(loop, abs=1e-10)


def test_left_padding_does_not_change_the_source_nll(pair):
    source, _ = pair
    ids, pad = torch.tensor([SEQ]), torch.tensor([[0, 0, *SEQ]])
    mask = torch.tensor([[0, 0] + [1] * len(SEQ)])
    target = torch.arange(len(SEQ))[None] >= 3
    plain = source_nll(source, ids, target)
    padded = source_nll(source, pad, torch.cat([torch.zeros(1, 2, dtype=torch.bool), target], 1),
                        attention_mask=mask)  # fmt: skip
    assert padded[1] == plain[1] and padded[0] == pytest.approx(plain[0], abs=1e-10)


def test_a_fresh_conversion_keeps_its_source_exactly_at_block_size_1(pair):
    """Right-shifted BD3LM in blocks of 1 is autoregressive (BD3LM §3): the converted model's bound
    is its source's exact NLL, so the gap is 0 to float64 rounding and every draw is the same."""
    source, a2d = pair
    kept = likelihood_gap(source, a2d, torch.tensor([SEQ]), algo="bd3lm", block_size=1,
                          prompt_len=2, mc_num=3, right_shift_logits=True)  # fmt: skip
    assert kept.tokens == len(SEQ) - 2
    assert abs(kept.gap) < 1e-9 and kept.a2d_stderr == 0.0
    lost = likelihood_gap(source, a2d, torch.tensor([SEQ]), algo="bd3lm", block_size=1,
                          prompt_len=2, mc_num=3, right_shift_logits=False)  # fmt: skip
    assert lost.gap > 1e-3  # control: read unshifted (a random model: small, 1e6 x the tolerance)


def test_mdlm_gap_is_measured_on_the_same_tokens(pair):
    source, a2d = pair
    gen = torch.Generator().manual_seed(0)
    res = likelihood_gap(source, a2d, torch.tensor([SEQ, SEQ[::-1]]), algo="mdlm", prompt_len=3,
                         mc_num=8, generator=gen)  # fmt: skip
    assert res.tokens == 2 * (len(SEQ) - 3) and res.a2d_stderr > 0
    assert res.gap == pytest.approx(res.a2d_nll_bound - res.source_nll)


def test_bad_input_is_refused(pair):
    source, a2d = pair
    ids = torch.tensor([SEQ])
    with pytest.raises(ValueError, match="algo='ar'"):
        likelihood_gap(source, a2d, ids, algo="ar", prompt_len=2)
    with pytest.raises(ValueError, match="block_size=None: BD3LM needs one"):
        likelihood_gap(source, a2d, ids, algo="bd3lm", prompt_len=2)
    with pytest.raises(ValueError, match="block_size=4: BD3LM needs one, MDLM takes none"):
        likelihood_gap(source, a2d, ids, algo="mdlm", block_size=4, prompt_len=2)
    with pytest.raises(ValueError, match="first token has no context"):
        likelihood_gap(source, a2d, ids, algo="mdlm", prompt_len=0)
    with pytest.raises(ValueError, match="outside the source vocabulary"):
        likelihood_gap(source, a2d, torch.tensor([[1, 10**6]]), algo="mdlm", prompt_len=1)
