"""Configuration dataclasses: model/data arguments and the MDLM/BD3LM trainer configs (HF style).

Every CLI parses ``HfArgumentParser((ModelArguments, DataArguments, MDLMConfig | BD3LMConfig))``,
so the flags are the field names, as in dLLM and ``transformers.TrainingArguments``.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM ``MDLMConfig``/``BD3LMConfig``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from transformers import TrainingArguments

from a2dkit.losses import LOSS_WEIGHT_TYPES, NORM_TYPES
from a2dkit.schedules import SCHEDULES

DTYPES = ("float32", "bfloat16", "float16", "auto")


def _check_choice(name: str, value: str, valid) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {tuple(valid)}")


@dataclass
class ModelArguments:
    """Which model to train (a converted A2D checkpoint, or an AR one converted in memory)."""

    model_name_or_path: str = field(metadata={"help": "A2D checkpoint dir, or an AR model"})
    attn_implementation: str = "sdpa"
    dtype: str = field(default="float32", metadata={"help": f"one of {DTYPES}"})
    trust_remote_code: bool = False

    def __post_init__(self):
        _check_choice("dtype", self.dtype, DTYPES)
        _check_choice("attn_implementation", self.attn_implementation, ("sdpa", "eager"))


@dataclass
class DataArguments:
    """Which data, and how to tokenize it (dLLM's flag names)."""

    dataset_args: str = field(
        metadata={"help": "e.g. 'Trelis/tiny-shakespeare' or 'a+b[weight:0.3]'"}
    )
    text_field: str = "text"
    insert_eos: bool = True
    max_length: int = 512
    streaming: bool = False
    num_proc: int | None = None
    mask_prompt_loss: bool = True

    def __post_init__(self):
        if self.max_length <= 0:
            raise ValueError(f"max_length={self.max_length} must be a positive integer")


@dataclass
class MDLMConfig(TrainingArguments):
    """``TrainingArguments`` plus the MDLM objective's options (defaults as in dLLM A2D)."""

    time_epsilon: float = field(default=1e-3, metadata={"help": "t ~ U[time_epsilon, 1)"})
    loss_weight_type: str = field(default="scheduler", metadata={"help": str(LOSS_WEIGHT_TYPES)})
    loss_norm_type: str = field(default="token", metadata={"help": str(NORM_TYPES)})
    right_shift_logits: bool = False
    alpha_schedule: str = field(default="linear", metadata={"help": str(tuple(SCHEDULES))})
    antithetic_t: bool = False
    logging_steps: float = 10
    remove_unused_columns: bool = False

    def __post_init__(self):
        if not 0 <= self.time_epsilon < 1:
            raise ValueError(f"time_epsilon={self.time_epsilon} must lie in [0, 1)")
        _check_choice("loss_weight_type", self.loss_weight_type, LOSS_WEIGHT_TYPES)
        _check_choice("loss_norm_type", self.loss_norm_type, NORM_TYPES)
        _check_choice("alpha_schedule", self.alpha_schedule, tuple(SCHEDULES))
        super().__post_init__()


@dataclass
class BD3LMConfig(MDLMConfig):
    """MDLM options plus the block size of block diffusion."""

    block_size: int = 32

    def __post_init__(self):
        if self.block_size <= 0:
            raise ValueError(f"block_size={self.block_size} must be a positive integer")
        super().__post_init__()


def resolve_resume_checkpoint(output_dir: str | Path, value: str | bool | None) -> str | None:
    """``--resume_from_checkpoint auto`` -> the latest ``checkpoint-N`` in ``output_dir`` (or None).

    Any other value is returned unchanged (a path), ``True`` also means "latest" (HF convention).
    """
    if value in (None, False, "", "none", "None"):
        return None
    if value not in ("auto", True, "True", "true", "latest"):
        if not Path(str(value)).is_dir():
            raise ValueError(f"resume_from_checkpoint={value!r} is not a directory; or use 'auto'")
        return str(value)
    steps = [
        (int(m.group(1)), p)
        for p in Path(output_dir).glob("checkpoint-*")
        if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and p.is_dir()
    ]
    return str(max(steps)[1]) if steps else None
