#!/usr/bin/env bash
# diffu-GRPO of the Tiny-A2D MDLM model (dLLM examples/rl/grpo/a2d: 8 GPUs, ZeRO-2, LoRA r=128).
# From the repo root: sbatch [-p PARTITION] [-A ACCOUNT] slurm/grpo_tiny_a2d_mdlm.sh [trainer flags]
# Check it first (login node, no GPU): DRY_RUN=1 bash slurm/grpo_tiny_a2d_mdlm.sh
# DATASET: gsm8k, countdown, math, code (Hub) or sudoku, a2dkit/countdown (generated offline).
#SBATCH --job-name=grpo-tiny-a2d-mdlm
#SBATCH --nodes=1                   # dLLM: 1 node x 8 GPUs
#SBATCH --ntasks-per-node=1         # one `accelerate launch` per node (slurm/_launch.sh)
#SBATCH --gres=gpu:8
#SBATCH --exclusive
#SBATCH --time=48:00:00
#SBATCH --requeue                   # preemption-safe: the job requeues itself and resumes
#SBATCH --signal=B:USR1@300         # warning 5 min before the limit: checkpoint, then requeue
#SBATCH --open-mode=append          # one log across requeues
#SBATCH --output=%x-%j.out
set -o pipefail  # no -u: a missing recipe variable gets a clear error from _launch.sh
A2D_ROOT=${A2D_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
source "$A2D_ROOT/slurm/_launch.sh" || { echo "run from the a2dkit repo or set A2D_ROOT" >&2; exit 2; }
a2d_overrides mdlm grpo            # STAGE=grpo: check_recipe.py parses the GRPO flags
MODEL=${MODEL:-dllm-hub/Qwen3-0.6B-diffusion-mdlm-v0.1}  # already A2D: no conversion
CONVERTED=${CONVERTED:-$MODEL}
DATASET=${DATASET:-gsm8k}
MAX_LENGTH=${MAX_LENGTH:-256}       # --max_completion_length
BLOCK_SIZE=${BLOCK_SIZE:-32}
STEPS=${STEPS:-128}                 # denoising steps per completion
MAX_STEPS=${MAX_STEPS:-15000}
EPOCHS=${EPOCHS:-1}                 # unused: GRPO runs for MAX_STEPS
LR=${LR:-3e-6}
PER_DEVICE_BATCH=${PER_DEVICE_BATCH:-6}
NUM_GENERATIONS=${NUM_GENERATIONS:-6}
GRAD_ACCUM=${GRAD_ACCUM:-2}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NUM_NODES=${NUM_NODES:-1}
GLOBAL_BATCH=${GLOBAL_BATCH:-96}    # checked: PER_DEVICE_BATCH x GRAD_ACCUM x nodes x GPUS_PER_NODE
BF16=${BF16:-True}
ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-zero2}
OUTPUT_DIR=${OUTPUT_DIR:-.models/a2d/${MODEL##*/}/grpo/$DATASET}
MIN_FREE_GB=${MIN_FREE_GB:-20}      # LoRA adapters and their optimizer state are small
a2d_launch a2dkit.cli.mdlm.grpo --model_name_or_path "$CONVERTED" --dataset "$DATASET" \
    --lora_r 128 --lora_alpha 64 --lora_dropout 0.05 --max_steps "$MAX_STEPS" \
    --learning_rate "$LR" --num_generations "$NUM_GENERATIONS" \
    --per_device_train_batch_size "$PER_DEVICE_BATCH" --gradient_accumulation_steps "$GRAD_ACCUM" \
    --num_iterations 12 --block_size "$BLOCK_SIZE" --steps "$STEPS" \
    --max_completion_length "$MAX_LENGTH" --p_mask_prompt 0.15 --beta 0.04 --epsilon 0.5 \
    --bf16 "$BF16" --output_dir "$OUTPUT_DIR" -- "$@"
# dLLM also passes --sync_ref_model True --ref_model_sync_steps 64; TRL 1.16 refuses it with LoRA
# (the reference is the adapter-free base model): add both with TRAIN_ARGS="--lora_r 0 ...".
