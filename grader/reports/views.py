"""What a report draws one question's evidence from: its tables, the student's cell, plots, prose, details cut to size.

Why apart from :mod:`grader.reports.html_report`: these turn a result's values into plain data a
template shows, one piece at a time, and know nothing of pages, levels or the size limit;
Gradescope's results (:mod:`grader.integrations.gradescope_results`) draw the same evidence as text
from the same pieces. :mod:`grader.reports.html_report` re-exports every name here.
"""

from __future__ import annotations

import math
from typing import Any, cast

from markupsafe import Markup
from nbformat import NotebookNode

from grader.kernel.shrink import cut_text
from grader.results import QuestionStatus

#: A status's word in a report, from the one display table (``grader.results.QuestionStatus``).
STATUS_LABEL = {status.value: status.label for status in QuestionStatus}
#: Details rendered by a dedicated part of the template (everything else is listed as-is).
SHOWN_ELSEWHERE = {
    "expected",
    "got",
    "expected_shape",
    "got_shape",
    "tolerance",
    "difference_map",
    "first_difference",
    "example",
    "exception",
    "cell",
    "line",
    "code",
    "traceback",
    "layers",
    "first_diverging_layer",
    "loss_curves",
    "rebound",
    "answer",
    "note",
    "notebook_cell",
    "seconds",
    "policy",
    "grader_traceback",
    "snapshot_cell",
    "module_types",
    "message",
}


def inline_code(text: Any) -> Markup:
    """Escape ``text`` and show its `backticked` parts as code and its ``$...$`` formulas as MathML
    (outside the code), as the titles and messages are written (``grader/reports/mathml.py``)."""
    from grader.reports.mathml import text_html

    return text_html(text)


def format_number(value: Any) -> str:
    """A number as a report shows it (floats to 4 significant digits); anything else as ``str`` gives it."""
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
            [{"text": format_number(v), "differs": same_shape and differs(v, other[r][c])} for c, v in enumerate(row)]
            for r, row in enumerate(plane)
        ]

    return {
        "expected": [cells(p, h) for p, h in zip(want, have or [], strict=True)] if same_shape else [cells(p, None) for p in want],
        "got": [cells(p, w) for p, w in zip(have or [], want, strict=True)] if same_shape else [cells(p, None) for p in have or []],
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
    return {
        "index": index,
        "lines": [{"number": i + 1, "text": text, "marked": i + 1 == mark} for i, text in enumerate(lines)],
        "unmatched_code": code.strip() if code.strip() and mark is None else "",
    }


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

    from grader.reports.mathml import math_plugin

    html = mistune.create_markdown(escape=True, plugins=["table", "strikethrough", math_plugin])(text or "")
    return cast(str, html)  # the HTML renderer returns text (a list is the AST renderer's)


def trimmed(value: Any, text: int, items: int, depth: int = 8) -> Any:
    """A copy of a JSON-like value with every string, list and mapping cut (and nesting below ``depth`` dropped)."""
    if isinstance(value, str):
        return cut_text(value, text)
    if isinstance(value, (list, tuple, dict)) and (depth <= 0 or items <= 0):
        return f"[{len(value):,} items not shown]"
    if isinstance(value, (list, tuple)):
        shown = [trimmed(v, text, items, depth - 1) for v in value[:items]]
        return shown + [f"… {len(value) - items:,} more"] if len(value) > items else shown
    if isinstance(value, dict):
        kept = {cut_text(str(k), 200): trimmed(v, text, items, depth - 1) for k, v in list(value.items())[:items]}
        if len(value) > items:
            kept["…"] = f"{len(value) - items:,} more"
        return kept
    return value
