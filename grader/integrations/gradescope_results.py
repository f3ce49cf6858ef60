"""Gradescope's ``results.json`` for one graded notebook (``grade NOTEBOOK --gradescope results.json``).

Only ``/autograder/results/results.json`` reaches Gradescope (the autograder's stdout is kept for
instructors), so every piece of evidence a student needs is written into it as text: the spec
(gradescope-autograders.readthedocs.io, "Autograder Specifications") has no way to attach a file, and
the HTML report stays in the container.

``results.json`` maps one :class:`GradeResult`: a test per question (``passed``/``failed``), hidden
questions shown after the grades are published, manual questions at 0/max with a note that a TA grades
them, and execution problems -- above all ``environment_error``, where nothing was graded -- in the
top-level output. ``grader/integrations/schemas/gradescope-results.schema.json`` is the documented format as a JSON
Schema; the tests validate every result against it. The bundle that writes it on Gradescope's machines
is ``grader/integrations/gradescope_bundle.py``.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from grader.results import GradeResult, QuestionResult, write_atomic

SCHEMA_PATH = Path(__file__).with_name("schemas") / "gradescope-results.schema.json"
#: A test's output is capped so one huge traceback cannot make results.json unwieldy.
OUTPUT_LIMIT = 20_000

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
REPORT_NOTE = (
    "The grader's HTML report (tensors side by side, heat-maps, loss plots, your notebook as it ran) "
    "cannot be attached here: Gradescope's autograder results carry text only. Each test below shows the "
    "same evidence as text; your TA can produce the full report with the same grader."
)


def results_json(result: GradeResult, hidden: Iterable[str] = (), notebook: Any = None, note: str = "") -> dict[str, Any]:
    """``result`` in Gradescope's results format.

    ``hidden``: ids of the assignment's hidden questions (shown to students once the grades are
    published); ``notebook``: the notebook as it ran (for the student's cell at an exception);
    ``note``: a line put first in the top-level output (``run_autograder`` names ignored notebooks there).
    """
    hidden = set(hidden)
    tests = [_test(q, result, notebook, q.id in hidden) for q in result.questions]
    return {
        "score": _points(result.score),
        "execution_time": int(round(result.grading_seconds or result.execution.seconds)),
        "output": top_level_output(result, note),
        "output_format": "simple_format",
        "test_output_format": "text",
        "test_name_format": "text",
        "tests": tests,
        "extra_data": {
            "submission": result.submission,
            "sha256": result.sha256,
            "assignment": result.assignment,
            "grader_version": result.grader_version,
            "budget": result.budget,
            "device": result.device,
            "execution_status": result.execution.status,
            "max_score": _points(result.max_score),
            "manual_points_pending": _points(result.manual_points_pending),
            "hidden_questions_not_run": result.hidden_questions_not_run,
        },
    }


def write_results_json(result: GradeResult, path: Path, hidden: Iterable[str] = (), executed: Path | None = None, note: str = "") -> Path:
    """Write ``results.json`` for ``result`` (atomically); ``executed``: the executed notebook, where kept."""
    notebook = None
    if executed is not None:
        try:
            import nbformat

            notebook = nbformat.read(str(executed), as_version=4)
        except Exception:  # a missing copy only costs the tests their cell listings
            notebook = None
    data = results_json(result, hidden, notebook, note)
    write_atomic(Path(path), json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return Path(path)


def _points(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(float(value), 4)


def _test(q: QuestionResult, result: GradeResult, notebook: Any, hidden: bool) -> dict[str, Any]:
    pending = q.pending_ta
    if q.status == "pass":
        status = "passed"
    elif q.status == "manual":  # a TA's question: never red for want of a TA; red only when a TA gave less than all
        status = "passed" if pending or q.points >= q.max_points else "failed"
    else:  # fail, missing, error -- and environment: not graded, which must not look like success
        status = "failed"
    test = {
        "name": (f"{q.section} " if q.section else "") + q.title + (" (graded by a TA)" if q.status == "manual" else ""),
        "score": _points(0 if pending or q.status == "environment" else q.points),
        "max_score": _points(q.max_points),
        "status": status,
        "output": question_output(q, result, notebook),
        "visibility": "after_published" if hidden else "visible",
        "extra_data": {"id": q.id, "status": q.status, "section": q.section},
    }
    return test


def question_output(q: QuestionResult, result: GradeResult | None = None, notebook: Any = None) -> str:
    """The evidence the HTML report shows for one question, as plain text (message, expected vs got, the cell)."""
    from grader.reports.evidence_words import evidence_in_words
    from grader.reports.html_report import SHOWN_ELSEWHERE, STATUS_LABEL, cell_view, tensor_view

    d = q.details
    lines: list[str] = []
    if q.status == "environment":
        why = result.execution.message if result is not None else ""
        lines += [
            "NOT GRADED: the grader's environment, not your code, kept this notebook from being graded"
            + (f" ({why})" if why else "")
            + ".",
            "No points were taken for it; your instructor has to run the autograder again.",
        ]
    elif q.status == "manual":
        if q.ta_points is None:
            lines.append(
                f"A TA grades this question by hand: its {q.max_points:g} points are not counted until then (0 here is not a verdict)."
            )
        else:
            lines.append(f"TA points: {q.ta_points:g} / {q.max_points:g}" + (f" -- {q.ta_comment}" if q.ta_comment else ""))
    else:
        lines.append(f"{STATUS_LABEL.get(q.status, q.status)}: {q.points:g} / {q.max_points:g} points")
    if q.message:
        lines.append(_plain(q.message))
    for key in ("rebound", "policy"):
        if d.get(key):
            lines.append(("FLAG: " if key == "policy" else "") + _plain(d[key]))
    evidence = evidence_in_words(q.status, d, {k: v for k, v in d.items() if k not in SHOWN_ELSEWHERE}, str(q.message))
    if evidence.sentence:
        lines.append(_plain(evidence.sentence))
    if "expected_shape" in d and "got_shape" in d:
        lines.append(f"shape: expected {json.dumps(d['expected_shape'])}, got {json.dumps(d['got_shape'])}")
    if "expected" in d:
        lines += _tensors_text(tensor_view(d.get("expected"), d.get("got"), d.get("tolerance")), d)
    if "first_difference" in d:
        lines.append(f"first difference at {json.dumps(d['first_difference'])}")
    if "example" in d:
        lines += ["smallest failing example (shrunk by Hypothesis):", _indent(str(d["example"]))]
    if "exception" in d:
        lines += _exception_text(d, cell_view(notebook, d.get("cell"), d.get("line"), str(d.get("code") or "")))
    if isinstance(d.get("layers"), list):
        lines += _layers_text(d["layers"], d.get("first_diverging_layer"))
    if isinstance(d.get("loss_curves"), dict):
        lines += _curves_text(d["loss_curves"])
    if q.status == "manual" and "answer" in d:
        answer = str(d.get("answer") or "").strip()
        where = f" (cell {d['cell']})" if isinstance(d.get("cell"), int) else ""
        lines += (
            [f"your answer{where}:", _indent(answer)]
            if answer
            else [f"No answer found{' (' + str(d['note']) + ')' if d.get('note') else ''}."]
        )
    lines += [_key_value(key, value) for key, value in evidence.other.items()]
    if evidence.numbers:  # the numbers the sentence was made from, for whoever reproduces the verdict
        lines += ["the numbers behind this:", *(_indent(_key_value(key, value)) for key, value in evidence.numbers.items())]
    if d.get("grader_traceback"):
        lines += ["the check's own error (for the TA):", _indent(_plain(d["grader_traceback"]))]
    text = "\n".join(line.rstrip() for line in lines)
    return text if len(text) <= OUTPUT_LIMIT else text[: OUTPUT_LIMIT - 40] + "\n... (cut; the full text is in the grader's report)"


def _key_value(key: str, value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return f"{key}: {_shorten(text, 600)}"


def _plain(text: Any) -> str:
    return _ANSI.sub("", str(text))


def _indent(text: str, by: str = "    ") -> str:
    return "\n".join(by + line for line in str(text).splitlines()) or by


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _grid(planes: list[list[list[dict]]], mark: bool) -> list[str]:
    """Planes of cells (``tensor_view``'s) as aligned text; differing entries get a ``*``."""
    out: list[str] = []
    for p, plane in enumerate(planes):
        if p:
            out.append("")
        width = max((len(c["text"]) for row in plane for c in row), default=1)
        if mark:  # a column for the marks, so that marked and unmarked entries stay aligned
            out += ["    " + " ".join(c["text"].rjust(width) + ("*" if c["differs"] else " ") for c in row) for row in plane]
        else:
            out += ["    " + "  ".join(c["text"].rjust(width) for c in row) for row in plane]
    return out


def _tensors_text(view: dict | None, d: dict) -> list[str]:
    if view is None:  # not lists: a description ("(3, 3) tensor") or a scalar
        lines = [f"expected: {_shorten(str(d.get('expected')), 600)}"]
        return lines + ([f"got: {_shorten(str(d.get('got')), 600)}"] if "got" in d else [])
    lines = ["expected:", *_grid(view["expected"], False)]
    if view["got_text"] is not None:
        return lines + [f"got: {_shorten(view['got_text'], 600)}"]
    marked = view["same_shape"] and any(c["differs"] for plane in view["got"] for row in plane for c in row)
    return lines + [f"got{' (entries that differ marked *)' if marked else ''}:", *_grid(view["got"], True)]


def _exception_text(d: dict, cell: dict | None) -> list[str]:
    where = f" in cell {d['cell']}" if d.get("cell") is not None else ""
    where += f", line {d['line']}" if d.get("cell") is not None and d.get("line") else ""
    lines = [f"{d['exception']}{where}"]
    if cell:
        width = len(str(len(cell["lines"])))
        lines += [f"{'>>' if line['marked'] else '  '} {str(line['number']).rjust(width)} | {line['text']}" for line in cell["lines"]]
        if cell["unmatched_code"]:
            lines.append(f"raised at: {cell['unmatched_code']}")
    elif d.get("code"):
        lines.append(f"raised at: {d['code']}")
    if d.get("traceback"):
        lines += ["traceback:", _indent(_plain(d["traceback"]).rstrip())]
    return lines


def _layers_text(layers: list, diverging: Any) -> list[str]:
    rows = [("#", "your layer", "your output", "reference layer", "reference output")]
    for row in layers:
        if not isinstance(row, dict):
            continue
        student, reference = row.get("student") or {}, row.get("reference") or {}
        rows.append(
            (
                str(row.get("layer", "")),
                str(student.get("kind", "missing")),
                json.dumps(student.get("shape")) if student else "",
                str(reference.get("kind", "")),
                json.dumps(reference.get("shape")),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["layer by layer: yours vs the reference"]
    for r in rows:
        marker = "  <- first layer that differs" if diverging is not None and r[0] == str(diverging) else ""
        lines.append("    " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() + marker)  # 5 columns each
    return lines


def _curves_text(curves: dict) -> list[str]:
    lines = []
    for who, values in curves.items():
        if isinstance(values, list) and values:
            lines.append(f"loss under the grader's fixed procedure ({who}): {values[0]:.4g} -> {values[-1]:.4g} over {len(values)} steps")
    return lines


def top_level_output(result: GradeResult, note: str = "") -> str:
    """What Gradescope shows above the tests (``simple_format``: every line escaped, newlines kept)."""
    blocks: list[str] = []
    if note:
        blocks.append(f"<strong>{html.escape(note, quote=False)}</strong>")
    execution = result.execution
    if result.environment_problem:
        blocks.append(
            "<strong>NOT GRADED: the grader's environment, not your code, kept this notebook from being graded"
            f" ({html.escape(_plain(result.environment_reason), quote=False)}). No points were taken; the score below is not a grade. "
            "Your instructor has to run the autograder again.</strong>"
        )
    lines = [f"{result.assignment}: {result.score:g} / {result.max_score:g} auto-graded points"]
    if result.manual_points_pending:
        lines.append(f"+ {result.manual_points_pending:g} points a TA grades by hand (not counted yet)")
    if result.hidden_questions_not_run:
        lines.append(f"{result.hidden_questions_not_run} hidden question(s) were not run (their checks are not in this autograder)")
    blocks.append("\n".join(html.escape(line, quote=False) for line in lines))
    if execution.status != "ok" and not result.environment_problem:
        problem = {
            "timeout": "The notebook ran out of time",
            "crashed": "The grading of this notebook crashed",
            "invalid": "The notebook could not be read",
            "error": "Some cells raised an error",
        }.get(execution.status, execution.status)
        blocks.append(
            html.escape(
                f"Execution {execution.status}: {problem}" + (f": {_plain(execution.message)}" if execution.message else ""), quote=False
            )
        )
    failed = [c for c in execution.cells if c.status != "ok" and c.error]
    if failed:
        shown = [f"cell {c.index} ({c.status}): {_shorten(_plain(c.error), 300)}" for c in failed[:10]]
        more = [f"... and {len(failed) - 10} more"] if len(failed) > 10 else []
        blocks.append(html.escape("\n".join(["Cells that did not finish cleanly:", *shown, *more]), quote=False))
    if execution.neutralized:
        shown = [f"cell {n.cell}, line {n.line + 1}: {_shorten(n.source.strip(), 120)} ({n.reason})" for n in execution.neutralized[:10]]
        blocks.append(html.escape("\n".join(["Lines the grader did not run:", *shown]), quote=False))
    blocks.append(html.escape(REPORT_NOTE, quote=False))
    return "\n\n".join(blocks)
