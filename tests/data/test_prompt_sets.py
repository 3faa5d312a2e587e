"""The kit's everyday chat prompts (counts, held-out words, determinism, diversity) and a user's
JSONL prompts file (every bad file named with its line and what is valid)."""

import re
import string

import pytest

from a2dkit.data.prompt_sets import everyday_prompts, held_out_words, load_prompts_file
from a2dkit.data.prompt_words import TEMPLATES


@pytest.fixture(scope="module")
def prompts():
    return everyday_prompts()


def _fill(template: str, prompt: str) -> dict[str, str]:
    """The words a template's fields took in ``prompt`` (a repeated field matches the same)."""
    pattern, seen = "", set()
    for literal, name, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if name:
            pattern += f"(?P={name})" if name in seen else f"(?P<{name}>.+?)"
            seen.add(name)
    return re.fullmatch(pattern, prompt).groupdict()


def test_default_sizes_and_distinct_prompts(prompts):
    train, test = ([row["prompt"] for row in prompts[k]] for k in ("train", "test"))
    assert (len(train), len(test)) == (2200, 200)
    assert len(set(train)) == len(train) and len(set(test)) == len(test)
    assert not set(train) & set(test)


def test_test_prompts_use_only_held_out_words_and_train_none(prompts):
    held = held_out_words(0)
    pairs = {}
    for split, rows in prompts.items():
        for row in rows:
            fill = _fill(row["template"], row["prompt"])
            flags = [word in held[field.rstrip("0123456789")] for field, word in fill.items()]
            assert all(flags) if split == "test" else not any(flags), (split, row)
            pairs.setdefault(split, set()).add((row["template"], tuple(fill.values())))
    assert not pairs["train"] & pairs["test"]  # no (template, fill) pair in both


def test_deterministic_prefix_stable_and_seeded(prompts):
    assert everyday_prompts() == prompts
    small = everyday_prompts(num_train=800, num_test=200)
    assert small["train"] == prompts["train"][:800] and small["test"] == prompts["test"]
    other = everyday_prompts(seed=1)
    assert other["test"] != prompts["test"] and other["train"] != prompts["train"]


def test_diverse_templates_and_categories(prompts):
    for split, rows in prompts.items():
        assert len({row["template"] for row in rows}) == len(TEMPLATES) >= 60, split
        assert len({row["category"] for row in rows}) >= 10, split
    # balanced: no template more than 3% of train
    counts = [sum(r["template"] == t for r in prompts["train"]) for _, t in TEMPLATES]
    assert max(counts) <= 0.03 * len(prompts["train"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(num_train=10**6), "num_train=1000000 is more than the"),
        (dict(num_test=10**5), "num_test=100000 is more than the"),
        (dict(num_train=-1), "num_train=-1 must be an integer >= 0"),
        (dict(seed=1.5), "seed=1.5 must be an integer >= 0"),
    ],
)
def test_bad_sizes_are_named(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        everyday_prompts(**kwargs)


def test_load_prompts_file_reads_prompts_in_order(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text('{"prompt": "Hi there"}\n\n{"prompt": "Why?", "id": 3}\n')
    assert load_prompts_file(path) == ["Hi there", "Why?"]


@pytest.mark.parametrize(
    "text, where",
    [
        (None, "does not exist"),
        ("", "is empty"),
        ("\n  \n", "is empty"),
        ('{"prompt": "a"}\n{"prompt": "b"\n', "line 2 is not JSON"),
        ('{"prompt": "a"}\n{"text": "b"}\n', 'line 2 has no non-empty string "prompt"'),
        ('{"prompt": 3}\n', 'line 1 has no non-empty string "prompt"'),
        ('{"prompt": "  "}\n', 'line 1 has no non-empty string "prompt"'),
        ('["a"]\n', 'line 1 has no non-empty string "prompt"'),
        ("prompt,id\nhi,1\n", "line 1 is not JSON"),
    ],
)
def test_bad_prompts_files_name_the_file_the_line_and_what_is_valid(tmp_path, text, where):
    path = tmp_path / "prompts.jsonl"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ValueError) as err:
        load_prompts_file(path)
    message = str(err.value)
    assert f"prompts file {str(path)!r} {where}" in message
    assert 'one JSON object per line with a non-empty string "prompt"' in message
