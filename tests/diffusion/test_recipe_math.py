"""The maths of the AR-preserving recipes against direct computations: position-dependent
masking (per-token schedules and their NELBO weights), complementary masking, DiffuLLaMA's
attention annealing, the distillation KL at clean-prefix positions, and MDLM's semi-AR blocks
(float64)."""

import math

import pytest
import torch

from a2dkit.diffusion import attention, distillation, masking
from a2dkit.diffusion.schedules import make_schedule


def test_position_exponents_grow_along_the_maskable_tokens():
    maskable = torch.tensor([[False, False, True, True, True], [True, True, True, True, True]])
    k = masking.position_exponents(maskable, 1.0)
    assert k[0, :2].tolist() == [1.0, 1.0]  # the prompt: untouched
    assert k[0, 2].item() == pytest.approx(math.exp(-1)) and k[0, 4] == pytest.approx(math.e)
    assert torch.all(k[1, 1:] > k[1, :-1])  # later tokens are masked more
    assert torch.equal(masking.position_exponents(maskable, 0.0), torch.ones(2, 5))


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_the_positional_weight_is_the_per_token_nelbo_weight(name):
    """w_i = -α_i'(t) / (1 - α_i(t)) for α_i = α^k, checked with autograd (float64)."""
    schedule = make_schedule(name)
    t = torch.tensor([0.1, 0.4, 0.8], dtype=torch.float64, requires_grad=True)
    k = torch.tensor([[0.5, 1.0, 2.5]], dtype=torch.float64).expand(3, 3)
    alpha_i = schedule.alpha(t)[:, None] ** k  # (B, L)
    (grad,) = torch.autograd.grad(alpha_i.sum(), t, retain_graph=True)  # columns share t
    direct = torch.stack([
        -torch.autograd.grad(alpha_i[:, j].sum(), t, retain_graph=True)[0] / (1 - alpha_i[:, j])
        for j in range(3)
    ], dim=1)  # fmt: skip
    got = masking.positional_weight(schedule, t.detach(), k)
    assert torch.allclose(got, direct, atol=1e-10)
    assert torch.allclose(got[:, 1], schedule.weight(t.detach()), atol=1e-12)  # k = 1: w(t)
    p = masking.positional_p_mask(schedule, t.detach(), k)
    assert torch.allclose(p, 1 - alpha_i.detach(), atol=1e-12)


def test_later_tokens_are_masked_more_often():
    gen = torch.Generator().manual_seed(0)
    maskable = torch.ones(4000, 8, dtype=torch.bool)
    k = masking.position_exponents(maskable, 1.0)
    p = masking.positional_p_mask(make_schedule("linear"), torch.full((4000,), 0.5), k)
    _, masked = masking.mask_tokens(torch.zeros(4000, 8, dtype=torch.long), p, maskable, 1, gen)
    rate = masked.float().mean(0)  # (8,)
    assert rate[0] < 0.3 < 0.5 < 0.7 < rate[-1]  # 1 - 0.5^(1/e) = 0.23, 1 - 0.5^e = 0.85


def test_the_complement_masks_exactly_the_other_maskable_tokens():
    gen = torch.Generator().manual_seed(1)
    x0 = torch.randint(3, 50, (4, 12), generator=gen)
    maskable = torch.rand(4, 12, generator=gen) > 0.3
    _, masked = masking.mask_tokens(x0, torch.full((4,), 0.4), maskable, 0, gen)
    xt_c, masked_c = masking.complement_mask(x0, masked, maskable, 0)
    assert not (masked & masked_c).any() and torch.equal(masked | masked_c, maskable)
    assert torch.equal(xt_c == 0, masked_c) and torch.equal(xt_c[~masked_c], x0[~masked_c])


@pytest.mark.parametrize("name", ["linear", "cosine"])
def test_the_complements_time_masks_at_one_minus_the_rate(name):
    schedule = make_schedule(name)
    t = torch.tensor([0.05, 0.3, 0.5, 0.9], dtype=torch.float64)
    t_c = masking.complement_time(schedule.p_mask, t, eps=1e-6)
    assert torch.allclose(schedule.p_mask(t_c), 1 - schedule.p_mask(t), atol=1e-12)
    if name == "linear":
        assert torch.allclose(t_c, 1 - t, atol=1e-12)


def test_annealing_goes_from_causal_to_bidirectional():
    assert [attention.anneal_ratio(s, 10) for s in (0, 5, 10, 50)] == [0.0, 0.5, 1.0, 1.0]
    causal = torch.ones(6, 6).tril().bool()
    assert torch.equal(attention.annealed_causal(6, 0.0), causal)
    assert attention.annealed_causal(6, 1.0).all()
    gen = torch.Generator().manual_seed(0)
    half = attention.annealed_causal(64, 0.3, generator=gen)
    future = ~torch.ones(64, 64).tril().bool()
    assert torch.all(half[~future])  # the causal part is always there
    assert 0.25 < half[future].float().mean().item() < 0.35  # 2016 future keys, σ ≈ 0.01


def _first_masked_brute(masked, unit):
    out = torch.zeros_like(masked)
    for b in range(masked.shape[0]):
        for i in range(masked.shape[1]):
            start = i - i % unit
            out[b, i] = bool(masked[b, i]) and not masked[b, start:i].any()
    return out


@pytest.mark.parametrize("unit", [None, 4, 1])
def test_clean_prefix_positions_are_each_units_first_masked_token(unit):
    masked = torch.rand(5, 12, generator=torch.Generator().manual_seed(2)) > 0.5
    got = distillation.clean_prefix_positions(masked, unit)
    assert torch.equal(got, _first_masked_brute(masked, unit or 12))
    if unit == 1:  # blocks of one token (AR): every masked token has a clean prefix
        assert torch.equal(got, masked)
    else:
        assert 0 < got.sum() < masked.sum()  # control: some, not every, masked token


def test_the_teacher_kl_is_the_direct_sum_and_zero_only_at_the_teacher():
    gen = torch.Generator().manual_seed(3)
    student = torch.randn(2, 5, 11, generator=gen, dtype=torch.float64)
    teacher = torch.randn(2, 5, 10, generator=gen, dtype=torch.float64)
    positions = torch.tensor([[1, 0, 0, 1, 0], [0, 1, 0, 0, 0]], dtype=torch.bool)
    direct = 0.0
    for b, i in positions.nonzero().tolist():
        p = torch.softmax(teacher[b, i], -1)
        q = torch.softmax(student[b, i], -1)[:10]  # over the student's 11 tokens
        direct += (p * (p.log() - q.log())).sum().item()
    got = distillation.teacher_kl(student, teacher, positions)
    assert got.item() == pytest.approx(direct, abs=1e-12) and got.item() > 0.1
    same = torch.cat([teacher, torch.full((2, 5, 1), -torch.inf, dtype=torch.float64)], -1)
    assert distillation.teacher_kl(same, teacher, positions).item() == pytest.approx(0, abs=1e-12)


def test_semi_ar_blocks_count_from_each_rows_first_maskable_token():
    maskable = torch.tensor([[False, False, True, True, True, True, True], [False] * 6 + [True]])
    block, blocks = masking.semi_ar_blocks(maskable, 2)
    assert block.tolist() == [[-1, -1, 0, 0, 1, 1, 2], [-1] * 6 + [0]]
    assert blocks.tolist() == [3, 1]  # a last partial block counts
    with pytest.raises(ValueError, match="block_size=0 must be a positive int"):
        masking.semi_ar_blocks(maskable, 0)


def test_the_semi_ar_canvas_is_clean_before_noised_in_and_masked_after_the_block():
    maskable = torch.ones(2, 6, dtype=torch.bool)
    block, blocks = masking.semi_ar_blocks(maskable, 2)  # blocks 0 0 1 1 2 2
    current = torch.tensor([1, 0])
    p = masking.semi_ar_p_mask(torch.tensor([0.3, 0.6]), block, current)
    want = torch.tensor([[0, 0, 0.3, 0.3, 1, 1], [0.6, 0.6, 1, 1, 1, 1]])
    assert torch.allclose(p, want)
    w = masking.semi_ar_weight(torch.tensor([2.0, 5.0]), block, current, blocks)
    assert w.tolist() == [[0, 0, 6, 6, 0, 0], [15, 15, 0, 0, 0, 0]]  # w(t) x 3 blocks, in block


def test_one_uniform_block_scaled_by_the_count_estimates_the_sum_over_blocks():
    """E_j[n · f(j)] = Σ_j f(j) over each row's n blocks: the draw is uniform (and in range)."""
    blocks = torch.tensor([1, 3, 5] * 20000)
    torch.manual_seed(0)
    current = masking.sample_semi_ar_block(blocks)
    assert (current >= 0).all() and (current < blocks).all()
    for n in (3, 5):
        counts = torch.bincount(current[blocks == n], minlength=n).double()
        assert torch.allclose(counts / counts.sum(), torch.full((n,), 1 / n, dtype=torch.float64),
                              atol=0.01)  # fmt: skip
    assert (current[blocks == 1] == 0).all()
