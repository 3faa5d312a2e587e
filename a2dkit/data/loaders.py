"""Training data: named loaders and weighted mixtures of a ``--dataset_args`` spec (as dLLM A2D).

The grammar ``name[key:value,...]+name2[...]`` is ``a2dkit.data.spec``; packing, SFT and collators:
``a2dkit.data.preprocess``.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import datasets
from datasets import Dataset, DatasetDict, IterableDataset, IterableDatasetDict

from a2dkit._env import hub_offline
from a2dkit.data.preprocess import AnyDataset, column_names, normalize_messages
from a2dkit.data.self_chat import LAPTOP_SOURCE, load_self_chat
from a2dkit.data.shakespeare import load_tiny_shakespeare
from a2dkit.data.spec import DatasetSpec, parse_dataset_args
from a2dkit.data.synthetic import make_synthetic_dataset
from a2dkit.data.warmstart import sft_rows

AnyDatasetDict = DatasetDict | IterableDatasetDict


# ------------------------------------------------------------------ 1. record mappers (pure)
def _turn(role: str, content: str | None) -> dict[str, str]:
    return {"role": role, "content": (content or "").strip()}


def alpaca_to_messages(example: dict[str, Any]) -> dict[str, Any]:
    """Alpaca record -> chat: instruction (+ blank line + input) -> user, output -> assistant."""
    prompt, extra = (example.get(k) or "" for k in ("instruction", "input"))
    prompt = f"{prompt.strip()}\n\n{extra.strip()}" if extra.strip() else prompt
    return {"messages": [_turn("user", prompt), _turn("assistant", example.get("output"))]}


def instruction_output_to_messages(example: dict[str, Any]) -> dict[str, Any]:
    """OpenCoder opc-sft record (``instruction``/``output``) -> chat messages."""
    return {
        "messages": [_turn("user", example["instruction"]), _turn("assistant", example["output"])]
    }


def _messages_only(example: dict[str, Any]) -> dict[str, Any]:
    return {"messages": normalize_messages(example)}


def keep_lang(example: dict[str, Any], lang: str) -> bool:
    """opc-sft ``lang`` filter: equality on a ``lang`` column when the record has one; otherwise
    (opc-sft-stage1/2 have none) keep replies that contain a markdown code fence for ``lang``."""
    if "lang" in example:
        return str(example["lang"]).lower() == lang.lower()
    return f"```{lang.lower()}" in example["output"].lower()


# ------------------------------------------------------------------ 2. named loaders
def _hub_load(name: str, config: str | None, streaming: bool) -> AnyDatasetDict:
    return _from_hub(name, datasets.load_dataset, name, config, streaming=streaming)


def _from_hub(name: str, fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call a Hub function; offline, turn its ConnectionError into one naming the dataset."""
    try:
        return fn(*args, **kwargs)
    except ConnectionError as err:
        if not hub_offline():
            raise
        raise ConnectionError(
            f"cannot load dataset {name!r}: HF_HUB_OFFLINE is set and it is not in the local "
            f"cache; unset HF_HUB_OFFLINE or use an offline dataset: {_OFFLINE}"
        ) from err


def _map_dict(dsd: AnyDatasetDict, fn: Callable) -> AnyDatasetDict:
    return type(dsd)({k: v.map(fn, remove_columns=column_names(v)) for k, v in dsd.items()})


def _check_options(spec: DatasetSpec, allowed: tuple[str, ...]) -> None:
    bad = sorted(set(spec.options) - set(allowed))
    if bad:
        raise ValueError(f"{spec.name} does not take options {bad}; it takes {list(allowed)}")


def _load_chat(spec: DatasetSpec, streaming: bool, config: str | None = None) -> AnyDatasetDict:
    """tulu-3 / smoltalk: already role/content chats; ``name:<config>`` picks the config."""
    _check_options(spec, ("name",))
    return _map_dict(
        _hub_load(spec.name, spec.options.get("name", config), streaming), _messages_only
    )


def _load_alpaca(spec: DatasetSpec, streaming: bool) -> AnyDatasetDict:
    _check_options(spec, ())
    return _map_dict(_hub_load(spec.name, None, streaming), alpaca_to_messages)


def _load_opc(spec: DatasetSpec, streaming: bool) -> AnyDatasetDict:
    """``name:<config>`` (e.g. realuser_instruct) loads one config, default all (concatenated);
    ``lang:<lang>`` filters rows with ``keep_lang`` (not a config name)."""
    _check_options(spec, ("name", "lang"))
    configs = [spec.options["name"]] if "name" in spec.options else None
    configs = configs or _from_hub(spec.name, datasets.get_dataset_config_names, spec.name)
    train = [_hub_load(spec.name, c, streaming)["train"] for c in configs]
    train = datasets.concatenate_datasets(train) if len(train) > 1 else train[0]
    if "lang" in spec.options:
        train = train.filter(keep_lang, fn_kwargs={"lang": spec.options["lang"]})
    dsd = DatasetDict if isinstance(train, Dataset) else IterableDatasetDict
    return _map_dict(dsd({"train": train}), instruction_output_to_messages)


def _load_shakespeare(spec: DatasetSpec, streaming: bool) -> AnyDatasetDict:
    _check_options(spec, ())
    return _maybe_stream(load_tiny_shakespeare(), streaming)


def _load_synthetic(spec: DatasetSpec, streaming: bool) -> AnyDatasetDict:
    """Options ``seed:<int>``, ``tasks:add|copy`` ('|'-separated); train/test sizes are drawn."""
    _check_options(spec, ("seed", "tasks"))
    kw: dict[str, Any] = {f"num_{k}": v for k, v in spec.splits.items() if k != "validation"}
    if not spec.options.get("seed", "0").isdigit():
        raise ValueError(f"a2dkit/synthetic seed:{spec.options['seed']} must be an integer >= 0")
    kw |= {"seed": int(spec.options["seed"])} if "seed" in spec.options else {}
    kw |= {"tasks": spec.options["tasks"].split("|")} if "tasks" in spec.options else {}
    return _maybe_stream(make_synthetic_dataset(**kw), streaming)


def _load_puzzles(task: str) -> Callable[[DatasetSpec, bool], AnyDatasetDict]:
    """The kit's puzzles with gold answers in d1's format (``a2dkit.data.warmstart``): option
    ``seed:<int>``; ``train:N`` (default 1000) and ``test:N`` (default 64) are disjoint."""

    def load(spec: DatasetSpec, streaming: bool) -> AnyDatasetDict:
        _check_options(spec, ("seed",))
        seed = spec.options.get("seed", "0")
        if not seed.isdigit():
            raise ValueError(f"{spec.name} seed:{seed} must be an integer >= 0")
        sizes = {"train": spec.splits.get("train", 1000), "test": spec.splits.get("test", 64)}
        dsd = DatasetDict({k: sft_rows(task, k, n, int(seed)) for k, n in sizes.items()})
        return _maybe_stream(dsd, streaming)

    return load


def _load_self_chat(spec: DatasetSpec, streaming: bool) -> AnyDatasetDict:
    """The source model's own greedy answers (``a2dkit.data.self_chat``), built beforehand by
    ``python -m a2dkit.cli.self_chat``: option ``source:<name>`` (default the laptop source) or
    ``path:<dir>`` (a set built with ``--output_dir``); ``truncated:keep|drop|trim`` (answers
    that hit max_new_tokens: as generated, dropped, or cut after their last full sentence)."""
    _check_options(spec, ("source", "path", "truncated"))
    source, truncated = spec.options.get("source", LAPTOP_SOURCE), spec.options.get("truncated")
    dsd = load_self_chat(spec.options.get("path"), source, truncated or "keep")
    return _maybe_stream(dsd, streaming)


def _maybe_stream(dsd: DatasetDict, streaming: bool) -> AnyDatasetDict:
    if not streaming:
        return dsd
    return IterableDatasetDict({k: v.to_iterable_dataset() for k, v in dsd.items()})


LOADERS: dict[str, Callable[[DatasetSpec, bool], AnyDatasetDict]] = {
    "Trelis/tiny-shakespeare": _load_shakespeare,
    "tatsu-lab/alpaca": _load_alpaca,
    "allenai/tulu-3-sft-mixture": _load_chat,
    "HuggingFaceTB/smoltalk": lambda spec, streaming: _load_chat(spec, streaming, "all"),
    "OpenCoder-LLM/opc-sft-stage1": _load_opc,
    "OpenCoder-LLM/opc-sft-stage2": _load_opc,
    "a2dkit/synthetic": _load_synthetic,
    "a2dkit/countdown": _load_puzzles("a2dkit/countdown"),
    "a2dkit/sudoku": _load_puzzles("sudoku"),
    "a2dkit/self-chat": _load_self_chat,
}
_OFFLINE = ["a2dkit/synthetic", "a2dkit/countdown", "a2dkit/sudoku", "a2dkit/self-chat",
            "Trelis/tiny-shakespeare"]  # fmt: skip


def load_named_dataset(spec: DatasetSpec, *, streaming: bool = False) -> AnyDatasetDict:
    """Load one dataset (``LOADERS``; SFT sets become a ``messages`` column), then apply its split
    sizes: ``train:N`` keeps the first N rows; ``test:N`` with no test split carves the last N
    train rows off (the first N when streaming). Other names go to ``datasets.load_dataset``.
    """
    if spec.name in LOADERS:
        dsd = LOADERS[spec.name](spec, streaming)
    elif hub_offline() and not os.path.exists(spec.name):
        raise ValueError(
            f"unknown dataset {spec.name!r} with HF_HUB_OFFLINE set; known: {list(LOADERS)}"
        )
    else:
        dsd = _hub_load(spec.name, spec.options.get("name"), streaming)
    out = dict(dsd)
    for split, n in spec.splits.items():  # carve first: test:N comes off the full train split
        if split not in out:
            out[split], out["train"] = _carve(out, split, n, spec.name)
    for split, n in spec.splits.items():
        ds = out[split]
        out[split] = (
            ds.take(n) if isinstance(ds, IterableDataset) else ds.select(range(min(n, len(ds))))
        )
    return type(dsd)(out)


def _carve(
    out: dict[str, AnyDataset], split: str, n: int, name: str
) -> tuple[AnyDataset, AnyDataset]:
    """(new split, rest of train): the last n train rows (first n when streaming)."""
    train = out.get("train")
    if train is None:
        raise ValueError(f"{name} has splits {list(out)} and no 'train' to carve {split}:{n} from")
    if isinstance(train, IterableDataset):
        return train.take(n), train.skip(n)
    if n >= len(train):
        raise ValueError(f"{split}:{n} must be < len(train)={len(train)} for {name}")
    return train.select(range(len(train) - n, len(train))), train.select(range(len(train) - n))


def _combine(parts: list[AnyDataset], weights: list[float] | None, seed: int) -> AnyDataset:
    cols = [column_names(p) for p in parts]
    common = [c for c in cols[0] if all(c in other for other in cols)]
    if any(c != common for c in cols):  # e.g. synthetic's extra 'answer'/'task' columns
        parts = [p.select_columns(common) for p in parts]
    if len(parts) == 1 or weights is None:
        return parts[0] if len(parts) == 1 else datasets.concatenate_datasets(parts)
    probs = [w / sum(weights) for w in weights]
    return datasets.interleave_datasets(parts, probs, seed, stopping_strategy="all_exhausted")


def load_dataset_args(spec: str, *, seed: int = 42, streaming: bool = False) -> AnyDatasetDict:
    """Load ``--dataset_args``: each dataset via ``load_named_dataset``; per split, concatenate,
    or with weights interleave with probabilities ``weight / sum(weights)``.

    Args:
        spec: e.g. ``"a2dkit/synthetic[train:500]"`` or ``"a[weight:0.7]+b[weight:0.3]"``.
        seed: seed of the mixture sampler (``interleave_datasets``, stopping "all_exhausted").
        streaming: return an IterableDatasetDict (Hub datasets are streamed, not downloaded).

    Returns:
        DatasetDict (or IterableDatasetDict) with the union of the datasets' splits; columns a
        dataset lacks are dropped from the others (e.g. synthetic's ``answer``/``task``).
    """
    specs = parse_dataset_args(spec)
    loaded = [load_named_dataset(s, streaming=streaming) for s in specs]
    out = {}
    for split in dict.fromkeys(k for dsd in loaded for k in dsd):
        idx = [i for i, dsd in enumerate(loaded) if split in dsd]
        weights = None if specs[0].weight is None else [specs[i].weight for i in idx]
        out[split] = _combine([loaded[i][split] for i in idx], weights, seed)
    return type(loaded[0])(out)
