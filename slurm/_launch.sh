# shellcheck shell=bash
# Shared multi-node launcher of the Tiny-A2D recipes (sourced by slurm/tiny_a2d_*.sh; srun runs it
# once per node). It validates the recipe, converts the base model once, runs one `accelerate
# launch` per node and, on Slurm's warning signal (USR1), lets every trainer checkpoint after its
# current optimizer step, then requeues the job, which resumes from that checkpoint.
# Recipe variables: MODEL CONVERTED DATASET MAX_LENGTH [BLOCK_SIZE] EPOCHS LR PER_DEVICE_BATCH
# GRAD_ACCUM GPUS_PER_NODE NUM_NODES GLOBAL_BATCH BF16 ACCELERATE_CONFIG OUTPUT_DIR MIN_FREE_GB.
# Optional: MAIN_PORT, PYTHON, TRAIN_ARGS (extra trainer flags), LAUNCH_ARGS (extra `accelerate
# launch` flags), MAX_REQUEUES (default 20), DRY_RUN=1 (check the recipe, run nothing).
# References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573; dLLM scripts/train.slurm.sh.

a2d_log() { echo "[a2dkit/slurm] $*" >&2; }
a2d_die() {
    echo "[a2dkit/slurm] error: $*" >&2
    exit 2
}

a2d_on_usr1() { # Slurm's warning (--signal=B:USR1@300): every rank stops after this step
    A2D_PREEMPTED=1
    if [ -n "${A2DKIT_STOP_FILE:-}" ]; then
        mkdir -p -- "$(dirname -- "$A2DKIT_STOP_FILE")" && : >"$A2DKIT_STOP_FILE"
    fi
    a2d_log "USR1: the trainers checkpoint after this optimizer step; then the job requeues"
}

a2d_overrides() { # ALGO [STAGE=sft|grpo]: A2DKIT_SCALE=smoke -> slurm/smoke.env
    # (STAGE=grpo: slurm/grpo_smoke.env); VARIANT=NAME -> slurm/NAME.env
    ALGO=$1
    STAGE=${2:-sft}
    case ${A2DKIT_SCALE:-full} in
    full) ;;
    smoke) if [ "$STAGE" = grpo ]; then source "$A2D_ROOT/slurm/grpo_smoke.env"; else
        source "$A2D_ROOT/slurm/smoke.env"; fi ;;
    *) a2d_die "A2DKIT_SCALE='$A2DKIT_SCALE' is not a recipe scale; use full or smoke" \
        "(warmup is a one-GPU run: see notebooks 03-07)" ;;
    esac
    [ -z "${VARIANT:-}" ] && return
    local variants
    variants=$(cd "$A2D_ROOT/slurm" && ls -- *.env | sed 's/\.env$//' | grep -v 'smoke$' | tr '\n' ' ')
    [[ "$VARIANT" =~ ^[a-z0-9_-]+$ && -f "$A2D_ROOT/slurm/$VARIANT.env" ]] ||
        a2d_die "VARIANT='$VARIANT' is not one of: $variants(slurm/<name>.env)"
    source "$A2D_ROOT/slurm/$VARIANT.env"
}

a2d_int() { # NAME VALUE MIN: VALUE must be an integer >= MIN
    [[ "$2" =~ ^[0-9]+$ ]] && ((10#$2 >= $3)) ||
        a2d_die "$1='$2' must be an integer >= $3 (set it in the environment, e.g. $1=8)"
}

a2d_number() { # NAME VALUE: VALUE must be a positive decimal number (1e-4, 0.5, 10)
    [[ "$2" =~ ^([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$ ]] && [[ ! "$2" =~ ^[0.]+([eE].*)?$ ]] ||
        a2d_die "$1='$2' must be a positive number such as 1e-4 or 10"
}

a2d_divisors() { # N: the divisors of N, space separated
    local d out=""
    for ((d = 1; d <= $1; d++)); do (($1 % d == 0)) && out+="$d "; done
    echo "${out% }"
}

a2d_check_vars() { # every recipe variable present and well formed; the batch arithmetic adds up
    local name
    for name in MODEL CONVERTED DATASET OUTPUT_DIR ACCELERATE_CONFIG; do
        [ -n "${!name:-}" ] || a2d_die "$name is empty; set it at the top of the recipe or in the env"
    done
    NUM_NODES=${SLURM_JOB_NUM_NODES:-${NUM_NODES:-}} # in a job: the allocation decides
    for name in NUM_NODES GPUS_PER_NODE PER_DEVICE_BATCH GRAD_ACCUM MAX_LENGTH GLOBAL_BATCH; do
        a2d_int "$name" "${!name:-}" 1
    done
    a2d_int MIN_FREE_GB "${MIN_FREE_GB:-}" 0
    a2d_number EPOCHS "${EPOCHS:-}"
    a2d_number LR "${LR:-}"
    [[ "${BF16:-}" =~ ^(True|False)$ ]] || a2d_die "BF16='${BF16:-}' must be True or False"
    if [ "$ALGO" = bd3lm ]; then
        a2d_int BLOCK_SIZE "${BLOCK_SIZE:-}" 1
        ((MAX_LENGTH % BLOCK_SIZE == 0)) || a2d_die "BLOCK_SIZE=$BLOCK_SIZE must divide" \
            "MAX_LENGTH=$MAX_LENGTH; try one of: $(a2d_divisors "$MAX_LENGTH")"
    fi
    WORLD_SIZE=$((NUM_NODES * GPUS_PER_NODE))
    local batch=$((PER_DEVICE_BATCH * GRAD_ACCUM * WORLD_SIZE))
    ((GLOBAL_BATCH == batch)) || a2d_die "GLOBAL_BATCH=$GLOBAL_BATCH but PER_DEVICE_BATCH=" \
        "$PER_DEVICE_BATCH x GRAD_ACCUM=$GRAD_ACCUM x $NUM_NODES node(s) x GPUS_PER_NODE=" \
        "$GPUS_PER_NODE = $batch; change GRAD_ACCUM, PER_DEVICE_BATCH or the node count (sbatch" \
        "--nodes), or set GLOBAL_BATCH=$batch if you mean to change the recipe"
    # a requeued job gets a fresh port: the last run's rendezvous port may still be held
    MAIN_PORT=${MAIN_PORT:-$((20000 + (${SLURM_JOB_ID:-0} * 16 + ${SLURM_RESTART_COUNT:-0}) % 20000))}
    a2d_int MAIN_PORT "$MAIN_PORT" 1024
}

a2d_check_disk() { # OUTPUT_DIR's file system must have MIN_FREE_GB free (checkpoints are large)
    local dir=$OUTPUT_DIR free_kb
    while [ ! -e "$dir" ]; do dir=$(dirname -- "$dir"); done
    [ -w "$dir" ] || a2d_die "OUTPUT_DIR='$OUTPUT_DIR': '$dir' is not writable"
    free_kb=$(df -Pk -- "$dir" | awk 'NR == 2 {print $4}')
    [[ "$free_kb" =~ ^[0-9]+$ ]] || a2d_die "cannot read the free space of '$dir' with df"
    ((free_kb >= MIN_FREE_GB * 1024 * 1024)) || a2d_die "OUTPUT_DIR='$OUTPUT_DIR' has" \
        "$((free_kb / 1024 / 1024)) GB free on '$dir', less than MIN_FREE_GB=$MIN_FREE_GB;" \
        "free space, choose another OUTPUT_DIR or lower MIN_FREE_GB"
}

a2d_config_file() { # ACCELERATE_CONFIG: a name in a2dkit/accelerate_configs or a YAML path
    if [ -f "$ACCELERATE_CONFIG" ]; then
        echo "$ACCELERATE_CONFIG"
        return
    fi
    local dir
    dir=$("$PYTHON" -c 'import importlib.util as u
print(u.find_spec("a2dkit").submodule_search_locations[0])') ||
        a2d_die "PYTHON='$PYTHON' cannot import a2dkit (activate its environment)"
    [ -f "$dir/accelerate_configs/$ACCELERATE_CONFIG.yaml" ] || a2d_die \
        "ACCELERATE_CONFIG='$ACCELERATE_CONFIG' is neither a file nor one of:" \
        "$(cd "$dir/accelerate_configs" && ls -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' ')"
    echo "$dir/accelerate_configs/$ACCELERATE_CONFIG.yaml"
}

a2d_convert_once() { # in the batch script (first node), once per output: convert if missing
    [ -f "$CONVERTED/config.json" ] && return
    [ "$CONVERTED" = "$MODEL" ] && return # already an A2D model (the GRPO recipes' default)
    local tmp="$CONVERTED.tmp-${SLURM_JOB_ID:-$$}"
    a2d_log "converting $MODEL -> $CONVERTED"
    "$PYTHON" -m a2dkit.convert --model_name_or_path "$MODEL" --output_dir "$tmp" \
        --overwrite True || a2d_die "converting MODEL='$MODEL' failed (see above)"
    mv -T -- "$tmp" "$CONVERTED" 2>/dev/null || rm -rf -- "$tmp" # another job won the race
}

a2d_launch() { # MODULE RECIPE-FLAGS... -- USER-FLAGS...: check, convert, run on every node
    local module=$1 config nodes
    shift
    local -a recipe=() user=()
    while (($#)) && [ "$1" != -- ]; do recipe+=("$1") && shift; done
    (($#)) && shift && user=("$@")
    PYTHON=${PYTHON:-python}
    a2d_check_vars
    a2d_check_disk
    config=$(a2d_config_file) || exit 2
    # precedence: the recipe < TRAIN_ARGS (split on spaces) < flags given to sbatch
    # shellcheck disable=SC2206
    local -a args=(--resume_from_checkpoint auto "${recipe[@]}" ${TRAIN_ARGS:-} "${user[@]}")
    "$PYTHON" "$A2D_ROOT/slurm/check_recipe.py" --algo "$ALGO" --stage "$STAGE" \
        --model "$MODEL" --converted "$CONVERTED" -- "${args[@]}" ||
        a2d_die "the recipe check failed (see above)"
    # the first host of the allocation is the rendezvous point (outside Slurm: this host), at
    # the address Slurm itself reaches it by (NodeAddr; the host name unless the site sets one)
    local first addr
    nodes=$(scontrol show hostnames "${SLURM_JOB_NODELIST:-}" 2>/dev/null) || nodes=""
    [ -n "$nodes" ] || nodes=$(hostname)
    first=${nodes%%$'\n'*}
    addr=""
    [ -n "${SLURM_JOB_NODELIST:-}" ] &&
        addr=$(scontrol show node -o "$first" 2>/dev/null | grep -o 'NodeAddr=[^ ]*')
    addr=${addr#NodeAddr=}
    addr=${addr:-$first}
    # accelerate passes no c10d endpoint to torchrun when the config says same_network: name it
    # (torchrun reads PET_*), or every node would meet only itself, at localhost:29400
    export PET_RDZV_ENDPOINT="$addr:$MAIN_PORT"
    # shellcheck disable=SC2206  # LAUNCH_ARGS: extra `accelerate launch` flags, split on spaces
    local -a launch=(--config_file "$config" --num_machines "$NUM_NODES"
        --num_processes "$WORLD_SIZE" --main_process_ip "$addr"
        --main_process_port "$MAIN_PORT" --rdzv_backend c10d ${LAUNCH_ARGS:-}
        -m "$module" "${args[@]}")
    a2d_log "$NUM_NODES node(s) x $GPUS_PER_NODE processes: PET_RDZV_ENDPOINT=$PET_RDZV_ENDPOINT" \
        "accelerate launch ${launch[*]}"
    if [ "${DRY_RUN:-0}" = 1 ]; then
        a2d_log "DRY_RUN=1: the recipe is valid; nothing was run"
        exit 0
    fi
    a2d_run "${launch[@]}"
}

a2d_run() { # LAUNCH-FLAGS...: convert, srun one task per node, requeue if Slurm warned us
    local restarts=${SLURM_RESTART_COUNT:-0} rc
    a2d_int MAX_REQUEUES "${MAX_REQUEUES:=20}" 0
    # the trainers (PreemptionCallback) stop once this file exists; a warning that came before
    # this point already set A2D_PREEMPTED, and the file is made again below
    export A2DKIT_STOP_FILE="$OUTPUT_DIR/.preempted"
    rm -f -- "$A2DKIT_STOP_FILE"
    [ -n "${A2D_PREEMPTED:-}" ] && a2d_on_usr1
    a2d_convert_once
    a2d_log "start (restart $restarts); resuming from the latest checkpoint in $OUTPUT_DIR if any"
    # one task per node; its machine rank is the node index, SLURM_NODEID
    srun --nodes="$NUM_NODES" --ntasks="$NUM_NODES" --ntasks-per-node=1 --kill-on-bad-exit=1 \
        bash "$A2D_ROOT/slurm/_launch.sh" "$PYTHON" "$@" &
    local pid=$!
    while :; do # `wait` returns early when USR1 arrives: wait again until srun is done
        wait "$pid"
        rc=$?
        kill -0 "$pid" 2>/dev/null || break
    done
    # finished = a complete checkpoint-final (its marker and every file whole), as the trainer decides
    if [ -n "${A2D_PREEMPTED:-}" ] &&
        ! "$PYTHON" -m a2dkit.cli.checkpoints is-complete "$OUTPUT_DIR/checkpoint-final" 2>/dev/null; then
        ((restarts < MAX_REQUEUES)) || a2d_die "preempted $restarts times (MAX_REQUEUES)"
        a2d_log "requeueing job $SLURM_JOB_ID: it resumes from the latest checkpoint"
        scontrol requeue "$SLURM_JOB_ID" && exit 0
        a2d_die "scontrol requeue $SLURM_JOB_ID failed; resubmit: it resumes where it stopped"
    fi
    exit "$rc"
}

a2d_node() { # PYTHON LAUNCH-FLAGS...: one node's task; a USR1 is for the trainers only
    local python=$1 pid rc got=""
    shift
    trap '' USR1 # inherited: the launcher (torch elastic agent) ignores it, each trainer handles it
    # other nodes wait for the first node's rendezvous store: where the nodes share one address
    # (a cluster on one host) an agent starting first would take the port rank 0 checks is free
    if [ "${SLURM_NODEID:-0}" != 0 ] && [ -n "${PET_RDZV_ENDPOINT:-}" ]; then
        local host=${PET_RDZV_ENDPOINT%:*} port=${PET_RDZV_ENDPOINT##*:} waited=0
        until (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null || ((waited >= 300)); do
            sleep 1
            waited=$((waited + 1))
        done
    fi
    "$python" -m accelerate.commands.launch --machine_rank "${SLURM_NODEID:-0}" "$@" &
    pid=$!
    trap 'got=1' USR1
    while :; do
        wait "$pid"
        rc=$?
        kill -0 "$pid" 2>/dev/null || break
    done
    ((rc == 0)) && return 0
    # preempted trainers exit non-zero on purpose (PREEMPTED_EXIT_CODE): not a failure here
    [ -n "$got" ] || [ -e "${A2DKIT_STOP_FILE:-/nonexistent}" ] && return 0
    return "$rc"
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then # run by srun (not sourced): one node's task
    a2d_node "$@"
    exit $?
fi
# sourced by a recipe: catch the warning from the start; the trainers see it as this file
trap a2d_on_usr1 USR1
