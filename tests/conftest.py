"""Seeded, offline fixtures: tiny tokenizers and models from ``tutorial.tiny`` (never the Hub)."""

import importlib.util
import os
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

BENCH_DIR = Path(__file__).resolve().parents[1] / "bench"


def load_bench(name: str):
    """``bench/<name>.py`` imported as a module (the bench scripts are not a package)."""
    spec = importlib.util.spec_from_file_location(name, BENCH_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


FAMILIES = ("qwen3", "qwen2", "llama", "mistral", "gpt2")
TEXT = [
    "First Citizen: Before we proceed any further, hear me speak.",
    "All: Speak, speak. You are all resolved rather to die than to famish?",
    "ROMEO: But, soft! what light through yonder window breaks?",
] * 4


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def small_tokenizer():
    """A byte-level BPE (vocab ~300) with eos=pad=<|endoftext|> and the ChatML template."""
    from a2dkit.tutorial import tiny_tokenizer

    return tiny_tokenizer.train_tokenizer(TEXT, vocab_size=300)


@pytest.fixture
def fresh_tokenizer(small_tokenizer):
    """A copy that a test may mutate (conversion adds <|mask|>)."""
    import copy

    return copy.deepcopy(small_tokenizer)


def make_tiny_ar(family: str, tokenizer, attn_implementation: str = "sdpa", seed: int = 0):
    """A tiny random AR model of ``family`` sized to the tokenizer (with spare embedding rows)."""
    from a2dkit.tutorial import tiny

    vocab = tiny.padded_vocab_size(len(tokenizer))
    return tiny.tiny_model(
        family, vocab_size=vocab, seed=seed, attn_implementation=attn_implementation
    )


@pytest.fixture
def a2d_dir(tmp_path, fresh_tokenizer):
    """A tiny converted qwen3 A2D checkpoint on disk (model + tokenizer)."""
    from a2dkit import convert

    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", fresh_tokenizer), fresh_tokenizer)
    model.save_pretrained(tmp_path / "a2d")
    tok.save_pretrained(tmp_path / "a2d")
    return tmp_path / "a2d"
