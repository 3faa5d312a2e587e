"""bench/bench_retention.py end to end at minimal sizes: the source's row and a given A2D model's
(a fresh conversion of the scale's source, untrained), every documented field, and a bad
--prompts file refused in one line before any model loads."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import load_bench

from a2dkit import tutorial
from a2dkit.convert import to_diffusion

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_retention.py"
FIELDS = {"name", "algo", "recipe", "chrf", "exact_match", "nll_gap", "humaneval_pass1",
          "forwards_per_token", "tok_per_s"}  # fmt: skip


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_retention")


def test_the_source_row_and_a_given_models_row(bench, tmp_path):
    source, tok, _ = tutorial.load_source_model(tutorial.get_scale("smoke"))
    a2d, a2d_tok = to_diffusion(copy.deepcopy(source), copy.deepcopy(tok))[:2]
    a2d.save_pretrained(tmp_path / "a2d")
    a2d_tok.save_pretrained(tmp_path / "a2d")
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("Hi.", "Why?", "No.")))
    out = tmp_path / "rows.json"
    bench.main(["--scale", "smoke", "--model", f"bd3lm={tmp_path / 'a2d'}:fresh",
                "--prompts", str(prompts), "--num_prompts", "2", "--humaneval_limit", "1",
                "--json", str(out)])  # fmt: skip
    rows = json.loads(out.read_text())["rows"]
    assert [(r["name"], r["algo"], r["recipe"]) for r in rows] == [
        ("source", "ar", "source"), ("fresh", "bd3lm", "given")]  # fmt: skip
    assert all(FIELDS <= set(r) for r in rows)
    assert rows[0]["chrf"] == 1.0 and rows[0]["exact_match"] == 1.0 and rows[0]["nll_gap"] == 0
    assert rows[1]["nll_gap"] is not None and rows[1]["forwards_per_token"] > 0
    assert rows[0]["humaneval_pass1"] in (0.0, 1.0)


@pytest.mark.parametrize(
    "content, message",
    [("", "is empty"), ("not json\n", "line 1"), ('{"text": "hi"}\n', "line 1")],
)
def test_a_bad_prompts_file_is_one_line_and_exit_2(tmp_path, content, message):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    proc = subprocess.run([sys.executable, str(BENCH), "--prompts", str(bad)],
                          capture_output=True, text=True, env={**os.environ})  # fmt: skip
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("error: ") and message in proc.stderr
