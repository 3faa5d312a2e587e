"""The AR-preserving recipes' part of the trainers: what each flag changes in one training step.

Every method is called only when its flag is on, so with all flags off a step is bit-identical to
the plain MDLM / BD3LM recipe (no extra random draws, no extra forwards). Flags: see
``MDLMConfig`` (``ar_loss_weight``, ``attention_anneal_steps``, ``distill_weight``,
``position_mask_strength``, ``complementary_masking``, ``full_mask_prob``, ``lr_multipliers``,
``semi_ar_block_size`` / ``semi_ar_block_schedule``) and ``BD3LMConfig`` (``block_size_schedule``).
References: DiffuLLaMA arXiv 2410.17891 (§3.2, annealing); Efficient-DLM arXiv 2512.14067
(position-dependent masking); LLaDA2.0 arXiv 2512.15745 and Fast-dLLM v2 arXiv 2509.26328
(complementary masking); TiDAR arXiv 2511.08923 (full-mask rows); OPDLM arXiv 2606.06712
(AR-teacher distillation); RND1 (layer-wise rates); LLaDA arXiv 2502.09992 (semi-AR blocks).
"""

from __future__ import annotations

import torch

from a2dkit.diffusion import attention, distillation, losses, masking
from a2dkit.diffusion.curriculum import BlockSchedule
from a2dkit.training.optim import lr_param_groups, parse_lr_multipliers

__all__ = ["RecipeMixin"]


class RecipeMixin:
    """Mixed into ``MDLMTrainer``: needs ``self.args``, ``self.schedule``, ``self.state``,
    ``self.mask_token_id`` and (for distillation) ``self.teacher``."""

    teacher: torch.nn.Module | None = None
    semi_ar_schedule: BlockSchedule | None = None  # MDLM's semi-AR training blocks (None: off)
    _semi_ar: tuple[torch.Tensor, ...] | None = None  # this step's (block, current, blocks)

    def _position_exponents(self, maskable: torch.Tensor) -> torch.Tensor:
        return masking.position_exponents(maskable, self.args.position_mask_strength)

    def _p_mask(self, t: torch.Tensor, maskable: torch.Tensor) -> torch.Tensor:
        """(B,) p_mask(t), or (B, L) 1 - α(t)^k_i with position-dependent masking."""
        if not self.args.position_mask_strength:
            return self.schedule.p_mask(t)
        return masking.positional_p_mask(self.schedule, t, self._position_exponents(maskable))

    def _loss_weight(self, t: torch.Tensor, maskable: torch.Tensor) -> torch.Tensor:
        """(B,) w(t), or (B, L) per-token weights -α_i'/(1 - α_i) of position-dependent masking."""
        kind = self.args.loss_weight_type
        if not self.args.position_mask_strength or kind == "uniform":
            weight = losses.loss_weights(t, self.schedule, kind)  # the shape of t
        else:
            weight = masking.positional_weight(self.schedule, t, self._position_exponents(maskable))
        if self.args.full_mask_prob:  # only full-mask rows have t = 1 (sample_t draws t < 1)
            full = (t == 1) if weight.dim() == t.dim() else (t == 1)[:, None]
            weight = torch.where(full, torch.ones_like(weight), weight)
        if self.semi_ar_schedule is not None:  # the noised block only, x its row's blocks
            weight = masking.semi_ar_weight(weight, *self._semi_ar)  # (B, L)
        return weight

    def _set_semi_ar_schedule(self, schedule: BlockSchedule | None) -> None:
        """MDLM's semi-AR blocks: the given curriculum, or the constant ``--semi_ar_block_size``."""
        size = self.args.semi_ar_block_size
        if schedule is not None and not size:
            raise ValueError("semi_ar_schedule= was given but --semi_ar_block_size is 0 (off); "
                             "set it to the block size the schedule ends at")  # fmt: skip
        if size and schedule is None:
            if self.args.semi_ar_block_schedule:
                raise ValueError(
                    f"semi_ar_block_schedule={self.args.semi_ar_block_schedule!r}: pass "
                    "semi_ar_schedule=training.setup.semi_ar_schedule(...) (it needs max_length)"
                )
            schedule = BlockSchedule(((size, None),))
        self.semi_ar_schedule = schedule

    def _semi_ar_recipe(self) -> dict:
        """The checkpoint's record of the semi-AR blocks; sampling reads ``block_size`` back."""
        if self.semi_ar_schedule is None:
            return {}
        final = self.semi_ar_schedule.final
        return {"semi_ar_block_schedule": self.semi_ar_schedule.to_list(),
                "semi_ar_block_size": final, "block_size": final}  # fmt: skip

    def _semi_ar_p_mask(self, p_mask: torch.Tensor, maskable: torch.Tensor) -> torch.Tensor:
        """(B, L) semi-AR masking probabilities: one block per row drawn (this step's size), the
        blocks before it clean, those after it masked (LLaDA's semi-AR sampling canvas)."""
        size = self.semi_ar_schedule.at(self.state.global_step)
        block, blocks = masking.semi_ar_blocks(maskable, size)
        current = masking.sample_semi_ar_block(blocks)
        self._semi_ar = (block, current, blocks)
        return masking.semi_ar_p_mask(p_mask, block, current)

    def _complement(self, x0, t, masked, maskable) -> tuple[torch.Tensor, ...]:
        """The complementary view: x_t, masked tokens and loss weights of ``maskable & ~masked``.

        Its time t' solves p_mask(t') = 1 - p_mask(t) (per token with position-dependent masking),
        so its weight is the NELBO weight at the rate it was masked with.
        """
        if self.semi_ar_schedule is None:
            xt_c, masked_c = masking.complement_mask(x0, masked, maskable, self.mask_token_id)
        else:  # the complement inside the noised block; the later blocks stay masked
            block, current, _ = self._semi_ar
            inside, later = block == current[:, None], block > current[:, None]
            xt_c, masked_c = masking.complement_mask(x0, masked & inside, maskable & inside,
                                                     self.mask_token_id)  # fmt: skip
            xt_c = torch.where(later, torch.full_like(xt_c, self.mask_token_id), xt_c)
            masked_c = masked_c | later
        eps = self.args.time_epsilon
        if self.args.position_mask_strength:
            k = self._position_exponents(maskable)  # (B, L)
            t_full = t[:, None].expand_as(k)
            t_c = masking.complement_time(
                lambda s: masking.positional_p_mask(self.schedule, s, k), t_full, eps=eps
            )  # (B, L)
        else:
            t_c = masking.complement_time(self.schedule.p_mask, t, eps=eps)  # (B,)
        return xt_c, masked_c, self._loss_weight(t_c, maskable)

    def _full_mask_time(self, t: torch.Tensor) -> torch.Tensor:
        """t = 1 (every maskable token masked) for a share ``full_mask_prob`` of the rows, one draw
        per row (TiDAR §3: the condition a one-step draft is read under). Their tokens weigh 1,
        TiDAR's plain cross-entropy (the linear schedule's w(1); position-dependent weights
        diverge at t = 1)."""
        full = torch.rand(t.shape, device=t.device) < self.args.full_mask_prob
        return torch.where(full, torch.ones_like(t), t)

    def _anneal_ratio(self) -> float:
        """DiffuLLaMA's share of future keys at this step (1: plain bidirectional attention)."""
        steps = self.args.attention_anneal_steps
        return attention.anneal_ratio(self.state.global_step, steps) if steps else 1.0

    def _annealed(self, seq_len: int, device) -> torch.Tensor:
        """(L, L) bool: causal plus a random share of future keys (one draw per step)."""
        return attention.annealed_causal(seq_len, self._anneal_ratio(), device=device)

    def _distill_unit(self) -> int | None:
        """Tokens per distillation unit: the whole row (MDLM) or one block (BD3LM)."""
        return None

    def _distill_kl(self, x0, masked, logits, attention_mask, views: int) -> torch.Tensor:
        """Summed KL(source || model) at the first masked token of each unit (its prefix clean)."""
        if self.teacher is None:
            raise ValueError(
                "distill_weight > 0 needs a teacher: pass teacher= (the source AR "
                "model) to the trainer, or --teacher_model_name_or_path"
            )
        rows = len(x0) // views
        mask = None if attention_mask is None else attention_mask[:rows]
        with torch.no_grad():
            teacher = self.teacher(input_ids=x0[:rows], attention_mask=mask).logits  # (B, L, V_t)
        # the teacher's logits at i - 1 predict token i, as the model's scored logits do
        scored = losses.shift_logits_right(teacher).repeat(views, 1, 1)
        positions = distillation.clean_prefix_positions(masked, self._distill_unit())
        positions[:, 0] = False  # the teacher has no prediction for a row's first token
        return distillation.teacher_kl(logits, scored, positions)

    def create_optimizer(self, model=None):
        """HF's optimizer, with one parameter group per ``--lr_multipliers`` rate when set."""
        if not self.args.lr_multipliers or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        groups = lr_param_groups(
            model,
            parse_lr_multipliers(self.args.lr_multipliers),
            self.args.learning_rate,
            self.args.weight_decay,
            set(self.get_decay_parameter_names(model)),
        )
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        self.optimizer = optimizer_cls(groups, **optimizer_kwargs)
        return self.optimizer
