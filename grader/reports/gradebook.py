"""The class's gradebook as CSV: one row per submission, one points column per question.

Columns are stable -- the fixed ones, then question ids in the assignment's
order (first appearance across the batch) -- so a spreadsheet that imports
it keeps working from one run to the next. A manual question a TA has not
graded yet has an empty cell, not 0.

Every cell goes through :func:`grader.reports.text_safety.csv_cell` (by way of
``csv_text``): the submission column is a file name a student chose, and a
spreadsheet would run ``=HYPERLINK(...).ipynb`` as a formula. Scores and points
are passed as numbers, so they stay numbers.
"""

from __future__ import annotations

from collections.abc import Sequence

from grader.reports.text_safety import csv_text
from grader.results import GradeResult

FIXED = ("submission", "sha256", "score", "max_score", "manual_points_pending", "execution_status")


def question_ids(results: Sequence[GradeResult]) -> list[str]:
    ids: list[str] = []
    for result in results:
        ids.extend(q.id for q in result.questions if q.id not in ids)
    return ids


def gradebook_csv(results: Sequence[GradeResult]) -> str:
    ids = question_ids(results)
    rows: list[list[object]] = [[*FIXED, *ids]]
    for r in results:
        points = {q.id: (q.points if q.counted else "") for q in r.questions}
        rows.append(
            [r.submission, r.sha256, r.score, r.max_score, r.manual_points_pending, r.execution.status, *(points.get(i, "") for i in ids)]
        )
    return csv_text(rows)
