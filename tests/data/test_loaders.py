"""--dataset_args grammar, record mappers, named loaders (Hub stubbed), split sizes and mixtures."""

import math

import datasets
import pytest
from datasets import Dataset, DatasetDict, IterableDatasetDict

from a2dkit import data
from a2dkit.data import (
    DatasetSpec,
    load_dataset_args,
    load_named_dataset,
    loaders,
    parse_dataset_args,
)

REQUIRED = [
    "Trelis/tiny-shakespeare",
    "tatsu-lab/alpaca",
    "allenai/tulu-3-sft-mixture",
    "HuggingFaceTB/smoltalk",
    "OpenCoder-LLM/opc-sft-stage1",
    "OpenCoder-LLM/opc-sft-stage2",
    "a2dkit/synthetic",
]


# ------------------------------------------------------------------ grammar
@pytest.mark.parametrize(
    "spec, expected",
    [
        ("tatsu-lab/alpaca", [DatasetSpec("tatsu-lab/alpaca")]),
        ("OpenCoder-LLM/opc-sft-stage1[lang:python]",
         [DatasetSpec("OpenCoder-LLM/opc-sft-stage1", options={"lang": "python"})]),
        ("tatsu-lab/alpaca[train:1000,test:100]",
         [DatasetSpec("tatsu-lab/alpaca", splits={"train": 1000, "test": 100})]),
        ("a[weight:0.7]+b[ weight : 3 , name:x ]",
         [DatasetSpec("a", weight=0.7), DatasetSpec("b", options={"name": "x"}, weight=3.0)]),
        ("a+b[validation:5]", [DatasetSpec("a"), DatasetSpec("b", splits={"validation": 5})]),
    ],
)  # fmt: skip
def test_parse_valid_specs(spec, expected):
    assert parse_dataset_args(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("a++b", "empty dataset name in '\\+\\+' at character 2"),
        ("+a", "empty dataset name in '\\+' at character 0"),
        ("a[train:1", "unclosed '\\[' in '\\[train:1' at character 1"),
        ("a]+b", "']' without a matching '\\[' in 'a]' at character 1"),
        ("a[x:1]b", "text after ']' in 'a\\[x:1\\]b' at character 6"),
        ("a[[x:1]]", "nested '\\[' in '\\[\\[x:1\\]\\]' at character 2"),
        (
            "a[train:abc]",
            "train must be a positive integer, got 'abc' in 'train:abc' at character 2",
        ),
        ("a[test:0]", "test must be a positive integer, got '0'"),
        ("a[weight:0]", "weight must be a finite number > 0, got '0' in 'weight:0'"),
        ("a[weight:-1]", "weight must be a finite number > 0, got '-1'"),
        ("a[weight:inf]", "weight must be a finite number > 0, got 'inf'"),
        ("a[x:1,y]", "expected 'key:value' in 'y' at character 6"),
        ("a[train:1,train:2]", "duplicate key 'train' in 'train:2' at character 10"),
        ("a[weight:1]+b", "weights given for some datasets but not for \\['b'\\]"),
    ],
)
def test_parse_malformed_specs_quote_the_bad_part(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_dataset_args(spec)


def test_parse_rejects_non_strings():
    with pytest.raises(TypeError, match="must be a str"):
        parse_dataset_args(["tatsu-lab/alpaca"])


# ------------------------------------------------------------------ record mappers
def test_alpaca_mapper_joins_instruction_and_input():
    with_input = {"instruction": "Translate.", "input": "chat", "output": " cat \n"}
    assert loaders.alpaca_to_messages(with_input)["messages"] == [
        {"role": "user", "content": "Translate.\n\nchat"},
        {"role": "assistant", "content": "cat"},
    ]
    no_input = {"instruction": "Say hi.", "input": "", "output": "hi"}
    assert loaders.alpaca_to_messages(no_input)["messages"][0] == {
        "role": "user",
        "content": "Say hi.",
    }


def test_opc_mapper_and_lang_filter():
    record = {"instruction": "Sum a list.", "output": "```python\nsum(xs)\n```", "tag": "t"}
    assert loaders.instruction_output_to_messages(record)["messages"] == [
        {"role": "user", "content": "Sum a list."},
        {"role": "assistant", "content": "```python\nsum(xs)\n```"},
    ]
    assert loaders.keep_lang(record, "Python") and not loaders.keep_lang(record, "rust")
    assert loaders.keep_lang({"lang": "Rust", "output": "```python"}, "rust")  # column wins
    assert not loaders.keep_lang({"lang": "go", "output": "```rust"}, "rust")


def test_normalize_messages_keeps_only_role_and_content():
    tulu = {"id": "1", "source": "s", "messages": [{"role": "user", "content": "q"}]}
    assert data.normalize_messages(tulu) == [{"role": "user", "content": "q"}]
    sharegpt = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}]}
    assert data.normalize_messages(sharegpt) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "a"},
    ]


# ------------------------------------------------------------------ loaders
def test_registry_has_every_recipe_dataset():
    assert set(REQUIRED) <= set(data.LOADERS)


def _toy(n: int = 10) -> DatasetDict:
    return DatasetDict({"train": Dataset.from_dict({"i": list(range(n))})})


def test_split_sizes_take_the_first_rows_and_carve_test_off_the_end(monkeypatch):
    monkeypatch.setitem(data.LOADERS, "toy", lambda spec, streaming: _toy())
    out = load_dataset_args("toy[train:5,test:3]")
    assert out["train"]["i"] == [0, 1, 2, 3, 4] and out["test"]["i"] == [7, 8, 9]
    assert load_dataset_args("toy[test:4]")["train"]["i"] == list(range(6))
    assert load_dataset_args("toy[train:50]")["train"]["i"] == list(range(10))  # clipped
    with pytest.raises(ValueError, match=r"test:10 must be < len\(train\)=10 for toy"):
        load_dataset_args("toy[test:10]")


def test_streaming_carves_the_first_rows(monkeypatch):
    stream = lambda spec, streaming: IterableDatasetDict(  # noqa: E731
        {k: v.to_iterable_dataset() for k, v in _toy().items()}
    )
    monkeypatch.setitem(data.LOADERS, "toy", stream)
    out = load_dataset_args("toy[train:4,validation:3]", streaming=True)
    assert [r["i"] for r in out["validation"]] == [0, 1, 2]
    assert [r["i"] for r in out["train"]] == [3, 4, 5, 6]


def test_unknown_options_and_offline_unknown_names_are_refused(monkeypatch):
    with pytest.raises(ValueError, match=r"tatsu-lab/alpaca does not take options \['lang'\]"):
        load_named_dataset(DatasetSpec("tatsu-lab/alpaca", options={"lang": "en"}))
    with pytest.raises(ValueError, match="a2dkit/synthetic seed:abc must be an integer"):
        load_dataset_args("a2dkit/synthetic[seed:abc]")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ValueError, match="unknown dataset 'nobody/nothing'.*a2dkit/synthetic"):
        load_named_dataset(DatasetSpec("nobody/nothing"))


def _stub_hub(monkeypatch, tables: dict, offline_error: bool = False):
    """Replace the Hub: datasets.load_dataset(name, config) -> DatasetDict(train=tables[config])."""

    def fake_load(name, config=None, streaming=False):
        return DatasetDict({"train": Dataset.from_list(tables[config])})

    def offline(*args, **kwargs):  # what datasets raises under HF_HUB_OFFLINE without a cache
        raise ConnectionError("Couldn't reach the Hub (OfflineModeIsEnabled)")

    monkeypatch.setattr(datasets, "load_dataset", offline if offline_error else fake_load)
    names = offline if offline_error else lambda name: list(tables)
    monkeypatch.setattr(datasets, "get_dataset_config_names", names)


@pytest.mark.parametrize("name", ["tatsu-lab/alpaca", "OpenCoder-LLM/opc-sft-stage2"])
def test_offline_hub_dataset_error_names_dataset_and_env(monkeypatch, name):
    _stub_hub(monkeypatch, {}, offline_error=True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match=f"'{name}': HF_HUB_OFFLINE is set"):
        load_dataset_args(name)


def test_chat_loaders_keep_only_messages_and_smoltalk_defaults_to_all(monkeypatch):
    chat = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]
    _stub_hub(monkeypatch, {None: [{"id": "x", "messages": chat}], "all": [{"messages": chat}]})
    for name in ("allenai/tulu-3-sft-mixture", "HuggingFaceTB/smoltalk"):
        out = load_dataset_args(name)["train"]
        assert out.column_names == ["messages"] and out[0]["messages"] == chat


def test_alpaca_loader_maps_records_and_carves_test(monkeypatch):
    rows = [{"instruction": f"q{i}", "input": "", "output": f"a{i}"} for i in range(6)]
    _stub_hub(monkeypatch, {None: rows})
    out = load_dataset_args("tatsu-lab/alpaca[test:2]")
    assert out["train"].column_names == ["messages"] and len(out["train"]) == 4
    assert out["test"][1]["messages"][1] == {"role": "assistant", "content": "a5"}


def test_opc_loader_concatenates_configs_and_filters_lang(monkeypatch):
    py, rs = "```python\npass\n```", "```rust\n{}\n```"
    tables = {
        "realuser_instruct": [
            {"instruction": "a", "output": py},
            {"instruction": "b", "output": rs},
        ],
        "largescale_diverse_instruct": [{"instruction": "c", "output": py}],
    }
    _stub_hub(monkeypatch, tables)
    users = lambda ds: [m[0]["content"] for m in ds["messages"]]  # noqa: E731
    assert users(load_dataset_args("OpenCoder-LLM/opc-sft-stage1")["train"]) == ["a", "b", "c"]
    both = load_dataset_args("OpenCoder-LLM/opc-sft-stage2[lang:python]")["train"]
    assert users(both) == ["a", "c"]
    one = load_dataset_args("OpenCoder-LLM/opc-sft-stage1[name:realuser_instruct,lang:rust]")
    assert users(one["train"]) == ["b"]


def test_tiny_shakespeare_routes_to_the_offline_corpus(monkeypatch):
    texts = {"train": ["a", "b", "c"], "test": ["d"]}
    fake = lambda: DatasetDict({k: Dataset.from_dict({"Text": v}) for k, v in texts.items()})  # noqa: E731
    monkeypatch.setattr(loaders, "load_tiny_shakespeare", fake)
    out = load_dataset_args("Trelis/tiny-shakespeare[train:2]")
    assert out["train"]["Text"] == ["a", "b"] and out["test"]["Text"] == ["d"]


# ------------------------------------------------------------------ synthetic + mixtures
def test_synthetic_loader_options_and_streaming_match():
    spec = "a2dkit/synthetic[train:30,test:5,seed:7,tasks:add|copy]"
    eager, lazy = load_dataset_args(spec), load_dataset_args(spec, streaming=True)
    assert (len(eager["train"]), len(eager["test"])) == (30, 5)
    assert set(eager["train"]["task"]) <= {"add", "copy"}
    assert list(lazy["train"]) == eager["train"].to_list()


def test_concatenation_without_weights_keeps_every_row():
    out = load_dataset_args(
        "a2dkit/synthetic[train:30,test:5]+a2dkit/synthetic[seed:1,train:20,test:4]"
    )
    assert (len(out["train"]), len(out["test"])) == (50, 9)


@pytest.mark.parametrize("streaming", [False, True])
def test_mixture_weights_set_the_sampling_proportion(streaming):
    spec = (
        "a2dkit/synthetic[tasks:add,train:3000,test:1,weight:0.7]"
        "+a2dkit/synthetic[tasks:copy,train:3000,test:1,weight:0.3]"
    )
    out = load_dataset_args(spec, seed=0, streaming=streaming)["train"]
    n = 2000  # fewer than 3000 / 0.7 draws: no source is exhausted yet, so draws are i.i.d.
    tasks = [row["task"] for row in out.take(n)]
    share, sigma = tasks.count("add") / n, math.sqrt(0.7 * 0.3 / n)
    assert abs(share - 0.7) < 4 * sigma
