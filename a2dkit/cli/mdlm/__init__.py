"""MDLM entry points: pt (continual pretraining), sft, mirroring dLLM examples/a2d/mdlm/."""
