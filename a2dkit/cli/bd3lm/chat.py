"""Multi-turn chat, denoising shown live, with the BD3LM sampler (dLLM examples/a2d/bd3lm/chat.py).

Run: python -m a2dkit.cli.bd3lm.chat \
    --model_name_or_path models/a2d/Qwen3-0.6B/bd3lm/sft/checkpoint-final \
    --chat_template True --steps 128 --max_new_tokens 128 --block_size 32
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

from a2dkit.cli import chat, sample
from a2dkit.cli.errors import run_cli


def cli(argv: list[str] | None = None) -> int:
    """``a2dkit.cli.chat`` with ``--algo bd3lm``; every other flag is forwarded."""
    return sample.with_algo("bd3lm", chat.main, argv)


if __name__ == "__main__":
    raise SystemExit(run_cli(cli))
