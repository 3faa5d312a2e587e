"""``ScaleConfig``: every size of one scale (model, steps, batch, lengths, hardware) and the
training arguments / CLI flags derived from it. The table of scales is ``a2dkit.tutorial.scales``.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM examples/a2d/README.md.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

from a2dkit import _env
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.tutorial import tiny

__all__ = ["TINY", "SMOLLM2", "OFFLINE_SOURCES", "Algo", "ScaleConfig"]

# source_model value meaning "the offline tiny AR Qwen3 of a2dkit.tutorial.tiny"
TINY = "a2dkit/tiny-ar-qwen3"
# the real pretrained model of the ``laptop`` scale (Hub id; resolved offline by tutorial.assets)
SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
# Hub ids the kit can produce offline: source_model -> "module:function" returning a checkpoint dir
OFFLINE_SOURCES = {SMOLLM2: "a2dkit.tutorial.assets:smollm2_checkpoint"}
Algo = Literal["mdlm", "bd3lm"]


@dataclass(frozen=True)
class ScaleConfig:
    """All sizes of one scale. ``max_steps = -1`` means "train for ``num_train_epochs``" (HF)."""

    name: str
    description: str
    # --- source AR model (notebook 01) ---
    source_model: str  # TINY, a key of OFFLINE_SOURCES or a Hub id
    tiny_hidden_size: int  # tiny AR Qwen3 only (smoke)
    tiny_num_layers: int
    tiny_vocab_size: int
    ar_pretrain_steps: int  # AR next-token pretraining of the tiny model
    ar_seq_len: int
    ar_batch_size: int
    chat_max_new_tokens: int  # greedy AR chat answers (notebook 01)
    # --- continual pretraining on tiny-shakespeare (notebooks 03, 05) ---
    pt_dataset_args: str
    text_field: str
    max_length: int  # packed sequence length L
    mdlm_steps: int
    bd3lm_steps: int
    curve_steps: int  # steps of each AR-init / random-init run (notebook 03)
    num_train_epochs: float
    batch_size: int  # per device
    learning_rate: float
    block_size: int  # BD3LM block size, divides max_length
    # --- sampling (notebooks 04, 06) ---
    sampler_steps: int
    max_new_tokens: int
    temperature: float
    # --- SFT (notebook 07) and the Tiny-A2D recipe (notebook 09) ---
    sft_dataset_args: str
    sft_max_length: int
    sft_steps: int
    sft_learning_rate: float
    sft_num_train_epochs: float
    gradient_accumulation_steps: int
    num_eval_examples: int  # exact-match prompts before/after SFT
    sft_max_new_tokens: int  # answer length and denoising steps of the exact-match eval
    sft_sampler_steps: int
    sft_min_gain: float  # exact-match gain SFT must give over the converted model (notebook 07)
    # --- diffu-GRPO (notebook 10) ---
    grpo_dataset: str  # --dataset of a2dkit.cli.<algo>.grpo (a2dkit.grpo.tasks.TASKS)
    grpo_rewards: tuple[str, ...]  # a2dkit.grpo.rewards.REWARDS
    grpo_sft_steps: int  # SFT steps of the start model (-1: the scale's whole SFT)
    grpo_sft_learning_rate: float  # the start model's SFT learning rate
    grpo_steps: int
    grpo_learning_rate: float
    grpo_batch_size: int  # completions per device and step (num_generations per prompt)
    grpo_num_generations: int
    grpo_max_new_tokens: int  # --max_completion_length (and --steps: one token per step)
    # --- evaluation (notebook 08) ---
    eval_tasks: tuple[str, ...]
    eval_limit: int | None  # lm-eval --limit (None = whole task)
    elbo_samples: int  # Monte-Carlo samples of the likelihood bound
    # --- hardware ---
    num_nodes: int
    gpus_per_node: int
    accelerate_config: str  # a2dkit/accelerate_configs/<name>.yaml
    dtype: str  # "float32" on CPU, "bfloat16" on GPU
    use_cpu: bool
    # MDLM SFT rows EOS-filled to sft_max_length (``--pad_to_max_length``): a set of short rows
    # then covers every position of the sampling canvas (prompt + max_new_tokens)
    sft_pad_to_max_length: bool = False
    # algorithms whose continual pretraining predicts token i from position i - 1 (DiffuLLaMA,
    # Dream): the AR head's alignment is kept, so a brief run writes words; checkpoints record it
    pt_right_shift_logits: tuple[Algo, ...] = ()
    bd3lm_learning_rate: float | None = None  # BD3LM continual pretraining; None: learning_rate
    # MDLM sampling in semi-autoregressive blocks (LLaDA); None = one block of max_new_tokens
    sampler_block_size: int | None = None
    # BD3LM continual pretraining (and sampling that model) in blocks of this size; None:
    # block_size. Smaller blocks stay closer to the AR model (BD3LM §3: L' = 1 is AR)
    pt_block_size: int | None = None

    def __post_init__(self) -> None:
        if self.max_length % self.block_size:
            valid = [d for d in range(1, self.max_length + 1) if self.max_length % d == 0]
            raise ValueError(
                f"block_size={self.block_size} must divide max_length={self.max_length}; "
                f"try one of {valid}"
            )
        for name in ("max_new_tokens", "sft_max_new_tokens"):
            if getattr(self, name) % self.block_size:
                raise ValueError(
                    f"block_size={self.block_size} must divide {name}={getattr(self, name)}"
                )
        if unknown := sorted(set(self.pt_right_shift_logits) - {"mdlm", "bd3lm"}):
            raise ValueError(
                f"pt_right_shift_logits={self.pt_right_shift_logits!r}: {unknown} are not "
                "algorithms; use a tuple of 'mdlm' and/or 'bd3lm'"
            )
        sbs = self.sampler_block_size
        if sbs is not None and (sbs <= 0 or self.max_new_tokens % sbs):
            raise ValueError(
                f"sampler_block_size={sbs} must be None or a positive divisor of "
                f"max_new_tokens={self.max_new_tokens}"
            )
        pbs = self.pt_block_size
        if pbs is not None and (pbs <= 0 or self.max_length % pbs or self.max_new_tokens % pbs):
            raise ValueError(
                f"pt_block_size={pbs} must be None or a positive divisor of both "
                f"max_length={self.max_length} and max_new_tokens={self.max_new_tokens}"
            )
        if self.sampler_steps <= 0 or self.batch_size <= 0:
            raise ValueError(
                f"sampler_steps={self.sampler_steps} and batch_size={self.batch_size} must be > 0"
            )

    @property
    def pretrain_block_size(self) -> int:
        """BD3LM continual pretraining's block size (``pt_block_size``, else ``block_size``)."""
        return self.pt_block_size or self.block_size

    @property
    def world_size(self) -> int:
        """Number of processes of the real run (nodes x GPUs per node; 1 on CPU)."""
        return self.num_nodes * max(self.gpus_per_node, 1)

    @property
    def global_batch_size(self) -> int:
        """Sequences per optimizer step (batch x gradient accumulation x world size)."""
        return self.batch_size * self.gradient_accumulation_steps * self.world_size

    @property
    def is_tiny(self) -> bool:
        """True when the source model is the offline tiny AR Qwen3 (no Hub access needed)."""
        return self.source_model == TINY

    @property
    def device(self) -> str:
        """Where notebooks put models and tensors, "cpu" or "cuda"."""
        return "cpu" if self.use_cpu else "cuda"

    def source_name_or_path(self) -> str:
        """The source AR checkpoint: the tiny model's cache dir (smoke), the offline asset's
        directory (a key of ``OFFLINE_SOURCES``, e.g. SmolLM2 at ``laptop``) or a Hub id."""
        if self.is_tiny:
            return self.tiny_ar_args().output_dir
        if self.source_model in OFFLINE_SOURCES:
            import importlib

            module, function = OFFLINE_SOURCES[self.source_model].split(":")
            return str(getattr(importlib.import_module(module), function)())
        return self.source_model

    def output_dir(self, *parts: str) -> Path:
        """Where notebooks write runs: ``$A2DKIT_RUNS/<scale>/<parts>`` (default: the cache dir)."""
        root = Path(os.environ.get("A2DKIT_RUNS") or _env.cache_dir() / "runs")
        return root.joinpath(self.name, *parts)

    def tiny_ar_args(self, output_dir: str | Path | None = None):
        """``tiny.TinyARArguments`` of this scale's tiny AR model (cached by default).

        Args:
            output_dir: where to save it; default ``<a2dkit cache>/tiny-ar-qwen3-<dims>``.
        """
        if output_dir is None:
            dims = f"h{self.tiny_hidden_size}-l{self.tiny_num_layers}-v{self.tiny_vocab_size}"
            output_dir = _env.cache_dir() / f"tiny-ar-qwen3-{dims}-s{self.ar_pretrain_steps}"
        return tiny.TinyARArguments(
            output_dir=str(output_dir),
            max_steps=self.ar_pretrain_steps,
            seq_len=self.ar_seq_len,
            batch_size=self.ar_batch_size,
            hidden_size=self.tiny_hidden_size,
            num_hidden_layers=self.tiny_num_layers,
            vocab_size=self.tiny_vocab_size,
        )

    def training_args(self, algo: Algo, output_dir: str | Path, *, sft: bool = False, **overrides):
        """``MDLMConfig`` / ``BD3LMConfig`` of this scale (``overrides`` win, e.g. ``max_steps``).

        Args:
            algo: "mdlm" or "bd3lm".
            output_dir: the trainer's output directory.
            sft: SFT sizes (``sft_*``) instead of continual-pretraining sizes.
        """
        classes = {"mdlm": MDLMConfig, "bd3lm": BD3LMConfig}
        if algo not in classes:
            raise ValueError(f"algo={algo!r} is not valid; choose one of {tuple(classes)}")
        steps = (
            self.sft_steps if sft else {"mdlm": self.mdlm_steps, "bd3lm": self.bd3lm_steps}[algo]
        )
        kwargs: dict[str, Any] = dict(
            output_dir=str(output_dir),
            max_steps=steps,
            num_train_epochs=self.sft_num_train_epochs if sft else self.num_train_epochs,
            learning_rate=self._learning_rate(algo, sft),
            per_device_train_batch_size=self.batch_size,
            per_device_eval_batch_size=self.batch_size,
            gradient_accumulation_steps=self.gradient_accumulation_steps,
            use_cpu=self.use_cpu,
            bf16=self.dtype == "bfloat16",
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        if algo == "bd3lm":
            kwargs["block_size"] = self._block_size(sft)
        if not sft and algo in self.pt_right_shift_logits:
            kwargs["right_shift_logits"] = True
        return classes[algo](**{**kwargs, **overrides})

    def cli_flags(
        self, algo: Algo, *, sft: bool = False, max_steps: int | None = None
    ) -> list[str]:
        """The dLLM-style flags of ``a2dkit.cli.<algo>.<pt|sft>`` for this scale's real run
        (``max_steps`` > 0: a shorter run of the same recipe)."""
        dataset = self.sft_dataset_args if sft else self.pt_dataset_args
        flags = ["--dataset_args", dataset, "--max_length", str(self._length(algo, sft))]
        if not sft:
            flags += ["--text_field", self.text_field, "--insert_eos", "False"]
        steps = (
            self.sft_steps if sft else {"mdlm": self.mdlm_steps, "bd3lm": self.bd3lm_steps}[algo]
        )
        steps = max_steps if max_steps is not None and max_steps > 0 else steps
        epochs = self.sft_num_train_epochs if sft else self.num_train_epochs
        flags += ["--max_steps", str(steps)] if steps > 0 else ["--num_train_epochs", f"{epochs:g}"]
        lr, batch = self._learning_rate(algo, sft), str(self.batch_size)
        flags += ["--learning_rate", f"{lr:g}", "--per_device_train_batch_size", batch]
        flags += ["--per_device_eval_batch_size", batch]
        flags += ["--gradient_accumulation_steps", str(self.gradient_accumulation_steps)]
        if sft and algo == "mdlm" and self.sft_pad_to_max_length:
            flags += ["--pad_to_max_length", "True"]
        if not sft and algo in self.pt_right_shift_logits:
            flags += ["--right_shift_logits", "True"]
        return flags + (["--block_size", str(self._block_size(sft))] if algo == "bd3lm" else [])

    def grpo_args(self, algo: Algo, output_dir: str | Path, **overrides):
        """``DiffuGRPOConfig`` of this scale's GRPO run (``overrides`` win, e.g. ``max_steps``).

        d1's settings (arXiv 2504.12216): no reward scaling, KL weight 0.04 (0 on CPU, where
        the reference copy costs a third forward), ``p_mask_prompt`` 0.15; sampling at
        temperature 1 in blocks of ``block_size`` (BD3LM: the model's), one token per step.
        """
        from a2dkit.grpo import DiffuGRPOConfig  # lazy: imports trl

        if algo not in ("mdlm", "bd3lm"):
            raise ValueError(f"algo={algo!r} is not valid; choose one of ('mdlm', 'bd3lm')")
        length = self.grpo_max_new_tokens
        kwargs: dict[str, Any] = dict(
            output_dir=str(output_dir), max_steps=self.grpo_steps,
            learning_rate=self.grpo_learning_rate, lr_scheduler_type="constant",
            per_device_train_batch_size=self.grpo_batch_size,
            num_generations=self.grpo_num_generations, max_completion_length=length,
            block_size=min(self.block_size, length), steps=length, temperature=1.0,
            beta=0.0 if self.use_cpu else 0.04, use_cpu=self.use_cpu,
            bf16=self.dtype == "bfloat16", report_to="none", save_strategy="no",
            disable_tqdm=True, logging_steps=1, seed=0,
        )  # fmt: skip
        return DiffuGRPOConfig(**{**kwargs, **overrides})

    def _learning_rate(self, algo: Algo, sft: bool) -> float:
        if sft:
            return self.sft_learning_rate
        bd3lm = algo == "bd3lm" and self.bd3lm_learning_rate is not None
        return self.bd3lm_learning_rate if bd3lm else self.learning_rate

    def _block_size(self, sft: bool) -> int:  # BD3LM: SFT in block_size, pretraining its own
        return self.block_size if sft else self.pretrain_block_size

    def _length(self, algo: Algo, sft: bool) -> int:
        # Tiny-A2D: MDLM SFT at 1024 tokens, BD3LM at 512 (dLLM README); pt uses max_length
        if not sft:
            return self.max_length
        return self.sft_max_length if algo == "mdlm" else min(self.sft_max_length, 512)

    def replace(self, **changes) -> ScaleConfig:
        """A copy with some fields changed; unknown names raise TypeError listing the valid ones."""
        names = [f.name for f in fields(self)]
        if unknown := sorted(set(changes) - set(names)):
            raise TypeError(f"unknown ScaleConfig fields {unknown}; valid: {names}")
        return replace(self, **changes)
