"""bench/bench_verify_cost.py at minimal sizes on the smoke source, converted: one row per draft
shape with the column count of one-pass's forward, and the bars derived from the timings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "bench_verify_cost.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_verify_cost", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_rows_follow_the_one_pass_layout(bench, tmp_path):
    out = tmp_path / "cost.json"
    result = bench.main(["--scale", "smoke", "--shapes", "1x1,1x4,3x1", "--past", "8",
                         "--new_tokens", "16", "--repeats", "3", "--json", str(out)])  # fmt: skip
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    assert result["generate_ms_per_token"] > 0 and result["step_ms"] > 0
    rows = result["rows"]
    assert [(r["draft_length"], r["candidates"]) for r in rows] == [(1, 1), (1, 4), (3, 1)]
    # (k + m)(k + 2) columns: the verified tokens, then a block of k + 1 masks after each
    assert [r["columns"] for r in rows] == [6, 15, 20]
    for r in rows:
        assert r["ms"] > 0 and r["most"] == r["draft_length"] + 1
        assert r["x_step"] == pytest.approx(r["ms"] / result["step_ms"])
        assert r["needed"] == pytest.approx(1.3 * r["ms"] / result["generate_ms_per_token"])


@pytest.mark.parametrize("shapes", ["0x1", "1x0", "1", "ax2", "1x2,3"])
def test_a_bad_shape_is_refused(bench, shapes, capsys):
    with pytest.raises(SystemExit):
        bench.parse(["--shapes", shapes])
    assert shapes.split(",")[-1] in capsys.readouterr().err or "KxM" in capsys.readouterr().err
