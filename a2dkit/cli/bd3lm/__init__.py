"""BD3LM entry points: pt (continual pretraining), sft, mirroring dLLM examples/a2d/bd3lm/."""
