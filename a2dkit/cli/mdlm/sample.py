"""Sample completions with the MDLM sampler (dLLM examples/a2d/mdlm/sample.py).

Run: python -m a2dkit.cli.mdlm.sample \
    --model_name_or_path models/a2d/Qwen3-0.6B/mdlm/sft/checkpoint-final \
    --prompts "Write a haiku about rain." --steps 128 --max_new_tokens 128 --block_size 32
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

from a2dkit.cli import sample
from a2dkit.cli.errors import run_cli


def cli(argv: list[str] | None = None) -> int:
    """``a2dkit.cli.sample`` with ``--algo mdlm``; every other flag is forwarded."""
    return sample.with_algo("mdlm", sample.main, argv)


if __name__ == "__main__":
    raise SystemExit(run_cli(cli))
