"""diffu-GRPO for A2D models (MDLM and BD3LM): log-probabilities, trainers, rewards and tasks.

References: d1 arXiv 2504.12216 (diffu-GRPO); GRPO arXiv 2402.03300; BD3LM arXiv 2503.09573.
"""

from a2dkit.grpo.config import DiffuGRPOConfig
from a2dkit.grpo.trainer import BD3LMGRPOTrainer, MDLMGRPOTrainer

__all__ = ["DiffuGRPOConfig", "MDLMGRPOTrainer", "BD3LMGRPOTrainer"]
