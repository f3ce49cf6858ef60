"""A TA's points for manual questions: ``grade --manual grades.csv ...``.

The CSV (``submission,question,points,comment``) is the TA's record; every
run that names it merges it into the results again, so regrading a
notebook never loses a TA's points. A row is matched to a result by the
result's name (``student_a``), the notebook's file name
(``student_a.ipynb``) or its path as graded. Anything doubtful is an error
naming the row, before any result is changed.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path

from grader.errors import ConfigError
from grader.results import GradeResult

COLUMNS = ("submission", "question", "points", "comment")


class ManualGradesError(ConfigError):
    """The grades file cannot be applied; the message names the file and row."""


@dataclass(frozen=True)
class ManualGrade:
    row: int
    submission: str
    question: str
    points: float
    comment: str


def read_grades(path: Path) -> list[ManualGrade]:
    """Parse the TA's CSV; row numbers count the header as row 1, as a spreadsheet does."""
    try:
        text = Path(path).read_text(encoding="utf-8-sig")  # a spreadsheet's BOM is not part of a column name
    except OSError as exc:
        raise ManualGradesError(f"{path}: cannot read: {exc.strerror or exc}") from None
    reader = csv.DictReader(text.splitlines())
    missing = [c for c in COLUMNS[:3] if c not in (reader.fieldnames or [])]
    if missing:
        raise ManualGradesError(f"{path}: the header must be {','.join(COLUMNS)}; missing {', '.join(missing)}")
    grades = []
    for row_number, row in enumerate(reader, start=2):
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue  # a blank line
        raw = (row.get("points") or "").strip()
        try:
            points = float(raw)
        except ValueError:
            raise ManualGradesError(f"{path}, row {row_number}: points {raw!r} is not a number") from None
        if not math.isfinite(points) or points < 0:
            raise ManualGradesError(f"{path}, row {row_number}: points {raw!r} must be a number of at least 0")
        grades.append(
            ManualGrade(
                row_number,
                (row.get("submission") or "").strip(),
                (row.get("question") or "").strip(),
                points,
                (row.get("comment") or "").strip(),
            )
        )
    return grades


def _names(stem: str, result: GradeResult) -> set[str]:
    shown = Path(result.submission)
    return {stem, shown.name, shown.stem, result.submission}


def apply_grades(grades: list[ManualGrade], results: dict[str, GradeResult], source: Path) -> set[str]:
    """Merge ``grades`` into ``results`` (by result stem); returns the stems changed.

    Every row is validated first -- a known submission, a manual question of
    it, points within the question's maximum, no row given twice -- so a
    bad file changes nothing.
    """
    by_name: dict[str, str] = {}
    for result_stem, result in results.items():
        for name in _names(result_stem, result):
            by_name.setdefault(name, result_stem)
    planned: dict[tuple[str, str], ManualGrade] = {}
    for grade in grades:
        where = f"{source}, row {grade.row}"
        stem = by_name.get(grade.submission)
        if stem is None:
            raise ManualGradesError(f"{where}: no graded submission {grade.submission!r} in this run")
        question = next((q for q in results[stem].questions if q.id == grade.question), None)
        if question is None:
            known = ", ".join(q.id for q in results[stem].questions if q.status == "manual")
            raise ManualGradesError(f"{where}: {grade.submission} has no question {grade.question!r} (manual questions: {known})")
        if question.status != "manual":
            raise ManualGradesError(
                f"{where}: {grade.question!r} is auto-graded ({question.status}); only manual questions take a TA's points"
            )
        if grade.points > question.max_points:
            raise ManualGradesError(f"{where}: {grade.points:g} points for {grade.question!r}, whose maximum is {question.max_points:g}")
        if (stem, grade.question) in planned:
            raise ManualGradesError(
                f"{where}: {grade.submission}/{grade.question} was already graded in row {planned[stem, grade.question].row}"
            )
        planned[stem, grade.question] = grade
    changed = set()
    for (stem, question_id), grade in planned.items():
        question = next(q for q in results[stem].questions if q.id == question_id)
        if (question.ta_points, question.ta_comment) != (grade.points, grade.comment):
            question.ta_points, question.ta_comment = grade.points, grade.comment
            question.points = grade.points
            changed.add(stem)
    return changed
