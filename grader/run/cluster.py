"""Grading on a Dask cluster: ``grade submissions/ --scheduler tcp://host:8786`` (or ``local:N``).

Each submission becomes one Dask task. On the worker it is graded exactly as
in a local batch -- by a grading process (``grader/run/worker.py``) with its own sandboxed
kernel, so a notebook can take down that process but not the worker -- and
the task returns the result and the executed notebook as *text* made by the
grader (never anything the notebook produced as an object). The
coordinating process writes results, notebooks and reports itself, as in
local mode, so caching, resuming and the class files are the same.

A worker that dies mid-task is replaced by Dask and the task rescheduled on
another, up to ``allowed_failures`` times; after that the submission is
recorded as ``crashed`` -- never lost. Workers need the same hw-grader
version installed and the data folder at the same path (a shared file
system, as on a SLURM cluster). ``--scheduler slurm`` starts the workers as SLURM jobs first
(``grader/run/slurm.py``) and cancels them when the run ends, however it ends.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from grader.reports.html_report import html_path, notebook_path
from grader.results import GradeResult, write_atomic, write_result
from grader.run.batch import RETRIED_ALONE, exit_message
from grader.run.job import WorkerJob, hung_message, worker_command
from grader.run.slurm import SCHEDULER, SlurmConfig, SlurmConfigError, SlurmWorkers
from grader.sandbox.platform import scratch_root

#: Times a task may lose its worker before the submission is recorded as crashed.
ALLOWED_FAILURES = 2


def grade_on_worker(name: str, notebook: bytes, job_json: str) -> dict[str, Any]:
    """Run on a Dask worker: grade one notebook in a grading process of its own, return its files as text.

    The worker grades a copy of the notebook in a folder of its own; the job keeps ``shown_as``, the path
    the coordinator knows the notebook by, for result and report. The report is drawn here, in parallel
    like the grading, not by the coordinator one after another.
    """
    with tempfile.TemporaryDirectory(prefix="hwgrader-worker-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(notebook)
        out = Path(tmp) / "out"
        job = replace(WorkerJob.from_json(job_json), notebook=str(path), out=str(out))
        log = Path(tmp) / "stderr.log"
        started = time.monotonic()
        with open(log, "wb") as err:
            try:  # past job.stop_after it is taken for hung: killed, its kernel with it, so the worker is free again
                process = subprocess.run(worker_command(job), stdout=subprocess.DEVNULL, stderr=err, timeout=job.stop_after)
            except subprocess.TimeoutExpired:
                return {"json": None, "error": hung_message(time.monotonic() - started)}
        result = out / f"{job.stem}.json"
        if not result.is_file():
            return {"json": None, "error": exit_message(process.returncode, log)}
        files = {"json": result, "notebook": notebook_path(result), "report": html_path(result)}
        return {kind: file.read_text(encoding="utf-8") if file.is_file() else None for kind, file in files.items()}


def say(line: str) -> None:
    """The coordinator's progress while it waits for workers (stderr: ``--json`` keeps stdout for results)."""
    print(f"grade: {line}", file=sys.stderr, flush=True)


def open_client(address: str, slurm: SlurmConfig | None = None) -> tuple[Any, Callable[[], None]]:
    """A ``dask.distributed`` client, and what closes it and whatever was started for it.

    ``tcp://...``: an existing scheduler; ``local:N``: a LocalCluster here; ``slurm``: workers started as SLURM
    jobs from ``slurm`` (the checked ``[slurm]`` table), cancelled by the closer.
    """
    try:
        import dask
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise SystemExit("grade: --scheduler needs Dask: pip install 'hw-grader[cluster]'") from None
    if address == SCHEDULER:
        if slurm is None:
            raise SlurmConfigError("--scheduler slurm needs --cluster-config FILE (a TOML file with a [slurm] table)")
        workers = SlurmWorkers(slurm)
        try:
            return workers.start(say, ALLOWED_FAILURES), workers.close
        except BaseException:  # Ctrl-C or no job started: the jobs already submitted are cancelled
            workers.close()
            raise
    if address.startswith("local:"):
        workers_count = int(address.split(":", 1)[1] or 1)
        # Saturation 1.0: a worker holds only the task it runs. Dask's default (1.1) queues a second
        # notebook on each one-thread worker, which can sit there minutes while another worker idles.
        settings = {"distributed.scheduler.allowed-failures": ALLOWED_FAILURES, "distributed.scheduler.worker-saturation": 1.0}
        # The workers' temporary files (a notebook's copy, its grading process's folder, Dask's own) go to a folder
        # of the run's, removed with the cluster: a worker stopped mid-notebook (Ctrl-C, kill) cannot clean up.
        scratch = tempfile.mkdtemp(prefix="hwgrader-local-", dir=scratch_root())
        try:
            with dask.config.set(settings):
                cluster = LocalCluster(
                    n_workers=workers_count,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                    local_directory=scratch,
                    env={"TMPDIR": scratch},
                )
            client = Client(cluster)
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
    else:
        scratch = None
        client = Client(address)

    def close() -> None:
        cluster = getattr(client, "cluster", None)
        client.close()
        if cluster is not None:
            cluster.close()
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)

    return client, close


def run_on_cluster(
    jobs: Sequence[Any],
    address: str,
    describe: Callable[..., WorkerJob],
    crashed: Callable[[Any, str], GradeResult],
    on_done: Callable[[Any, GradeResult], None] | None = None,
    slurm: SlurmConfig | None = None,
) -> dict[str, GradeResult]:
    """Grade ``jobs`` (see ``batch.Job``) on the cluster at ``address``; write and return results by stem.

    A notebook whose result is an ``environment_error`` (CUDA unusable or lost on its worker) is
    submitted once more with ``describe(job, alone=True)`` -- the whole GPU of whichever worker
    takes it -- before its result is final, as in a local batch.
    """
    from dask.distributed import as_completed

    client, close = open_client(address, slurm)
    results: dict[str, GradeResult] = {}
    retried: set[str] = set()

    def submit(job: Any, alone: bool = False):
        described = describe(job, alone=True) if alone else describe(job)
        return client.submit(grade_on_worker, job.path.name, job.path.read_bytes(), described.to_json(), pure=False)

    try:
        futures = {submit(job): job for job in jobs}
        pending = as_completed(futures)
        for future in pending:
            job = futures[future]
            try:
                payload = future.result()
            except Exception as exc:  # KilledWorker: the task took down every worker it was given
                payload = {}
                result = crashed(job, f"the Dask worker died while grading it ({type(exc).__name__}: {exc})"[:500])
            else:
                if payload["json"] is None:
                    result = crashed(job, payload["error"])
                else:
                    result = GradeResult.from_dict(json.loads(payload["json"]))
                    result.submission, result.cache_key = str(job.path), job.key
            if result.environment_problem and job.stem not in retried:
                retried.add(job.stem)
                retry = submit(job, alone=True)
                futures[retry] = job
                pending.add(retry)
                continue
            if result.environment_problem:
                result.execution.message += RETRIED_ALONE
            write_result(result, job.target)
            # After the result, so that the report is the newest file (see html_report.up_to_date).
            for text, path in ((payload.get("notebook"), notebook_path(job.target)), (payload.get("report"), html_path(job.target))):
                if text:
                    write_atomic(path, text)
            results[job.stem] = result
            if on_done:
                on_done(job, result)
    finally:
        close()
    return results
