"""``python -m a2dkit.cli.checkpoints is-complete DIR``: whether a checkpoint is whole (the Slurm
recipes ask before they resume or requeue).
"""

from __future__ import annotations

import sys

from a2dkit.cli.errors import run_cli
from a2dkit.training.checkpoints import check_complete


def main(argv: list[str] | None = None) -> int:
    """``python -m a2dkit.cli.checkpoints is-complete DIR``: exit 0 if complete, else 1."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] != "is-complete":
        print("usage: python -m a2dkit.cli.checkpoints is-complete DIR", file=sys.stderr)
        return 2
    reason = check_complete(argv[1])
    if reason:
        print(f"{argv[1]}: incomplete: {reason}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
