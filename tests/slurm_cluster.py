"""A throwaway Slurm cluster (munged + slurmctld + one slurmd per node) for tests/test_slurm.py.

Debian's packages run as root without systemd: nodes ``n1..nN``, each ``slurmd -N nK`` on its own
port of this host (multiple-slurmd mode, ``NodeHostname=localhost``, ``NodeAddr=127.0.0.1``),
``proctrack/linuxproc``, ``task/none``, no cgroups, no slurmdbd (job state from ``scontrol``).
Every file lives under one prefix selected with ``SLURM_CONF``; ``stop`` ends only the daemons that
``start`` launched, by PID. References: MDLM arXiv 2406.07524; BD3LM arXiv 2503.09573.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

BINARIES = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "scontrol", "scancel", "squeue")
INSTALL_HINT = (
    "the Slurm tests need Debian's slurmctld, slurmd, slurm-client and munge packages; "
    "install them with `bash .ci/install_slurm.sh` (apt-get, as root)"
)
FINISHED = (
    *("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT"),
    *("NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"),
)

SLURM_CONF = """\
ClusterName=a2dkit-test
SlurmctldHost=localhost
SlurmctldPort={ctld_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={prefix}/munge/munge.socket,cred_expire={cred_expire}
SlurmUser={user}
SlurmdUser=root
StateSaveLocation={prefix}/state
SlurmdSpoolDir={prefix}/spool/{node}
SlurmctldPidFile={prefix}/slurmctld.pid
SlurmdPidFile={prefix}/slurmd-{node}.pid
SlurmctldLogFile={prefix}/log/slurmctld.log
SlurmdLogFile={prefix}/log/slurmd-{node}.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={prefix}/log/jobcomp.txt
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
SlurmdParameters=config_overrides
ReturnToService=2
MinJobAge=3600
KillWait=30
{node_lines}
PartitionName=debug Nodes={node_names} Default=YES MaxTime=INFINITE State=UP
"""
# one slurmd per node, all on this host, each with its own port; Debian's build lacks
# --enable-multiple-slurmd (no %n in paths: a second slurmd kills the first through the shared
# pid file), so each slurmd reads its own copy of slurm.conf with its own pid file, spool and log
# (slurmctld logs a config-hash mismatch for them, nothing more). NodeAddr 127.0.0.1 is where
# slurmctld and srun reach a node, and where the jobs' rendezvous listens.
NODE_LINE = (
    "NodeName={name} NodeHostname=localhost NodeAddr=127.0.0.1 Port={port} CPUs={cpus} "
    "RealMemory=1 State=UNKNOWN"
)


def missing_binaries() -> list[str]:
    """The Slurm/munge programs this cluster needs that are not installed."""
    path = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
    return [b for b in BINARIES if shutil.which(b, path=path) is None]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_job(line: str) -> dict[str, str]:
    """``scontrol show job -o`` (one line of ``Key=Value`` pairs) -> dict."""
    pairs = re.findall(r"(?:^|\s)([A-Za-z][\w:/]*)=(.*?)(?=\s+[A-Za-z][\w:/]*=|\s*$)", line)
    return dict(pairs)


class SlurmCluster:
    """munged + slurmctld + slurmd under ``prefix``; ``env`` points Slurm clients at it.

    Args:
        prefix: the folder for every file of the cluster (config, state, logs, munge socket).
        cpus: CPUs the node advertises (``config_overrides``: more than it has is fine).
        cred_expire: seconds before a requeued job may start again (Slurm's default is 120).
        nodes: how many nodes (slurmd daemons), named n1..nN.
    """

    def __init__(
        self,
        prefix: str | os.PathLike,
        cpus: int | None = None,
        cred_expire: int = 10,
        nodes: int = 1,
    ) -> None:
        self.prefix = Path(prefix).resolve()
        self.cpus = cpus or os.cpu_count() or 1
        self.nodes = [f"n{k}" for k in range(1, nodes + 1)]
        # a requeued job may start again only once its old credential expires (default 120 s)
        self.cred_expire = cred_expire
        self.conf = self.prefix / "slurm.conf"
        self._procs: dict[str, subprocess.Popen] = {}
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.env["PATH"] = f"{self.env.get('PATH', '')}:/usr/sbin:/sbin"

    def _write_files(self) -> None:
        for sub in ("munge", "state", "log", *(f"spool/{n}" for n in self.nodes)):
            (self.prefix / sub).mkdir(parents=True, exist_ok=True)
        (self.prefix / "munge").chmod(0o755)  # clients must reach the socket
        key = self.prefix / "munge" / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        user = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
        lines = [NODE_LINE.format(name=n, port=free_port(), cpus=self.cpus) for n in self.nodes]
        fields = dict(prefix=self.prefix, user=user, cred_expire=self.cred_expire)
        fields |= dict(ctld_port=free_port(), node_lines="\n".join(lines))
        fields |= dict(node_names=",".join(self.nodes))
        self.conf.write_text(SLURM_CONF.format(node="ctld", **fields))
        for node in self.nodes:
            self._node_conf(node).write_text(SLURM_CONF.format(node=node, **fields))

    def _node_conf(self, node: str) -> Path:
        return self.prefix / f"slurm-{node}.conf"

    def _spawn(self, name: str, *cmd: str) -> None:
        log = open(self.prefix / "log" / f"{name}.out", "w")  # noqa: SIM115 (kept by the child)
        self._procs[name] = subprocess.Popen(
            cmd, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def start(self, timeout: float = 60.0) -> SlurmCluster:
        """Start the three daemons and wait until the node is idle."""
        missing = missing_binaries()
        if missing:
            raise RuntimeError(f"missing {missing}: {INSTALL_HINT}")
        self._write_files()
        try:
            self._start_daemons(timeout)
        except BaseException:
            self.stop()  # never leave a half-started cluster behind
            raise
        return self

    def _start_daemons(self, timeout: float) -> None:
        m = self.prefix / "munge"
        self._spawn(
            "munged", "munged", "-F", "--force", f"--key-file={m}/munge.key",
            f"--socket={m}/munge.socket", f"--pid-file={m}/munged.pid",
            f"--seed-file={m}/munged.seed", f"--log-file={self.prefix}/log/munged.log",
        )  # fmt: skip
        self._wait_for(lambda: (m / "munge.socket").exists(), timeout, "munged's socket")
        self._spawn("slurmctld", "slurmctld", "-D", "-i")
        for node in self.nodes:
            self._spawn(
                f"slurmd-{node}", "slurmd", "-D", "-f", str(self._node_conf(node)), "-N", node
            )
        self._wait_for(self._nodes_idle, timeout, "the nodes to become idle")

    def _nodes_idle(self) -> bool:
        out = self.run("sinfo", "-h", "-N", "-o", "%N %T", check=False).split()
        return sorted(out[0::2]) == sorted(self.nodes) and set(out[1::2]) == {"idle"}

    def _wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [n for n, p in self._procs.items() if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"waiting for {what}: dead daemons {dead}\n{self.logs()}")
            time.sleep(0.2)

    def logs(self, tail: int = 4000) -> str:
        """The tail of every daemon log (for failure messages)."""
        parts = []
        for path in sorted((self.prefix / "log").glob("*")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def run(self, *cmd: str, check: bool = True) -> str:
        """Run a Slurm client command against this cluster; returns stdout."""
        res = subprocess.run(cmd, env=self.env, capture_output=True, text=True, timeout=60)
        if check and res.returncode != 0:
            raise RuntimeError(f"{cmd} failed ({res.returncode}): {res.stderr}{res.stdout}")
        return res.stdout

    def sbatch(self, *args: str, env: dict[str, str] | None = None, cwd: str | None = None) -> str:
        """Submit with ``sbatch --parsable ARGS``; returns the job id."""
        res = subprocess.run(
            ["sbatch", "--parsable", *args],
            env={**self.env, **(env or {})},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=60,
        )
        if res.returncode != 0:
            raise RuntimeError(f"sbatch {args} failed: {res.stderr}{res.stdout}")
        return res.stdout.strip().split(";")[0]

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job`` as a dict (JobState, Restarts, ExitCode, ...)."""
        return parse_job(self.run("scontrol", "show", "job", "-o", job_id).strip())

    def wait(self, job_id: str, states=FINISHED, timeout: float = 180.0) -> dict[str, str]:
        """Poll until the job's state is one of ``states``; returns the job dict."""
        deadline = time.monotonic() + timeout
        while (info := self.job(job_id))["JobState"] not in states:
            if time.monotonic() > deadline:
                raise TimeoutError(f"job {job_id} still {info['JobState']} after {timeout} s")
            time.sleep(0.3)
        return info

    def stop(self) -> None:
        """Cancel this cluster's jobs, then stop the daemons this object started (by PID)."""
        if self._procs.get("slurmctld") and self._procs["slurmctld"].poll() is None:
            self.run("scancel", "--full", "--user", str(os.getuid()), check=False)
            deadline = time.monotonic() + 40
            while self.run("squeue", "-h", check=False).strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for name in (*(f"slurmd-{n}" for n in self.nodes), "slurmctld", "munged"):
            proc = self._procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
