"""Verifiable rewards for diffu-GRPO: gsm8k, math (boxed), countdown, 4x4 sudoku, code, and d1's
format rewards. Each is a TRL reward function ``f(completions, **columns) -> list[float]``.

A completion that cannot be scored (bad format, a crash while checking) gets 0 with the reason
logged, never an exception: one odd sample must not stop a run. References: d1 arXiv 2504.12216
(its ``reward_func.py``: correctness 2.0, integer 0.5, format 0.5, XML count 0.125 per tag).
"""

from __future__ import annotations

import ast
import functools
import logging
import operator
import re
from collections import Counter
from collections.abc import Callable

from a2dkit.data.synthetic import STOP_STRINGS
from a2dkit.eval.sandbox import run_python

__all__ = [
    "REWARDS",
    "get_rewards",
    "guarded",
    "completion_text",
    "extract_answer",
    "closed_answer",
    "last_boxed",
    "evaluate_equation",
]

logger = logging.getLogger("a2dkit.grpo.rewards")
RewardFunc = Callable[..., list[float]]


def completion_text(completion) -> str:
    """A completion as text: TRL passes a string or a list of chat messages."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion if isinstance(m, dict))


def extract_answer(text: str) -> str:
    """The text inside the last ``<answer>...</answer>`` (or after an unclosed ``<answer>``)."""
    if "<answer>" not in text:
        return ""
    return text.split("<answer>")[-1].split("</answer>")[0].strip()


_CLOSED = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)


def closed_answer(text: str) -> str:
    """The text of the last *closed* ``<answer>...</answer>`` pair, else "" (d1's sudoku and
    TinyZero's countdown extraction: a stray ``<answer>`` written after the answer is ignored)."""
    found = _CLOSED.findall(text)
    return found[-1].strip() if found else ""


def _per_completion(name: str, score: Callable[..., float]) -> RewardFunc:
    """Lift ``score(text, *row_values)`` to a batched reward; a failure scores 0 and is logged."""

    def reward(completions, **columns) -> list[float]:
        out = []
        for i, completion in enumerate(completions):
            try:
                out.append(float(score(completion_text(completion), columns, i)))
            except Exception as exc:  # noqa: BLE001 - a bad sample must not kill the run
                logger.warning("reward %s: completion %d scored 0 (%s: %s)", name, i,
                               type(exc).__name__, exc)  # fmt: skip
                out.append(0.0)
        return out

    reward.__name__ = name
    return reward


def guarded(func: RewardFunc) -> RewardFunc:
    """Wrap a user reward: raising -> zeros, reason logged; wrong length -> ValueError."""

    @functools.wraps(func)
    def reward(completions, **kwargs) -> list[float]:
        try:
            values = list(func(completions=completions, **kwargs))
        except Exception as exc:  # noqa: BLE001
            name = getattr(func, "__name__", repr(func))
            logger.warning("reward %s raised %s: %s; the batch scores 0", name,
                           type(exc).__name__, exc)  # fmt: skip
            return [0.0] * len(completions)
        if len(values) != len(completions):
            raise ValueError(
                f"reward {getattr(func, '__name__', func)!r} returned {len(values)} values for "
                f"{len(completions)} completions; return exactly one float per completion"
            )
        return values

    return reward


# ---- gsm8k and format (d1) ----
def _number(text: str) -> str:
    return text.replace(",", "").replace("$", "").strip().rstrip(".")


def _gsm8k(text, cols, i):
    return 2.0 if _number(extract_answer(text)) == _number(str(cols["answer"][i])) else 0.0


def _integer(text, cols, i):
    return 0.5 if re.fullmatch(r"-?\d+", _number(extract_answer(text))) else 0.0


_STRICT = re.compile(r"^<reasoning>\n.*?\n</reasoning>\n<answer>\n.*?\n</answer>\n?$", re.DOTALL)
_SOFT = re.compile(r"<reasoning>.*?</reasoning>\s*<answer>.*?</answer>", re.DOTALL)


def _strict_format(text, cols, i):
    return 0.5 if _STRICT.match(text) else 0.0


def _soft_format(text, cols, i):
    return 0.5 if _SOFT.search(text) else 0.0


def _xml_count(text, cols, i):
    tags = ("<reasoning>\n", "\n</reasoning>\n", "\n<answer>\n", "\n</answer>")
    return 0.125 * sum(text.count(t) == 1 for t in tags)


# ---- math: last \boxed{...} ----
def last_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (nested braces respected), or None."""
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1 : j]
    return None


def _normalize_math(s: str) -> str:
    s = s.replace("\\left", "").replace("\\right", "").replace("dfrac", "frac")
    s = s.replace("tfrac", "frac").replace("\\!", "").replace("$", "")
    return re.sub(r"\s+", "", s).rstrip(".")


def _math(text, cols, i):
    pred = last_boxed(text) or extract_answer(text)
    gold = last_boxed(str(cols["answer"][i])) or str(cols["answer"][i])
    return 2.0 if pred and _normalize_math(pred) == _normalize_math(gold) else 0.0


# ---- countdown ----
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
        ast.Div: operator.truediv}  # fmt: skip


def evaluate_equation(expr: str) -> tuple[float, list[int]]:
    """Value of an arithmetic expression of integers and + - * / (no names, calls or powers) and
    the integers it uses; anything else raises ValueError."""
    node = ast.parse(expr.split("=")[0], mode="eval").body
    used: list[int] = []

    def ev(n) -> float:
        if isinstance(n, ast.Constant) and type(n.value) is int:
            used.append(n.value)
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _OPS:
            return _OPS[type(n.op)](ev(n.left), ev(n.right))
        raise ValueError(f"not allowed in a countdown equation: {ast.dump(n)[:60]}")

    return ev(node), used


def _countdown(text, cols, i):
    answer = closed_answer(text)
    if not answer:
        return 0.0
    value, used = evaluate_equation(answer)
    if Counter(used) != Counter(int(n) for n in cols["nums"][i]):
        return 0.1  # well-formed, but not each given number exactly once (d1: format credit)
    return 1.0 if abs(value - float(cols["target"][i])) < 1e-5 else 0.1


# ---- 4x4 sudoku: fraction of the empty cells filled correctly (d1) ----
def _sudoku(text, cols, i):
    digits = re.sub(r"\D", "", closed_answer(text))
    puzzle, solution = str(cols["puzzle"][i]), str(cols["solution"][i])
    digits = digits[: len(solution)].ljust(len(solution), "0")  # d1: truncate or pad with zeros
    empty = [k for k, c in enumerate(puzzle) if c == "0"]
    return sum(digits[k] == solution[k] for k in empty) / max(len(empty), 1)


# ---- code: the completion's last ```python block + the row's tests, in the sandbox ----
_CODE = re.compile(r"```(?:python)?\n(.*?)```", re.DOTALL)


def _code(text, cols, i, timeout: float = 5.0):
    blocks = _CODE.findall(text)
    if not blocks:
        return 0.0
    tests = "from solution import *\n" + str(cols["test"][i])  # KodCode: `from solution import f`
    runner = "\nfor _n, _f in list(globals().items()):\n    if _n.startswith('test_'): _f()\n"
    result = run_python(tests + runner, timeout=timeout, files={"solution.py": blocks[-1]})
    if not result.ok:
        logger.info("reward code: completion %d failed its tests (%s)", i, result.reason)
    return 1.0 if result.ok else 0.0


# ---- a2dkit's synthetic tasks: exact match, and the one-digit answer format ----
def _reply(text: str) -> str:
    for stop in STOP_STRINGS:
        text = text.split(stop)[0]
    return text.strip().lower()


def _exact(text, cols, i):
    return 1.0 if _reply(text) == str(cols["answer"][i]).strip().lower() else 0.0


def _digit(text, cols, i):
    return 1.0 if re.fullmatch(r"\d", _reply(text)) else 0.0


REWARDS: dict[str, RewardFunc] = {
    name: _per_completion(name, fn)
    for name, fn in {
        "gsm8k_correctness": _gsm8k, "integer": _integer, "strict_format": _strict_format,
        "soft_format": _soft_format, "xml_count": _xml_count, "math_correctness": _math,
        "countdown": _countdown, "sudoku": _sudoku, "code": _code, "exact_match": _exact,
        "digit_answer": _digit,
    }.items()
}  # fmt: skip


def get_rewards(names: list[str] | tuple[str, ...]) -> list[RewardFunc]:
    """The reward functions called ``names``; an unknown name raises, listing the valid ones."""
    unknown = [n for n in names if n not in REWARDS]
    if unknown:
        raise ValueError(f"unknown reward(s) {unknown}; valid rewards: {sorted(REWARDS)}")
    return [REWARDS[n] for n in names]
