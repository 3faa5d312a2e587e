"""The scale table: every size a notebook or recipe needs, for ``smoke``, ``warmup`` and ``full``.

``smoke`` = tiny offline models on CPU (seconds per notebook); ``warmup`` = the dLLM A2D README's
tiny-shakespeare / alpaca commands on Qwen/Qwen3-0.6B (1 GPU); ``full`` = the Tiny-A2D SFT recipe.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM examples/a2d/README.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "TINY",
    "TINY_A2D_MIXTURE",
    "ScaleConfig",
    "SCALES",
    "get_scale",
    "load_source_model",
    "load_diffusion_model",
    "training_log",
]

# source_model value meaning "the offline tiny AR Qwen3 of a2dkit.tiny"
TINY = "a2dkit/tiny-ar-qwen3"
# the Tiny-A2D SFT mixture (dLLM README, "Tiny-A2D": Qwen3-0.6B-diffusion-{mdlm,bd3lm}-v0.1)
TINY_A2D_MIXTURE = (
    "allenai/tulu-3-sft-mixture+HuggingFaceTB/smoltalk"
    "+OpenCoder-LLM/opc-sft-stage1[lang:python]+OpenCoder-LLM/opc-sft-stage2[lang:python]"
)
Algo = Literal["mdlm", "bd3lm"]


@dataclass(frozen=True)
class ScaleConfig:
    """All sizes of one scale. ``max_steps = -1`` means "train for ``num_train_epochs``" (HF)."""

    name: str
    description: str
    # --- source AR model (notebook 01) ---
    source_model: str  # TINY or a Hub id
    tiny_hidden_size: int  # tiny AR Qwen3 only (smoke)
    tiny_num_layers: int
    tiny_vocab_size: int
    ar_pretrain_steps: int  # AR next-token pretraining of the tiny model
    ar_seq_len: int
    ar_batch_size: int
    # --- continual pretraining on tiny-shakespeare (notebooks 03, 05) ---
    pt_dataset_args: str
    text_field: str
    max_length: int  # packed sequence length L
    mdlm_steps: int
    bd3lm_steps: int
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

    def __post_init__(self) -> None:
        if self.max_length % self.block_size:
            valid = [d for d in range(1, self.max_length + 1) if self.max_length % d == 0]
            raise ValueError(
                f"block_size={self.block_size} must divide max_length={self.max_length}; "
                f"try one of {valid}"
            )
        if self.max_new_tokens % self.block_size:
            raise ValueError(
                f"block_size={self.block_size} must divide max_new_tokens={self.max_new_tokens}"
            )
        if self.sampler_steps <= 0 or self.batch_size <= 0:
            raise ValueError(
                f"sampler_steps={self.sampler_steps} and batch_size={self.batch_size} must be > 0"
            )

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
        """The source AR checkpoint: the tiny model's cache dir (smoke) or a Hub id."""
        return self.tiny_ar_args().output_dir if self.is_tiny else self.source_model

    def output_dir(self, *parts: str) -> Path:
        """Where notebooks write runs: ``$A2DKIT_RUNS/<scale>/<parts>`` (default: the cache dir)."""
        from a2dkit import corpus

        root = Path(os.environ.get("A2DKIT_RUNS") or corpus.cache_dir() / "runs")
        return root.joinpath(self.name, *parts)

    def tiny_ar_args(self, output_dir: str | Path | None = None):
        """``a2dkit.tiny.TinyARArguments`` of this scale's tiny AR model (cached by default).

        Args:
            output_dir: where to save it; default ``<a2dkit cache>/tiny-ar-qwen3-<dims>``.
        """
        from a2dkit import corpus, tiny

        if output_dir is None:
            dims = f"h{self.tiny_hidden_size}-l{self.tiny_num_layers}-v{self.tiny_vocab_size}"
            output_dir = corpus.cache_dir() / f"tiny-ar-qwen3-{dims}-s{self.ar_pretrain_steps}"
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
        from a2dkit.config import BD3LMConfig, MDLMConfig

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
            learning_rate=self.sft_learning_rate if sft else self.learning_rate,
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
            kwargs["block_size"] = self.block_size
        return classes[algo](**{**kwargs, **overrides})

    def cli_flags(self, algo: Algo, *, sft: bool = False) -> list[str]:
        """The dLLM-style flags of ``a2dkit.cli.<algo>.<pt|sft>`` for this scale's real run."""
        dataset = self.sft_dataset_args if sft else self.pt_dataset_args
        flags = ["--dataset_args", dataset, "--max_length", str(self._length(algo, sft))]
        if not sft:
            flags += ["--text_field", self.text_field, "--insert_eos", "False"]
        steps = (
            self.sft_steps if sft else {"mdlm": self.mdlm_steps, "bd3lm": self.bd3lm_steps}[algo]
        )
        epochs = self.sft_num_train_epochs if sft else self.num_train_epochs
        flags += ["--max_steps", str(steps)] if steps > 0 else ["--num_train_epochs", f"{epochs:g}"]
        lr, batch = self.sft_learning_rate if sft else self.learning_rate, str(self.batch_size)
        flags += ["--learning_rate", f"{lr:g}", "--per_device_train_batch_size", batch]
        flags += ["--per_device_eval_batch_size", batch]
        flags += ["--gradient_accumulation_steps", str(self.gradient_accumulation_steps)]
        return flags + (["--block_size", str(self.block_size)] if algo == "bd3lm" else [])

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


_SMOKE = ScaleConfig(
    name="smoke",
    description="tiny offline AR Qwen3 on CPU: every notebook in about a minute",
    source_model=TINY,
    tiny_hidden_size=64,
    tiny_num_layers=2,
    tiny_vocab_size=500,
    ar_pretrain_steps=300,
    ar_seq_len=64,
    ar_batch_size=16,
    pt_dataset_args="Trelis/tiny-shakespeare",
    text_field="Text",
    max_length=64,
    mdlm_steps=60,
    bd3lm_steps=60,
    num_train_epochs=1,
    batch_size=16,
    learning_rate=1e-3,
    block_size=16,
    sampler_steps=32,
    max_new_tokens=32,
    temperature=0.0,
    # the one-digit lookups: the 160k-parameter model learns them in ~1000 steps (exact match
    # 0 -> ~0.7-0.9); the multi-token tasks (add, copy, reverse, sort) need far longer at this size
    sft_dataset_args="a2dkit/synthetic[train:2000,test:32,tasks:first|last]",
    sft_max_length=64,
    sft_steps=1200,
    sft_learning_rate=2e-3,
    sft_num_train_epochs=1,
    gradient_accumulation_steps=1,
    num_eval_examples=16,
    eval_tasks=("a2dkit_synthetic",),
    eval_limit=8,
    elbo_samples=8,
    num_nodes=1,
    gpus_per_node=0,
    accelerate_config="cpu",
    dtype="float32",
    use_cpu=True,
)

# dLLM A2D README "Warmup": tiny-shakespeare pt / alpaca SFT of Qwen/Qwen3-0.6B
_WARMUP = _SMOKE.replace(
    name="warmup",
    description="Qwen/Qwen3-0.6B, the dLLM README warmup commands, 1 GPU",
    source_model="Qwen/Qwen3-0.6B",
    max_length=128,
    mdlm_steps=-1,
    bd3lm_steps=-1,
    num_train_epochs=20,
    learning_rate=1e-4,
    block_size=32,
    sampler_steps=128,
    max_new_tokens=128,
    temperature=0.7,
    sft_dataset_args="tatsu-lab/alpaca[test:100]",
    sft_max_length=512,
    sft_steps=-1,
    sft_learning_rate=1e-4,
    sft_num_train_epochs=20,
    num_eval_examples=100,
    eval_tasks=("gsm8k_cot",),
    eval_limit=100,
    elbo_samples=32,
    gpus_per_node=1,
    accelerate_config="ddp",
    dtype="bfloat16",
    use_cpu=False,
)

# dLLM A2D README "Tiny-A2D": 8 nodes x 8 GPUs, zero2, 10 epochs, global batch 2048
_FULL = _WARMUP.replace(
    name="full",
    description="the Tiny-A2D SFT recipe: Qwen/Qwen3-0.6B, 64 GPUs (prepared, launched via Slurm)",
    max_new_tokens=256,
    sampler_steps=256,
    temperature=0.0,
    sft_dataset_args=TINY_A2D_MIXTURE,
    sft_max_length=1024,
    sft_num_train_epochs=10,
    gradient_accumulation_steps=2,
    num_eval_examples=200,
    eval_tasks=("gsm8k_cot", "bbh", "minerva_math", "mmlu", "mmlu_pro", "hellaswag"),
    eval_limit=None,
    num_nodes=8,
    gpus_per_node=8,
    accelerate_config="zero2",
)

SCALES: dict[str, ScaleConfig] = {s.name: s for s in (_SMOKE, _WARMUP, _FULL)}


def get_scale(name: str) -> ScaleConfig:
    """The ``ScaleConfig`` called ``name`` (case-insensitive).

    Raises:
        ValueError: unknown name; the message lists the valid ones.
    """
    if not isinstance(name, str):
        raise TypeError(f"scale name must be a str, got {type(name).__name__}: {name!r}")
    key = name.strip().lower()
    if key not in SCALES:
        raise ValueError(f"unknown scale {name!r}; valid scales: {list(SCALES)}")
    return SCALES[key]


def load_source_model(cfg: ScaleConfig, *, attn_implementation: str = "sdpa"):
    """The scale's source AR model and tokenizer, in eval mode.

    ``smoke``: the tiny AR Qwen3, pretrained once and cached (``a2dkit.tiny.build_tiny_ar``);
    otherwise ``AutoModelForCausalLM.from_pretrained(cfg.source_model)`` (needs the Hub or cache).

    Returns:
        (model, tokenizer, info) where info is the tiny pretraining summary (or {}).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    info: dict[str, Any] = {}
    if cfg.is_tiny:
        from a2dkit import tiny

        info = tiny.build_tiny_ar(cfg.tiny_ar_args())  # pretrains once, then reuses the cache
    path = cfg.source_name_or_path()
    model = AutoModelForCausalLM.from_pretrained(
        path, dtype=getattr(torch, cfg.dtype), attn_implementation=attn_implementation
    )
    return model.to(cfg.device).eval(), AutoTokenizer.from_pretrained(path), info


def load_diffusion_model(cfg: ScaleConfig, algo: Algo, *, sft: bool = False):
    """The scale's trained A2D model: ``<output_dir>/<algo>-<pt|sft>/checkpoint-final``.

    Trained once with ``a2dkit.cli.<algo>.<pt|sft>`` (chapters 3, 5 and 7 write the same path),
    then loaded from disk; SFT starts from the source model, as in the Tiny-A2D recipe.

    Returns:
        (model, tokenizer) in eval mode on ``cfg.device``.
    """
    import importlib

    import torch
    from transformers import AutoModelForMaskedLM, AutoTokenizer

    out = cfg.output_dir(f"{algo}-{'sft' if sft else 'pt'}")
    final, stamp = out / "checkpoint-final", out / "a2dkit_run.json"
    flags = ["--model_name_or_path", cfg.source_name_or_path(), "--output_dir", str(out)]
    flags += cfg.cli_flags(algo, sft=sft) + ["--use_cpu", str(cfg.use_cpu)]
    flags += ["--eval_strategy", "no", "--save_strategy", "no", "--report_to", "none"]
    flags += ["--disable_tqdm", "True", "--bf16", str(cfg.dtype == "bfloat16")]
    flags += ["--logging_steps", "0.05"]  # 20 points of loss curve (``training_log``)
    key = json.dumps({"flags": flags, "code": _training_code_digest()})
    if not (final / "config.json").exists() or not stamp.exists() or stamp.read_text() != key:
        shutil.rmtree(out, ignore_errors=True)  # trained with other flags or code: retrain
        load_source_model(cfg)  # builds the tiny source model at smoke
        module = importlib.import_module(f"a2dkit.cli.{algo}.{'sft' if sft else 'pt'}")
        if module.cli(flags) != 0:
            raise RuntimeError(f"training {algo} ({'sft' if sft else 'pt'}) into {out} failed")
        stamp.write_text(key)  # written last: marks a finished run of exactly these flags
    model = AutoModelForMaskedLM.from_pretrained(final, dtype=getattr(torch, cfg.dtype))
    return model.to(cfg.device).eval(), AutoTokenizer.from_pretrained(final)


def _training_code_digest() -> str:
    """sha256 of the modules a training run depends on (a cached run is stale when they change)."""
    names = ("cli/train", "trainers", "resumable", "checkpoints", "losses", "masking")
    names += ("preprocess", "data", "synthetic")
    root = Path(__file__).parent
    return hashlib.sha256(b"".join((root / f"{n}.py").read_bytes() for n in names)).hexdigest()


def training_log(cfg: ScaleConfig, algo: Algo, *, sft: bool = False) -> list[dict[str, float]]:
    """The training-loss records ``{"step", "loss", ...}`` of ``load_diffusion_model``'s run.

    Raises:
        FileNotFoundError: that run has not been trained yet (call ``load_diffusion_model``).
    """
    state = cfg.output_dir(f"{algo}-{'sft' if sft else 'pt'}", "checkpoint-final")
    state = state / "trainer_state.json"
    if not state.is_file():
        raise FileNotFoundError(f"{state} not found: train it with load_diffusion_model first")
    return [r for r in json.loads(state.read_text())["log_history"] if "loss" in r]
