"""The per-submission HTML report: what a student reads to see what is wrong.

Rendered with jinja2 from the result (schema 1) and the notebook as it ran;
all markup lives in ``grader/reports/templates/``, this module only prepares the
view: evidence tables, figures, the student's cells (each piece of a
question's evidence is drawn in :mod:`grader.reports.views`). The page is
self-contained (inline CSS, images as data URIs) and its Content-Security-
Policy forbids scripts and any network request, so nothing a notebook put
into its outputs can run in, or change, the report. The notebook itself is
shown in a sandboxed ``<iframe srcdoc>`` for the same reason.

A report is at most :data:`REPORT_LIMIT` bytes (10 MB): an 80 KB notebook
filling every per-output limit once made a 303 MB report. Everything a page
is drawn from is cut first (the notebook to :data:`NOTEBOOK_SHARE` of
outputs, every value of a question's details), and the page is rendered in
pieces that are counted as they come: past the limit the rendering stops
and starts again with less (no notebook, shorter details), so a page larger
than the limit is never held. What was left out is said at the top of the
page.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader.kernel.device import describe
from grader.kernel.shrink import cut_text, shrink_outputs
from grader.reports.evidence_words import evidence_in_words
from grader.reports.views import (  # also imported from here (grader/integrations/gradescope_results.py, tests)
    SHOWN_ELSEWHERE,
    STATUS_LABEL,
    cell_view,
    format_number,
    inline_code,
    notebook_images,
    render_markdown,
    tensor_view,
    trimmed,
)
from grader.results import GradeResult, QuestionResult, status_of, write_atomic

#: Bytes (UTF-8) of one report at most.
REPORT_LIMIT = 10_000_000
#: Of the executed notebook, the bytes of outputs the report's copy keeps (its HTML, escaped into the
#: iframe, is a few times that); the file beside the result keeps up to 10 MB (grader/kernel/shrink.py).
NOTEBOOK_SHARE = 1_000_000


@dataclasses.dataclass(frozen=True)
class Level:
    """How much of a result a report draws; the next level is tried when a page would be over the limit."""

    name: str
    notebook_bytes: int  # 0: the notebook as it ran is not shown
    text: int  # characters of any one text (a message, a traceback, an answer)
    items: int  # items of any one list or mapping in a question's details
    cells: int  # rows of the per-cell tables
    images: int  # plots from the notebook per question


LEVELS = (
    Level("full", NOTEBOOK_SHARE, 20_000, 1024, 100_000, 6),
    Level("shorter", NOTEBOOK_SHARE // 8, 2_000, 128, 500, 1),
    Level("brief", 0, 500, 0, 100, 0),
)

TEMPLATES = Path(__file__).with_name("templates")


def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = format_number
    env.filters["code"] = inline_code
    env.filters["basename"] = lambda path: Path(str(path)).name or str(path)
    env.filters["points"] = lambda v: f"{v:g}"
    env.filters["status_symbol"] = lambda st: status.symbol if (status := status_of(st)) else "–"
    env.globals["css"] = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env


def question_view(q: QuestionResult, notebook: NotebookNode | None, level: Level = LEVELS[0]) -> dict[str, Any]:
    from grader.reports import figures

    q = dataclasses.replace(
        q,
        title=cut_text(str(q.title), 500),
        message=cut_text(str(q.message), level.text),
        ta_comment=cut_text(str(q.ta_comment or ""), level.text),
        details=trimmed(q.details, level.text, level.items) if level.items else {},
    )
    d = q.details
    label = "graded by TA" if q.status == "manual" and q.ta_points is not None else STATUS_LABEL.get(q.status, q.status)
    view: dict[str, Any] = {"q": q, "label": label, "details": d}
    view["tensors"] = tensor_view(d.get("expected"), d.get("got"), d.get("tolerance")) if "expected" in d else None
    difference = d.get("difference_map")
    view["heatmap"] = (
        figures.heatmap(difference["values"], f"|got − expected| at [{', '.join(map(str, difference['slice']))}]")
        if isinstance(difference, dict) and difference.get("values")
        else None
    )
    view["error_cell"] = cell_view(notebook, d.get("cell"), d.get("line"), str(d.get("code") or "")) if "exception" in d else None
    layers = d.get("layers")
    view["layers"] = layers if isinstance(layers, list) else None
    curves = d.get("loss_curves")
    view["loss_plot"] = (
        figures.loss_curves(curves, f"{q.id}: loss per step under the grader's fixed procedure")
        if isinstance(curves, dict) and any(curves.values())
        else None
    )
    view["notebook_plots"] = notebook_images(notebook, d.get("notebook_cell"))[: level.images]
    view["answer_html"] = render_markdown(d.get("answer", "")) if q.status == "manual" else ""
    # Known evidence said as a sentence, its numbers kept for the collapsed part; any other key listed as it is.
    view["evidence"] = evidence_in_words(q.status, d, {k: v for k, v in d.items() if k not in SHOWN_ELSEWHERE}, str(q.message))
    view["other"] = view["evidence"].other
    return view


def section_key(number: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in number.split(".")) if number else (10**6,)


def sections_view(result: GradeResult, notebook: NotebookNode | None, level: Level = LEVELS[0]) -> list[dict[str, Any]]:
    numbers = sorted({q.section for q in result.questions}, key=section_key)
    return [
        {
            "number": n,
            "title": cut_text(str(result.sections.get(n, "")), 500),
            "questions": [question_view(q, notebook, level) for q in result.questions if q.section == n],
        }
        for n in numbers
    ]


# --------------------------------------------------------------------------- the page


def timeline_view(result: GradeResult) -> list[dict[str, Any]]:
    cells = result.execution.cells
    longest = max((c.seconds for c in cells), default=0.0) or 1.0
    return [{"cell": c, "width": max(0.5, 100 * c.seconds / longest)} for c in cells]


def executed_notebook_html(notebook: NotebookNode | None, limit: int = NOTEBOOK_SHARE) -> str:
    """The notebook as it ran (nbconvert's basic template) as a full page for a sandboxed iframe.

    Its outputs are cut to ``limit`` bytes first (grader/kernel/shrink.py), so the page is a few times that at most.
    """
    if notebook is None or limit <= 0:
        return ""
    from nbconvert import HTMLExporter
    from pygments.formatters import HtmlFormatter

    shown = notebook if _outputs_cut(notebook).get("limit_bytes") == limit else shrink_outputs(notebook, limit)
    body, _ = HTMLExporter(template_name="basic").from_notebook_node(shown)
    style = HtmlFormatter().get_style_defs(".highlight")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        f"<style>{style}\n{(TEMPLATES / 'notebook.css').read_text(encoding='utf-8')}</style></head>"
        f"<body>{body}</body></html>"
    )


def output_cuts(notebook: NotebookNode | None, limit: int) -> list[dict[str, Any]]:
    """What the grader did not keep of each cell's outputs while it ran (``metadata.grader.output_cut``, grader/kernel/execute.py)."""
    found: list[dict[str, Any]] = []
    for index, cell in enumerate(notebook.cells if notebook is not None else []):
        cut = cell.get("metadata", {}).get("grader", {}).get("output_cut") if isinstance(cell.get("metadata"), dict) else None
        if isinstance(cut, dict) and len(found) < limit:
            found.append({"cell": index, "note": cut_text(str(cut.get("note", "")), 500)})
    return found


def _bounded_result(result: GradeResult, level: Level) -> tuple[GradeResult, list[str]]:
    """The result as the page draws it: cell tables and their texts cut to the level; what was cut, in words."""
    notes = []
    execution = result.execution
    cells = [dataclasses.replace(c, error=cut_text(str(c.error), min(level.text, 2_000))) for c in execution.cells[: level.cells]]
    if len(execution.cells) > level.cells:
        notes.append(f"the per-cell tables show the first {level.cells:,} of {len(execution.cells):,} code cells")
    neutralized = [dataclasses.replace(n, source=cut_text(str(n.source), 500)) for n in execution.neutralized[: level.cells]]
    if len(execution.neutralized) > level.cells:
        notes.append(f"{len(execution.neutralized) - level.cells:,} more neutralized lines are not listed")
    execution = dataclasses.replace(
        execution, message=cut_text(str(execution.message), max(level.text, 2_000)), cells=cells, neutralized=neutralized
    )
    return dataclasses.replace(result, execution=execution), notes


def _outputs_cut(notebook: NotebookNode | None) -> dict[str, Any]:
    """What grader/kernel/shrink.py left out of a notebook (``metadata.grader.outputs_cut``), if anything."""
    metadata = notebook.get("metadata", {}) if notebook is not None else {}
    cut = metadata.get("grader", {}).get("outputs_cut") if isinstance(metadata.get("grader"), dict) else None
    return cut if isinstance(cut, dict) else {}


def _context(result: GradeResult, notebook: NotebookNode | None, level: Level) -> dict[str, Any]:
    shown, notes = _bounded_result(result, level)
    kept = _outputs_cut(notebook)
    notebook_for_page: NotebookNode | None = notebook
    if notebook is not None and level.notebook_bytes:
        page_copy = shrink_outputs(notebook, level.notebook_bytes)
        cut = _outputs_cut(page_copy)
        if cut.get("limit_bytes") == level.notebook_bytes:  # this copy left outputs out
            notes.append(
                f"the notebook as it ran is shown below with {level.notebook_bytes / 1e6:g} MB of its outputs "
                f"({cut.get('outputs', 0):,} left out there); the copy in notebooks/ keeps up to 10 MB"
            )
        notebook_for_page = page_copy
    if level is not LEVELS[0]:
        notes.insert(
            0,
            f"this report was cut to stay under {REPORT_LIMIT / 1e6:g} MB: "
            + ("the notebook as it ran is not shown, and " if not level.notebook_bytes else "")
            + f"every text is cut to {level.text:,} characters",
        )
    if notebook is not None and not level.notebook_bytes:
        notes.append("the notebook as it ran is kept beside this report (notebooks/), with outputs up to 10 MB")
    if kept:
        notes.append(
            f"{kept.get('outputs', 0):,} outputs of {kept.get('cells', 0):,} cells (about {kept.get('bytes', 0):,} bytes) "
            "were left out of the executed notebook, which keeps 10 MB of outputs"
        )
    percent = 100 * result.score / result.max_score if result.max_score else 0.0
    return dict(
        r=shown,
        percent=percent,
        sections=sections_view(result, notebook, level),
        timeline=timeline_view(shown),
        notebook_html=executed_notebook_html(notebook_for_page, level.notebook_bytes),
        cut_notes=notes,
        output_cuts=output_cuts(notebook, level.cells),
        observed_device=describe(result.execution.observed_device),
    )


def _render_within(template: Any, context: dict[str, Any], limit: int) -> str | None:
    """The page if it fits ``limit`` bytes; None as soon as the pieces rendered so far exceed it."""
    pieces, size = [], 0
    stream = template.generate(**context)
    try:
        for piece in stream:
            size += len(piece.encode("utf-8"))
            if size > limit:
                return None
            pieces.append(piece)
    finally:
        stream.close()
    return "".join(pieces)


def render_report(result: GradeResult, notebook: NotebookNode | None, limit: int = REPORT_LIMIT) -> str:
    """The report's page, at most ``limit`` bytes: each :data:`LEVELS` in turn until one fits, else a page of the totals."""
    template = environment().get_template("report.html.j2")
    for level in LEVELS:
        page = _render_within(template, _context(result, notebook, level), limit)
        if page is not None:
            return page
    from html import escape

    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(result.assignment)}</title></head><body>"
        f"<p>{escape(str(result.submission))[:500]}: {result.score:g} / {result.max_score:g}</p>"
        f"<p>This report could not be drawn within {limit / 1e6:g} MB; the result file has every verdict.</p>"
        "</body></html>"
    )


def notebook_path(json_path: Path) -> Path:
    """Where the executed notebook of the result at ``json_path`` is kept."""
    return json_path.parent / "notebooks" / f"{json_path.stem}.ipynb"


def html_path(json_path: Path) -> Path:
    return json_path.with_suffix(".html")


def read_executed(json_path: Path) -> NotebookNode | None:
    try:
        return nbformat.read(str(notebook_path(json_path)), as_version=4)
    except Exception:  # a missing or unreadable copy only costs the report its notebook section
        return None


def up_to_date(json_path: Path) -> bool:
    """The report exists and is newer than its result (and the executed notebook)."""
    target = html_path(json_path)
    try:
        made = target.stat().st_mtime_ns
        return all(made >= p.stat().st_mtime_ns for p in (json_path, notebook_path(json_path)) if p.exists())
    except OSError:
        return False


def write_report(result: GradeResult, json_path: Path) -> Path:
    target = html_path(json_path)
    write_atomic(target, render_report(result, read_executed(json_path)))
    return target


def ensure_reports(results: Iterable[tuple[GradeResult, Path]]) -> list[Path]:
    """Write each result's report unless an up-to-date one exists (a cached rerun renders nothing)."""
    written = []
    for result, json_path in results:
        if up_to_date(json_path):
            continue
        try:
            written.append(write_report(result, json_path))
        except Exception as exc:  # a report that cannot be drawn must not cost the batch its results
            print(f"grade: could not write the report for {json_path.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
    return written
