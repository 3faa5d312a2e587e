"""Monte-Carlo ELBO (a2dkit.eval) against the exact bound, enumerated over every mask pattern."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit import eval as a2d_eval

SEQ = [5, 17, 42, 8, 99, 23, 61, 7, 150]  # 9 tokens: 3 prompt + 6 target


@pytest.fixture(scope="module")
def model(small_tokenizer):
    """A tiny converted Qwen3 in float64 whose logits depend strongly on the context."""
    import copy

    tok = copy.deepcopy(small_tokenizer)
    ar = make_tiny_ar("qwen3", tok)
    with torch.no_grad():  # large weights: far-from-uniform, context-dependent predictions
        for p in ar.parameters():
            p.mul_(25.0 if p.dim() > 1 else 1.0)
    a2d, tok, _ = convert.to_diffusion(ar, tok)
    return a2d.double().eval()


def _coeff_count(k: int, n: int, eps: float = 0.0) -> float:
    """Probability-times-weight of one size-k subset: E_l[(N/l) 1{S drawn}] = 1 / (k C(N, k))."""
    return 1.0 / (k * math.comb(n, k))


def _coeff_time(k: int, n: int, eps: float) -> float:
    """(1/(1-eps)) ∫_eps^1 (1/t) t^k (1-t)^(N-k) dt, expanding (1-t)^(N-k) binomially."""
    terms = (
        math.comb(n - k, j) * (-1) ** j * (1 - eps ** (k + j)) / (k + j) for j in range(n - k + 1)
    )
    return sum(terms) / (1 - eps)


@torch.no_grad()
def _exact_block(model, prefix, block, targets, mask_id, block_size, coeff,
                 causal_clean=False) -> float:  # fmt: skip
    """-Σ_S coeff(|S|) Σ_{i∈S} CE_i for one block, noised block after the clean ``prefix``.

    The model sees ``prefix + noised block`` under a hand-built block-causal mask (the sampling
    view), an attention path independent of the staircase used by ``bd3lm_elbo``.
    """
    x = torch.tensor(prefix + block)
    n, start = len(targets), len(prefix)
    subsets = [s for k in range(1, n + 1) for s in itertools.combinations(targets, k)]
    xt = x.repeat(len(subsets), 1)  # (|subsets|, L)
    for row, s in enumerate(subsets):
        xt[row, [start + i for i in s]] = mask_id
    blk = torch.arange(len(x)) // block_size
    attend = blk[None, :] <= blk[:, None]  # (L, L)
    if causal_clean:  # --clean_stream causal: the clean prefix token-causal
        idx = torch.arange(len(x))
        attend = torch.where((idx < start)[:, None], idx[None, :] <= idx[:, None], attend)
    attend = attend[None, None].expand(len(subsets), 1, -1, -1)
    logp = model(xt, attention_mask=attend).logits.double().log_softmax(-1)  # (S, L, V)
    total = 0.0
    for row, s in enumerate(subsets):
        ce = -sum(logp[row, start + i, x[start + i]].item() for i in s)
        total += coeff(len(s), n) * ce
    return -total


def _exact(model, seq, prompt_len, mask_id, block_size=None, coeff=_coeff_count,
           causal_clean=False) -> float:  # fmt: skip
    """Exact ELBO: sum over blocks (one block spanning everything for MDLM)."""
    block_size = block_size or len(seq)
    total = 0.0
    for s in range(0, len(seq), block_size):
        block = seq[s : s + block_size]
        targets = [i for i in range(len(block)) if s + i >= prompt_len]
        if targets:
            total += _exact_block(model, seq[:s], block, targets, mask_id, block_size, coeff,
                                  causal_clean)  # fmt: skip
    return total


def _estimate(model, seq, prompt_len, block_size=None, seed=0, **kw):
    gen = torch.Generator().manual_seed(seed)
    ids = torch.tensor(seq)
    if block_size is None:
        return a2d_eval.mdlm_elbo(model, ids, prompt_len=prompt_len, generator=gen, **kw)
    return a2d_eval.bd3lm_elbo(
        model, ids, prompt_len=prompt_len, block_size=block_size, generator=gen, **kw
    )


def test_single_target_token_elbo_is_its_exact_log_prob(model):
    """N = 1: every draw masks the one token with weight 1, so the ELBO is log p exactly."""
    ids = torch.tensor(SEQ[:5])
    res = a2d_eval.mdlm_elbo(model, ids, prompt_len=4, mc_num=8)
    xt = ids.clone()
    xt[4] = model.config.mask_token_id
    logp = model(xt[None]).logits[0, 4].double().log_softmax(-1)[ids[4]]
    assert torch.allclose(res.samples, logp.expand(8), atol=1e-10)
    assert res.stderr.item() == 0.0


@pytest.mark.parametrize("block_size", [None, 3, 2])
@pytest.mark.parametrize("estimator", ["count", "time"])
def test_estimate_is_unbiased_within_4_stderr_of_exact_bound(model, block_size, estimator):
    """MDLM (block_size None) and BD3LM: the mc_num = 256 estimate is within 4 standard errors."""
    eps = 1e-3
    coeff = _coeff_count if estimator == "count" else (lambda k, n: _coeff_time(k, n, eps))
    exact = _exact(model, SEQ, 3, model.config.mask_token_id, block_size, coeff)
    res = _estimate(model, SEQ, 3, block_size, mc_num=256, estimator=estimator, eps=eps)
    assert res.stderr > 0
    assert abs(res.mean.item() - exact) <= 4 * res.stderr.item()


def test_a_causal_clean_stream_checkpoint_is_scored_as_it_was_trained(model):
    """config.a2d_clean_stream = "causal" (``--clean_stream causal``): the BD3LM ELBO encodes the
    clean prefix token-causally: within 4 standard errors of that exact bound, and, paired with
    BD3LM's on the same mask draws, off from it by the exact bounds' difference (the control)."""
    mask_id = model.config.mask_token_id
    exact = _exact(model, SEQ, 3, mask_id, 3, causal_clean=True)
    block = _exact(model, SEQ, 3, mask_id, 3)
    model.config.a2d_clean_stream = "causal"
    try:
        res = _estimate(model, SEQ, 3, 3, mc_num=256)
    finally:
        del model.config.a2d_clean_stream
    assert abs(res.mean.item() - exact) <= 4 * res.stderr.item()
    paired = res.samples - _estimate(model, SEQ, 3, 3, mc_num=256).samples  # same draws
    err = (paired.std() / len(paired) ** 0.5).item()
    assert abs(paired.mean().item() - (exact - block)) <= 4 * err
    assert abs(exact - block) > 8 * err  # the two clean streams are told apart


@pytest.mark.parametrize("block_size", [None, 2])
def test_error_shrinks_as_mc_num_grows(model, block_size):
    """Mean |estimate - exact| over 8 seeds: ~sqrt(1024 / 16) = 8x smaller at mc_num = 1024."""
    exact = _exact(model, SEQ[:6], 1, model.config.mask_token_id, block_size)

    def mean_abs_error(mc_num: int) -> float:
        errors = [
            abs(_estimate(model, SEQ[:6], 1, block_size, seed=s, mc_num=mc_num, batch_size=256)
                .mean.item() - exact)
            for s in range(8)
        ]  # fmt: skip
        return sum(errors) / len(errors)

    assert mean_abs_error(1024) < mean_abs_error(16)


def test_time_estimator_with_eps_zero_matches_count_exact_value(model):
    """With eps = 0 the linear-schedule integral is a Beta function: both exact values agree."""
    for k, n in [(1, 1), (1, 6), (3, 6), (6, 6)]:
        assert _coeff_time(k, n, 0.0) == pytest.approx(_coeff_count(k, n), rel=1e-12)


def test_bd3lm_with_a_single_block_equals_mdlm(model):
    """block_size = L: the x_t half sees only itself, so BD3LM reduces to MDLM draw by draw."""
    mdlm = _estimate(model, SEQ, 3, None, seed=3, mc_num=32)
    bd3lm = _estimate(model, SEQ, 3, len(SEQ), seed=3, mc_num=32)
    assert torch.allclose(mdlm.samples, bd3lm.samples, atol=1e-9)


@pytest.mark.parametrize("block_size", [None, 3])
def test_left_padding_does_not_change_the_draws(model, block_size):
    """One block of left padding (pads masked out, positions shifted) leaves every draw equal."""
    pad = 3
    ids = torch.tensor([0] * pad + SEQ)
    attn = torch.tensor([0] * pad + [1] * len(SEQ))
    kw = dict(mc_num=16, generator=torch.Generator().manual_seed(1))
    if block_size is None:
        padded = a2d_eval.mdlm_elbo(model, ids, prompt_len=pad + 3, attention_mask=attn, **kw)
    else:
        padded = a2d_eval.bd3lm_elbo(
            model, ids, prompt_len=pad + 3, attention_mask=attn, block_size=block_size, **kw
        )
    plain = _estimate(model, SEQ, 3, block_size, seed=1, mc_num=16)
    assert torch.allclose(padded.samples, plain.samples, atol=1e-9)


def test_sample_masks_count_estimator_masks_1_to_n_targets_per_block():
    """Only targets are masked; each block masks l in {1..N_b} tokens with weight N_b / l."""
    target = torch.tensor([False, False, True, True, True, True, True])  # blocks of 3: 1, 3, 1
    block_ids = torch.arange(7) // 3
    masked, weight = a2d_eval.sample_masks(target, block_ids, 500)
    assert not masked[:, ~target].any() and (weight[:, ~target] == 0).all()
    for block, n in [(0, 1), (1, 3), (2, 1)]:
        cols = target & (block_ids == block)
        count = masked[:, cols].sum(1)  # (S,)
        assert count.min() == 1 and count.max() == n
        assert torch.equal(
            weight[:, cols], (n / count.double())[:, None].expand(-1, int(cols.sum()))
        )


def test_batched_input_gives_one_result_per_row(model):
    ids = torch.tensor([SEQ, SEQ[::-1]])
    res = a2d_eval.mdlm_elbo(model, ids, prompt_len=[3, 5], mc_num=4)
    assert res.mean.shape == (2,) and res.stderr.shape == (2,) and res.samples.shape == (2, 4)
    target = torch.arange(len(SEQ)) >= 3
    same = a2d_eval.mdlm_elbo(model, ids[:1], target_mask=target, mc_num=4,
                              generator=torch.Generator().manual_seed(0))  # fmt: skip
    first = a2d_eval.mdlm_elbo(model, ids[:1], prompt_len=3, mc_num=4,
                               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert torch.equal(same.samples, first.samples)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(prompt_len=3, mc_num=0), "mc_num=0"),
        (dict(prompt_len=3, estimator="bogus"), "estimator='bogus'.*count"),
        (dict(prompt_len=3, eps=1.0), "eps=1.0"),
        (dict(), "exactly one of target_mask"),
        (dict(prompt_len=99), "prompt_len=99"),
        (dict(prompt_len=3, block_size=0), "block_size=0"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(model, kwargs, match):
    fn = a2d_eval.bd3lm_elbo if "block_size" in kwargs else a2d_eval.mdlm_elbo
    with pytest.raises(ValueError, match=match):
        fn(model, torch.tensor(SEQ), **kwargs)


def test_missing_mask_token_is_refused(small_tokenizer):
    ar = make_tiny_ar("qwen3", small_tokenizer)  # an AR model: no mask token anywhere
    with pytest.raises(ValueError, match="mask_token_id"):
        a2d_eval.mdlm_elbo(ar, torch.tensor(SEQ), prompt_len=3)


def test_right_shifted_bd3lm_elbo_reads_a_block_start_from_the_clean_prefix(model):
    """Targets: the last token of block 0 and the first of block 1 (block 3). With right shift,
    token 3 is scored from clean column 2 (what the block sampler conditions on), not from the
    x_t copy of block 0, whose column 2 is then masked; every draw is exact (one target per
    block)."""
    ids, mask_id = torch.tensor(SEQ[:6]), model.config.mask_token_id
    target = torch.zeros(6, dtype=torch.bool)
    target[2:4] = True
    res = a2d_eval.bd3lm_elbo(model, ids, block_size=3, target_mask=target, mc_num=4,
                              right_shift_logits=True)  # fmt: skip
    noisy0 = ids[:3].clone()
    noisy0[2] = mask_id
    logp2 = model(noisy0[None]).logits[0, 1].log_softmax(-1)[ids[2]]  # block 0: x_t column 1
    logp3 = model(ids[None, :3]).logits[0, 2].log_softmax(-1)[ids[3]]  # clean column 2
    naive3 = model(noisy0[None]).logits[0, 2].log_softmax(-1)[ids[3]]  # the noisy column 2
    assert torch.allclose(res.samples, (logp2 + logp3).expand(4), atol=1e-10)
    assert abs((naive3 - logp3).item()) > 1e-3  # negative control: the two readings differ


def test_elbo_reads_the_shift_from_the_checkpoint_and_refuses_an_unscorable_first_token(model):
    ids = torch.tensor(SEQ)
    plain = a2d_eval.mdlm_elbo(model, ids, prompt_len=3, mc_num=4,
                               generator=torch.Generator().manual_seed(0))  # fmt: skip
    kw = dict(prompt_len=3, mc_num=4, right_shift_logits=True)
    shifted = a2d_eval.mdlm_elbo(model, ids, generator=torch.Generator().manual_seed(0), **kw)
    model.config.right_shift_logits = True  # as a trainer run with --right_shift_logits records
    try:
        default = a2d_eval.mdlm_elbo(model, ids, prompt_len=3, mc_num=4,
                                     generator=torch.Generator().manual_seed(0))  # fmt: skip
        with pytest.raises(ValueError, match="first token cannot be a target"):
            a2d_eval.mdlm_elbo(model, ids, prompt_len=0, mc_num=4)
    finally:
        del model.config.right_shift_logits
    assert torch.equal(default.samples, shifted.samples)
    assert not torch.allclose(plain.samples, shifted.samples)  # the shift changes the bound
