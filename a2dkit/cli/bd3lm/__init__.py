"""BD3LM entry points: pt (continual pretraining), sft, sample, chat (dLLM examples/a2d/bd3lm/)."""
