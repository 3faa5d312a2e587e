"""MDLM and BD3LM trainers: HF ``Trainer`` subclasses wiring masking + losses + attention together.

The two differ only in the model input (``_model_inputs``): MDLM feeds x_t with bidirectional
attention, BD3LM feeds ``[x_t ; x_0]`` under the staircase mask. There is one copy of the loss.
References: MDLM arXiv 2406.07524 (§3, NELBO); BD3LM arXiv 2503.09573 (§3.2, vectorized training).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer, TrainerCallback

from a2dkit._env import IGNORE_INDEX
from a2dkit.diffusion import attention, blocks, losses, masking
from a2dkit.diffusion.curriculum import BlockSchedule
from a2dkit.diffusion.schedules import Schedule, make_schedule
from a2dkit.models.conventions import check_attention_implementation, mask_token_id
from a2dkit.training.config import BD3LMConfig, MDLMConfig
from a2dkit.training.recipes import RecipeMixin
from a2dkit.training.resumable import ResumableTrainerMixin

__all__ = ["maskable_positions", "MDLMTrainer", "BD3LMTrainer"]


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


class BD3LMTrainer(MDLMTrainer):
    """Block diffusion: ``args`` is a ``BD3LMConfig``; only the model input differs from MDLM.

    Every (padded) batch length must be a multiple of ``block_size``: packed pretraining rows have
    ``max_length % block_size == 0``; SFT batches are padded by ``DiffusionCollator``
    (``pad_with_eos_to_multiple=block_size``, labelled EOS as in the dLLM recipe). With a
    block-size curriculum (``block_schedule``, from ``--block_size_schedule``) the block size of
    each step is ``block_schedule.at(global_step)``, and batches are whole blocks of every size.
    """

    def __init__(
        self, *args: Any, block_schedule: BlockSchedule | None = None, **kwargs: Any
    ) -> None:
        self.block_schedule = block_schedule
        super().__init__(*args, **kwargs)
        if not isinstance(self.args, BD3LMConfig):
            raise TypeError(f"BD3LMTrainer needs a BD3LMConfig, got {type(self.args).__name__}")
        if self.args.block_size_schedule and block_schedule is None:
            raise ValueError(
                f"block_size_schedule={self.args.block_size_schedule!r}: pass block_schedule="
                "diffusion.curriculum.parse_block_schedule(...) (it needs the data's max_length)"
            )
        # samplers and ELBOs encode the prefix as it was trained (models.causal_clean_stream)
        self.model.config.a2d_clean_stream = self.args.clean_stream
        # flash attention is causal-only: it cannot apply the staircase mask
        check_attention_implementation(self.model.config._attn_implementation)
        flex = self.model.config._attn_implementation == "flex_attention"
        if flex and self.args.attention_anneal_steps:
            raise ValueError("--attention_anneal_steps needs a dense mask: use "
                             "--attn_implementation sdpa or eager, not flex_attention")  # fmt: skip

    def _recipe(self) -> dict:
        schedule = self.block_schedule
        return super()._recipe() | {
            "clean_stream": getattr(self.args, "clean_stream", "block"),
            "block_size_schedule": schedule.to_list() if schedule else None,
            "block_size": schedule.final if schedule else getattr(self.args, "block_size", None),
        }

    @property
    def block_size(self) -> int:
        """This step's block size (the curriculum's, or ``args.block_size``)."""
        if self.block_schedule is None:
            return self.args.block_size
        return self.block_schedule.at(self.state.global_step)

    def _distill_unit(self) -> int:
        return self.block_size

    def _model_inputs(
        self, xt: torch.Tensor, x0: torch.Tensor, attention_mask: torch.Tensor | None
    ) -> dict[str, Any]:
        """BD3LM: ``[x_t ; x_0]`` (B, 2L), positions ``[0..L-1, 0..L-1]``, staircase mask."""
        bs, seq_len, causal = self.block_size, xt.shape[1], self.args.clean_stream == "causal"
        input_ids, position_ids, mask = blocks.bd3lm_inputs(xt, x0, bs, causal)
        keys = None if attention_mask is None else attention_mask.bool().repeat(1, 2)  # (B, 2L)
        if self.model.config._attn_implementation == "flex_attention":
            mask = attention.staircase_block_mask(seq_len, bs, keys, xt.device, causal)
        elif keys is not None:
            mask = mask & keys[:, None, None, :]  # (B, 1, 2L, 2L): pads are never keys
        if self._anneal_ratio() < 1:  # DiffuLLaMA: x_t attends its own block causally + random
            noisy = torch.ones(2 * seq_len, 2 * seq_len, dtype=torch.bool, device=xt.device)
            noisy[:seq_len, :seq_len] = self._annealed(seq_len, xt.device)
            mask = mask & noisy
        # only x_t is scored: skip the LM head on the x_0 half (right shift: but its block ends),
        # unless the causal clean half gives the joint AR loss (every column kept: 0)
        keep = (
            0
            if self._reads_clean_half()
            else blocks.bd3lm_shift_columns(seq_len, bs, xt.device)
            if self.args.right_shift_logits
            else torch.arange(seq_len, device=xt.device)
        )  # (L,) or (L + L / bs - 1,)
        return {"input_ids": input_ids, "position_ids": position_ids, "attention_mask": mask,
                "logits_to_keep": keep}  # fmt: skip

    def _reads_clean_half(self) -> bool:
        """TiDAR: with a causal clean stream the joint AR loss reads the x_0 half's logits."""
        return self.args.clean_stream == "causal" and self.args.ar_loss_weight > 0

    def _causal_clean_logits(self, logits: torch.Tensor, seq_len: int) -> torch.Tensor | None:
        """The x_0 half's logits when it is token-causal: exactly a causal forward of x_0 (both
        halves have positions 0..L-1; batches are right-padded, pads never keys)."""
        return logits[:, seq_len:] if self._reads_clean_half() else None

    def _scored_logits(self, logits: torch.Tensor, seq_len: int) -> torch.Tensor:
        """Right shift reads the clean x_0 column before each block, as the block sampler does."""
        if not self.args.right_shift_logits:
            return logits[:, :seq_len]
        if self._reads_clean_half():  # every column was kept: select the shifted ones
            logits = logits[:, blocks.bd3lm_shift_columns(seq_len, self.block_size, logits.device)]
        return blocks.bd3lm_shift_logits_right(logits, seq_len, self.block_size)


class _PerRankNoise(TrainerCallback):
    """Data-parallel ranks start from the same seed; give each its own noise stream.

    Runs after the data sampler captured its seed (so shards stay disjoint); on resume the
    trainer then restores every rank's saved RNG state, so resume stays exact.
    """

    def on_train_begin(self, args, state, control, **kwargs):
        if args.world_size > 1:
            torch.manual_seed(args.seed + args.process_index)
