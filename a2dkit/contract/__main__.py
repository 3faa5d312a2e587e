"""``python -m a2dkit.contract``: the contract's command (``a2dkit.cli.contract``)."""

from a2dkit.cli.contract import main
from a2dkit.cli.errors import run_cli

raise SystemExit(run_cli(main))
