"""A one-node SLURM cluster on this machine, for tests: munged, slurmctld and slurmd as children of the test process.

Everything it needs lives in one folder of its own (configs, munge key and socket, state, spool, logs), the
daemons listen on free ports and are found through ``SLURM_CONF``, so it neither needs nor touches a system
SLURM or munge. Measured settings (shared/environment-notes.md): Debian 12's SLURM 22.05 runs here as root
with ``ProctrackType=proctrack/linuxproc``, ``TaskPlugin=task/none`` and ``CgroupPlugin=cgroup/v1``.

Besides the default partition ``debug`` there is ``closed``: a partition that is down, where a job queues and
never starts (the coordinator's start timeout is tested there).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

#: The programs a one-node cluster needs (Debian: slurmctld slurmd slurm-client munge).
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scancel", "sinfo")
#: The default partition, where jobs run; and one that is down, where they wait for ever.
PARTITION = "debug"
CLOSED_PARTITION = "closed"


def why_not_here() -> str | None:
    """Why SLURM cannot run on this machine (None: it can)."""
    missing = [p for p in PROGRAMS if shutil.which(p) is None and not Path("/usr/sbin", p).is_file()]
    if missing:
        return f"{', '.join(missing)} not installed (apt-get install slurmctld slurmd slurm-client munge)"
    if os.geteuid() != 0:
        return "slurmd must run as root to start jobs, and the tests do not run as root"
    return None


def program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def node_line() -> str:
    """This host as slurmd sees it (``slurmd -C``: CPUs, sockets, cores, memory), so the node is not drained as misdescribed."""
    found = subprocess.run([program("slurmd"), "-C"], capture_output=True, text=True, check=True).stdout
    return next(line for line in found.splitlines() if line.startswith("NodeName="))


@dataclass
class SlurmNode:
    """A running one-node cluster: ``env`` is what a SLURM command (or a ``grade`` child) needs to find it."""

    folder: Path
    host: str = ""
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def write_configs(self) -> None:
        """slurm.conf and cgroup.conf for this host, every path inside ``folder``."""
        f = self.folder
        for sub in ("state", "spool", "log"):
            (f / sub).mkdir(parents=True, exist_ok=True)
        node = node_line()
        self.host = node.split()[0].split("=", 1)[1]
        lines = [
            "ClusterName=hwgrader-test",
            f"SlurmctldHost={self.host}",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}",
            "AuthType=auth/munge",
            f"AuthInfo=socket={f / 'munge.socket'}",
            "MpiDefault=none",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "SchedulerType=sched/backfill",
            "ReturnToService=2",
            "JobCompType=jobcomp/none",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "MailProg=/bin/true",
            "SchedulerParameters=sched_interval=2",
            "MessageTimeout=30",
            "KillWait=15",  # SIGTERM, then SIGKILL: time for a cancelled worker to exit and its job folder to go
            f"StateSaveLocation={f / 'state'}",
            f"SlurmdSpoolDir={f / 'spool'}",
            f"SlurmctldPidFile={f / 'slurmctld.pid'}",
            f"SlurmdPidFile={f / 'slurmd.pid'}",
            f"SlurmctldLogFile={f / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={f / 'log' / 'slurmd.log'}",
            f"{node} State=UNKNOWN",
            f"PartitionName={PARTITION} Nodes={self.host} Default=YES MaxTime=INFINITE State=UP",
            f"PartitionName={CLOSED_PARTITION} Nodes={self.host} MaxTime=INFINITE State=DOWN",
        ]
        self.conf.write_text("\n".join(lines) + "\n", encoding="utf-8")
        (f / "cgroup.conf").write_text("CgroupPlugin=cgroup/v1\n", encoding="utf-8")  # 'disabled' stops slurmd from starting

    def start(self, timeout: float = 90) -> None:
        """munged, slurmctld, slurmd in the foreground as children; returns once the node is idle."""
        f = self.folder
        f.chmod(0o755)  # munged wants its socket's folder searchable
        key = f / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        log = open(f / "log" / "daemons.log", "ab")  # noqa: SIM115 -- kept open for the children's lifetime
        munge_options = [f"--key-file={key}", f"--socket={f / 'munge.socket'}", f"--pid-file={f / 'munged.pid'}"]
        munge_options += [f"--log-file={f / 'log' / 'munged.log'}", f"--seed-file={f / 'munged.seed'}"]
        self.spawn([program("munged"), "-F", "--force", *munge_options], log)
        self.wait_for(lambda: (f / "munge.socket").exists(), 15, "munged did not create its socket")
        self.spawn([program("slurmctld"), "-D", "-i", "-f", str(self.conf)], log)
        self.spawn([program("slurmd"), "-D", "-f", str(self.conf)], log)
        self.wait_for(self.idle, timeout, "the node did not become idle")

    def spawn(self, command: list[str], log) -> None:
        self.processes.append(subprocess.Popen(command, stdout=log, stderr=log, env=self.env, start_new_session=True))

    def wait_for(self, ready, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not ready():
            dead = [p.args for p in self.processes if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(
                    f"SLURM test node: {what} ({'exited: ' + str(dead) if dead else 'timed out'}); logs in {self.folder / 'log'}"
                )
            time.sleep(0.5)

    def idle(self) -> bool:
        state = self.run(["sinfo", "--noheader", f"--partition={PARTITION}", "--format=%t"])
        return state.returncode == 0 and state.stdout.split() == ["idle"]

    def run(self, command: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A SLURM command against this cluster."""
        return subprocess.run(
            [program(command[0]), *command[1:]], capture_output=True, text=True, env=self.env, timeout=timeout, check=False
        )

    def queue(self) -> list[str]:
        """Every job in the queue, as ``id name state`` lines."""
        return self.run(["squeue", "--noheader", "--format=%i %j %T"]).stdout.split("\n")[:-1]

    def stop(self) -> None:
        """Cancel what is left, stop the daemons (slurmd first), remove every file they wrote."""
        try:
            self.run(["scancel", "--full", "--user=root"], timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
        self.processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
