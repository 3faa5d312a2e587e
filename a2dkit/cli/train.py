"""Shared training entry of ``a2dkit.cli.{mdlm,bd3lm}.{pt,sft}`` (HfArgumentParser, dLLM flags).

Run: accelerate launch --config_file a2dkit/accelerate_configs/ddp.yaml -m a2dkit.cli.mdlm.pt \
    --model_name_or_path models/a2d/Qwen3-0.6B --dataset_args Trelis/tiny-shakespeare \
    --text_field Text --output_dir out --resume_from_checkpoint auto
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import transformers

from a2dkit import checkpoints, config, data, loading, lora, preprocess
from a2dkit.cli.errors import run_cli
from a2dkit.trainers import BD3LMTrainer, MDLMTrainer, PreemptionCallback

ALGOS = {"mdlm": (config.MDLMConfig, MDLMTrainer), "bd3lm": (config.BD3LMConfig, BD3LMTrainer)}
# the defaults of dLLM's examples/a2d/*/{pt,sft}.py (flags override them); evaluation is turned
# off when the data has no test/validation split
CLI_DEFAULTS = dict(learning_rate=1e-4, num_train_epochs=20, eval_strategy="steps", eval_steps=0.1)
CLI_DEFAULTS |= dict(per_device_train_batch_size=16, per_device_eval_batch_size=16, save_steps=0.1)
STAGE_DEFAULTS = {"pt": dict(max_length=128), "sft": dict(max_length=512)}
PREEMPTED_EXIT_CODE = 3  # checkpoint saved after SIGUSR1/SIGTERM: requeue and resume


def load_model(args: config.ModelArguments):
    """(model, tokenizer): a converted A2D checkpoint, or an AR one converted in memory."""
    dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
    if args.load_in_4bit and not loading.load_config(
        args.model_name_or_path, args.trust_remote_code
    )[1].model_type.startswith("a2d-"):
        raise ValueError(f"--load_in_4bit needs a converted A2D checkpoint; "
                         f"{args.model_name_or_path!r} is AR: convert it first with "
                         "`python -m a2dkit.convert`")  # fmt: skip
    model, tokenizer = loading.load_model(
        args.model_name_or_path, trust_remote_code=args.trust_remote_code,
        allow_pickle_weights=args.allow_pickle_weights, dtype=dtype,
        attn_implementation=args.attn_implementation,
        **lora.quantization_kwargs(args),  # {} unless --load_in_4bit (raises on CPU)
    )  # fmt: skip
    if tokenizer.mask_token_id is None:  # the samplers need the tokenizer's mask token
        raise ValueError(
            f"{args.model_name_or_path!r}: its tokenizer has no mask token; {loading.CONVERT_HINT}"
        )
    return model, tokenizer


def check_data_args(kind: str, data_args, train_args) -> None:
    """Flag checks that need no model: ``--dataset_args`` syntax, block size, streaming."""
    data.parse_dataset_args(data_args.dataset_args)  # malformed spec: a ValueError quoting it
    block, length = getattr(train_args, "block_size", None), data_args.max_length
    if kind == "pt" and block and length % block:
        raise ValueError(
            f"block_size={block} must divide max_length={length} for packed pretraining (every "
            f"row is max_length long); try max_length={length + block - length % block}"
        )
    if data_args.pad_to_max_length and (kind != "sft" or block):
        raise ValueError(
            f"--pad_to_max_length True EOS-fills MDLM SFT rows; it does nothing for {kind} "
            f"{'BD3LM (whole blocks of labelled EOS already)' if block else '(packed rows)'}"
        )
    if data_args.streaming and train_args.max_steps <= 0:
        raise ValueError("--streaming True needs --max_steps > 0 (a stream has no length)")


def build_datasets(kind: str, data_args, train_args, tokenizer):
    """Tokenised splits: packed text for ``pt``, chat-templated with prompt masking for ``sft``."""
    check_data_args(kind, data_args, train_args)
    length = data_args.max_length
    spec, stream, nproc = data_args.dataset_args, data_args.streaming, data_args.num_proc
    raw = data.load_dataset_args(spec, seed=train_args.seed, streaming=stream)
    if kind == "pt":
        fields = dict(text_field=data_args.text_field, insert_eos=data_args.insert_eos)
        splits = preprocess.tokenize_and_pack(
            raw, tokenizer, max_length=length, num_proc=nproc, **fields
        )
    else:
        mask_prompt = data_args.mask_prompt_loss
        splits = preprocess.prepare_sft_dataset(
            raw, tokenizer, max_length=length, mask_prompt_loss=mask_prompt, num_proc=nproc
        )
    if "train" not in splits or next(iter(splits["train"]), None) is None:
        raise ValueError(
            f"dataset_args={spec!r} left no training rows after tokenization (splits: "
            f"{list(splits)}); use more data or a smaller max_length={length}"
        )
    return splits


def make_collator(
    kind: str, tokenizer, block_size: int | None, fill_length: int | None = None
) -> preprocess.DiffusionCollator:
    """The recipes' padding: BD3LM batches are whole blocks (SFT: labelled EOS up to a block
    multiple); MDLM SFT fills every row with labelled, attended EOS up to the batch length, or up
    to ``fill_length`` (``--pad_to_max_length``) when that is longer."""
    eos_pad = block_size if kind == "sft" else None
    fill = kind == "sft" and block_size is None
    pads = dict(pad_to_multiple_of=block_size, pad_with_eos_to_multiple=eos_pad, eos_fill=fill)
    return preprocess.DiffusionCollator(tokenizer, eos_fill_length=fill_length if fill else None,
                                        **pads)  # fmt: skip


def plan_output_dir(args: config.MDLMConfig) -> tuple[str | None, bool]:
    """(checkpoint to resume from, finished): refuses to reuse another run's output_dir."""
    with args.main_process_first(local=False, desc="checking the output dir"):  # main deletes
        resume, finished = checkpoints.prepare_output_dir(
            args.output_dir, args.resume_from_checkpoint, args.overwrite_output_dir,
            is_main=args.process_index == 0,
        )  # fmt: skip
    done = "a finished run (complete checkpoint-final): nothing to train (--overwrite_output_dir"
    if finished or resume:
        print(f"[a2dkit] {args.output_dir} holds {done} True trains it again)" if finished
              else f"[a2dkit] resuming from {resume}", flush=True)  # fmt: skip
    return resume, finished


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
    resume, finished = plan_output_dir(args)
    if finished:
        return 0
    model, tokenizer = load_model(model_args)
    model = lora.apply_lora(model, model_args)  # unchanged unless --lora_r > 0
    with args.main_process_first(desc="tokenizing the dataset"):
        splits = build_datasets(kind, data_args, args, tokenizer)
    eval_split = splits.get("test", splits.get("validation"))
    if eval_split is None and args.eval_strategy != "no":
        print("[a2dkit] no test/validation split: evaluation is off", flush=True)
        args.eval_strategy = "no"
    fill = data_args.max_length if data_args.pad_to_max_length else None
    collator = make_collator(kind, tokenizer, getattr(args, "block_size", None), fill)
    preemption = PreemptionCallback()
    trainer = trainer_cls(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=eval_split if args.eval_strategy != "no" else None,
        data_collator=collator,
        processing_class=tokenizer,
        callbacks=[preemption],
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
