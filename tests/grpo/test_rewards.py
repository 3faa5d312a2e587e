"""Rewards, the code sandbox, the puzzle generators and the --dataset loaders of a2dkit.grpo."""

import itertools
import logging
import time

import pytest

from a2dkit.data import puzzles
from a2dkit.eval.sandbox import run_python
from a2dkit.grpo import rewards, tasks

R = rewards.REWARDS


def _msg(text: str) -> list[list[dict]]:
    return [[{"role": "assistant", "content": text}]]


def test_gsm8k_rewards_follow_d1():
    good = "<reasoning>\n6 * 7\n</reasoning>\n<answer>\n42\n</answer>\n"
    assert R["gsm8k_correctness"](_msg(good), answer=["42"]) == [2.0]
    assert R["gsm8k_correctness"](_msg(good), answer=["41"]) == [0.0]
    assert R["integer"](_msg(good)) == [0.5]
    assert R["strict_format"](_msg(good)) == [0.5]
    assert R["strict_format"](_msg("<answer>42</answer>")) == [0.0]
    assert R["soft_format"](_msg("<reasoning>x</reasoning> <answer>1</answer>")) == [0.5]
    assert R["xml_count"](_msg(good)) == [0.5]


def test_math_reward_reads_the_last_boxed_answer():
    assert rewards.last_boxed(r"so \boxed{\frac{1}{2}} and \boxed{x^{2}}") == "x^{2}"
    text = r"<answer>\boxed{\dfrac{1}{2}}</answer>"
    assert R["math_correctness"](_msg(text), answer=[r"\frac{1}{2}"]) == [2.0]
    assert R["math_correctness"](_msg(text), answer=[r"\frac{1}{3}"]) == [0.0]


def test_countdown_reward_checks_numbers_and_value():
    cols = dict(nums=[[3, 5, 7]], target=[22])
    assert R["countdown"](_msg("<answer>3 * 5 + 7</answer>"), **cols) == [1.0]
    assert R["countdown"](_msg("<answer>3 * 5 + 5</answer>"), **cols) == [0.1]  # wrong numbers
    assert R["countdown"](_msg("<answer>3 + 5 + 7</answer>"), **cols) == [0.1]  # wrong value
    assert R["countdown"](_msg("no answer"), **cols) == [0.0]


def test_countdown_refuses_anything_but_arithmetic(caplog):
    with pytest.raises(ValueError, match="not allowed"):
        rewards.evaluate_equation("__import__('os').system('true')")
    with caplog.at_level(logging.WARNING, "a2dkit.grpo.rewards"):
        out = R["countdown"](_msg("<answer>2 ** 99999</answer>"), nums=[[2]], target=[4])
    assert out == [0.0] and "scored 0" in caplog.text  # zero reward, reason logged


def test_sudoku_reward_is_the_fraction_of_blanks_filled_right():
    p = puzzles.sudoku_puzzles(1, "test", seed=3)[0]
    sol = p["solution"]
    assert R["sudoku"](_msg(f"<answer>{sol}</answer>"), **{k: [v] for k, v in p.items()}) == [1.0]
    blank = p["puzzle"].index("0")
    wrong = sol[:blank] + str(int(sol[blank]) % 4 + 1) + sol[blank + 1 :]
    got = R["sudoku"](_msg(f"<answer>{wrong}</answer>"), **{k: [v] for k, v in p.items()})[0]
    assert got == pytest.approx(1 - 1 / p["puzzle"].count("0"))


def test_puzzle_rewards_read_the_last_closed_answer_like_d1():
    p = puzzles.sudoku_puzzles(1, "test", seed=3)[0]
    cols = {k: [v] for k, v in p.items()}
    sol = p["solution"]
    # seen on the real model after SFT: the grid, then a stray unclosed tag before the canvas ends
    assert R["sudoku"](_msg(f"<answer>\n{sol}\n</answer>\n\n<answer>"), **cols) == [1.0]
    assert R["sudoku"](_msg(f"<answer>\n{sol}"), **cols) == [0.0]  # never closed: no answer
    assert R["sudoku"](_msg(f"<answer>0000</answer><answer>{sol}</answer>"), **cols) == [1.0]
    # d1 pads a short grid with zeros (a blank is never right) and truncates a long one
    blanks = [k for k, c in enumerate(p["puzzle"]) if c == "0"]
    short = sol[: blanks[-1]]
    want = sum(short[k] == sol[k] for k in blanks if k < len(short)) / len(blanks)
    assert R["sudoku"](_msg(f"<answer>{short}</answer>"), **cols) == [pytest.approx(want)]
    assert want < 1.0
    assert R["sudoku"](_msg(f"<answer>{sol}1234</answer>"), **cols) == [1.0]
    nums = dict(nums=[[3, 5, 7]], target=[22])
    assert R["countdown"](_msg("<answer>3 * 5 + 7</answer>\n<answer>"), **nums) == [1.0]
    assert R["countdown"](_msg("<answer>3 * 5 + 7"), **nums) == [0.0]
    assert rewards.extract_answer("<answer>42") == "42"  # gsm8k keeps d1's split-based reading


def test_code_reward_runs_the_tests_in_a_sandbox():
    test = "def test_add():\n    assert add(2, 3) == 5\n"
    ok = "```python\ndef add(a, b):\n    return a + b\n```"
    bad = "```python\ndef add(a, b):\n    return a - b\n```"
    assert R["code"](_msg(ok) + _msg(bad) + _msg("no code"), test=[test] * 3) == [1.0, 0.0, 0.0]


def test_sandbox_blocks_network_subprocesses_and_hangs():
    assert run_python("print(6 * 7)").stdout == "42\n"
    assert "socket" in run_python("import socket; socket.socket()").reason
    assert "subprocess" in run_python("import subprocess; subprocess.run(['true'])").reason
    assert "os.system" in run_python("import os; os.system('true')").reason
    assert run_python("import os; print(sorted(os.environ))").stdout.count("HOME") == 0
    start = time.monotonic()
    assert run_python("while True: pass", timeout=1).reason.startswith("timeout")
    assert time.monotonic() - start < 10


def test_guarded_reward_zeroes_a_raising_function_and_refuses_a_wrong_length(caplog):
    def boom(completions, **kw):
        raise KeyError("answer")

    with caplog.at_level(logging.WARNING, "a2dkit.grpo.rewards"):
        assert rewards.guarded(boom)(completions=["a", "b"]) == [0.0, 0.0]
    assert "boom raised KeyError" in caplog.text
    with pytest.raises(ValueError, match="returned 1 values for 2 completions"):
        rewards.guarded(lambda completions, **kw: [1.0])(completions=["a", "b"])


def test_unknown_reward_and_dataset_names_are_refused():
    with pytest.raises(ValueError, match="valid rewards"):
        rewards.get_rewards(["countdown", "nope"])
    with pytest.raises(ValueError, match="valid datasets"):
        tasks.load_task("nope")


def _solvable(nums: list[int], target: int) -> bool:
    """Brute force over orders and operators, combined left to right (as generated)."""
    ops = [lambda a, b: a + b, lambda a, b: a - b, lambda a, b: a * b]
    for order in itertools.permutations(nums):
        for chosen in itertools.product(ops, repeat=len(nums) - 1):
            value = order[0]
            for op, n in zip(chosen, order[1:], strict=True):
                value = op(value, n)
            if value == target:
                return True
    return False


def test_countdown_puzzles_are_solvable_and_splits_disjoint():
    train = puzzles.countdown_puzzles(60, "train", seed=1)
    test = puzzles.countdown_puzzles(20, "test", seed=1)
    key = lambda p: (tuple(sorted(p["nums"])), p["target"])  # noqa: E731
    assert not {key(p) for p in train} & {key(p) for p in test}
    assert all(_solvable(p["nums"], p["target"]) for p in train + test)


def test_sudoku_puzzles_have_one_solution_and_disjoint_splits():
    train = puzzles.sudoku_puzzles(40, "train", seed=1)
    test = puzzles.sudoku_puzzles(10, "test", seed=1)
    assert not {p["puzzle"] for p in train} & {p["puzzle"] for p in test}
    for p in train + test:
        assert puzzles.solve_sudoku(p["puzzle"]) == [p["solution"]]
        assert all(a in ("0", b) for a, b in zip(p["puzzle"], p["solution"], strict=True))


def test_offline_tasks_give_chat_prompts_and_reward_columns():
    for name in ("a2dkit/countdown", "sudoku", "a2dkit/synthetic"):
        data = tasks.load_task(name, "test", n=4)
        assert len(data) == 4 and data[0]["prompt"][-1]["role"] == "user"
        rows = {c: data[c] for c in data.column_names if c != "prompt"}
        for reward in rewards.get_rewards(tasks.TASKS[name].rewards):
            assert len(reward(_msg("x") * 4, **rows)) == 4


def test_online_row_mappers_match_the_hub_schemas():
    row = tasks.gsm8k_row({"question": "1+1?", "answer": "1 + 1 = 2\n#### 2"})
    assert row["answer"] == "2" and row["prompt"][-1]["content"] == "1+1?"
    assert tasks.countdown_row({"nums": [1, 2], "target": 3})["target"] == 3
    assert tasks.math_row({"problem": "p", "answer": "4"})["answer"] == "4"
    assert tasks.code_row({"question": "q", "test": "def test_x(): pass"})["test"]
