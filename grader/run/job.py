"""A grading process's job description, and the one place its command line is written.

The coordinator (``grader/run/batch.py`` locally, ``grader/run/cluster.py`` on a Dask worker) describes the job
completely -- which notebook, where its result goes, under what name, with which budget, device, limits -- in
one JSON argument of ``python -m grader.run.worker`` (``grader/run/worker.py``, the process that grades it).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, fields, replace


@dataclass(frozen=True)
class WorkerJob:
    """Everything a grading process needs, as plain data (it crosses a process or a machine as JSON)."""

    notebook: str
    out: str
    #: The result's name in ``out`` (``<stem>.json``), chosen by the coordinator to be unique in the class.
    stem: str
    assignment: str
    budget: str
    device: str
    data_dir: str
    threads: int
    memory_bytes: int
    #: The path the coordinator knows the notebook by (a Dask worker grades a copy): shown in result and report.
    shown_as: str = ""
    jobs_per_gpu: int = 1
    cell_timeout: float | None = None
    timeout: float | None = None
    sandbox: bool = True
    max_notebook_mb: float | None = None
    #: DataLoader workers per data module under ``full`` (None: the notebook's own); see ``grader.course.d2l_budget``.
    loader_workers: int | None = None
    #: Hidden questions are not run even where ``checks_hidden.py`` is present (a self-check: ``grader/run/magic.py``).
    visible_only: bool = False
    #: Seconds after which whoever started the grading process stops it as hung (:func:`process_limit`); None: never.
    stop_after: float | None = None
    #: The process that started the grading process (set by :func:`worker_command`): the grading process dies with it.
    parent: int | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> WorkerJob:
        data = json.loads(text)
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown job fields: {sorted(unknown)}")
        return cls(**data)


#: How much longer than twice its notebook's limit a grading process may run -- two kernels to start, a cold cache's
#: reference runs to train, the report to draw -- before it is taken for hung.
PROCESS_GRACE = 1800.0


def process_limit(notebook_seconds: float) -> float:
    """The most a grading process may run, given its notebook's limit (``--timeout`` or the budget's).

    Why a second bound: the notebook's limit already bounds the student's cells and every call the checks make
    into them (``grader/kernel/deadlines.py``), so a grading process still running long after it is stuck in the
    grader's own work -- seen once: waiting in ``poll()`` on a kernel that had died. Unbounded, it would hold its
    slot (a local job, a Dask worker, a SLURM job) until the batch or the job's walltime ends.
    """
    return 2 * notebook_seconds + PROCESS_GRACE


def hung_message(seconds: float) -> str:
    """The record of a grading process stopped by :func:`process_limit`: the grader's fault, said as such."""
    return (
        f"the grading process was still running after {seconds:.0f} s, far past its notebook's limit, and was stopped "
        "(a fault of the grader, not of the notebook: grade it again, and report it if it happens again)"
    )


def worker_command(job: WorkerJob) -> list[str]:
    """The one place a grading process's command line is written (local batch and Dask worker alike).

    Called by the process that starts it, whose pid goes along: a coordinator or Dask worker stopped for good (a
    Dask worker closed on Ctrl-C, anything killed) would otherwise leave the grading process and its kernel running
    on, orphaned, for up to :func:`process_limit` -- and writing into folders already removed.
    """
    return [sys.executable, "-m", "grader.run.worker", replace(job, parent=os.getpid()).to_json()]
