"""``DiffuGRPOConfig``: TRL's ``GRPOConfig`` plus the diffusion flags of dLLM's ``DiffuGRPOConfig``.

TRL already owns ``--num_generations --num_iterations --beta --epsilon --max_completion_length
--sync_ref_model --ref_model_sync_steps --temperature``; this adds the sampler's ``--block_size
--steps --cfg_scale --remasking --threshold --kv_cache`` and the log-probability estimator's
``--p_mask_prompt``. References: d1 arXiv 2504.12216 (diffu-GRPO); dLLM ``DiffuGRPOConfig``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import GRPOConfig

from a2dkit.diffusion.denoise import REMASKING
from a2dkit.grpo.logprobs import check_p_mask_prompt
from a2dkit.samplers.mdlm import MDLM_KV_CACHE_MODES

__all__ = ["DiffuGRPOConfig"]


@dataclass
class DiffuGRPOConfig(GRPOConfig):
    """GRPO options for A2D models (defaults: dLLM's a2d/mdlm recipe, 1-GPU quick test).

    ``scale_rewards="none"`` as in d1 (advantages are not divided by the group std);
    ``block_size`` is the sampler's block (and, for BD3LM, the model's block).
    """

    block_size: int = field(
        default=32, metadata={"help": "sampler block size (BD3LM: the model's)"}
    )
    steps: int = field(default=128, metadata={"help": "denoising steps for the whole completion"})
    cfg_scale: float = field(default=0.0, metadata={"help": "classifier-free guidance (0 = off)"})
    remasking: str = field(default="low_confidence", metadata={"help": str(REMASKING)})
    threshold: float | None = field(
        default=None, metadata={"help": "Fast-dLLM parallel decoding threshold in (0, 1]"}
    )
    kv_cache: str = field(
        default="none",
        metadata={"help": "MDLM sampler: Fast-dLLM cache none|prefix|dual (BD3LM always caches)"},
    )
    p_mask_prompt: float = field(
        default=0.15, metadata={"help": "log-prob estimate: mask each prompt token w.p. this"}
    )
    max_completion_length: int | None = 256
    num_generations: int | None = 6
    beta: float = 0.04
    epsilon: float = 0.5
    temperature: float = 0.9
    scale_rewards: str = "none"
    learning_rate: float = 3e-6
    logging_steps: float = 1

    def __post_init__(self) -> None:
        check_p_mask_prompt(self.p_mask_prompt)
        for name in ("block_size", "steps", "max_completion_length"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.remasking not in REMASKING:
            raise ValueError(
                f"remasking={self.remasking!r} is not valid; choose one of {REMASKING}"
            )
        if self.kv_cache not in MDLM_KV_CACHE_MODES:
            raise ValueError(
                f"kv_cache={self.kv_cache!r} is not valid; choose one of {MDLM_KV_CACHE_MODES}"
            )
        if self.cfg_scale < 0:
            raise ValueError(f"cfg_scale={self.cfg_scale} must be >= 0")
        super().__post_init__()
