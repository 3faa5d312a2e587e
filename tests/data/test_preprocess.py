"""Packing, SFT label masking and the padding collator, on a tiny byte-level BPE built here."""

import pytest
import torch
from datasets import Dataset
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

from a2dkit.data.preprocess import (
    DiffusionCollator,
    normalize_messages,
    prepare_sft_dataset,
    tokenize_and_pack,
    tokenize_sft,
)
from a2dkit.data.synthetic import make_synthetic_dataset

CHATML = (
    "{%- for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' + m['content'] + "
    "'<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{%- endif %}"
)
DOCS = ["to be or not to be", "that is the question", "whether tis nobler", "in the mind", "x"]
CHAT = [
    {"role": "system", "content": "Be brief."},
    {"role": "user", "content": "Add 23 and 58."},
    {"role": "assistant", "content": "81"},
]


@pytest.fixture(scope="module")
def tok():
    """Byte-level BPE (lossless decode) with ChatML specials, eos = pad = <|endoftext|>."""
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(DOCS * 3 + ["Add 23 and 58. Copy: red blue"], trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
        additional_special_tokens=specials[1:],
        chat_template=CHATML,
    )


def _ids(tok, text):
    return tok(text, add_special_tokens=False)["input_ids"]


# ------------------------------------------------------------------ packing
@pytest.mark.parametrize("insert_eos", [False, True])
@pytest.mark.parametrize("max_length", [3, 7])
def test_packing_is_the_concatenated_stream_cut_into_full_rows(tok, insert_eos, max_length):
    ds = Dataset.from_dict({"text": DOCS, "other": list(range(len(DOCS)))})
    out = tokenize_and_pack(
        ds, tok, text_field="text", max_length=max_length, insert_eos=insert_eos, batch_size=None
    )
    eos = [tok.eos_token_id] if insert_eos else []
    stream = [t for d in DOCS for t in _ids(tok, d) + eos]  # oracle: concat, then chunk
    n_keep = len(stream) // max_length * max_length
    assert out.column_names == ["input_ids", "labels"]
    assert all(len(row) == max_length for row in out["input_ids"])
    assert [t for row in out["input_ids"] for t in row] == stream[:n_keep]
    assert out["labels"] == out["input_ids"]


def test_packing_inserts_one_eos_after_each_document(tok):
    out = tokenize_and_pack(
        Dataset.from_dict({"text": DOCS}), tok, text_field="text", max_length=1, insert_eos=True
    )
    flat = [row[0] for row in out["input_ids"]]  # max_length=1 keeps every token
    assert flat.count(tok.eos_token_id) == len(DOCS)
    docs = tok.decode(flat).split(tok.eos_token)
    assert docs == DOCS + [""]


def test_packing_drops_the_remainder_per_map_batch(tok):
    ds = Dataset.from_dict({"text": DOCS})
    out = tokenize_and_pack(
        ds, tok, text_field="text", max_length=4, insert_eos=False, batch_size=2
    )
    expected = []
    for i in range(0, len(DOCS), 2):  # loop reference: each batch packed on its own
        stream = [t for d in DOCS[i : i + 2] for t in _ids(tok, d)]
        expected += [stream[j : j + 4] for j in range(0, len(stream) - 3, 4)]
    assert out["input_ids"] == expected


def test_packing_streaming_equals_map_style(tok):
    ds = Dataset.from_dict({"text": DOCS})
    kw = dict(text_field="text", max_length=5, insert_eos=True, batch_size=3)
    eager = tokenize_and_pack(ds, tok, **kw)
    lazy = tokenize_and_pack(ds.to_iterable_dataset(), tok, **kw)
    assert [row["input_ids"] for row in lazy] == eager["input_ids"]


def test_packing_missing_text_field_names_the_columns(tok):
    ds = Dataset.from_dict({"Text": DOCS, "id": list(range(len(DOCS)))})
    with pytest.raises(ValueError, match=r"text_field='text'.*\['Text', 'id'\]"):
        tokenize_and_pack(ds, tok, text_field="text", max_length=4, insert_eos=False)
    with pytest.raises(ValueError, match="max_length=0"):
        tokenize_and_pack(ds, tok, text_field="Text", max_length=0, insert_eos=False)


# ------------------------------------------------------------------ SFT
def test_sft_labels_cover_exactly_the_answer_and_end_of_turn(tok):
    row = tokenize_sft({"messages": CHAT}, tok, max_length=512)
    assert row["input_ids"] == _ids(tok, tok.apply_chat_template(CHAT, tokenize=False))
    prompt = tok.apply_chat_template(CHAT[:-1], tokenize=False, add_generation_prompt=True)
    assert prompt.endswith("<|im_start|>assistant\n")
    n_prompt = len(_ids(tok, prompt))
    assert row["labels"][:n_prompt] == [-100] * n_prompt
    supervised = [t for t in row["labels"] if t != -100]
    assert tok.decode(supervised) == "81<|im_end|>\n"  # the template's text after the header


def test_sft_without_prompt_masking_supervises_everything(tok):
    row = tokenize_sft({"messages": CHAT}, tok, max_length=512, mask_prompt_loss=False)
    assert row["labels"] == row["input_ids"]


def test_sft_multi_turn_supervises_only_the_last_assistant_turn(tok):
    chat = CHAT + [
        {"role": "user", "content": "Copy: red"},
        {"role": "assistant", "content": "red"},
    ]
    row = tokenize_sft({"messages": chat}, tok, max_length=512)
    assert tok.decode([t for t in row["labels"] if t != -100]) == "red<|im_end|>\n"


def test_sft_conversations_schema_equals_messages_schema(tok):
    names = {"system": "system", "user": "human", "assistant": "gpt"}
    conv = [{"from": names[m["role"]], "value": m["content"]} for m in CHAT]
    assert normalize_messages({"conversations": conv}) == CHAT
    assert tokenize_sft({"conversations": conv}, tok, max_length=64) == tokenize_sft(
        {"messages": CHAT}, tok, max_length=64
    )


def test_sft_truncates_to_max_length(tok):
    full = tokenize_sft({"messages": CHAT}, tok, max_length=512)
    n_prompt = full["labels"].count(-100)
    cut = tokenize_sft({"messages": CHAT}, tok, max_length=n_prompt + 1)
    assert cut == {k: v[: n_prompt + 1] for k, v in full.items()}


def test_sft_rejects_bad_input(tok):
    n_prompt = tokenize_sft({"messages": CHAT}, tok, max_length=512)["labels"].count(-100)
    with pytest.raises(ValueError, match=f"max_length=3 .*prompt \\({n_prompt} tokens\\)"):
        tokenize_sft({"messages": CHAT}, tok, max_length=3)
    with pytest.raises(ValueError, match="last turn must be 'assistant'"):
        tokenize_sft({"messages": CHAT[:-1]}, tok, max_length=64)
    with pytest.raises(ValueError, match=r"unknown chat roles \['bot'\]"):
        tokenize_sft({"conversations": [{"from": "bot", "value": "hi"}]}, tok, max_length=64)
    with pytest.raises(ValueError, match="neither 'messages' nor 'conversations'"):
        tokenize_sft({"text": "hi"}, tok, max_length=64)


def test_prepare_sft_dataset_drops_rows_without_supervised_tokens(tok):
    max_length = tokenize_sft({"messages": CHAT}, tok, max_length=512)["labels"].count(-100) + 2
    long_chat = [{"role": "user", "content": "to be " * 40}, {"role": "assistant", "content": "x"}]
    ds = Dataset.from_list([{"messages": CHAT}, {"messages": long_chat}, {"messages": CHAT}])
    out = prepare_sft_dataset(ds, tok, max_length=max_length)
    assert len(out) == 2 and out.column_names == ["input_ids", "labels"]
    assert out[0] == tokenize_sft({"messages": CHAT}, tok, max_length=max_length)
    with pytest.raises(
        ValueError, match=f"all 1 SFT examples were dropped.*max_length={max_length}"
    ):
        prepare_sft_dataset(ds.select([1]), tok, max_length=max_length)


# ------------------------------------------------------------------ collator
def test_collator_pads_right_to_the_batch_max_or_a_multiple(tok):
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8]}]
    for multiple, length in [(None, 3), (4, 4), (2, 4)]:
        batch = DiffusionCollator(tok, pad_to_multiple_of=multiple)(rows)
        pad = tok.pad_token_id
        assert batch["input_ids"].tolist() == [
            [5, 6, 7] + [pad] * (length - 3),
            [8] + [pad] * (length - 1),
        ]
        assert batch["labels"].tolist() == [
            [-100, 6, 7] + [-100] * (length - 3),
            [8] + [-100] * (length - 1),
        ]
        assert batch["attention_mask"].tolist() == [
            [1] * 3 + [0] * (length - 3),
            [1] + [0] * (length - 1),
        ]
        assert all(t.dtype == torch.long for t in batch.values())


def test_collator_eos_block_padding_is_labelled(tok):
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8, 9, 10, 11, 12]}]
    eos = tok.eos_token_id
    batch = DiffusionCollator(pad_token_id=99, eos_token_id=eos, pad_with_eos_to_multiple=4)(rows)
    assert batch["input_ids"].tolist() == [
        [5, 6, 7, eos, 99, 99, 99, 99],
        [8, 9, 10, 11, 12, eos, eos, eos],
    ]
    assert batch["labels"].tolist() == [
        [-100, 6, 7, eos] + [-100] * 4,
        [8, 9, 10, 11, 12, eos, eos, eos],
    ]
    assert batch["attention_mask"].tolist() == [[1] * 4 + [0] * 4, [1] * 8]


def test_collator_eos_fill_labels_and_attends_eos_up_to_the_batch_length(tok):
    rows = [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8, 9, 10, 11, 12]}]
    eos = tok.eos_token_id
    batch = DiffusionCollator(pad_token_id=99, eos_token_id=eos, eos_fill=True)(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7, eos, eos], [8, 9, 10, 11, 12]]
    assert batch["labels"].tolist() == [[-100, 6, 7, eos, eos], [8, 9, 10, 11, 12]]
    assert batch["attention_mask"].tolist() == [[1] * 5, [1] * 5]  # nothing is padding


def test_collator_eos_fill_length_fills_short_batches_to_that_length(tok):
    rows = [{"input_ids": [5, 6, 7]}, {"input_ids": [8, 9, 10, 11, 12]}]
    eos = tok.eos_token_id
    fill = DiffusionCollator(pad_token_id=99, eos_token_id=eos, eos_fill=True, eos_fill_length=7)
    batch = fill(rows)
    assert batch["input_ids"].tolist() == [[5, 6, 7] + [eos] * 4, [8, 9, 10, 11, 12, eos, eos]]
    assert batch["labels"].tolist() == batch["input_ids"].tolist()  # labelled EOS
    assert batch["attention_mask"].tolist() == [[1] * 7, [1] * 7]
    # a batch already longer than eos_fill_length keeps the batch length (a floor, not a cut)
    assert fill([{"input_ids": list(range(9))}])["input_ids"].shape == (1, 9)


def test_collator_rejects_bad_settings(tok):
    with pytest.raises(ValueError, match="needs pad_token_id"):
        DiffusionCollator()
    with pytest.raises(ValueError, match="need eos_token_id"):
        DiffusionCollator(pad_token_id=0, pad_with_eos_to_multiple=4)
    with pytest.raises(ValueError, match="need eos_token_id"):
        DiffusionCollator(pad_token_id=0, eos_fill=True)
    with pytest.raises(ValueError, match="pad_to_multiple_of=0 must be a positive int"):
        DiffusionCollator(tok, pad_to_multiple_of=0)
    with pytest.raises(ValueError, match="eos_fill_length=8 needs eos_fill=True"):
        DiffusionCollator(tok, eos_fill_length=8)
    with pytest.raises(ValueError, match="eos_fill_length=0 must be a positive int"):
        DiffusionCollator(tok, eos_fill=True, eos_fill_length=0)


def test_synthetic_sft_batches_are_whole_blocks_ending_in_labelled_eos(tok):
    raw = make_synthetic_dataset(8, 0)["train"]
    ds = prepare_sft_dataset(raw, tok, max_length=128)
    batch = DiffusionCollator(tok, pad_to_multiple_of=8, pad_with_eos_to_multiple=8)(list(ds))
    assert batch["input_ids"].shape[0] == 8 and batch["input_ids"].shape[1] % 8 == 0
    for answer, row, labels in zip(raw["answer"], ds, batch["labels"], strict=True):
        n_eos = -len(row["input_ids"]) % 8
        expected = answer + "<|im_end|>\n" + tok.eos_token * n_eos
        assert tok.decode(labels[labels != -100].tolist()) == expected
