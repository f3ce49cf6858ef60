"""The class's gradebook as CSV: one row per submission, one points column per question.

Columns are stable -- the fixed ones, then question ids in the assignment's
order (first appearance across the batch) -- so a spreadsheet that imports
it keeps working from one run to the next. A manual question a TA has not
graded yet has an empty cell, not 0.

Every text cell goes through :func:`safe_cell`: the submission column is a file
name a student chose, and a spreadsheet would run ``=HYPERLINK(...).ipynb`` as
a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from grader.results import GradeResult

FIXED = ("submission", "sha256", "score", "max_score", "manual_points_pending", "execution_status")

#: A cell starting with one of these is a formula to Excel, LibreOffice Calc and Google Sheets
#: (OWASP, "CSV Injection": https://owasp.org/www-community/attacks/CSV_Injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """A CSV cell a spreadsheet shows as text, never runs as a formula.

    Text starting with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading single
    quote (OWASP's advice; spreadsheets hide the quote and show the text). Numbers (``int``,
    ``float``) are returned unchanged, so they stay numbers; ``None`` becomes an empty cell.
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def question_ids(results: Sequence[GradeResult]) -> list[str]:
    ids: list[str] = []
    for result in results:
        ids.extend(q.id for q in result.questions if q.id not in ids)
    return ids


def gradebook_csv(results: Sequence[GradeResult]) -> str:
    ids = question_ids(results)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*FIXED, *(safe_cell(i) for i in ids)])
    for r in results:
        points = {q.id: (f"{q.points:g}" if q.counted else "") for q in r.questions}
        writer.writerow([safe_cell(r.submission), safe_cell(r.sha256), f"{r.score:g}", f"{r.max_score:g}",
                         f"{r.manual_points_pending:g}", safe_cell(r.execution.status), *(points.get(i, "") for i in ids)])  # fmt: skip
    return buffer.getvalue()
