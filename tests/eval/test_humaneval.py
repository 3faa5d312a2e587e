"""eval.humaneval: the 164 problems offline, truncation as in Codex, completions judged in the
sandbox (the published canonical solutions pass, wrong ones fail)."""

import pytest

from a2dkit.eval import humaneval


@pytest.fixture(scope="module")
def problems():
    return humaneval.load_problems()


def test_the_164_problems_load_offline_in_order(problems):
    assert len(problems) == 164
    assert [p.task_id for p in problems[:2]] == ["HumanEval/0", "HumanEval/1"]
    assert problems[0].entry_point == "has_close_elements" and "def check" in problems[0].test
    assert len(humaneval.load_problems(limit=3)) == 3


def test_canonical_solutions_pass_and_wrong_ones_fail(problems):
    sample = problems[:6]
    assert humaneval.pass_at_1(sample, [p.canonical_solution for p in sample]) == 1.0
    wrong = ["    return None\n"] * len(sample)  # negative control: the tests can fail
    assert humaneval.pass_at_1(sample, wrong) == 0.0


def test_a_completion_is_cut_where_it_leaves_the_function(problems):
    body = problems[0].canonical_solution
    rambling = body + "\n\ndef unrelated():\n    raise SystemExit(1)\n\nprint(unrelated())\n"
    assert humaneval.truncate(rambling).rstrip() == body.rstrip()
    assert humaneval.check(problems[0], rambling)  # the rambling after the function is dropped
    assert humaneval.truncate("    x = 1\n    if x:\n        return x\n") == (
        "    x = 1\n    if x:\n        return x\n"
    )  # an indented `if` stays


def test_hangs_and_network_access_fail_inside_the_sandbox(problems):
    p = problems[0]
    assert not humaneval.check(p, "    while True:\n        pass\n", timeout=1.0)
    net = "    import socket\n    socket.create_connection(('127.0.0.1', 9))\n    return True\n"
    assert not humaneval.check(p, net)


def test_bad_input_is_refused(problems):
    with pytest.raises(ValueError, match="1 problems but 2 completions"):
        humaneval.pass_at_1(problems[:1], ["a", "b"])
    with pytest.raises(ValueError, match="limit=0"):
        humaneval.load_problems(limit=0)
