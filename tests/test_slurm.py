"""The Tiny-A2D Slurm recipes on a real single-node Slurm cluster, and their input checks.

The cluster (munged + slurmctld + slurmd from Debian's packages, ``bash .ci/install_slurm.sh``)
starts once per session; the real ``slurm/tiny_a2d_*.sh`` scripts are submitted with ``sbatch`` at
``A2DKIT_SCALE=smoke`` (tiny model, 2 gloo CPU processes, 8 steps). One job is preempted with
Slurm's warning signal and must requeue itself, resume and end where an uninterrupted run ends.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from slurm_cluster import INSTALL_HINT, SlurmCluster, missing_binaries
from transformers import AutoModelForMaskedLM, AutoTokenizer

import a2dkit  # noqa: F401  (registers the a2d-* model types)
from a2dkit import convert, tutorial
from a2dkit.training import checkpoints
from a2dkit.training.resumable import STOP_FILE_ENV
from a2dkit.tutorial import tiny, tiny_tokenizer

REPO = Path(__file__).resolve().parents[1]
SMOKE_STEPS = 8  # --max_steps of slurm/smoke.env
# one job per recipe, and a BD3LM job that is preempted once (same recipe as "bd3lm"); then the
# BD3LM recipe at a global batch of 4 on 2 nodes x 2 processes (once uninterrupted, once
# preempted) and on 1 node x 4 processes: {name: (nodes, processes per node, per-process batch)}
JOBS = {"mdlm": (1, 2, 2), "bd3lm": (1, 2, 2), "preempted": (1, 2, 2)}
JOBS |= {"two-nodes": (2, 2, 1), "two-nodes-preempted": (2, 2, 1), "four-processes": (1, 4, 1)}
JOBS |= {"grpo": (1, 2, 2)}  # slurm/grpo_tiny_a2d_mdlm.sh at smoke scale (slurm/grpo_smoke.env)
PREEMPTED = ("preempted", "two-nodes-preempted")
GRPO_STEPS = 2  # --max_steps of slurm/grpo_smoke.env


def _recipe(name: str) -> str:
    if name == "grpo":
        return str(REPO / "slurm" / "grpo_tiny_a2d_mdlm.sh")
    return str(REPO / "slurm" / f"tiny_a2d_{'mdlm' if name == 'mdlm' else 'bd3lm'}.sh")


@pytest.fixture(scope="session")
def tiny_ar(tmp_path_factory) -> Path:
    """A random tiny AR Qwen3 + tokenizer on disk: the recipes' MODEL at smoke scale."""
    out = tmp_path_factory.mktemp("tiny-ar")
    texts = [f"{w} {i} {w[::-1]}" for i in range(40) for w in ("add", "copy", "sort", "reverse")]
    tokenizer = tiny_tokenizer.train_tokenizer(texts, vocab_size=300)
    model = tiny.tiny_model("qwen3", vocab_size=tiny.padded_vocab_size(len(tokenizer)))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A single-node Slurm cluster for this session; its daemons are stopped (by PID) at the end."""
    missing = missing_binaries()
    if missing:
        pytest.fail(f"Slurm is not installed (missing {missing}): {INSTALL_HINT}", pytrace=False)
    if os.geteuid() != 0:
        pytest.fail("the test cluster's slurmd must run as root (it starts jobs)", pytrace=False)
    # 8 CPUs a node (more than it has: config_overrides) so that all six jobs run at once
    slurm = SlurmCluster(tmp_path_factory.mktemp("slurm"), cpus=8, nodes=2)
    slurm.start()
    yield slurm
    slurm.stop()


@pytest.fixture(scope="session")
def jobs(cluster, tiny_ar, tmp_path_factory):
    """Submit the three smoke jobs at once; a thread preempts one. Returns {name: info}."""
    root = tmp_path_factory.mktemp("runs")
    info = {}
    for name, (nodes, processes, batch) in JOBS.items():
        env = dict(A2DKIT_SCALE="smoke", MODEL=str(tiny_ar), CONVERTED=str(root / "a2d"))
        env |= dict(OUTPUT_DIR=str(root / name), PYTHON=sys.executable, OMP_NUM_THREADS="1")
        env |= dict(GPUS_PER_NODE=str(processes), PER_DEVICE_BATCH=str(batch))
        log = root / f"{name}.log"
        # the recipes ask for 8 GPU nodes, exclusive: CPU nodes, shared by the test's jobs
        flags = (f"--nodes={nodes}", "--gres=none", "--exclusive=user", f"--output={log}")
        job_id = cluster.sbatch(*flags, _recipe(name), env=env, cwd=str(REPO))
        info[name] = dict(job_id=job_id, out=root / name, log=log, errors=[])
    for name in PREEMPTED:
        thread = threading.Thread(target=_preempt_once, args=(cluster, info[name]), daemon=True)
        thread.start()
        info[name]["thread"] = thread
    return info


def _preempt_once(cluster: SlurmCluster, job: dict) -> None:
    """Send Slurm's warning once training is about to start; see the job requeue itself."""
    try:
        _wait(lambda: "start (restart 0)" in _read(job["log"]), "the job to start", cluster, job)
        cluster.run("scancel", "--batch", "--signal=USR1", job["job_id"])  # = --signal=B:USR1
        # it restarts on its own once its old credential expires (cred_expire of the cluster)
        _wait(lambda: _requeued(cluster, job), "the job to requeue itself", cluster, job)
    except Exception as err:  # reported by the test that waits for this job
        job["errors"].append(repr(err))


def _requeued(cluster: SlurmCluster, job: dict) -> bool:
    return int(cluster.job(job["job_id"]).get("Restarts", 0)) >= 1


def _wait(ready, what: str, cluster: SlurmCluster, job: dict, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        state = cluster.job(job["job_id"])["JobState"]
        if state in ("FAILED", "CANCELLED", "COMPLETED") or time.monotonic() > deadline:
            raise RuntimeError(f"waiting for {what}: job is {state}\n{_read(job['log'])[-3000:]}")
        time.sleep(0.2)


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def _finished(cluster: SlurmCluster, job: dict) -> dict:
    state = cluster.wait(job["job_id"], timeout=600)
    if "thread" in job:
        job["thread"].join(timeout=60)
    assert not job["errors"], job["errors"]
    assert state["JobState"] == "COMPLETED", f"{state}\n{_read(job['log'])[-4000:]}"
    return state


def _global_step(checkpoint: Path) -> int:
    return json.loads((checkpoint / "trainer_state.json").read_text())["global_step"]


def test_the_cluster_accepts_both_recipes(cluster, jobs):
    for name in ("mdlm", "bd3lm", "preempted"):
        state = cluster.job(jobs[name]["job_id"])
        assert state["JobName"] == f"tiny-a2d-{'mdlm' if name == 'mdlm' else 'bd3lm'}"
        assert state["Requeue"] == "1"  # --requeue from the script's #SBATCH block


# ---------------------------------------------------------------- input checks (no cluster)
def _dry_run(script: str, tmp_path: Path, args=(), **env: str) -> subprocess.CompletedProcess:
    """``DRY_RUN=1 bash slurm/<script>``: validate the recipe outside Slurm, run nothing."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("SLURM")}
    base |= dict(DRY_RUN="1", PYTHON=sys.executable, OUTPUT_DIR=str(tmp_path / "out"))
    base |= dict(A2DKIT_SCALE="full", MIN_FREE_GB="0")  # the recipe as shipped, any disk
    cmd = ["bash", str(REPO / "slurm" / script) if "/" not in script else script, *args]
    return subprocess.run(
        cmd, env={**base, **env}, cwd=tmp_path, capture_output=True, text=True, timeout=600
    )


@pytest.fixture(scope="module")
def converted(tiny_ar, tmp_path_factory) -> Path:
    """The tiny model converted, standing in for CONVERTED (no Hub access for Qwen3-0.6B)."""
    out = tmp_path_factory.mktemp("converted") / "a2d"
    return convert.convert(str(tiny_ar), out)


def test_the_full_recipe_matches_the_scale_table(tmp_path, converted):
    full = tutorial.get_scale("full")
    res = _dry_run("tiny_a2d_bd3lm.sh", tmp_path, CONVERTED=str(converted))
    assert res.returncode == 0, res.stderr
    launch = _launch_line(res.stderr)
    hw = full.hardware
    world = hw.num_nodes * hw.gpus_per_node
    assert f"--num_machines {hw.num_nodes} --num_processes {world}" in launch
    assert f"{hw.accelerate_config}.yaml" in launch and "--rdzv_backend c10d" in launch
    assert f"--dataset_args {tutorial.TINY_A2D_MIXTURE} " in launch
    assert "--max_length 512 --block_size 32 --num_train_epochs 10 --learning_rate 1e-4" in launch
    per_device = int(re.search(r"--per_device_train_batch_size (\d+)", launch).group(1))
    accum = int(re.search(r"--gradient_accumulation_steps (\d+)", launch).group(1))
    assert per_device * accum * world == full.global_batch_size == 2048
    assert launch.index("--resume_from_checkpoint auto") < launch.index("--model_name_or_path")


def test_the_coder_variant_and_extra_flags_reach_the_trainer(tmp_path, converted):
    env = dict(CONVERTED=str(converted), VARIANT="coder")
    res = _dry_run("tiny_a2d_mdlm.sh", tmp_path, args=("--seed", "7"), **env)
    assert res.returncode == 0, res.stderr
    launch = _launch_line(res.stderr)
    assert "--per_device_train_batch_size 12 --gradient_accumulation_steps 2" in launch
    assert 12 * 2 * 64 == 1536  # the Coder models' global batch
    assert "--max_length 1024" in launch and "opc-sft-stage2[lang:python] " in launch
    assert "tulu" not in launch
    # flags after the script name are forwarded last, so they win over the recipe's
    assert launch.endswith(f"--output_dir {tmp_path / 'out'} --seed 7")


def _launch_line(stderr: str) -> str:
    return next(line for line in stderr.splitlines() if "accelerate launch" in line)


@pytest.mark.parametrize(
    "env, message",
    [
        (dict(MAX_LENGTH="1024x"), "MAX_LENGTH='1024x' must be an integer"),
        (dict(LR="fast"), "LR='fast' must be a positive number"),
        (dict(EPOCHS="0"), "EPOCHS='0' must be a positive number"),
        (dict(BF16="yes"), "BF16='yes' must be True or False"),
        (dict(BLOCK_SIZE="30"), "BLOCK_SIZE=30 must divide MAX_LENGTH=512"),
        (dict(NUM_NODES="4"), "GLOBAL_BATCH=2048 but .* = 1024"),
        (dict(VARIANT="nope"), "VARIANT='nope' is not one of: coder"),
        (dict(A2DKIT_SCALE="warmup"), "A2DKIT_SCALE='warmup' is not a recipe scale"),
        (dict(ACCELERATE_CONFIG="zero9"), "ACCELERATE_CONFIG='zero9' is neither a file"),
    ],
)
def test_a_malformed_recipe_variable_is_refused_before_launch(tmp_path, env, message):
    res = _dry_run("tiny_a2d_bd3lm.sh", tmp_path, **env)
    assert res.returncode == 2 and re.search(message, res.stderr), res.stderr
    assert "accelerate launch" not in res.stderr


def test_the_divisors_in_the_block_size_error_are_right(tmp_path):
    res = _dry_run("tiny_a2d_bd3lm.sh", tmp_path, BLOCK_SIZE="30")
    divisors = " ".join(str(d) for d in range(1, 513) if 512 % d == 0)
    assert f"try one of: {divisors}" in res.stderr


def test_a_recipe_with_a_variable_deleted_is_refused(tmp_path):
    text = Path(_recipe("mdlm")).read_text()
    assert "\nGRAD_ACCUM=" in text
    edited = tmp_path / "edited.sh"
    edited.write_text(re.sub(r"\nGRAD_ACCUM=[^\n]*", "", text))
    res = _dry_run(str(edited), tmp_path, A2D_ROOT=str(REPO))
    assert res.returncode == 2 and "GRAD_ACCUM='' must be an integer >= 1" in res.stderr


def test_an_output_dir_on_a_full_disk_is_refused(tmp_path):
    free_gb = shutil.disk_usage(tmp_path).free // 2**30
    res = _dry_run("tiny_a2d_mdlm.sh", tmp_path, MIN_FREE_GB=str(free_gb + 1))
    assert res.returncode == 2, res.stderr
    assert f"has {free_gb} GB free" in res.stderr and f"MIN_FREE_GB={free_gb + 1}" in res.stderr


@pytest.fixture(scope="module")
def check_recipe():
    """slurm/check_recipe.py, imported from its path (it is a script, not a module)."""
    spec = importlib.util.spec_from_file_location("check_recipe", REPO / "slurm/check_recipe.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_dataset_spec_with_an_unknown_dataset_is_refused(check_recipe, converted, capsys):
    flags = ["--output_dir", "out", "--model_name_or_path", str(converted)]
    argv = ["--algo", "mdlm", "--model", "m", "--converted", str(converted), "--"]
    spec = "a2dkit/synthetic+nobody/no-such-dataset"
    assert check_recipe.main([*argv, *flags, "--dataset_args", spec]) == 2
    assert "unknown dataset(s) ['nobody/no-such-dataset']" in capsys.readouterr().err
    assert check_recipe.main([*argv, *flags, "--dataset_args", "a2dkit/synthetic[train:x]"]) == 2
    assert "train:x" in capsys.readouterr().err
    assert check_recipe.main([*argv, *flags, "--dataset_args", tutorial.TINY_A2D_MIXTURE]) == 0


def test_the_trainer_stops_at_a_step_boundary_once_the_stop_file_exists(tmp_path, monkeypatch):
    from a2dkit.training.resumable import PreemptionCallback

    stop = tmp_path / "stop"
    monkeypatch.setenv(STOP_FILE_ENV, str(stop))
    callback = PreemptionCallback()
    args, control = type("A", (), {"device": torch.device("cpu")})(), _Control()
    assert not callback.on_step_end(args, None, control).should_training_stop
    stop.touch()
    control = callback.on_step_end(args, None, _Control())
    assert control.should_save and control.should_training_stop and callback.preempted


class _Control:
    should_save = should_training_stop = False


# ---------------------------------------------------------------- the jobs, finished
@pytest.mark.parametrize("name", ["mdlm", "bd3lm"])
def test_smoke_recipe_completes_and_its_final_model_loads(cluster, jobs, name):
    job = jobs[name]
    _finished(cluster, job)
    final = job["out"] / "checkpoint-final"
    model = AutoModelForMaskedLM.from_pretrained(final).eval()
    tokenizer = AutoTokenizer.from_pretrained(final)
    assert model.config.model_type == "a2d-qwen3"
    assert tokenizer.mask_token_id is not None
    ids = torch.tensor([[tokenizer.mask_token_id] * 8])  # (1, 8)
    with torch.no_grad():
        logits = model(input_ids=ids).logits  # (1, 8, V)
    assert logits.shape == (1, 8, model.config.vocab_size) and torch.isfinite(logits).all()
    assert _global_step(final) == SMOKE_STEPS
    # --save_steps 4 of slurm/smoke.env; one RNG state per process: 2 gloo CPU processes ran
    rng = sorted(p.name for p in (job["out"] / "checkpoint-4").glob("rng_state*"))
    assert rng == ["rng_state_0.pth", "rng_state_1.pth"]


def test_grpo_smoke_recipe_trains_the_adapter_and_saves_the_merged_model(cluster, jobs):
    """diffu-GRPO through sbatch: the AR model is converted once, 2 gloo ranks generate, score
    and step twice; the adapter, a checkpoint per step and the merged final model are saved."""
    job = jobs["grpo"]
    _finished(cluster, job)
    final = job["out"] / "checkpoint-final"
    assert AutoModelForMaskedLM.from_pretrained(final).config.model_type == "a2d-qwen3"
    assert (job["out"] / "lora-adapter" / "adapter_config.json").is_file()
    assert _global_step(final) == GRPO_STEPS
    history = json.loads((final / "trainer_state.json").read_text())["log_history"]
    assert sum("loss" in h for h in history) == GRPO_STEPS  # --logging_steps 1
    # --num_iterations 2: one generation (with its rewards) serves both policy steps
    assert [("reward" in h) for h in history if "loss" in h] == [True, False]
    rng = sorted(p.name for p in (job["out"] / "checkpoint-1").glob("rng_state*"))
    assert rng == ["rng_state_0.pth", "rng_state_1.pth"]
    assert "--dataset a2dkit/countdown" in _read(job["log"])


@pytest.mark.parametrize(
    "name, reference, nodes", [("preempted", "bd3lm", 1), ("two-nodes-preempted", "two-nodes", 2)]
)
def test_a_preempted_job_requeues_and_resumes_without_losing_a_step(
    cluster, jobs, name, reference, nodes
):
    job, reference = jobs[name], jobs[reference]
    state = _finished(cluster, job)
    _finished(cluster, reference)
    log = _read(job["log"])
    assert int(state["Restarts"]) == 1
    # every rank reports the step it stopped at: the same one, before the end
    stopped = {int(s) for s in re.findall(r"preempted: checkpoint-(\d+) saved", log)}
    assert len(stopped) == 1 and 1 <= min(stopped) < SMOKE_STEPS, log[-3000:]
    assert checkpoints.is_complete(job["out"] / f"checkpoint-{min(stopped)}")
    assert f"requeueing job {job['job_id']}" in log and "start (restart 1)" in log
    # every optimizer step ran (and was logged, by each node's main process) once over the runs
    assert log.count("{'loss':") == SMOKE_STEPS * nodes
    final, ref_final = job["out"] / "checkpoint-final", reference["out"] / "checkpoint-final"
    assert _global_step(final) == _global_step(ref_final) == SMOKE_STEPS
    resumed = load_file(final / "model.safetensors")
    uninterrupted = load_file(ref_final / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    for key, value in uninterrupted.items():  # resume restores optimizer, RNG and data order
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6, msg=key)
    start = load_file(job["out"].parent / "a2d" / "model.safetensors")  # CONVERTED
    assert any(not torch.equal(start[k], v) for k, v in uninterrupted.items())  # it trained


def test_two_nodes_of_two_processes_equal_one_node_of_four(cluster, jobs):
    """The real multi-node path (srun per node, c10d rendezvous at the first node, gloo across
    nodes) trains the same weights as one node with the same 4 ranks and global batch."""
    two, four = jobs["two-nodes"], jobs["four-processes"]
    state = _finished(cluster, two)
    _finished(cluster, four)
    assert state["NumNodes"] == "2" and state["NodeList"] == "n[1-2]"
    assert "2 node(s) x 2 processes" in _read(two["log"])
    for job in (two, four):  # 4 ranks each saved their RNG state
        rng = sorted(p.name for p in (job["out"] / "checkpoint-4").glob("rng_state*"))
        assert rng == [f"rng_state_{k}.pth" for k in range(4)], rng
    a = load_file(two["out"] / "checkpoint-final" / "model.safetensors")
    b = load_file(four["out"] / "checkpoint-final" / "model.safetensors")
    assert a.keys() == b.keys()
    for key, value in b.items():
        torch.testing.assert_close(a[key], value, rtol=1e-5, atol=1e-6, msg=key)
    ref = load_file(jobs["bd3lm"]["out"] / "checkpoint-final" / "model.safetensors")
    assert any(not torch.equal(ref[k], v) for k, v in b.items())  # 2 ranks: other noise streams
