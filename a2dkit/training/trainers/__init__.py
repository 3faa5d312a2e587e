"""MDLM and BD3LM trainers: HF ``Trainer`` subclasses wiring masking + losses + attention together.

The two differ only in the model input (``_model_inputs``): MDLM feeds x_t with bidirectional
attention (``mdlm``), BD3LM feeds ``[x_t ; x_0]`` under the staircase mask (``bd3lm``). There is
one copy of the loss. References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from a2dkit.training.trainers.bd3lm import BD3LMTrainer
from a2dkit.training.trainers.mdlm import MDLMTrainer, maskable_positions

__all__ = ["maskable_positions", "MDLMTrainer", "BD3LMTrainer"]
