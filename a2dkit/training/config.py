"""Configuration dataclasses: model/data arguments and the MDLM/BD3LM trainer configs (HF style).

Every CLI parses ``HfArgumentParser((ModelArguments, DataArguments, MDLMConfig | BD3LMConfig))``,
so the flags are the field names, as in dLLM and ``transformers.TrainingArguments``.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM ``MDLMConfig``/``BD3LMConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from transformers import TrainingArguments

from a2dkit._env import MODEL_DTYPES, check_choice
from a2dkit.diffusion.curriculum import PRESETS
from a2dkit.diffusion.losses import LOSS_WEIGHT_TYPES, NORM_TYPES
from a2dkit.diffusion.schedules import SCHEDULES
from a2dkit.models.conventions import (
    CLEAN_STREAMS,
    MASKABLE_ATTENTION,
    check_attention_implementation,
)
from a2dkit.training import checkpoints
from a2dkit.training.optim import parse_lr_multipliers

__all__ = [
    "ModelArguments",
    "DataArguments",
    "MDLMConfig",
    "BD3LMConfig",
]


@dataclass
class ModelArguments:
    """Which model to train (a converted A2D checkpoint, or an AR one converted in memory)."""

    model_name_or_path: str = field(metadata={"help": "A2D checkpoint dir, or an AR model"})
    attn_implementation: str = field(
        default="sdpa", metadata={"help": f"one of {MASKABLE_ATTENTION} (flash is causal-only)"}
    )
    dtype: str = field(
        default="float32", metadata={"help": f"weights dtype, one of {MODEL_DTYPES}"}
    )
    trust_remote_code: bool = field(default=False, metadata={"help": "run the model's own code"})
    allow_pickle_weights: bool = field(default=False, metadata={"help": "load .bin weights"})
    # LoRA (peft) and 4-bit loading, dLLM's flag names; lora_r = 0 trains every weight
    lora_r: int = field(default=0, metadata={"help": "LoRA rank (0 = no LoRA, full training)"})
    lora_alpha: int = field(default=16, metadata={"help": "LoRA scaling alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "dropout on the LoRA input"})
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "comma-separated module names or 'all-linear'"}
    )
    load_in_4bit: bool = field(
        default=False, metadata={"help": "QLoRA: 4-bit base weights (CUDA + bitsandbytes)"}
    )
    teacher_model_name_or_path: str | None = field(
        default=None,
        metadata={"help": "--distill_weight's AR teacher (default: the source in the A2D "
                  "manifest, or the AR model itself when it is converted in memory)"},
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_choice("dtype", self.dtype, MODEL_DTYPES)
        check_attention_implementation(self.attn_implementation)  # one refusal, one message
        if isinstance(self.lora_r, bool) or not isinstance(self.lora_r, int) or self.lora_r < 0:
            raise ValueError(f"lora_r={self.lora_r!r} must be an integer >= 0 (0 = no LoRA)")
        if not 0 <= self.lora_dropout < 1:
            raise ValueError(f"lora_dropout={self.lora_dropout} must lie in [0, 1)")
        if self.load_in_4bit and self.lora_r == 0:
            raise ValueError("--load_in_4bit True trains only LoRA adapters: set --lora_r > 0")


@dataclass
class DataArguments:
    """Which data, and how to tokenize it (dLLM's flag names)."""

    dataset_args: str = field(
        metadata={"help": "e.g. 'Trelis/tiny-shakespeare' or 'a[weight:0.7]+b[weight:0.3]'"}
    )
    text_field: str = field(default="text", metadata={"help": "pt: the text column"})
    insert_eos: bool = field(default=True, metadata={"help": "pt: EOS after every document"})
    max_length: int = field(default=512, metadata={"help": "pt: packed row length; sft: cut-off"})
    streaming: bool = field(default=False, metadata={"help": "stream (needs --max_steps)"})
    num_proc: int | None = None
    mask_prompt_loss: bool = field(default=True, metadata={"help": "sft: never noise the prompt"})
    pad_to_max_length: bool = field(
        default=False,
        metadata={"help": "sft (MDLM): EOS-fill every row up to max_length, not the batch max"},
    )

    def __post_init__(self) -> None:
        if isinstance(self.max_length, bool) or not isinstance(self.max_length, int):
            raise TypeError(f"max_length must be an int, got {self.max_length!r}")
        if self.max_length <= 0:
            raise ValueError(f"max_length={self.max_length} must be a positive integer")


@dataclass
class MDLMConfig(TrainingArguments):
    """``TrainingArguments`` plus the MDLM objective's options (defaults as in dLLM A2D).

    ``output_dir`` is required; ``--resume_from_checkpoint auto`` resumes from the latest complete
    ``checkpoint-N`` in it (see :func:`a2dkit.training.checkpoints.resolve_resume_checkpoint`).
    ``report_to`` defaults to
    "none" (transformers 5.x default): pass ``--report_to wandb`` to log.
    """

    time_epsilon: float = field(default=1e-3, metadata={"help": "t ~ U[time_epsilon, 1)"})
    loss_weight_type: str = field(default="scheduler", metadata={"help": str(LOSS_WEIGHT_TYPES)})
    loss_norm_type: str = field(default="token", metadata={"help": str(NORM_TYPES)})
    right_shift_logits: bool = field(
        default=False, metadata={"help": "predict token i from the logits at i - 1 (AR head)"}
    )
    alpha_schedule: str = field(
        default="linear", metadata={"help": f"noise schedule alpha(t): {tuple(SCHEDULES)}"}
    )
    antithetic_t: bool = field(default=False, metadata={"help": "stratified t within a batch"})
    # joint AR + diffusion loss (Nemotron-Labs-Diffusion; I-DLM arXiv 2604.11035): L + α · L_AR
    ar_loss_weight: float = field(
        default=0.0,
        metadata={"help": "α: add α x the causal next-token loss of the same weights (0: off)"},
    )
    # AR-preserving recipes (chapter 11); each is off at its default and all compose
    attention_anneal_steps: int = field(
        default=0,
        metadata={"help": "DiffuLLaMA: causal -> bidirectional attention over N steps (0: off)"},
    )
    distill_weight: float = field(
        default=0.0,
        metadata={"help": "β: + β x KL(source AR || model) at clean-prefix masked tokens (0: off)"},
    )
    position_mask_strength: float = field(
        default=0.0,
        metadata={"help": "Efficient-DLM: mask later tokens more, p_i = 1 - α(t)^exp(λ(2r_i - 1))"},
    )
    complementary_masking: bool = field(
        default=False, metadata={"help": "also train each row under the complement of its mask"}
    )
    # TiDAR arXiv 2511.08923 §3: a fully masked block is exactly what one-step drafting reads
    full_mask_prob: float = field(
        default=0.0,
        metadata={"help": "TiDAR: train a row fully masked (t = 1) with this probability (0: off)"},
    )
    lr_multipliers: str | None = field(
        default=None,
        metadata={"help": "RND1 layer-wise rates: 'NAME_PATTERN=MULT,...', e.g. 'mlp=0.1'"},
    )
    # MDLM trained as semi-AR sampling reads it (LLaDA arXiv 2502.09992): one answer block noised
    semi_ar_block_size: int = field(
        default=0,
        metadata={"help": "MDLM: noise one answer block, earlier clean, later masked (0: off)"},
    )
    semi_ar_block_schedule: str | None = field(
        default=None,
        metadata={"help": "MDLM: a curriculum ending at --semi_ar_block_size, as BD3LM's "
                  "--block_size_schedule ('SIZE:END_STEP,...,SIZE', 'grow', 'wsd')"},
    )  # fmt: skip
    learning_rate: float = 1e-4
    logging_steps: float = 10
    overwrite_output_dir: bool = field(
        default=False, metadata={"help": "delete the checkpoints of a run output_dir holds first"}
    )
    save_only_model: bool = False  # checkpoints keep optimizer + RNG state: resume is exact
    # keep every batch column: the trainer reads input_ids/labels/attention_mask itself
    remove_unused_columns: bool = False

    def __post_init__(self) -> None:
        if self.output_dir is None:
            raise ValueError("output_dir is required (e.g. --output_dir models/a2d/mdlm)")
        if not 0 <= self.time_epsilon < 1:
            raise ValueError(f"time_epsilon={self.time_epsilon} must lie in [0, 1), e.g. 1e-3")
        check_choice("loss_weight_type", self.loss_weight_type, LOSS_WEIGHT_TYPES)
        check_choice("loss_norm_type", self.loss_norm_type, NORM_TYPES)
        check_choice("alpha_schedule", self.alpha_schedule, tuple(SCHEDULES))
        if not self.ar_loss_weight >= 0 or self.ar_loss_weight == float("inf"):  # nan too
            raise ValueError(
                f"ar_loss_weight={self.ar_loss_weight} must be a finite number >= 0 "
                "(0 turns the joint AR loss off; Nemotron-Labs-Diffusion's ratio is 1 / 0.3)"
            )
        self._check_recipes()
        checkpoints.check_resume_value(self.resume_from_checkpoint)
        if self.max_steps <= 0 and not self.num_train_epochs > 0:  # also catches nan
            raise ValueError(
                f"num_train_epochs={self.num_train_epochs} and max_steps={self.max_steps}: nothing "
                "to train; set --num_train_epochs > 0 or --max_steps > 0"
            )
        super().__post_init__()

    def _check_recipes(self) -> None:
        for name in ("distill_weight", "position_mask_strength"):
            value = getattr(self, name)
            if not value >= 0 or value == float("inf"):  # nan too
                raise ValueError(f"{name}={value} must be a finite number >= 0 (0 turns it off)")
        steps = self.attention_anneal_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"attention_anneal_steps={steps!r} must be an integer >= 0 (0: off)")
        if steps and self.max_steps > 0 and steps > self.max_steps:
            raise ValueError(
                f"attention_anneal_steps={steps} is longer than training "
                f"(max_steps={self.max_steps}); anneal over at most max_steps"
            )
        if not 0 <= self.full_mask_prob <= 1:  # nan too
            raise ValueError(f"full_mask_prob={self.full_mask_prob} must lie in [0, 1] (0: off; "
                             "TiDAR's recipe: 1)")  # fmt: skip
        if self.lr_multipliers is not None:
            parse_lr_multipliers(self.lr_multipliers)
        size, spec = self.semi_ar_block_size, self.semi_ar_block_schedule
        if isinstance(size, bool) or not isinstance(size, int) or size < 0:
            raise ValueError(f"semi_ar_block_size={size!r} must be an integer >= 0 (0: off)")
        if spec and not size:
            raise ValueError(f"semi_ar_block_schedule={spec!r} needs --semi_ar_block_size > 0 "
                             "(the block size it ends at)")  # fmt: skip
        if spec in PRESETS and self.max_steps <= 0:
            raise ValueError(f"semi_ar_block_schedule={spec!r} is spread over the run's steps: "
                             "set --max_steps > 0")  # fmt: skip

    def recipe(self) -> dict:
        """The AR-preserving recipe flags, as the checkpoint's config records them."""
        return {
            "ar_loss_weight": float(self.ar_loss_weight),
            "attention_anneal_steps": int(self.attention_anneal_steps),
            "distill_weight": float(self.distill_weight),
            "position_mask_strength": float(self.position_mask_strength),
            "complementary_masking": bool(self.complementary_masking),
            "full_mask_prob": float(self.full_mask_prob),
            "lr_multipliers": self.lr_multipliers,
            "semi_ar_block_size": int(self.semi_ar_block_size),
        }


@dataclass
class BD3LMConfig(MDLMConfig):
    """MDLM options plus the block size of block diffusion (must divide each padded batch)."""

    block_size: int = field(default=32, metadata={"help": "tokens per block (> 0)"})
    block_size_schedule: str | None = field(
        default=None,
        metadata={"help": "block-size curriculum: 'SIZE:END_STEP,...,SIZE', 'grow' or 'wsd' "
                  "(LLaDA2.0); each size must divide max_length"},
    )  # fmt: skip
    # TiDAR arXiv 2511.08923 §3: the clean prefix as an AR model reads it (what one-pass drafts on)
    clean_stream: str = field(
        default="block",
        metadata={"help": f"attention of the clean x_0 half: {CLEAN_STREAMS} ('block': BD3LM's "
                  "block-causal; 'causal': token-causal, TiDAR's, and the joint AR loss reads it)"},
    )  # fmt: skip

    def __post_init__(self) -> None:
        check_choice("clean_stream", self.clean_stream, CLEAN_STREAMS)
        if self.semi_ar_block_size or self.semi_ar_block_schedule:
            raise ValueError(
                f"semi_ar_block_size={self.semi_ar_block_size} / semi_ar_block_schedule="
                f"{self.semi_ar_block_schedule!r} are MDLM's: BD3LM trains in blocks already "
                "(--block_size, --block_size_schedule)"
            )
        if isinstance(self.block_size, bool) or not isinstance(self.block_size, int):
            raise TypeError(f"block_size must be an int, got {self.block_size!r}")
        if self.block_size <= 0:
            raise ValueError(f"block_size={self.block_size} must be a positive integer, e.g. 32")
        if self.block_size_schedule in PRESETS and self.max_steps <= 0:
            raise ValueError(
                f"block_size_schedule={self.block_size_schedule!r} is spread over "
                "the run's steps: set --max_steps > 0"
            )
        super().__post_init__()
