"""Complete checkpoints and the run an output dir holds, through the real training CLI.

A trainer SIGKILLed while it writes a checkpoint leaves no marker: ``auto`` skips it and the run
ends with the uninterrupted run's weights; a finished run is not retrained; another run's output
dir is refused unless resumed or overwritten. References: MDLM arXiv 2406.07524.
"""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from a2dkit.cli import checkpoints as cli_checkpoints
from a2dkit.cli import train
from a2dkit.training import checkpoints

REPO = Path(__file__).resolve().parents[2]
# the trainer state of checkpoint-4 is cut in half, then the process is SIGKILLed (the case)
KILL_WHILE_SAVING = """
import os, signal, sys
from transformers import TrainerState
from a2dkit.cli import train
save = TrainerState.save_to_json
def save_and_die(self, path):
    if path.endswith(os.path.join("checkpoint-4", "trainer_state.json")):
        save(self, path)
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)
        os.kill(os.getpid(), signal.SIGKILL)
    save(self, path)
TrainerState.save_to_json = save_and_die
sys.exit(train.main("mdlm", "sft", sys.argv[1:]))
"""


def _flags(model_dir, out, *extra):
    flags = ["--model_name_or_path", str(model_dir), "--output_dir", str(out)]
    flags += ["--dataset_args", "a2dkit/synthetic[train:16]", "--max_length", "64"]
    flags += ["--max_steps", "6", "--save_steps", "2", "--per_device_train_batch_size", "2"]
    flags += ["--use_cpu", "True", "--disable_tqdm", "True", "--eval_strategy", "no"]
    return [*flags, *extra]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_file(run / "checkpoint-final" / "model.safetensors")


def test_a_trainer_killed_mid_save_resumes_to_the_uninterrupted_weights(a2d_dir, tmp_path, capsys):
    assert train.main("mdlm", "sft", _flags(a2d_dir, tmp_path / "straight")) == 0
    run = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-c", KILL_WHILE_SAVING, *_flags(a2d_dir, run)]
    killed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    assert checkpoints.check_complete(run / "checkpoint-4").startswith("no a2dkit_checkpoint")
    capsys.readouterr()
    assert train.main("mdlm", "sft", _flags(a2d_dir, run, "--resume_from_checkpoint", "auto")) == 0
    out = capsys.readouterr().out
    assert f"skipping incomplete checkpoint {run / 'checkpoint-4'}" in out
    assert f"resuming from {run / 'checkpoint-2'}" in out
    straight, resumed = _weights(tmp_path / "straight"), _weights(run)
    assert all(torch.equal(straight[k], v) for k, v in resumed.items())
    assert checkpoints.is_complete(run / "checkpoint-final")
    state = json.loads((run / "checkpoint-final" / "trainer_state.json").read_text())
    assert state["global_step"] == 6
    # auto on the finished run: reported, nothing trained, nothing rewritten
    stamp = (run / "checkpoint-final" / "model.safetensors").stat().st_mtime_ns
    assert train.main("mdlm", "sft", _flags(a2d_dir, run, "--resume_from_checkpoint", "auto")) == 0
    assert "holds a finished run" in capsys.readouterr().out
    assert (run / "checkpoint-final" / "model.safetensors").stat().st_mtime_ns == stamp


def test_an_output_dir_holding_a_run_is_refused_unless_overwritten(a2d_dir, tmp_path):
    run = tmp_path / "run"
    assert train.main("mdlm", "sft", _flags(a2d_dir, run)) == 0
    before = sorted(p.name for p in run.iterdir())
    with pytest.raises(ValueError, match=r"already holds a run \(checkpoint-2, checkpoint-4"):
        train.main("mdlm", "sft", _flags(a2d_dir, run))
    assert sorted(p.name for p in run.iterdir()) == before  # nothing touched
    flags = _flags(a2d_dir, run, "--overwrite_output_dir", "True", "--max_steps", "2")
    assert train.main("mdlm", "sft", flags) == 0
    assert sorted(p.name for p in run.glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-final"]
    with pytest.raises(ValueError, match="contradict"):
        train.main("mdlm", "sft", [*flags, "--resume_from_checkpoint", "auto"])


@pytest.mark.parametrize("flags", [["--num_train_epochs", "0"], ["--num_train_epochs", "nan"]])
def test_zero_epochs_is_refused(a2d_dir, tmp_path, flags):
    argv = [*_flags(a2d_dir, tmp_path / "x"), "--max_steps", "-1", *flags]
    with pytest.raises(ValueError, match=r"num_train_epochs=(0|nan).*nothing to train"):
        train.main("mdlm", "sft", argv)
    assert not (tmp_path / "x").exists()


def test_the_marker_lists_every_file_and_the_shell_check_agrees(tmp_path):
    ckpt = tmp_path / "checkpoint-3"
    ckpt.mkdir()
    (ckpt / "trainer_state.json").write_text('{"global_step": 3}')
    (ckpt / "optimizer.pt").write_bytes(b"x" * 100)
    shell = [sys.executable, "-m", "a2dkit.cli.checkpoints", "is-complete", str(ckpt)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    assert cli_checkpoints.main(["is-complete", str(ckpt)]) == 1  # no marker yet
    marker = json.loads(checkpoints.mark_complete(ckpt).read_text())
    assert marker["files"] == {"optimizer.pt": 100, "trainer_state.json": 18}
    assert subprocess.run(shell, env=env, capture_output=True).returncode == 0  # as _launch.sh
    (ckpt / "optimizer.pt").write_bytes(b"x" * 99)
    assert checkpoints.check_complete(ckpt) == "optimizer.pt has 99 bytes, the marker says 100"
    with pytest.raises(ValueError, match="checkpoint-3.*is incomplete: optimizer.pt has 99"):
        checkpoints.resolve_resume_checkpoint(tmp_path, str(ckpt))
