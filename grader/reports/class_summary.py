"""The class summary page ``index.html``: the whole batch at a glance, linking to each report.

Like the per-submission report it is one self-contained file; its only
script (sorting the table) is inline and allowed by a per-page nonce in the
Content-Security-Policy, so nothing else can run and nothing is fetched.
Each link to a report is made by :func:`grader.reports.text_safety.relative_href`:
a report is named after the student's notebook, and a notebook named
``javascript:alert(1).ipynb`` must still link to a file beside this page.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from grader.reports.text_safety import relative_href
from grader.results import GradeResult, write_atomic

#: The class summary shows at least this many pairs (every flagged pair, up to MAX_SHOWN).
TOP_PAIRS = 10
MAX_SHOWN = 50


def shown_count(pairs: Sequence[Any]) -> int:
    """How many of the ranked pairs (``grader.integrations.similarity.Pair``) the summary shows: every flagged one,
    at least TOP_PAIRS, none at 0 unflagged."""
    flagged = sum(1 for p in pairs if p.flagged)
    return min(max(TOP_PAIRS, flagged), MAX_SHOWN, sum(1 for p in pairs if p.shared or p.flagged))


def summary_rows(results: Sequence[tuple[GradeResult, Path]]) -> list[dict]:
    rows = []
    for result, json_path in results:
        percent = 100 * result.score / result.max_score if result.max_score else 0.0
        rows.append(
            {
                "r": result,
                "href": relative_href(json_path.with_suffix(".html").name),
                "percent": percent,
                "statuses": {q.id: q.status for q in result.questions},
                "problem": result.execution.status != "ok",
            }
        )
    return rows


def pass_rates(results: Sequence[GradeResult]) -> dict[str, float]:
    """Share of submissions passing each auto-graded question, in question order."""
    seen: dict[str, list[bool]] = {}
    for result in results:
        for q in result.questions:
            if q.status != "manual":
                seen.setdefault(q.id, []).append(q.status == "pass")
    return {qid: sum(passed) / len(passed) for qid, passed in seen.items()}


def inputs_key(results: Sequence[tuple[GradeResult, Path]], similarity: Sequence | None = None) -> str:
    """What the page shows depends on these results (and similar pairs) only: a page made from the same ones is reused."""
    digest = hashlib.sha256()
    for result, json_path in results:
        digest.update(json_path.name.encode() + b"\0" + json.dumps(result.to_dict(), sort_keys=True).encode() + b"\0")
    if similarity is not None:  # the pairs the page shows, and how many there are and are flagged
        shown = [p.to_dict() for p in similarity[: shown_count(similarity)]]
        digest.update(b"similarity\0" + json.dumps([shown, len(similarity), sum(p.flagged for p in similarity)], sort_keys=True).encode())
    return digest.hexdigest()


def write_summary(results: Sequence[tuple[GradeResult, Path]], target: Path, similarity: Sequence | None = None) -> bool:
    """Write ``index.html`` unless the one there was made from the same results; True if written.

    ``similarity``: the batch's ranked pairs (``grader.integrations.similarity.Pair``, most similar first); the page shows the top ones.
    """
    key = inputs_key(results, similarity)
    try:
        with open(target, encoding="utf-8") as existing:
            if f'<meta name="grader-inputs" content="{key}">' in existing.read(4000):
                return False
    except OSError:
        pass
    write_atomic(target, render_summary(results, key, similarity))
    return True


def render_summary(results: Sequence[tuple[GradeResult, Path]], key: str = "", similarity: Sequence | None = None) -> str:
    from grader.reports import figures
    from grader.reports.html_report import environment

    graded = [r for r, _ in results]
    rows = summary_rows(results)
    rates = pass_rates(graded)
    times = [r.grading_seconds for r in graded if r.grading_seconds]
    shown = None
    if similarity is not None:
        shown = list(similarity[: shown_count(similarity)])
    return (
        environment()
        .get_template("index.html.j2")
        .render(
            rows=rows,
            count=len(rows),
            assignments=sorted({r.assignment for r in graded}),
            mean=statistics.fmean([row["percent"] for row in rows]) if rows else 0.0,
            median_seconds=statistics.median(times) if times else None,
            problems=[row for row in rows if row["problem"]],
            histogram=figures.histogram([row["percent"] for row in rows]) if rows else None,
            rates=rates,
            rates_chart=figures.pass_rates(rates) if rates else None,
            question_ids=list(rates),
            nonce=secrets.token_urlsafe(16),
            key=key,
            similarity=shown,
            similarity_count=len(similarity or ()),
            flagged=sum(1 for p in similarity or () if p.flagged),
            similarity_threshold=similarity[0].threshold if similarity else None,
        )
    )
