"""Gradebook exports for Canvas and Moodle: ``grade export RESULTS_DIR --format canvas|moodle --roster R.csv -o FILE``.

The results ``grade`` wrote (``RESULTS_DIR/<stem>.json``) are mapped to the students of a roster
the LMS itself exported, and written as the CSV that LMS imports. Nothing is written unless every
submission maps to exactly one student and every grade can be given: the problems are reported
together (:class:`ExportError`, exit status 2), and the file is replaced atomically.

What each system imports (checked against their sources):

* **Canvas** -- Grades > Import. ``GradebookImporter`` (canvas-lms ``app/models/gradebook_importer.rb``)
  wants a header whose first cell contains ``Student`` and second ``ID``, then optionally
  ``SIS User ID``, ``SIS Login ID``, and a last student column containing ``Section``; every later
  column is an assignment, ``Title (assignment id)`` to update that assignment (a bare title creates a
  new one). A row whose first cell contains ``Points Possible`` gives the assignments' points. A student
  is found by ``ID`` (the Canvas user id), then SIS ids, then name. See also Canvas's guide "How do I
  import grades in the Gradebook?" and e.g. https://teaching.resources.osu.edu/toolsets/carmencanvas/
  guides/calculating-final-grades/import-csv-file-carmen-grades . We write ``Student, ID, SIS User ID,
  SIS Login ID, Section`` from the roster (Canvas's own gradebook export, Grades > Export), a
  ``Points Possible`` row, and one assignment column.
* **Moodle** -- Grades > Import > CSV file (``gradeimport_csv``, ``grade/import/csv/classes/load_data.php``):
  any columns; on import one column is mapped to the user by id, ``idnumber``, email or username, a
  column to the grade item, another optionally to its feedback; an empty cell or ``-`` means "no grade".
  The roster is Moodle's gradebook export (``First name, Last name, ID number, ..., Email address``) or
  the assignment's grading worksheet (Assignment > Download grading worksheet: ``Identifier`` =
  ``Participant <id>``, ``Full name``, ``Email address``, ..., ``Grade``, ``Last modified (grade)``,
  ``Feedback comments``). From a worksheet the output is itself a worksheet Moodle can take back
  (Upload grading worksheet: ``mod/assign/feedback/offline/importgradeslib.php`` needs the columns
  ``Identifier``, ``Grade`` and ``Last modified (grade)``).

Which roster row a submission is -- from the file names Canvas's and Moodle's bulk downloads give, or a
roster column (``--match-column``) -- is worked out in ``grader/integrations/lms_roster.py``, with those names' sources.

What goes in a grade cell: the result's ``score`` (auto-graded points plus the TA's points for
manual questions), or that score scaled to ``--points-possible``. Decided here:

* Manual points still pending (``manual_points_pending`` > 0): an error naming the submissions, since
  a grade that will rise later is not a grade; ``--allow-pending`` exports the points so far, with a
  warning per student.
* A notebook the grader could not grade -- execution ``environment_error``, or ``crashed`` because the
  *grading process* died (its questions say "not graded") -- never becomes a 0: its cell is empty, a
  warning names it, and ``grade export`` exits 3 (the file is written; grade those notebooks again). A
  ``crashed`` kernel the grader restarted and replayed (the student's code killed it) was graded: its
  score is exported like any other. ``invalid`` and ``timeout`` are graded too (the student's doing).
* A result graded without the hidden checks (``hidden_questions_not_run``) is an error: its score
  misses questions.
* A student in the roster without a submission: ``--missing blank`` (default: an empty cell -- on
  import Moodle treats it as "no grade", so it clears a grade entered by hand), ``zero`` (0 points), or
  ``omit`` (no row: the LMS leaves that student's grade alone). Rows of notebooks not graded follow
  ``blank``/``omit`` too, never ``zero``.

Every cell goes through :func:`grader.reports.text_safety.csv_cell` (``csv_text``): every string -- roster cells, names,
feedback -- is text, a formula-like one neutralised; grades and points are passed as numbers and stay numbers.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from grader.integrations.lms_roster import (
    CANVAS_ANONYMOUS,
    CANVAS_FILE,
    MOODLE_FILE,
    MOODLE_USER_KEYS,
    ExportError,
    ExportOptions,
    Student,
    canvas_user_id,
    load_results,
    map_students,
    moodle_participant,
    read_roster,
)
from grader.reports.text_safety import csv_text
from grader.results import GradeResult, write_atomic

__all__ = [  # this module's names and those of grader/integrations/lms_roster.py that callers imported from here
    "CANVAS_ANONYMOUS",
    "CANVAS_ASSIGNMENT",
    "CANVAS_COLUMNS",
    "CANVAS_FILE",
    "FORMATS",
    "MISSING",
    "MOODLE_COLUMNS",
    "MOODLE_FILE",
    "MOODLE_USER_KEYS",
    "WORKSHEET_MODIFIED",
    "Export",
    "ExportError",
    "ExportOptions",
    "Student",
    "build_export",
    "canvas_user_id",
    "cell_number",
    "export",
    "feedback_text",
    "load_results",
    "map_students",
    "moodle_participant",
    "not_graded_reason",
    "number",
    "read_roster",
    "total_points",
]

FORMATS = ("canvas", "moodle")
MISSING = ("blank", "zero", "omit")

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
#: Identity columns of Moodle's gradebook export and grading worksheet, in the order we write them.
MOODLE_COLUMNS = ("Identifier", "Full name", "First name", "Last name", "ID number", "Username", "Email address")
WORKSHEET_MODIFIED = "Last modified (grade)"
CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s*\((?P<id>\d+)\)$")


@dataclass
class Export:
    """An export made but not yet written: the CSV text and what ``grade export`` tells the user."""

    text: str
    summary: str
    warnings: list[str] = field(default_factory=list)
    #: Submissions the grader could not grade (their cells are empty): ``grade export`` exits 3.
    not_graded: int = 0


# --------------------------------------------------------------------------- grades


def not_graded_reason(result: GradeResult) -> str | None:
    """Why the grader could not grade this notebook (its score says nothing about the student), else None."""
    status = result.execution.status
    if status == "environment_error":
        return f"execution environment_error: {result.execution.message}"
    if status == "crashed" and any(q.status == "error" and q.message.startswith("not graded") for q in result.questions):
        return f"execution crashed (the grading process died): {result.execution.message}"
    return None


def total_points(result: GradeResult) -> float:
    """The assignment's points for this result: counted so far plus those pending a TA."""
    return result.max_score + result.manual_points_pending


def number(value: float) -> str:
    """At most two decimals, no trailing zeros: 39.5, 38.64, 42."""
    text = f"{round(value, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text


def cell_number(value: float) -> float:
    """A grade or points cell: the number :func:`number` shows (two decimals at most), as a number, so the CSV keeps it one."""
    return round(value, 2) + 0.0  # + 0.0: -0.0 is written 0


def feedback_text(result: GradeResult, total: float) -> str:
    parts = [f"hw-grader: {number(result.score)}/{number(total)} points"]
    wrong = [q.id for q in result.questions if q.status in ("fail", "error", "missing")]
    if wrong:
        parts.append("not passed: " + ", ".join(wrong))
    if result.manual_points_pending:
        parts.append(f"{number(result.manual_points_pending)} points of written answers not graded yet")
    return "; ".join(parts)


def build_export(results: list[tuple[str, GradeResult]], roster: Path, options: ExportOptions) -> Export:
    """The CSV text for ``options.format`` (nothing is written here)."""
    if options.format not in FORMATS:
        raise ExportError(f"unknown format {options.format!r} (one of {', '.join(FORMATS)})")
    if options.missing not in MISSING:
        raise ExportError(f"--missing must be one of {', '.join(MISSING)}")
    if options.points_possible is not None and not (math.isfinite(options.points_possible) and options.points_possible > 0):
        raise ExportError("--points-possible must be a number above 0")
    if options.feedback and options.format != "moodle":
        raise ExportError("--feedback is for --format moodle (Canvas's gradebook import takes no comments)")
    results = _one_assignment(results, options)
    header, students, roster_points = read_roster(roster, options.format)
    if not students:
        raise ExportError(f"{roster}: the roster has no students")
    mapped = map_students(results, students, header, options, roster)

    problems, warnings = [], []
    graded = [(stem, r) for stem, r in results if not_graded_reason(r) is None]
    for stem, result in graded:
        if result.hidden_questions_not_run:
            problems.append(
                f"{result.submission} ({stem}.json): graded without the hidden checks "
                f"({result.hidden_questions_not_run} hidden questions not run); grade it where checks_hidden.py is"
            )
        if result.manual_points_pending and not options.allow_pending:
            problems.append(
                f"{result.submission} ({stem}.json): {number(result.manual_points_pending)} points of manual "
                "questions not graded yet; merge the TA's points (grade ... --manual grades.csv) or pass "
                "--allow-pending to export the points so far"
            )
    totals = Counter(total_points(r) for _, r in graded)
    if len(totals) > 1:
        usual = totals.most_common(1)[0][0]
        odd = ", ".join(f"{r.submission} ({number(total_points(r))})" for _, r in graded if total_points(r) != usual)
        problems.append(f"the results disagree on the assignment's total points: most have {number(usual)}, but {odd}")
    total = next(iter(totals)) if len(totals) == 1 else None
    column = _grade_column(options, header, results)
    lms_points = _number_or_none(roster_points.get(column, "")) if options.format == "canvas" else None
    if options.points_possible is None and lms_points is not None and total is not None and lms_points != total:
        problems.append(
            f"Canvas's {column!r} is worth {number(lms_points)} points (the roster's Points Possible row), "
            f"the results {number(total)}: pass --points-possible {number(lms_points)} to scale the scores"
        )
    if problems:
        raise ExportError("\n".join(problems))

    def grade_of(result: GradeResult) -> float:
        if options.points_possible is None or not total:
            return result.score
        return result.score * options.points_possible / total

    rows: list[tuple[Student, float | str, str]] = []  # student, grade cell (a number, or "" for none), feedback
    counts: Counter[str] = Counter()
    for student in students:
        if student.row not in mapped:
            counts["without a submission"] += 1
            if options.missing != "omit":
                rows.append((student, 0 if options.missing == "zero" else "", "no submission"))
            continue
        stem, result = mapped[student.row]
        reason = not_graded_reason(result)
        if reason is not None:
            counts["not graded"] += 1
            warnings.append(
                f"{student.label}: {result.submission} was not graded ({reason}); its grade is "
                f"{'left out' if options.missing == 'omit' else 'left empty'} -- grade it again"
            )
            if options.missing != "omit":
                rows.append((student, "", f"not graded: {reason}"))
            continue
        if result.manual_points_pending:
            warnings.append(
                f"{student.label}: {number(result.manual_points_pending)} manual points pending; "
                f"exported {number(result.score)} points so far"
            )
        counts["graded"] += 1
        rows.append((student, cell_number(grade_of(result)), feedback_text(result, total or total_points(result))))

    points_cell = cell_number(options.points_possible) if options.points_possible else (cell_number(total) if total else "")
    if options.format == "canvas":
        text = _canvas_csv(column, points_cell, rows)
    else:
        text = _moodle_csv(header, column, options.feedback, rows)
    parts = [f"{counts[k]} {k}" for k in ("graded", "without a submission", "not graded") if counts[k]]
    summary = f"{len(rows)} students in column {column!r} ({', '.join(parts) or 'none'})"
    return Export(text, summary, warnings, counts["not graded"])


def _one_assignment(results, options):
    if options.assignment:
        chosen = [(s, r) for s, r in results if r.assignment == options.assignment]
        if not chosen:
            found = ", ".join(sorted({r.assignment for _, r in results}))
            raise ExportError(f"no results of assignment {options.assignment!r} (the results are of: {found})")
        return chosen
    names = Counter(r.assignment for _, r in results)
    if len(names) > 1:
        listed = ", ".join(f"{name} ({n})" for name, n in names.most_common())
        raise ExportError(f"the results are of several assignments: {listed}; choose one with --assignment")
    return results


def _grade_column(options: ExportOptions, header: list[str], results) -> str:
    if options.column:
        return options.column
    assignment = results[0][1].assignment
    if options.format == "canvas":  # the roster is Canvas's export: its column "HW2 (12345)" updates that assignment
        same = [h for h in header if (m := CANVAS_ASSIGNMENT.match(h)) and m.group("title").casefold() == assignment.casefold()]
        if len(same) == 1:
            return same[0]
        return assignment
    return "Grade" if "Identifier" in header else assignment


def _number_or_none(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def _canvas_csv(column: str, points_cell: float | str, rows) -> str:
    return csv_text(
        [
            [*CANVAS_COLUMNS, column],
            ["Points Possible", "", "", "", "", points_cell],
            *([*(student.cells.get(c, "") for c in CANVAS_COLUMNS), grade] for student, grade, _ in rows),
        ]
    )


def _moodle_csv(header: list[str], column: str, feedback: bool, rows) -> str:
    identity = [c for c in MOODLE_COLUMNS if c in header]
    worksheet = "Identifier" in header and WORKSHEET_MODIFIED in header
    extra = [WORKSHEET_MODIFIED] if worksheet else []
    feedback_column = ("Feedback comments" if "Identifier" in header else "Feedback") if feedback else None
    table: list[list[object]] = [[*identity, column, *extra, *([feedback_column] if feedback_column else [])]]
    for student, grade, text in rows:
        cells = [*(student.cells.get(c, "") for c in identity), grade, *(student.cells.get(c, "") for c in extra)]
        table.append(cells + ([text] if feedback_column else []))
    return csv_text(table)


def export(results_dir: Path, roster: Path, output: Path, options: ExportOptions) -> Export:
    """Read, map, check, then write ``output`` atomically; an :class:`ExportError` leaves it as it was."""
    if Path(output).resolve() == Path(roster).resolve():
        raise ExportError(f"{output}: the output would overwrite the roster; write it elsewhere")
    made = build_export(load_results(Path(results_dir)), Path(roster), options)
    write_atomic(Path(output), made.text)
    made.summary = f"wrote {output}: {made.summary}"
    return made
