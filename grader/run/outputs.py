"""What a run leaves in its output folder besides each notebook's result: gradebook, summary, similarity, JUnit,
Gradescope's results.json, a TA's manual points merged -- and a result for every notebook, whatever happened."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from grader.reports.gradebook import gradebook_csv
from grader.reports.html_report import ensure_reports, notebook_path
from grader.reports.text_safety import terminal_text
from grader.results import GradeResult, cached_result, write_atomic, write_result
from grader.run import batch
from grader.run.settings import RunSettings, UsageError


def grader_failure(exc: BaseException) -> str:
    """The message of a ``crashed`` result whose grading process raised (never the student's verdict)."""
    text = " ".join(str(exc).split())[:300]
    return (
        f"the grader failed while grading this notebook ({type(exc).__name__}{': ' + text if text else ''}); "
        "nothing was charged: it has to be graded again -- tell your TA"
    )


def fill_missing(settings: RunSettings, jobs: list[batch.Job], results: dict[str, GradeResult], why: str) -> None:
    """A result for every job: the one on disk if a grading process wrote it, else a ``crashed`` one saying ``why``."""
    for job in jobs:
        if job.stem not in results:
            found = cached_result(job.target, job.key)
            results[job.stem] = found or batch.crashed_result(job, settings.budget, settings.device, why)
            if found is None:
                try:
                    write_result(results[job.stem], job.target)
                except OSError as exc:
                    print(f"grade: could not write {job.target}: {exc}", file=sys.stderr)


def read_manual(path: Path | None) -> Any:
    """A TA's points for manual questions (``--manual``), read before grading so a bad file is said at once."""
    if path is None:
        return None
    from grader.reports.manual import ManualGradesError, read_grades

    try:
        return read_grades(Path(path))
    except ManualGradesError as exc:
        raise UsageError(str(exc)) from None


def apply_manual(path: Path | None, grades: Any, jobs: list[batch.Job], results: dict[str, GradeResult]) -> None:
    from grader.reports.manual import ManualGradesError, apply_grades

    try:
        changed = apply_grades(grades, results, Path(path or ""))
    except ManualGradesError as exc:
        raise UsageError(str(exc)) from None
    for job in jobs:
        if job.stem in changed:
            write_result(results[job.stem], job.target)


def write_outputs(settings: RunSettings, jobs: list[batch.Job], results: dict[str, GradeResult]) -> None:
    """Reports that are out of date, then the class-wide files: gradebook, summary, JUnit, Gradescope's results."""
    request, out = settings.request, settings.request.out
    ordered = [results[job.stem] for job in jobs]
    ensure_reports((results[job.stem], job.target) for job in jobs)
    write_atomic(out / "gradebook.csv", gradebook_csv(ordered))
    similar = similarity(jobs, out, results) if len(jobs) > 1 else None
    if len(jobs) > 1 or request.summary:
        from grader.reports.class_summary import write_summary

        try:
            write_summary([(results[job.stem], job.target) for job in jobs], out / "index.html", similarity=similar)
        except Exception as exc:  # noqa: BLE001 -- the gradebook is written; JUnit and the rest still are
            print(f"grade: could not write the class summary: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        if not request.quiet:
            flagged = f"; similarity: {out / 'similarity.csv'} ({sum(p.flagged for p in similar)} flagged)" if similar is not None else ""
            print(f"class summary: {out / 'index.html'}; gradebook: {out / 'gradebook.csv'}{flagged}")
    if request.junit:
        from grader.reports.junit import write_junit

        write_junit(ordered, Path(request.junit))
    if request.gradescope:  # one notebook (checked before grading): Gradescope's results.json
        from grader.integrations.gradescope import write_results_json

        job = jobs[0]
        write_results_json(
            results[job.stem],
            Path(request.gradescope),
            [q.id for q in job.assignment.questions if q.hidden],
            notebook_path(job.target),
            note=request.gradescope_note or "",
        )


def similarity(jobs: list[batch.Job], out: Path, results: dict[str, GradeResult] | None = None) -> list | None:
    """``similarity.csv`` and the ranked pairs for the summary (``results``: for the answers to manual
    questions); a failure here never fails the batch."""
    try:
        from grader.integrations.similarity import class_similarity

        return class_similarity(jobs, out / "similarity.csv", results)
    except Exception as exc:  # noqa: BLE001 -- a side product: warn in one line and go on
        reason = (str(exc).strip().splitlines() or [""])[0]
        print(terminal_text(f"grade: warning: similarity across the class not computed ({type(exc).__name__}: {reason})"), file=sys.stderr)
        return None
