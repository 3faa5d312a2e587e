"""The offline tiny tokenizer: byte-level BPE trained on tiny-shakespeare, ChatML chat template.

The tokenizer of every CPU-scale notebook and test (``tutorial.tiny`` builds
the models on it).
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Iterable
from typing import TYPE_CHECKING

from a2dkit import _env
from a2dkit.data import shakespeare

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

__all__ = [
    "EOS_TOKEN",
    "SPECIAL_TOKENS",
    "CHAT_TEMPLATE",
    "train_texts",
    "train_tokenizer",
    "load_tiny_tokenizer",
]

EOS_TOKEN = "<|endoftext|>"
SPECIAL_TOKENS = (EOS_TOKEN, "<|im_start|>", "<|im_end|>")  # no <|mask|>: conversion adds it
# Qwen-style ChatML, so SFT takes the same path as for Qwen3. In transformers 5.x,
# apply_chat_template(..., tokenize=True) returns a BatchEncoding (input_ids, attention_mask);
# pass return_dict=False for a plain list of ids, tokenize=False for the string.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def train_tokenizer(texts: Iterable[str], vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """Byte-level BPE trained on ``texts`` (deterministic given the texts).

    eos = pad = ``<|endoftext|>``; ``<|im_start|>``/``<|im_end|>`` are special; the ChatML
    :data:`!CHAT_TEMPLATE` is set. Encoding adds no special tokens by itself.

    Args:
        texts: training strings (any iterable, consumed once).
        vocab_size: total size including the 256 byte symbols and the 3 special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if not isinstance(vocab_size, int) or vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f"vocab_size={vocab_size!r} must be an int >= {256 + len(SPECIAL_TOKENS)}")
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        eos_token=EOS_TOKEN,
        pad_token=EOS_TOKEN,
        additional_special_tokens=list(SPECIAL_TOKENS[1:]),
        chat_template=CHAT_TEMPLATE,
    )


def train_texts() -> tuple[list[str], str]:
    """The tiny-shakespeare train rows and their sha256 (the key of every cached asset)."""
    texts = list(
        shakespeare.load_tiny_shakespeare()["train"][shakespeare.TEXT_FIELD]
    )  # a datasets 5 Column
    return texts, hashlib.sha256("\0".join(texts).encode()).hexdigest()


def load_tiny_tokenizer(vocab_size: int = 2048) -> PreTrainedTokenizerFast:
    """The tokenizer trained on the tiny-shakespeare train split, cached after the first call.

    Lives in ``<a2dkit cache>/tokenizer-<vocab_size>``; retrained if the corpus changed.

    Args:
        vocab_size: as in :func:`train_tokenizer`.
    """
    from transformers import AutoTokenizer

    texts, digest = train_texts()
    path = _env.cache_dir() / f"tokenizer-{vocab_size}"
    marker = path / "a2dkit_corpus.sha256"
    if not marker.exists() or marker.read_text().strip() != digest:
        staging = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        train_tokenizer(texts, vocab_size).save_pretrained(staging)
        (staging / marker.name).write_text(digest)
        shutil.rmtree(path, ignore_errors=True)
        os.replace(staging, path)
    return AutoTokenizer.from_pretrained(path)
