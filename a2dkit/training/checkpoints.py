"""Complete checkpoints, the run an output directory holds, and which checkpoint to resume from.

A checkpoint is complete once its marker ``a2dkit_checkpoint.json`` exists: written last (after
every rank's files), atomically (temporary name, fsync, rename), listing each file with its size.
``is_complete`` checks the marker, the sizes and that the JSON/safetensors headers parse; a save cut
off at any file (kill, full disk) leaves no marker and is skipped. Shell use (slurm/_launch.sh):
``python -m a2dkit.cli.checkpoints is-complete DIR`` exits 0 if DIR is a complete checkpoint.
References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
from pathlib import Path

__all__ = [
    "MARKER",
    "FINAL",
    "RESUME_LATEST",
    "mark_complete",
    "check_complete",
    "is_complete",
    "latest_complete",
    "resolve_resume_checkpoint",
    "check_resume_value",
    "prepare_output_dir",
]

MARKER = "a2dkit_checkpoint.json"
FINAL = "checkpoint-final"
# --resume_from_checkpoint values meaning "the latest complete checkpoint-N in output_dir"
RESUME_LATEST = ("auto", "latest", "True", "true")
NO_RESUME = (None, False, "", "none", "None", "False", "false")
_STEP = re.compile(r"checkpoint-(\d+)")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def mark_complete(checkpoint: str | os.PathLike) -> Path:
    """Write the completion marker of a fully written ``checkpoint`` (call it last, on one rank).

    Every file is fsynced first, so the marker never lists data still in the page cache.

    Returns:
        The marker's path.
    """
    root = Path(checkpoint)
    files = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and MARKER not in p.name):
        _fsync(path)
        files[path.relative_to(root).as_posix()] = path.stat().st_size
    tmp = root / f".{MARKER}.tmp"
    tmp.write_text(json.dumps({"files": files}, indent=1))
    _fsync(tmp)
    os.replace(tmp, root / MARKER)  # atomic: the marker is either absent or whole
    _fsync(root)
    return root / MARKER


def _parse_error(path: Path) -> str | None:
    """Why ``path`` does not parse (JSON; safetensors header), or None."""
    try:
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".safetensors":
            with open(path, "rb") as f:
                (n,) = struct.unpack("<Q", f.read(8))
                json.loads(f.read(n))
    except (ValueError, struct.error, UnicodeDecodeError) as err:
        return f"{path.name} does not parse ({type(err).__name__})"
    return None


def check_complete(checkpoint: str | os.PathLike) -> str | None:
    """Why ``checkpoint`` is not a complete checkpoint, or None when it is."""
    root = Path(checkpoint)
    if not root.is_dir():
        return "not a directory"
    try:
        files = json.loads((root / MARKER).read_text())["files"]
    except FileNotFoundError:
        return f"no {MARKER} (its save did not finish)"
    except (ValueError, KeyError, TypeError):
        return f"{MARKER} does not parse"
    for name, size in files.items():
        path = root / name
        if not path.is_file():
            return f"{name} is missing"
        if path.stat().st_size != size:
            return f"{name} has {path.stat().st_size} bytes, the marker says {size}"
        if error := _parse_error(path):
            return error
    return None


def is_complete(checkpoint: str | os.PathLike) -> bool:
    """True if ``checkpoint`` carries a valid marker and every listed file is whole."""
    return check_complete(checkpoint) is None


def _step_checkpoints(output_dir: Path) -> list[tuple[int, Path]]:
    found = [(int(m.group(1)), p) for p in output_dir.glob("checkpoint-*")
             if (m := _STEP.fullmatch(p.name)) and p.is_dir()]  # fmt: skip
    return sorted(found, reverse=True)


def latest_complete(output_dir: str | os.PathLike, log=print) -> Path | None:
    """The complete ``checkpoint-<step>`` with the largest step; ``log`` names those skipped."""
    for _, path in _step_checkpoints(Path(output_dir)):
        reason = check_complete(path)
        if reason is None:
            return path
        log(f"[a2dkit] skipping incomplete checkpoint {path}: {reason}")
    return None


def resolve_resume_checkpoint(
    output_dir: str | os.PathLike, value: str | bool | None, log=print
) -> str | None:
    """Turn ``--resume_from_checkpoint`` into a checkpoint path, or None (start from scratch).

    Args:
        output_dir: the run's output directory (searched for ``checkpoint-<step>``).
        value: None / "" / "none" -> None; "auto" (also "latest", True) -> the newest complete
            ``checkpoint-<step>`` (incomplete ones are skipped and named through ``log``), None if
            there is none; anything else must be a checkpoint directory and is returned as is.
        log: where the skipped checkpoints are reported.

    Raises:
        ValueError: an explicit checkpoint that is not a directory, or whose marker says it is
            incomplete.
    """
    if value in NO_RESUME:
        return None
    if value is True or value in RESUME_LATEST:
        latest = latest_complete(output_dir, log)
        return None if latest is None else str(latest)
    path = Path(str(value))
    if not path.is_dir():
        raise ValueError(
            f"resume_from_checkpoint={value!r} is not a directory; pass a checkpoint directory, "
            f"one of {RESUME_LATEST} (latest checkpoint in output_dir) or leave it unset"
        )
    reason = check_complete(path) if (path / MARKER).exists() else _parse_error_of_state(path)
    if reason:
        raise ValueError(f"resume_from_checkpoint={value!r} is incomplete: {reason}")
    return str(path)


def _parse_error_of_state(path: Path) -> str | None:
    """A checkpoint without marker (e.g. plain HF): its trainer state must at least parse."""
    state = path / "trainer_state.json"
    return _parse_error(state) if state.is_file() else "no trainer_state.json"


def _run_entries(output_dir: Path) -> list[str]:
    """The checkpoints (complete or not) of a run held in ``output_dir``."""
    if not output_dir.is_dir():
        return []
    return sorted(p.name for p in output_dir.glob("checkpoint-*") if p.is_dir())


def prepare_output_dir(
    output_dir: str | os.PathLike,
    resume: str | bool | None,
    overwrite: bool = False,
    is_main: bool = True,
    log=print,
) -> tuple[str | None, bool]:
    """Decide how a run uses ``output_dir``; never reuses another run's checkpoints silently.

    Args:
        output_dir: the run's output directory.
        resume: ``--resume_from_checkpoint`` (see :func:`resolve_resume_checkpoint`).
        overwrite: ``--overwrite_output_dir``: delete the checkpoints of the run it holds first.
        is_main: only the main process deletes (the others must wait for it).
        log: where decisions are reported.

    Returns:
        (checkpoint to resume from or None, finished): ``finished`` when ``resume`` is "auto" and
        the run's ``checkpoint-final`` is complete, so there is nothing to train.

    Raises:
        ValueError: ``output_dir`` holds a run and neither resuming nor overwriting was asked for,
            or both were.
    """
    out, resuming = Path(output_dir), resume not in NO_RESUME
    entries = _run_entries(out)
    if overwrite and resuming:
        raise ValueError(
            f"overwrite_output_dir=True and resume_from_checkpoint={resume!r} contradict each "
            "other: overwrite deletes the checkpoints a resume would read; pass only one"
        )
    if overwrite:
        if is_main and entries:
            log(f"[a2dkit] overwrite_output_dir: deleting {entries} in {out}")
            for name in entries:
                shutil.rmtree(out / name)
        return None, False
    if entries and not resuming:
        raise ValueError(
            f"output_dir={str(out)!r} already holds a run ({', '.join(entries)}); pass "
            "--resume_from_checkpoint auto to continue it, --overwrite_output_dir True to delete "
            "its checkpoints and start over, or choose another --output_dir"
        )
    if resume is True or resume in RESUME_LATEST:
        final = out / FINAL
        if final.is_dir() and (reason := check_complete(final)) is None:
            return None, True
        if final.is_dir():
            log(f"[a2dkit] {final} is incomplete ({reason}): training resumes")
    return resolve_resume_checkpoint(out, resume, log), False


def check_resume_value(value: str | bool | None) -> None:
    """A ``--resume_from_checkpoint`` value is "none", "auto" (or alike) or a directory."""
    if value in NO_RESUME or value is True or value in RESUME_LATEST:
        return
    if not Path(str(value)).is_dir():
        raise ValueError(
            f"resume_from_checkpoint={value!r} is not a directory; pass a checkpoint directory, "
            f"one of {RESUME_LATEST} (latest checkpoint in output_dir) or leave it unset"
        )
