#!/usr/bin/env bash
# Tiny-A2D, BD3LM: SFT of Qwen/Qwen3-0.6B (converted) -> Qwen3-0.6B-diffusion-bd3lm-v0.1 (dLLM).
# From the repo root: sbatch [-p PARTITION] [-A ACCOUNT] slurm/tiny_a2d_bd3lm.sh [trainer flags]
# Check it first (login node, no GPU): DRY_RUN=1 bash slurm/tiny_a2d_bd3lm.sh
# Coder variant (Qwen2.5-Coder-0.5B-Instruct, opc-sft stage 1+2, batch 1536): VARIANT=coder sbatch
# Every variable below can be set in the environment; A2DKIT_SCALE=smoke loads slurm/smoke.env.
#SBATCH --job-name=tiny-a2d-bd3lm
#SBATCH --nodes=8                   # 8 nodes x 8 GPUs = 64 GPUs (dLLM: about 10 h on A100s)
#SBATCH --ntasks-per-node=1         # one `accelerate launch` per node (slurm/_launch.sh)
#SBATCH --gres=gpu:8
#SBATCH --exclusive                 # whole nodes: every CPU for the 8 ranks' data loaders
#SBATCH --time=12:00:00
#SBATCH --requeue                   # preemption-safe: the job requeues itself and resumes
#SBATCH --signal=B:USR1@300         # warning 5 min before the limit: checkpoint, then requeue
#SBATCH --open-mode=append          # one log across requeues
#SBATCH --output=%x-%j.out
set -o pipefail  # no -u: a missing recipe variable gets a clear error from _launch.sh
A2D_ROOT=${A2D_ROOT:-${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}}
source "$A2D_ROOT/slurm/_launch.sh" || { echo "run from the a2dkit repo or set A2D_ROOT" >&2; exit 2; }
a2d_overrides bd3lm                 # A2DKIT_SCALE=smoke, VARIANT=coder: slurm/<name>.env
MODEL=${MODEL:-Qwen/Qwen3-0.6B}     # the AR base model, converted once to CONVERTED
CONVERTED=${CONVERTED:-.models/a2d/${MODEL##*/}}
DATASET=${DATASET:-allenai/tulu-3-sft-mixture+HuggingFaceTB/smoltalk+OpenCoder-LLM/opc-sft-stage1[lang:python]+OpenCoder-LLM/opc-sft-stage2[lang:python]}
DATA_NAME=${DATA_NAME:-tulu-3-sft-mixture+smoltalk+opc-sft-stage1&2}
MAX_LENGTH=${MAX_LENGTH:-512}
BLOCK_SIZE=${BLOCK_SIZE:-32}        # BD3LM block; must divide MAX_LENGTH
EPOCHS=${EPOCHS:-10}
LR=${LR:-1e-4}
PER_DEVICE_BATCH=${PER_DEVICE_BATCH:-16}
GRAD_ACCUM=${GRAD_ACCUM:-2}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
NUM_NODES=${NUM_NODES:-8}           # used outside Slurm (DRY_RUN=1); a job uses its allocation
GLOBAL_BATCH=${GLOBAL_BATCH:-2048}  # checked: PER_DEVICE_BATCH x GRAD_ACCUM x nodes x GPUS_PER_NODE
BF16=${BF16:-True}
ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-zero2}  # DeepSpeed ZeRO-2 (a2dkit/accelerate_configs)
OUTPUT_DIR=${OUTPUT_DIR:-.models/a2d/${MODEL##*/}/bd3lm/$DATA_NAME/epochs-$EPOCHS-bs-$GLOBAL_BATCH-len-$MAX_LENGTH-bls-$BLOCK_SIZE}
MIN_FREE_GB=${MIN_FREE_GB:-100}     # checkpoints with optimizer state are several GB each
a2d_launch a2dkit.cli.bd3lm.sft --model_name_or_path "$CONVERTED" --dataset_args "$DATASET" \
    --max_length "$MAX_LENGTH" --block_size "$BLOCK_SIZE" --num_train_epochs "$EPOCHS" \
    --learning_rate "$LR" --per_device_train_batch_size "$PER_DEVICE_BATCH" \
    --gradient_accumulation_steps "$GRAD_ACCUM" --per_device_eval_batch_size "$PER_DEVICE_BATCH" \
    --bf16 "$BF16" --output_dir "$OUTPUT_DIR" -- "$@"
