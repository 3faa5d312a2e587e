"""Monte-Carlo ELBO log-likelihoods log p(target | prompt) for MDLM and BD3LM models.

lm-eval runs them through ``a2dkit.eval.harness`` (``python -m a2dkit.eval``).
References: MDLM arXiv 2406.07524 (§3, NELBO); BD3LM arXiv 2503.09573 (§3, block NELBO);
LLaDA arXiv 2502.09992 (low-variance likelihood estimator, used by dLLM's lm-eval wrappers).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from a2dkit.diffusion import blocks, losses, masking
from a2dkit.diffusion.attention import padding_position_ids
from a2dkit.diffusion.blocks import pad_to_blocks
from a2dkit.diffusion.schedules import Schedule, make_schedule
from a2dkit.models import conventions
from a2dkit.models.conventions import causal_clean_stream, trained_shift

__all__ = ["ESTIMATORS", "ELBOResult", "sample_masks", "mdlm_elbo", "bd3lm_elbo"]

# "count": l ~ U{1..N} tokens masked uniformly, weight N / l (LLaDA);
# "time": t ~ U[eps, 1), each token masked w.p. p_mask(t), weight w(t) (MDLM continuous time).
ESTIMATORS = ("count", "time")


@dataclass
class ELBOResult:
    """Monte-Carlo estimate of the ELBO (a lower bound on log p(target | prompt), in nats).

    Attributes:
        mean: (B,) float64 (or () for a 1-D input), the average of ``samples``.
        stderr: same shape, ``samples.std() / sqrt(mc_num)`` (samples are i.i.d.).
        samples: (B, mc_num) float64 (or (mc_num,)), one unbiased ELBO draw each.
    """

    mean: torch.Tensor
    stderr: torch.Tensor
    samples: torch.Tensor


def _draw_block(
    n_tokens: int,
    num_samples: int,
    estimator: str,
    schedule: Schedule,
    eps: float,
    generator: torch.Generator | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Masks (S, N) bool and weights (S, 1) float64 for one block of N maskable tokens."""
    if estimator == "count":
        count = torch.randint(1, n_tokens + 1, (num_samples,), generator=generator)  # (S,)
        ranks = torch.rand(num_samples, n_tokens, generator=generator).argsort(1).argsort(1)
        # LLaDA estimator: mask a uniform subset of l ~ U{1..N} tokens, weight N / l
        return ranks < count[:, None], (n_tokens / count.double())[:, None]
    t = masking.sample_t(num_samples, eps=eps, generator=generator)  # (S,)
    u = torch.rand(num_samples, n_tokens, generator=generator)  # (S, N)
    # MDLM §3 (continuous-time NELBO): mask w.p. 1 - α(t), weight w(t) = -α'(t) / (1 - α(t))
    return u < schedule.p_mask(t)[:, None], schedule.weight(t).double()[:, None]


def sample_masks(
    target: torch.Tensor,
    block_ids: torch.Tensor,
    num_samples: int,
    *,
    estimator: Literal["count", "time"] = "count",
    schedule: str | Schedule = "linear",
    eps: float = 1e-3,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw the noise of the ELBO estimator, independently for every block of the target.

    Args:
        target: (L,) bool, the maskable (continuation) tokens.
        block_ids: (L,) long, block of each position (all zeros for MDLM).
        num_samples: S, number of i.i.d. draws.
        estimator: "count" or "time" (see ``ESTIMATORS``).
        schedule: name or ``Schedule``; used by "time" only.
        eps: t ~ U[eps, 1) for "time".
        generator: CPU generator for reproducible draws.

    Returns:
        masked: (S, L) bool, a subset of ``target``.
        weight: (S, L) float64, the weight of each position's block (0 outside ``target``).
    """
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not valid; choose one of {list(ESTIMATORS)}")
    sched = make_schedule(schedule) if isinstance(schedule, str) else schedule
    masked = torch.zeros(num_samples, target.numel(), dtype=torch.bool)
    weight = torch.zeros(num_samples, target.numel(), dtype=torch.float64)
    target, block_ids = target.cpu(), block_ids.cpu()
    for block in torch.unique(block_ids[target]).tolist():
        idx = torch.nonzero(target & (block_ids == block)).squeeze(1)  # (N_b,)
        m, w = _draw_block(len(idx), num_samples, estimator, sched, eps, generator)
        masked[:, idx], weight[:, idx] = m, w.expand(-1, len(idx))
    return masked, weight


def _forward_logits(model, xt, x0, valid, block_size: int | None, shift: bool) -> torch.Tensor:
    """(S, L) noised ids -> (S, L, V) logits scoring token i (``shift``: from column i - 1);
    MDLM bidirectional, BD3LM staircase [x_t; x_0] (shifted as the trainer and sampler do)."""
    n, seq_len = xt.shape
    if block_size is None:
        mask = None if bool(valid.all()) else valid[None].expand(n, -1).long()  # (S, L)
        logits = model(input_ids=xt, attention_mask=mask).logits
        return losses.shift_logits_right(logits) if shift else logits
    ids, _, mask = blocks.bd3lm_inputs(
        xt, x0[None].expand(n, -1), block_size, causal_clean_stream(model)
    )  # (S, 2L), as trained
    # BD3LM §3: x_t block b sees itself and clean x_0 blocks < b; pads are never keys
    keys = valid.repeat(2)[None, None, None, :]  # (1, 1, 1, 2L)
    pos = padding_position_ids(valid[None]).repeat(n, 2)  # (S, 2L)
    logits = model(input_ids=ids, position_ids=pos, attention_mask=mask & keys).logits
    if shift:
        columns = blocks.bd3lm_shift_columns(seq_len, block_size, logits.device)
        return blocks.bd3lm_shift_logits_right(logits[:, columns], seq_len, block_size)
    return blocks.bd3lm_logits(logits)  # (S, L, V)


@dataclass(frozen=True)
class _ELBOOptions:
    """The Monte-Carlo options of one ELBO call, checked and resolved once (see ``mdlm_elbo``)."""

    mask_token_id: int
    mc_num: int
    estimator: str
    schedule: Schedule | None
    eps: float
    batch_size: int
    right_shift_logits: bool
    generator: torch.Generator | None


@torch.no_grad()
def _elbo_row(model, x0, target, valid, block_size, opts: _ELBOOptions) -> torch.Tensor:
    """(mc_num,) float64 ELBO draws for one sequence x0 (L,)."""
    device = next(model.parameters()).device
    seq_len = x0.numel()
    block_ids = torch.arange(seq_len) // (block_size or seq_len)  # (L,)
    masked, weight = sample_masks(
        target, block_ids, opts.mc_num, estimator=opts.estimator,
        schedule=opts.schedule, eps=opts.eps, generator=opts.generator,
    )  # fmt: skip
    x0, valid = x0.to(device), valid.to(device)
    draws = []
    chunks = zip(masked.split(opts.batch_size), weight.split(opts.batch_size), strict=True)
    for m, w in chunks:
        m, w = m.to(device), w.to(device)
        xt = torch.where(m, opts.mask_token_id, x0[None])  # (S, L)
        logits = _forward_logits(model, xt, x0, valid, block_size, opts.right_shift_logits)
        nll = losses.masked_nll(logits, x0[None].expand_as(xt), m).double()  # (S, L)
        # ELBO draw: -Σ_blocks weight_b Σ_{masked i in b} CE_i (where(): no 0 * inf)
        draws.append(-torch.where(m, nll * w, torch.zeros_like(nll)).sum(1).cpu())
    return torch.cat(draws)  # (mc_num,)


def _check_options(mc_num: int, batch_size: int, estimator: str, eps: float) -> None:
    for name, value in (("mc_num", mc_num), ("batch_size", batch_size)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name}={value!r} must be a positive int (e.g. 128)")
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator={estimator!r} is not valid; choose one of {list(ESTIMATORS)}")
    if not 0.0 <= eps < 1.0:
        raise ValueError(f"eps={eps} must satisfy 0 <= eps < 1 (e.g. 1e-3)")


def _resolve_mask_token_id(model, mask_token_id: int | None) -> int:
    """The caller's ``mask_token_id``, else the one the conversion recorded in the config."""
    return conventions.mask_token_id(model) if mask_token_id is None else int(mask_token_id)


def _prepare(input_ids, target_mask, prompt_len, attention_mask):
    """Validate and batch the inputs -> x0, target, valid: (B, L) each, and whether to squeeze."""
    x0 = torch.as_tensor(input_ids)
    squeeze = x0.dim() == 1
    if x0.dim() not in (1, 2) or x0.is_floating_point():
        raise ValueError(f"input_ids must be (L,) or (B, L) integer ids; got {tuple(x0.shape)}")
    x0 = x0.long().reshape(-1, x0.shape[-1])  # (B, L)
    if (target_mask is None) == (prompt_len is None):
        raise ValueError(
            "pass exactly one of target_mask (bool, like input_ids) or prompt_len "
            f"(int or one per row); got target_mask={target_mask!r}, prompt_len={prompt_len!r}"
        )
    if prompt_len is not None:
        lens = torch.as_tensor(prompt_len).reshape(-1, 1)  # (B, 1) or (1, 1)
        if (lens < 0).any() or (lens > x0.shape[1]).any():
            raise ValueError(f"prompt_len={prompt_len!r} must lie in [0, L={x0.shape[1]}]")
        target_mask = torch.arange(x0.shape[1])[None] >= lens  # (B, L)
    target = torch.as_tensor(target_mask).reshape(-1, x0.shape[1]).expand_as(x0).cpu()
    if target.dtype != torch.bool:
        raise TypeError(f"target_mask must be a bool tensor, got dtype={target.dtype}")
    valid = torch.ones_like(target) if attention_mask is None else attention_mask
    valid = torch.as_tensor(valid).bool().reshape(x0.shape).cpu()
    return x0, target & valid, valid, squeeze


def _elbo(model, input_ids, block_size, *, target_mask, prompt_len, attention_mask, **options):
    _check_options(options["mc_num"], options["batch_size"], options["estimator"], options["eps"])
    shift = options.pop("right_shift_logits")
    opts = _ELBOOptions(
        **options | dict(mask_token_id=_resolve_mask_token_id(model, options["mask_token_id"])),
        right_shift_logits=trained_shift(model) if shift is None else shift,  # None: as trained
    )
    x0, target, valid, squeeze = _prepare(input_ids, target_mask, prompt_len, attention_mask)
    first = valid.int().argmax(dim=1, keepdim=True)  # (B, 1) first real column of each row
    if opts.right_shift_logits and target.gather(1, first).any():
        raise ValueError(
            "right_shift_logits=True scores token i with the logits of i - 1, so a row's first "
            "token cannot be a target; start the targets at prompt_len >= 1 (e.g. after BOS)"
        )
    if block_size is not None:
        # right pads end the last block: never valid, never targets
        x0 = pad_to_blocks(x0, block_size)
        target = pad_to_blocks(target, block_size, value=False)
        valid = pad_to_blocks(valid, block_size, value=False)
    rows = [_elbo_row(model, *row, block_size, opts) for row in zip(x0, target, valid, strict=True)]
    samples = torch.stack(rows)  # (B, mc_num)
    stderr = samples.std(dim=1, correction=1) / samples.shape[1] ** 0.5
    if samples.shape[1] == 1:
        stderr = torch.full_like(stderr, float("nan"))  # one draw: no spread estimate
    result = ELBOResult(samples.mean(dim=1), stderr, samples)
    if squeeze:
        result = ELBOResult(result.mean[0], result.stderr[0], result.samples[0])
    return result


def mdlm_elbo(
    model,
    input_ids: torch.Tensor,
    *,
    target_mask: torch.Tensor | None = None,
    prompt_len: int | list[int] | None = None,
    attention_mask: torch.Tensor | None = None,
    mask_token_id: int | None = None,
    mc_num: int = 128,
    estimator: Literal["count", "time"] = "count",
    schedule: str | Schedule = "linear",
    eps: float = 1e-3,
    batch_size: int = 32,
    right_shift_logits: bool | None = None,
    generator: torch.Generator | None = None,
) -> ELBOResult:
    """Monte-Carlo MDLM ELBO of the target tokens given the rest (only targets are masked).

    Each draw masks a subset S of the N target tokens and scores -weight · Σ_{i∈S} CE_i with one
    bidirectional forward. Exact value of both estimators (linear schedule, eps = 0):
    ``-Σ_{l=1..N} (1/l) · mean_{|S|=l} Σ_{i∈S} CE_i(x_S)``. "time" with eps > 0 estimates
    -(1/(1-eps)) ∫_eps^1 w(t) E_S[Σ CE] dt instead (the truncated bound used in training).

    Args:
        model: an A2D model (``to_diffusion`` output); called as ``model(input_ids=...)``.
        input_ids: (L,) or (B, L) long.
        target_mask: (L,) or (B, L) bool, the continuation tokens to score; or use ``prompt_len``.
        prompt_len: int (or B ints): tokens before it are prompt, the rest is the target.
        attention_mask: optional (B, L) 1 for real tokens, 0 for (left) padding.
        mask_token_id: id of [MASK]; default ``model.config.mask_token_id``.
        mc_num: number of i.i.d. Monte-Carlo draws per sequence.
        estimator: "count" (LLaDA, finite variance, unbiased) or "time" (MDLM's t ~ U[eps, 1)).
        schedule: noise schedule of the "time" estimator.
        eps: lower end of t for "time".
        batch_size: draws per forward pass.
        right_shift_logits: score token i with the logits of position i - 1 (as in training);
            None reads the checkpoint's ``config.right_shift_logits`` (``trained_shift``).
        generator: CPU ``torch.Generator`` for reproducible masks.

    Returns:
        ELBOResult with mean/stderr () or (B,) and samples (mc_num,) or (B, mc_num), float64.
    """
    return _elbo(
        model, input_ids, None, target_mask=target_mask, prompt_len=prompt_len,
        attention_mask=attention_mask, mask_token_id=mask_token_id, mc_num=mc_num,
        estimator=estimator, schedule=schedule, eps=eps, batch_size=batch_size,
        right_shift_logits=right_shift_logits, generator=generator,
    )  # fmt: skip


def bd3lm_elbo(
    model,
    input_ids: torch.Tensor,
    *,
    block_size: int,
    target_mask: torch.Tensor | None = None,
    prompt_len: int | list[int] | None = None,
    attention_mask: torch.Tensor | None = None,
    mask_token_id: int | None = None,
    mc_num: int = 128,
    estimator: Literal["count", "time"] = "count",
    schedule: str | Schedule = "linear",
    eps: float = 1e-3,
    batch_size: int = 32,
    right_shift_logits: bool | None = None,
    generator: torch.Generator | None = None,
) -> ELBOResult:
    """Monte-Carlo BD3LM ELBO: Σ_b MDLM-ELBO(target tokens of block b | clean blocks < b).

    Blocks are counted by column from position 0 (as the samplers' canvas); the sequence is
    right-padded to a multiple of ``block_size``. Every block gets its own mask draw (own l or t)
    and all blocks are scored in one ``[x_t; x_0]`` staircase forward per batch of draws.
    Exact value: the sum over blocks of the MDLM exact value (see ``mdlm_elbo``), each block's
    CE computed with the block noised and the earlier blocks clean.

    Args:
        block_size: tokens per block (the model's training block size).
        Others: as in ``mdlm_elbo``; ``attention_mask`` pads are never attended to.

    Returns:
        ELBOResult with mean/stderr () or (B,) and samples (mc_num,) or (B, mc_num), float64.
    """
    return _elbo(
        model, input_ids, block_size, target_mask=target_mask, prompt_len=prompt_len,
        attention_mask=attention_mask, mask_token_id=mask_token_id, mc_num=mc_num,
        estimator=estimator, schedule=schedule, eps=eps, batch_size=batch_size,
        right_shift_logits=right_shift_logits, generator=generator,
    )  # fmt: skip
