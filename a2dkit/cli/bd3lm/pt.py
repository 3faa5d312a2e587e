"""BD3LM continual pretraining on packed text.

Run: accelerate launch --config_file a2dkit/accelerate_configs/ddp.yaml -m a2dkit.cli.bd3lm.pt \
    --model_name_or_path models/a2d/Qwen3-0.6B \
    --dataset_args Trelis/tiny-shakespeare --text_field Text --insert_eos False --max_length 128 \
    --block_size 32 \
    --output_dir models/a2d/Qwen3-0.6B/bd3lm/pt
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from a2dkit.cli.train import main, run


def cli(argv: list[str] | None = None) -> int:
    """Parse the flags (HfArgumentParser) and train; returns the exit code."""
    return main("bd3lm", "pt", argv)


if __name__ == "__main__":
    run("bd3lm", "pt")
