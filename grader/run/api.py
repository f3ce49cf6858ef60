"""The grader as functions: what each ``grade`` subcommand does, callable from Python with keywords only.

``grader/run/cli.py`` only turns arguments into calls of these and exceptions into exit statuses; tests and
scripts call them directly. Each raises :class:`~grader.errors.ConfigError` (exit status 2 on the command
line) for a mistake in what it was given, before doing any work it can avoid.
"""

from __future__ import annotations

import importlib
import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.course.assignment import template_path_for
from grader.errors import ConfigError
from grader.run.grading_run import RunOutcome, data_dir_of
from grader.run.grading_run import run as _run
from grader.run.settings import RunRequest


def grade_paths(paths: Sequence[str | Path], **options: Any) -> RunOutcome:
    """Grade notebooks (files or folders), as ``grade PATH...`` does; ``options`` are :class:`RunRequest`'s fields
    (``out=``, ``budget=``, ``jobs=``, ``json_output=``...). Writes results, reports and the class-wide files."""
    if "out" in options:
        options["out"] = Path(options["out"])
    return _run(RunRequest(paths=tuple(str(p) for p in paths), **options))


@dataclass(frozen=True)
class Fact:
    """One thing ``check-assignment`` proves (or finds false)."""

    ok: bool
    text: str


def make_template(*, solution: Path, out: Path | None = None) -> Path:
    """Write the student template generated from a solution notebook; returns its path."""
    from grader.course.template import SolutionMarkupError, write_template

    template = Path(out) if out else template_path_for(Path(solution))
    try:
        write_template(Path(solution), template)
    except (OSError, SolutionMarkupError) as exc:
        raise ConfigError(f"{solution}: {exc}") from None
    return template


def check_assignment(
    *, name: str, data_dir: str | Path | None = None, device: str = "auto", on_fact: Callable[[Fact], None] | None = None
) -> list[Fact]:
    """The course's CI for one assignment: template current, solution full marks, template zero, claims hold."""
    from grader.course.assignment import load_assignment
    from grader.course.d2l_budget import Budget, resolve_device
    from grader.course.template import template_differences
    from grader.notebook.pipeline import GradeOptions, grade_notebook
    from grader.results import QuestionStatus

    assignment = load_assignment(name)
    solution = assignment.folder / "solution.ipynb"
    template = template_path_for(solution)
    facts: list[Fact] = []

    def fact(ok: bool, text: str) -> None:
        facts.append(Fact(ok, text))
        if on_fact:
            on_fact(facts[-1])

    problems = template_differences(solution, template)
    fact(not problems, f"{template} is generated from {solution}" + ("" if not problems else ": " + "; ".join(problems)))
    options = GradeOptions(Budget.of("quick", data_dir_of(data_dir), assignment.budgets), resolve_device(device))
    graded = grade_notebook(solution, assignment, options)
    wrong = [f"{q.id} ({q.status}: {q.message})" for q in graded.questions if q.status not in (QuestionStatus.PASS, QuestionStatus.MANUAL)]
    fact(
        not wrong and graded.score == graded.max_score,
        f"the solution earns {graded.score:g}/{graded.max_score:g}" + ("" if not wrong else "; not passing: " + ", ".join(wrong)),
    )
    graded = grade_notebook(template, assignment, options)
    passing = [q.id for q in graded.questions if q.status in (QuestionStatus.PASS, QuestionStatus.FAIL)]
    fact(
        graded.score == 0 and not passing,
        f"the template earns {graded.score:g}, every question missing or error"
        + ("" if not passing else "; graded as pass/fail: " + ", ".join(passing)),
    )
    if assignment.claims_module:
        for result in check_claims(module=assignment.claims_module):
            fact(result.holds, f"claim {result.name}: {result.statement} [{result.method}]")
    return facts


def check_claims(
    *, module: str = "reference.claims", only: Iterable[str] = (), on_result: Callable[[Any, float], None] | None = None
) -> list[Any]:
    """Run the exercise claims of ``module`` (its ``CLAIMS``), or only those named; unknown names are a ConfigError.

    ``on_result(result, seconds)`` is told of each claim as soon as it is checked (some take seconds)."""
    try:
        claims = importlib.import_module(module).CLAIMS
    except ModuleNotFoundError as exc:
        if exc.name is None or not module.startswith(exc.name):
            raise  # the claims module is there, but something it imports is not
        raise ConfigError(
            f"{module} is not installed here: a student kit leaves the exercise claims out (they state the answers); "
            "run this in the course's checkout"
        ) from None
    wanted = set(only)
    unknown = wanted - {c.__name__ for c in claims}
    if unknown:
        raise ConfigError(f"unknown claim(s): {', '.join(sorted(unknown))}")
    results = []
    for claim in claims:
        if wanted and claim.__name__ not in wanted:
            continue
        start = time.perf_counter()
        results.append(claim())
        if on_result:
            on_result(results[-1], time.perf_counter() - start)
    return results


def calibrate(*, name: str, results: Sequence[str | Path], margin: float = 0.1, write: bool = False) -> tuple[list[Any], Calibration]:
    """Threshold proposals from full runs of the solution, and what was read and written (``write``: into the config)."""
    from grader.course.assignment import load_assignment
    from grader.course.calibrate import propose
    from grader.course.calibrate import write as write_config
    from grader.course.measured_runs import gpu_memory_peak_gib
    from grader.results import GradeResult

    try:
        assignment = load_assignment(name)
        read = [GradeResult.from_dict(json.loads(Path(path).read_text(encoding="utf-8"))) for path in results]
        proposals = propose(read, assignment, margin)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # json's errors are ValueErrors
        raise ConfigError(str(exc)) from None
    peak = gpu_memory_peak_gib(read)
    written, write_error = None, ""
    if write:
        try:
            written = write_config(assignment, proposals, peak)
        except (OSError, ValueError) as exc:  # the proposals are still shown: a TA may copy them by hand
            write_error = f"nothing written: {exc}"
    return proposals, Calibration(read, peak, written, write_error)


@dataclass(frozen=True)
class Calibration:
    """What a calibration read and wrote, besides its proposals."""

    results: list[Any]
    gpu_memory_peak_gib: float | None
    written: Path | None
    #: Why ``write`` wrote nothing ("" when it wrote, or was not asked to).
    write_error: str = ""


def build_gradescope(
    *,
    assignment: str,
    output: Path,
    data_dir: Path | None = None,
    cuda: bool = False,
    budget: str | None = None,
    timeout: float | None = None,
) -> Any:
    """Gradescope's autograder bundle for ``assignment`` (``timeout`` 0: none; None: the default)."""
    from grader.integrations.gradescope import DEFAULT_TIMEOUT, BundleError, build_bundle

    try:
        return build_bundle(
            assignment,
            Path(output),
            Path(data_dir) if data_dir else None,
            cuda=cuda,
            budget=budget,
            timeout=DEFAULT_TIMEOUT if timeout is None else (timeout or None),
        )
    except (BundleError, OSError) as exc:
        raise ConfigError(str(exc)) from None


def build_kit(*, assignment: str, output: Path) -> Any:
    """The student kit of ``assignment``: one wheel in (or beside) ``output``, and its manifest."""
    from grader.integrations.student_kit import build_kit as build

    try:
        return build(assignment, Path(output))
    except OSError as exc:
        raise ConfigError(str(exc)) from None


def export_gradebook(
    *,
    results: Path,
    roster: Path,
    output: Path,
    format: str,
    column: str | None = None,
    match_column: str | None = None,
    assignment: str | None = None,
    missing: str = "blank",
    allow_pending: bool = False,
    points_possible: float | None = None,
    feedback: bool = False,
) -> Any:
    """The LMS's gradebook CSV (Canvas or Moodle) from a results folder and the LMS's roster."""
    from grader.integrations.lms_export import ExportError, ExportOptions, export

    options = ExportOptions(format, column, match_column, assignment, missing, allow_pending, points_possible, feedback)
    try:
        return export(Path(results), Path(roster), Path(output), options)
    except ExportError as exc:
        raise ConfigError(f"nothing written:\n{exc}") from None
