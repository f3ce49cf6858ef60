"""Grading many notebooks: planning, reuse of up-to-date results, and parallel jobs.

In a batch each notebook is graded by its own grading process (``grader/run/worker.py``) (which runs
its own kernel), at most ``--jobs N`` at a time, each limited to its share
of the CPU threads so the jobs do not fight over cores. A separate process
per notebook means that a notebook which takes its grader down with it --
killing its parent, exhausting memory, a hard crash -- costs only its own
result: the coordinating process records it as ``crashed`` and the batch
goes on. A single notebook (a student's self-check) is graded in-process.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from grader import __version__
from grader.course.assignment import Assignment, load_assignment
from grader.results import (
    ExecutionRecord,
    GradeResult,
    QuestionResult,
    QuestionStatus,
    cache_key,
    cached_result,
    sha256_of,
    unique_stems,
    write_result,
)
from grader.run.job import WorkerJob, hung_message, worker_command
from grader.sandbox.cleanup import read_tail, remove_tree
from grader.sandbox.confinement import GiB, machine_memory


@dataclass
class Job:
    path: Path
    stem: str
    assignment: Assignment
    key: str
    target: Path


def plan(
    paths: Sequence[Path],
    out: Path,
    assignment_of: Callable[[Path], str],
    budget: str,
    device: str,
    max_notebook_mb: float | None = None,
    visible_only: bool = False,
) -> list[Job]:
    """One job per notebook, with its unique result name and cache key; raises ValueError for an unknown assignment.

    ``max_notebook_mb`` (``--max-notebook-mb``) is part of the key when given: a notebook refused as too
    large is graded again under a larger limit, not reused. ``visible_only`` (a student's self-check) counts the
    hidden questions as not run and keys the result apart: a self-check's result and a TA's never stand for each other.
    """
    loaded: dict[str, Assignment] = {}
    jobs = []
    for path, stem in zip(paths, unique_stems(paths), strict=True):
        name = assignment_of(path)
        if name not in loaded:
            loaded[name] = load_assignment(name)
            loaded[name].visible_only = visible_only
        assignment = loaded[name]
        fingerprint = assignment.fingerprint + (f";max_notebook_mb={max_notebook_mb:g}" if max_notebook_mb else "")
        key = cache_key(sha256_of(path), fingerprint, budget, device, __version__) + (":visible-only" if visible_only else "")
        jobs.append(Job(path, stem, assignment, key, out / f"{stem}.json"))
    return jobs


def default_jobs() -> int:
    """What the machine can hold: one job per core, and about 6 GiB of memory per job (VGG/ResNet training)."""
    return max(1, min(os.cpu_count() or 1, machine_memory() // (6 * GiB)))


def threads_per_job(jobs: int) -> int:
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


def loader_workers(threads: int, device: str) -> int:
    """DataLoader workers per data module for a kernel given ``threads`` of cores shared with other kernels.

    On the CPU the kernel's own process trains with its torch threads: its loaders get those threads less
    one. Under CUDA that process mostly waits -- on the GPU and on its loaders -- while the loaders decode,
    resize and convert every image: they get all of its threads. With one worker per packed kernel, 8 hw2
    kernels on a 16-core H200 left half the cores idle (load 7.9, the GPU 63 % busy), each VGG training
    cell taking 2.9 times as long as alone (issue 28). The data and its order are the same with any number of
    workers (the sampler runs in the kernel's process), so no verdict depends on it.
    """
    return max(1, threads) if device == "cuda" else max(0, threads - 1)


def crashed_result(job: Job, budget: str, device: str, message: str) -> GradeResult:
    """The record of a notebook whose grading process died: nothing is lost, and it says why."""
    questions = [
        QuestionResult(
            q.id,
            q.title,
            QuestionStatus.ERROR if q.kind == "auto" else QuestionStatus.MANUAL,
            0.0,
            q.points,
            f"not graded: {message}" if q.kind == "auto" else "",
            section=q.section,
        )
        for q in job.assignment.questions
        if job.assignment.runnable(q)
    ]
    return GradeResult(
        str(job.path),
        sha256_of(job.path),
        job.assignment.name,
        budget,
        device,
        __version__,
        ExecutionRecord("crashed", message),
        questions,
        cache_key="",
    )


def visible_gpus() -> list[str]:
    """GPU indices a job may be given: ``$CUDA_VISIBLE_DEVICES`` if set, else the driver's devices (no torch import)."""
    configured = os.environ.get("CUDA_VISIBLE_DEVICES")
    if configured is not None:
        return [g.strip() for g in configured.split(",") if g.strip() and g.strip() != "-1"]
    return sorted((p.name[len("nvidia") :] for p in Path("/dev").glob("nvidia[0-9]*")), key=int)


def gpu_slots(gpus: Sequence[str], per_gpu: int) -> list[dict[str, str]]:
    """One environment overlay per parallel slot: ``per_gpu`` kernels on each GPU, spread round-robin."""
    return [{"CUDA_VISIBLE_DEVICES": gpu} for _ in range(max(1, per_gpu)) for gpu in gpus]


#: Appended to an ``environment_error`` that a second, solitary grading did not cure (local batch and Dask alike).
RETRIED_ALONE = "; graded again alone, with the same outcome"


def exit_message(returncode: int, log: Path) -> str:
    """Why a grading process left no result: its exit status and the last lines it wrote to stderr (the log's tail only)."""
    tail = " ".join(read_tail(log, 16 << 10).strip().splitlines()[-3:])[-400:]
    return f"the grading process exited with status {returncode}" + (f": {tail}" if tail else "")


def run_in_subprocesses(
    jobs: Sequence[Job],
    parallel: int,
    describe: Callable[..., WorkerJob],
    budget: str,
    device: str,
    on_done: Callable[[Job, GradeResult], None] | None = None,
    slots: Sequence[dict[str, str]] | None = None,
) -> dict[str, GradeResult]:
    """Grade ``jobs`` with at most ``parallel`` grading processes (``grader/run/worker.py``); results by stem.

    With ``slots`` (see :func:`gpu_slots`) there is one child per slot, and
    each runs with its slot's environment (its GPU). A notebook whose result
    is an ``environment_error`` (CUDA unusable or lost, typically under
    packing) is graded once more *alone* -- ``describe(job, alone=True)``,
    after every other child has finished, nothing running beside it -- before
    its result is final.
    """
    queue = list(jobs)
    free = [dict(s) for s in slots] if slots else [{} for _ in range(max(1, parallel))]
    running: dict[subprocess.Popen, tuple[Job, dict[str, str]]] = {}
    started: dict[subprocess.Popen, float] = {}
    limits: dict[subprocess.Popen, float] = {}  # a child still running this long is taken for hung (job.process_limit)
    results: dict[str, GradeResult] = {}
    retries: list[Job] = []
    retried: set[str] = set()
    # The children's temporary folders live under one folder of ours, removed at the end even when a
    # child was killed before it could clean up after itself.
    scratch = tempfile.mkdtemp(prefix="hwgrader-batch-")
    env = {**os.environ, "TMPDIR": scratch}

    def start(job: Job, slot: dict[str, str], alone: bool) -> None:
        described = describe(job, alone=True) if alone else describe(job)
        command = worker_command(described)
        log = Path(scratch) / f"{job.stem}.stderr"  # a file, not a pipe: a chatty child can never block on it
        try:
            with open(log, "wb") as err:
                process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, env={**env, **slot})
        except OSError as exc:  # no process (fork refused, no disk for the log): recorded, and the batch goes on
            free.append(slot)
            finish(job, crashed_result(job, budget, device, f"the grading process could not be started: {exc}"))
            return
        running[process] = (job, slot)
        started[process] = time.monotonic()
        limits[process] = described.stop_after or math.inf

    def hung(process: subprocess.Popen) -> bool:
        """Still running long past its notebook's limit: stuck in the grader's own work."""
        return time.monotonic() - started[process] > limits[process]

    def finish(job: Job, result: GradeResult) -> None:
        results[job.stem] = result
        if on_done:
            on_done(job, result)

    def collect(job: Job, returncode: int, why: str = "") -> None:
        """A child's result (a hung one may have written it before its report), or a ``crashed`` one saying how it
        ended (``why``, else its exit); what cannot be written is still kept in memory."""
        try:
            result = cached_result(job.target, job.key)
        except Exception:  # noqa: BLE001 -- e.g. a result too large to read back: the child's, not the batch's, problem
            result = None
        if result is None:
            result = crashed_result(job, budget, device, why or exit_message(returncode, Path(scratch) / f"{job.stem}.stderr"))
            _write_or_warn(result, job.target)
        if result.environment_problem and job.stem not in retried:
            retries.append(job)
            return
        if result.environment_problem:
            result.execution.message += RETRIED_ALONE
            _write_or_warn(result, job.target)
        finish(job, result)

    try:
        while queue or running or retries:
            while queue and free:
                start(queue.pop(0), free.pop(0), alone=False)
            if retries and not queue and not running:  # alone: nothing else on the machine or its GPUs
                job = retries.pop(0)
                retried.add(job.stem)
                start(job, free.pop(0), alone=True)
            time.sleep(0.1)
            for process in [p for p in running if p.poll() is not None or hung(p)]:
                job, slot = running.pop(process)
                free.append(slot)
                why = ""
                if process.poll() is None:  # hung: stopped, its kernel with it (the sandbox dies with its parent)
                    process.kill()
                    process.wait()
                    why = hung_message(time.monotonic() - started[process])
                del started[process], limits[process]
                collect(job, process.returncode, why)
    finally:
        for process in running:  # Ctrl-C: children get it too; make sure none outlives us
            process.terminate()
        for process in running:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        remove_tree(scratch)  # iterative and bounded: a child's kernel may have left any tree in it
    return results


def _write_or_warn(result: GradeResult, target: Path) -> None:
    """Write a result the coordinator made; a failure (a full disk) is said, and the batch keeps it in memory."""
    try:
        write_result(result, target)
    except OSError as exc:
        print(f"grade: could not write {target}: {exc}", file=sys.stderr)
