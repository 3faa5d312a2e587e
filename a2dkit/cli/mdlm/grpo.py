"""MDLM diffu-GRPO with verifiable rewards (dLLM's flags; see a2dkit.cli.grpo).

Run: accelerate launch --config_file a2dkit/accelerate_configs/ddp.yaml -m a2dkit.cli.mdlm.grpo \
    --model_name_or_path models/a2d/Qwen3-0.6B/mdlm/sft/checkpoint-final --dataset countdown \
    --max_steps 50 --output_dir models/a2d/Qwen3-0.6B/mdlm/grpo
References: d1 arXiv 2504.12216 (diffu-GRPO); BD3LM arXiv 2503.09573.
"""

from a2dkit.cli.grpo import main, run


def cli(argv: list[str] | None = None) -> int:
    """Parse the flags (HfArgumentParser) and train; returns the exit code."""
    return main("mdlm", argv)


if __name__ == "__main__":
    run("mdlm")
