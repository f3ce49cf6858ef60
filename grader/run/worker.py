"""A batch's grading process: grade one notebook described by a :class:`WorkerJob`, write its result and report.

Every notebook of a batch is graded in a process of its own (``grader/run/batch.py`` locally,
``grader/run/cluster.py`` on a Dask worker), so that no notebook can take another's grade down. The
coordinator describes the job completely -- which notebook, where its result goes, under what name, with
which budget, device, limits -- in one JSON argument, built by :func:`grader.run.job.worker_command` alone::

    python -m grader.run.worker '{"notebook": "...", "out": "...", "stem": "...", ...}'

The worker prints nothing on stdout; its stderr goes to the coordinator's log of it. Exit status 0 once
a result is written (whatever the verdict), 2 for a job description it cannot use; anything else (an
assignment it cannot load, a parent gone before it started) leaves no result, and the coordinator records the notebook as ``crashed`` with
the tail of this process's stderr. It dies with the process that started it (``PR_SET_PDEATHSIG``, as the
sandbox's launcher does): what started it is the only one that can still use its result.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from grader.run.grading_run import grade_one
from grader.run.job import WorkerJob
from grader.sandbox.parent import die_with_parent


def grade_job(job: WorkerJob) -> None:
    """Grade the notebook, write its result (always) and its report; never raises for what the notebook did."""
    grade_one(job, progress=False, summary=False)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if len(argv) != 1:
        print("usage: python -m grader.run.worker JOB_JSON (started by a batch; see grader/run/worker.py)", file=sys.stderr)
        return 2
    try:
        job = WorkerJob.from_json(argv[0])
    except (ValueError, TypeError) as exc:
        print(f"grader.run.worker: not a job description: {exc}", file=sys.stderr)
        return 2
    if job.parent is not None and not die_with_parent(parent=job.parent):
        print("grader.run.worker: the process that started it has already ended; nothing graded", file=sys.stderr)
        return 1
    from grader.course.seeds import batch_seed

    batch_seed()  # inherited from the coordinator's environment: the whole batch shares the reference's training
    grade_job(job)
    return 0


if __name__ == "__main__":
    sys.exit(main())
