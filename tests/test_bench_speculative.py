"""bench/bench_speculative.py end to end at minimal sizes on a fresh conversion of the smoke
source: every mode's row, each greedy row the verifier's greedy output on every prompt."""

from __future__ import annotations

import copy
import json

import pytest
from conftest import load_bench

from a2dkit import tutorial
from a2dkit.convert import to_diffusion


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_speculative")


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """A fresh conversion of the smoke source, saved: a drafter for ``--model``."""
    source, tok, _ = tutorial.load_source_model(tutorial.get_scale("smoke"))
    a2d, a2d_tok = to_diffusion(copy.deepcopy(source), copy.deepcopy(tok))[:2]
    path = tmp_path_factory.mktemp("drafter") / "a2d"
    a2d.save_pretrained(path)
    a2d_tok.save_pretrained(path)
    return path


def test_every_mode_and_greedy_rows_are_lossless(bench, fresh, tmp_path):
    out = tmp_path / "rows.json"
    rows = bench.main(["--scale", "smoke", "--model", f"{fresh}:fresh",
                       "--num_prompts", "2", "--max_new_tokens", "8", "--draft_length", "4",
                       "--json", str(out)])  # fmt: skip
    assert json.loads(out.read_text())["rows"] == json.loads(json.dumps(rows))
    modes = [r["mode"] for r in rows]
    assert modes == ["ar generate", "as AR", *bench.MODES]
    for r in rows[2:]:
        assert r["tokens"] > 0 and r["forwards_per_token"] > 0 and r["x_ar"] > 0
        assert r["identical"] == (None if r["mode"].endswith(" T") else 2), r
    drafter_forwards = {r["mode"]: r["drafter_forwards"] for r in rows[2:]}
    assert drafter_forwards["one-pass"] == drafter_forwards["one-pass T"] == 0


def test_an_unknown_mode_is_refused(bench):
    with pytest.raises(SystemExit):
        bench.parse(["--modes", "source,oracle"])


def test_rounds_keep_each_rows_fastest_round(bench, fresh, monkeypatch):
    seen = []  # every round's one-pass tok/s, each later round made slower (the control)
    run_mode = bench.run_mode

    def recording(*args, **kwargs):
        gens, stats = run_mode(*args, **kwargs)
        stats.seconds *= 1 + len(seen)
        seen.append(stats.tokens_per_second)
        return gens, stats

    monkeypatch.setattr(bench, "run_mode", recording)
    rows = bench.main(["--scale", "smoke", "--model", f"{fresh}:fresh", "--modes", "one-pass",
                       "--num_prompts", "2", "--max_new_tokens", "8", "--draft_length", "2",
                       "--rounds", "3"])  # fmt: skip
    assert [r["mode"] for r in rows] == ["ar generate", "as AR", "one-pass"]  # once each
    assert len(seen) == 3 and rows[2]["tokens_per_second"] == max(seen) != seen[-1]
    assert rows[2]["identical"] == 2 and rows[0]["x_ar"] == 1.0
    assert rows[2]["x_ar"] == pytest.approx(max(seen) / rows[0]["tok_per_s"])
    with pytest.raises(SystemExit):
        bench.parse(["--rounds", "0"])
