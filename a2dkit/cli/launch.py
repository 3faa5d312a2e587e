"""``accelerate launch`` that survives preemption: SIGTERM and SIGUSR1 reach every rank, exit 3.

Plain ``accelerate launch`` dies on SIGUSR1 (its ranks train on) and, under torchrun, only forwards
SIGTERM and then exits 1. This launcher runs accelerate's own ``launch_command`` in-process, but
first turns SIGTERM/SIGUSR1 into the stop file that every rank's ``PreemptionCallback`` polls
after each optimizer step (torchrun starts ranks in their own sessions: a signal to the launcher's
process group does not reach them). The ranks then checkpoint at the same step and exit 3, and so
does this launcher: "preempted, checkpoint saved, requeue me".
Run: python -m a2dkit.launch --config_file a2dkit/accelerate_configs/cpu.yaml --num_processes 2 \
    -m a2dkit.cli.mdlm.sft --use_cpu True --resume_from_checkpoint auto ...
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from a2dkit.cli.errors import run_cli
from a2dkit.training.resumable import PREEMPTED_EXIT_CODE, STOP_FILE_ENV

__all__ = ["SIGNALS", "main"]

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
# torchrun's agent keeps these (it forwards them to the ranks and stops); SIGTERM stays with us
TORCHRUN_SIGNALS = "SIGINT,SIGHUP,SIGQUIT"


def _stop_file() -> tuple[Path, str | None]:
    """The stop file ranks poll: ``$A2DKIT_STOP_FILE`` (Slurm sets it) or a fresh temporary one."""
    if os.environ.get(STOP_FILE_ENV):
        return Path(os.environ[STOP_FILE_ENV]), None
    tmp = tempfile.mkdtemp(prefix="a2dkit-launch-")
    os.environ[STOP_FILE_ENV] = str(Path(tmp) / "stop")
    return Path(os.environ[STOP_FILE_ENV]), tmp


def _exit_code(err: BaseException) -> int | None:
    """The launch's exit code: 3 if any rank exited 3 (all ranks saved: they passed a barrier)."""
    if isinstance(err, subprocess.CalledProcessError):  # the simple launcher: one child
        codes = [err.returncode]
    else:  # torchrun's ChildFailedError: one ProcessFailure per failed rank
        codes = [f.exitcode for f in getattr(err, "failures", {}).values()]
    if PREEMPTED_EXIT_CODE in codes:
        return PREEMPTED_EXIT_CODE
    return None


def main(argv: list[str] | None = None) -> int:
    """Parse ``accelerate launch`` flags, launch, and return 0, 3 (preempted) or raise."""
    from accelerate.commands.launch import launch_command, launch_command_parser

    stop, tmp = _stop_file()
    os.environ.setdefault("PET_SIGNALS_TO_HANDLE", TORCHRUN_SIGNALS)

    def on_signal(signum, frame) -> None:
        print(f"[a2dkit] {signal.Signals(signum).name}: every rank checkpoints after this step",
              file=sys.stderr, flush=True)  # fmt: skip
        stop.parent.mkdir(parents=True, exist_ok=True)
        stop.touch()

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    args = launch_command_parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        launch_command(args)
        return 0
    except Exception as err:
        code = _exit_code(err)
        if code is None:
            raise
        return code
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(run_cli(main))
