"""MDLM entry points: pt (continual pretraining), sft, sample, chat (dLLM examples/a2d/mdlm/)."""
