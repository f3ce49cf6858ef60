"""What one ``grade PATH...`` run was asked and what it settled, shared by the run and its output files.

:class:`RunRequest` is what the user asked for (the command line's options, or a test's keywords);
:class:`RunSettings` is what one run settled before grading anything (device, budget, parallelism, limits);
:class:`UsageError` is a mistake of the user's, found before grading.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from grader.course.assignment import ASSIGNMENTS_DIR
from grader.course.installed import installed_assignments
from grader.errors import ConfigError
from grader.run import batch
from grader.run.job import WorkerJob, process_limit
from grader.run.slurm import SlurmConfig
from grader.sandbox.confinement import Limits


class UsageError(ConfigError):
    """A mistake on the command line or in a file it names: exit status 2, nothing graded."""


@dataclass(frozen=True)
class RunRequest:
    """What ``grade PATH...`` was asked to do (defaults: the command line's)."""

    paths: tuple[str, ...]
    out: Path = Path("reports")
    assignment: str | None = None
    budget: str = "auto"
    device: str = "auto"
    data_dir: str | None = None
    timeout: float | None = None
    cell_timeout: float | None = None
    json_output: bool = False
    force: bool = False
    jobs: int | None = None
    threads: int | None = None
    jobs_per_gpu: int | None = None
    scheduler: str | None = None
    #: ``--cluster-config``: the TOML file whose ``[slurm]`` table ``--scheduler slurm`` starts its workers from.
    cluster_config: Path | None = None
    memory_limit_gib: float | None = None
    sandbox: bool = True
    max_notebook_mb: float | None = None
    junit: Path | None = None
    manual: Path | None = None
    summary: bool = False
    gradescope: Path | None = None
    gradescope_note: str = ""
    #: Only the visible checks (``checks.py``): a student's self-check (``%grade``) is shown what a student may see,
    #: and its result is never reused for a TA's grading (its cache key differs).
    visible_only: bool = False
    #: Per-cell progress on stderr: None shows it on a terminal only; True always (``%grade`` streams it into the notebook).
    progress: bool | None = None

    @property
    def quiet(self) -> bool:
        """``--json``: the result objects on stdout and nothing else."""
        return self.json_output


@dataclass
class RunSettings:
    """What one run settled before grading anything: where, how, how many at once."""

    request: RunRequest
    device: str
    budget: str
    data_dir: Path
    parallel: int = 1
    threads: int = 1
    memory_bytes: int = 0
    #: Kernels sharing one GPU (``--jobs-per-gpu``, after admission by GPU memory); 1 off CUDA.
    jobs_per_gpu: int = 1
    #: DataLoader workers per data module under ``full`` (None: the notebook's own); see ``Budget``.
    loader_workers: int | None = None
    #: ``--scheduler slurm``: the checked ``[slurm]`` table (``grader/run/slurm.py``).
    slurm: SlurmConfig | None = None

    def worker_job(self, job: batch.Job, alone: bool = False, in_batch: bool = False) -> WorkerJob:
        """The grading process's description of ``job`` (this process, a local child or a Dask worker).

        ``alone``: the retry of a notebook whose CUDA failed under packing -- the whole GPU, the machine's
        cores and a one-job memory share, nothing else running beside it. ``in_batch``: kernels share the
        machine, so each one's data loaders get a share sized by its threads (``batch.loader_workers``; for a
        notebook graded here: as planned).
        """
        r = self.request
        threads = batch.threads_per_job(1) if alone else self.threads
        return WorkerJob(
            notebook=str(job.path),
            out=str(r.out),
            stem=job.stem,
            shown_as=str(job.path),
            assignment=assignment_reference(job.assignment.folder),
            budget=self.budget,
            device=self.device,
            data_dir=str(self.data_dir),
            threads=threads,
            memory_bytes=max(self.memory_bytes, Limits.default(1).memory_bytes or 0) if alone else self.memory_bytes,
            jobs_per_gpu=(1 if alone else self.jobs_per_gpu) if self.device == "cuda" else 1,
            cell_timeout=r.cell_timeout,
            timeout=r.timeout,
            sandbox=r.sandbox,
            max_notebook_mb=r.max_notebook_mb,
            loader_workers=batch.loader_workers(threads, self.device) if in_batch else self.loader_workers,
            visible_only=r.visible_only,
            stop_after=process_limit(self.notebook_limit(job)) if in_batch else None,
        )

    def notebook_limit(self, job: batch.Job) -> float:
        """The notebook's time limit: ``--timeout``, else its assignment's for this budget, else the kernel's default."""
        from grader.kernel.session import DEFAULT_NOTEBOOK_TIMEOUT  # nbclient's import: only when a job is described

        return float(self.request.timeout or job.assignment.budgets.get(self.budget, {}).get("timeout", DEFAULT_NOTEBOOK_TIMEOUT))


def assignment_reference(folder: Path) -> str:
    """How a grading process finds the assignment: its name when it is one of ``assignments/`` (a Dask worker's
    checkout may live at another path) or an installed kit's, else the folder itself (an assignment kept elsewhere)."""
    if folder.resolve() == (ASSIGNMENTS_DIR / folder.name).resolve():
        return folder.name
    by_name = [name for name, kit in installed_assignments().items() if kit.resolve() == folder.resolve()]
    return by_name[0] if by_name else str(folder)
