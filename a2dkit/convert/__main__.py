"""``python -m a2dkit.convert``: the converter's command (``a2dkit.cli.convert``)."""

from a2dkit.cli.convert import main
from a2dkit.cli.errors import run_cli

raise SystemExit(run_cli(main))
