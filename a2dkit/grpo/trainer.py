"""diffu-GRPO trainers for A2D models: TRL's ``GRPOTrainer``, diffusion generation and log-probs.

Inherited from TRL unchanged: the clipped objective, the KL to a reference model (and its
syncing), reward scoring and group advantages, LoRA handling, multi-process training. Overridden:
generation (``_generate_single_turn``: a2dkit's MDLM / BD3LM samplers, threshold decoding and the
KV cache included), the per-token log-probabilities (``_get_per_token_logps_and_entropies``:
``a2dkit.grpo.logprobs``), and the per-iteration prompt-mask seeds that keep old, new and
reference log-probs of one inner iteration on the same masked prompt (d1, arXiv 2504.12216 §3.2).
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import torch
import trl.trainer.grpo_trainer as trl_grpo
from trl import GRPOTrainer
from trl.models import unwrap_model_for_generation
from trl.trainer.utils import use_adapter

from a2dkit.grpo import logprobs
from a2dkit.grpo.completions import cut_after_eos
from a2dkit.grpo.config import DiffuGRPOConfig
from a2dkit.models.conventions import mask_token_id, trained_shift
from a2dkit.samplers import BD3LMSampler, BD3LMSamplerConfig, MDLMSampler, MDLMSamplerConfig

__all__ = ["MDLMGRPOTrainer", "BD3LMGRPOTrainer"]

SEED_HIGH = 2**31 - 1


@contextlib.contextmanager
def _reference_is_a_copy(policy: torch.nn.Module):
    """TRL builds the reference model with AutoModelForCausalLM from the policy's path; an A2D
    model is no causal LM (and may exist only in memory), so the reference is a frozen copy.

    The copy replaces TRL's factory for the length of ``__init__`` only, so every step TRL takes
    on its reference model (dropout off, fp32 head, DeepSpeed/FSDP preparation, the sync
    callback) still runs on it; building it after ``__init__`` would have to repeat them."""
    original = trl_grpo.create_model_from_path

    def copy_policy(model_id: str, architecture=None, **kwargs):
        return copy.deepcopy(policy).requires_grad_(False).eval()

    trl_grpo.create_model_from_path = copy_policy
    try:
        yield
    finally:
        trl_grpo.create_model_from_path = original


class MDLMGRPOTrainer(GRPOTrainer):
    """diffu-GRPO for an MDLM A2D model; ``args`` must be a
    :class:`~a2dkit.grpo.config.DiffuGRPOConfig`.

    Args: as ``trl.GRPOTrainer`` (pass the tokenizer, with its mask token, as ``processing_class``).
    """

    sampler_class, sampler_config_class = MDLMSampler, MDLMSamplerConfig

    def __init__(self, model, reward_funcs, args: DiffuGRPOConfig, **kwargs: Any) -> None:
        if not isinstance(args, DiffuGRPOConfig):
            raise TypeError(
                f"{type(self).__name__} needs a DiffuGRPOConfig, got {type(args).__name__}"
            )
        if isinstance(model, str):
            raise TypeError(
                "pass a loaded A2D model (a2dkit.training.setup.load_model), not a path"
            )
        mask_id = mask_token_id(model, kwargs.get("processing_class"))  # the A2D tokenizer
        if trained_shift(model):
            raise ValueError(
                "the model was trained with right_shift_logits=True, and diffu-GRPO's per-token "
                "log-probs (d1) read token i at position i: start GRPO from an unshifted "
                "checkpoint (SFT without --right_shift_logits)"
            )
        with _reference_is_a_copy(model):
            super().__init__(model, reward_funcs, args, **kwargs)
        self.mask_token_id = mask_id
        self.sampler_config = self._make_sampler_config()
        self._row_seeds: torch.Tensor | None = None  # (B,): set only inside _mask_seeds

    def _make_sampler_config(self):
        a = self.args
        return self.sampler_config_class(
            max_new_tokens=a.max_completion_length, block_size=a.block_size, steps=a.steps,
            temperature=a.temperature or 0.0, remasking=a.remasking, cfg_scale=a.cfg_scale,
            threshold=a.threshold, return_history=False, **self._cache_option(),
        )  # fmt: skip

    def _cache_option(self) -> dict[str, str]:
        return {"kv_cache": self.args.kv_cache}  # Fast-dLLM's prefix/dual cache, or none

    # ---- generation: iterative denoising instead of AR decoding ----
    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, *a):
        """Sample completions with a2dkit's sampler; each list is cut after its first EOS."""
        if images is not None:
            raise ValueError("A2D GRPO trainers are text-only; got images in the prompts")
        chunk = self.args.generation_batch_size or len(prompt_ids)
        rows: list[list[int]] = []
        with unwrap_model_for_generation(
            self.model_wrapped, self.accelerator,
            gather_deepspeed3_params=self.args.ds3_gather_for_generation,
        ) as unwrapped:  # fmt: skip
            was_training = unwrapped.training
            sampler = self.sampler_class(unwrapped, self.processing_class)
            for i in range(0, len(prompt_ids), chunk):
                out = sampler.sample(list(prompt_ids[i : i + chunk]), self.sampler_config)
                rows += out.sequences[:, out.gen_start : out.gen_end].tolist()
            unwrapped.train(was_training)  # the sampler switched the model to eval
        return [cut_after_eos(r, self.eos_token_ids) for r in rows], None

    # ---- per-iteration prompt-mask seeds ----
    @contextlib.contextmanager
    def _mask_seeds(self, seeds: torch.Tensor):
        """Every log-prob TRL asks for inside this block masks the prompt with ``seeds`` (B,).

        TRL's hooks (``_get_per_token_logps_and_entropies``) have no argument for them, so the
        three callers that know the iteration (rollout, re-scoring, loss) set them here.
        """
        previous, self._row_seeds = self._row_seeds, seeds
        try:
            yield
        finally:
            self._row_seeds = previous

    def _generate_and_score_completions(self, inputs):
        """TRL's rollout and scoring; old/ref log-probs become (B, I, C), one per iteration seed."""
        seeds = torch.randint(SEED_HIGH, (len(inputs), self.num_iterations))  # (B, I)
        with self._mask_seeds(seeds[:, 0]):
            out = super()._generate_and_score_completions(inputs)
        out["mask_seeds"] = seeds.to(out["completion_ids"].device)
        ids = torch.cat([out["prompt_ids"], out["completion_ids"]], 1)
        mask = torch.cat([out["prompt_mask"], out["completion_mask"]], 1)
        keep = out["completion_ids"].shape[1]
        for key in ("old_per_token_logps", "ref_per_token_logps"):
            if key in out:
                per_iter = [out[key]] + [
                    self._logps_no_grad(key, ids, mask, keep, seeds[:, i])
                    for i in range(1, self.num_iterations)
                ]
                out[key] = torch.stack(per_iter, dim=1)  # (B, I, C)
        return out

    @torch.no_grad()
    def _logps_no_grad(self, key: str, ids, mask, keep: int, seeds) -> torch.Tensor:
        """Old (policy) or reference log-probs under another iteration's prompt mask."""
        size = self.args.per_device_train_batch_size
        with self._mask_seeds(seeds):
            if key == "old_per_token_logps" or self.ref_model is not None:
                model = self.model if key == "old_per_token_logps" else self.ref_model
                return self._get_per_token_logps_and_entropies(model, ids, mask, keep, size)[0]
            unwrapped = self.accelerator.unwrap_model(self.model)
            ref = "ref" if "ref" in unwrapped.peft_config else None
            with use_adapter(unwrapped, adapter_name=ref):
                return self._get_per_token_logps_and_entropies(self.model, ids, mask, keep, size)[0]

    def _compute_loss(self, model, inputs):
        """TRL's loss on the slices of the current inner iteration (its seed, old and ref)."""
        it = (self._step // self.args.steps_per_generation) % self.num_iterations
        it = it if self.model.training else 0
        inputs = dict(inputs)
        for key in ("old_per_token_logps", "ref_per_token_logps"):
            if key in inputs:
                inputs[key] = inputs[key][:, it]
        with self._mask_seeds(inputs["mask_seeds"][:, it]):
            return super()._compute_loss(model, inputs)

    # ---- per-token log-probabilities: the one-step diffusion estimate ----
    def _completion_logits(self, model, ids, mask, keep, seeds) -> torch.Tensor:
        return logprobs.mdlm_completion_logits(
            model, ids, mask, keep, self.mask_token_id, seeds,
            p_mask_prompt=self.args.p_mask_prompt, cfg_scale=self.args.cfg_scale,
        )  # fmt: skip

    def _get_per_token_logps_and_entropies(
        self, model, input_ids, attention_mask, logits_to_keep, batch_size=None,
        compute_entropy=False, compute_aux_loss=False, **unused,
    ):  # fmt: skip
        """(B, C) log-probs (0 after EOS), (B, C) entropies or None, no aux loss."""
        seeds = self._row_seeds
        if seeds is None or len(seeds) != len(input_ids):
            raise RuntimeError(
                f"no prompt-mask seeds for a batch of {len(input_ids)} rows: log-probs are "
                "computed only inside _mask_seeds (rollout, re-scoring or the loss)"
            )
        size = batch_size or len(input_ids)
        logps, entropies = [], []
        for s in range(0, len(input_ids), size):
            rows = slice(s, s + size)
            with self.accelerator.autocast():
                logits = self._completion_logits(
                    model, input_ids[rows], attention_mask[rows], logits_to_keep, seeds[rows]
                )  # (b, C, V)
            logps.append(logprobs.token_logprobs(logits, input_ids[rows, -logits_to_keep:]))
            if compute_entropy:
                entropies.append(logprobs.token_entropy(logits))
        completion_mask = attention_mask[:, -logits_to_keep:]
        logps = torch.cat(logps) * completion_mask  # post-EOS zeros: no inf * 0 in TRL's loss
        return logps, (torch.cat(entropies) if compute_entropy else None), None


class BD3LMGRPOTrainer(MDLMGRPOTrainer):
    """diffu-GRPO for a BD3LM A2D model: block sampler with KV cache, block-wise log-probs."""

    sampler_class, sampler_config_class = BD3LMSampler, BD3LMSamplerConfig

    def _cache_option(self) -> dict[str, str]:
        if self.args.kv_cache != "none":  # BD3LM caches the clean blocks by construction
            raise ValueError(f"kv_cache={self.args.kv_cache!r} is an MDLM option; BD3LM's sampler "
                             "always reuses its KV cache (leave kv_cache='none')")  # fmt: skip
        return {}

    def _completion_logits(self, model, ids, mask, keep, seeds) -> torch.Tensor:
        return logprobs.bd3lm_completion_logits(
            model, ids, mask, keep, self.mask_token_id, seeds, self.args.block_size,
            p_mask_prompt=self.args.p_mask_prompt, cfg_scale=self.args.cfg_scale,
        )  # fmt: skip
