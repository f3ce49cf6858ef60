"""A grading process's job description, and the one place its command line is written.

The coordinator (``grader/run/batch.py`` locally, ``grader/run/cluster.py`` on a Dask worker) describes the job
completely -- which notebook, where its result goes, under what name, with which budget, device, limits -- in
one JSON argument of ``python -m grader.run.worker`` (``grader/run/worker.py``, the process that grades it).
"""

from __future__ import annotations

import json
import sys
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
    #: DataLoader workers per data module under ``full`` (None: the notebook's own); see ``grader.course.d2l_budget``.
    loader_workers: int | None = None
    #: Hidden questions are not run even where ``checks_hidden.py`` is present (a self-check: ``grader/run/magic.py``).
    visible_only: bool = False

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
    return [sys.executable, "-m", "grader.run.worker", job.to_json()]
