"""How much of its source a converted model kept, in likelihood: the source AR model's exact NLL
per target token beside the A2D model's ELBO bound per token, on the same held-out text.

The A2D number is -ELBO / tokens, an upper bound on the model's NLL (MDLM arXiv 2406.07524 §3;
BD3LM arXiv 2503.09573 §3). At block size 1 a right-shifted BD3LM model is autoregressive
(BD3LM §3: L' = 1 is AR), so a freshly converted source scores exactly its source's NLL there:
the gap is what the conversion and its training lost, in nats per token.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from a2dkit.diffusion.attention import padding_position_ids
from a2dkit.eval.elbo import bd3lm_elbo, mdlm_elbo

__all__ = ["LikelihoodGap", "source_nll", "likelihood_gap"]


@dataclass(frozen=True)
class LikelihoodGap:
    """Nats per target token: the source's exact NLL and the A2D model's ELBO bound."""

    source_nll: float
    a2d_nll_bound: float  # -ELBO / tokens (Monte-Carlo mean)
    a2d_stderr: float  # its Monte-Carlo standard error, per token
    tokens: int

    @property
    def gap(self) -> float:
        """What the A2D model lost against its source, in nats per token (positive = worse)."""
        return self.a2d_nll_bound - self.source_nll


def _targets(input_ids: torch.Tensor, target_mask, prompt_len) -> torch.Tensor:
    """(B, L) bool target mask from exactly one of ``target_mask`` and ``prompt_len``."""
    if (target_mask is None) == (prompt_len is None):
        raise ValueError("pass exactly one of target_mask (bool, like input_ids) or prompt_len")
    if target_mask is not None:
        return torch.as_tensor(target_mask, dtype=torch.bool).reshape(input_ids.shape)
    lens = torch.as_tensor(prompt_len).reshape(-1, 1)  # (B, 1) or (1, 1)
    return (torch.arange(input_ids.shape[1])[None] >= lens).expand_as(input_ids)  # (B, L)


@torch.no_grad()
def source_nll(
    model, input_ids: torch.Tensor, target_mask: torch.Tensor, attention_mask=None
) -> tuple[float, int]:
    """(summed exact NLL of the target tokens, their number) under a causal LM, in float64.

    Token i is scored with the logits of position i - 1, so no row's first token is a target.

    Args:
        input_ids: (B, L) long; target_mask: (B, L) bool; attention_mask: (B, L), 0 = left pad.
    """
    valid = torch.ones_like(target_mask) if attention_mask is None else attention_mask.bool()
    first = valid.int().argmax(dim=1, keepdim=True)  # (B, 1) first real column of each row
    if (target_mask & valid).gather(1, first).any():
        raise ValueError("a row's first token has no context to be scored from; start the "
                         "targets at prompt_len >= 1 (e.g. after BOS)")  # fmt: skip
    out = model(input_ids=input_ids, attention_mask=valid.long(),
                position_ids=padding_position_ids(valid))  # fmt: skip
    logp = out.logits[:, :-1].double().log_softmax(-1)  # (B, L-1, V): predicts tokens 1..L-1
    token = logp.gather(-1, input_ids[:, 1:, None]).squeeze(-1)  # (B, L-1)
    scored = target_mask[:, 1:] & valid[:, 1:]
    return -token[scored].sum().item(), int(scored.sum())


def likelihood_gap(
    source,
    a2d,
    input_ids: torch.Tensor,
    *,
    algo: str,
    block_size: int | None = None,
    target_mask: torch.Tensor | None = None,
    prompt_len: int | list[int] | None = None,
    attention_mask: torch.Tensor | None = None,
    **elbo_options,
) -> LikelihoodGap:
    """The source's NLL and the A2D model's ELBO bound per target token, on the same tokens.

    Args:
        source: the AR model the A2D model was converted from (same tokenizer).
        a2d: the converted (and maybe trained) model.
        input_ids: (B, L) long, ids inside the source's vocabulary.
        algo: "mdlm" (``mdlm_elbo``) or "bd3lm" (``bd3lm_elbo`` at ``block_size``).
        elbo_options: passed on (``mc_num``, ``estimator``, ``right_shift_logits``, ...).
    """
    if algo not in ("mdlm", "bd3lm"):
        raise ValueError(f"algo={algo!r} is not valid; choose one of ('mdlm', 'bd3lm')")
    if (algo == "bd3lm") != (block_size is not None):
        raise ValueError(f"block_size={block_size!r}: BD3LM needs one, MDLM takes none")
    ids = torch.as_tensor(input_ids).reshape(-1, torch.as_tensor(input_ids).shape[-1])
    vocab = source.get_input_embeddings().weight.shape[0]
    if ids.max().item() >= vocab:
        raise ValueError(f"input id {ids.max().item()} is outside the source vocabulary ({vocab})")
    targets = _targets(ids, target_mask, prompt_len)
    total, tokens = source_nll(source, ids, targets, attention_mask)
    if tokens == 0:
        raise ValueError("no target tokens to score")
    kwargs = dict(target_mask=targets, attention_mask=attention_mask, **elbo_options)
    if algo == "bd3lm":
        result = bd3lm_elbo(a2d, ids, block_size=block_size, **kwargs)
    else:
        result = mdlm_elbo(a2d, ids, **kwargs)
    bound = -result.mean.sum().item() / tokens
    stderr = result.stderr.nan_to_num(0.0).pow(2).sum().sqrt().item() / tokens
    return LikelihoodGap(total / tokens, bound, stderr, tokens)
