"""A batch's grading process: grade one notebook described by a :class:`WorkerJob`, write its result and report.

Every notebook of a batch is graded in a process of its own (``grader/batch.py`` locally,
``grader/cluster.py`` on a Dask worker), so that no notebook can take another's grade down. The
coordinator describes the job completely -- which notebook, where its result goes, under what name, with
which budget, device, limits -- in one JSON argument, built by :func:`worker_command` alone::

    python -m grader.worker '{"notebook": "...", "out": "...", "stem": "...", ...}'

The worker prints nothing on stdout; its stderr goes to the coordinator's log of it. Exit status 0 once
a result is written (whatever the verdict), 2 for a job description it cannot use; anything else (an
assignment it cannot load) leaves no result, and the coordinator records the notebook as ``crashed`` with
the tail of this process's stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields


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
    #: DataLoader workers per data module under ``full`` (None: the notebook's own); see ``grader.d2l_budget``.
    loader_workers: int | None = None

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


def worker_command(job: WorkerJob) -> list[str]:
    """The one place a grading process's command line is written (local batch and Dask worker alike)."""
    return [sys.executable, "-m", "grader.worker", job.to_json()]


def grade_job(job: WorkerJob) -> None:
    """Grade the notebook, write its result (always) and its report; never raises for what the notebook did."""
    from grader.grading_run import grade_one

    grade_one(job, progress=False, summary=False)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m grader.worker JOB_JSON (started by a batch; see grader/worker.py)", file=sys.stderr)
        return 2
    try:
        job = WorkerJob.from_json(argv[0])
    except (ValueError, TypeError) as exc:
        print(f"grader.worker: not a job description: {exc}", file=sys.stderr)
        return 2
    from grader.seeds import batch_seed

    batch_seed()  # inherited from the coordinator's environment: the whole batch shares the reference's training
    grade_job(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
