"""models.causal_mode: an A2D model run as the AR model it came from (generate included)."""

import copy

import pytest
import torch
from conftest import make_tiny_ar
from transformers import AutoConfig

from a2dkit import convert
from a2dkit.contract.family_gate import tiny_pair
from a2dkit.diffusion.attention import padding_position_ids
from a2dkit.models import causal_mode


@pytest.fixture(scope="module")
def pair(small_tokenizer):
    tok = copy.deepcopy(small_tokenizer)
    source = make_tiny_ar("qwen3", tok).double().eval()
    a2d, tok, _ = convert.to_diffusion(copy.deepcopy(source), tok)
    return source, a2d.double().eval(), tok


def _batch(tok):
    rows = [tok("ROMEO: But, soft!")["input_ids"], tok("What light")["input_ids"]]
    width = max(map(len, rows))
    ids = torch.tensor([[tok.pad_token_id] * (width - len(r)) + r for r in rows])  # left pad
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def test_logits_in_causal_mode_are_the_source_models(pair):
    source, a2d, tok = pair
    ids, mask = _batch(tok)
    positions = padding_position_ids(mask)  # as generate numbers them: pads skipped
    with torch.no_grad():
        ref = source(ids, attention_mask=mask, position_ids=positions).logits
        with causal_mode(a2d):
            out = a2d(ids, attention_mask=mask).logits[..., : ref.shape[-1]]
        plain = a2d(ids, attention_mask=mask).logits[..., : ref.shape[-1]]
    real = mask.bool()
    assert (out - ref)[real].abs().max().item() < 1e-10
    assert (plain - ref)[real].abs().max().item() > 1e-3  # control: bidirectional by default
    assert not a2d.a2d_causal  # the mode ends with the block


def test_greedy_generate_in_causal_mode_is_the_source_models(pair):
    source, a2d, tok = pair
    ids, mask = _batch(tok)
    kw = dict(attention_mask=mask, max_new_tokens=12, do_sample=False,
              pad_token_id=tok.pad_token_id, eos_token_id=None)  # fmt: skip
    expected = source.generate(ids, **kw)
    with causal_mode(a2d):
        got = a2d.generate(ids, **kw)
    assert torch.equal(got, expected) and got.shape[1] == ids.shape[1] + 12


def test_non_a2d_and_sliding_window_models_are_refused(pair):
    source, _, _ = pair
    with pytest.raises(TypeError, match="needs an A2D model"), causal_mode(source):
        pass
    config = AutoConfig.for_model("mistral", sliding_window=4, vocab_size=64, hidden_size=32,
                                  intermediate_size=64, num_hidden_layers=2,
                                  num_attention_heads=4, num_key_value_heads=2)  # fmt: skip
    _, windowed = tiny_pair(config, "sdpa")
    with pytest.raises(ValueError, match="sliding window"), causal_mode(windowed):
        pass
