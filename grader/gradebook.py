"""The class's gradebook as CSV: one row per submission, one points column per question.

Columns are stable -- the fixed ones, then question ids in the assignment's
order (first appearance across the batch) -- so a spreadsheet that imports
it keeps working from one run to the next. A manual question a TA has not
graded yet has an empty cell, not 0.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from grader.results import GradeResult

FIXED = ("submission", "sha256", "score", "max_score", "manual_points_pending", "execution_status")


def question_ids(results: Sequence[GradeResult]) -> list[str]:
    ids: list[str] = []
    for result in results:
        ids.extend(q.id for q in result.questions if q.id not in ids)
    return ids


def gradebook_csv(results: Sequence[GradeResult]) -> str:
    ids = question_ids(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*FIXED, *ids])
    for r in results:
        points = {q.id: (f"{q.points:g}" if q.counted else "") for q in r.questions}
        writer.writerow([r.submission, r.sha256, f"{r.score:g}", f"{r.max_score:g}", f"{r.manual_points_pending:g}",
                         r.execution.status, *(points.get(i, "") for i in ids)])  # fmt: skip
    return buffer.getvalue()
