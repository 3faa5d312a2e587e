"""Preemption through ``python -m a2dkit.launch`` (accelerate launch): every rank saves, exit 3.

Real launches: the torchrun path (``a2dkit/accelerate_configs/cpu.yaml``, 2 gloo CPU processes)
and accelerate's simple launcher (1 process); SIGTERM or SIGUSR1 to the launcher or to its
process group. References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

import copy
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import make_tiny_ar

from a2dkit import convert
from a2dkit.training import checkpoints

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def a2d_dir(small_tokenizer, tmp_path_factory):
    tok = copy.deepcopy(small_tokenizer)
    model, tok, _ = convert.to_diffusion(make_tiny_ar("qwen3", tok), tok)
    out = tmp_path_factory.mktemp("a2d")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def _launch(a2d_dir, out, processes: int) -> tuple[subprocess.Popen, Path]:
    config = REPO / "a2dkit" / "accelerate_configs" / "cpu.yaml"
    launcher = ["--num_processes", str(processes), "--main_process_port", str(_free_port())]
    if processes > 1:
        launcher = ["--config_file", str(config), *launcher]
    flags = ["--model_name_or_path", str(a2d_dir), "--output_dir", str(out), "--use_cpu", "True"]
    flags += ["--dataset_args", "a2dkit/synthetic[train:64]", "--max_length", "64"]
    flags += ["--max_steps", "100000", "--logging_steps", "1", "--save_strategy", "no"]
    flags += ["--per_device_train_batch_size", "2", "--disable_tqdm", "True"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop("A2DKIT_STOP_FILE", None)
    log = out.parent / f"{out.name}.log"
    cmd = [sys.executable, "-m", "a2dkit.launch", *launcher, "-m", "a2dkit.cli.mdlm.sft", *flags]
    proc = subprocess.Popen(cmd, env=env, stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                            start_new_session=True)  # fmt: skip
    return proc, log


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_training(proc, log: Path, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while "{'loss':" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"training did not start:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


@pytest.mark.parametrize(
    "processes, sig, to_group",
    [(2, signal.SIGUSR1, False), (2, signal.SIGTERM, True), (1, signal.SIGUSR1, True)],
    ids=["torchrun-usr1", "torchrun-term-group", "simple-usr1-group"],
)  # fmt: skip
def test_a_signal_to_the_launcher_checkpoints_every_rank_and_exits_3(
    a2d_dir, tmp_path, processes, sig, to_group
):
    proc, log = _launch(a2d_dir, tmp_path / "out", processes)
    try:
        _wait_for_training(proc, log)
        (os.killpg if to_group else os.kill)(proc.pid, sig)
        code = proc.wait(timeout=180)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    text = log.read_text(errors="replace")
    assert code == 3, text[-3000:]
    steps = re.findall(r"preempted: checkpoint-(\d+) saved", text)
    assert len(steps) == processes and len(set(steps)) == 1, text[-3000:]  # every rank, one step
    checkpoint = tmp_path / "out" / f"checkpoint-{steps[0]}"
    assert checkpoints.is_complete(checkpoint)
    rng = sorted(p.name for p in checkpoint.glob("rng_state*.pth"))
    assert len(rng) == processes, rng  # every rank's share of the checkpoint
