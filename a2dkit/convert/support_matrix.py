"""The support matrix: every causal-LM model type of the installed transformers, through the gate.

Each model type gets a tiny random instance (hidden 64, 2 layers, float64) of its default config;
its verdict is a named static refusal or the contract's (sdpa and eager). Nothing is cached.
Regenerate: python -m a2dkit.cli.support_matrix  (writes a2dkit/convert/support_matrix.json and
book/support_matrix.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from a2dkit.contract.family_gate import first_failure, gate_family
from a2dkit.models import families

ROOT = Path(__file__).resolve().parent
JSON_PATH = ROOT / "support_matrix.json"
BOOK_PATH = ROOT.parents[1] / "book" / "support_matrix.md"
CONVERTS, REFUSED = "converts", "refused"
ATTNS = ("sdpa", "eager")
NO_SDPA = "no sdpa path"
NO_TINY = "no generic tiny instance"
CRASHED = "crashed or timed out"


def evaluate(model_type: str) -> dict:
    """One row: model_type, verdict, reason, detail, checks ``{attn: {check name: value}}``."""
    torch.set_num_threads(1)
    row = {"model_type": model_type, "verdict": REFUSED, "reason": None, "detail": ""}
    row.update(checks={}, failed=[])
    try:
        config_cls, lm_cls = families.source_classes(model_type)
        config = config_cls()
    except Exception as err:  # noqa: BLE001  (a model type transformers itself cannot build)
        row.update(reason=families.NO_CAUSAL_LM, detail=f"{type(err).__name__}: {err}"[:200])
        return row
    static = families.static_refusals(config)
    if static:
        row.update(reason=static[0][0], detail=static[0][1])
        return row
    attns = ATTNS if getattr(lm_cls, "_supports_sdpa", True) else ("eager",)
    try:
        results = gate_family(config, attns)
    except Exception as err:  # noqa: BLE001  (recorded as the verdict, never hidden)
        row.update(reason=NO_TINY, detail=f"{type(err).__name__}: {err}"[:300])
        return row
    row["checks"] = {a: {r.name: r.value for r in rs} for a, rs in results.items()}
    row["failed"] = [f"{a}: {r.name}" for a, rs in results.items() for r in rs if not r.passed]
    failure = first_failure(results)
    if failure is not None:
        row.update(reason=families.CONTRACT, detail=failure[:300])
    else:
        row["verdict"] = CONVERTS
        if "sdpa" not in attns:
            row["detail"] = f"{NO_SDPA}: eager only"
        if families.sliding_window(config) is not None:
            row["detail"] = (row["detail"] + "; " if row["detail"] else "") + "sliding window kept"
    return row


def _run_worker(model_types: list[str], timeout: float) -> dict[str, dict]:
    """Evaluate ``model_types`` in one fresh interpreter; rows it printed before dying are kept."""
    with tempfile.TemporaryFile("w+") as out:
        cmd = [sys.executable, "-m", "a2dkit.cli.support_matrix", "--worker", *model_types]
        try:
            subprocess.run(cmd, stdout=out, stderr=subprocess.DEVNULL, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:
            pass
        out.seek(0)
        rows = [json.loads(line) for line in out if line.startswith("{")]
    return {row["model_type"]: row for row in rows}


def _crashed(model_type: str, seconds: float) -> dict:
    detail = f"the tiny instance crashed or ran past {seconds:.0f} s"
    return {"model_type": model_type, "verdict": REFUSED, "reason": CRASHED, "detail": detail,
            "checks": {}, "failed": []}  # fmt: skip


def build(
    model_types: list[str] | None = None, processes: int = 2, timeout: float = 60
) -> list[dict]:
    """Rows for ``model_types`` (default: all), in ``processes`` fresh interpreters at a time.

    A model type whose evaluation crashes or hangs is re-run alone, then recorded as refused.
    """
    types = model_types or families.causal_lm_model_types()
    chunks = [types[i::processes] for i in range(processes)]
    with ThreadPoolExecutor(processes) as pool:
        found = {}
        for rows in pool.map(lambda c: _run_worker(c, timeout * len(c) / 4 + 60), chunks):
            found.update(rows)
    missing = [t for t in types if t not in found]
    with ThreadPoolExecutor(processes) as pool:
        for t, rows in zip(
            missing, pool.map(lambda t: _run_worker([t], timeout), missing), strict=True
        ):
            found[t] = rows.get(t) or _crashed(t, timeout)
    return [found[t] for t in types]


def counts(rows: list[dict]) -> dict[str, int]:
    """``{"converts": n, "<reason>": n, ...}``."""
    out: dict[str, int] = {}
    for row in rows:
        key = CONVERTS if row["verdict"] == CONVERTS else row["reason"]
        out[key] = out.get(key, 0) + 1
    return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))


def to_markdown(rows: list[dict]) -> str:
    """The book page: counts, then one line per model type with each check's number."""
    names = []
    for row in rows:
        for checks in row["checks"].values():
            names += [n for n in checks if n not in names]
    lines = [
        "# Support matrix",
        "",
        "Every causal-LM model type of the installed transformers, converted as a tiny random",
        "model (hidden 64, 2 layers, float64) and judged by the attention contract on `sdpa`",
        "and `eager`: support is decided by the contract, not by a list. Regenerate with",
        "`python -m a2dkit.cli.support_matrix`; `tests/convert/test_support_matrix.py` fails if a",
        "model type that converted before stops converting, or converts while a check fails.",
        "",
        "| verdict | model types |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in counts(rows).items()],
        "",
        "Numbers are the max abs differences (sdpa / eager); *future affects past* is the smallest",
        "change over layers (must be large), every other check must be 0 to rounding.",
        "",
        "| model type | verdict | reason | " + " | ".join(names) + " |",
        "|---|---|---|" + "---|" * len(names),
    ]
    for row in rows:
        cells = []
        for name in names:
            vals = [row["checks"][a].get(name) for a in ATTNS if a in row["checks"]]
            cells.append(" / ".join(f"{v:.1e}" for v in vals if v is not None))
        reason = row["reason"] or row["detail"]
        lines.append(
            f"| `{row['model_type']}` | {row['verdict']} | {reason} | " + " | ".join(cells) + " |"
        )
    refused = [r for r in rows if r["verdict"] == REFUSED]
    lines += ["", "## Why each refused model type is refused", ""]
    lines += [f"- `{r['model_type']}` ({r['reason']}): {r['detail']}" for r in refused]
    return "\n".join(lines) + "\n"
