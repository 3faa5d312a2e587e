"""Command-line entry points, mirroring dLLM examples/a2d/{mdlm,bd3lm}/{pt,sft,sample,chat}.py."""
