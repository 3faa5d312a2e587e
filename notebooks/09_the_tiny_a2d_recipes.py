# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 9. The Tiny-A2D Recipes
#
# [![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)](https://colab.research.google.com/github/a2dkit/a2dkit/blob/main/notebooks/09_the_tiny_a2d_recipes.ipynb)
#
# dLLM's Tiny-A2D models, Qwen3-0.6B-diffusion-mdlm-v0.1 and -bd3lm-v0.1, are Qwen/Qwen3-0.6B
# converted (chapter 2) and then trained **purely with SFT** (chapter 7) on a large chat
# mixture, on 64 GPUs for about 10 hours each. This chapter takes the recipe apart: the data, the
# batch arithmetic, the Slurm scripts that run it, what it costs, and how a preempted job picks
# up where it stopped. Then it runs the whole chain, scaled down, on your CPU.

# %%
import sys

if "google.colab" in sys.modules:  # Colab only: install a2dkit with the tutorial extras
    # %pip install -q "a2dkit[tutorial] @ git+https://github.com/a2dkit/a2dkit"
    import a2dkit  # noqa: F401

# %% [markdown]
# ## What you'll learn
#
# - the Tiny-A2D data mixture and how `--dataset_args` describes it;
# - the global batch $B = b \times g \times N \times G$ and where each factor is set;
# - the two Slurm scripts in `slurm/`, the command you submit, and the compute they take;
# - the Coder variant as an override of the same scripts;
# - how a job survives preemption: checkpoint at a step boundary, requeue, resume;
# - the chain convert → SFT → sample at `smoke` scale, through the same entry point.
#
# ## What you'll need
#
# - chapters 2 (conversion) and 7 (SFT); the source model of chapter 1 (cached at `smoke`);
# - `pip install "a2dkit[tutorial]"`, a CPU at `smoke` (about a minute); `bash` for the dry run.

# %% tags=["parameters"]
import os

import a2dkit.tutorial

SCALE = os.environ.get("A2DKIT_SCALE", "smoke")  # "smoke" | "laptop" | "warmup" | "full"
cfg = a2dkit.tutorial.get_scale(SCALE)  # raises ValueError on an unknown name

# %%
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
from safetensors.torch import load_file
from transformers import AutoModelForMaskedLM, AutoTokenizer

from a2dkit import convert, data, tutorial, viz
from a2dkit.cli.bd3lm import sft as bd3lm_sft
from a2dkit.data import loaders
from a2dkit.samplers import BD3LMSampler
from a2dkit.training import checkpoints, resumable

full = tutorial.get_scale("full")  # the recipe itself, whatever scale this notebook runs at
REPO = Path(a2dkit.__file__).resolve().parents[1]  # slurm/ lives next to the package

# %% [markdown]
# ## The data mixture
#
# Four SFT sets, concatenated: Tülu 3's SFT mixture, SmolTalk, and the two OpenCoder SFT stages
# restricted to Python. In `--dataset_args` a `+` joins datasets and `[key:value]` sets options;
# `lang:python` keeps the replies that contain a Python code fence.

# %%
print(tutorial.TINY_A2D_MIXTURE)
for spec in data.parse_dataset_args(tutorial.TINY_A2D_MIXTURE):
    print(f"  {spec.name:30s} options={spec.options}")

# %%
specs = data.parse_dataset_args(tutorial.TINY_A2D_MIXTURE)
assert len(specs) == 4 and all(s.name in data.LOADERS for s in specs)
assert [s.options.get("lang") for s in specs] == [None, None, "python", "python"]

# %% [markdown]
# Check the filter by hand: a reply with a Python fence is kept, a shell one is not.

# %%
python_reply = {"output": "Use a loop:\n```python\nfor x in xs:\n    print(x)\n```"}
shell_reply = {"output": "Run:\n```bash\nls -la\n```"}
assert loaders.keep_lang(python_reply, "python") and not loaders.keep_lang(shell_reply, "python")

# %% [markdown]
# The mixture needs the Hugging Face Hub. At this notebook's scale the stand-in is
# `cfg.sft.dataset_args`; at `smoke` that is the offline synthetic instruction set of chapter 7,
# in the same chat format.

# %%
sft_data = data.load_dataset_args(cfg.sft.dataset_args)
print(cfg.sft.dataset_args, {k: len(v) for k, v in sft_data.items()})
print(sft_data["train"][0]["messages"])

# %% [markdown]
# ## The configs: one global batch
#
# One optimizer step sees $B = b \times g \times N \times G$ sequences: $b$ per device, $g$
# gradient-accumulation steps, $N$ nodes of $G$ GPUs. Tiny-A2D: $16 \times 2 \times 8 \times 8
# = 2048$. Both recipes share it; they differ in length (MDLM 1024 tokens, BD3LM 512 in blocks
# of 32).

# %%
for s in tutorial.SCALES.values():  # the SFT sizes (cfg.sft) on the hardware (cfg.hardware)
    b, g, hw = s.sft.batch_size, s.sft.gradient_accumulation_steps, s.hardware
    print(f"{s.name:7s} b={b:2d} g={g} N={hw.num_nodes} G={hw.gpus_per_node} "
          f"-> B={s.global_batch_size}")  # fmt: skip

# %%
assert full.sft.batch_size * full.sft.gradient_accumulation_steps * full.world_size == 2048
assert full.global_batch_size == 2048 and full.world_size == 64

# %% [markdown]
# `cfg.cli_flags` gives the trainer flags of a scale; for the full recipe they are the flags
# of dLLM's published commands.

# %%
recipe = {algo: full.cli_flags(algo, sft=True) for algo in ("mdlm", "bd3lm")}
print(" ".join(recipe["bd3lm"]))

# %%
flag = {algo: dict(zip(f[::2], f[1::2], strict=True)) for algo, f in recipe.items()}
assert flag["mdlm"]["--max_length"] == "1024" and flag["bd3lm"]["--max_length"] == "512"
assert flag["bd3lm"]["--block_size"] == "32" and flag["mdlm"]["--num_train_epochs"] == "10"

# %% [markdown]
# ## The Slurm scripts
#
# `slurm/tiny_a2d_mdlm.sh` and `slurm/tiny_a2d_bd3lm.sh` hold the recipe as variables at the
# top, under a commented `#SBATCH` block (8 nodes, 8 GPUs each, one task per node, `--requeue`,
# a warning signal 5 minutes before the time limit). No partition or account is hard-coded:
#
# ```bash
# sbatch -p <partition> -A <account> slurm/tiny_a2d_bd3lm.sh    # ~10 h on 64 A100s
# sbatch -p <partition> -A <account> slurm/tiny_a2d_mdlm.sh
# ```
#
# Any variable can be overridden from the environment, and arguments after the script name go
# to the trainer. The shared `slurm/_launch.sh` does the multi-node part.

# %%
script = REPO / "slurm" / "tiny_a2d_bd3lm.sh"
print(script.read_text())

# %% [markdown]
# `DRY_RUN=1` checks a recipe without Slurm or GPUs: every variable, the batch arithmetic, the
# disk space, the dataset names, the model. It prints the `accelerate launch` line each node
# would run. (A converted model stands in for Qwen3-0.6B, which would need the Hub.)

# %%
tutorial.load_source_model(cfg)  # the source AR model (chapter 1), built once and cached
out = cfg.output_dir("tiny-a2d")
converted = convert.convert(cfg.source_name_or_path(), out / "a2d", overwrite=True)
env = dict(os.environ, DRY_RUN="1", A2DKIT_SCALE="full", CONVERTED=str(converted),
           OUTPUT_DIR=str(out / "dry-run"), MIN_FREE_GB="0", PYTHON=sys.executable)  # fmt: skip
run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True)
launch = next(line for line in run.stderr.splitlines() if "accelerate launch" in line)
print(run.returncode, launch.replace(" --", "\n    --"))

# %% [markdown]
# The script and the scale table agree, flag by flag (values compared as numbers where they
# are numbers: the script writes `1e-4`, the table `0.0001`).

# %%
words = launch.split(" -m ")[1].split()
script_flags = dict(zip(words[1::2], words[2::2], strict=False))


def same(a: str, b: str) -> bool:
    try:
        return float(a) == float(b)
    except ValueError:
        return a == b


assert run.returncode == 0 and "--num_processes 64" in launch and "zero2.yaml" in launch
assert all(same(script_flags[k], v) for k, v in flag["bd3lm"].items()), script_flags

# %% [markdown]
# ## Compute
#
# dLLM reports about 10 hours on 64 A100s for each model: 640 GPU-hours per model, 1280 for the
# pair, before evaluation. At smoke the same scripts run on 2 CPU processes in seconds.

# %%
hours = 10  # dLLM README, "Tiny-A2D"
gpu_hours = hours * full.world_size
print(f"{gpu_hours} A100-hours per model, {2 * gpu_hours} for MDLM + BD3LM")
assert gpu_hours == 640

# %%
variants = {"Tiny-A2D": full, "Coder": full.replace(sft=dict(batch_size=12))}
fig, ax = plt.subplots(figsize=(5, 2.5))
ax.bar(list(variants), [v.global_batch_size for v in variants.values()], color=["C0", "C1"])
ax.set(ylabel="sequences per optimizer step", title="global batch B = b·g·N·G")

# %% [markdown]
# ## The Coder variant
#
# dLLM's Qwen2.5-Coder-0.5B-Instruct-diffusion models use the same scripts with four values
# changed: the base model, the two OpenCoder stages only, and a global batch of 1536. They live
# in `slurm/coder.env`, loaded by `VARIANT=coder`:
#
# ```bash
# VARIANT=coder sbatch -p <partition> slurm/tiny_a2d_bd3lm.sh   # 12 x 2 x 64 = 1536
# ```

# %%
print((REPO / "slurm" / "coder.env").read_text())

# %%
assert variants["Coder"].global_batch_size == 12 * 2 * 64 == 1536

# %% [markdown]
# ## Preemption and resume
#
# Clusters preempt jobs and enforce time limits. The scripts ask Slurm for a warning signal
# (`--signal=B:USR1@300`); the launcher then creates a stop file that every rank checks after
# each optimizer step (`resumable.PreemptionCallback`, all-reduced so all ranks stop together).
# The trainer saves `checkpoint-<step>` and exits with code 3; the job runs
# `scontrol requeue $SLURM_JOB_ID`; the restarted job passes `--resume_from_checkpoint auto`.

# %%
viz.show_source(resumable.PreemptionCallback)

# %% [markdown]
# `auto` means the newest **complete** checkpoint: once every rank wrote its files, the trainer
# writes a marker (`a2dkit_checkpoint.json`, each file's size) last, so a checkpoint cut off
# mid-save is skipped. By hand: steps 4 (marked) and 8 (cut off, no marker) resume from 4.

# %%
with tempfile.TemporaryDirectory() as tmp:
    for step in (4, 8):
        (Path(tmp) / f"checkpoint-{step}").mkdir()
        (Path(tmp) / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    checkpoints.mark_complete(Path(tmp) / "checkpoint-4")
    latest = checkpoints.resolve_resume_checkpoint(tmp, "auto")
    print(Path(latest).name)
assert Path(latest).name == "checkpoint-4"

# %% [markdown]
# ## The chain at this scale: convert, SFT, resume, sample
#
# The converted model above is what the scripts produce first. Next, the SFT entry point the
# scripts launch on every GPU, `a2dkit.cli.bd3lm.sft`, with this scale's flags, shortened to
# `CHAIN_STEPS` steps (a shorter run of the same recipe: what resuming must preserve does not
# depend on the length). We play Slurm: the stop file exists from the start, so the run stops
# after its first step, saves, and returns exit code 3.

# %%
CHAIN_STEPS = 20
run_dir = out / "bd3lm"
shutil.rmtree(run_dir, ignore_errors=True)
flags = ["--model_name_or_path", str(converted), "--output_dir", str(run_dir),
         *cfg.cli_flags("bd3lm", sft=True, max_steps=CHAIN_STEPS), "--eval_strategy", "no",
         "--save_steps", "0.5",
         "--use_cpu", str(cfg.hardware.use_cpu), "--disable_tqdm", "True",
         "--resume_from_checkpoint", "auto"]  # fmt: skip
stop = out / "stop"
stop.touch()
os.environ[resumable.STOP_FILE_ENV] = str(stop)  # what slurm/_launch.sh exports
first = bd3lm_sft.cli(flags)
print("exit code", first, sorted(p.name for p in run_dir.iterdir()))

# %%
assert first == resumable.PREEMPTED_EXIT_CODE and (run_dir / "checkpoint-1").is_dir()

# %% [markdown]
# The "requeued job" runs the same command again; it finds `checkpoint-1` and trains the
# remaining steps.

# %%
stop.unlink()
second = bd3lm_sft.cli(flags)
del os.environ[resumable.STOP_FILE_ENV]
state = json.loads((run_dir / "checkpoint-final" / "trainer_state.json").read_text())
print("exit code", second, "global step", state["global_step"])

# %%
assert second == 0 and state["global_step"] == CHAIN_STEPS

# %% [markdown]
# Losing no step means more than the right count: the resumed run restores the optimizer, the
# learning-rate schedule, the data order and the noise RNG. So it must end with **the same
# weights** as an uninterrupted run of the same flags (`load_diffusion_model` with
# `max_steps=CHAIN_STEPS`: it converts the source in memory, as chapter 7 does, and caches).

# %%
tutorial.load_diffusion_model(cfg, "bd3lm", sft=True, max_steps=CHAIN_STEPS)  # trained once
straight = tutorial.run_dir(cfg, "bd3lm", sft=True, max_steps=CHAIN_STEPS)
straight = load_file(straight / "checkpoint-final" / "model.safetensors")
resumed = load_file(run_dir / "checkpoint-final" / "model.safetensors")
worst = max((resumed[k] - v).abs().max().item() for k, v in straight.items())
print(f"largest weight difference: {worst:.2e}")

# %%
assert resumed.keys() == straight.keys() and worst < 1e-5

# %% [markdown]
# The loss curve of the interrupted run: every step once, the resume invisible.

# %%
log = [r for r in state["log_history"] if "loss" in r]
fig, ax = plt.subplots(figsize=(5, 3))
ax.plot([r["step"] for r in log], [r["loss"] for r in log], marker=".")
ax.axvline(1, color="C3", ls=":", label="preempted, resumed")
ax.set(xlabel="optimizer step", ylabel="train loss", title="BD3LM SFT, one preemption")
ax.legend()

# %% [markdown]
# Last link: sample from the trained model with the block sampler (chapter 6) on a held-out
# prompt. Chapter 7 measures what SFT buys on the whole held-out split; chapter 8 runs lm-eval.

# %%
model = AutoModelForMaskedLM.from_pretrained(run_dir / "checkpoint-final").to(cfg.device).eval()
tok = AutoTokenizer.from_pretrained(run_dir / "checkpoint-final")
test = sft_data["test"].select(range(min(cfg.sft.num_eval_examples, len(sft_data["test"]))))
sampling = dict(max_new_tokens=cfg.sft.max_new_tokens, steps=cfg.sft.sampler_steps,
                block_size=cfg.sft.block_size)  # fmt: skip
sample = BD3LMSampler(model, tok).sample(data.chat_prompts(test.select([0]), tok), **sampling)
viz.plot_trajectory(sample.history, tok)

# %%
answer = sample.sequences[0, sample.gen_start : sample.gen_end]  # (T,) generated positions
print(repr(test[0]["messages"][0]["content"]), "->", repr(tok.decode(answer)))
assert tok.mask_token_id not in answer.tolist()  # every masked position was committed

# %% [markdown]
# ## Evaluating the real models
#
# After training, `slurm/eval_tiny_a2d.sh` runs the published lm-eval task list with the
# published sampler settings (chapter 8; block 256 for MDLM, 32 for BD3LM; 256 new tokens, 256
# steps, temperature 0). The book's "Reproducing Tiny-A2D" page lists the reference numbers.
#
# ## Summary
#
# - Tiny-A2D is SFT only: a converted Qwen3-0.6B on Tülu 3 + SmolTalk + OpenCoder (Python), 10
#   epochs, lr $10^{-4}$, global batch $16 \times 2 \times 64 = 2048$; MDLM at 1024 tokens,
#   BD3LM at 512 in blocks of 32.
# - `sbatch slurm/tiny_a2d_{mdlm,bd3lm}.sh` runs it on 8 × 8 GPUs, about 640 GPU-hours each;
#   `DRY_RUN=1` checks it first; `VARIANT=coder` gives the Coder models.
# - Preemption costs no optimizer step: stop at a step boundary, checkpoint, requeue, resume,
#   and the weights end exactly where an uninterrupted run ends.
#
# ## Exercises
#
# 1. Your cluster has 4 nodes of 8 GPUs. Which variables keep $B = 2048$? Check with `DRY_RUN=1
#    NUM_NODES=4` and read the error the launcher gives when you change nothing.
# 2. Run the chain with `--save_steps 0.25` and put the stop file in place after the second
#    checkpoint (hint: a `TrainerCallback`). Does the weight check still hold?
# 3. Write `slurm/mine.env` with your own mixture and load it with `VARIANT=mine`.
#
# ## References
#
# - Sahoo et al., *Simple and Effective Masked Diffusion Language Models* (MDLM), arXiv 2406.07524.
# - Arriola et al., *Block Diffusion* (BD3LM), arXiv 2503.09573.
# - Lambert et al., *Tülu 3*, arXiv 2411.15124; Huang et al., *OpenCoder*, arXiv 2411.04905.
# - dLLM, `examples/a2d/README.md` ("Tiny-A2D") and `scripts/train.slurm.sh`.
