"""TRL's completion convention, shared by training and held-out evaluation: a completion ends
after its first EOS, where EOS is the tokenizer's or any end token the model's generation config
declares (e.g. ChatML's ``<|im_end|>``). Tokens after it are never rewarded nor trained.
References: d1 arXiv 2504.12216 (diffu-GRPO); GRPO arXiv 2402.03300.
"""

from __future__ import annotations

from typing import Any

__all__ = ["eos_token_ids", "cut_after_eos"]


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """The ids that end a completion, as ``trl.GRPOTrainer`` collects them."""
    declared = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    ids = [] if declared is None else [declared] if isinstance(declared, int) else list(declared)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids = [tokenizer.eos_token_id, *ids]
    return ids


def cut_after_eos(row: list[int], eos_ids) -> list[int]:
    """Keep tokens up to and including the first EOS (TRL's completion convention)."""
    for k, tok in enumerate(row):
        if tok in eos_ids:
            return row[: k + 1]
    return row
