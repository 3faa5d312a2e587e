"""Shared training entry of ``a2dkit.cli.{mdlm,bd3lm}.{pt,sft}`` (HfArgumentParser, dLLM flags).

Run: accelerate launch --config_file a2dkit/accelerate_configs/ddp.yaml -m a2dkit.cli.mdlm.pt \
    --model_name_or_path models/a2d/Qwen3-0.6B --dataset_args Trelis/tiny-shakespeare \
    --text_field Text --output_dir out --resume_from_checkpoint auto
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import sys
from pathlib import Path

import transformers

from a2dkit.cli.errors import run_cli
from a2dkit.training import checkpoints, config, lora
from a2dkit.training.resumable import PREEMPTED_EXIT_CODE, PreemptionCallback
from a2dkit.training.setup import (
    block_schedule,
    build_datasets,
    check_data_args,
    load_model,
    load_teacher,
    make_collator,
    plan_output_dir,
    semi_ar_schedule,
    teacher_source,
)
from a2dkit.training.trainers import BD3LMTrainer, MDLMTrainer

ALGOS = {"mdlm": (config.MDLMConfig, MDLMTrainer), "bd3lm": (config.BD3LMConfig, BD3LMTrainer)}
# the defaults of dLLM's examples/a2d/*/{pt,sft}.py (flags override them); evaluation is turned
# off when the data has no test/validation split
CLI_DEFAULTS = dict(learning_rate=1e-4, num_train_epochs=20, eval_strategy="steps", eval_steps=0.1)
CLI_DEFAULTS |= dict(per_device_train_batch_size=16, per_device_eval_batch_size=16, save_steps=0.1)
STAGE_DEFAULTS = {"pt": dict(max_length=128), "sft": dict(max_length=512)}


def main(algo: str, kind: str, argv: list[str] | None = None) -> int:
    """Train ``algo`` in {mdlm, bd3lm} on ``kind`` in {pt, sft} data; returns the exit code."""
    if algo not in ALGOS or kind not in STAGE_DEFAULTS:
        valid = f"{tuple(ALGOS)} x {tuple(STAGE_DEFAULTS)}"
        raise ValueError(f"algo={algo!r}, kind={kind!r} is not valid; choose from {valid}")
    config_cls, trainer_cls = ALGOS[algo]
    parser = transformers.HfArgumentParser(
        (config.ModelArguments, config.DataArguments, config_cls)
    )
    parser.set_defaults(**CLI_DEFAULTS, **STAGE_DEFAULTS[kind])
    model_args, data_args, args = parser.parse_args_into_dataclasses(argv)
    check_data_args(kind, data_args, args)  # before the model loads
    if args.distill_weight:
        teacher_source(model_args)  # no source to distil from: refused before any model loads
    resume, finished = plan_output_dir(args)
    if finished:
        return 0
    model, tokenizer = load_model(model_args)
    teacher = load_teacher(model_args, tokenizer, model_args.dtype) if args.distill_weight else None
    model = lora.apply_lora(model, model_args)  # unchanged unless --lora_r > 0
    with args.main_process_first(desc="tokenizing the dataset"):
        splits = build_datasets(kind, data_args, args, tokenizer)
    eval_split = splits.get("test", splits.get("validation"))
    if eval_split is None and args.eval_strategy != "no":
        print("[a2dkit] no test/validation split: evaluation is off", flush=True)
        args.eval_strategy = "no"
    fill = data_args.max_length if data_args.pad_to_max_length else None
    schedule = block_schedule(data_args, args)
    block = schedule.multiple if schedule else getattr(args, "block_size", None)
    collator = make_collator(kind, tokenizer, block, fill)
    recipe = dict(teacher=teacher) | (
        dict(block_schedule=schedule)
        if algo == "bd3lm"
        else dict(semi_ar_schedule=semi_ar_schedule(data_args, args))
    )
    preemption = PreemptionCallback()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=eval_split if args.eval_strategy != "no" else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[preemption],
        **recipe,
    )
    trainer.train(resume)
    if preemption.preempted:
        trainer.accelerator.wait_for_everyone()  # every rank's share of the checkpoint is on disk
        print(f"[a2dkit] preempted: checkpoint-{trainer.state.global_step} saved", flush=True)
        return PREEMPTED_EXIT_CODE
    # model + tokenizer (LoRA: merged; adapter in lora-adapter) + the loss curve (log_history),
    # marked complete once whole
    final = trainer.save_final_model(Path(args.output_dir) / checkpoints.FINAL)
    print(f"[a2dkit] final model: {final}", flush=True)
    return 0


def run(algo: str, kind: str) -> None:
    """``python -m`` entry: exit with ``main``'s code."""
    sys.exit(run_cli(lambda argv: main(algo, kind, argv)))
