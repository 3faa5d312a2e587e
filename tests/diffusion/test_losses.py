"""Tests for a2dkit.diffusion.losses: closed forms, hand-checked normalisations, grad-accumulation
invariance, and the BD3LM input builder (against staircase_mask and an MDLM equivalence)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from a2dkit.diffusion import attention
from a2dkit.diffusion.blocks import bd3lm_inputs, bd3lm_logits
from a2dkit.diffusion.losses import (
    loss_denominator,
    loss_weights,
    masked_nll,
    mdlm_loss,
    shift_logits_right,
)
from a2dkit.diffusion.schedules import LinearSchedule

NORMS = ["token", "sequence", "batch"]


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _hand_example():
    """2x3 batch, V=2, x0 = 0 everywhere; logits [log p, log(1-p)] give CE = -log p exactly."""
    p = torch.tensor([[0.5, 0.9, 0.25], [0.9, 0.125, 0.9]], dtype=torch.float64)
    logits = torch.stack([p.log(), (1 - p).log()], dim=-1)  # (2, 3, 2)
    x0 = torch.zeros(2, 3, dtype=torch.long)
    maskable = torch.tensor([[True, True, True], [False, True, True]])  # 3 + 2 tokens
    masked = torch.tensor([[True, False, True], [False, True, False]])  # CE: ln2, ln4 | ln8
    weight = torch.tensor([2.0, 0.5], dtype=torch.float64)
    return logits, x0, masked, maskable, weight


@pytest.mark.parametrize(
    "norm_type, expected",
    # seq0: 2 * (ln2 + 2 ln2) = 6 ln2 over 3 tokens; seq1: 0.5 * 3 ln2 = 1.5 ln2 over 2 tokens
    [("token", 7.5 / 5), ("sequence", (6 / 3 + 1.5 / 2) / 2), ("batch", 7.5 / 2)],
)
def test_norm_types_on_hand_checked_example(norm_type, expected):
    loss = mdlm_loss(*_hand_example(), norm_type=norm_type)
    torch.testing.assert_close(loss, torch.tensor(expected * math.log(2), dtype=torch.float64))


def test_loss_denominator_on_hand_checked_example():
    maskable = _hand_example()[3]
    assert loss_denominator(maskable, "token").item() == 5
    assert loss_denominator(maskable, "sequence").item() == 2
    assert loss_denominator(maskable, "batch").item() == 2


def test_uniform_logits_give_log_v_on_masked_tokens_and_zero_elsewhere():
    vocab = 37
    x0 = torch.randint(0, vocab, (4, 10), generator=_gen(1))
    masked = torch.rand(4, 10, generator=_gen(2)) < 0.5
    nll = masked_nll(torch.zeros(4, 10, vocab), x0, masked)
    expected = torch.where(masked, torch.tensor(math.log(vocab)), torch.tensor(0.0))
    torch.testing.assert_close(nll, expected)


def test_masked_nll_matches_loop_reference():
    logits = torch.randn(3, 5, 7, generator=_gen(3))
    x0 = torch.randint(0, 7, (3, 5), generator=_gen(4))
    masked = torch.rand(3, 5, generator=_gen(5)) < 0.6
    ref = torch.zeros(3, 5)
    for b in range(3):
        for i in range(5):
            if masked[b, i]:
                ref[b, i] = -torch.log_softmax(logits[b, i], dim=-1)[x0[b, i]]
    torch.testing.assert_close(masked_nll(logits, x0, masked), ref)


@pytest.mark.parametrize("norm_type", NORMS)
def test_perfect_predictor_gives_zero_loss(norm_type):
    x0 = torch.randint(0, 20, (4, 12), generator=_gen(6))
    logits = 100.0 * F.one_hot(x0, 20).float()  # (B, L, V)
    maskable = torch.ones_like(x0, dtype=torch.bool)
    masked = torch.rand(4, 12, generator=_gen(7)) < 0.5
    loss = mdlm_loss(logits, x0, masked, maskable, torch.full((4,), 3.0), norm_type=norm_type)
    assert 0 <= loss.item() < 1e-6


def test_bf16_logits_give_float32_loss_computed_in_float32():
    logits = torch.randn(2, 8, 50, generator=_gen(8)).bfloat16()
    x0 = torch.randint(0, 50, (2, 8), generator=_gen(9))
    masked = torch.ones(2, 8, dtype=torch.bool)
    nll = masked_nll(logits, x0, masked)
    assert nll.dtype == torch.float32
    assert torch.equal(nll, masked_nll(logits.float(), x0, masked))
    loss = mdlm_loss(logits, x0, masked, masked, torch.ones(2))
    assert loss.dtype == torch.float32 and loss.shape == ()


def test_right_shift_predicts_token_i_from_position_i_minus_1():
    vocab, seq_len = 16, 9
    x0 = (torch.arange(seq_len)[None, :] + torch.tensor([[0], [5]])) % vocab  # x0[i] != x0[i+1]
    nxt = torch.roll(x0, -1, dims=1)  # position i's logits predict x0[i + 1]
    logits = 100.0 * F.one_hot(nxt, vocab).float()  # (2, L, V), an AR-style head
    maskable = torch.ones_like(x0, dtype=torch.bool)
    maskable[:, 0] = False  # BOS / prompt: nothing predicts position 0
    weight = torch.ones(2)
    shifted = mdlm_loss(logits, x0, maskable, maskable, weight, right_shift_logits=True)
    unshifted = mdlm_loss(logits, x0, maskable, maskable, weight, right_shift_logits=False)
    assert shifted.item() < 1e-6
    assert unshifted.item() > 50.0  # every masked token is wrong by a logit margin of 100


def test_shift_logits_right_matches_definition():
    logits = torch.randn(2, 5, 3, generator=_gen(10))
    out = shift_logits_right(logits)
    assert torch.equal(out[:, 0], logits[:, 0])
    assert torch.equal(out[:, 1:], logits[:, :-1])


def _tiny_model(vocab: int, dim: int) -> torch.nn.Module:
    torch.manual_seed(0)
    # float64 so the check isolates the maths from float32 summation-order rounding
    return torch.nn.Sequential(torch.nn.Embedding(vocab, dim), torch.nn.Linear(dim, vocab)).double()


def _accum_batch():
    """8 sequences with different prompt lengths (different maskable counts) and fixed masks."""
    vocab, seq_len = 11, 6
    x0 = torch.randint(0, vocab - 1, (8, seq_len), generator=_gen(11))
    prompt_len = torch.tensor([0, 1, 2, 3, 4, 5, 1, 3])[:, None]
    maskable = torch.arange(seq_len)[None, :] >= prompt_len  # (B, L)
    masked = maskable & (torch.rand(8, seq_len, generator=_gen(12)) < 0.6)
    xt = torch.where(masked, vocab - 1, x0)
    weight = 1.0 / (0.05 + torch.rand(8, generator=_gen(13), dtype=torch.float64))
    return vocab, x0, xt, masked, maskable, weight


def _grads(model, loss):
    return torch.autograd.grad(loss, list(model.parameters()))


@pytest.mark.parametrize("norm_type", NORMS)
def test_gradient_accumulation_with_num_items_equals_full_batch(norm_type):
    vocab, x0, xt, masked, maskable, weight = _accum_batch()
    model = _tiny_model(vocab, 5)
    full = mdlm_loss(model(xt), x0, masked, maskable, weight, norm_type=norm_type)
    full_grads = _grads(model, full)
    parts = [slice(i, i + 2) for i in range(0, 8, 2)]
    num_items = sum(loss_denominator(maskable[s], norm_type) for s in parts)
    acc_loss, acc_grads = 0.0, [torch.zeros_like(p) for p in model.parameters()]
    for s in parts:
        loss = mdlm_loss(
            model(xt[s]), x0[s], masked[s], maskable[s], weight[s],
            norm_type=norm_type, num_items=num_items,
        )  # fmt: skip
        acc_loss = acc_loss + loss.detach()
        acc_grads = [a + g for a, g in zip(acc_grads, _grads(model, loss), strict=True)]
    assert torch.allclose(acc_loss, full.detach(), atol=1e-10, rtol=0)
    for a, g in zip(acc_grads, full_grads, strict=True):
        assert torch.allclose(a, g, atol=1e-10, rtol=0)


def test_token_norm_without_num_items_is_not_accumulation_invariant():
    # Guards the test above: per-micro-batch token means, averaged, are a different estimator.
    vocab, x0, xt, masked, maskable, weight = _accum_batch()
    model = _tiny_model(vocab, 5)
    with torch.no_grad():
        full = mdlm_loss(model(xt), x0, masked, maskable, weight)
        micro = [
            mdlm_loss(model(xt[i : i + 2]), x0[i : i + 2], masked[i : i + 2], maskable[i : i + 2],
                      weight[i : i + 2])
            for i in range(0, 8, 2)
        ]  # fmt: skip
    assert abs(sum(micro) / 4 - full) > 1e-3


def test_nothing_masked_gives_zero_loss_with_zero_gradients():
    vocab, x0, xt, _, maskable, weight = _accum_batch()
    model = _tiny_model(vocab, 5)
    none = torch.zeros_like(maskable)
    loss = mdlm_loss(model(x0), x0, none, maskable, weight)
    assert loss.item() == 0.0
    assert all(torch.equal(g, torch.zeros_like(g)) for g in _grads(model, loss))


def test_infinite_weight_on_an_unmasked_row_does_not_produce_nan():
    logits, x0, masked, maskable, _ = _hand_example()
    masked = masked.clone()
    masked[1] = False  # w(t=0) = inf, but p_mask(0) = 0 so the row has no masked token
    loss = mdlm_loss(logits, x0, masked, maskable, torch.tensor([2.0, math.inf]))
    torch.testing.assert_close(loss, torch.tensor(6 * math.log(2) / 5, dtype=torch.float64))


def test_loss_weights_scheduler_and_uniform():
    t = torch.tensor([0.1, 0.25, 0.5, 1.0])
    assert torch.equal(loss_weights(t, LinearSchedule(), "scheduler"), 1.0 / t)
    assert torch.equal(loss_weights(t, LinearSchedule(), "uniform"), torch.ones(4))


def test_invalid_options_list_the_valid_values():
    logits, x0, masked, maskable, weight = _hand_example()
    with pytest.raises(ValueError, match=r"norm_type='tokens'.*\['token', 'sequence', 'batch'\]"):
        mdlm_loss(logits, x0, masked, maskable, weight, norm_type="tokens")
    with pytest.raises(ValueError, match=r"norm_type='mean'"):
        loss_denominator(maskable, "mean")
    with pytest.raises(ValueError, match=r"loss_weight_type='elbo'.*\['scheduler', 'uniform'\]"):
        loss_weights(torch.ones(2), LinearSchedule(), "elbo")
    with pytest.raises(ValueError, match="weight has shape"):
        mdlm_loss(logits, x0, masked, maskable, torch.ones(3))


@pytest.mark.parametrize("seq_len, block_size", [(8, 1), (8, 2), (8, 8), (12, 4)])
def test_bd3lm_inputs_shapes_positions_and_mask(seq_len, block_size):
    x0 = torch.randint(0, 30, (3, seq_len), generator=_gen(14))
    xt = torch.where(torch.rand(3, seq_len, generator=_gen(15)) < 0.5, 31, x0)
    input_ids, position_ids, mask = bd3lm_inputs(xt, x0, block_size)
    assert torch.equal(input_ids, torch.cat([xt, x0], dim=1))
    expected_pos = torch.arange(seq_len).repeat(2).expand(3, -1)  # [0..L-1, 0..L-1]
    assert torch.equal(position_ids, expected_pos)
    assert mask.shape == (1, 1, 2 * seq_len, 2 * seq_len) and mask.dtype == torch.bool
    assert torch.equal(mask[0, 0], attention.staircase_mask(seq_len, block_size))


def test_bd3lm_inputs_rejects_block_size_that_does_not_divide_seq_len():
    x0 = torch.zeros(2, 8, dtype=torch.long)
    with pytest.raises(ValueError, match=r"block_size=3.*seq_len=8.*\[1, 2, 4, 8\]"):
        bd3lm_inputs(x0, x0, 3)
    with pytest.raises(ValueError, match="must both be"):
        bd3lm_inputs(x0, x0[:, :4], 2)


def test_bd3lm_logits_keeps_the_xt_half():
    logits = torch.randn(2, 10, 4, generator=_gen(16))
    assert torch.equal(bd3lm_logits(logits), logits[:, :5])
    with pytest.raises(ValueError, match="even length"):
        bd3lm_logits(logits[:, :9])


def _one_layer_attention(ids, position_ids, mask, vocab=32, dim=8):
    """Embedding + learned positions + one attention layer + head: a tiny stand-in model."""
    g = _gen(17)
    tok, pos = torch.randn(vocab, dim, generator=g), torch.randn(64, dim, generator=g)
    head = torch.randn(dim, vocab, generator=g)
    h = tok[ids] + pos[position_ids]  # (B, N, D)
    out = F.scaled_dot_product_attention(h[:, None], h[:, None], h[:, None], attn_mask=mask)
    return out[:, 0] @ head  # (B, N, V)


def test_bd3lm_with_one_block_reduces_to_mdlm_on_the_xt_half():
    # block_size == L: x_t attends only to x_t (M_BD), at positions 0..L-1, exactly like MDLM.
    x0 = torch.randint(0, 30, (2, 8), generator=_gen(18))
    xt = torch.where(torch.rand(2, 8, generator=_gen(19)) < 0.5, 31, x0)
    ids, pos, mask = bd3lm_inputs(xt, x0, block_size=8)
    bd3lm = bd3lm_logits(_one_layer_attention(ids, pos, mask))
    mdlm = _one_layer_attention(xt, torch.arange(8).expand(2, -1), None)
    torch.testing.assert_close(bd3lm, mdlm, atol=1e-5, rtol=1e-5)
