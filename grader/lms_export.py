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

Which student a notebook is, from the names the LMS's bulk download gives files:

* Canvas (``lib/content_zipper.rb``, ``get_filename`` and ``add_upload_submission``):
  ``<sortable name, lower case, non-word characters removed>[_LATE]_<user id>_<attachment id>_<original name>``,
  e.g. ``smithbob_123_456_hw2.ipynb`` or ``smithbob_LATE_123_456_hw2.ipynb`` (older Canvas: ``late``).
  The user id is the ``ID`` column of the gradebook export. Anonymous grading names files
  ``anon_<anonymous id>_...``, which no export maps: use ``--match-column``.
* Moodle (``mod/assign/classes/downloader.php``): ``<Full Name>_<participant id>_assignsubmission_file``,
  a folder per student holding the original files (the default since Moodle 3.1), or a prefix of each
  file name (``..._assignsubmission_file_<original name>``) when "Download submissions in folders" is
  off. The participant id is the one in the grading worksheet's ``Identifier``; with a gradebook export
  as roster the full name (first last, or last first) is matched instead, and a name two students share
  is an error.
* Any LMS: ``--match-column COLUMN`` names a roster column holding each student's notebook -- its
  result's stem (``student_a``), file name or path as graded.

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

Every cell goes through :func:`grader.text_safety.csv_cell` (``csv_text``): every string -- roster cells, names,
feedback -- is text, a formula-like one neutralised; grades and points are passed as numbers and stay numbers.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from grader.results import GradeResult, write_atomic
from grader.text_safety import csv_text

FORMATS = ("canvas", "moodle")
MISSING = ("blank", "zero", "omit")

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
#: Identity columns of Moodle's gradebook export and grading worksheet, in the order we write them.
MOODLE_COLUMNS = ("Identifier", "Full name", "First name", "Last name", "ID number", "Username", "Email address")
MOODLE_USER_KEYS = ("Identifier", "ID number", "Email address", "Username")
WORKSHEET_MODIFIED = "Last modified (grade)"

#: ``smithbob_123_456_hw2.ipynb``, ``smithbob_LATE_123_456_hw2.ipynb`` (Canvas's bulk download).
CANVAS_FILE = re.compile(r"^(?P<name>.*?)_(?:late_)?(?P<user>\d+)_(?P<attachment>\d+)_(?P<original>.+)$", re.IGNORECASE)
CANVAS_ANONYMOUS = re.compile(r"^(?:late_)?anon_", re.IGNORECASE)
#: ``Ana Diaz_123456_assignsubmission_file`` (a folder) or ``..._assignsubmission_file_hw2.ipynb`` (Moodle).
MOODLE_FILE = re.compile(r"^(?P<name>.*?)_(?P<participant>\d+)_assignsubmission_file(?:_(?P<original>.+))?$")
CANVAS_ASSIGNMENT = re.compile(r"^(?P<title>.*\S)\s*\((?P<id>\d+)\)$")


class ExportError(ValueError):
    """The export cannot be made as asked; the message names every problem. Nothing was written."""


@dataclass
class ExportOptions:
    format: str
    #: The grade column's header (Canvas: ``"HW2 (12345)"``); None: chosen from the roster or the assignment.
    column: str | None = None
    #: A roster column naming each student's notebook (stem, file name or path) instead of the LMS's file names.
    match_column: str | None = None
    #: Export only the results of this assignment (needed when RESULTS_DIR holds several).
    assignment: str | None = None
    missing: str = "blank"
    allow_pending: bool = False
    #: Scale every score to this many points (the LMS assignment's points possible).
    points_possible: float | None = None
    #: Moodle: add a feedback column (score, questions not passed, points pending).
    feedback: bool = False


@dataclass
class Student:
    row: int  # the roster's row number, the header being row 1 (as a spreadsheet counts)
    cells: dict[str, str]
    label: str


@dataclass
class Export:
    text: str
    summary: str
    warnings: list[str] = field(default_factory=list)
    #: Submissions the grader could not grade (their cells are empty): ``grade export`` exits 3.
    not_graded: int = 0


# --------------------------------------------------------------------------- reading


def load_results(folder: Path) -> list[tuple[str, GradeResult]]:
    """Every ``<stem>.json`` directly in ``folder``, as ``(stem, result)``; one unreadable file is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ExportError(f"{folder}: not a folder of results (the --out folder of `grade`)")
    loaded, problems = [], []
    for path in sorted(p for p in folder.glob("*.json") if not p.name.startswith(".")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            loaded.append((path.stem, GradeResult.from_dict(data)))
        except (OSError, ValueError, KeyError, TypeError) as exc:  # json's errors are ValueErrors
            problems.append(f"{path}: not a readable grading result ({type(exc).__name__}: {exc})")
    if problems:
        raise ExportError("\n".join(problems))
    if not loaded:
        raise ExportError(f"{folder}: no results (<stem>.json files written by `grade --out {folder}`)")
    return loaded


def read_roster(path: Path, fmt: str) -> tuple[list[str], list[Student], dict[str, str]]:
    """The roster's header, its students, and (Canvas) its ``Points Possible`` row by column."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # Canvas's export starts with a BOM
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"{path}: cannot read the roster: {exc}") from None
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not rows:
        raise ExportError(f"{path}: the roster is empty")
    header = [h.strip() for h in rows[0]]
    need = ("Student", "ID") if fmt == "canvas" else ()
    missing = [c for c in need if c not in header]
    if fmt == "moodle" and not any(c in header for c in MOODLE_USER_KEYS):
        missing.append(" or ".join(MOODLE_USER_KEYS) + " (a column Moodle's import can identify users by)")
    if missing:
        raise ExportError(f"{path}: the roster has no column {', '.join(missing)}; its header is: {', '.join(header)}")
    students, points_possible = [], {}
    for number, raw in enumerate(rows[1:], start=2):
        cells = {h: (raw[i].strip() if i < len(raw) else "") for i, h in enumerate(header)}
        if not any(cells.values()):
            continue
        first = cells.get(header[0], "")
        if fmt == "canvas" and "Points Possible" in first:
            points_possible = cells
            continue
        if fmt == "canvas" and all(re.fullmatch(r"\s*(Muted|Manual Posting.*)?\s*", v, re.IGNORECASE) for v in cells.values()):
            continue  # Canvas's "Muted" / "Manual Posting" row describes assignments, not a student
        students.append(Student(number, cells, _label(cells, fmt)))
    return header, students, points_possible


def _label(cells: dict[str, str], fmt: str) -> str:
    if fmt == "canvas":
        return f"{cells.get('Student') or '?'} (ID {cells.get('ID') or '?'})"
    name = cells.get("Full name") or " ".join(filter(None, (cells.get("First name"), cells.get("Last name"))))
    ident = next((cells[k] for k in MOODLE_USER_KEYS if cells.get(k)), "")
    return f"{name or '?'} ({ident or 'no identifier'})"


# --------------------------------------------------------------------------- who is who


def _norm_name(name: str) -> str:
    """Names as Moodle writes them in file names (``_`` became a space), compared case- and accent-form-insensitively."""
    return " ".join(unicodedata.normalize("NFC", name).replace("_", " ").casefold().split())


def canvas_user_id(submission: str) -> str | None:
    """The Canvas user id in a bulk-download file name, or None."""
    match = CANVAS_FILE.match(Path(submission).name)
    return match.group("user") if match else None


def moodle_participant(submission: str) -> tuple[str, str] | None:
    """``(full name, participant id)`` from the Moodle download folder or file prefix in the path, or None."""
    for part in reversed(Path(submission).parts):
        match = MOODLE_FILE.match(part)
        if match:
            return match.group("name"), match.group("participant")
    return None


def _match_keys(stem: str, submission: str) -> set[str]:
    path = Path(submission)
    return {stem, submission, path.name, path.stem, path.as_posix()}


def map_students(results: list[tuple[str, GradeResult]], students: list[Student], header: list[str],
                 options: ExportOptions, roster: Path) -> dict[int, tuple[str, GradeResult]]:  # fmt: skip
    """Roster row -> its (stem, result). Unmapped submissions, two for one student, ambiguous names: one error."""
    problems: list[str] = []
    lookup = _lookup(students, header, options, roster, problems)
    mapped: dict[int, list[tuple[str, GradeResult]]] = {}
    for stem, result in results:
        found, why = lookup(stem, result.submission)
        if found is None:
            problems.append(f"{result.submission} ({stem}.json): {why}")
        else:
            mapped.setdefault(found.row, []).append((stem, result))
    by_row = {s.row: s for s in students}
    for row, subs in mapped.items():
        if len(subs) > 1:
            names = ", ".join(result.submission for _, result in subs)
            problems.append(f"{by_row[row].label}, roster row {row}, has {len(subs)} submissions: {names} "
                            "(keep one: remove or rename the others' results)")  # fmt: skip
    if problems:
        raise ExportError("\n".join(problems))
    return {row: subs[0] for row, subs in mapped.items()}


def _lookup(students, header, options, roster, problems):
    """A function (stem, submission path) -> (student or None, why not)."""
    if options.match_column:
        column = options.match_column
        if column not in header:
            raise ExportError(f"{roster}: no column {column!r} (--match-column); its header is: {', '.join(header)}")
        index = _unique_index(students, lambda s: [s.cells.get(column, "")] if s.cells.get(column) else [],
                              f"the {column!r} column", problems)  # fmt: skip

        def by_column(stem: str, submission: str):
            hits = {index[k].row: index[k] for k in _match_keys(stem, submission) if k in index}
            if len(hits) == 1:
                return next(iter(hits.values())), ""
            if hits:
                return None, f"matches several roster rows in {column!r}: {', '.join(map(str, sorted(hits)))}"
            return None, f"no roster row names it in {column!r} (its stem, file name or path)"

        return by_column
    if options.format == "canvas":
        index = _unique_index(students, lambda s: [s.cells["ID"]] if s.cells.get("ID") else [], "ID", problems)

        def by_canvas(stem: str, submission: str):
            name = Path(submission).name
            if CANVAS_ANONYMOUS.match(name):
                return None, "an anonymous-grading file name (anon_...): no roster maps it; use --match-column"
            user = canvas_user_id(submission)
            if user is None:
                return None, ("not a Canvas download name (<name>_[LATE_]<user id>_<attachment id>_<file>); "
                              "use --match-column for other names")  # fmt: skip
            if user not in index:
                return None, f"Canvas user id {user} is not in the roster's ID column"
            return index[user], ""

        return by_canvas
    if "Identifier" in header:

        def participant_ids(student: Student) -> list[str]:
            found = re.search(r"(\d+)\s*$", student.cells.get("Identifier", ""))
            return [found.group(1)] if found else []

        index = _unique_index(students, participant_ids, "Identifier (Participant <id>)", problems)
    else:
        index = None
        names: dict[str, list[Student]] = {}
        for student in students:
            first, last = student.cells.get("First name", ""), student.cells.get("Last name", "")
            keys = {_norm_name(student.cells.get("Full name", "")), _norm_name(f"{first} {last}"), _norm_name(f"{last} {first}")}
            for key in keys - {""}:
                names.setdefault(key, []).append(student)

    def by_moodle(stem: str, submission: str):
        found = moodle_participant(submission)
        if found is None:
            return None, ("not a Moodle download name (<Full Name>_<participant id>_assignsubmission_file, a folder or "
                          "a file name prefix); use --match-column for other names")  # fmt: skip
        name, participant = found
        if index is not None:
            if participant not in index:
                return None, f"participant {participant} is not in the roster's Identifier column"
            return index[participant], ""
        candidates = names.get(_norm_name(name), [])
        if len(candidates) == 1:
            return candidates[0], ""
        if candidates:
            rows = ", ".join(f"row {s.row}" for s in candidates)
            return None, f"{name!r} is the name of several students ({rows}); use the grading worksheet as roster"
        return None, (f"no student named {name!r} in the roster (participant {participant}; the grading worksheet, "
                      "whose Identifier has the participant id, maps it for certain)")  # fmt: skip

    return by_moodle


def _unique_index(students, keys_of, what, problems) -> dict[str, Student]:
    index: dict[str, Student] = {}
    for student in students:
        for key in keys_of(student):
            if key in index:
                problems.append(f"roster rows {index[key].row} and {student.row} have the same {what}: {key!r}")
            else:
                index[key] = student
    return index


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
            problems.append(f"{result.submission} ({stem}.json): graded without the hidden checks "
                            f"({result.hidden_questions_not_run} hidden questions not run); grade it where checks_hidden.py is")  # fmt: skip
        if result.manual_points_pending and not options.allow_pending:
            problems.append(f"{result.submission} ({stem}.json): {number(result.manual_points_pending)} points of manual "
                            "questions not graded yet; merge the TA's points (grade ... --manual grades.csv) or pass "
                            "--allow-pending to export the points so far")  # fmt: skip
    totals = Counter(total_points(r) for _, r in graded)
    if len(totals) > 1:
        usual = totals.most_common(1)[0][0]
        odd = ", ".join(f"{r.submission} ({number(total_points(r))})" for _, r in graded if total_points(r) != usual)
        problems.append(f"the results disagree on the assignment's total points: most have {number(usual)}, but {odd}")
    total = next(iter(totals)) if len(totals) == 1 else None
    column = _grade_column(options, header, results)
    lms_points = _number_or_none(roster_points.get(column, "")) if options.format == "canvas" else None
    if options.points_possible is None and lms_points is not None and total is not None and lms_points != total:
        problems.append(f"Canvas's {column!r} is worth {number(lms_points)} points (the roster's Points Possible row), "
                        f"the results {number(total)}: pass --points-possible {number(lms_points)} to scale the scores")  # fmt: skip
    if problems:
        raise ExportError("\n".join(problems))

    def grade_of(result: GradeResult) -> float:
        if options.points_possible is None or not total:
            return result.score
        return result.score * options.points_possible / total

    rows: list[tuple[Student, float | str, str]] = []  # student, grade cell (a number, or "" for none), feedback
    counts = Counter()
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
            warnings.append(f"{student.label}: {result.submission} was not graded ({reason}); its grade is "
                            f"{'left out' if options.missing == 'omit' else 'left empty'} -- grade it again")  # fmt: skip
            if options.missing != "omit":
                rows.append((student, "", f"not graded: {reason}"))
            continue
        if result.manual_points_pending:
            warnings.append(f"{student.label}: {number(result.manual_points_pending)} manual points pending; "
                            f"exported {number(result.score)} points so far")  # fmt: skip
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
    return csv_text([
        [*CANVAS_COLUMNS, column],
        ["Points Possible", "", "", "", "", points_cell],
        *([*(student.cells.get(c, "") for c in CANVAS_COLUMNS), grade] for student, grade, _ in rows),
    ])  # fmt: skip


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
