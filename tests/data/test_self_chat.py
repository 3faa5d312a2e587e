"""Self-distilled chat data on a tiny AR model: answers are the model's own greedy ``generate``,
the cached set is reused and resumed, its splits are disjoint, ``a2dkit/self-chat`` reads it."""

import json

import pytest
import torch
from conftest import make_tiny_ar

from a2dkit.data import load_dataset_args
from a2dkit.data.greedy import greedy_answers
from a2dkit.data.prompt_sets import everyday_prompts
from a2dkit.data.self_chat import (
    INFO,
    LAPTOP_SOURCE,
    SelfChatSettings,
    build_self_chat,
    load_self_chat,
    self_chat_dir,
)

PROMPTS = ["What is the capital of France?", "Hi", "Explain gravity to a child, please."]
SETTINGS = SelfChatSettings("tiny-src", num_train=5, num_test=3, max_new_tokens=6, dtype="float64")


@pytest.fixture(scope="module")
def model_and_tokenizer(small_tokenizer):
    return make_tiny_ar("qwen3", small_tokenizer).double().eval(), small_tokenizer


def _own_generate(model, tokenizer, prompt, max_new_tokens, eos):
    """One prompt, unpadded, through HF ``generate``: the reference answer."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], tokenize=False, add_generation_prompt=True
    )
    ids = torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])
    kw = dict(do_sample=False, eos_token_id=eos, pad_token_id=tokenizer.pad_token_id)
    out = model.generate(ids, max_new_tokens=max_new_tokens, **kw)[0, ids.shape[1] :].tolist()
    return out[: out.index(eos[0])] if eos[0] in out else out


def test_answers_are_each_prompts_own_greedy_generate(model_and_tokenizer):
    model, tok = model_and_tokenizer
    eos = [tok.eos_token_id, tok.convert_tokens_to_ids("<|im_end|>")]
    answers = greedy_answers(model, tok, PROMPTS, max_new_tokens=7, batch_size=2)  # left-padded
    for prompt, answer in zip(PROMPTS, answers, strict=True):
        tokens = _own_generate(model, tok, prompt, 7, eos)
        assert answer["answer"] == tok.decode(tokens, skip_special_tokens=True).strip()
        assert (answer["num_tokens"], answer["truncated"]) == (len(tokens), len(tokens) == 7)


def test_an_answer_stops_at_the_models_eos(model_and_tokenizer):
    model, tok = model_and_tokenizer
    full = greedy_answers(model, tok, PROMPTS[:1], max_new_tokens=7)[0]
    tokens = _own_generate(model, tok, PROMPTS[0], 7, [tok.eos_token_id])
    stop = tokens[3]  # make the 4th greedy token the model's EOS: the answer ends before it
    model.generation_config.eos_token_id = stop
    try:
        short = greedy_answers(model, tok, PROMPTS[:1], max_new_tokens=7)[0]
    finally:
        model.generation_config.eos_token_id = None
    assert full["truncated"] and not short["truncated"]
    assert short["num_tokens"] == tokens.index(stop)
    assert short["answer"] == tok.decode(tokens[: tokens.index(stop)]).strip()


def test_build_writes_disjoint_splits_of_the_models_answers(model_and_tokenizer, tmp_path):
    model, tok = model_and_tokenizer
    out = build_self_chat(model, tok, SETTINGS, output_dir=tmp_path / "set", batch_size=4)
    dsd = load_self_chat(out)
    prompts = everyday_prompts(5, 3)
    for split, n in (("train", 5), ("test", 3)):
        assert dsd[split]["prompt"] == [row["prompt"] for row in prompts[split]]
        assert len(dsd[split]) == n
    assert not set(dsd["train"]["prompt"]) & set(dsd["test"]["prompt"])
    expected = greedy_answers(model, tok, dsd["test"]["prompt"], max_new_tokens=6)
    assert dsd["test"]["answer"] == [a["answer"] for a in expected]
    row = dsd["train"][0]
    assert row["messages"] == [{"role": "user", "content": row["prompt"]},
                               {"role": "assistant", "content": row["answer"]}]  # fmt: skip
    info = json.loads((out / INFO).read_text())
    assert info["settings"]["source"] == "tiny-src" and info["rows"] == {"train": 5, "test": 3}
    assert not (tmp_path / "set.partial").exists()


def test_a_built_set_is_reused_and_a_killed_build_resumes(model_and_tokenizer, tmp_path):
    model, tok = model_and_tokenizer
    out = tmp_path / "set"
    partial = tmp_path / "set.partial"
    partial.mkdir()
    done = {"index": 1, "answer": "from before", "num_tokens": 2, "truncated": False}
    (partial / "answers.jsonl").write_text(json.dumps(done) + "\n")
    (partial / "seconds").write_text("100.0")  # the killed run's generation time
    build_self_chat(model, tok, SETTINGS, output_dir=out)
    assert load_self_chat(out)["train"][1]["answer"] == "from before"  # not generated again
    generation = json.loads((out / INFO).read_text())["generation"]
    assert generation["seconds"] >= 100 and generation["prompts_generated"] == 7
    assert sorted(p.name for p in out.iterdir()) == ["data", INFO]
    assert build_self_chat(None, None, SETTINGS, output_dir=out) == out  # no model needed


def test_cache_key_names_the_source_and_changes_with_the_settings():
    key = SelfChatSettings(LAPTOP_SOURCE).key()
    assert key.startswith("smollm2-135m-instruct-p1-t64-")
    other = dict(num_train=10, num_test=1, seed=1, max_new_tokens=8, dtype="bfloat16")
    changed = [SelfChatSettings(LAPTOP_SOURCE, **{k: v}).key() for k, v in other.items()]
    assert len({key, *changed}) == 6


def test_laptop_source_is_the_tutorials():
    from a2dkit.tutorial import SMOLLM2

    assert LAPTOP_SOURCE == SMOLLM2


def test_named_dataset_reads_the_cached_set(model_and_tokenizer, tmp_path, monkeypatch):
    monkeypatch.setenv("A2DKIT_CACHE", str(tmp_path))
    model, tok = model_and_tokenizer
    with pytest.raises(FileNotFoundError, match="python -m a2dkit.cli.self_chat"):
        load_dataset_args("a2dkit/self-chat")
    default_dir = self_chat_dir(SelfChatSettings("tiny-src"))  # where the loader looks
    build_self_chat(model, tok, SETTINGS, output_dir=default_dir)
    dsd = load_dataset_args("a2dkit/self-chat[source:tiny-src,train:4]")
    assert (len(dsd["train"]), len(dsd["test"])) == (4, 3)
    by_path = load_dataset_args(f"a2dkit/self-chat[path:{default_dir},test:2]")
    assert by_path["train"]["messages"][:4] == dsd["train"]["messages"]
    assert len(by_path["test"]) == 2
    with pytest.raises(ValueError, match="does not take options"):
        load_dataset_args("a2dkit/self-chat[seed:1]")


def _fake_set(path, answers):
    """A built set whose train answers are ``answers`` ((text, truncated) pairs)."""
    from datasets import Dataset, DatasetDict

    rows = []
    for i, (answer, truncated) in enumerate(answers):
        messages = [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": answer}]
        rows.append({"messages": messages, "answer": answer, "truncated": truncated})
    DatasetDict(
        {"train": Dataset.from_list(rows), "test": Dataset.from_list(rows[:1])}
    ).save_to_disk(str(path / "data"))
    (path / INFO).write_text("{}")


@pytest.mark.parametrize(
    "option, expected",
    [
        ("keep", ["Paris. It is big and", "1. Apples\n2. Pears and", "no end at all", "Done."]),
        ("drop", ["Done."]),
        ("trim", ["Paris.", "1. Apples", "Done."]),
    ],
)
def test_truncated_answers_are_kept_dropped_or_trimmed(tmp_path, option, expected):
    answers = [("Paris. It is big and", True), ("1. Apples\n2. Pears and", True),
               ("no end at all", True), ("Done.", False)]  # fmt: skip
    _fake_set(tmp_path, answers)
    train = load_dataset_args(f"a2dkit/self-chat[path:{tmp_path},truncated:{option}]")["train"]
    assert train["answer"] == expected
    assert [m[-1]["content"] for m in train["messages"]] == expected
    assert (
        sorted(p.name for p in (tmp_path / "data" / "train").iterdir() if "cache" in p.name) == []
    )
    with pytest.raises(ValueError, match="truncated='cut' is not valid"):
        load_self_chat(tmp_path, truncated="cut")
