"""Tiny tokenizer, tiny configs of every family, and the tiny AR pretraining routine."""

import pytest
import torch
from conftest import FAMILIES, TEXT
from transformers import AutoModelForCausalLM, AutoTokenizer

from a2dkit import tiny


def test_tokenizer_roundtrips_and_has_single_id_specials(small_tokenizer):
    for line in TEXT[:3]:
        assert small_tokenizer.decode(small_tokenizer(line)["input_ids"]) == line
    for special in tiny.SPECIAL_TOKENS:
        assert len(small_tokenizer(special)["input_ids"]) == 1
    assert small_tokenizer.eos_token_id == small_tokenizer.pad_token_id
    assert small_tokenizer.mask_token_id is None  # conversion adds <|mask|>


def test_chat_template_renders_chatml(small_tokenizer):
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    text = small_tokenizer.apply_chat_template(messages, tokenize=False)
    assert text == "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
    prompt = small_tokenizer.apply_chat_template(
        messages[:1], tokenize=False, add_generation_prompt=True
    )
    assert prompt.endswith("<|im_start|>assistant\n")


def test_tiny_shakespeare_tokenizer_is_cached_with_requested_size():
    tok = tiny.load_tiny_tokenizer(512)
    assert 512 <= len(tok) <= 512 + len(tiny.SPECIAL_TOKENS)
    assert tiny.load_tiny_tokenizer(512).get_vocab() == tok.get_vocab()


def test_padded_vocab_size_rounds_up():
    assert [tiny.padded_vocab_size(n) for n in (1, 64, 65, 2051)] == [64, 64, 128, 2112]


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_of_every_family_is_a_causal_lm(family):
    model = tiny.tiny_model(family, vocab_size=128)
    x = torch.randint(0, 128, (2, 8))
    y = x.clone()
    y[:, 2] = (y[:, 2] + 1) % 128
    with torch.no_grad():
        a, b = model(x).logits, model(y).logits
    assert a.shape == (2, 8, 128)
    assert torch.allclose(a[:, :2], b[:, :2]) and not torch.allclose(a[:, 2], b[:, 2])


def test_unknown_family_lists_the_valid_ones():
    with pytest.raises(ValueError, match=r"family='bert'.*qwen3"):
        tiny.tiny_config("bert")


def test_pretrain_tiny_ar_lowers_the_loss_and_saves_a_loadable_checkpoint(tmp_path):
    args = tiny.TinyARArguments(
        output_dir=str(tmp_path),
        max_steps=30,
        seq_len=32,
        batch_size=8,
        hidden_size=32,
        num_hidden_layers=1,
        vocab_size=512,
        log_every=10,
    )
    result = tiny.build_tiny_ar(args)
    assert result["eval_loss"] < torch.log(torch.tensor(512.0)).item()
    assert result["log"][-1]["loss"] < result["log"][0]["loss"]
    model = AutoModelForCausalLM.from_pretrained(tmp_path)
    assert model.config.model_type == "qwen3" and len(
        AutoTokenizer.from_pretrained(tmp_path)
    ) == len(tiny.load_tiny_tokenizer(512))
    assert tiny.build_tiny_ar(args)["seconds"] == result["seconds"]  # reused, not retrained
