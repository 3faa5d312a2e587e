"""Tests for a2dkit.diffusion.masking: statistical (mask rate, time marginal), stratification,
error paths."""

from __future__ import annotations

import math

import pytest
import torch

from a2dkit.diffusion.masking import mask_tokens, sample_t

MASK_ID = 99


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _uniform_mean_within_4_sigma(t: torch.Tensor, eps: float) -> bool:
    """U[eps, 1) has mean (1 + eps)/2 and sd (1 - eps)/sqrt(12)."""
    sigma = (1 - eps) / math.sqrt(12 * t.numel())
    return abs(t.double().mean().item() - (1 + eps) / 2) < 4 * sigma


@pytest.mark.parametrize("antithetic", [False, True])
def test_sample_t_range_shape_and_dtype(antithetic):
    eps = 0.05
    t = sample_t(50_000, eps=eps, antithetic=antithetic, generator=_gen())
    assert t.shape == (50_000,) and t.dtype == torch.float32
    assert (t >= eps).all() and (t < 1).all()


def test_sample_t_marginal_mean_is_uniform_mean():
    eps = 1e-3
    assert _uniform_mean_within_4_sigma(sample_t(100_000, eps=eps, generator=_gen(1)), eps)
    # antithetic: the first element of each batch is still marginally U[eps, 1)
    gen = _gen(2)
    firsts = torch.stack(
        [sample_t(4, eps=eps, antithetic=True, generator=gen)[0] for _ in range(20_000)]
    )
    assert _uniform_mean_within_4_sigma(firsts, eps)


@pytest.mark.parametrize("batch_size", [1, 2, 7, 64, 1000])
def test_antithetic_puts_exactly_one_sample_in_each_stratum(batch_size):
    eps = 1e-3
    gen = _gen(3)
    for _ in range(20):
        t = sample_t(batch_size, eps=eps, antithetic=True, generator=gen)
        stratum = torch.floor((t.double() - eps) / (1 - eps) * batch_size).long()
        assert torch.equal(stratum.sort().values, torch.arange(batch_size))


def test_sample_t_is_reproducible_with_a_generator():
    assert torch.equal(sample_t(16, generator=_gen(4)), sample_t(16, generator=_gen(4)))
    assert not torch.equal(sample_t(16, generator=_gen(4)), sample_t(16, generator=_gen(5)))


@pytest.mark.parametrize("eps", [-0.1, 1.0, 1.5])
def test_sample_t_rejects_bad_eps(eps):
    with pytest.raises(ValueError, match=rf"eps={eps}.*0 <= eps < 1"):
        sample_t(4, eps=eps)


@pytest.mark.parametrize("batch_size", [0, -3, 2.0])
def test_sample_t_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size="):
        sample_t(batch_size)


@pytest.mark.parametrize("p", [0.03, 0.3, 0.9])
def test_mask_rate_matches_p_mask_within_4_sigma(p):
    x0 = torch.randint(0, 50, (100, 1000), generator=_gen(6))
    maskable = torch.ones_like(x0, dtype=torch.bool)
    _, masked = mask_tokens(x0, torch.full((100,), p), maskable, MASK_ID, generator=_gen(7))
    n = masked.numel()
    assert abs(masked.sum().item() - n * p) < 4 * math.sqrt(n * p * (1 - p))


def test_per_sequence_p_mask_gives_per_row_rates():
    p = torch.tensor([0.1, 0.25, 0.5, 0.75, 0.95])
    x0 = torch.zeros(5, 20_000, dtype=torch.long)
    _, masked = mask_tokens(x0, p[:, None], torch.ones_like(x0, dtype=torch.bool), MASK_ID, _gen(8))
    n = x0.shape[1]
    sigma = torch.sqrt(n * p * (1 - p))
    assert ((masked.sum(dim=1) - n * p).abs() < 4 * sigma).all()


def test_prompt_and_padding_are_never_masked_and_xt_is_consistent():
    x0 = torch.randint(0, 50, (64, 40), generator=_gen(9))
    prompt_len = torch.randint(0, 40, (64, 1), generator=_gen(10))
    maskable = torch.arange(40)[None, :] >= prompt_len  # (B, L): prompt positions are False
    xt, masked = mask_tokens(x0, torch.full((64,), 0.99), maskable, MASK_ID, generator=_gen(11))
    assert not (masked & ~maskable).any()
    assert torch.equal(xt[~maskable], x0[~maskable])
    assert (xt[masked] == MASK_ID).all()
    assert torch.equal(xt[~masked], x0[~masked])
    assert xt.dtype == x0.dtype


def test_p_mask_zero_and_one_are_deterministic():
    x0 = torch.randint(0, 50, (8, 16), generator=_gen(12))
    maskable = torch.rand(8, 16, generator=_gen(13)) < 0.6
    _, none = mask_tokens(x0, torch.zeros(8), maskable, MASK_ID, generator=_gen(14))
    _, every = mask_tokens(x0, torch.ones(8), maskable, MASK_ID, generator=_gen(15))
    assert not none.any()
    assert torch.equal(every, maskable)


def test_p_mask_shapes_b_and_b1_agree():
    x0 = torch.randint(0, 50, (4, 32), generator=_gen(16))
    maskable = torch.ones_like(x0, dtype=torch.bool)
    p = torch.tensor([0.2, 0.4, 0.6, 0.8])
    a = mask_tokens(x0, p, maskable, MASK_ID, generator=_gen(17))
    b = mask_tokens(x0, p[:, None], maskable, MASK_ID, generator=_gen(17))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_mask_tokens_rejects_bad_inputs():
    x0 = torch.zeros(2, 3, dtype=torch.long)
    ok = torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match="p_mask has shape"):
        mask_tokens(x0, torch.full((3,), 0.5), ok, MASK_ID)
    with pytest.raises(ValueError, match="maskable must be a bool"):
        mask_tokens(x0, torch.full((2,), 0.5), ok.long(), MASK_ID)
    with pytest.raises(ValueError, match="mask_token_id=-1"):
        mask_tokens(x0, torch.full((2,), 0.5), ok, -1)
    with pytest.raises(ValueError, match=r"x0 must be \(B, L\)"):
        mask_tokens(x0[0], torch.full((2,), 0.5), ok[0], MASK_ID)
