"""Shared training entry of ``a2dkit.cli.{mdlm,bd3lm}.{pt,sft}`` (HfArgumentParser, dLLM flags).

Run: accelerate launch --config_file a2dkit/accelerate_configs/ddp.yaml -m a2dkit.cli.mdlm.pt \
    --model_name_or_path models/a2d/Qwen3-0.6B --dataset_args Trelis/tiny-shakespeare \
    --output_dir out
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoModelForMaskedLM,
    AutoTokenizer,
    HfArgumentParser,
)

from a2dkit import convert, data, preprocess
from a2dkit.config import (
    BD3LMConfig,
    DataArguments,
    MDLMConfig,
    ModelArguments,
    resolve_resume_checkpoint,
)
from a2dkit.trainers import BD3LMTrainer, MDLMTrainer, PreemptionCallback

ALGOS = {"mdlm": (MDLMConfig, MDLMTrainer), "bd3lm": (BD3LMConfig, BD3LMTrainer)}
KINDS = ("pt", "sft")
PREEMPTED_EXIT_CODE = 3  # the Slurm launcher requeues the job on this code


def load_model(args: ModelArguments):
    """A converted A2D checkpoint, or an AR one converted in memory (with a note)."""
    dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
    kw = dict(
        attn_implementation=args.attn_implementation,
        dtype=dtype,
        trust_remote_code=args.trust_remote_code,
    )
    tokenizer = AutoTokenizer.from_pretrained(args.model_name_or_path)
    config = convert.load_config(args.model_name_or_path, args.trust_remote_code)
    if config.model_type.startswith("a2d-"):
        return AutoModelForMaskedLM.from_pretrained(args.model_name_or_path, **kw), tokenizer
    print(f"[a2dkit] {config.model_type!r} is an AR model: converting it in memory", flush=True)
    source = AutoModelForCausalLM.from_pretrained(args.model_name_or_path, **kw)
    model, tokenizer, _ = convert.to_diffusion(source, tokenizer)
    return model, tokenizer


def build_datasets(kind: str, data_args: DataArguments, train_args, tokenizer):
    """Tokenised splits: packed text for ``pt``, chat-templated with prompt masking for ``sft``."""
    block = getattr(train_args, "block_size", None)
    if kind == "pt" and block and data_args.max_length % block:
        raise ValueError(
            f"block_size={block} must divide max_length={data_args.max_length} for packed "
            "pretraining (every packed row is max_length long)"
        )
    raw = data.load_dataset_args(
        data_args.dataset_args, seed=train_args.seed, streaming=data_args.streaming
    )
    if kind == "pt":
        return preprocess.tokenize_and_pack(
            raw,
            tokenizer,
            text_field=data_args.text_field,
            max_length=data_args.max_length,
            insert_eos=data_args.insert_eos,
            num_proc=data_args.num_proc,
        )
    return preprocess.prepare_sft_dataset(
        raw,
        tokenizer,
        max_length=data_args.max_length,
        mask_prompt_loss=data_args.mask_prompt_loss,
        num_proc=data_args.num_proc,
    )


def main(algo: str, kind: str, argv: list[str] | None = None) -> int:
    """Train with ``algo`` in {mdlm, bd3lm} on ``kind`` in {pt, sft} data; returns the exit code."""
    if algo not in ALGOS or kind not in KINDS:
        raise ValueError(f"algo={algo!r}/kind={kind!r}; valid: {tuple(ALGOS)} x {KINDS}")
    config_cls, trainer_cls = ALGOS[algo]
    parser = HfArgumentParser((ModelArguments, DataArguments, config_cls))
    model_args, data_args, train_args = parser.parse_args_into_dataclasses(argv)
    model, tokenizer = load_model(model_args)
    splits = build_datasets(kind, data_args, train_args, tokenizer)
    if "train" not in splits:
        raise ValueError(f"dataset_args={data_args.dataset_args!r} has no train split")
    block = getattr(train_args, "block_size", None)
    collator = preprocess.DiffusionCollator(
        tokenizer,
        pad_to_multiple_of=block,
        pad_with_eos_to_multiple=block if kind == "sft" else None,
    )
    eval_split = splits.get("test") if train_args.eval_strategy != "no" else None
    preemption = PreemptionCallback()
    trainer = trainer_cls(
        model=model,
        args=train_args,
        train_dataset=splits["train"],
        eval_dataset=eval_split,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[preemption],
    )
    resume = resolve_resume_checkpoint(train_args.output_dir, train_args.resume_from_checkpoint)
    trainer.train(resume_from_checkpoint=resume)
    if preemption.received is not None:
        print(
            f"[a2dkit] preempted at step {trainer.state.global_step}: checkpoint saved", flush=True
        )
        return PREEMPTED_EXIT_CODE
    final = Path(train_args.output_dir) / "checkpoint-final"
    trainer.save_model(str(final))
    tokenizer.save_pretrained(final)
    print(f"[a2dkit] final model: {final}", flush=True)
    return 0


def run(algo: str, kind: str) -> None:
    """``python -m`` entry: exit with ``main``'s code."""
    sys.exit(main(algo, kind))
