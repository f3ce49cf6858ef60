"""Workers as SLURM jobs: ``grade submissions/ --scheduler slurm --cluster-config cluster.toml``.

A TA writes the ``[slurm]`` table once (partition, cores, memory, walltime, jobs, GPUs per job, the lines that
activate the environment, the data folder). Everything in it is checked before a job is submitted -- an
unknown key, a missing partition, a walltime shorter than the notebook timeout, and finally ``sbatch
--test-only`` on the very script the workers will run -- because on a shared cluster a mistake found after
the jobs queued costs the TA their place in the queue.

The workers are started through dask-jobqueue's ``SLURMCluster``: one job, one Dask worker, one notebook at a
time (the job's cores go to that notebook's kernel). The coordinator says how many jobs run and how many wait
(``squeue``) until the first worker arrives, and gives up with the queue's reason after ``start_timeout``
seconds instead of waiting forever. Every job of a run carries one name of its own, so that leaving --
normally, on an error or on Ctrl-C -- cancels exactly this run's jobs: ``SLURMCluster.close`` first, then
``scancel --name`` for any job it missed.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import ConfigError
from grader.sandbox.platform import SHORT_TEMPORARY_FOLDERS, SOCKET_PATH_BELOW, SOCKET_PATH_LIMIT

#: The keys of the ``[slurm]`` table, each with what it means (shown when a key is unknown).
KEYS = {
    "partition": "the partition (queue) the jobs go to -- required",
    "cores": "CPU cores per job, all for the one notebook it grades at a time (default 1)",
    "memory": "memory per job, e.g. '8GB' (default '4GB')",
    "walltime": "time limit per job, SLURM's format: 'MM', 'HH:MM:SS' or 'D-HH:MM:SS' (default '01:00:00')",
    "jobs": "how many jobs (workers) to start (default 1)",
    "gpus_per_job": "GPUs per job, requested as --gres=gpu:N (default 0)",
    "prologue": "shell lines run before the worker starts, e.g. ['source /shared/hw-grader/.venv/bin/activate']",
    "data_dir": "Fashion-MNIST at the same path on every node (used when --data-dir is not given)",
    "python": "the Python that runs the worker on the nodes (default: the one running grade)",
    "account": "the account jobs are charged to (sbatch --account)",
    "log_directory": "a folder (shared) for the jobs' output; default: none is kept",
    "start_timeout": "seconds to wait for the first job to start before giving up (default 600)",
}

#: The scheduler name of the command line.
SCHEDULER = "slurm"


class SlurmConfigError(ConfigError):
    """The cluster config is wrong, or SLURM refused or never started its jobs: nothing was graded (exit 2)."""


@dataclass(frozen=True)
class SlurmConfig:
    """The ``[slurm]`` table of a cluster config, checked."""

    partition: str
    cores: int = 1
    memory: str = "4GB"
    walltime: str = "01:00:00"
    jobs: int = 1
    gpus_per_job: int = 0
    prologue: tuple[str, ...] = ()
    data_dir: str | None = None
    python: str = field(default_factory=lambda: sys.executable)
    account: str | None = None
    log_directory: str | None = None
    start_timeout: float = 600.0

    @property
    def memory_bytes(self) -> int:
        """The job's memory in bytes (dask's reading of ``memory``)."""
        from dask.utils import parse_bytes

        return int(parse_bytes(self.memory))


def walltime_seconds(text: str) -> int:
    """Seconds in a SLURM time limit: ``M``, ``M:S``, ``H:M:S``, ``D-H``, ``D-H:M``, ``D-H:M:S``."""
    days, _, rest = text.strip().rpartition("-") if "-" in text else ("0", "", text.strip())
    parts = rest.split(":")
    try:
        numbers = [int(p) for p in parts]
        day_count = int(days)
    except ValueError:
        raise ValueError(f"not a SLURM time limit: {text!r}") from None
    if any(n < 0 for n in numbers) or day_count < 0 or len(numbers) > 3 or not parts:
        raise ValueError(f"not a SLURM time limit: {text!r}")
    if "-" in text:  # D-H, D-H:M, D-H:M:S
        h, m, s = (numbers + [0, 0])[:3]
    elif len(numbers) == 1:  # minutes
        h, m, s = 0, numbers[0], 0
    elif len(numbers) == 2:  # minutes:seconds
        h, (m, s) = 0, numbers
    else:
        h, m, s = numbers
    return ((day_count * 24 + h) * 60 + m) * 60 + s


def _typed(table: dict[str, Any], key: str, kind: type | tuple[type, ...], where: str) -> Any:
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        raise SlurmConfigError(f"{where}: [slurm] {key} must be a {names}, not {value!r}")
    return value


def parse_config(data: dict[str, Any], notebook_timeout: float, where: str = "cluster config") -> SlurmConfig:
    """The ``[slurm]`` table of ``data`` as a :class:`SlurmConfig`, or :class:`SlurmConfigError` saying what to change.

    ``notebook_timeout``: the longest time one notebook of this run may take; a job that cannot outlive it
    would be killed mid-notebook, again and again on every job it is rescheduled on.
    """
    extra = sorted(set(data) - {"slurm"})
    if extra:
        raise SlurmConfigError(f"{where}: unknown table or key {', '.join(extra)} (a cluster config has one table, [slurm])")
    table = data.get("slurm")
    if not isinstance(table, dict):
        raise SlurmConfigError(f"{where}: no [slurm] table (its keys: {', '.join(KEYS)})")
    unknown = sorted(set(table) - set(KEYS))
    if unknown:
        known = "; ".join(f"{k}: {v}" for k, v in KEYS.items())
        raise SlurmConfigError(f"{where}: unknown key [slurm] {', '.join(unknown)} (the keys are -- {known})")
    if "partition" not in table:
        raise SlurmConfigError(f"{where}: [slurm] partition is missing: name the partition the jobs go to (sinfo lists them)")
    options: dict[str, Any] = {}
    for key in ("partition", "memory", "walltime", "data_dir", "python", "account", "log_directory"):
        if key in table:
            options[key] = _typed(table, key, str, where)
            if not options[key].strip():
                raise SlurmConfigError(f"{where}: [slurm] {key} is empty")
    for key, least in (("cores", 1), ("jobs", 1), ("gpus_per_job", 0)):
        if key in table:
            options[key] = _typed(table, key, int, where)
            if options[key] < least:
                raise SlurmConfigError(f"{where}: [slurm] {key} must be at least {least}, not {options[key]}")
    if "start_timeout" in table:
        options["start_timeout"] = float(_typed(table, "start_timeout", (int, float), where))
        if options["start_timeout"] <= 0:
            raise SlurmConfigError(f"{where}: [slurm] start_timeout must be positive")
    if "prologue" in table:
        lines = table["prologue"]
        if not isinstance(lines, list) or not all(isinstance(line, str) for line in lines):
            raise SlurmConfigError(f"{where}: [slurm] prologue must be a list of shell lines (strings)")
        options["prologue"] = tuple(lines)
    config = SlurmConfig(**options)
    try:
        config.memory_bytes  # noqa: B018 -- read to check it
    except ValueError:
        raise SlurmConfigError(f"{where}: [slurm] memory {config.memory!r} is not a size such as '8GB'") from None
    try:
        seconds = walltime_seconds(config.walltime)
    except ValueError as exc:
        raise SlurmConfigError(f"{where}: [slurm] walltime: {exc}") from None
    if seconds < notebook_timeout:
        raise SlurmConfigError(
            f"{where}: [slurm] walltime {config.walltime} ({seconds} s) is shorter than the notebook timeout "
            f"({notebook_timeout:g} s): a job would be killed before its notebook may finish; raise the walltime "
            "or lower --timeout"
        )
    return config


def load_config(path: Path, notebook_timeout: float) -> SlurmConfig:
    """Read and check a cluster config file (TOML with a ``[slurm]`` table)."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise SlurmConfigError(f"cannot read the cluster config {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise SlurmConfigError(f"{path}: not valid TOML: {exc}") from None
    return parse_config(data, notebook_timeout, where=str(path))


#: The job folder's own name below its base: ``/hwg-<job id>-XXXX`` (XXXX: the random part mktemp fills in), a
#: job id of up to ten digits.
JOB_FOLDER_NAME = len("/hwg-0123456789-XXXX")


def _job_folder_lines() -> tuple[str, ...]:
    """The job's temporary files (the worker's, its grading processes', their kernels') go to a folder of the job's
    own, removed when the job ends -- also when it is cancelled mid-notebook (bash runs the trap once the worker has
    exited on SLURM's SIGTERM), so no job leaves files on a node's scratch disk.

    Why the base may move: a node's ``TMPDIR`` is often a deep per-job folder. A job folder below it would be too
    deep for a kernel's socket, and each grading process would then make its working folder in ``/tmp``
    (:func:`grader.sandbox.platform.scratch_root`), outside the folder the trap removes. So the job folder itself
    goes to the first short temporary folder instead, by the same rule, and everything stays below it.
    """
    deepest = SOCKET_PATH_LIMIT - SOCKET_PATH_BELOW - JOB_FOLDER_NAME
    short = " ".join(SHORT_TEMPORARY_FOLDERS)
    return (
        'hwg_base="${TMPDIR:-/tmp}"',
        f'if [ "$(printf %s "$hwg_base" | wc -c)" -gt {deepest} ]; then  # bytes, as a socket\'s path limit counts',
        f'  for hwg_dir in {short}; do [ -d "$hwg_dir" ] && [ -w "$hwg_dir" ] && hwg_base="$hwg_dir" && break; done',
        "fi",
        'export TMPDIR="$(mktemp -d "$hwg_base/hwg-${SLURM_JOB_ID:-0}-XXXX")"',
        "unset hwg_base hwg_dir",
        "trap 'rm -rf \"$TMPDIR\"' EXIT TERM INT",
    )


#: Appended to the prologue: the job's own temporary folder (see :func:`_job_folder_lines`).
JOB_FOLDER = _job_folder_lines()


def cluster_options(config: SlurmConfig, job_name: str) -> dict[str, Any]:
    """Keyword arguments of ``SLURMCluster`` for ``config``: one worker of one thread per job, the job's cores for its kernel."""
    directives = [f"--gres=gpu:{config.gpus_per_job}"] if config.gpus_per_job else []
    if not config.log_directory:  # sbatch's default writes slurm-<id>.out into the folder grade was started from
        directives.append("--output=/dev/null")
    return {
        "queue": config.partition,
        "account": config.account,
        "cores": 1,  # the Dask worker's threads: one notebook at a time
        "processes": 1,
        "job_cpu": config.cores,  # --cpus-per-task: what the notebook's kernel gets
        "memory": config.memory,
        "walltime": config.walltime,
        "job_name": job_name,
        "job_extra_directives": directives,
        "job_script_prologue": [*config.prologue, *JOB_FOLDER],
        "python": config.python,
        "log_directory": config.log_directory,
    }


def job_script(config: SlurmConfig, job_name: str = "hwgrader", scheduler: str = "tcp://coordinator:8786") -> str:
    """The batch script a worker job runs (its ``#SBATCH`` header first), as dask-jobqueue writes it."""
    return str(jobqueue().slurm.SLURMJob(scheduler=scheduler, name="worker", **cluster_options(config, job_name)).job_script())


def jobqueue() -> Any:
    """``dask_jobqueue``, imported without the Ctrl-C handler its runner module installs on import.

    That handler (``sys.exit()``) would turn Ctrl-C into a silent exit 0 -- a TA would read "done" -- instead of
    KeyboardInterrupt: exit 130 and "interrupted", with every finished result kept and the jobs cancelled.
    """
    interrupt = signal.getsignal(signal.SIGINT)
    import dask_jobqueue
    import dask_jobqueue.slurm

    if threading.current_thread() is threading.main_thread() and interrupt is not None:
        signal.signal(signal.SIGINT, interrupt)
    return dask_jobqueue


def _run(command: list[str], timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def require_slurm() -> None:
    """A clear error where SLURM's commands are not on PATH (not a traceback from dask-jobqueue)."""
    missing = [c for c in ("sbatch", "squeue", "scancel", "sinfo") if shutil.which(c) is None]
    if missing:
        raise SlurmConfigError(f"--scheduler slurm: {', '.join(missing)} not found; run grade where SLURM's commands are installed")


def check_submission(config: SlurmConfig) -> None:
    """Ask SLURM whether it would accept the workers' script (``sbatch --test-only``: nothing is submitted)."""
    listed = _run(["sinfo", "--noheader", "--format=%R"])
    partitions = set(listed.stdout.split())
    if listed.returncode == 0 and config.partition not in partitions:
        raise SlurmConfigError(
            f"SLURM has no partition {config.partition!r} (sinfo lists: {', '.join(sorted(partitions)) or 'none'}); nothing was submitted"
        )
    with tempfile.TemporaryDirectory(prefix="hwgrader-sbatch-") as tmp:
        script = Path(tmp) / "worker.sh"
        script.write_text(job_script(config), encoding="utf-8")
        tried = _run(["sbatch", "--test-only", str(script)], timeout=60)
    if tried.returncode != 0:
        said = " ".join(tried.stderr.split())[:400]
        raise SlurmConfigError(f"SLURM would refuse the worker jobs (sbatch --test-only: {said}); nothing was submitted")


@dataclass(frozen=True)
class QueueState:
    """This run's jobs in ``squeue``: how many run, how many wait and why."""

    running: int = 0
    pending: int = 0
    reasons: tuple[str, ...] = ()

    def line(self, wanted: int) -> str:
        why = f" ({', '.join(self.reasons)})" if self.reasons and self.pending else ""
        return f"{self.running} of {wanted} SLURM jobs running, {self.pending} pending{why}"


def queue_state(job_name: str) -> QueueState:
    """This run's jobs in the queue, by their shared name."""
    listed = _run(["squeue", "--noheader", f"--name={job_name}", "--format=%T %r"])
    running = pending = 0
    reasons: list[str] = []
    for row in listed.stdout.splitlines():
        state, _, reason = row.strip().partition(" ")
        if state in ("RUNNING", "COMPLETING"):
            running += 1
        elif state in ("PENDING", "CONFIGURING"):
            pending += 1
            if reason and reason not in reasons and reason != "None":
                reasons.append(reason)
    return QueueState(running, pending, tuple(reasons))


def cancel_jobs(job_name: str, wait: float = 60.0) -> None:
    """Cancel every job of this run still known to SLURM (the fallback after ``SLURMCluster.close``), and wait up to
    ``wait`` seconds for them to leave the queue, so that when ``grade`` returns no job of it runs or completes."""
    try:
        _run(["scancel", f"--name={job_name}"])
        deadline = time.monotonic() + wait
        while _run(["squeue", "--noheader", f"--name={job_name}", "--format=%i"]).stdout.strip():
            if time.monotonic() > deadline:
                print(f"grade: SLURM jobs named {job_name} are still ending (squeue --name={job_name})", file=sys.stderr)
                return
            time.sleep(0.5)
    except (OSError, subprocess.TimeoutExpired) as exc:
        print(f"grade: could not cancel the SLURM jobs named {job_name}: {exc}; run `scancel --name={job_name}`", file=sys.stderr)


@dataclass
class SlurmWorkers:
    """A ``SLURMCluster`` of this run, its client, and the name its jobs share; :meth:`close` leaves no job behind."""

    config: SlurmConfig
    job_name: str = field(default_factory=lambda: f"hwgrader-{uuid.uuid4().hex[:10]}")
    cluster: Any = None
    client: Any = None

    def start(self, say: Callable[[str], None], allowed_failures: int) -> Any:
        """Submit the jobs and wait for the first worker; the client to grade with."""
        import dask
        from dask.distributed import Client

        SLURMCluster = jobqueue().SLURMCluster  # noqa: N806 -- the class
        settings = {"distributed.scheduler.allowed-failures": allowed_failures, "distributed.scheduler.worker-saturation": 1.0}
        with dask.config.set(settings):
            self.cluster = SLURMCluster(dashboard_address=None, **cluster_options(self.config, self.job_name))
        self.client = Client(self.cluster)
        self.cluster.scale(jobs=self.config.jobs)
        self.wait_for_first_worker(say)
        return self.client

    def wait_for_first_worker(self, say: Callable[[str], None], poll: float = 2.0) -> None:
        """Say how the queue stands until a worker arrives; a :class:`SlurmConfigError` after ``start_timeout``."""
        deadline = time.monotonic() + self.config.start_timeout
        last = ""
        state = QueueState()
        while not self.client.scheduler_info().get("workers"):
            state = queue_state(self.job_name)
            line = state.line(self.config.jobs)
            if line != last:
                say(line)
                last = line
            if time.monotonic() > deadline:
                why = f" (SLURM's reason: {', '.join(state.reasons)})" if state.reasons else ""
                raise SlurmConfigError(
                    f"no SLURM job started within start_timeout = {self.config.start_timeout:g} s: {state.line(self.config.jobs)}"
                    f"{why}; the jobs are cancelled and nothing was graded"
                )
            time.sleep(poll)
        say(f"{queue_state(self.job_name).line(self.config.jobs)}; grading")

    def close(self) -> None:
        """Close the client and the cluster (which cancels the jobs it knows), then cancel any job of this run left."""
        try:
            if self.client is not None:
                self.client.close()
            if self.cluster is not None:
                self.cluster.close()
        finally:
            cancel_jobs(self.job_name)
