"""bench/bench_grpo.py end to end at minimal size: held-out reward before and after, one run."""

from __future__ import annotations

import re
import sys

from conftest import load_bench


def test_bench_grpo_prints_the_held_out_reward_before_and_after(a2d_dir, tmp_path, monkeypatch,
                                                               capsys):  # fmt: skip
    bench = load_bench("bench_grpo")
    monkeypatch.setenv("A2DKIT_RUNS", str(tmp_path))
    argv = ["bench_grpo.py", "--model_dir", str(a2d_dir), "--max_steps", "1", "--num_test", "4",
            "--max_completion_length", "4", "--block_size", "4",
            "--reward", "exact_match,digit_answer"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    assert bench.main() == 0
    lines = capsys.readouterr().out.strip().splitlines()
    pattern = r"held-out reward (\d\.\d{3}) -> (\d\.\d{3}) \(4 prompts, 1 GRPO steps"
    match = re.search(pattern, lines[-1])
    assert match, lines[-1]
    assert all(0.0 <= float(x) <= 2.0 for x in match.groups())  # the sum of two 0/1 rewards
    before = next(line for line in lines if "held-out before" in line)
    each = re.findall(r"(exact_match|digit_answer) (\d\.\d{3})", before)
    assert [name for name, _ in each] == ["exact_match", "digit_answer"], before
    assert f"sum {sum(float(v) for _, v in each):.3f}" in before
