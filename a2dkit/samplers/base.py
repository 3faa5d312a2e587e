"""What both samplers share: the output and config dataclasses, the canvas, the denoising loop
over one block, and ``head_logits`` (the LM head only on the positions being denoised).

References: MDLM arXiv 2406.07524; LLaDA arXiv 2502.09992; Fast-dLLM arXiv 2505.22618.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import itertools
import math
from dataclasses import dataclass
from typing import Literal

import torch

from a2dkit.diffusion.attention import padding_position_ids
from a2dkit.diffusion.denoise import denoise_step, num_transfer_tokens
from a2dkit.diffusion.schedules import SCHEDULES, Schedule, make_schedule
from a2dkit.models.conventions import check_attention_implementation, mask_token_id, trained_shift
from a2dkit.samplers.prompts import check_nonnegative_finite, prompt_ids
from a2dkit.samplers.proposals import SAMPLER_REMASKING, draw_distribution, left_to_right_step

__all__ = ["SamplerOutput", "SamplerConfig", "Canvas", "BaseSampler", "head_logits"]


@functools.lru_cache
def _keeps_logits(model_cls: type) -> bool:
    """Whether some ``forward`` in the class's MRO takes ``logits_to_keep`` (transformers)."""
    return any(
        "logits_to_keep" in inspect.signature(k.forward).parameters
        for k in model_cls.__mro__
        if "forward" in vars(k)
    )


def head_logits(model, input_ids: torch.Tensor, keep: torch.Tensor, **kwargs) -> torch.Tensor:
    """Logits of the columns ``keep`` only: the LM head runs on those hidden states alone.

    transformers' ``logits_to_keep`` slices the last hidden states before ``lm_head`` (tied or
    untied, with any model-specific head processing); a model without it (e.g. a test wrapper)
    gets the full forward, sliced afterwards. Both give the same logits.

    Args:
        input_ids: (B, L) long; keep: (K,) long column indices into L.
        **kwargs: passed to the model (attention_mask, position_ids, past_key_values...).

    Returns:
        (B, K, V) logits.
    """
    if _keeps_logits(type(model)):
        return model(input_ids, logits_to_keep=keep, **kwargs).logits
    return model(input_ids, **kwargs).logits[:, keep]


@dataclass
class SamplerOutput:
    """``sequences`` (B, T) long: left-padded prompts then the generated tokens from ``gen_start``.

    ``history`` holds the (B, T) canvas before the first and after every denoising step (plus a
    last canvas if finished BD3LM rows were padded early); ``nfe`` counts every model forward call.
    Columns ``gen_start:gen_end`` were denoised (BD3LM stops early once every row has its EOS).
    ``proposals`` (``return_proposals``): (B, T - gen_start, V) float64, the softmax(logits / T)
    each generated token was drawn from at the step that committed it (one-hot at temperature 0).
    """

    sequences: torch.Tensor
    history: list[torch.Tensor] | None = None
    nfe: int = 0
    gen_start: int = 0
    gen_end: int | None = None
    proposals: torch.Tensor | None = None


@dataclass
class SamplerConfig:
    """Options shared by both samplers (dLLM names); ``threshold`` enables parallel decoding.

    ``begin_suppress_tokens`` is kept for dLLM compatibility and, unlike dLLM (its issue #105),
    is applied before drawing, exactly like ``suppress_tokens``; the mask token is always
    suppressed (a drawn mask would never be filled). ``stochastic_transfer`` draws
    the number of tokens revealed per step from a binomial (linear schedule by default).
    ``schedule``: None splits each block's masks evenly over its steps (the model card's
    sampler); "linear" (or "cosine") rounds the expected reveal count of that alpha schedule
    per step, the same counts as dLLM's library sampler (``num_transfer_tokens``).
    ``right_shift_logits``: None (default) reads the checkpoint's ``config.right_shift_logits``,
    which the trainers record (``trained_shift``); True/False override it.
    ``return_proposals``: keep, for every generated column, the distribution its token was drawn
    from (``SamplerOutput.proposals``; a speculative-sampling drafter's q).
    """

    max_new_tokens: int = 128
    block_size: int = 128
    steps: int = 128
    temperature: float = 0.0
    remasking: Literal["low_confidence", "random", "left_to_right"] = "low_confidence"
    stochastic_transfer: bool = False
    cfg_scale: float = 0.0
    suppress_tokens: list[int] | None = None
    begin_suppress_tokens: list[int] | None = None
    right_shift_logits: bool | None = None
    threshold: float | None = None
    schedule: str | None = None
    return_history: bool = True
    return_proposals: bool = False

    def __post_init__(self):
        for name in ("max_new_tokens", "block_size", "steps"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise ValueError(f"{name}={getattr(self, name)!r} must be a positive integer")
        for name in ("temperature", "cfg_scale"):
            check_nonnegative_finite(name, getattr(self, name))  # nan/inf too
        if self.remasking not in SAMPLER_REMASKING:
            raise ValueError(
                f"remasking={self.remasking!r} is not valid; choose one of {SAMPLER_REMASKING}"
            )
        if self.threshold is not None and not 0 < self.threshold <= 1:
            raise ValueError(f"threshold={self.threshold} must lie in (0, 1] or be None")
        if self.threshold is not None and self.remasking != "low_confidence":
            raise ValueError(
                f"threshold={self.threshold} compares probabilities: it needs "
                f"remasking='low_confidence', got remasking={self.remasking!r}"
            )
        if self.schedule is not None and self.schedule not in SCHEDULES:
            raise ValueError(
                f"schedule={self.schedule!r} is not valid; choose None (even split) or one of "
                f"{tuple(SCHEDULES)}"
            )
        self._check_steps()

    def _check_steps(self) -> None:
        if self.steps < self.num_blocks:
            raise ValueError(
                f"steps={self.steps} must be >= the number of blocks {self.num_blocks} "
                f"(= ceil(max_new_tokens={self.max_new_tokens} / block_size={self.block_size}))"
            )

    @property
    def num_blocks(self) -> int:
        return math.ceil(self.max_new_tokens / self.block_size)

    @property
    def block_steps(self) -> int:
        """Denoising steps per block, ``ceil(steps / num_blocks)`` as in dLLM."""
        return math.ceil(self.steps / self.num_blocks)

    @property
    def banned(self) -> list[int]:
        return sorted(set(self.suppress_tokens or []) | set(self.begin_suppress_tokens or []))


@dataclass
class Canvas:
    """The sampling canvas: ids (B, T) long, valid (B, T) bool (False = pad), position ids (B, T),
    ``start``, the first generated column (prompts are left-padded up to it), and ``proposals``
    (B, T - start, V) float64 when they are recorded."""

    ids: torch.Tensor
    valid: torch.Tensor
    pos: torch.Tensor
    start: int
    proposals: torch.Tensor | None = None


class BaseSampler:
    config_class: type[SamplerConfig] = SamplerConfig

    def __init__(self, model, tokenizer, schedule: Schedule | None = None):
        self.mask_id = mask_token_id(model, tokenizer)
        check_attention_implementation(getattr(model.config, "_attn_implementation", None))
        self.model, self.tokenizer, self.schedule = model, tokenizer, schedule
        self.eos_id = tokenizer.eos_token_id
        pads = (tokenizer.pad_token_id, self.eos_id, self.mask_id)
        self.pad_id = next(p for p in pads if p is not None)

    @torch.no_grad()
    def sample(self, inputs: list[list[int]], config: SamplerConfig | None = None, **overrides):
        """Generate after each prompt; ``overrides`` replace config fields (typo -> TypeError).

        Args:
            inputs: B prompts, each a list (or 1-D tensor) of token ids.
            config: defaults to ``config_class()``; validated again after the overrides.

        Returns:
            SamplerOutput.
        """
        config = dataclasses.replace(config or self.config_class(), **overrides)
        if not isinstance(config, self.config_class):
            raise TypeError(f"config must be a {self.config_class.__name__}, got {type(config)}")
        if config.right_shift_logits is None:  # None: as the checkpoint was trained
            config = dataclasses.replace(config, right_shift_logits=trained_shift(self.model))
        prompts = self._check_prompts(inputs, config)
        self.model.eval()
        return self._generate(prompts, config)

    def _check_prompts(self, inputs, config: SamplerConfig) -> list[list[int]]:
        cfg = self.model.config
        prompts = prompt_ids(inputs, cfg.vocab_size)  # ids in [0, V), a list of lists
        context = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", 0)
        longest = max(len(p) for p in prompts)
        if context and longest + config.max_new_tokens > context:
            raise ValueError(
                f"prompt length {longest} + max_new_tokens={config.max_new_tokens} exceeds the "
                f"model context {context}; keep prompts <= {context - config.max_new_tokens} tokens"
            )
        if config.right_shift_logits and min(len(p) for p in prompts) == 0:
            raise ValueError(
                "right_shift_logits=True needs non-empty prompts (e.g. [bos_token_id])"
            )
        return prompts

    def _canvas(self, prompts: list[list[int]], start: int, new: int) -> Canvas:
        """Left-pad prompts to ``start`` columns and append ``new`` masks."""
        ids = torch.full((len(prompts), start + new), self.pad_id, dtype=torch.long)
        valid = torch.zeros(ids.shape, dtype=torch.bool)
        for i, p in enumerate(prompts):
            ids[i, start - len(p) : start] = torch.tensor(p, dtype=torch.long)
            valid[i, start - len(p) :] = True
        ids[:, start:] = self.mask_id
        ids, valid = ids.to(self.model.device), valid.to(self.model.device)
        return Canvas(ids, valid, padding_position_ids(valid), start)  # positions skip pads

    def _batch(self, c: Canvas, config: SamplerConfig):
        """Model inputs (ids, valid, pos); with CFG a second half whose prompt is masked."""
        if config.cfg_scale == 0:
            return c.ids, c.valid, c.pos
        uncond = c.ids.clone()
        prompt = c.valid[:, : c.start]
        uncond[:, : c.start] = torch.where(prompt, self.mask_id, c.ids[:, : c.start])
        return torch.cat([c.ids, uncond]), c.valid.repeat(2, 1), c.pos.repeat(2, 1)

    def _record(self, c: Canvas, span, logits, committed, banned, temperature: float) -> None:
        """Store the draw distributions of the columns just committed (``committed`` (B, L))."""
        if c.proposals is None:
            shape = (*c.ids.shape[:1], c.ids.shape[1] - c.start, logits.shape[-1])
            c.proposals = torch.zeros(shape, dtype=torch.float64, device=logits.device)
        probs = draw_distribution(logits, banned, temperature)  # (B, L, V)
        view = c.proposals[:, span[0] - c.start : span[1] - c.start]
        view[committed] = probs[committed]

    def _plan(self, block: torch.Tensor, steps: int, config: SamplerConfig):
        """Per-step transfer counts (B,), skipping steps where no row commits anything."""
        if config.threshold is not None:
            return itertools.repeat(None)  # until the block is filled
        count = (block == self.mask_id).sum(-1)  # (B,)
        schedule = make_schedule(config.schedule) if config.schedule else self.schedule
        counts = num_transfer_tokens(count, steps, schedule, config.stochastic_transfer)
        return [k for k in counts.T if k.any()]

    def _denoise_block(self, c: Canvas, span, config, logits_fn, history) -> int:
        """Denoise columns ``span`` until filled; returns the number of forward passes."""
        s, e = span
        nfe = 0
        for k in self._plan(c.ids[:, s:e], config.block_steps, config):
            if not (c.ids[:, s:e] == self.mask_id).any():
                break
            logits = logits_fn()  # (B, e - s, V)
            banned, before = [*config.banned, self.mask_id], c.ids[:, s:e].clone()
            if config.remasking == "left_to_right":
                c.ids[:, s:e] = left_to_right_step(logits, before, self.mask_id, k,
                                                   config.temperature, banned)  # fmt: skip
            else:
                c.ids[:, s:e] = denoise_step(
                    logits, before, self.mask_id, k, temperature=config.temperature,
                    remasking=config.remasking, threshold=config.threshold,
                    suppress_tokens=banned,  # a mask is never a prediction
                )  # fmt: skip
            if config.return_proposals:
                self._record(c, span, logits, before != c.ids[:, s:e], banned, config.temperature)
            nfe += 1
            if history is not None:
                history.append(c.ids.clone())
        return nfe
