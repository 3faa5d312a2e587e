"""The sections of a ``ScaleConfig``, one per part of the book: ``cfg.source`` (chapter 1),
``cfg.pretrain`` (3, 5), ``cfg.sampling`` (4, 6), ``cfg.sft`` (7, 9), ``cfg.eval`` (8),
``cfg.grpo`` (10), ``cfg.retention`` (11) and ``cfg.hardware``. Each is a frozen dataclass whose
``replace`` refuses unknown field names; the checks that span sections are ``ScaleConfig``'s.

Three block sizes, one per meaning: ``pretrain.block_size`` (BD3LM continual pretraining, and
sampling that model), ``sampling.block_size`` (MDLM's semi-autoregressive sampling) and
``sft.block_size`` (BD3LM SFT, and sampling / evaluating / GRPO-training the SFT models).
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, get_args

__all__ = [
    "ALGOS", "Algo", "Section", "Source", "Pretrain", "Sampling", "SFT", "Eval", "GRPO",
    "Retention", "Hardware", "check_names",
]  # fmt: skip

Algo = Literal["mdlm", "bd3lm"]
ALGOS: tuple[Algo, ...] = ("mdlm", "bd3lm")


def check_names(owner: str, changes: Iterable[str], valid: list[str], hint: str = "") -> None:
    """Raise TypeError naming the ``changes`` that are not in ``valid`` (and listing those)."""
    if unknown := sorted(set(changes) - set(valid)):
        raise TypeError(f"unknown {owner} fields {unknown}; valid: {valid}{hint}")


@dataclass(frozen=True)
class Section:
    """A frozen group of settings; ``key`` is its attribute name on ``ScaleConfig``."""

    key: ClassVar[str] = ""

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed; unknown names raise TypeError listing the valid ones."""
        check_names(self.key, changes, [f.name for f in dataclasses.fields(self)])
        return dataclasses.replace(self, **changes)

    def updated(self, changes: Mapping[str, Any] | Section) -> Any:
        """``changes`` applied: a dict of changed fields, or a whole section of this type."""
        if isinstance(changes, Mapping):
            return self.replace(**changes)
        if type(changes) is not type(self):
            raise TypeError(
                f"{self.key}= takes a dict of changed fields or a {type(self).__name__}, "
                f"got {type(changes).__name__}"
            )
        return changes


def _positive(section: Section, *names: str) -> None:
    for name in names:
        if getattr(section, name) <= 0:
            raise ValueError(f"{section.key}.{name}={getattr(section, name)} must be > 0")


@dataclass(frozen=True)
class Source(Section):
    """Chapter 1: the source AR model (and, at ``smoke``, the tiny one pretrained offline)."""

    key: ClassVar[str] = "source"
    model: str  # scale_config.TINY, a key of scale_config.OFFLINE_SOURCES or a Hub id
    tiny_hidden_size: int  # tiny AR Qwen3 only (smoke)
    tiny_num_layers: int
    tiny_vocab_size: int
    pretrain_steps: int  # AR next-token pretraining of the tiny model
    seq_len: int
    batch_size: int
    chat_max_new_tokens: int  # greedy AR chat answers


@dataclass(frozen=True)
class Pretrain(Section):
    """Chapters 3 and 5: MDLM / BD3LM continual pretraining (``a2dkit.cli.<algo>.pt``).
    ``mdlm_steps`` / ``bd3lm_steps`` = -1 means "train for ``num_train_epochs``" (HF)."""

    key: ClassVar[str] = "pretrain"
    dataset_args: str
    text_field: str
    max_length: int  # packed sequence length L
    mdlm_steps: int
    bd3lm_steps: int
    curve_steps: int  # steps of each AR-init / random-init run (chapter 3)
    num_train_epochs: float
    batch_size: int  # per device
    gradient_accumulation_steps: int
    learning_rate: float
    # BD3LM continual pretraining (and sampling that model, chapter 6) in blocks of this size,
    # a divisor of max_length. Smaller blocks stay closer to the AR model (BD3LM §3: L' = 1 is AR)
    block_size: int
    bd3lm_learning_rate: float | None = None  # BD3LM's own; None: learning_rate
    # algorithms whose continual pretraining predicts token i from position i - 1 (DiffuLLaMA,
    # Dream): the AR head's alignment is kept, so a brief run writes words; checkpoints record it
    right_shift_logits: tuple[Algo, ...] = ()

    def __post_init__(self) -> None:
        _positive(self, "max_length", "batch_size", "gradient_accumulation_steps")
        if self.block_size <= 0 or self.max_length % self.block_size:
            valid = [d for d in range(1, self.max_length + 1) if self.max_length % d == 0]
            raise ValueError(
                f"pretrain.block_size={self.block_size} must divide "
                f"pretrain.max_length={self.max_length}; try one of {valid}"
            )
        if unknown := sorted(set(self.right_shift_logits) - set(ALGOS)):
            raise ValueError(
                f"pretrain.right_shift_logits={self.right_shift_logits!r}: {unknown} are not "
                "algorithms; use a tuple of 'mdlm' and/or 'bd3lm'"
            )


@dataclass(frozen=True)
class Sampling(Section):
    """Chapters 4 and 6: sampling the pretrained models (temperature also for chapter 8)."""

    key: ClassVar[str] = "sampling"
    steps: int  # denoising steps
    max_new_tokens: int
    temperature: float
    # MDLM sampling in semi-autoregressive blocks (LLaDA); None = one block of max_new_tokens
    block_size: int | None = None

    def __post_init__(self) -> None:
        _positive(self, "steps", "max_new_tokens")
        bs = self.block_size
        if bs is not None and (bs <= 0 or self.max_new_tokens % bs):
            raise ValueError(
                f"sampling.block_size={bs} must be None or a positive divisor of "
                f"sampling.max_new_tokens={self.max_new_tokens}"
            )


@dataclass(frozen=True)
class SFT(Section):
    """Chapter 7 (and the Tiny-A2D recipe, chapter 9): SFT (``a2dkit.cli.<algo>.sft``) and the
    exact-match evaluation of the SFT models. ``steps`` = -1: ``num_train_epochs``."""

    key: ClassVar[str] = "sft"
    dataset_args: str
    max_length: int  # MDLM's; BD3LM SFT uses min(max_length, 512) (Tiny-A2D)
    steps: int
    learning_rate: float
    num_train_epochs: float
    batch_size: int  # per device
    gradient_accumulation_steps: int
    # BD3LM SFT in blocks of this size; the SFT models are sampled, evaluated (lm-eval) and
    # GRPO-trained in these blocks too (MDLM: semi-autoregressive ones)
    block_size: int
    num_eval_examples: int  # exact-match prompts before/after SFT
    max_new_tokens: int  # answer length and denoising steps of the exact-match eval
    sampler_steps: int
    min_gain: float  # exact-match gain SFT must give over the converted model (chapter 7)
    # MDLM SFT rows EOS-filled to max_length (``--pad_to_max_length``): a set of short rows
    # then covers every position of the sampling canvas (prompt + max_new_tokens)
    pad_to_max_length: bool = False

    def __post_init__(self) -> None:
        _positive(self, "max_length", "batch_size", "gradient_accumulation_steps", "block_size")
        if self.max_new_tokens % self.block_size:
            raise ValueError(
                f"sft.block_size={self.block_size} must divide "
                f"sft.max_new_tokens={self.max_new_tokens}"
            )


@dataclass(frozen=True)
class GRPO(Section):
    """Chapter 10: diffu-GRPO (``a2dkit.cli.<algo>.grpo``) from a short SFT of chapter 7."""

    key: ClassVar[str] = "grpo"
    dataset: str  # --dataset of a2dkit.cli.<algo>.grpo (a2dkit.grpo.tasks.TASKS)
    rewards: tuple[str, ...]  # a2dkit.grpo.rewards.REWARDS
    sft_steps: int  # SFT steps of the start model (-1: the scale's whole SFT)
    sft_learning_rate: float  # the start model's SFT learning rate
    steps: int
    learning_rate: float
    batch_size: int  # completions per device and step (num_generations per prompt)
    num_generations: int
    max_new_tokens: int  # --max_completion_length (and --steps: one token per step)


@dataclass(frozen=True)
class Eval(Section):
    """Chapter 8: lm-eval tasks and the Monte-Carlo likelihood bound (also chapters 3, 5)."""

    key: ClassVar[str] = "eval"
    tasks: tuple[str, ...]
    limit: int | None  # lm-eval --limit (None = whole task)
    elbo_samples: int  # Monte-Carlo samples of the likelihood bound


@dataclass(frozen=True)
class Retention(Section):
    """Chapter 11: chat SFT on the source's own greedy answers (``a2dkit/self-chat``), one run
    per AR-preserving recipe at one budget (steps x batch x length), each measured against the
    source on held-out prompts (``bench/bench_retention.py``)."""

    key: ClassVar[str] = "retention"
    self_chat_train: int  # prompts the source answers for training (a2dkit.data.self_chat)
    self_chat_test: int  # held-out prompts (never trained on)
    self_chat_max_new_tokens: int  # the source's answer length
    max_length: int
    steps: int
    batch_size: int
    learning_rate: float
    block_size: int  # BD3LM's (and MDLM's semi-autoregressive sampling block)
    max_new_tokens: int  # answer length when comparing with the source
    num_prompts: int  # held-out prompts compared
    humaneval_limit: int  # HumanEval problems (0: skip)
    elbo_samples: int  # Monte-Carlo samples per held-out answer
    recipes: tuple[str, ...]  # the table's rows (a2dkit.tutorial.recipes.RECIPES)
    chapter_recipes: tuple[str, ...]  # the ones chapter 11 trains itself
    chapter_algos: tuple[Algo, ...] = ("mdlm", "bd3lm")  # and for which algorithms

    def __post_init__(self) -> None:
        _positive(self, "max_length", "steps", "batch_size", "block_size", "max_new_tokens")
        if not self.chapter_algos or not set(self.chapter_algos) <= set(get_args(Algo)):
            raise ValueError(f"retention.chapter_algos={self.chapter_algos!r} must be a non-empty "
                             f"subset of {get_args(Algo)}")  # fmt: skip
        if not self.chapter_recipes or not set(self.chapter_recipes) <= set(self.recipes):
            raise ValueError(f"retention.chapter_recipes={self.chapter_recipes!r} must be a "
                             f"non-empty subset of retention.recipes={self.recipes!r}")  # fmt: skip
        if "bd3lm" not in self.chapter_algos:  # the side by side and the viewer show BD3LM
            raise ValueError(f"retention.chapter_algos={self.chapter_algos!r} must include 'bd3lm'")
        if self.max_length % self.block_size:
            raise ValueError(f"retention.block_size={self.block_size} must divide "
                             f"retention.max_length={self.max_length}")  # fmt: skip


@dataclass(frozen=True)
class Hardware(Section):
    """Where the scale's real runs go: nodes, GPUs, accelerate config and dtype."""

    key: ClassVar[str] = "hardware"
    num_nodes: int
    gpus_per_node: int
    accelerate_config: str  # a2dkit/accelerate_configs/<name>.yaml
    dtype: str  # "float32" on CPU, "bfloat16" on GPU
    use_cpu: bool
