"""The BD3LM trainer: the MDLM trainer with block diffusion's input, ``[x_t ; x_0]`` under the
staircase mask (BD3LM's block-causal clean stream, or TiDAR's causal one).

References: BD3LM arXiv 2503.09573 (§3.2, vectorized training); TiDAR arXiv 2511.08923 (§3).
"""

from __future__ import annotations

from typing import Any

import torch

from a2dkit.diffusion import attention, blocks
from a2dkit.diffusion.curriculum import BlockSchedule
from a2dkit.models.conventions import check_attention_implementation
from a2dkit.training.config import BD3LMConfig
from a2dkit.training.trainers.mdlm import MDLMTrainer

__all__ = ["BD3LMTrainer"]


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
