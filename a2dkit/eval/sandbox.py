"""Run untrusted code (a model's completion) in a separate, limited Python process.

Never in the trainer's process: a fresh ``python -I`` (isolated: no user site, no PYTHON* env)
with an empty environment, a temporary working directory, ``setrlimit`` caps on CPU time, memory,
file size and open files, a wall-clock timeout that kills the whole process group, and an audit
hook installed before the code runs that refuses sockets, subprocesses, forks and exec.
This is a guard against accidents, not a security boundary against a determined adversary: run
code rewards on machines you can afford to lose, as d1 and dLLM do.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SandboxResult", "run_python"]

# The child runs this first: limits on itself, then an audit hook, then the user's file.
_BOOTSTRAP = """
import resource, sys
def _cap(kind, value):
    soft, hard = resource.getrlimit(kind)
    value = value if hard == resource.RLIM_INFINITY else min(value, hard)
    resource.setrlimit(kind, (value, value))
_cap(resource.RLIMIT_CPU, {cpu})
_cap(resource.RLIMIT_AS, {memory})
_cap(resource.RLIMIT_FSIZE, {fsize})
_cap(resource.RLIMIT_NOFILE, 64)
_BLOCKED = ("socket.", "subprocess.", "os.fork", "os.forkpty", "os.exec", "os.posix_spawn",
            "os.spawn", "os.system", "os.kill", "os.killpg", "pty.", "ctypes.", "shutil.rmtree")
def _audit(event, args):
    if event.startswith(_BLOCKED):
        raise PermissionError("sandbox: " + event + " is not allowed")
sys.addaudithook(_audit)
_path = sys.argv[1]
sys.path.insert(0, _path.rsplit("/", 1)[0])  # -I leaves the working directory off sys.path
with open(_path) as _f:
    _src = _f.read()
_g = {{"__name__": "__main__"}}
exec(compile(_src, "main.py", "exec"), _g)
"""


@dataclass
class SandboxResult:
    """``ok``: exit code 0 within the limits; ``reason``: why not ("timeout", "exit 1: ...")."""

    ok: bool
    reason: str
    stdout: str = ""
    stderr: str = ""


def run_python(
    code: str,
    timeout: float = 5.0,
    memory_mb: int = 512,
    max_output: int = 4000,
    files: dict[str, str] | None = None,
) -> SandboxResult:
    """Execute ``code`` in a limited child process and report how it ended.

    Args:
        code: Python source (e.g. tests that ``from solution import f``).
        files: other modules written beside it, e.g. ``{"solution.py": completion_code}``.
        timeout: wall-clock seconds before the process group is killed (CPU cap: +1 s).
        memory_mb: address-space cap of the child.
        max_output: characters of stdout/stderr kept in the result.
    """
    if timeout <= 0 or memory_mb <= 0:
        raise ValueError(f"timeout={timeout} and memory_mb={memory_mb} must be > 0")
    boot = _BOOTSTRAP.format(cpu=int(timeout) + 1, memory=memory_mb * 2**20, fsize=8 * 2**20)
    with tempfile.TemporaryDirectory(prefix="a2dkit-sandbox-") as tmp:
        for name, text in (files or {}).items():
            if "/" in name or name.startswith("."):
                raise ValueError(f"file name {name!r} must be a plain name like 'solution.py'")
            (Path(tmp) / name).write_text(text)
        path = Path(tmp) / "main.py"
        path.write_text(code)
        cmd = [sys.executable, "-I", "-c", boot, str(path)]
        proc = subprocess.Popen(
            cmd, cwd=tmp, env={}, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the child and anything it started
            out, err = proc.communicate()
            return SandboxResult(False, f"timeout after {timeout:g} s", out[-max_output:],
                                 err[-max_output:])  # fmt: skip
    if proc.returncode == 0:
        return SandboxResult(True, "ok", out[-max_output:], err[-max_output:])
    last = (err.strip().splitlines() or [""])[-1][:200]
    return SandboxResult(False, f"exit {proc.returncode}: {last}", out[-max_output:],
                         err[-max_output:])  # fmt: skip
