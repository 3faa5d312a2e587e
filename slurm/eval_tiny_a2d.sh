#!/usr/bin/env bash
# Evaluate a Tiny-A2D model with lm-eval: the published task list and sampler settings (dLLM A2D
# README "Tiny-A2D" evaluation; examples/a2d/{mdlm,bd3lm}/eval.sh). One lm-eval run per task.
# Slurm (1 node x 8 GPUs): ALGO=bd3lm MODEL=DIR sbatch [-p PARTITION] [-A ACCOUNT] slurm/eval_tiny_a2d.sh
# Without Slurm:           ALGO=bd3lm MODEL=DIR bash slurm/eval_tiny_a2d_local.sh [lm-eval flags]
# Check it first (no GPU): DRY_RUN=1 ALGO=mdlm bash slurm/eval_tiny_a2d.sh  (prints the commands)
# Extra arguments go to every lm-eval run (e.g. --limit 50). Every variable below can be set in
# the environment; a missing or malformed one stops the script before any GPU time is spent.
#SBATCH --job-name=eval-tiny-a2d
#SBATCH --nodes=1
#SBATCH --ntasks-per-node=1        # one `accelerate launch` with NUM_PROCESSES ranks
#SBATCH --gres=gpu:8
#SBATCH --time=24:00:00
#SBATCH --output=%x-%j.out
set -o pipefail
ALGO=${ALGO:-}                     # mdlm | bd3lm (required)
MODEL=${MODEL:-dllm-hub/Qwen3-0.6B-diffusion-$ALGO-v0.1}  # a checkpoint dir or a Hub id
TASKS=${TASKS:-gsm8k_cot bbh minerva_math mmlu mmlu_pro hellaswag humaneval_instruct mbpp_instruct}
FEWSHOT=${FEWSHOT:-bbh:3}          # task:shots pairs; other tasks are 0-shot (dLLM eval.sh)
MAX_NEW_TOKENS=${MAX_NEW_TOKENS:-256}
STEPS=${STEPS:-256}
BLOCK_SIZE=${BLOCK_SIZE:-}         # default: 256 for mdlm, 32 for bd3lm (the published settings)
CFG_SCALE=${CFG_SCALE:-0.0}
TEMPERATURE=${TEMPERATURE:-0.0}
MC_NUM=${MC_NUM:-128}              # Monte-Carlo ELBO draws per choice (mmlu, hellaswag)
MC_BATCH_SIZE=${MC_BATCH_SIZE:-32} # ELBO draws per forward pass
EXTRA_MODEL_ARGS=${EXTRA_MODEL_ARGS:-}  # more model_args, e.g. remasking=random,threshold=0.9
NUM_PROCESSES=${NUM_PROCESSES:-${SLURM_GPUS_ON_NODE:-8}}  # data-parallel ranks (GPUs)
model_name=${MODEL#./}
OUTPUT_DIR=${OUTPUT_DIR:-eval_results/${model_name//\//__}}  # then <ALGO>/<task>/
CHECK_TASKS=${CHECK_TASKS:-1}      # 1: check the task names with lm-eval first (~30 s, CPU)
PYTHON=${PYTHON:-python}

die() {
    echo "[a2dkit/eval] error: $*" >&2
    exit 2
}
int() { [[ "$2" =~ ^[0-9]+$ ]] && ((10#$2 >= $3)) || die "$1='$2' must be an integer >= $3"; }
num() { [[ "$2" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)$ ]] || die "$1='$2' must be a number >= 0 (e.g. 0.0)"; }

case $ALGO in
mdlm) BLOCK_SIZE=${BLOCK_SIZE:-256} ;;
bd3lm) BLOCK_SIZE=${BLOCK_SIZE:-32} ;;
*) die "ALGO='$ALGO' must be mdlm or bd3lm (e.g. ALGO=bd3lm sbatch slurm/eval_tiny_a2d.sh)" ;;
esac
for name in MAX_NEW_TOKENS STEPS BLOCK_SIZE MC_NUM MC_BATCH_SIZE NUM_PROCESSES; do
    int "$name" "${!name}" 1
done
num CFG_SCALE "$CFG_SCALE"
num TEMPERATURE "$TEMPERATURE"
[[ "$CHECK_TASKS" =~ ^[01]$ ]] || die "CHECK_TASKS='$CHECK_TASKS' must be 0 or 1"
[[ "$TASKS" =~ ^[[:space:]]*[A-Za-z0-9_.-]+([[:space:]]+[A-Za-z0-9_.-]+)*[[:space:]]*$ ]] ||
    die "TASKS='$TASKS' must be space-separated lm-eval task names"
[[ "$FEWSHOT" =~ ^([A-Za-z0-9_.-]+:[0-9]+( |$))*$ ]] || die "FEWSHOT='$FEWSHOT' must be" \
    "space-separated task:shots pairs, e.g. 'bbh:3 gsm8k_cot:5'"
[ -n "$OUTPUT_DIR" ] || die "OUTPUT_DIR is empty"
if [[ "$MODEL" == /* || "$MODEL" == .* || -e "$MODEL" ]]; then
    [ -f "$MODEL/config.json" ] || die "MODEL='$MODEL' is not a checkpoint dir (no config.json)"
fi
fewshot() { # TASK -> its number of few-shot examples
    local pair
    for pair in $FEWSHOT; do [ "${pair%%:*}" = "$1" ] && echo "${pair##*:}" && return; done
    echo 0
}

MODEL_ARGS="pretrained=$MODEL,max_new_tokens=$MAX_NEW_TOKENS,steps=$STEPS,block_size=$BLOCK_SIZE"
MODEL_ARGS+=",cfg_scale=$CFG_SCALE,temperature=$TEMPERATURE,mc_num=$MC_NUM"
MODEL_ARGS+=",mc_batch_size=$MC_BATCH_SIZE${EXTRA_MODEL_ARGS:+,$EXTRA_MODEL_ARGS}"
# pre-flight on the CPU: model_args keys and sampler settings (steps >= blocks ...), task names
"$PYTHON" -m a2dkit.cli.eval_check "a2d_$ALGO" "$MODEL_ARGS" || die "fix the model_args above"
if [ "$CHECK_TASKS" = 1 ]; then
    # shellcheck disable=SC2086
    "$PYTHON" - $TASKS <<'EOF' || die "unknown lm-eval task(s); see above (TASKS='$TASKS')"
import sys
from a2dkit.eval.tasks import task_manager
known = set(task_manager().all_tasks)
unknown = [t for t in sys.argv[1:] if t not in known]
if unknown:
    sys.exit(f"lm-eval does not know {unknown}")
EOF
fi

export HF_ALLOW_CODE_EVAL=1  # humaneval/mbpp run the generated code: do it in a sandboxed job
MAIN_PORT=${MAIN_PORT:-$((20000 + ${SLURM_JOB_ID:-$$} % 20000))}
launch=("$PYTHON" -m accelerate.commands.launch --num_processes "$NUM_PROCESSES" --num_machines 1
    --mixed_precision no --dynamo_backend no --main_process_port "$MAIN_PORT")
((NUM_PROCESSES > 1)) && launch+=(--multi_gpu) # torchrun: one rank per GPU (gloo on CPU)
for task in $TASKS; do
    cmd=("${launch[@]}" -m a2dkit.eval --model "a2d_$ALGO" --model_args "$MODEL_ARGS"
        --tasks "$task" --num_fewshot "$(fewshot "$task")" --apply_chat_template
        --log_samples --output_path "$OUTPUT_DIR/$ALGO/$task")
    [[ "$task" == humaneval* || "$task" == mbpp* ]] && cmd+=(--confirm_run_unsafe_code)
    cmd+=("$@")
    echo "[a2dkit/eval] $task: ${cmd[*]}" >&2
    [ "${DRY_RUN:-0}" = 1 ] && continue
    "${cmd[@]}" || die "lm-eval failed on $task (results so far are in $OUTPUT_DIR/$ALGO)"
done
[ "${DRY_RUN:-0}" = 1 ] && echo "[a2dkit/eval] DRY_RUN=1: settings are valid; nothing was run" >&2
exit 0
