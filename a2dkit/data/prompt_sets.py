"""Chat prompts without answers: the kit's everyday prompt set, made offline from templates over
word lists (``a2dkit.data.prompt_words``), and a user's own prompts from a JSONL file.

The held-out ``test`` prompts use only held-out words: a fixed share of every word list that no
``train`` prompt contains, so a model tuned on ``train`` is asked about countries, animals,
numbers, ... it never saw in that set (every (template, fill) pair of ``test`` is new too).
"""

from __future__ import annotations

import itertools
import json
import random
import string
from pathlib import Path

from a2dkit.data.prompt_words import PROMPTS_VERSION, TEMPLATES, WORDS

__all__ = [
    "HELD_OUT_FRACTION",
    "MAX_PER_TEMPLATE",
    "PROMPTS_VERSION",
    "everyday_prompts",
    "held_out_words",
    "load_prompts_file",
]

HELD_OUT_FRACTION = 0.2  # of every word list: used by test prompts only
MAX_PER_TEMPLATE = 60  # of train: no template (e.g. the arithmetic ones) crowds out the others
_VALID = 'JSONL: one JSON object per line with a non-empty string "prompt", e.g. {"prompt": "Hi"}'


def _fields(template: str) -> list[str]:
    names = (name for _, name, _, _ in string.Formatter().parse(template) if name)
    return list(dict.fromkeys(names))


def _list_name(field: str) -> str:
    return field.rstrip("0123456789")


def held_out_words(seed: int = 0) -> dict[str, frozenset[str]]:
    """The words of every list (``WORDS``) that only ``test`` prompts use, for ``seed``."""
    rng = random.Random(f"a2dkit-prompts-{seed}-held-out")
    return {
        name: frozenset(rng.sample(sorted(words), max(1, round(HELD_OUT_FRACTION * len(words)))))
        for name, words in sorted(WORDS.items())
    }


def _pools(held: dict[str, frozenset[str]]) -> dict[str, list[list[dict[str, str]]]]:
    """Per split, per template: its prompts whose words are all held out (test) or none (train);
    a prompt that mixes the two is in neither."""
    pools: dict[str, list[list[dict[str, str]]]] = {"train": [], "test": []}
    for category, template in TEMPLATES:
        fields = _fields(template)
        by_split: dict[str, list[dict[str, str]]] = {"train": [], "test": []}
        for words in itertools.product(*(WORDS[_list_name(f)] for f in fields)):
            lists = [_list_name(f) for f in fields]
            if len(set(zip(lists, words, strict=True))) < len(words):
                continue  # {animals} and {animals2} must differ
            held_out = [w in held[name] for name, w in zip(lists, words, strict=True)]
            if any(held_out) and not all(held_out):
                continue
            prompt = template.format(**dict(zip(fields, words, strict=True)))
            row = {"prompt": prompt, "category": category, "template": template}
            by_split["test" if all(held_out) else "train"].append(row)
        for split, rows in by_split.items():
            pools[split].append(rows)
    return pools


def _round_robin(
    pools: list[list[dict[str, str]]], n: int, rng: random.Random, split: str
) -> list[dict[str, str]]:
    """n rows taken one template at a time (shuffled within each, at most ``MAX_PER_TEMPLATE``
    each), distinct prompts only; the first k rows are the same for every n >= k."""
    shuffled = [rng.sample(rows, len(rows))[:MAX_PER_TEMPLATE] for rows in pools]
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    for i in range(max(map(len, shuffled))):
        for rows in shuffled:
            if i < len(rows) and rows[i]["prompt"] not in seen:
                seen.add(rows[i]["prompt"])
                out.append(rows[i])
                if len(out) == n:
                    return out
    raise ValueError(f"num_{split}={n} is more than the {len(out)} {split} prompts there are")


def everyday_prompts(
    num_train: int = 2200, num_test: int = 200, seed: int = 0
) -> dict[str, list[dict[str, str]]]:
    """The kit's everyday chat prompts (facts, explanations, definitions, how-to, creative tasks,
    comparisons, lists, advice, translation, math word problems), deterministic given ``seed``.

    Args:
        num_train: prompts in ``train``; the first k are the same for every ``num_train >= k``,
            and they take the templates in turn (balanced).
        num_test: held-out prompts in ``test``, made of held-out words only; they depend on
            ``seed`` and ``num_test``, never on ``num_train``.
        seed: picks the held-out words and the order of the prompts.

    Returns:
        ``{"train": rows, "test": rows}``; a row is ``{"prompt", "category", "template"}``;
        prompts are distinct within and across splits.
    """
    for name, value in (("num_train", num_train), ("num_test", num_test), ("seed", seed)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name}={value!r} must be an integer >= 0")
    pools = _pools(held_out_words(seed))
    rng = {split: random.Random(f"a2dkit-prompts-{seed}-{split}") for split in pools}
    return {
        split: _round_robin(pools[split], n, rng[split], split) if n else []
        for split, n in (("train", num_train), ("test", num_test))
    }


def load_prompts_file(path: str | Path) -> list[str]:
    """A user's chat prompts: a JSONL file with one ``{"prompt": "..."}`` object per line (other
    keys are ignored, blank lines skipped).

    Raises:
        ValueError: the file is missing, holds no prompt, or a line is not JSON or has no
            non-empty string ``prompt``; the message names the file, the line and what is valid.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"prompts file {str(path)!r} does not exist; expected {_VALID}")
    prompts = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            where = f"prompts file {str(path)!r} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{where} is not JSON ({err.msg}); expected {_VALID}") from err
            prompt = record.get("prompt") if isinstance(record, dict) else None
            if not isinstance(prompt, str) or not prompt.strip():
                raise ValueError(f'{where} has no non-empty string "prompt"; expected {_VALID}')
            prompts.append(prompt)
    if not prompts:
        raise ValueError(f"prompts file {str(path)!r} is empty; expected {_VALID}")
    return prompts
