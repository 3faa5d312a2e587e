"""AR -> diffusion conversion in memory: detect, convert (weights unchanged, mask token added),
and the identity gate. On disk: ``a2dkit.convert.on_disk``.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM A2D convert.py (same flags).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from transformers import AutoConfig, PretrainedConfig, PreTrainedModel, PreTrainedTokenizerBase

from a2dkit.models.conventions import MASK_TOKEN
from a2dkit.models.families import (
    UnsupportedModelError,
    a2d_model_type,
    refusal_message,
    window_note,
)
from a2dkit.models.loading import load_config
from a2dkit.models.registry import refusal_reasons, to_a2d_model


@dataclass
class Verdict:
    """What :func:`detect` found out from a config alone."""

    model_type: str
    supported: bool
    family: str | None = None
    target_model_type: str | None = None
    actions: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def raise_if_unsupported(self) -> None:
        if not self.supported:
            raise UnsupportedModelError(refusal_message(self.model_type, self.reasons))

    def __str__(self) -> str:
        head = f"model_type={self.model_type!r}: " + ("supported" if self.supported else "REFUSED")
        lines = [f"  - will {a}" for a in self.actions] + [f"  - reason: {r}" for r in self.reasons]
        return "\n".join([head, *lines])


def detect(config_or_path, trust_remote_code: bool = False) -> Verdict:
    """Read only the config (no weights, no GPU) and say whether and how it converts.

    Args:
        config_or_path: a ``PretrainedConfig``, a config dict, a local directory or a Hub id.
    """
    if isinstance(config_or_path, dict):
        config = AutoConfig.for_model(**config_or_path)
    elif isinstance(config_or_path, PretrainedConfig):
        config = config_or_path
    else:
        config = load_config(config_or_path, trust_remote_code)[1]
    reasons = refusal_reasons(config)
    verdict = Verdict(model_type=config.model_type, supported=not reasons, reasons=reasons)
    if verdict.supported:
        verdict.family = config.model_type
        verdict.target_model_type = a2d_model_type(config.model_type)
        verdict.actions = [
            f"relabel model_type {config.model_type!r} -> {verdict.target_model_type!r}",
            "set is_causal=False: bidirectional attention (MDLM) or staircase masks (BD3LM)",
            f"add the mask token {MASK_TOKEN} (reuse a spare embedding row if the vocab has one, "
            "else resize the embeddings)",
            "keep every weight bit-identical; check the causal identity gate before saving",
            "run the attention contract (float64) on a tiny random instance of the family first",
        ]
        if window_note(config) is not None:
            verdict.actions.append(window_note(config))
    return verdict


def add_mask_token(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, mask_token=MASK_TOKEN
):
    """Add ``mask_token`` to the tokenizer; resize the embeddings only if no spare row exists.

    Returns:
        (mask_token_id, reused_spare_row)
    """
    if tokenizer.mask_token_id is None:
        tokenizer.add_special_tokens({"mask_token": mask_token})
    mask_id = tokenizer.mask_token_id
    rows = model.get_input_embeddings().weight.shape[0]
    reused = mask_id < rows
    if not reused:  # never produce an id outside the embedding matrix
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
        init_new_rows(model, rows)
    model.config.mask_token_id = mask_id
    return mask_id, reused


def init_new_rows(model: PreTrainedModel, old_rows: int) -> None:
    """Rows ``old_rows:`` of the input (and untied output) embeddings = the mean of the old rows.

    Deterministic, unlike the random rows ``resize_token_embeddings`` draws (the expected value of
    its ``mean_resizing``): converting the same source twice gives the same weights, so a run
    converted in memory equals one started from a converted checkpoint.
    """
    layers = (model.get_input_embeddings(), model.get_output_embeddings())
    weights = {id(m.weight): m.weight for m in layers if m is not None}  # tied: one tensor
    with torch.no_grad():
        for w in weights.values():
            w[old_rows:] = w[:old_rows].mean(0)


def check_tokenizer(tokenizer: PreTrainedTokenizerBase) -> None:
    """Diffusion sampling and SFT stop on EOS: a tokenizer without one is refused."""
    if tokenizer.eos_token_id is None:
        raise ValueError(
            f"tokenizer {type(tokenizer).__name__} has no eos_token; set one "
            "(e.g. tokenizer.eos_token = '<|endoftext|>') before converting"
        )


def to_diffusion(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, mask_token=MASK_TOKEN):
    """Convert an in-memory AR model into its A2D counterpart (weights copied, never changed).

    Returns:
        (a2d_model, tokenizer, info) where info holds ``mask_token_id`` and ``reused_spare_row``.
    """
    detect(model.config).raise_if_unsupported()
    check_tokenizer(tokenizer)
    a2d = to_a2d_model(model)
    mask_id, reused = add_mask_token(a2d, tokenizer, mask_token)
    a2d.eval()
    family = model.config.model_type
    return a2d, tokenizer, {"mask_token_id": mask_id, "reused_spare_row": reused, "family": family}


@torch.no_grad()
def identity_gate(
    source: PreTrainedModel, converted: PreTrainedModel, input_ids: torch.Tensor, atol: float = 1e-5
) -> dict:
    """Driven with a causal mask, the converted model must reproduce the source logits (fp32).

    Args:
        input_ids: (B, L) long, ids inside the source vocabulary.
    """
    seq_len = input_ids.shape[1]
    causal = torch.tril(torch.ones(seq_len, seq_len, dtype=torch.bool))[None, None]  # (1, 1, L, L)
    dtypes = source.dtype, converted.dtype
    ref = source.float()(input_ids).logits  # (B, L, V)
    out = converted.float()(input_ids, attention_mask=causal.expand(len(input_ids), -1, -1, -1))
    source.to(dtypes[0]), converted.to(dtypes[1])  # the gate runs in fp32, the models keep theirs
    vocab = ref.shape[-1]
    diff = (out.logits[..., :vocab] - ref).abs().max().item()
    return {
        "max_abs_diff": diff,
        "atol": atol,
        "passed": bool(diff <= atol),
        "batch_shape": list(input_ids.shape),
    }


def gate_batch(vocab_size: int, batch: int = 2, seq_len: int = 16, seed: int = 0) -> torch.Tensor:
    """The fixed batch the identity gate runs on: (batch, seq_len) ids drawn with a fixed seed."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, vocab_size, (batch, seq_len), generator=gen)
