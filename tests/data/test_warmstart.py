"""SFT rows in d1's answer format for the kit's puzzles (a2dkit.data.warmstart) and their
``--dataset_args`` names: the gold answers earn every reward they should, wrong ones do not, and
the SFT test split is the GRPO held-out split. References: d1 arXiv 2504.12216 (§3.3).
"""

from __future__ import annotations

from collections import Counter

import pytest

from a2dkit import tutorial
from a2dkit.data import load_dataset_args, puzzles, warmstart
from a2dkit.grpo import rewards, tasks

R = rewards.REWARDS
FORMAT = ("strict_format", "soft_format", "xml_count")


def _score(name: str, texts: list[str], rows) -> list[float]:
    columns = {c: rows[c] for c in rows.column_names if c != "prompt"}
    return R[name]([[{"role": "assistant", "content": t}] for t in texts], **columns)


@pytest.mark.parametrize("task, reward", [("sudoku", "sudoku"), ("a2dkit/countdown", "countdown")])
def test_gold_answers_earn_the_full_task_and_format_rewards(task, reward):
    rows = tasks.load_task(task, "train", 40, seed=3)
    gold = [warmstart.gold_completion(task, r) for r in rows]
    assert _score(reward, gold, rows) == [1.0] * 40
    for name in FORMAT:
        assert _score(name, gold, rows) == [0.5] * 40, name
    # control: the same answers given to other puzzles score less (the reward reads the row)
    shifted = gold[1:] + gold[:1]
    assert sum(_score(reward, shifted, rows)) < 0.5 * 40


def test_a_wrong_sudoku_digit_or_countdown_step_costs_reward():
    row = tasks.load_task("sudoku", "test", 1, seed=0)
    sol, puzzle = row[0]["solution"], row[0]["puzzle"]
    k = puzzle.index("0")  # a blank: its digit is the model's to get right
    wrong = sol[:k] + str(int(sol[k]) % 4 + 1) + sol[k + 1 :]
    text = warmstart.d1_completion("x", wrong)
    assert _score("sudoku", [text], row) == [1 - 1 / puzzle.count("0")]
    row = tasks.load_task("a2dkit/countdown", "test", 1, seed=0)
    eq = row[0]["equation"].replace("+", "-", 1) if "+" in row[0]["equation"] else "1 + 1"
    assert _score("countdown", [warmstart.d1_completion("x", eq)], row)[0] < 1.0


def test_countdown_equations_solve_their_puzzles_with_each_number_once():
    for p in puzzles.countdown_puzzles(200, "train", seed=5):
        value, used = rewards.evaluate_equation(p["equation"])
        assert value == p["target"] and Counter(used) == Counter(p["nums"]), p
    steps = warmstart._countdown_steps("(16 - 3) * 2")
    assert steps == "16 - 3 = 13, 13 * 2 = 26"


def test_the_sft_test_split_is_the_grpo_held_out_split_and_disjoint_from_train():
    data = load_dataset_args("a2dkit/sudoku[train:60,test:8,seed:2]")
    assert (len(data["train"]), len(data["test"])) == (60, 8)
    prompts = {s: [str(m[:-1]) for m in data[s]["messages"]] for s in ("train", "test")}
    assert not set(prompts["train"]) & set(prompts["test"])
    held_out = tasks.load_task("sudoku", "test", 8, seed=2)
    assert prompts["test"] == [str(p) for p in held_out["prompt"]]
    last = data["train"][0]["messages"][-1]
    assert last["role"] == "assistant" and "<answer>" in last["content"]


@pytest.mark.parametrize(
    "spec, message",
    [("a2dkit/sudoku[tasks:x]", "tasks"), ("a2dkit/countdown[seed:-1]", "seed:-1"),
     ("a2dkit/sudoku[train:0]", "train must be a positive integer")],
)  # fmt: skip
def test_bad_puzzle_dataset_args_are_named(spec, message):
    with pytest.raises(ValueError, match=message):
        load_dataset_args(spec)


def test_unknown_task_or_split_is_refused():
    with pytest.raises(ValueError, match=r"gsm8k.*valid: \('a2dkit/countdown', 'sudoku'\)"):
        warmstart.sft_rows("gsm8k", "train", 4)
    with pytest.raises(ValueError, match="split='dev'"):
        warmstart.sft_rows("sudoku", "dev", 4)


def test_a_tagged_run_never_replaces_the_scales_own():
    cfg = tutorial.get_scale("smoke")
    own = tutorial.run_dir(cfg, "mdlm", sft=True)
    short = tutorial.run_dir(cfg, "mdlm", sft=True, max_steps=9)
    tagged = tutorial.run_dir(cfg, "mdlm", sft=True, max_steps=9, tag="a2dkit-sudoku")
    names = ("mdlm-sft", "mdlm-sft-s9", "mdlm-sft-s9-a2dkit-sudoku")
    assert (own.name, short.name, tagged.name) == names
    assert len({own, short, tagged}) == 3 and tagged.parent == own.parent
    with pytest.raises(ValueError, match="tag='a/b'"):
        tutorial.load_diffusion_model(cfg, "mdlm", sft=True, tag="a/b")
