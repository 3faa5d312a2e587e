"""``python -m a2dkit.eval``: lm-eval's CLI with the A2D models (``a2dkit.cli.eval``)."""

from a2dkit.cli.errors import run_cli
from a2dkit.cli.eval import main

raise SystemExit(run_cli(main))
