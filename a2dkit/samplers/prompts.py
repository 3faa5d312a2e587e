"""Prompts in and completions out: the input checks shared by the sampler API and the CLIs (run
before any model work), a prompt's token ids (chat template or plain text), and a decoded answer.

Each check raises ``ValueError``/``TypeError`` naming the bad value and what would be valid.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import torch

__all__ = ["check_nonnegative_finite", "prompt_ids", "encode", "completion"]


def check_nonnegative_finite(name: str, value: float) -> None:
    """``value`` must be a real number in [0, inf): refuses nan, inf, negatives and non-numbers."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number >= 0, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name}={value} must be a finite number >= 0 (e.g. 0.0 for greedy)")


def _is_id(token: object) -> bool:
    """An integer token id: int / numpy integer, or a 0-d integer tensor (not a bool)."""
    if isinstance(token, torch.Tensor):
        return token.dim() == 0 and not token.is_floating_point() and token.dtype != torch.bool
    return isinstance(token, numbers.Integral) and not isinstance(token, bool)


def _one_prompt(i: int, prompt: object) -> list[int]:
    """Prompt ``i`` as a list of ints: a sequence of ids or a 1-D integer tensor / array."""
    if hasattr(prompt, "__array__") and not isinstance(prompt, torch.Tensor):
        prompt = torch.as_tensor(prompt)  # a numpy array
    if isinstance(prompt, str):
        raise TypeError(
            f"inputs[{i}] is a str ({prompt[:40]!r}); the sampler takes token ids: "
            "pass tokenizer(text)['input_ids']"
        )
    if isinstance(prompt, torch.Tensor):
        if prompt.dim() != 1 or prompt.is_floating_point() or prompt.dtype == torch.bool:
            raise TypeError(
                f"inputs[{i}] must be a 1-D integer tensor, got shape {tuple(prompt.shape)} "
                f"dtype {prompt.dtype}"
            )
        return prompt.long().tolist()
    if not isinstance(prompt, Sequence) or not all(_is_id(t) for t in prompt):
        raise TypeError(f"inputs[{i}] must be a list of int token ids, got {prompt!r:.80}")
    return [int(t) for t in prompt]


def prompt_ids(inputs: object, vocab_size: int) -> list[list[int]]:
    """Validate a batch of prompts: a non-empty list of token-id lists with ids in [0, vocab).

    Args:
        inputs: B prompts, each a list of ints or a 1-D integer tensor.
        vocab_size: rows of the model's input embedding.
    """
    if isinstance(inputs, str):
        raise TypeError(
            f"inputs is a str ({inputs[:40]!r}); pass a list of token-id lists, e.g. "
            "[tokenizer(text)['input_ids']]"
        )
    if not isinstance(inputs, (list, tuple)) or not inputs:
        raise TypeError(f"inputs must be a non-empty list of token-id lists, got {inputs!r:.80}")
    if all(_is_id(t) for t in inputs):
        raise TypeError(
            f"inputs is a flat list of ids {list(inputs)!r:.60}; pass a list of prompts, e.g. "
            f"[{list(inputs)!r:.40}] for one prompt"
        )
    prompts = [_one_prompt(i, p) for i, p in enumerate(inputs)]
    for i, p in enumerate(prompts):
        bad = [t for t in p if not 0 <= t < vocab_size]
        if bad:
            raise ValueError(
                f"inputs[{i}] holds token id {bad[0]} outside the vocabulary; valid ids are "
                f"0..{vocab_size - 1}"
            )
    return prompts


def encode(tokenizer, messages_or_text, chat_template: bool) -> list[int]:
    """Token ids of a prompt: a chat (list of messages) through the template, or plain text."""
    if chat_template:
        text = tokenizer.apply_chat_template(
            messages_or_text, tokenize=False, add_generation_prompt=True
        )
        return tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer(messages_or_text)["input_ids"]


def completion(tokenizer, out, row: int) -> str:
    """Decoded generated tokens of ``row`` up to the first EOS."""
    ids = out.sequences[row, out.gen_start :].tolist()
    if tokenizer.eos_token_id in ids:
        ids = ids[: ids.index(tokenizer.eos_token_id)]
    return tokenizer.decode(ids, skip_special_tokens=True)
