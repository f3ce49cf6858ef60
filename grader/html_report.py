"""The per-submission HTML report: what a student reads to see what is wrong.

Rendered with jinja2 from the result (schema 1) and the notebook as it ran;
all markup lives in ``grader/templates/``, this module only prepares the
view: evidence tables, figures, the student's cells. The page is
self-contained (inline CSS, images as data URIs) and its Content-Security-
Policy forbids scripts and any network request, so nothing a notebook put
into its outputs can run in, or change, the report. The notebook itself is
shown in a sandboxed ``<iframe srcdoc>`` for the same reason.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader.device import describe
from grader.results import GradeResult, QuestionResult, write_atomic

TEMPLATES = Path(__file__).with_name("templates")
STATUS_LABEL = {"pass": "pass", "fail": "fail", "error": "error", "missing": "missing", "manual": "TA grades",
                "environment": "not graded: grader's environment"}  # fmt: skip
#: Details rendered by a dedicated part of the template (everything else is listed as-is).
SHOWN_ELSEWHERE = {
    "expected", "got", "expected_shape", "got_shape", "tolerance", "difference_map", "first_difference", "example",
    "exception", "cell", "line", "code", "traceback", "layers", "first_diverging_layer", "loss_curves", "rebound",
    "answer", "note", "notebook_cell", "seconds", "policy", "grader_traceback", "snapshot_cell", "module_types", "message",
}  # fmt: skip


def environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = _number
    env.filters["code"] = inline_code
    env.filters["basename"] = lambda path: Path(str(path)).name or str(path)
    env.filters["points"] = lambda v: f"{v:g}"
    env.globals["css"] = (TEMPLATES / "report.css").read_text(encoding="utf-8")
    return env


def inline_code(text: Any):
    """Escape ``text`` and show its `backticked` parts as code and its ``$...$`` formulas as MathML
    (outside the code), as the titles and messages are written (``grader/mathml.py``)."""
    from grader.mathml import text_html

    return text_html(text)


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}" if isinstance(value, float) else str(value)


# --------------------------------------------------------------------------- evidence


def _planes(data: Any) -> list[list[list[Any]]]:
    """A nested list as 2-D planes (a 1-D list is one row; leading dimensions are flattened)."""
    if not isinstance(data, list):
        return [[[data]]]
    if not data or not isinstance(data[0], list):
        return [[data]]
    if not data[0] or not isinstance(data[0][0], list):
        return [data]
    return [plane for item in data for plane in _planes(item)]


def tensor_view(expected: Any, got: Any, tolerance: dict | None) -> dict[str, Any] | None:
    """Expected and got side by side as tables, entries that differ marked (same shape only)."""
    if not isinstance(expected, list) and not isinstance(got, list):
        return None
    tol = tolerance or {"rtol": 1e-4, "atol": 1e-4}
    want, have = _planes(expected), _planes(got) if isinstance(got, list) else None
    same_shape = have is not None and [[len(r) for r in p] for p in want] == [[len(r) for r in p] for p in have]

    def differs(w: Any, g: Any) -> bool:
        try:
            return not abs(float(g) - float(w)) <= tol["atol"] + tol["rtol"] * abs(float(w))
        except (TypeError, ValueError):
            return w != g

    def cells(plane, other) -> list[list[dict]]:
        return [
            [{"text": _number(v), "differs": same_shape and differs(v, other[r][c])} for c, v in enumerate(row)]
            for r, row in enumerate(plane)
        ]

    return {
        "expected": [cells(p, h) for p, h in zip(want, have)] if same_shape else [cells(p, None) for p in want],
        "got": [cells(p, w) for p, w in zip(have, want)] if same_shape else [cells(p, None) for p in have or []],
        "got_text": None if have is not None else str(got),
        "same_shape": same_shape,
    }


def cell_view(notebook: NotebookNode | None, index: Any, line: Any = None, code: str = "") -> dict[str, Any] | None:
    """The student's cell with the raising line marked (found by number, else by its text)."""
    if notebook is None or not isinstance(index, int) or not 0 <= index < len(notebook.cells):
        return None
    lines = notebook.cells[index].source.splitlines()
    mark = None
    if isinstance(line, int) and 1 <= line <= len(lines) and (not code or lines[line - 1].strip() == code.strip()):
        mark = line
    elif code.strip():
        mark = next((i + 1 for i, text in enumerate(lines) if text.strip() == code.strip()), None)
    return {"index": index, "lines": [{"number": i + 1, "text": text, "marked": i + 1 == mark} for i, text in enumerate(lines)],
            "unmatched_code": code.strip() if code.strip() and mark is None else ""}  # fmt: skip


def notebook_images(notebook: NotebookNode | None, index: Any) -> list[str]:
    """PNG/JPEG outputs of one cell (the notebook's own training plots), as data URIs."""
    if notebook is None or not isinstance(index, int) or not 0 <= index < len(notebook.cells):
        return []
    images = []
    for output in notebook.cells[index].get("outputs", []):
        data = output.get("data", {}) if isinstance(output.get("data"), dict) else {}
        for mime in ("image/png", "image/jpeg"):
            value = data.get(mime)
            if isinstance(value, str) and value.strip():
                images.append(f"data:{mime};base64,{''.join(value.split())}")
    return images


def render_markdown(text: str) -> str:
    """The student's prose as HTML; raw HTML in it is escaped, not rendered; LaTeX becomes MathML."""
    import mistune

    from grader.mathml import math_plugin

    return mistune.create_markdown(escape=True, plugins=["table", "strikethrough", math_plugin])(text or "")


def question_view(q: QuestionResult, notebook: NotebookNode | None) -> dict[str, Any]:
    from grader import figures

    d = q.details
    label = "graded by TA" if q.status == "manual" and q.ta_points is not None else STATUS_LABEL.get(q.status, q.status)
    view: dict[str, Any] = {"q": q, "label": label, "details": d}
    view["tensors"] = tensor_view(d.get("expected"), d.get("got"), d.get("tolerance")) if "expected" in d else None
    difference = d.get("difference_map")
    view["heatmap"] = (
        figures.heatmap(difference["values"], f"|got − expected| at [{', '.join(map(str, difference['slice']))}]")
        if isinstance(difference, dict) and difference.get("values") else None
    )  # fmt: skip
    view["error_cell"] = cell_view(notebook, d.get("cell"), d.get("line"), str(d.get("code") or "")) if "exception" in d else None
    layers = d.get("layers")
    view["layers"] = layers if isinstance(layers, list) else None
    curves = d.get("loss_curves")
    view["loss_plot"] = (
        figures.loss_curves(curves, f"{q.id}: loss per step under the grader's fixed procedure")
        if isinstance(curves, dict) and any(curves.values()) else None
    )  # fmt: skip
    view["notebook_plots"] = notebook_images(notebook, d.get("notebook_cell"))
    view["answer_html"] = render_markdown(d.get("answer", "")) if q.status == "manual" else ""
    view["other"] = {k: v for k, v in d.items() if k not in SHOWN_ELSEWHERE}
    return view


def section_key(number: str) -> tuple:
    return tuple(int(p) if p.isdigit() else p for p in number.split(".")) if number else (10**6,)


def sections_view(result: GradeResult, notebook: NotebookNode | None) -> list[dict[str, Any]]:
    numbers = sorted({q.section for q in result.questions}, key=section_key)
    return [
        {"number": n, "title": result.sections.get(n, ""),
         "questions": [question_view(q, notebook) for q in result.questions if q.section == n]}
        for n in numbers
    ]  # fmt: skip


# --------------------------------------------------------------------------- the page


def timeline_view(result: GradeResult) -> list[dict[str, Any]]:
    cells = result.execution.cells
    longest = max((c.seconds for c in cells), default=0.0) or 1.0
    return [{"cell": c, "width": max(0.5, 100 * c.seconds / longest)} for c in cells]


def executed_notebook_html(notebook: NotebookNode | None) -> str:
    """The notebook as it ran (nbconvert's basic template) as a full page for a sandboxed iframe."""
    if notebook is None:
        return ""
    from nbconvert import HTMLExporter
    from pygments.formatters import HtmlFormatter

    body, _ = HTMLExporter(template_name="basic").from_notebook_node(notebook)
    style = HtmlFormatter().get_style_defs(".highlight")
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        "<meta http-equiv='Content-Security-Policy' content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">"
        f"<style>{style}\n{(TEMPLATES / 'notebook.css').read_text(encoding='utf-8')}</style></head>"
        f"<body>{body}</body></html>"
    )


def render_report(result: GradeResult, notebook: NotebookNode | None) -> str:
    percent = 100 * result.score / result.max_score if result.max_score else 0.0
    return environment().get_template("report.html.j2").render(
        r=result, percent=percent, sections=sections_view(result, notebook), timeline=timeline_view(result),
        notebook_html=executed_notebook_html(notebook), observed_device=describe(result.execution.observed_device),
    )  # fmt: skip


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

