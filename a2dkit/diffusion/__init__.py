"""The maths of masked and block diffusion, tensors in and tensors out (no Trainer, no I/O):
schedules alpha(t), the forward process q(x_t | x_0), one reverse step, attention masks, the
NELBO loss and BD3LM's blocks.

References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; LLaDA arXiv 2502.09992.
"""

from a2dkit.diffusion import attention, blocks, denoise, losses, masking, schedules

__all__ = ["attention", "blocks", "denoise", "losses", "masking", "schedules"]
