"""``python -m a2dkit.cli.eval_check MODEL MODEL_ARGS``: check an lm-eval ``--model_args`` string
of ``a2d_mdlm`` / ``a2d_bd3lm`` without loading anything (the Slurm eval recipe runs it first).

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; lm-evaluation-harness.
"""

from __future__ import annotations

import sys

from a2dkit.cli.errors import UsageError, run_cli
from a2dkit.eval.harness import check_model_args


def main(argv: list[str] | None = None) -> int:
    """``python -m a2dkit.cli.eval_check MODEL MODEL_ARGS``: exit 2 with the reason if invalid."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        raise UsageError(
            f"usage: python -m a2dkit.cli.eval_check a2d_mdlm|a2d_bd3lm MODEL_ARGS; got {args}"
        )
    try:
        check_model_args(*args)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{args[0]} --model_args {args[1]!r}: {err}") from err
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
