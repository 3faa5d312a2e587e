"""Training: the MDLM and BD3LM ``Trainer`` subclasses and their configs (HF style, dLLM flags),
exact resume and preemption, checkpoints, LoRA, and what an entry point prepares before training.

References: MDLM arXiv 2406.07524 (§3, NELBO); BD3LM arXiv 2503.09573 (§3.2, vectorized training).
"""

from a2dkit.training.config import BD3LMConfig, DataArguments, MDLMConfig, ModelArguments
from a2dkit.training.resumable import PreemptionCallback
from a2dkit.training.trainers import BD3LMTrainer, MDLMTrainer

__all__ = [
    "BD3LMConfig",
    "BD3LMTrainer",
    "DataArguments",
    "MDLMConfig",
    "MDLMTrainer",
    "ModelArguments",
    "PreemptionCallback",
]
