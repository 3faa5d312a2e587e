"""``ScaleConfig``: every size of one scale, in sections that mirror the book's chapters
(``a2dkit.tutorial.sections``), and the training arguments / CLI flags derived from them. The
table of scales is ``a2dkit.tutorial.scales``.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM examples/a2d/README.md.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from a2dkit import _env
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.tutorial import assets, tiny
from a2dkit.tutorial.sections import (
    ALGOS,
    GRPO,
    SFT,
    Algo,
    Eval,
    Hardware,
    Pretrain,
    Retention,
    Sampling,
    Section,
    Source,
    check_names,
)

__all__ = ["TINY", "SMOLLM2", "OFFLINE_SOURCES", "Algo", "ScaleConfig"]

# source.model value meaning "the offline tiny AR Qwen3 of a2dkit.tutorial.tiny"
TINY = "a2dkit/tiny-ar-qwen3"
# the real pretrained model of the ``laptop`` scale (Hub id; resolved offline by tutorial.assets)
SMOLLM2 = assets.SMOLLM2_HUB_ID
# Hub ids the kit can produce offline: source.model -> a function returning a checkpoint dir
OFFLINE_SOURCES: dict[str, Callable[[], str | Path]] = {SMOLLM2: assets.smollm2_checkpoint}
# Tiny-A2D: MDLM SFT at 1024 tokens, BD3LM at 512 (dLLM README)
BD3LM_SFT_MAX_LENGTH = 512


class _Stage(NamedTuple):
    """The sizes of one training run (continual pretraining or SFT) of one algorithm."""

    dataset_args: str
    max_length: int
    steps: int  # -1: train for ``epochs``
    epochs: float
    learning_rate: float
    batch_size: int  # per device
    gradient_accumulation_steps: int
    block_size: int  # BD3LM's
    right_shift_logits: bool
    pad_to_max_length: bool  # MDLM SFT's EOS fill


@dataclass(frozen=True)
class ScaleConfig:
    """All sizes of one scale, by section: ``cfg.source`` (chapter 1), ``cfg.pretrain`` (3, 5),
    ``cfg.sampling`` (4, 6), ``cfg.sft`` (7, 9), ``cfg.eval`` (8), ``cfg.grpo`` (10),
    ``cfg.retention`` (11) and ``cfg.hardware``. A changed copy:
    ``cfg.replace(sft=dict(steps=120))``."""

    name: str
    description: str
    source: Source
    pretrain: Pretrain
    sampling: Sampling
    sft: SFT
    eval: Eval
    grpo: GRPO
    hardware: Hardware
    retention: Retention

    def __post_init__(self) -> None:
        for key, kind in _SECTIONS.items():
            if type(value := getattr(self, key)) is not kind:
                raise TypeError(f"{key} must be a {kind.__name__}, got {type(value).__name__}")
        pbs, new = self.pretrain.block_size, self.sampling.max_new_tokens
        if new % pbs:  # chapter 6 samples the pretrained BD3LM model in its blocks
            raise ValueError(
                f"pretrain.block_size={pbs} must divide sampling.max_new_tokens={new} "
                "(chapter 6 samples the pretrained BD3LM model in its blocks)"
            )
        if new % self.sft.block_size:  # chapter 6 samples the BD3LM SFT model with max_new_tokens
            raise ValueError(
                f"sft.block_size={self.sft.block_size} must divide sampling.max_new_tokens={new}"
            )

    @property
    def world_size(self) -> int:
        """Number of processes of the real run (nodes x GPUs per node; 1 on CPU)."""
        return self.hardware.num_nodes * max(self.hardware.gpus_per_node, 1)

    @property
    def global_batch_size(self) -> int:
        """SFT sequences per optimizer step (batch x gradient accumulation x world size)."""
        return self.sft.batch_size * self.sft.gradient_accumulation_steps * self.world_size

    @property
    def is_tiny(self) -> bool:
        """True when the source model is the offline tiny AR Qwen3 (no Hub access needed)."""
        return self.source.model == TINY

    @property
    def device(self) -> str:
        """Where notebooks put models and tensors, "cpu" or "cuda"."""
        return "cpu" if self.hardware.use_cpu else "cuda"

    def source_name_or_path(self) -> str:
        """The source AR checkpoint: the tiny model's cache dir (smoke), the offline asset's
        directory (a key of ``OFFLINE_SOURCES``, e.g. SmolLM2 at ``laptop``) or a Hub id."""
        if self.is_tiny:
            return self.tiny_ar_args().output_dir
        if self.source.model in OFFLINE_SOURCES:
            return str(OFFLINE_SOURCES[self.source.model]())
        return self.source.model

    def output_dir(self, *parts: str) -> Path:
        """Where notebooks write runs: ``$A2DKIT_RUNS/<scale>/<parts>`` (default: the cache dir)."""
        root = Path(os.environ.get("A2DKIT_RUNS") or _env.cache_dir() / "runs")
        return root.joinpath(self.name, *parts)

    def tiny_ar_args(self, output_dir: str | Path | None = None):
        """``tiny.TinyARArguments`` of this scale's tiny AR model (cached by default).

        Args:
            output_dir: where to save it; default ``<a2dkit cache>/tiny-ar-qwen3-<dims>``.
        """
        s = self.source
        if output_dir is None:
            dims = f"h{s.tiny_hidden_size}-l{s.tiny_num_layers}-v{s.tiny_vocab_size}"
            output_dir = _env.cache_dir() / f"tiny-ar-qwen3-{dims}-s{s.pretrain_steps}"
        return tiny.TinyARArguments(
            output_dir=str(output_dir),
            max_steps=s.pretrain_steps,
            seq_len=s.seq_len,
            batch_size=s.batch_size,
            hidden_size=s.tiny_hidden_size,
            num_hidden_layers=s.tiny_num_layers,
            vocab_size=s.tiny_vocab_size,
        )

    def _stage(self, algo: Algo, sft: bool) -> _Stage:
        """The sizes of ``algo``'s continual pretraining (``cfg.pretrain``) or SFT (``cfg.sft``):
        what ``training_args`` and ``cli_flags`` are built from."""
        if algo not in ALGOS:
            raise ValueError(f"algo={algo!r} is not valid; choose one of {ALGOS}")
        if sft:
            s = self.sft
            length = s.max_length if algo == "mdlm" else min(s.max_length, BD3LM_SFT_MAX_LENGTH)
            return _Stage(
                s.dataset_args, length, s.steps, s.num_train_epochs, s.learning_rate,
                s.batch_size, s.gradient_accumulation_steps, s.block_size,
                right_shift_logits=False, pad_to_max_length=algo == "mdlm" and s.pad_to_max_length,
            )  # fmt: skip
        p = self.pretrain
        own_lr = algo == "bd3lm" and p.bd3lm_learning_rate is not None
        return _Stage(
            p.dataset_args, p.max_length, p.mdlm_steps if algo == "mdlm" else p.bd3lm_steps,
            p.num_train_epochs, p.bd3lm_learning_rate if own_lr else p.learning_rate,
            p.batch_size, p.gradient_accumulation_steps, p.block_size,
            right_shift_logits=algo in p.right_shift_logits, pad_to_max_length=False,
        )  # fmt: skip

    def training_args(self, algo: Algo, output_dir: str | Path, *, sft: bool = False, **overrides):
        """``MDLMConfig`` / ``BD3LMConfig`` of this scale (``overrides`` win, e.g. ``max_steps``).

        Args:
            algo: "mdlm" or "bd3lm".
            output_dir: the trainer's output directory.
            sft: the sizes of ``cfg.sft`` instead of ``cfg.pretrain``.
        """
        st = self._stage(algo, sft)
        kwargs: dict[str, Any] = dict(
            output_dir=str(output_dir),
            max_steps=st.steps,
            num_train_epochs=st.epochs,
            learning_rate=st.learning_rate,
            per_device_train_batch_size=st.batch_size,
            per_device_eval_batch_size=st.batch_size,
            gradient_accumulation_steps=st.gradient_accumulation_steps,
            use_cpu=self.hardware.use_cpu,
            bf16=self.hardware.dtype == "bfloat16",
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            seed=0,
        )
        if algo == "bd3lm":
            kwargs["block_size"] = st.block_size
        if st.right_shift_logits:
            kwargs["right_shift_logits"] = True
        return {"mdlm": MDLMConfig, "bd3lm": BD3LMConfig}[algo](**{**kwargs, **overrides})

    def cli_flags(
        self, algo: Algo, *, sft: bool = False, max_steps: int | None = None
    ) -> list[str]:
        """The dLLM-style flags of ``a2dkit.cli.<algo>.<pt|sft>`` for this scale's real run
        (``max_steps`` > 0: a shorter run of the same recipe)."""
        st = self._stage(algo, sft)
        flags = ["--dataset_args", st.dataset_args, "--max_length", str(st.max_length)]
        if not sft:
            flags += ["--text_field", self.pretrain.text_field, "--insert_eos", "False"]
        steps = max_steps if max_steps is not None and max_steps > 0 else st.steps
        epochs = ["--num_train_epochs", f"{st.epochs:g}"]
        flags += ["--max_steps", str(steps)] if steps > 0 else epochs
        batch = str(st.batch_size)
        flags += [
            "--learning_rate",
            f"{st.learning_rate:g}",
            "--per_device_train_batch_size",
            batch,
        ]
        flags += ["--per_device_eval_batch_size", batch]
        flags += ["--gradient_accumulation_steps", str(st.gradient_accumulation_steps)]
        if st.pad_to_max_length:
            flags += ["--pad_to_max_length", "True"]
        if st.right_shift_logits:
            flags += ["--right_shift_logits", "True"]
        return flags + (["--block_size", str(st.block_size)] if algo == "bd3lm" else [])

    def grpo_args(self, algo: Algo, output_dir: str | Path, **overrides):
        """``DiffuGRPOConfig`` of this scale's GRPO run (``overrides`` win, e.g. ``max_steps``).

        d1's settings (arXiv 2504.12216): no reward scaling, KL weight 0.04 (0 on CPU, where
        the reference copy costs a third forward), ``p_mask_prompt`` 0.15; sampling at
        temperature 1 in blocks of ``sft.block_size`` (GRPO starts from the SFT model), one
        token per step.
        """
        from a2dkit.grpo import DiffuGRPOConfig  # lazy: imports trl

        if algo not in ALGOS:
            raise ValueError(f"algo={algo!r} is not valid; choose one of {ALGOS}")
        g, hw = self.grpo, self.hardware
        length = g.max_new_tokens
        kwargs: dict[str, Any] = dict(
            output_dir=str(output_dir), max_steps=g.steps,
            learning_rate=g.learning_rate, lr_scheduler_type="constant",
            per_device_train_batch_size=g.batch_size,
            num_generations=g.num_generations, max_completion_length=length,
            block_size=min(self.sft.block_size, length), steps=length, temperature=1.0,
            beta=0.0 if hw.use_cpu else 0.04, use_cpu=hw.use_cpu,
            bf16=hw.dtype == "bfloat16", report_to="none", save_strategy="no",
            disable_tqdm=True, logging_steps=1, seed=0,
        )  # fmt: skip
        return DiffuGRPOConfig(**{**kwargs, **overrides})

    def replace(self, **changes: Any) -> ScaleConfig:
        """A copy with some fields changed: ``name`` / ``description`` directly, a section by a
        dict of its changed fields (``replace(sft=dict(steps=120, learning_rate=5e-4))``) or by a
        whole section (``replace(sft=cfg.sft.replace(steps=3))``). Unknown section or field names
        raise TypeError listing the valid ones; the result is validated again."""
        names = [f.name for f in dataclasses.fields(self)]
        check_names("ScaleConfig", changes, names, _hint(set(changes) - set(names)))
        new = {}
        for key, value in changes.items():
            current = getattr(self, key)
            new[key] = current.updated(value) if isinstance(current, Section) else value
        return dataclasses.replace(self, **new)


_SECTIONS: dict[str, type[Section]] = {
    s.key: s for s in (Source, Pretrain, Sampling, SFT, Eval, GRPO, Hardware, Retention)
}


def _hint(unknown: set[str]) -> str:
    """Where a name that is no ScaleConfig field lives (``block_size``, the old ``sft_steps``)."""
    for name in sorted(unknown):
        prefix, _, rest = name.partition("_")
        if prefix in _SECTIONS and rest in _names(_SECTIONS[prefix]):
            return f" (did you mean replace({prefix}=dict({rest}=...))?)"
        if homes := [key for key, cls in _SECTIONS.items() if name in _names(cls)]:
            where = ", ".join(homes)
            return f" ({name!r} is a field of {where}: e.g. replace({homes[0]}=dict({name}=...)))"
    return ""


def _names(section: type[Section]) -> list[str]:
    return [f.name for f in dataclasses.fields(section)]
