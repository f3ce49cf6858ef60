"""Gradescope: the autograder bundle (``grade gradescope NAME -o autograder.zip``) and ``results.json``.

Gradescope's autograder specification (gradescope-autograders.readthedocs.io, "Autograder
Specifications"): a zip with ``setup.sh`` and ``run_autograder`` at its root; the zip is unpacked into
``/autograder/source``, ``setup.sh`` runs once, as root, when Gradescope builds the image (Ubuntu), and
``run_autograder`` runs for every submission with the student's files in ``/autograder/submission``
and must leave ``/autograder/results/results.json``. Only that file reaches Gradescope (the script's
stdout is kept for instructors), so every piece of evidence a student needs is written into it as text:
the spec has no way to attach a file, and the HTML report stays in the container.

``results.json`` maps one :class:`GradeResult`: a test per question (``passed``/``failed``), hidden
questions shown after the grades are published, manual questions at 0/max with a note that a TA grades
them, and execution problems -- above all ``environment_error``, where nothing was graded -- in the
top-level output. ``grader/schemas/gradescope-results.schema.json`` is the documented format as a JSON
Schema; the tests validate every result against it.
"""

from __future__ import annotations

import html
import json
import re
import shlex
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import __version__
from grader.results import GradeResult, QuestionResult, write_atomic

SCHEMA_PATH = Path(__file__).with_name("schemas") / "gradescope-results.schema.json"
#: What the bundle installs: the releases the README pins, on the Python the project requires.
PYTHON = "3.11"
TORCH = "torch==2.14.1"
TORCHVISION = "torchvision==0.29.1"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Whole-notebook limit (seconds) a bundle passes to ``grade --timeout`` unless told otherwise: Gradescope
#: stops a run at 10 minutes by default, and a run it stops leaves no results.json at all.
DEFAULT_TIMEOUT = 420
#: Fashion-MNIST files torchvision reads (``<data>/FashionMNIST/raw``).
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
#: A test's output is capped so one huge traceback cannot make results.json unwieldy.
OUTPUT_LIMIT = 20_000

_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
REPORT_NOTE = (
    "The grader's HTML report (tensors side by side, heat-maps, loss plots, your notebook as it ran) "
    "cannot be attached here: Gradescope's autograder results carry text only. Each test below shows the "
    "same evidence as text; your TA can produce the full report with the same grader."
)


# --------------------------------------------------------------------------- results.json


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
            "submission": result.submission, "sha256": result.sha256, "assignment": result.assignment,
            "grader_version": result.grader_version, "budget": result.budget, "device": result.device,
            "execution_status": result.execution.status, "max_score": _points(result.max_score),
            "manual_points_pending": _points(result.manual_points_pending),
            "hidden_questions_not_run": result.hidden_questions_not_run,
        },  # fmt: skip
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
    from grader.html_report import SHOWN_ELSEWHERE, STATUS_LABEL, cell_view, tensor_view

    d = q.details
    lines: list[str] = []
    if q.status == "environment":
        why = result.execution.message if result is not None else ""
        lines += ["NOT GRADED: the grader's environment, not your code, kept this notebook from being graded"
                  + (f" ({why})" if why else "") + ".", "No points were taken for it; your instructor has to run the autograder again."]  # fmt: skip
    elif q.status == "manual":
        if q.ta_points is None:
            lines.append(f"A TA grades this question by hand: its {q.max_points:g} points are not counted until then (0 here is not a verdict).")
        else:
            lines.append(f"TA points: {q.ta_points:g} / {q.max_points:g}" + (f" -- {q.ta_comment}" if q.ta_comment else ""))
    else:
        lines.append(f"{STATUS_LABEL.get(q.status, q.status)}: {q.points:g} / {q.max_points:g} points")
    if q.message:
        lines.append(_plain(q.message))
    for key in ("rebound", "policy"):
        if d.get(key):
            lines.append(("FLAG: " if key == "policy" else "") + _plain(d[key]))
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
        lines += [f"your answer{where}:", _indent(answer)] if answer else [f"No answer found{' (' + str(d['note']) + ')' if d.get('note') else ''}."]
    other = {k: v for k, v in d.items() if k not in SHOWN_ELSEWHERE}
    for key, value in other.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        lines.append(f"{key}: {_shorten(text, 600)}")
    if d.get("grader_traceback"):
        lines += ["the check's own error (for the TA):", _indent(_plain(d["grader_traceback"]))]
    text = "\n".join(line.rstrip() for line in lines)
    return text if len(text) <= OUTPUT_LIMIT else text[: OUTPUT_LIMIT - 40] + "\n... (cut; the full text is in the grader's report)"


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
        rows.append((str(row.get("layer", "")), str(student.get("kind", "missing")), json.dumps(student.get("shape")) if student else "",
                     str(reference.get("kind", "")), json.dumps(reference.get("shape"))))  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    lines = ["layer by layer: yours vs the reference"]
    for r in rows:
        marker = "  <- first layer that differs" if diverging is not None and r[0] == str(diverging) else ""
        lines.append("    " + "  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() + marker)
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
        blocks.append("<strong>NOT GRADED: the grader's environment, not your code, kept this notebook from being graded"
                      f" ({html.escape(_plain(execution.message), quote=False)}). No points were taken; the score below is not a grade. "
                      "Your instructor has to run the autograder again.</strong>")  # fmt: skip
    lines = [f"{result.assignment}: {result.score:g} / {result.max_score:g} auto-graded points"]
    if result.manual_points_pending:
        lines.append(f"+ {result.manual_points_pending:g} points a TA grades by hand (not counted yet)")
    if result.hidden_questions_not_run:
        lines.append(f"{result.hidden_questions_not_run} hidden question(s) were not run (their checks are not in this autograder)")
    blocks.append("\n".join(html.escape(line, quote=False) for line in lines))
    if execution.status != "ok" and not result.environment_problem:
        problem = {"timeout": "The notebook ran out of time", "crashed": "The grading of this notebook crashed",
                   "invalid": "The notebook could not be read", "error": "Some cells raised an error"}.get(execution.status, execution.status)  # fmt: skip
        blocks.append(html.escape(f"Execution {execution.status}: {problem}" + (f": {_plain(execution.message)}" if execution.message else ""), quote=False))
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


# --------------------------------------------------------------------------- the bundle


@dataclass
class Bundle:
    path: Path
    assignment: str
    files: list[str]
    data: bool


class BundleError(Exception):
    """The bundle cannot be built as asked (no such assignment, a data folder without the raw files...)."""


def build_bundle(assignment: str, output: Path, data_dir: Path | None = None, cuda: bool = False,
                 budget: str | None = None, timeout: float | None = DEFAULT_TIMEOUT) -> Bundle:  # fmt: skip
    """Write Gradescope's autograder zip for ``assignment`` (a name under ``assignments/`` or a folder).

    The zip holds ``setup.sh`` and ``run_autograder`` at its root, the grader's source (``grader/``,
    ``reference/``, ``pyproject.toml``, ``README.md``), the assignment's folder without its
    ``solution.ipynb`` (``checks_hidden.py`` included: this is the instructor's copy, hidden questions
    run), and with ``data_dir`` Fashion-MNIST's raw files under ``data/`` (else ``setup.sh`` downloads
    them when Gradescope builds the image).
    """
    from grader.assignment import load_assignment

    try:
        loaded = load_assignment(assignment)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    name = loaded.folder.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise BundleError(f"assignment folder name {name!r}: use letters, digits, '.', '_' or '-'")
    root = Path(__file__).resolve().parents[1]
    for needed in ("pyproject.toml", "README.md", "reference"):
        if not (root / needed).exists():
            raise BundleError(f"{root / needed} is missing: build the bundle from a checkout of hw-grader (pip install -e .)")
    raw = None
    if data_dir is not None:
        raw = Path(data_dir) / "FashionMNIST" / "raw"
        missing = [f for f in RAW_FILES if not (raw / f).is_file()]
        if missing:
            raise BundleError(f"{raw}: missing {', '.join(missing)} (Fashion-MNIST in torchvision's layout: <dir>/FashionMNIST/raw/*-ubyte)")
    device = "auto" if cuda else "cpu"
    budget = budget or ("auto" if cuda else "quick")
    entries: list[tuple[str, Path | str, int]] = [
        ("setup.sh", setup_script(cuda), 0o755),
        ("run_autograder", run_script(name, budget, device, timeout), 0o755),
        ("pyproject.toml", root / "pyproject.toml", 0o644),
        ("README.md", root / "README.md", 0o644),
    ]
    for package in ("grader", "reference"):
        entries += [(f"{package}/{p.relative_to(root / package).as_posix()}", p, 0o644) for p in _source_files(root / package)]
    entries += [(f"assignments/{name}/{p.relative_to(loaded.folder).as_posix()}", p, 0o644)
                for p in _source_files(loaded.folder) if p.relative_to(loaded.folder).as_posix() != "solution.ipynb"]  # fmt: skip
    if raw is not None:
        entries += [(f"data/FashionMNIST/raw/{f}", raw / f, 0o644) for f in RAW_FILES]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, source, mode in entries:
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))  # same inputs, same zip
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source if isinstance(source, str) else source.read_bytes())
    tmp.replace(output)
    return Bundle(output, name, [e[0] for e in entries], raw is not None)


def _source_files(folder: Path) -> list[Path]:
    """Files under ``folder`` worth shipping: no caches, no checkpoints, no hidden files."""
    skip = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"}
    return sorted(p for p in folder.rglob("*") if p.is_file() and not (skip & set(p.relative_to(folder).parts))
                  and not any(part.startswith(".") for part in p.relative_to(folder).parts) and p.suffix not in (".pyc", ".pyo"))  # fmt: skip


def setup_script(cuda: bool = False) -> str:
    """``setup.sh``: Gradescope runs it once, as root, when it builds the image (Ubuntu; apt available)."""
    index = "" if cuda else CPU_INDEX
    torch_note = ("# PyPI's Linux wheels of this release (CUDA builds): `grade gradescope --cuda`" if cuda
                  else "# CPU wheels from PyTorch's CPU index: Gradescope's machines have no GPU")  # fmt: skip
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu).
# Written by `grade gradescope` (hw-grader {__version__}). AUTOGRADER_ROOT moves /autograder elsewhere.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"
PYTHON=python{PYTHON}
{torch_note}
TORCH_INDEX="{index}"
export DEBIAN_FRONTEND=noninteractive PIP_ROOT_USER_ACTION=ignore PIP_NO_CACHE_DIR=1

apt-get update
# Python {PYTHON} (the project's requirement): Ubuntu's package where it has one, else the deadsnakes PPA.
if ! apt-get install -y --no-install-recommends "$PYTHON" "$PYTHON-venv"; then
    apt-get install -y --no-install-recommends software-properties-common gpg-agent
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y --no-install-recommends "$PYTHON" "$PYTHON-venv"
fi
# The sandbox every kernel runs in, where the container allows one (the result says which isolation was in force).
apt-get install -y --no-install-recommends bubblewrap || echo "setup.sh: bubblewrap not installed; kernels run without the sandbox"

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
if [ -n "$TORCH_INDEX" ]; then
    "$VENV/bin/python" -m pip install --index-url "$TORCH_INDEX" {TORCH} {TORCHVISION}
else
    "$VENV/bin/python" -m pip install {TORCH} {TORCHVISION}
fi
# The grader, editable: it finds its assignments beside its source (the torch installed above satisfies its range).
"$VENV/bin/python" -m pip install -e "$SOURCE"

# Fashion-MNIST: the bundle's copy (grade gradescope --data-dir), else torchvision's ordinary download, now,
# so that no submission waits for it.
if [ ! -d "$SOURCE/data/FashionMNIST/raw" ]; then
    "$VENV/bin/python" -c 'import sys; from torchvision import datasets; [datasets.FashionMNIST(sys.argv[1], train=t, download=True) for t in (True, False)]' "$SOURCE/data"
fi
"$VENV/bin/python" -m grader.cli --version
"""


def run_script(assignment: str, budget: str = "quick", device: str = "cpu", timeout: float | None = DEFAULT_TIMEOUT) -> str:
    """``run_autograder``: grades the submission's notebook and writes ``results/results.json``."""
    limit = f"{timeout:g}" if timeout else ""
    return f"""#!/usr/bin/env bash
# Gradescope runs this for every submission (working directory /autograder): it grades the notebook in
# submission/ and writes results/results.json. Written by `grade gradescope` (hw-grader {__version__}).
# Every path is under AUTOGRADER_ROOT (default /autograder); GRADER_PYTHON is the Python that runs the
# grader (default: the venv setup.sh made); GRADER_BUDGET, GRADER_DEVICE, GRADER_TIMEOUT and
# GRADER_DATA_DIR override what the bundle was built with.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
SUBMISSION="$ROOT/submission"
RESULTS="$ROOT/results"
REPORTS="${{GRADER_REPORTS:-$ROOT/reports}}"  # the grader's JSON, HTML report and executed notebook (not sent to Gradescope)
PY="${{GRADER_PYTHON:-$ROOT/venv/bin/python}}"
ASSIGNMENT={shlex.quote(assignment)}
BUDGET="${{GRADER_BUDGET:-{budget}}}"
DEVICE="${{GRADER_DEVICE:-{device}}}"
TIMEOUT="${{GRADER_TIMEOUT:-{limit}}}"
export GRADER_DATA_DIR="${{GRADER_DATA_DIR:-$SOURCE/data}}"
mkdir -p "$RESULTS"
rm -f "$RESULTS/results.json"

fallback() {{  # Gradescope shows nothing at all without results.json: always leave one
    if ! "$PY" -c 'import json, sys; json.dump({{"score": 0, "output": sys.argv[2], "output_format": "text", "tests": []}}, open(sys.argv[1], "w"))' \\
            "$RESULTS/results.json" "$1"; then
        printf '%s\\n' '{{"score": 0, "output": "The autograder could not run; tell your instructor.", "output_format": "text", "tests": []}}' \\
            > "$RESULTS/results.json"
    fi
}}

# The notebook: every *.ipynb below submission/ (checkpoints, hidden files and macOS zip debris skipped);
# the first in name order (of their paths) is graded, and results.json names the others.
mapfile -d '' NOTEBOOKS < <(find "$SUBMISSION" -type f -name '*.ipynb' -not -name '.*' -not -path '*/.ipynb_checkpoints/*' \\
    -not -path '*/__MACOSX/*' -print0 2>/dev/null | LC_ALL=C sort -z)
if [ "${{#NOTEBOOKS[@]}}" -eq 0 ]; then
    echo "run_autograder: no .ipynb in $SUBMISSION"
    fallback "No notebook (.ipynb) was found in your submission. Submit your homework notebook itself (in Jupyter or Colab: File > Download > .ipynb)."
    exit 0
fi
NOTEBOOK="${{NOTEBOOKS[0]}}"
NOTE=()
if [ "${{#NOTEBOOKS[@]}}" -gt 1 ]; then
    IGNORED=$(for nb in "${{NOTEBOOKS[@]:1}}"; do printf '%s, ' "${{nb#"$SUBMISSION"/}}"; done)
    NOTE=(--gradescope-note "Your submission holds ${{#NOTEBOOKS[@]}} notebooks; only the first by name, ${{NOTEBOOK#"$SUBMISSION"/}}, was graded (not graded: ${{IGNORED%, }}). Submit only your homework notebook.")
fi
LIMIT=()
[ -n "$TIMEOUT" ] && LIMIT=(--timeout "$TIMEOUT")

# The bundle's own grader: `python -m` and `-c` put the current folder first on Python's path.
cd "$SOURCE" || {{ fallback "The autograder's files are missing; tell your instructor."; exit 0; }}
"$PY" -c 'import sys, grader; print("run_autograder: hw-grader", grader.__version__, "from", grader.__file__, "on Python", sys.version.split()[0])'
echo "run_autograder: grading ${{NOTEBOOK#"$SUBMISSION"/}} ($ASSIGNMENT, budget $BUDGET, device $DEVICE, data $GRADER_DATA_DIR)"
"$PY" -m grader.cli run "$NOTEBOOK" --assignment "$ASSIGNMENT" \\
    --budget "$BUDGET" --device "$DEVICE" "${{LIMIT[@]}}" --out "$REPORTS" --force \\
    --gradescope "$RESULTS/results.json" "${{NOTE[@]}}"
STATUS=$?
echo "run_autograder: grade exited with status $STATUS"
if [ ! -s "$RESULTS/results.json" ]; then
    fallback "The autograder failed before it could grade your notebook (grade exited with status $STATUS). This is not a verdict on your work; tell your instructor."
fi
exit 0
"""
