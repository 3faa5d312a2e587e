"""What a training entry point prepares before ``Trainer.train``: the model (converted in memory
when it is AR), the checked flags, the tokenised splits, the collator and the output directory.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM ``examples/a2d/*/{pt,sft}.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from a2dkit.convert import load as convert_load
from a2dkit.convert import sources
from a2dkit.data import (
    DiffusionCollator,
    load_dataset_args,
    parse_dataset_args,
    prepare_sft_dataset,
    tokenize_and_pack,
)
from a2dkit.diffusion.curriculum import BlockSchedule, parse_block_schedule
from a2dkit.models.conventions import mask_token_id
from a2dkit.models.families import is_a2d
from a2dkit.models.loading import CONVERT_HINT, load_config
from a2dkit.training import checkpoints, config, lora

__all__ = [
    "load_model",
    "check_data_args",
    "block_schedule",
    "semi_ar_schedule",
    "teacher_source",
    "check_teacher_tokenizer",
    "load_teacher",
    "build_datasets",
    "make_collator",
    "plan_output_dir",
]


def load_model(args: config.ModelArguments):
    """(model, tokenizer): a converted A2D checkpoint, or an AR one converted in memory."""
    dtype = "auto" if args.dtype == "auto" else getattr(torch, args.dtype)
    if args.load_in_4bit:  # a 4-bit AR model cannot be converted in memory
        _, config = load_config(args.model_name_or_path, args.trust_remote_code)
        if not is_a2d(config.model_type):
            raise ValueError(f"--load_in_4bit needs a converted A2D checkpoint; "
                             f"{args.model_name_or_path!r} is AR: {CONVERT_HINT}")  # fmt: skip
    model, tokenizer = convert_load.load_model(
        args.model_name_or_path, trust_remote_code=args.trust_remote_code,
        allow_pickle_weights=args.allow_pickle_weights, dtype=dtype,
        attn_implementation=args.attn_implementation,
        **lora.quantization_kwargs(args),  # {} unless --load_in_4bit (raises on CPU)
    )  # fmt: skip
    mask_token_id(model, tokenizer)  # the samplers need the tokenizer's mask token
    return model, tokenizer


def check_data_args(kind: str, data_args, train_args) -> None:
    """Flag checks that need no model: ``--dataset_args`` syntax, block size, streaming."""
    parse_dataset_args(data_args.dataset_args)  # malformed spec: a ValueError quoting it
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
    block_schedule(data_args, train_args)  # every size must divide max_length
    semi_ar_schedule(data_args, train_args)  # the same for MDLM's semi-AR blocks


def block_schedule(data_args, train_args) -> BlockSchedule | None:
    """``--block_size_schedule`` resolved against ``max_length`` and ``max_steps`` (BD3LM)."""
    spec = getattr(train_args, "block_size_schedule", None)
    if not spec:
        return None
    steps = train_args.max_steps if train_args.max_steps > 0 else None
    return parse_block_schedule(spec, block_size=train_args.block_size,
                                max_length=data_args.max_length, total_steps=steps)  # fmt: skip


def semi_ar_schedule(data_args, train_args) -> BlockSchedule | None:
    """MDLM's semi-AR training blocks: ``--semi_ar_block_schedule`` (or the constant
    ``--semi_ar_block_size``) resolved against ``max_length`` and ``max_steps``; None when off."""
    size = getattr(train_args, "semi_ar_block_size", 0)
    if not size:
        return None
    spec = train_args.semi_ar_block_schedule or str(size)
    steps = train_args.max_steps if train_args.max_steps > 0 else None
    return parse_block_schedule(spec, block_size=size, max_length=data_args.max_length,
                                total_steps=steps)  # fmt: skip


def teacher_source(model_args) -> tuple[str, str | None]:
    """(path, gguf_file) of ``--distill_weight``'s AR teacher, found before any model loads:
    ``--teacher_model_name_or_path``, else the AR model itself (converted in memory), else the
    source recorded in the converted checkpoint's ``a2d_manifest.json``."""
    if model_args.teacher_model_name_or_path:
        return model_args.teacher_model_name_or_path, None
    path, cfg = load_config(model_args.model_name_or_path, model_args.trust_remote_code)
    if not is_a2d(cfg.model_type):
        return str(path), None  # an AR model, converted in memory: it is its own source
    manifest = Path(path) / "a2d_manifest.json"
    source = json.loads(manifest.read_text()).get("source", {}) if manifest.is_file() else {}
    if not source.get("name_or_path"):
        raise ValueError(
            f"--distill_weight needs the source AR model, and {str(path)!r} has no "
            "a2d_manifest.json naming it: pass --teacher_model_name_or_path"
        )
    return source["name_or_path"], source.get("gguf_file")


def check_teacher_tokenizer(teacher_tokenizer, tokenizer) -> None:
    """The teacher must share the student's tokens: every teacher token with the same id (the
    student may add its mask token)."""
    theirs, ours = teacher_tokenizer.get_vocab(), tokenizer.get_vocab()
    differ = [tok for tok, i in theirs.items() if ours.get(tok) != i]
    if differ:
        raise ValueError(
            f"the distillation teacher's tokenizer differs from the model's: {len(differ)} of its "
            f"{len(theirs)} tokens have another id or none (e.g. {sorted(differ)[:3]}); pass the "
            "source this model was converted from as --teacher_model_name_or_path"
        )


def load_teacher(model_args, tokenizer, dtype: str = "float32"):
    """The frozen AR teacher of ``--distill_weight`` (tokenizer checked before its weights)."""
    name, gguf_file = teacher_source(model_args)
    plan = sources.plan_source(name, gguf_file, model_args.trust_remote_code,
                               model_args.allow_pickle_weights)  # fmt: skip
    if gguf_file is None:
        from transformers import AutoTokenizer

        remote = model_args.trust_remote_code
        check_teacher_tokenizer(AutoTokenizer.from_pretrained(name, trust_remote_code=remote),
                                tokenizer)  # fmt: skip
    teacher, teacher_tokenizer = sources.load_source(plan, dtype, model_args.attn_implementation)
    check_teacher_tokenizer(teacher_tokenizer, tokenizer)
    return teacher.eval().requires_grad_(False)


def build_datasets(kind: str, data_args, train_args, tokenizer):
    """Tokenised splits: packed text for ``pt``, chat-templated with prompt masking for ``sft``."""
    check_data_args(kind, data_args, train_args)
    length = data_args.max_length
    spec, stream, nproc = data_args.dataset_args, data_args.streaming, data_args.num_proc
    raw = load_dataset_args(spec, seed=train_args.seed, streaming=stream)
    if kind == "pt":
        fields = dict(text_field=data_args.text_field, insert_eos=data_args.insert_eos)
        splits = tokenize_and_pack(raw, tokenizer, max_length=length, num_proc=nproc, **fields)
    else:
        mask_prompt = data_args.mask_prompt_loss
        splits = prepare_sft_dataset(
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
) -> DiffusionCollator:
    """The recipes' padding: BD3LM batches are whole blocks (SFT: labelled EOS up to a block
    multiple; with a curriculum, ``block_size`` is the schedule's ``multiple``); MDLM SFT fills
    every row with labelled, attended EOS up to the batch length, or up to ``fill_length``
    (``--pad_to_max_length``) when that is longer."""
    eos_pad = block_size if kind == "sft" else None
    fill = kind == "sft" and block_size is None
    pads = dict(pad_to_multiple_of=block_size, pad_with_eos_to_multiple=eos_pad, eos_fill=fill)
    return DiffusionCollator(tokenizer, eos_fill_length=fill_length if fill else None,
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
