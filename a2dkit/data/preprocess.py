"""From records to training tensors: pretraining packing, chat-template SFT with prompt masking,
and the padding collator (incl. the BD3LM labelled-EOS block padding).

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (§3: sequences are whole blocks).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

from a2dkit._env import IGNORE_INDEX

logger = logging.getLogger(__name__)
_ROLES = {"human": "user", "gpt": "assistant", **{r: r for r in ("user", "assistant", "system")}}
AnyDataset = Dataset | IterableDataset
_DICTS = (DatasetDict, IterableDatasetDict)


def column_names(ds: AnyDataset) -> list[str]:
    """Column names; streaming datasets built from generators may not know them, so peek a row."""
    return list(ds.column_names or next(iter(ds), {}).keys())


def normalize_messages(example: dict[str, Any]) -> list[dict[str, str]]:
    """``[{"role", "content"}, ...]`` from ``messages`` (role/content, e.g. tulu-3, smoltalk) or
    ShareGPT ``conversations`` (from/value; human -> user, gpt -> assistant)."""
    if "messages" in example:
        turns = [(m["role"], m["content"]) for m in example["messages"]]
    elif "conversations" in example:
        turns = [(m["from"], m["value"]) for m in example["conversations"]]
    else:
        raise ValueError(f"record has neither 'messages' nor 'conversations'; keys={list(example)}")
    bad = sorted({r for r, _ in turns if r not in _ROLES})
    if bad:
        raise ValueError(f"unknown chat roles {bad}; known roles: {sorted(_ROLES)}")
    return [{"role": _ROLES[r], "content": c} for r, c in turns]


# ------------------------------------------------------------------ pretraining: packing
def _pack_batch(batch: dict[str, list], tokenizer, text_field: str, max_length: int, eos):
    if text_field not in batch:  # streaming rows can differ from the first one
        raise ValueError(f"text_field={text_field!r} not in columns {list(batch)}")
    flat: list[int] = []
    for ids in tokenizer(batch[text_field], add_special_tokens=False)["input_ids"]:
        flat += ids + ([eos] if eos is not None else [])  # EOS after every document
    starts = range(0, len(flat) - max_length + 1, max_length)  # drops the remainder
    chunks = [flat[i : i + max_length] for i in starts]
    return {"input_ids": chunks, "labels": [list(c) for c in chunks]}


def tokenize_and_pack(
    ds,
    tokenizer,
    *,
    text_field: str,
    max_length: int,
    insert_eos: bool,
    batch_size: int | None = 1000,
    num_proc: int | None = None,
):
    """Tokenize ``text_field``, concatenate documents (EOS after each if ``insert_eos``) and cut
    into rows of exactly ``max_length`` with ``labels == input_ids``, dropping the remainder.

    Args:
        ds: Dataset / IterableDataset (or a dict of them) with a str column ``text_field``.
        batch_size: documents per ``map`` batch; packing is per batch (as HF run_clm), so up to
            max_length - 1 tokens are dropped per batch. None packs a map-style Dataset at once.

    Returns:
        Same type, columns ``input_ids`` and ``labels``: int lists of length max_length.
    """
    kw = dict(text_field=text_field, max_length=max_length, insert_eos=insert_eos)
    if isinstance(ds, _DICTS):
        kw |= dict(batch_size=batch_size, num_proc=num_proc)
        return type(ds)({k: tokenize_and_pack(v, tokenizer, **kw) for k, v in ds.items()})
    if not isinstance(max_length, int) or max_length <= 0:
        raise ValueError(f"max_length={max_length!r} must be a positive int")
    cols = column_names(ds)
    if text_field not in cols:
        raise ValueError(f"text_field={text_field!r} not in columns {cols}; pick one of them")
    eos = tokenizer.eos_token_id if insert_eos else None
    if insert_eos and eos is None:
        raise ValueError("insert_eos=True but the tokenizer has no eos_token_id")
    fn_kwargs = dict(tokenizer=tokenizer, text_field=text_field, max_length=max_length, eos=eos)
    extra = {"num_proc": num_proc} if num_proc and isinstance(ds, Dataset) else {}
    kw = dict(batched=True, batch_size=batch_size, remove_columns=cols, fn_kwargs=fn_kwargs)
    return ds.map(_pack_batch, **kw, **extra)


# ------------------------------------------------------------------ SFT: template + mask
def _chat_ids(messages: list[dict[str, str]], tokenizer) -> tuple[list[int], int]:
    """(token ids of the whole chat, number of prompt tokens)."""
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    # prompt = chat without its last turn + generation header, e.g. "<|im_start|>assistant\n"
    prompt = tokenizer.apply_chat_template(
        messages[:-1], tokenize=False, add_generation_prompt=True
    )
    ids, prompt_ids = tokenizer([full, prompt], add_special_tokens=False)["input_ids"]
    if ids[: len(prompt_ids)] != prompt_ids:
        raise ValueError(
            "chat template is not prefix-consistent: the prompt templated with "
            "add_generation_prompt=True does not tokenize to a prefix of the whole chat"
        )
    return ids, len(prompt_ids)


def _tokenize_sft(example, tokenizer, max_length: int, mask_prompt_loss: bool, strict: bool):
    messages = normalize_messages(example)
    if not messages or messages[-1]["role"] != "assistant":
        raise ValueError(
            f"last turn must be 'assistant'; got roles {[m['role'] for m in messages]}"
        )
    ids, n_prompt = _chat_ids(messages, tokenizer)
    if strict and max_length < n_prompt:
        raise ValueError(
            f"max_length={max_length} is shorter than the prompt ({n_prompt} tokens); "
            "raise max_length or shorten the prompt"
        )
    labels = list(ids)
    if mask_prompt_loss or max_length < n_prompt:  # a cut-off prompt leaves nothing to learn
        labels[:n_prompt] = [IGNORE_INDEX] * n_prompt
    return {"input_ids": ids[:max_length], "labels": labels[:max_length]}


def tokenize_sft(
    example: dict[str, Any], tokenizer, *, max_length: int, mask_prompt_loss: bool = True
) -> dict[str, list[int]]:
    """Template one chat and tokenize it; only the final assistant turn is supervised.

    Args:
        example: record with ``messages`` (role/content) or ``conversations`` (from/value).
        tokenizer: HF tokenizer with a chat_template.
        max_length: truncate to this many tokens; ValueError if the prompt alone is longer.
        mask_prompt_loss: labels = -100 on the prompt (up to and including the last assistant
            header), so the loss covers only the answer and its end-of-turn tokens.

    Returns:
        ``{"input_ids": list[int], "labels": list[int]}`` of equal length <= max_length.
    """
    return _tokenize_sft(example, tokenizer, max_length, mask_prompt_loss, strict=True)


def prepare_sft_dataset(
    ds, tokenizer, *, max_length: int, mask_prompt_loss: bool = True, num_proc: int | None = None
):
    """Map ``tokenize_sft`` over a dataset (or a dict of splits) and drop rows without a supervised
    token (all labels -100, e.g. a prompt longer than max_length); ValueError if none is left."""
    if isinstance(ds, _DICTS):
        kw = dict(max_length=max_length, mask_prompt_loss=mask_prompt_loss, num_proc=num_proc)
        return type(ds)({k: prepare_sft_dataset(v, tokenizer, **kw) for k, v in ds.items()})
    extra = {"num_proc": num_proc} if num_proc and isinstance(ds, Dataset) else {}
    fn_kwargs = dict(tokenizer=tokenizer, max_length=max_length, mask_prompt_loss=mask_prompt_loss)
    fn_kwargs["strict"] = False  # drop too-long prompts instead of failing the whole run
    out = ds.map(_tokenize_sft, remove_columns=column_names(ds), fn_kwargs=fn_kwargs, **extra)
    out = out.filter(lambda ex: any(x != IGNORE_INDEX for x in ex["labels"]), **extra)
    if isinstance(ds, Dataset) and len(out) < len(ds):
        if len(out) == 0:
            raise ValueError(
                f"all {len(ds)} SFT examples were dropped (no supervised token left); check that "
                f"max_length={max_length} exceeds the prompt lengths and the chat template"
            )
        logger.warning(
            "dropped %d of %d SFT rows with no supervised token", len(ds) - len(out), len(ds)
        )
    return out


# ------------------------------------------------------------------ collator
@dataclass
class DiffusionCollator:
    """Pad rows ``{"input_ids", "labels"?}`` into (B, L) tensors; labels default to input_ids.

    1. ``pad_with_eos_to_multiple=m`` (BD3LM SFT recipe): each row is first extended with EOS to
       a multiple of m; these EOS are *labelled* (the model learns to stop) and attended (mask 1).
       ``eos_fill=True`` (MDLM SFT recipe, dLLM's A2D SFT collator): every row is extended with
       labelled, attended EOS up to the batch length, so the model learns to fill a canvas longer
       than its answer with EOS, as the samplers ask it to; ``eos_fill_length=n`` fills to at
       least n, so a set of short rows also covers the positions of a longer sampling canvas.
    2. Rows are then right-padded with ``pad_token_id`` to the batch max, rounded up to
       ``pad_to_multiple_of`` (e.g. block_size): labels -100, attention_mask 0.

    ``pad_token_id`` / ``eos_token_id`` default to the tokenizer's.
    """

    tokenizer: Any = None
    pad_token_id: int | None = None
    pad_to_multiple_of: int | None = None
    pad_with_eos_to_multiple: int | None = None
    eos_token_id: int | None = None
    eos_fill: bool = False
    eos_fill_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("pad_token_id", "eos_token_id"):
            if getattr(self, name) is None:
                setattr(self, name, getattr(self.tokenizer, name, None))
        if self.pad_token_id is None:
            raise ValueError("DiffusionCollator needs pad_token_id (or a tokenizer that has one)")
        eos_padding = self.pad_with_eos_to_multiple is not None or self.eos_fill
        if eos_padding and self.eos_token_id is None:
            raise ValueError(
                "pad_with_eos_to_multiple / eos_fill need eos_token_id (or a tokenizer with one)"
            )
        if self.eos_fill_length is not None and not self.eos_fill:
            raise ValueError(f"eos_fill_length={self.eos_fill_length} needs eos_fill=True")
        for name in ("pad_to_multiple_of", "pad_with_eos_to_multiple", "eos_fill_length"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value <= 0):
                raise ValueError(f"{name}={value!r} must be a positive int or None")

    def _extend_with_eos(self, ids: list[list[int]], labels: list[list[int]], target) -> None:
        """Append labelled EOS to every row (in place) until it is ``target(len(row))`` long."""
        for row, lab in zip(ids, labels, strict=True):
            eos = [self.eos_token_id] * (target(len(row)) - len(row))
            row += eos
            lab += eos

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        ids = [list(f["input_ids"]) for f in features]
        labels = [list(f.get("labels", f["input_ids"])) for f in features]
        if any(len(row) != len(lab) for row, lab in zip(ids, labels, strict=True)):
            raise ValueError("every row needs len(labels) == len(input_ids)")
        if multiple := self.pad_with_eos_to_multiple:  # labelled EOS up to a block multiple
            self._extend_with_eos(ids, labels, lambda n: n + -n % multiple)
        length = max(*map(len, ids), self.eos_fill_length or 0)
        if self.pad_to_multiple_of:
            length = -(-length // self.pad_to_multiple_of) * self.pad_to_multiple_of
        if self.eos_fill:  # labelled, attended EOS up to the batch length
            self._extend_with_eos(ids, labels, lambda n: length)
        mask = [[1] * len(row) + [0] * (length - len(row)) for row in ids]  # (B, L)
        ids = [row + [self.pad_token_id] * (length - len(row)) for row in ids]  # (B, L)
        labels = [lab + [IGNORE_INDEX] * (length - len(lab)) for lab in labels]  # (B, L)
        return {
            "input_ids": torch.tensor(ids, dtype=torch.long),
            "labels": torch.tensor(labels, dtype=torch.long),
            "attention_mask": torch.tensor(mask, dtype=torch.long),
        }


def chat_prompts(dataset: Dataset, tokenizer) -> list[list[int]]:
    """Token ids of each row's prompt: every turn but the last, templated with the generation
    header (e.g. ``<|im_start|>assistant\\n``), exactly the prefix that SFT leaves un-noised.

    Args:
        dataset: rows with ``messages`` (role/content) or ``conversations`` (from/value).
        tokenizer: HF tokenizer with a chat template.

    Returns:
        One list of token ids per row.
    """
    prompts = []
    for row in dataset:
        messages = normalize_messages(row)[:-1]  # drop the answer turn
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompts.append(tokenizer(text, add_special_tokens=False)["input_ids"])
    return prompts
