"""``grade PATH...`` as a function: plan, reuse what is up to date, grade the rest, write the class-wide files.

What the run was asked and what it settled (:class:`RunRequest`, :class:`RunSettings`) are in ``grader/run/settings.py``.
A single notebook is graded in this process (:func:`grade_one`); a batch puts each notebook in a grading
process of its own (``grader/run/worker.py``), locally or on a Dask cluster.
"""

from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from grader.course.d2l_budget import DEFAULT_DATA_CACHE, Budget, resolve_budget, resolve_device
from grader.errors import ConfigError
from grader.reports.console import print_summary, summary_line
from grader.reports.html_report import html_path, notebook_path, read_executed, render_report
from grader.reports.text_safety import terminal_text
from grader.results import GradeResult, PhaseClock, cached_result, write_atomic, write_result
from grader.run import batch, gpu_admission
from grader.run.cluster import run_on_cluster
from grader.run.job import WorkerJob
from grader.run.outputs import apply_manual, fill_missing, grader_failure, read_manual, write_outputs
from grader.run.progress import BatchProgress, cell_progress, wanted
from grader.run.settings import RunRequest, RunSettings, UsageError
from grader.run.slurm import SCHEDULER, SlurmConfig, load_config
from grader.sandbox.confinement import GiB, Limits


def data_dir_of(given: str | Path | None) -> Path:
    """The Fashion-MNIST folder: the one given, else ``$GRADER_DATA_DIR``, else torchvision's download cache."""
    return Path(given or os.environ.get("GRADER_DATA_DIR") or DEFAULT_DATA_CACHE).resolve()


def collect(paths: tuple[str, ...] | list[str], out: Path | None = None) -> list[Path]:
    """Notebooks named on the command line; folders are searched, checkpoints and our own output skipped."""
    found: list[Path] = []
    skip = out.resolve() if out is not None else None
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.rglob("*.ipynb")
                    if ".ipynb_checkpoints" not in p.parts and not (skip and p.resolve().is_relative_to(skip))
                )
            )
        else:
            found.append(path)
    return found


#: A notebook larger than this is not parsed for its assignment's name (it is refused as too large when graded).
METADATA_READ_LIMIT = 64_000_000
#: The assignment of a notebook whose metadata names none, and of a run that names none.
DEFAULT_ASSIGNMENT = "hw2"


def assignment_name(path: Path, default: str) -> str:
    """The assignment named in the notebook's metadata (``metadata.grader.assignment``), else ``default``."""
    try:
        if path.stat().st_size > METADATA_READ_LIMIT:  # too large to be graded anyway (grader/source/load.py): not parsed here either
            return default
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        name = meta.get("grader", {}).get("assignment") or meta.get("assignment")
        return name if isinstance(name, str) and name else default
    except (OSError, ValueError, AttributeError):
        return default


@dataclass
class RunOutcome:
    """The results of a run, in the order of its notebooks, and the jobs they came from."""

    results: list[GradeResult] = field(default_factory=list)
    jobs: list[batch.Job] = field(default_factory=list)


def run(request: RunRequest) -> RunOutcome:
    """Grade every notebook the request names; raises :class:`UsageError` before grading for a mistake of the user's."""
    out = request.out
    paths = collect(request.paths, out)
    if not paths:
        raise UsageError("no notebooks found in " + ", ".join(request.paths))
    if request.gradescope and len(paths) != 1:  # one results.json is one submission
        raise UsageError(f"--gradescope writes the results of one notebook; {len(paths)} were given")
    grades = read_manual(request.manual)  # before grading: a bad file should not wait for the batch to say so
    settings, jobs = plan(request, paths)
    results, todo = reuse(settings, jobs)
    if todo and (request.scheduler or len(todo) > 1):  # a batch: every notebook in its own grading process, none can take others down
        try:
            results.update(grade_batch(settings, todo))
        except (ConfigError, KeyboardInterrupt):  # a mistake of the user's (or no SLURM job started): exit 2, nothing written
            raise
        except Exception as exc:  # noqa: BLE001 -- the class-wide files are still written, from what was graded
            print(f"grade: the batch stopped early: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
            fill_missing(settings, jobs, results, grader_failure(exc))
    elif todo:  # grading here imports torch: a cached rerun must not
        job = todo[0]
        shown = wanted(request.quiet) if request.progress is None else request.progress
        results[job.stem] = grade_one(settings.worker_job(job), progress=shown, summary=not request.quiet)
    if grades is not None:
        apply_manual(request.manual, grades, jobs, results)
    fill_missing(settings, jobs, results, "the grading process left no result")  # never a KeyError: every job has a result
    write_outputs(settings, jobs, results)
    return RunOutcome([results[job.stem] for job in jobs], jobs)


def plan(request: RunRequest, paths: list[Path]) -> tuple[RunSettings, list[batch.Job]]:
    """One job per notebook, and the device, budget, parallelism and limits they are graded with."""
    device = resolve_device(request.device)
    if request.device == "cuda" and not request.scheduler:  # a cluster's coordinator may have no GPU (its workers' kernels report theirs)
        gpu_admission.require_cuda()
    budget = resolve_budget(request.budget, device)
    settings = RunSettings(request, device, budget, data_dir_of(request.data_dir))
    try:
        jobs = batch.plan(
            paths,
            request.out,
            lambda p: request.assignment or assignment_name(p, DEFAULT_ASSIGNMENT),
            settings.budget,
            device,
            max_notebook_mb=request.max_notebook_mb,
            visible_only=request.visible_only,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if request.scheduler == SCHEDULER or request.cluster_config:
        settings.slurm = slurm_config(settings, jobs)
        if settings.slurm.gpus_per_job and request.device == "auto" and device != "cuda":
            # The coordinator (a login node) may have no GPU; the jobs it starts do: planned for theirs, not its own.
            return plan(replace(request, device="cuda"), paths)
        if settings.slurm.data_dir and not request.data_dir:
            settings.data_dir = Path(settings.slurm.data_dir)
    if not request.quiet:  # said once here: a batch's grading processes write their stderr to their logs
        from grader.course.data_view import warn_once

        warn_once(settings.data_dir)
    settings.parallel = request.jobs or batch.default_jobs()
    if device == "cuda" and request.jobs_per_gpu:
        settings.jobs_per_gpu = gpu_admission.admitted_per_gpu(request.jobs_per_gpu, jobs, quiet=request.quiet)
        if not request.jobs:
            settings.parallel = max(1, len(batch.visible_gpus())) * settings.jobs_per_gpu
    at_once = min(settings.parallel, len(jobs))
    settings.threads = request.threads or batch.threads_per_job(at_once)
    if request.threads or at_once > 1:  # kernels share the cores: loader workers too
        settings.loader_workers = batch.loader_workers(settings.threads, device)
    settings.memory_bytes = int(request.memory_limit_gib * GiB) if request.memory_limit_gib else Limits.default(at_once).memory_bytes or 0
    if settings.slurm:  # each notebook has a job of its own: its cores, most of its memory (the worker and grading process need some)
        settings.threads = request.threads or settings.slurm.cores
        settings.loader_workers = batch.loader_workers(settings.threads, device)
        if not request.memory_limit_gib:
            settings.memory_bytes = int(settings.slurm.memory_bytes * SLURM_KERNEL_SHARE)
    return settings, jobs


#: The part of a SLURM job's memory its notebook's kernel may use; the rest is the Dask worker's and the grading process's.
SLURM_KERNEL_SHARE = 0.8


def slurm_config(settings: RunSettings, jobs: list[batch.Job]) -> SlurmConfig:
    """The checked ``[slurm]`` table of ``--cluster-config``, before anything is submitted (a :class:`ConfigError` if wrong)."""
    from grader.run.slurm import check_submission, require_slurm

    request = settings.request
    if request.scheduler != SCHEDULER:
        raise UsageError("--cluster-config is read by --scheduler slurm only")
    if request.cluster_config is None:
        raise UsageError("--scheduler slurm needs --cluster-config FILE (a TOML file with a [slurm] table)")
    # The longest a notebook of this run may take: the job's walltime must outlast it.
    config = load_config(request.cluster_config, max(settings.notebook_limit(j) for j in jobs))
    require_slurm()
    check_submission(config)
    return config


def reuse(settings: RunSettings, jobs: list[batch.Job]) -> tuple[dict[str, GradeResult], list[batch.Job]]:
    """Results still up to date (same notebook bytes, checks, budget, grader), and the jobs left to grade."""
    results: dict[str, GradeResult] = {}
    todo = []
    for job in jobs:
        cached = None if settings.request.force else cached_result(job.target, job.key)
        if cached is None:
            todo.append(job)
            continue
        results[job.stem] = cached
        if not settings.request.quiet:
            print(terminal_text(f"{job.path}: unchanged since it was graded; reusing {job.target} (--force regrades)"))
    return results, todo


def grade_batch(settings: RunSettings, todo: list[batch.Job]) -> dict[str, GradeResult]:
    """Each notebook in a grading process of its own: local child processes, or tasks on a Dask cluster."""
    request = settings.request

    def crashed(job: batch.Job, message: str) -> GradeResult:
        return batch.crashed_result(job, settings.budget, settings.device, message)

    with BatchProgress(len(todo), wanted(request.quiet)) as progress:

        def on_done(job: batch.Job, result: GradeResult) -> None:
            progress.done(result)
            if not request.quiet:
                progress.line(summary_line(result, job.target))

        def describe(job: batch.Job, alone: bool = False) -> WorkerJob:
            return settings.worker_job(job, alone, in_batch=True)

        if request.scheduler:
            return run_on_cluster(todo, request.scheduler, describe, crashed, on_done, settings.slurm)
        # As many kernels per GPU as were admitted (grader/run/gpu_admission.py), each held to its share of the memory.
        slots = batch.gpu_slots(batch.visible_gpus(), settings.jobs_per_gpu) if settings.device == "cuda" and request.jobs_per_gpu else None
        return batch.run_in_subprocesses(todo, settings.parallel, describe, settings.budget, settings.device, on_done, slots)


def grade_one(job: WorkerJob, *, progress: bool, summary: bool) -> GradeResult:
    """One notebook graded in this process, its kernel sandboxed; its result (always) and report written.

    Used for a student's self-check and by each grading process of a batch (``grader/run/worker.py``).
    """
    from grader.notebook.pipeline import GradeOptions, grade_notebook  # imports torch: only when something is graded

    path = Path(job.notebook)
    planned = batch.plan(
        [path],
        Path(job.out),
        lambda p: job.assignment,
        job.budget,
        job.device,
        max_notebook_mb=job.max_notebook_mb,
        visible_only=job.visible_only,
    )[0]
    planned.stem, planned.target = job.stem, Path(job.out) / f"{job.stem}.json"  # the coordinator chose the result's name
    budget = Budget.of(job.budget, Path(job.data_dir), planned.assignment.budgets, job.loader_workers)
    on_cell = cell_progress(path, progress)
    options = GradeOptions(
        budget,
        job.device,
        job.cell_timeout,
        job.timeout,
        on_cell=on_cell,
        threads=job.threads,
        limits=Limits(memory_bytes=job.memory_bytes),
        sandbox=job.sandbox,
        jobs_per_gpu=job.jobs_per_gpu,
        max_notebook_mb=job.max_notebook_mb,
    )
    try:
        result = grade_notebook(
            path, planned.assignment, options, shown_path=job.shown_as or str(path), executed_to=notebook_path(planned.target)
        )
        result.cache_key = planned.key
    except Exception as exc:  # noqa: BLE001 -- whatever the kernel did, a result and a report say what happened
        result = batch.crashed_result(planned, job.budget, job.device, grader_failure(exc))
    if on_cell:
        print(file=sys.stderr)
    write_result(result, planned.target)  # first: whatever the report does, the result is there
    clock = PhaseClock(time.monotonic(), result.phase_seconds)
    try:
        report = render_report(result, read_executed(planned.target))
        clock.lap("report")
        write_result(result, planned.target)  # with the report's time; the report, written next, stays the newer file
        write_atomic(html_path(planned.target), report)
    except Exception as exc:  # noqa: BLE001 -- the result is written; the report's failure is said
        print(f"grade: could not write the report for {planned.target.name}: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
    if summary:
        print_summary(result, planned.target)
    return result
