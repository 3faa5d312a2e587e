"""MDLM and BD3LM trainers: HF ``Trainer`` subclasses wiring masking + losses + attention together.

The two differ only in the model input (``_forward``): MDLM feeds x_t with bidirectional attention,
BD3LM feeds ``[x_t, x_0]`` under the staircase mask. There is one copy of the loss.
References: MDLM arXiv 2406.07524 (§3, NELBO); BD3LM arXiv 2503.09573 (§3.2, vectorised training).
"""

from __future__ import annotations

import signal

import torch
from transformers import Trainer, TrainerCallback

from a2dkit import losses, masking
from a2dkit.modeling import check_attention_implementation
from a2dkit.schedules import make_schedule

__all__ = ["MDLMTrainer", "BD3LMTrainer", "PreemptionCallback"]


class MDLMTrainer(Trainer):
    """``transformers.Trainer`` whose loss is the MDLM NELBO; ``args`` is an ``MDLMConfig``."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.schedule = make_schedule(self.args.alpha_schedule)
        self.mask_token_id = _mask_token_id(self.model, self.processing_class)
        # our loss divides by the global denominator itself: HF must not divide again by GA steps
        self.loss_is_scaled_for_ga = True

    def _noise(self, x0: torch.Tensor, maskable: torch.Tensor):
        """Forward process q(x_t | x_0): t ~ U[eps, 1), each maskable token masked w.p. 1 - α(t)."""
        t = masking.sample_t(
            len(x0), eps=self.args.time_epsilon, antithetic=self.args.antithetic_t, device=x0.device
        )
        xt, masked = masking.mask_tokens(x0, self.schedule.p_mask(t), maskable, self.mask_token_id)
        return t, xt, masked

    def _forward(self, model, xt: torch.Tensor, x0: torch.Tensor, attention_mask) -> torch.Tensor:
        """MDLM: x_t alone, bidirectional over real tokens. Returns (B, L, V) logits."""
        return model(input_ids=xt, attention_mask=attention_mask).logits

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        x0, labels = inputs["input_ids"], inputs["labels"]  # (B, L)
        maskable = labels != -100  # prompt and pad tokens are never noised
        # === 1. forward process: sample t and mask tokens ===
        t, xt, masked = self._noise(x0, maskable)
        # === 2. model input (MDLM: x_t; BD3LM: [x_t, x_0] + staircase) and forward ===
        logits = self._forward(model, xt, x0, inputs.get("attention_mask"))
        # === 3. NELBO: w(t)-weighted CE on masked tokens, global normalisation ===
        weight = losses.loss_weights(t, self.schedule, self.args.loss_weight_type)
        loss = losses.mdlm_loss(
            logits,
            x0,
            masked,
            maskable,
            weight,
            norm_type=self.args.loss_norm_type,
            right_shift_logits=self.args.right_shift_logits,
            num_items=num_items_in_batch,
        )
        # === 4. data parallel: DDP/DeepSpeed average gradients; the denominator is global ===
        if num_items_in_batch is not None and self.args.world_size > 1:
            loss = loss * self.args.world_size
        return (loss, {"logits": logits}) if return_outputs else loss

    def _get_num_items_in_batch(self, batch_samples: list, device: torch.device):
        """The loss denominator of one optimizer step, summed over micro-batches (and ranks)."""
        if not batch_samples or "labels" not in batch_samples[0]:
            return None
        norm = self.args.loss_norm_type
        total = sum(losses.loss_denominator(b["labels"] != -100, norm) for b in batch_samples)
        total = torch.as_tensor(total, dtype=torch.float32, device=device)
        if self.args.world_size > 1:
            total = self.accelerator.gather(total).sum()
        return total


class BD3LMTrainer(MDLMTrainer):
    """Block diffusion: ``args`` is a ``BD3LMConfig``; only the model input differs from MDLM."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        check_attention_implementation(self.model.config._attn_implementation)

    def _forward(self, model, xt, x0, attention_mask) -> torch.Tensor:
        """BD3LM: ``[x_t, x_0]`` with positions ``[0..L-1, 0..L-1]`` under the staircase mask."""
        ids, position_ids, mask = losses.bd3lm_inputs(xt, x0, self.args.block_size)  # (B, 2L)
        if attention_mask is not None:  # padding: pad keys are never attended to
            keys = attention_mask.bool().repeat(1, 2)[:, None, None, :]  # (B, 1, 1, 2L)
            mask = mask & keys
        logits = model(input_ids=ids, position_ids=position_ids, attention_mask=mask).logits
        return losses.bd3lm_logits(logits)  # (B, L, V): the x_t half


def _mask_token_id(model, tokenizer) -> int:
    mask_id = getattr(tokenizer, "mask_token_id", None)
    if mask_id is None:
        mask_id = getattr(model.config, "mask_token_id", None)
    if mask_id is None:
        raise ValueError(
            "the model has no mask token (tokenizer.mask_token_id is None): convert it first "
            "with `python -m a2dkit.convert` or a2dkit.convert.to_diffusion"
        )
    return int(mask_id)


class PreemptionCallback(TrainerCallback):
    """On SIGUSR1/SIGTERM (Slurm's warning signal), save at the end of this step and stop.

    No optimizer step is lost: the checkpoint holds the state after the step that was running.
    """

    def __init__(self, signals=(signal.SIGUSR1, signal.SIGTERM)):
        self.signals, self.received = tuple(signals), None

    def _handler(self, signum, frame):
        self.received = signum

    def on_train_begin(self, args, state, control, **kwargs):
        for sig in self.signals:
            signal.signal(sig, self._handler)

    def on_step_end(self, args, state, control, **kwargs):
        if self.received is not None:
            control.should_save = True
            control.should_training_stop = True
        return control
