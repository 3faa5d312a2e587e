"""Masks against slow loop references (the oracle), closed forms, and the flex back-end."""

import pytest
import torch

from a2dkit.diffusion import attention


def _staircase_reference(seq_len: int, block_size: int) -> torch.Tensor:
    """Loop-based BD3LM training mask over [x_t ; x_0]: the three sub-masks written out."""
    n = 2 * seq_len
    ref = torch.zeros(n, n, dtype=torch.bool)
    for q in range(n):
        for k in range(n):
            q0, k0 = q >= seq_len, k >= seq_len
            bq, bk = (q % seq_len) // block_size, (k % seq_len) // block_size
            ref[q, k] = (
                (bq == bk and q0 == k0)  # M_BD
                or (not q0 and k0 and bq > bk)  # M_OBC
                or (q0 and k0 and bq >= bk)  # M_BC
            )
    return ref


def _block_causal_reference(valid: torch.Tensor, block_size: int) -> torch.Tensor:
    batch, seq_len = valid.shape
    ref = torch.zeros(batch, 1, seq_len, seq_len, dtype=torch.bool)
    for b in range(batch):
        for q in range(seq_len):
            for k in range(seq_len):
                same_or_earlier = k // block_size <= q // block_size
                ref[b, 0, q, k] = bool(valid[b, q] and valid[b, k] and same_or_earlier)
    return ref


@pytest.mark.parametrize("seq_len, block_size", [(4, 1), (4, 2), (8, 2), (8, 8), (12, 4), (6, 3)])
def test_staircase_mask_matches_loop_reference(seq_len, block_size):
    mask = attention.staircase_mask(seq_len, block_size)
    assert torch.equal(mask, _staircase_reference(seq_len, block_size))
    assert mask.sum().item() == seq_len * (seq_len + block_size)


@pytest.mark.parametrize("seq_len, block_size", [(4, 1), (4, 2), (8, 2), (8, 8), (12, 4), (6, 3)])
def test_a_causal_clean_stream_changes_only_the_clean_half(seq_len, block_size):
    """TiDAR's staircase: x_0 token-causal; x_t's rows (own block, earlier clean ones) as BD3LM."""
    mask = attention.staircase_mask(seq_len, block_size, causal_clean=True)
    block = attention.staircase_mask(seq_len, block_size)
    tril = torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))
    assert torch.equal(mask[seq_len:, seq_len:], tril) and not mask[seq_len:, :seq_len].any()
    assert torch.equal(mask[:seq_len], block[:seq_len])
    assert mask.sum().item() * 2 == seq_len * (2 * seq_len + block_size + 1)
    assert torch.equal(mask, block) == (block_size == 1)  # control: differs once blocks are > 1
    flex = attention.staircase_mask_mod(seq_len, block_size, causal_clean=True)
    idx = torch.arange(2 * seq_len)
    assert torch.equal(flex(0, 0, idx[:, None], idx[None, :]), mask)


def test_staircase_mask_rows_for_length_4_block_2():
    rows = ["11000000", "11000000", "00111100", "00111100"]
    rows += ["00001100", "00001100", "00001111", "00001111"]
    expected = torch.tensor([[c == "1" for c in r] for r in rows])
    assert torch.equal(attention.staircase_mask(4, 2), expected)


def test_staircase_clean_half_is_causal_when_block_size_is_1():
    mask = attention.staircase_mask(5, 1)
    assert torch.equal(mask[5:, 5:], torch.tril(torch.ones(5, 5, dtype=torch.bool)))


@pytest.mark.parametrize("seq_len, block_size", [(8, 3), (8, 0), (8, -2), (6, 12)])
def test_staircase_mask_rejects_block_size_that_does_not_divide(seq_len, block_size):
    with pytest.raises(ValueError, match=rf"block_size={block_size}.*seq_len={seq_len}"):
        attention.staircase_mask(seq_len, block_size)


def test_flex_mask_mod_agrees_with_dense_mask_on_every_pair():
    seq_len, block_size = 8, 2
    mask_mod = attention.staircase_mask_mod(seq_len, block_size)
    idx = torch.arange(2 * seq_len)
    q, k = idx[:, None].expand(-1, 2 * seq_len), idx[None, :].expand(2 * seq_len, -1)
    dense = attention.staircase_mask(seq_len, block_size)
    assert torch.equal(mask_mod(0, 0, q, k), dense)


def test_flex_block_mask_is_built_from_the_same_predicate():
    assert attention.flex_attention_available()
    from torch.nn.attention.flex_attention import create_block_mask

    seq_len, block_size = 64, 16
    block_mask = create_block_mask(
        attention.staircase_mask_mod(seq_len, block_size), None, None, 2 * seq_len, 2 * seq_len,
        device="cpu", BLOCK_SIZE=16,
    )  # fmt: skip
    dense = block_mask.to_dense()[0, 0].bool()  # (2L/16, 2L/16) tile occupancy
    tiles = attention.staircase_mask(seq_len, block_size).reshape(8, 16, 8, 16).any(-1).any(1)
    assert torch.equal(dense, tiles)


@pytest.mark.parametrize("block_size", [1, 2, 3])
def test_block_causal_mask_matches_loop_reference_with_padding(block_size):
    valid = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]], dtype=torch.bool)
    expected = _block_causal_reference(valid, block_size)
    assert torch.equal(attention.block_causal_mask(valid, block_size), expected)


def test_bidirectional_padding_mask_excludes_pad_keys_only():
    mask = attention.bidirectional_padding_mask(torch.tensor([[0, 1, 1]]))
    assert mask.shape == (1, 1, 3, 3)
    assert torch.equal(mask[0, 0], torch.tensor([[False, True, True]] * 3))


def test_padding_position_ids_skip_left_padding():
    pos = attention.padding_position_ids(torch.tensor([[0, 0, 1, 1, 1], [1, 1, 1, 1, 0]]))
    assert pos.tolist() == [[0, 0, 0, 1, 2], [0, 1, 2, 3, 0]]


def test_to_additive_mask_is_zero_where_allowed_and_finite_min_elsewhere():
    bias = attention.to_additive_mask(torch.tensor([True, False]), torch.float32)
    assert bias[0].item() == 0.0 and bias[1].item() == torch.finfo(torch.float32).min
    scores = torch.softmax(torch.zeros(2) + bias, dim=-1)
    assert torch.allclose(scores, torch.tensor([1.0, 0.0]))
    fully_masked = torch.softmax(
        torch.zeros(2) + attention.to_additive_mask(torch.tensor([False] * 2)), -1
    )
    assert not fully_masked.isnan().any()
