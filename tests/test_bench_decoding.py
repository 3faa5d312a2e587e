"""bench/bench_decoding.py end to end at minimal sizes on tiny random checkpoints (no training)."""

from __future__ import annotations

import copy

import pytest
from conftest import load_bench, make_tiny_ar

from a2dkit.convert import to_diffusion


@pytest.fixture(scope="module")
def bench():
    return load_bench("bench_decoding")


def test_bench_decoding_runs_every_row_with_consistent_ratios(bench, small_tokenizer, tmp_path):
    tok = copy.deepcopy(small_tokenizer)
    ar = make_tiny_ar("qwen3", tok)
    ar.save_pretrained(tmp_path / "ar")
    tok.save_pretrained(tmp_path / "ar")
    a2d, a2d_tok = to_diffusion(copy.deepcopy(ar), tok)[:2]
    a2d.save_pretrained(tmp_path / "a2d")
    a2d_tok.save_pretrained(tmp_path / "a2d")
    paths = ["--ar_model", tmp_path / "ar", "--mdlm_model", tmp_path / "a2d",
             "--bd3lm_model", tmp_path / "a2d"]  # fmt: skip
    argv = [*map(str, paths), "--num_prompts", "2", "--max_new_tokens", "8", "--block_size", "4",
            "--dataset_args", "a2dkit/synthetic[train:1,test:2]"]  # fmt: skip
    rows = {r["name"]: r for r in bench.run(bench.parse(argv))}
    names = [name for name, *_ in bench.ROWS + bench.SPEC_ROWS]
    assert list(rows) == ["ar greedy", *names]
    exact = rows[bench.EXACT]
    assert exact["x_exact"] == 1.0 and exact["agree"] == 1.0
    assert exact["nfe_per_token"] == 1.0  # steps = max_new_tokens: one token per forward
    assert rows["ar greedy"]["nfe_per_token"] == 1.0 and rows["ar greedy"]["x_ar"] == 1.0
    for r in rows.values():
        assert r["cpu_tps"] > 0 and 0 <= r["accuracy"] <= 1 and 0 <= r["agree"] <= 1
        assert len(r["gens"]) == 2
    assert rows["bd3lm card"]["gens"] == rows["bd3lm reuse"]["gens"]  # same tokens, slower
    assert "| mdlm dual +thr |" in bench.table(list(rows.values()))
    lines = bench.report(list(rows.values()))
    assert len(lines) == 5 and all(("met" in x) or ("MISSED" in x) for x in lines)
    spec = bench.spec_report(list(rows.values()))  # lossless: each verifier's greedy output
    assert len(spec) == len(bench.SPEC_ROWS) - 1 and all("on 2/2 prompts" in x for x in spec)
    fixed_over_thr = exact["nfe_per_token"] / rows["mdlm none +thr"]["nfe_per_token"]
    assert lines[0].startswith("MDLM threshold") and f"{fixed_over_thr:.2f}x" in lines[0]
