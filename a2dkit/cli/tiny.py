"""``python -m a2dkit.cli.tiny``: build (or reuse) the offline tiny AR Qwen3 (``make assets``).

Run: python -m a2dkit.cli.tiny --output_dir runs/tiny-ar-qwen3
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573 (A2D starts from a pretrained AR model).
"""

from __future__ import annotations

import json

from transformers import HfArgumentParser

from a2dkit.cli.errors import run_cli
from a2dkit.tutorial.tiny import TinyARArguments, build_tiny_ar


def main(argv: list[str] | None = None) -> int:
    """Parse :class:`~a2dkit.tutorial.tiny.TinyARArguments`, build (or reuse) the checkpoint,
    print the result."""
    (args,) = HfArgumentParser(TinyARArguments).parse_args_into_dataclasses(args=argv)
    result = build_tiny_ar(args)
    hidden = ("log", "args", "corpus_sha256")
    print(json.dumps({k: v for k, v in result.items() if k not in hidden}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(run_cli(main))
