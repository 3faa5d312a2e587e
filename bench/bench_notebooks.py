"""Bench: execute every tutorial notebook at ``smoke`` (as ``pytest --nbval-lax`` does in CI) and
print each one's wall time and the total against the CI budget of 20 minutes on 2 CPU cores.

Run: OMP_NUM_THREADS=1 python bench/bench_notebooks.py [notebooks/03_*.ipynb ...] [--budget 20]
Exit status 1 when a notebook fails; the budget is reported, not enforced (times vary by machine).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
ENV = {"A2DKIT_SCALE": "smoke", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
       "TRANSFORMERS_OFFLINE": "1"}


def run_notebook(path: Path, timeout: int = 900) -> tuple[float, str | None]:
    """Execute ``path`` in a fresh kernel (cwd: its folder); return (seconds, error or None)."""
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    try:
        client.execute()
    except CellExecutionError as err:
        last_line = str(err).strip().splitlines()[-1]
        return time.perf_counter() - start, re.sub(r"\x1b\[[0-9;]*m", "", last_line)  # no ANSI
    return time.perf_counter() - start, None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    parser.add_argument("--budget", type=float, default=20.0, help="minutes for all notebooks")
    args = parser.parse_args(argv)
    os.environ.update(ENV)  # the kernels inherit this environment
    paths = args.notebooks or sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if not paths:
        raise SystemExit("no notebooks found")
    print(f"executing {len(paths)} notebooks at A2DKIT_SCALE=smoke, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}, {os.cpu_count()} CPUs")
    total, failed = 0.0, []
    for path in paths:
        seconds, error = run_notebook(path)
        total += seconds
        status = "ok" if error is None else f"FAILED: {error}"
        print(f"  {path.name:45s} {seconds:7.1f} s  {status}", flush=True)
        if error is not None:
            failed.append(path.name)
    budget = args.budget * 60
    print(f"total {total:7.1f} s = {total / 60:.1f} min; budget {args.budget:.0f} min; "
          f"ratio {total / budget:.2f} ({'within' if total <= budget else 'OVER'} budget)")
    if failed:
        print(f"failed: {failed}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
