"""Sample-quality measures: AR NLL against HF's own causal-LM loss, padding, distinct ratio."""

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit.eval import quality


@pytest.fixture
def ar(small_tokenizer):
    return make_tiny_ar("qwen3", small_tokenizer).eval()


def test_continuation_nll_equals_the_hf_loss_on_the_continuation(ar):
    seqs = torch.randint(5, 250, (3, 12), generator=torch.Generator().manual_seed(0))
    start = 5
    nll = quality.continuation_nll(ar, seqs, start)
    for row, value in zip(seqs, nll, strict=True):
        labels = row[None].clone()
        labels[:, :start] = -100  # HF shifts labels itself: position i is scored from i - 1
        assert torch.isclose(value, ar(row[None], labels=labels).loss, atol=1e-5)


def test_left_padding_does_not_change_the_nll(ar):
    seq = torch.randint(5, 250, (1, 10), generator=torch.Generator().manual_seed(1))
    padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), seq], dim=1)
    mask = torch.cat([torch.zeros(1, 3), torch.ones(1, 10)], dim=1).long()
    alone = quality.continuation_nll(ar, seq, 4)
    assert torch.allclose(quality.continuation_nll(ar, padded, 7, mask), alone, atol=1e-5)


def test_distinct_ratio_counts_distinct_continuation_tokens():
    seqs = torch.tensor([[9, 9, 1, 1, 2, 3], [9, 9, 4, 4, 4, 4]])
    assert quality.distinct_ratio(seqs, 2).tolist() == [0.75, 0.25]


@pytest.mark.parametrize("start", [0, 6, 2.0, True])
def test_bad_start_is_refused(start, ar):
    seqs = torch.ones(1, 6, dtype=torch.long)
    with pytest.raises(ValueError, match=f"start={start!r}"):
        quality.distinct_ratio(seqs, start)
    with pytest.raises(ValueError, match="must be \\(B, T\\)"):
        quality.continuation_nll(ar, seqs[0], 1)


def test_words_keep_inner_apostrophes_and_drop_punctuation_and_line_breaks():
    assert quality.words("O'er the hill,\n\nI'll GO:: 3 -- 'tis") == [
        "o'er", "the", "hill", "i'll", "go", "tis"
    ]  # fmt: skip


def test_known_word_rate_counts_words_and_the_share_in_the_vocabulary():
    vocab = {"no", "more", "what", "do", "you", "speak"}
    assert quality.known_word_rate(["No more; no more;", "What do you speak?"], vocab) == (1.0, 4.0)
    rate, per_text = quality.known_word_rate(["no wis wis", "more"], vocab)
    assert rate == 0.5 and per_text == 2.0  # invented fragments count against the rate
    assert quality.known_word_rate(["\n\n::\n", ",,,"], vocab) == (0.0, 0.0)  # no words at all
    with pytest.raises(ValueError, match="texts is empty"):
        quality.known_word_rate([], vocab)
