#!/usr/bin/env bash
# Plain-shell twin of slurm/eval_tiny_a2d.sh for a machine without Slurm: same variables and
# checks; NUM_PROCESSES defaults to the visible GPUs (1 without GPUs).
# Run: ALGO=bd3lm MODEL=DIR bash slurm/eval_tiny_a2d_local.sh [lm-eval flags, e.g. --limit 50]
gpus=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU')
export NUM_PROCESSES=${NUM_PROCESSES:-$((gpus > 0 ? gpus : 1))}
exec bash "$(dirname "$0")/eval_tiny_a2d.sh" "$@"
