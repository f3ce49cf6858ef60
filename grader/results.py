"""The result of grading one submission (schema version 1), and writing it safely.

Everything the grader decides ends up in a :class:`GradeResult`; reports,
gradebooks and the ``--json`` output are all rendered from its dictionary
form, so this module is the one place the schema is spelled out.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

SCHEMA_VERSION = 1

#: The cell tag of the template's self-check cell (``grader/course/self_check.py``): the student runs it, and the
#: grader skips it when it runs a notebook (``grader/source/neutralize.py``). Shared here by both layers.
SELF_CHECK_TAG = "self-check"

#: The phases of :attr:`GradeResult.phase_seconds`, in order: reading the notebook (``load``); the data view,
#: sandbox and kernel up to its answer about its device (``kernel_start``); the notebook's cells, the GPU peak and
#: the executed copy (``cells``); the questions' checks (``checks``); the kernel's and sandbox's end and the work
#: folder's removal (``close``); rendering the HTML report (``report``, outside ``grading_seconds``).
PHASES = ("load", "kernel_start", "cells", "checks", "close", "report")

#: ``environment_error``: the grader's environment, not the notebook, decided the outcome (CUDA was
#: asked for and the kernel could not use it, or lost it mid-run); nothing is charged to the student.
ExecutionStatus = Literal["ok", "error", "timeout", "crashed", "invalid", "environment_error"]
CellStatus = Literal["ok", "error", "timeout", "skipped", "neutralized"]


class QuestionStatus(StrEnum):
    """How a question ended; the one place its words for people are written (:attr:`label`, :attr:`symbol`,
    :attr:`style`). A ``StrEnum``: it is its value in JSON, CSV and comparisons (``status == "pass"``)."""

    PASS = "pass"
    FAIL = "fail"
    #: The student's code raised, or the kernel crashed, while the check ran it.
    ERROR = "error"
    #: A TA decides: a written exercise, or evidence with no rule to decide by.
    MANUAL = "manual"
    #: What the question grades is not in the notebook.
    MISSING = "missing"
    #: Not graded because of the grader's environment (see ``environment_error``); not counted in the
    #: score or its maximum until the notebook is graded again where the device works.
    ENVIRONMENT = "environment"

    @property
    def label(self) -> str:
        """The word a report shows."""
        return _DISPLAY[self][0]

    @property
    def symbol(self) -> str:
        """One character for the class summary's grid."""
        return _DISPLAY[self][1]

    @property
    def style(self) -> str:
        """The terminal colour (rich style)."""
        return _DISPLAY[self][2]


_DISPLAY = {
    QuestionStatus.PASS: ("pass", "✓", "green"),
    QuestionStatus.FAIL: ("fail", "✗", "red"),
    QuestionStatus.ERROR: ("error", "!", "magenta"),
    QuestionStatus.MANUAL: ("TA grades", "✎", "cyan"),
    QuestionStatus.MISSING: ("missing", "?", "yellow"),
    QuestionStatus.ENVIRONMENT: ("not graded: grader's environment", "⚠", "bold red"),
}


def status_of(value: str) -> QuestionStatus | None:
    """The status a result file spells ``value``, or None for a word the schema does not know."""
    try:
        return QuestionStatus(value)
    except ValueError:
        return None


@dataclass
class CellRecord:
    """How one code cell ran: its index in the notebook, status, time and error line."""

    index: int
    status: CellStatus
    seconds: float = 0.0
    error: str = ""
    #: What of the cell's output the grader did not keep (the streaming caps of grader/kernel/execute.py), "" when all was kept.
    output_cut: str = ""


@dataclass
class NeutralizedLine:
    """A line the grader did not run (``!pip ...``, ``drive.mount(...)``), kept for the report."""

    cell: int
    line: int
    source: str
    reason: str


@dataclass
class ExecutionRecord:
    status: ExecutionStatus
    message: str = ""
    seconds: float = 0.0
    cells: list[CellRecord] = field(default_factory=list)
    neutralized: list[NeutralizedLine] = field(default_factory=list)
    #: The sandbox and limits the kernel ran under (``grader.sandbox.confinement``), in words.
    isolation: str = ""
    #: The device the kernel really had, asked by the grader before any of the notebook's cells ran:
    #: ``{"cuda": bool, "name": str, "count": int, "total_memory": bytes, "torch": str}`` (and
    #: ``"error"`` when CUDA failed to start). Empty for a notebook that never reached a kernel.
    observed_device: dict[str, Any] = field(default_factory=dict)
    #: The kernel's peak GPU memory (torch's ``max_memory_reserved``, bytes) after the last cell; 0 on a CPU.
    #: It comes from the kernel after the student's code ran, so it sizes GPU packing and decides no verdict.
    gpu_memory_peak: int = 0
    #: The seed of the kernel's ``random``, NumPy and torch generators (and its ``PYTHONHASHSEED``), set before the
    #: first cell: derived from the run's seed (``GRADER_RUN_SEED``) and the file's hash (``grader.course.seeds.kernel_seed``),
    #: so a rerun with that run seed reproduces the run. None: no kernel ran (or a result from before it was recorded).
    seed: int | None = None


@dataclass
class QuestionResult:
    id: str
    title: str
    status: QuestionStatus
    points: float
    max_points: float
    message: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    #: The homework's section (``7.2``...), for grouping in reports.
    section: str = ""
    #: A TA's points and comment for a manual question (``grade --manual grades.csv``); None until graded.
    ta_points: float | None = None
    ta_comment: str = ""

    def __post_init__(self) -> None:
        self.status = QuestionStatus(self.status)  # a result file's word, or a check's, is one of the schema's

    @property
    def counted(self) -> bool:
        """Whether the question is in the total yet: auto questions that were graded, manual ones once a TA graded them."""
        if self.status == "environment":
            return False
        return self.status != "manual" or self.ta_points is not None

    @property
    def pending_ta(self) -> bool:
        """A manual question (a written exercise, or an accuracy no rule decides) still waiting for a TA's points."""
        return self.status == "manual" and self.ta_points is None


@dataclass
class GradeResult:
    submission: str
    sha256: str
    assignment: str
    budget: str
    device: str
    grader_version: str
    execution: ExecutionRecord
    questions: list[QuestionResult] = field(default_factory=list)
    #: Hidden questions skipped because their checks are not present (a student's self-check).
    hidden_questions_not_run: int = 0
    #: Hash of everything the verdict depends on; a rerun reuses the result while it matches.
    cache_key: str = ""
    #: Wall-clock seconds the whole grading took (execution and checks).
    grading_seconds: float = 0.0
    #: When it was graded (ISO 8601, UTC).
    graded_at: str = ""
    #: Section titles by number (``{"7.2": "Convolutions for Images"}``), for grouping in reports.
    sections: dict[str, str] = field(default_factory=dict)
    #: Where the time went, in seconds (:data:`PHASES`; a phase the grading never reached is absent). All but
    #: ``report`` lie within :attr:`grading_seconds`; ``report`` is the HTML report's rendering, after it.
    #: Decides nothing: it says where a packed batch waits. Older result files have none.
    phase_seconds: dict[str, float] = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION

    @property
    def score(self) -> float:
        """Points earned on the questions counted so far (manual questions count once a TA scores them)."""
        return sum(q.points for q in self.questions if q.counted)

    @property
    def max_score(self) -> float:
        return sum(q.max_points for q in self.questions if q.counted)

    @property
    def manual_points_pending(self) -> float:
        return sum(q.max_points for q in self.questions if q.pending_ta)

    @property
    def environment_problem(self) -> bool:
        """The grader's environment, not the notebook, decided this result (its device, or a limit of the
        grader's own -- a question the grader's work left no time to check): regrade it."""
        return self.execution.status == "environment_error" or any(q.status == QuestionStatus.ENVIRONMENT for q in self.questions)

    @property
    def environment_reason(self) -> str:
        """Why :attr:`environment_problem`, in one sentence ('' when there is none)."""
        if self.execution.status == "environment_error":
            return self.execution.message
        return next((f"{q.id}: {q.message}" for q in self.questions if q.status == QuestionStatus.ENVIRONMENT), "")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        ordered = {"schema_version": data.pop("schema_version")}
        ordered.update(data)
        ordered.update(score=self.score, max_score=self.max_score, manual_points_pending=self.manual_points_pending)
        return ordered

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GradeResult:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise ValueError(f"unsupported result schema version {data.get('schema_version')!r}")
        execution = dict(data["execution"])
        execution["cells"] = [CellRecord(**c) for c in execution.get("cells", [])]
        execution["neutralized"] = [NeutralizedLine(**n) for n in execution.get("neutralized", [])]
        return cls(
            submission=data["submission"],
            sha256=data["sha256"],
            assignment=data["assignment"],
            budget=data["budget"],
            device=data["device"],
            grader_version=data["grader_version"],
            execution=ExecutionRecord(**execution),
            questions=[QuestionResult(**q) for q in data.get("questions", [])],
            hidden_questions_not_run=int(data.get("hidden_questions_not_run", 0)),
            cache_key=str(data.get("cache_key", "")),
            grading_seconds=float(data.get("grading_seconds", 0.0)),
            graded_at=str(data.get("graded_at", "")),
            sections=dict(data.get("sections", {})),
            phase_seconds={str(k): float(v) for k, v in dict(data.get("phase_seconds") or {}).items()},
        )


class PhaseClock:
    """Seconds per phase of one grading (``GradeResult.phase_seconds``, see ``grader.results.PHASES``).

    Each :meth:`lap` charges the time since the previous one (or since ``started``) to its phase, rounded
    down to the millisecond, so that the phases never add up to more than the time they lie within.
    """

    def __init__(self, started: float, phases: dict[str, float] | None = None, now: Callable[[], float] = time.monotonic) -> None:
        self.phases: dict[str, float] = {} if phases is None else phases
        self._now, self._last = now, started

    def lap(self, phase: str) -> None:
        now = self._now()
        self.phases[phase] = math.floor((self.phases.get(phase, 0.0) + max(0.0, now - self._last)) * 1000) / 1000
        self._last = now


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never half.

    The bytes go to a temporary file in the same folder, are flushed to
    disk, and replace ``path`` with one ``os.replace`` (atomic on POSIX and
    Windows). A crash at any point leaves at most a stray ``.tmp`` file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a report is as readable as any file the user writes
        # errors="replace": a lone surrogate in text a kernel sent (an exception message) becomes "?"
        # instead of making the result unwritable.
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_result(result: GradeResult, path: Path) -> None:
    write_atomic(path, json.dumps(result.to_dict(), indent=2, ensure_ascii=False) + "\n")


def unique_stems(paths: Iterable[Path]) -> list[str]:
    """One output stem per submission, unique within a batch.

    ``a/hw2.ipynb`` and ``b/hw2.ipynb`` both want ``hw2``; the second becomes
    ``hw2-2`` (then ``-3``...), in the order given, so reruns agree.
    """
    seen: set[str] = set()
    stems = []
    for path in paths:
        stem = Path(path).stem or "notebook"
        candidate, n = stem, 1
        while candidate.lower() in seen:
            n += 1
            candidate = f"{stem}-{n}"
        seen.add(candidate.lower())
        stems.append(candidate)
    return stems


def sha256_of(path: Path) -> str:
    """The file's hash, read in pieces: a submission of any size costs a megabyte of memory here."""
    import hashlib

    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
    except OSError:
        return ""
    return digest.hexdigest()


def cache_key(sha256: str, assignment_fingerprint: str, budget: str, device: str, grader_version: str) -> str:
    """What a verdict depends on: the notebook's bytes, the checks and config, the budget, the grader."""
    import hashlib

    parts = [f"schema={SCHEMA_VERSION}", sha256, assignment_fingerprint, budget, device, grader_version]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def cached_result(path: Path, key: str) -> GradeResult | None:
    """The result at ``path`` if it was produced under ``key`` (and is readable), else ``None``."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        result = GradeResult.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return result if result.cache_key == key else None
