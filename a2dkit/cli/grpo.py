"""Shared entry of ``a2dkit.cli.{mdlm,bd3lm}.grpo``: diffu-GRPO with dLLM's flags.

Run (dLLM's 1-GPU quick test; add ``--lora_r 128 --lora_alpha 64`` and zero2 for 8 GPUs)::

    accelerate launch --config_file a2dkit/accelerate_configs/ddp.yaml -m a2dkit.cli.mdlm.grpo \
        --model_name_or_path dllm-hub/Qwen3-0.6B-diffusion-mdlm-v0.1 --dataset gsm8k \
        --max_steps 50 --output_dir models/a2d/Qwen3-0.6B/mdlm/grpo

References: d1 arXiv 2504.12216 (diffu-GRPO); GRPO arXiv 2402.03300; dLLM examples/rl/grpo.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import transformers

from a2dkit.cli.errors import run_cli
from a2dkit.grpo import BD3LMGRPOTrainer, DiffuGRPOConfig, MDLMGRPOTrainer, rewards, tasks
from a2dkit.training import config, lora
from a2dkit.training.checkpoints import FINAL, resolve_resume_checkpoint
from a2dkit.training.setup import load_model

TRAINERS = {"mdlm": MDLMGRPOTrainer, "bd3lm": BD3LMGRPOTrainer}


@dataclass
class GRPODataArguments:
    """Which task: ``--dataset NAME`` (one of ``a2dkit.grpo.tasks.TASKS``) and how many rows."""

    dataset: str = field(default="gsm8k", metadata={"help": f"one of {sorted(tasks.TASKS)}"})
    num_train_examples: int = field(default=10000, metadata={"help": "rows of the train split"})

    def __post_init__(self) -> None:
        if self.dataset not in tasks.TASKS:
            raise ValueError(f"unknown dataset {self.dataset!r}; valid: {sorted(tasks.TASKS)}")


def parse(argv: list[str] | None):
    """(model_args, data_args, grpo_args); two parsers, since TRL's config and ModelArguments
    both define ``--trust_remote_code`` (the model's value is copied to TRL's)."""
    first = transformers.HfArgumentParser((config.ModelArguments, GRPODataArguments))
    second = transformers.HfArgumentParser(DiffuGRPOConfig)
    argv = sys.argv[1:] if argv is None else list(argv)
    if {"-h", "--help"} & set(argv):
        first.print_help()
        second.print_help()
        raise SystemExit(0)
    model_args, data_args, rest = first.parse_args_into_dataclasses(
        argv, return_remaining_strings=True
    )
    (args,) = second.parse_args_into_dataclasses(rest)
    args.trust_remote_code = model_args.trust_remote_code
    return model_args, data_args, args


def main(algo: str, argv: list[str] | None = None) -> int:
    """GRPO-train an ``algo`` in {mdlm, bd3lm} A2D model on ``--dataset``; returns the exit code."""
    if algo not in TRAINERS:
        raise ValueError(f"algo={algo!r} is not valid; choose one of {tuple(TRAINERS)}")
    model_args, data_args, args = parse(argv)
    model, tokenizer = load_model(model_args)
    with args.main_process_first(desc="loading the dataset"):
        train = tasks.load_task(data_args.dataset, "train", data_args.num_train_examples, args.seed)
    trainer = TRAINERS[algo](
        model=model,
        reward_funcs=rewards.get_rewards(tasks.TASKS[data_args.dataset].rewards),
        args=args,
        train_dataset=train,
        processing_class=tokenizer,
        peft_config=lora.lora_config(model_args),
    )
    trainer.train(resolve_resume_checkpoint(args.output_dir, args.resume_from_checkpoint))
    final = Path(args.output_dir) / FINAL
    lora.save_final(trainer, final)
    if args.should_save:  # the reward curve (log_history) travels with the final model
        trainer.state.save_to_json(str(final / "trainer_state.json"))
    print(f"[a2dkit] final model: {final}", flush=True)
    return 0


def run(algo: str) -> None:
    """``python -m`` entry: exit with ``main``'s code (bad input: one line, exit 2)."""
    sys.exit(run_cli(lambda argv: main(algo, argv)))
