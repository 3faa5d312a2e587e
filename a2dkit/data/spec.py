"""The ``--dataset_args`` grammar (as dLLM A2D): ``name[key:value,...]+name2[...]``.

Keys train/validation/test are split sizes, ``weight`` a mixture weight, any other key a loader
option; a malformed spec is a ValueError quoting the bad part and its offset. Loaders:
``a2dkit.data``.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

__all__ = ["SPLIT_KEYS", "DatasetSpec", "parse_dataset_args"]

SPLIT_KEYS = ("train", "validation", "test")


@dataclass
class DatasetSpec:
    """One ``+``-separated item of ``--dataset_args``: ``name[opt:val,train:N,weight:w]``."""

    name: str
    options: dict[str, str] = field(default_factory=dict)
    splits: dict[str, int] = field(default_factory=dict)
    weight: float | None = None


def _bad(spec: str, what: str, part: str, offset: int) -> ValueError:
    return ValueError(f"--dataset_args {spec!r}: {what} in {part!r} at character {offset}")


def _split_top_level(spec: str) -> list[tuple[str, int]]:
    """Split on ``+`` outside brackets into (part, offset) pairs, checking bracket balance."""
    parts, start, opened = [], 0, None
    for i, ch in enumerate(spec):
        if ch == "[" and opened is not None:
            raise _bad(spec, "nested '['", spec[opened:], i)
        if ch == "]" and opened is None:
            raise _bad(spec, "']' without a matching '['", spec[start : i + 1], i)
        opened = i if ch == "[" else None if ch == "]" else opened
        if ch == "+" and opened is None:
            parts.append((spec[start:i], start))
            start = i + 1
    if opened is not None:
        raise _bad(spec, "unclosed '['", spec[opened:], opened)
    return parts + [(spec[start:], start)]


def _parse_number(key: str, value: str) -> int | float | None:
    """Weight: finite float > 0; split size: int > 0; None when invalid."""
    if key != "weight":
        return int(value) if value.isdigit() and int(value) > 0 else None
    try:
        return float(value) if math.isfinite(float(value)) and float(value) > 0 else None
    except ValueError:
        return None


def _parse_part(spec: str, part: str, offset: int) -> DatasetSpec:
    bracket, body = part.find("["), part.rstrip()
    out = DatasetSpec((part if bracket < 0 else part[:bracket]).strip())
    if not out.name:
        context = spec[max(offset - 1, 0) : offset + len(part) + 1]  # e.g. '++' in 'a++b'
        raise _bad(spec, "empty dataset name", context, offset)
    if bracket < 0:
        return out
    if not body.endswith("]"):
        raise _bad(spec, "text after ']'", part, offset + part.find("]") + 1)
    at = offset + bracket + 1
    for item in body[bracket + 1 : -1].split(","):
        key, sep, value = (s.strip() for s in item.partition(":"))
        if not (key and sep and value):
            raise _bad(spec, "expected 'key:value'", item or part, at)
        if key in out.options or key in out.splits or (key == "weight" and out.weight):
            raise _bad(spec, f"duplicate key {key!r}", item, at)
        number = _parse_number(key, value) if key == "weight" or key in SPLIT_KEYS else value
        if number is None:
            kind = "a finite number > 0" if key == "weight" else "a positive integer"
            raise _bad(spec, f"{key} must be {kind}, got {value!r}", item, at)
        if key == "weight":
            out.weight = number
        else:
            (out.splits if key in SPLIT_KEYS else out.options)[key] = number
        at += len(item) + 1
    return out


def parse_dataset_args(spec: str) -> list[DatasetSpec]:
    """Parse ``--dataset_args`` into one DatasetSpec per ``+``-joined dataset.

    Args:
        spec: e.g. ``"tatsu-lab/alpaca[train:1000,test:100]"``, ``"a[weight:0.7]+b[weight:0.3]"``.

    Returns:
        list of DatasetSpec; a malformed spec raises ValueError quoting the bad part and offset.
    """
    if not isinstance(spec, str):
        raise TypeError(f"dataset_args must be a str like 'name[train:100]', got {type(spec)}")
    specs = [_parse_part(spec, part, off) for part, off in _split_top_level(spec)]
    missing = [s.name for s in specs if s.weight is None]
    if 0 < len(missing) < len(specs):
        raise ValueError(
            f"--dataset_args {spec!r}: weights given for some datasets but not for {missing}; "
            "give a weight to every dataset or to none"
        )
    return specs
