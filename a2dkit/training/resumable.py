"""What makes a run resumable exactly: complete checkpoints, preemption, and the loss log's window.

``ResumableTrainerMixin`` (mixed into ``MDLMTrainer``) marks every checkpoint complete only after
all ranks wrote it (``training.checkpoints``), saves the partial loss window so a resumed run logs
the uninterrupted run's loss curve, and trains no step past ``max_steps`` when resumed at the end.
``PreemptionCallback`` turns SIGUSR1/SIGTERM or a stop file into "save after this step and stop".
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import threading
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from transformers import TrainerCallback
from transformers.trainer_utils import get_last_checkpoint, rotate_checkpoints

from a2dkit.training import checkpoints, lora

__all__ = [
    "LOSS_WINDOW",
    "STOP_FILE_ENV",
    "PREEMPTED_EXIT_CODE",
    "ResumableTrainerMixin",
    "PreemptionCallback",
]

LOSS_WINDOW = "a2dkit_loss_window.json"  # the loss summed since the last logging step, per rank
STOP_FILE_ENV = "A2DKIT_STOP_FILE"  # PreemptionCallback stops once this file exists
PREEMPTED_EXIT_CODE = 3  # a checkpoint was saved after SIGUSR1/SIGTERM: requeue and resume


class ResumableTrainerMixin:
    """``transformers.Trainer`` mixin: atomic checkpoints, exact loss log and end on resume."""

    def train(self, resume_from_checkpoint: str | bool | None = None, **kwargs: Any):
        """As ``Trainer.train``; remembers the checkpoint to restore the loss window from."""
        if resume_from_checkpoint is True:
            resume_from_checkpoint = get_last_checkpoint(self.args.output_dir)
        self._a2d_resume = resume_from_checkpoint
        return super().train(resume_from_checkpoint=resume_from_checkpoint, **kwargs)

    def _run_epoch(self, *args: Any, **kwargs: Any) -> None:
        if getattr(self, "_a2d_resume", None):  # after HF reset the window, before any step
            self._restore_loss_window(Path(self._a2d_resume))
            self._a2d_resume = None
        if 0 < self.state.max_steps <= self.state.global_step:
            # resumed from the last step's checkpoint: HF would run one more step (its epoch loop
            # resumes mid-epoch and checks max_steps only after a step)
            self.control.should_training_stop = True
            return
        super()._run_epoch(*args, **kwargs)

    def _restore_loss_window(self, checkpoint: Path) -> None:
        path = checkpoint / LOSS_WINDOW
        if not path.is_file():
            return  # a checkpoint from elsewhere: the first log averages from the resume step
        window = json.loads(path.read_text())
        sums = window["tr_loss"]
        if len(sums) != self.args.world_size:
            return  # another world size: ranks' sums do not map onto this run's ranks
        self._tr_loss = torch.tensor(sums[self.args.process_index], device=self.args.device)
        self._globalstep_last_logged = int(window["last_logged"])
        # HF adds the window to the run's total at the next log; it was trained before this call
        self._total_loss_scalar = -sum(sums) / len(sums)

    def _save_checkpoint(self, model: torch.nn.Module, trial: Any) -> None:
        """HF's save, then the loss window, then (all ranks done) the completion marker."""
        run_dir = Path(self._get_output_dir(trial=trial))
        folder = run_dir / f"checkpoint-{self.state.global_step}"
        self._clear(folder)
        limit, self.args.save_total_limit = self.args.save_total_limit, None
        try:  # rotate only after the marker: never delete the last complete one first
            super()._save_checkpoint(model, trial)
        finally:
            self.args.save_total_limit = limit
        sums = self.accelerator.gather(self._tr_loss.detach().float().reshape(1)).tolist()
        if self.args.should_save:
            window = {"tr_loss": sums, "last_logged": self._globalstep_last_logged}
            (folder / LOSS_WINDOW).write_text(json.dumps(window))
        self.accelerator.wait_for_everyone()  # every rank's RNG state is on disk
        if self.args.should_save:
            checkpoints.mark_complete(folder)
            best = self.state.best_model_checkpoint
            rotate_checkpoints(str(run_dir), limit, best_model_checkpoint=best, use_mtime=True)

    def save_final_model(self, folder: str | os.PathLike) -> Path:
        """Model + tokenizer + trainer state (the loss curve) into ``folder``, marked complete."""
        folder = Path(folder)
        self._clear(folder)
        lora.save_final(self, folder)  # model + tokenizer; LoRA: merged (adapter: lora-adapter)
        if self.args.should_save:
            self.state.save_to_json(str(folder / "trainer_state.json"))
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            checkpoints.mark_complete(folder)
        return folder

    def _clear(self, folder: Path) -> None:
        """Remove what a cut-off save left in ``folder`` before saving there again."""
        if self.args.should_save and folder.exists():
            shutil.rmtree(folder)
        self.accelerator.wait_for_everyone()


class PreemptionCallback(TrainerCallback):
    """On SIGUSR1/SIGTERM (Slurm's warning signal), or once ``stop_file`` exists: save at the end
    of this step, then stop.

    No optimizer step is lost: the checkpoint holds the state after the step that was running.
    With several ranks the flag is all-reduced, so every rank saves and stops at the same step.
    ``preempted`` tells the caller (e.g. to exit with a "requeue me" code). The stop file (default
    ``$A2DKIT_STOP_FILE``) is how slurm/_launch.sh and ``a2dkit.launch`` pass a signal to every
    rank: unlike a signal it reaches ranks in other sessions and cannot arrive too early.
    """

    def __init__(
        self,
        signals: tuple[int, ...] = (signal.SIGUSR1, signal.SIGTERM),
        stop_file: str | os.PathLike | None = None,
    ) -> None:
        self.signals = tuple(signals)
        stop_file = os.environ.get(STOP_FILE_ENV) if stop_file is None else stop_file
        self.stop_file = Path(stop_file) if stop_file else None
        self.received: int | None = None  # the signal this process got
        self.preempted = False  # any rank got one: this run stopped early
        self._previous: dict[int, Any] = {}

    def _requested(self) -> bool:
        return self.received is not None or bool(self.stop_file and self.stop_file.exists())

    def _handler(self, signum, frame) -> None:
        self.received = signum

    def on_train_begin(self, args, state, control, **kwargs):
        if threading.current_thread() is threading.main_thread():  # signals need the main thread
            self._previous = {sig: signal.signal(sig, self._handler) for sig in self.signals}

    def on_step_end(self, args, state, control, **kwargs):
        if _any_rank(self._requested(), args.device):
            self.preempted = True
            control.should_save = True
            control.should_training_stop = True
        return control

    def on_train_end(self, args, state, control, **kwargs):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _any_rank(flag: bool, device: torch.device) -> bool:
    """True if ``flag`` is True on any process of the default process group."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return flag
    value = torch.tensor([float(flag)], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())
