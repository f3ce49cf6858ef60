"""The inputs of a gradebook export: the results ``grade`` wrote, the LMS's roster, and who is who.

Used by ``grader/integrations/lms_export.py`` (``grade export``), which says what each LMS imports and what goes in
a grade cell. Here: reading ``RESULTS_DIR/<stem>.json`` and the roster the LMS itself exported
(Canvas's gradebook export; Moodle's gradebook export or the assignment's grading worksheet), and
mapping each submission to exactly one roster row. The problems found are collected and reported
together, in one :class:`ExportError`.

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

:class:`ExportError` and :class:`ExportOptions` are defined here, in the module every step of an export
imports, and re-exported by ``grader/integrations/lms_export.py``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

from grader.errors import ConfigError
from grader.results import GradeResult

MOODLE_USER_KEYS = ("Identifier", "ID number", "Email address", "Username")

#: ``smithbob_123_456_hw2.ipynb``, ``smithbob_LATE_123_456_hw2.ipynb`` (Canvas's bulk download).
CANVAS_FILE = re.compile(r"^(?P<name>.*?)_(?:late_)?(?P<user>\d+)_(?P<attachment>\d+)_(?P<original>.+)$", re.IGNORECASE)
CANVAS_ANONYMOUS = re.compile(r"^(?:late_)?anon_", re.IGNORECASE)
#: ``Ana Diaz_123456_assignsubmission_file`` (a folder) or ``..._assignsubmission_file_hw2.ipynb`` (Moodle).
MOODLE_FILE = re.compile(r"^(?P<name>.*?)_(?P<participant>\d+)_assignsubmission_file(?:_(?P<original>.+))?$")


class ExportError(ConfigError):
    """The export cannot be made as asked; the message names every problem. Nothing was written.

    A :class:`ConfigError` (so still a ``ValueError``): a results folder, a roster or an option of the
    user's is wrong, and ``grade export`` exits 2.
    """


@dataclass
class ExportOptions:
    """What ``grade export`` was asked for: one field per command-line option."""

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
    """One student row of the roster: its cells by header, and how messages name the student."""

    row: int  # the roster's row number, the header being row 1 (as a spreadsheet counts)
    cells: dict[str, str]
    label: str


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


def map_students(
    results: list[tuple[str, GradeResult]], students: list[Student], header: list[str], options: ExportOptions, roster: Path
) -> dict[int, tuple[str, GradeResult]]:
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
            problems.append(
                f"{by_row[row].label}, roster row {row}, has {len(subs)} submissions: {names} "
                "(keep one: remove or rename the others' results)"
            )
    if problems:
        raise ExportError("\n".join(problems))
    return {row: subs[0] for row, subs in mapped.items()}


def _lookup(students, header, options, roster, problems):
    """A function (stem, submission path) -> (student or None, why not)."""
    if options.match_column:
        column = options.match_column
        if column not in header:
            raise ExportError(f"{roster}: no column {column!r} (--match-column); its header is: {', '.join(header)}")
        index = _unique_index(
            students, lambda s: [s.cells.get(column, "")] if s.cells.get(column) else [], f"the {column!r} column", problems
        )

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
                return None, (
                    "not a Canvas download name (<name>_[LATE_]<user id>_<attachment id>_<file>); use --match-column for other names"
                )
            if user not in index:
                return None, f"Canvas user id {user} is not in the roster's ID column"
            return index[user], ""

        return by_canvas
    participants: dict[str, Student] | None  # by participant id; None: match by name
    if "Identifier" in header:

        def participant_ids(student: Student) -> list[str]:
            found = re.search(r"(\d+)\s*$", student.cells.get("Identifier", ""))
            return [found.group(1)] if found else []

        participants = _unique_index(students, participant_ids, "Identifier (Participant <id>)", problems)
    else:
        participants = None
        names: dict[str, list[Student]] = {}
        for student in students:
            first, last = student.cells.get("First name", ""), student.cells.get("Last name", "")
            keys = {_norm_name(student.cells.get("Full name", "")), _norm_name(f"{first} {last}"), _norm_name(f"{last} {first}")}
            for key in keys - {""}:
                names.setdefault(key, []).append(student)

    def by_moodle(stem: str, submission: str):
        found = moodle_participant(submission)
        if found is None:
            return None, (
                "not a Moodle download name (<Full Name>_<participant id>_assignsubmission_file, a folder or "
                "a file name prefix); use --match-column for other names"
            )
        name, participant = found
        if participants is not None:
            if participant not in participants:
                return None, f"participant {participant} is not in the roster's Identifier column"
            return participants[participant], ""
        candidates = names.get(_norm_name(name), [])
        if len(candidates) == 1:
            return candidates[0], ""
        if candidates:
            rows = ", ".join(f"row {s.row}" for s in candidates)
            return None, f"{name!r} is the name of several students ({rows}); use the grading worksheet as roster"
        return None, (
            f"no student named {name!r} in the roster (participant {participant}; the grading worksheet, "
            "whose Identifier has the participant id, maps it for certain)"
        )

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
