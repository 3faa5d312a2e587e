"""The MDLM trainer: an HF ``Trainer`` whose loss is the MDLM NELBO (masking, losses, recipes).

It holds the one copy of the loss; BD3LM (``trainers.bd3lm``) changes only the model input.
References: MDLM arXiv 2406.07524 (§3, NELBO).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from a2dkit._env import IGNORE_INDEX
from a2dkit.diffusion import attention, losses, masking
from a2dkit.diffusion.curriculum import BlockSchedule
from a2dkit.diffusion.schedules import Schedule, make_schedule
from a2dkit.models.conventions import mask_token_id
from a2dkit.training.config import MDLMConfig
from a2dkit.training.recipes import RecipeMixin
from a2dkit.training.resumable import ResumableTrainerMixin

__all__ = ["maskable_positions", "MDLMTrainer"]


def maskable_positions(labels: torch.Tensor, right_shift_logits: bool = False) -> torch.Tensor:
    """Positions the forward process may mask and the loss scores (its token denominator).

    Args:
        labels: (B, L) long; ``-100`` marks prompt and padding tokens, which stay clean.
        right_shift_logits: position i is predicted from the logits at i - 1, so position 0 has no
            predictor and is excluded (dLLM prepends a BOS token instead).

    Returns:
        (B, L) bool.
    """
    maskable = labels != IGNORE_INDEX  # (B, L)
    if right_shift_logits:
        maskable = maskable.clone()
        maskable[:, 0] = False
    return maskable


class MDLMTrainer(RecipeMixin, ResumableTrainerMixin, Trainer):
    """``transformers.Trainer`` whose loss is the MDLM NELBO; ``args`` must be an ``MDLMConfig``.

    Gradient accumulation and data parallelism do not change the update: the loss of every
    micro-batch is divided by the denominator of the whole optimizer step (summed over micro-batches
    and, with ``average_tokens_across_devices``, over ranks), so the micro-batch losses add up to
    the full-batch loss. Noise comes from the torch RNG, which checkpoints save and resume restores;
    checkpoints are marked complete when whole, and resume is exact (``ResumableTrainerMixin``).

    Args:
        schedule: alpha(t); default ``make_schedule(args.alpha_schedule)``.
        teacher: the frozen source AR model (``--distill_weight``); shares the tokenizer.
        *args: as ``transformers.Trainer``.
        **kwargs: as ``transformers.Trainer`` (pass the tokenizer as ``processing_class``).
    """

    # compute_loss divides by the optimizer step's denominator: HF must not divide by GA steps again
    loss_is_scaled_for_ga = True

    def __init__(
        self,
        *args: Any,
        schedule: Schedule | None = None,
        teacher=None,
        semi_ar_schedule: BlockSchedule | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, MDLMConfig):
            raise TypeError(
                f"{type(self).__name__} needs args of type MDLMConfig/BD3LMConfig, "
                f"got {type(self.args).__name__}"
            )
        self.schedule = (
            schedule if schedule is not None else make_schedule(self.args.alpha_schedule)
        )
        self._set_semi_ar_schedule(semi_ar_schedule)
        self.mask_token_id = mask_token_id(self.model, self.processing_class)
        # saved with every checkpoint, so samplers and ELBOs read logits as they were trained
        self.model.config.right_shift_logits = bool(self.args.right_shift_logits)
        self.model.config.ar_loss_weight = float(self.args.ar_loss_weight)  # > 0: runs as AR too
        self.model.config.a2d_recipe = self._recipe()
        if self.args.distill_weight:
            if teacher is None:
                raise ValueError("distill_weight > 0 needs teacher= (the frozen source AR model)")
            self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)
        self.add_callback(_PerRankNoise())

    def _recipe(self) -> dict:
        return self.args.recipe() | self._semi_ar_recipe()

    def sample_noise(
        self, x0: torch.Tensor, maskable: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Forward process q(x_t | x_0); override for custom noise (e.g. per-example seeds).

        Args:
            x0: (B, L) long clean ids.
            maskable: (B, L) bool, positions that may be masked.

        Returns:
            t: (B,) float; xt: (B, L) long; masked: (B, L) bool.
        """
        eps, antithetic = self.args.time_epsilon, self.args.antithetic_t
        t = masking.sample_t(len(x0), eps=eps, antithetic=antithetic, device=x0.device)  # (B,)
        if self.args.full_mask_prob:
            t = self._full_mask_time(t)  # TiDAR: some rows at t = 1, fully masked
        p_mask = self._p_mask(t, maskable)  # (B,), or (B, L) with position-dependent masking
        if self.semi_ar_schedule is not None:  # one answer block noised, the later ones masked
            p_mask = self._semi_ar_p_mask(p_mask, maskable)  # (B, L)
        xt, masked = masking.mask_tokens(x0, p_mask, maskable, self.mask_token_id)
        return t, xt, masked

    def _model_inputs(
        self, xt: torch.Tensor, x0: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> dict[str, Any]:
        """MDLM: x_t alone; the A2D forward makes a 2-D padding mask bidirectional (annealing:
        the 4-D causal-plus-random mask of this step, pads never keys)."""
        if self._anneal_ratio() >= 1:
            return {"input_ids": xt, "attention_mask": attention_mask}  # (B, L), (B, L)
        valid = torch.ones_like(xt, dtype=torch.bool) if attention_mask is None else attention_mask
        valid = valid.bool()
        pairs = valid[:, :, None] & valid[:, None, :]  # (B, L, L)
        mask = (self._annealed(xt.shape[1], xt.device)[None] & pairs)[:, None]  # (B, 1, L, L)
        return {"input_ids": xt, "attention_mask": mask,
                "position_ids": attention.padding_position_ids(valid)}  # fmt: skip

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, torch.Tensor],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ):
        """MDLM loss of one micro-batch ``{"input_ids", "labels", "attention_mask"?}`` (B, L)."""
        x0, labels = inputs["input_ids"], inputs["labels"]  # (B, L), (B, L)
        attention_mask = inputs.get("attention_mask")
        maskable = maskable_positions(labels, self.args.right_shift_logits)  # (B, L)
        denominator = num_items_in_batch
        if denominator is None:
            denominator = losses.loss_denominator(maskable, self.args.loss_norm_type)
        # === 1. Forward process: t ~ U[eps, 1), mask each maskable token w.p. 1 - α(t) ===
        t, xt, masked = self.sample_noise(x0, maskable)  # (B,), (B, L), (B, L)
        # === 2. Loss weights w(t) = -α'(t) / (1 - α(t)) (or uniform; per token if positional) ===
        weight = self._loss_weight(t, maskable)  # (B,) or (B, L)
        views = 1
        if self.args.complementary_masking:  # === 2b. + the complementary view of each row ===
            xt_c, masked_c, weight_c = self._complement(x0, t, masked, maskable)
            x0, xt, masked = x0.repeat(2, 1), torch.cat([xt, xt_c]), torch.cat([masked, masked_c])
            maskable, weight = maskable.repeat(2, 1), torch.cat([weight, weight_c])
            if attention_mask is not None:
                attention_mask = attention_mask.repeat(2, 1)
            views = 2
        # === 3. Model inputs: MDLM x_t; BD3LM [x_t ; x_0] + staircase mask ===
        model_inputs = self._model_inputs(xt, x0, attention_mask)
        # === 4. Forward pass: x_t fills the first L positions of either input ===
        out = model(**model_inputs).logits
        logits = self._scored_logits(out, x0.shape[1])  # (B, L, V)
        # === 5. NELBO: weighted CE on masked tokens / the optimizer step's denominator ===
        loss = losses.mdlm_loss(
            logits,
            x0,
            masked,
            maskable,
            weight,
            norm_type=self.args.loss_norm_type,
            right_shift_logits=False,  # _scored_logits has shifted them
            num_items=num_items_in_batch if views == 1 else views * denominator,
        )
        # === 5b. Joint AR + diffusion loss: + α · causal next-token CE of the same weights ===
        if self.args.ar_loss_weight:
            rows, clean = len(labels), self._causal_clean_logits(out, x0.shape[1])
            if clean is not None:  # TiDAR: the causal clean half of this forward is the AR mode
                ar = losses.next_token_nll(clean[:rows], labels)
            else:
                mask = None if attention_mask is None else attention_mask[:rows]
                ar = self._ar_nll(model, x0[:rows], labels, mask)
            loss = loss + self.args.ar_loss_weight * ar / denominator  # normalised like the NELBO
        # === 5c. Distillation: + β · KL(source AR || model) where the prefix is clean ===
        if self.args.distill_weight:
            kl = self._distill_kl(x0, masked, logits, attention_mask, views)
            loss = loss + self.args.distill_weight * kl / (views * denominator)
        # === 6. Ranks' gradients are averaged, but the denominator was summed over ranks ===
        if num_items_in_batch is not None and self._denominator_spans_ranks():
            loss = loss * self.args.world_size
        return (loss, {"logits": logits}) if return_outputs else loss

    def _ar_nll(
        self, model, x0: torch.Tensor, labels: torch.Tensor, attention_mask
    ) -> torch.Tensor:
        """Summed next-token NLL of the labelled tokens under a causal mask (the AR mode)."""
        valid = torch.ones_like(x0, dtype=torch.bool) if attention_mask is None else attention_mask
        valid = valid.bool()
        causal = attention.block_causal_mask(valid, 1)  # (B, 1, L, L): blocks of 1 = causal
        position_ids = attention.padding_position_ids(valid)  # (B, L)
        logits = model(input_ids=x0, attention_mask=causal, position_ids=position_ids).logits
        return losses.next_token_nll(logits, labels)

    def _causal_clean_logits(self, logits: torch.Tensor, seq_len: int) -> torch.Tensor | None:
        """(B, L, V) causal next-token logits the forward already computed, or None (MDLM: none;
        its AR loss runs a causal forward of its own)."""
        return None

    def _scored_logits(self, logits: torch.Tensor, seq_len: int) -> torch.Tensor:
        """(B, L, V) logits that score x_t token i: column i, or i - 1 when right-shifted."""
        logits = logits[:, :seq_len]
        return losses.shift_logits_right(logits) if self.args.right_shift_logits else logits

    def _denominator_spans_ranks(self) -> bool:
        return bool(self.args.average_tokens_across_devices) and self.args.world_size > 1

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        """The loss denominator of one optimizer step (overrides HF's shifted causal-LM count).

        Sum of ``losses.loss_denominator`` over the micro-batches, and over ranks when
        ``average_tokens_across_devices``; () float32 tensor, or None without labels.
        """
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        shift, norm = self.args.right_shift_logits, self.args.loss_norm_type
        total = sum(
            losses.loss_denominator(maskable_positions(b["labels"], shift), norm).to(device)
            for b in batch_samples
        )
        if self._denominator_spans_ranks():
            total = self.accelerator.gather(total.reshape(1)).sum()
        return total


class _PerRankNoise(TrainerCallback):
    """Data-parallel ranks start from the same seed; give each its own noise stream.

    Runs after the data sampler captured its seed (so shards stay disjoint); on resume the
    trainer then restores every rank's saved RNG state, so resume stays exact.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if args.world_size > 1:
            torch.manual_seed(args.seed + args.process_index)
