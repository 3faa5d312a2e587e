"""Chapter 11's runs: the AR-preserving recipes as flags on one chat SFT of the scale's source
model, on its own greedy answers (``a2dkit/self-chat``), every row at the same budget (steps x
batch x length of ``cfg.retention``), trained once with the kit's CLIs and cached.

Every row reads the logits right-shifted (``--right_shift_logits True``): a fresh conversion's
head is its source's next-token head, so the model starts where the source is. ``plain`` is the
MDLM / BD3LM SFT loss alone; ``best`` combines the recipes that compose best at small budgets.
References: see ``RECIPES`` (one paper per recipe).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from a2dkit.data.self_chat import INFO, SelfChatSettings, build_self_chat, self_chat_dir
from a2dkit.data.self_chat import source_name as self_chat_source
from a2dkit.training.checkpoints import FINAL
from a2dkit.tutorial.runs import load_diffusion_model, load_source_model, run_dir
from a2dkit.tutorial.scale_config import Algo, ScaleConfig

__all__ = ["Recipe", "RECIPES", "recipe_flags", "self_chat_data", "table_rows", "train_recipe",
           "train_seconds"]  # fmt: skip


@dataclass(frozen=True)
class Recipe:
    """A row of the retention table: its training flags (given the run's steps) and paper."""

    flags: tuple[str, ...]
    reference: str
    algos: tuple[Algo, ...] = ("mdlm", "bd3lm")


RECIPES: dict[str, Recipe] = {
    "plain": Recipe((), "MDLM arXiv 2406.07524 / BD3LM arXiv 2503.09573 (the SFT loss alone)"),
    "joint-ar": Recipe(("--ar_loss_weight", "1.0"), "Nemotron-Labs-Diffusion; I-DLM 2604.11035"),
    "curriculum": Recipe(("--block_size_schedule", "grow"), "NBDiff, Uno (block 1 -> B)",
                         ("bd3lm",)),  # fmt: skip
    "anneal": Recipe(("--attention_anneal_steps", "{half}"), "DiffuLLaMA arXiv 2410.17891"),
    "distill": Recipe(("--distill_weight", "1.0"), "OPDLM arXiv 2606.06712 (AR teacher)"),
    "position": Recipe(("--position_mask_strength", "1.0"), "Efficient-DLM arXiv 2512.14067"),
    "complementary": Recipe(("--complementary_masking", "True"),
                            "LLaDA2.0 2512.15745; Fast-dLLM v2 2509.26328"),  # fmt: skip
    "layer-lr": Recipe(("--lr_multipliers", "mlp=0.3,embed_tokens=0.3"), "RND1 (2025)"),
    # MDLM trained as it samples (semi-AR blocks of the decode's size), growing from 1 token
    "semi-ar": Recipe(("--semi_ar_block_size", "{block}", "--semi_ar_block_schedule", "grow"),
                      "LLaDA 2502.09992 (semi-AR blocks), grown as NBDiff", ("mdlm",)),
    # the one-pass drafter: joint AR loss and every block trained fully masked (one-step drafts)
    "tidar": Recipe(("--ar_loss_weight", "1.0", "--full_mask_prob", "1.0"),
                    "TiDAR arXiv 2511.08923 (AR + full-mask blocks)", ("bd3lm",)),
}  # fmt: skip
# best: the recipes that helped alone at laptop (book/results.md, BD3LM rows): the joint AR loss
# (chrF; an AR mode for the self speculative verifier), complementary masking (answer gap),
# layer-wise rates (chrF). Distillation and the block curriculum did not, and are left out.
_BEST = ("joint-ar", "complementary", "layer-lr")
RECIPES["best"] = Recipe(tuple(flag for name in _BEST for flag in RECIPES[name].flags),
                         " + ".join(_BEST))  # fmt: skip


def table_rows(algos: Sequence[Algo], recipes: Sequence[str]) -> list[tuple[Algo, str]]:
    """The table's (algo, recipe) rows: every recipe for each of ``algos`` it is for."""
    return [(algo, name) for algo in algos for name in recipes if algo in RECIPES[name].algos]


def recipe_flags(cfg: ScaleConfig, algo: Algo, recipe: str) -> list[str]:
    """The training flags a recipe adds to the scale's chat SFT (after the shared ones)."""
    if recipe not in RECIPES:
        raise ValueError(f"recipe={recipe!r} is not valid; choose one of {tuple(RECIPES)}")
    if algo not in RECIPES[recipe].algos:
        raise ValueError(f"recipe {recipe!r} is for {RECIPES[recipe].algos}, not {algo!r}")
    half, block = str(max(cfg.retention.steps // 2, 1)), str(cfg.retention.block_size)
    flags = [f.format(half=half, block=block) for f in RECIPES[recipe].flags]
    return ["--right_shift_logits", "True", *flags]


def self_chat_data(cfg: ScaleConfig) -> Path:
    """The scale's self-chat set (the source's own greedy answers), built once into the cache."""
    r = cfg.retention
    model = tokenizer = None
    if cfg.is_tiny:  # the tiny source is built (once) before its path exists
        model, tokenizer, _ = load_source_model(cfg)
    name = cfg.source_name_or_path() if cfg.is_tiny else cfg.source.model
    settings = SelfChatSettings(self_chat_source(name), r.self_chat_train, r.self_chat_test,
                                0, r.self_chat_max_new_tokens, cfg.hardware.dtype)  # fmt: skip
    out = self_chat_dir(settings)
    if not (out / INFO).is_file():
        if model is None:
            model, tokenizer, _ = load_source_model(cfg)
        build_self_chat(model, tokenizer, settings)
    return out


def _sft_config(cfg: ScaleConfig) -> ScaleConfig:
    r = cfg.retention
    data = f"a2dkit/self-chat[path:{self_chat_data(cfg)},train:{r.self_chat_train},truncated:trim]"
    return cfg.replace(sft=dict(
        dataset_args=data, max_length=r.max_length, steps=r.steps, learning_rate=r.learning_rate,
        batch_size=r.batch_size, gradient_accumulation_steps=1, block_size=r.block_size,
        pad_to_max_length=False,
    ))  # fmt: skip


def train_recipe(cfg: ScaleConfig, algo: Algo, recipe: str):
    """(model, tokenizer) of one row, trained once into ``<algo>-sft-retention-<recipe>``."""
    flags = recipe_flags(cfg, algo, recipe)
    return load_diffusion_model(_sft_config(cfg), algo, sft=True, tag=f"retention-{recipe}",
                                extra_flags=flags)  # fmt: skip


def train_seconds(cfg: ScaleConfig, algo: Algo, recipe: str) -> float | None:
    """The row's training time (the Trainer's ``train_runtime``), once it is trained."""
    state = run_dir(cfg, algo, sft=True, tag=f"retention-{recipe}") / FINAL / "trainer_state.json"
    if not state.is_file():
        return None
    runtimes = [r["train_runtime"] for r in json.loads(state.read_text())["log_history"]
                if "train_runtime" in r]  # fmt: skip
    return runtimes[-1] if runtimes else None
