"""Tiny tokenizer, tiny configs of every family, and the tiny AR pretraining routine."""

from __future__ import annotations

import dataclasses
import inspect
import json
import math
from pathlib import Path

import pytest
import torch
from conftest import FAMILIES, TEXT
from transformers import AutoModelForCausalLM, AutoTokenizer, BatchEncoding

from a2dkit.cli import tiny as cli_tiny
from a2dkit.data import shakespeare
from a2dkit.tutorial import tiny, tiny_tokenizer

CHATML = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nHello<|im_end|>\n"
MESSAGES = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]


@pytest.fixture(scope="module")
def shakespeare_tokenizer():
    return tiny_tokenizer.load_tiny_tokenizer(512)


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """60 steps of a very small AR Qwen3 (the test's own output dir)."""
    args = tiny.TinyARArguments(
        output_dir=str(tmp_path_factory.mktemp("tiny-ar")),
        **dict(max_steps=60, seq_len=32, batch_size=8, hidden_size=32, num_hidden_layers=1),
        **dict(vocab_size=512, log_every=20, learning_rate=1e-2),
    )
    return args, tiny.build_tiny_ar(args)


def test_tokenizer_roundtrips_shakespeare(small_tokenizer, shakespeare_tokenizer):
    lines = list(shakespeare.load_tiny_shakespeare()["test"]["Text"][:3]) + ["  odd  spacing\t\n"]
    for tok, texts in ((small_tokenizer, TEXT), (shakespeare_tokenizer, lines)):
        for text in texts:
            assert tok.decode(tok(text)["input_ids"]) == text


def test_specials_are_single_ids_eos_is_pad_and_there_is_no_mask(shakespeare_tokenizer):
    tok = shakespeare_tokenizer
    ids = [tok(s)["input_ids"] for s in tiny_tokenizer.SPECIAL_TOKENS]
    assert all(len(i) == 1 for i in ids) and len({i[0] for i in ids}) == 3
    assert tok.eos_token == tok.pad_token == "<|endoftext|>"
    assert tok.eos_token_id == tok.pad_token_id == tok.convert_tokens_to_ids("<|endoftext|>")
    assert tok.mask_token_id is None  # conversion adds <|mask|>
    assert tok("ROMEO:")["input_ids"] == tok.encode("ROMEO:")  # no specials added on encode


def test_chat_template_renders_chatml_and_tokenizes_to_a_batch_encoding(small_tokenizer):
    tok = small_tokenizer
    assert tok.apply_chat_template(MESSAGES, tokenize=False) == CHATML
    prompt = tok.apply_chat_template(MESSAGES[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == CHATML[: CHATML.index("Hello")]
    # transformers 5.x: tokenize=True gives a BatchEncoding; return_dict=False a list of ids
    enc = tok.apply_chat_template(MESSAGES, tokenize=True)
    assert isinstance(enc, BatchEncoding) and enc["input_ids"] == tok(CHATML)["input_ids"]
    assert tok.apply_chat_template(MESSAGES, return_dict=False) == enc["input_ids"]


def test_tokenizer_size_is_the_requested_vocab_and_is_cached(monkeypatch, shakespeare_tokenizer):
    assert 512 <= len(shakespeare_tokenizer) <= 512 + len(tiny_tokenizer.SPECIAL_TOKENS)

    def no_training(*args, **kwargs):
        raise AssertionError("the cached tokenizer should have been loaded")

    monkeypatch.setattr(tiny_tokenizer, "train_tokenizer", no_training)
    assert tiny_tokenizer.load_tiny_tokenizer(512).get_vocab() == shakespeare_tokenizer.get_vocab()
    assert tiny_tokenizer.load_tiny_tokenizer(512).chat_template == tiny_tokenizer.CHAT_TEMPLATE


def test_train_tokenizer_is_deterministic_and_checks_its_size():
    a, b = (
        tiny_tokenizer.train_tokenizer(TEXT, 300),
        tiny_tokenizer.train_tokenizer(list(TEXT), 300),
    )
    assert a.get_vocab() == b.get_vocab()
    assert a.backend_tokenizer.to_str() == b.backend_tokenizer.to_str()  # same merges
    with pytest.raises(ValueError, match="vocab_size=100 must be an int >= 259"):
        tiny_tokenizer.train_tokenizer(TEXT, 100)


def test_padded_vocab_size_rounds_up_to_the_multiple():
    for n in (1, 63, 64, 65, 2051):
        padded = tiny.padded_vocab_size(n)
        assert padded % 64 == 0 and n <= padded < n + 64
    assert tiny.padded_vocab_size(10, multiple=8) == 16
    with pytest.raises(ValueError, match="n=0"):
        tiny.padded_vocab_size(0)


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_model_of_every_family_is_an_untied_causal_lm(family):
    model = tiny.tiny_model(family, vocab_size=128)
    assert not model.training and model.dtype == torch.float32
    x = torch.randint(0, 128, (2, 8))  # (B, L)
    y = x.clone()
    y[:, 2] = (y[:, 2] + 1) % 128
    with torch.no_grad():
        a, b = model(x).logits, model(y).logits  # (B, L, V)
    assert a.shape == (2, 8, 128)
    assert torch.equal(a[:, :2], b[:, :2]) and not torch.allclose(a[:, 2], b[:, 2])
    emb, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    assert emb.data_ptr() != head.data_ptr()


@pytest.mark.parametrize("family", FAMILIES)
def test_tiny_config_sizes_and_token_ids(family):
    config = tiny.tiny_config(family, 96, hidden_size=48, num_hidden_layers=3, eos_token_id=7)
    assert (config.vocab_size, config.hidden_size, config.num_hidden_layers) == (96, 48, 3)
    assert config.tie_word_embeddings is False
    assert (config.bos_token_id, config.eos_token_id, config.pad_token_id) == (None, 7, None)
    assert tiny.tiny_config(family, use_cache=False).use_cache is False  # overrides win


def test_same_seed_gives_the_same_weights():
    a, b = tiny.tiny_model("qwen3", 64, seed=3), tiny.tiny_model("qwen3", 64, seed=3)
    c = tiny.tiny_model("qwen3", 64, seed=4)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)


def test_bad_families_and_sizes_name_the_valid_values():
    with pytest.raises(ValueError, match=r"family='bert'.*'qwen3'.*'gpt2'"):
        tiny.tiny_config("bert")
    with pytest.raises(
        ValueError, match="hidden_size=50 must be divisible by num_attention_heads=4"
    ):
        tiny.tiny_config("llama", hidden_size=50)
    with pytest.raises(ValueError, match="num_attention_heads=4 must be divisible by num_key_"):
        tiny.tiny_config("qwen3", num_key_value_heads=3)
    with pytest.raises(ValueError, match="max_steps=0 must be >= 1"):
        tiny.TinyARArguments(output_dir="x", max_steps=0)


def test_pretraining_takes_the_cli_arguments_themselves():
    params = inspect.signature(tiny.pretrain_tiny_ar).parameters
    assert list(params) == ["args"]  # one TinyARArguments: the flags and the function cannot drift
    assert params["args"].annotation in (tiny.TinyARArguments, "TinyARArguments")


def test_pretraining_lowers_the_loss_below_uniform(pretrained):
    args, result = pretrained
    vocab = len(tiny_tokenizer.load_tiny_tokenizer(512))
    assert result["eval_loss"] < math.log(vocab) - 1.0  # uniform guessing costs log V
    assert result["train_loss"] == result["log"][-1]["loss"] < result["log"][0]["loss"]
    assert [r["step"] for r in result["log"]] == [20, 40, 60] and result["steps"] == 60
    log = json.loads((Path(args.output_dir) / "train_log.json").read_text())
    assert log == result["log"]
    assert result["sample"].startswith("ROMEO:")


def test_checkpoint_loads_back_as_a_normal_hf_model(pretrained):
    args, result = pretrained
    model = AutoModelForCausalLM.from_pretrained(args.output_dir)
    tok = AutoTokenizer.from_pretrained(args.output_dir)
    assert model.config.model_type == "qwen3" and model.num_parameters() == result["num_parameters"]
    assert tok.get_vocab() == tiny_tokenizer.load_tiny_tokenizer(512).get_vocab()
    assert model.get_input_embeddings().weight.shape[0] == tiny.padded_vocab_size(len(tok))
    assert (
        model.config.eos_token_id == tok.eos_token_id
        and tok.chat_template == tiny_tokenizer.CHAT_TEMPLATE
    )
    assert (Path(args.output_dir) / "model.safetensors").exists()


def test_a_finished_run_is_reused_by_the_cli(pretrained, monkeypatch, capsys):
    args, result = pretrained

    def no_training(*a, **kw):
        raise AssertionError("the finished run should have been reused")

    monkeypatch.setattr(tiny, "pretrain_tiny_ar", no_training)
    flags = [f"--{k}={v}" for k, v in dataclasses.asdict(args).items()]
    assert cli_tiny.main(flags) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["seconds"] == result["seconds"] and printed["sample"] == result["sample"]
    assert set(printed) == {
        "train_loss",
        "eval_loss",
        "steps",
        "seconds",
        "num_parameters",
        "sample",
    }
    with pytest.raises(AssertionError, match="reused"):  # different args: trains again
        tiny.build_tiny_ar(dataclasses.replace(args, max_steps=31))
