"""``python -m a2dkit.cli.support_matrix``: regenerate the support matrix (JSON and book page).

Each model type runs in a fresh interpreter (``--worker``), so one that crashes or hangs is
recorded as refused instead of ending the run.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import transformers

from a2dkit.cli.errors import run_cli
from a2dkit.convert.support_matrix import BOOK_PATH, JSON_PATH, build, counts, evaluate, to_markdown


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Regenerate the A2D support matrix.")
    parser.add_argument("--model_types", nargs="*", default=None)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--json", default=str(JSON_PATH))
    parser.add_argument("--markdown", default=str(BOOK_PATH))
    parser.add_argument("--worker", nargs="*", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:  # one JSON row per line, flushed as each model type finishes
        for model_type in args.worker:
            print(json.dumps(evaluate(model_type)), flush=True)
        return 0
    start = time.perf_counter()
    rows = build(args.model_types, args.processes)
    payload = {"transformers": transformers.__version__, "torch": torch.__version__, "rows": rows}
    Path(args.json).write_text(json.dumps(payload, indent=1) + "\n")
    Path(args.markdown).write_text(to_markdown(rows))
    print(json.dumps(counts(rows)), f"({time.perf_counter() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
