"""BD3LM SFT on chat data (prompt tokens never noised).

Run: accelerate launch --config_file a2dkit/accelerate_configs/ddp.yaml -m a2dkit.cli.bd3lm.sft \
    --model_name_or_path models/a2d/Qwen3-0.6B \
    --dataset_args tatsu-lab/alpaca --max_length 512 --block_size 32 \
    --output_dir models/a2d/Qwen3-0.6B/bd3lm/sft
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from a2dkit.cli.train import main, run


def cli(argv: list[str] | None = None) -> int:
    """Parse the flags (HfArgumentParser) and train; returns the exit code."""
    return main("bd3lm", "sft", argv)


if __name__ == "__main__":
    run("bd3lm", "sft")
