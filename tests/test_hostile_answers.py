"""Hostile answers that used to cost a whole notebook (issue 25, items 2 and 3).

Each attack is a small notebook of its own beside an honest question, graded as a TA grades it
(``grade NOTEBOOK``: the result file is written): a formula that kept sympy busy for hours, cells nested
past the parser's stack, and a kernel that answers the grader's requests with values of the wrong type.
The honest question keeps its point; the attacked one is judged, sent to a TA or refused, each with its
reason, and in time. The unit-level twins are in tests/test_formulas.py, tests/test_source_index.py and
tests/test_protocol.py.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from grader.results import GradeResult
from grader.run.api import grade_paths

pytestmark = pytest.mark.slow

CONFIG = """
name = "hostile"
title = "Hostile answers"

[[questions]]
id = "double"
title = "`double(X)`"
points = 1
defines = ["double"]

[[questions]]
id = "formula"
title = "The composed kernel's side"
points = 1

[[snapshots]]
key = "formula"
after = '^\\s*ANSWER_FORMULA\\s*='
values = { formula = "ANSWER_FORMULA" }
"""

CHECKS = """
import torch

from grader.checks import Submission, answered, expect_formula, expect_tensor


def check_double(sub: Submission):
    X = torch.arange(6.0)
    expect_tensor(sub.call("double", X), 2 * X, "double(X)")


def check_formula(sub: Submission):
    formula = answered(sub.values("formula")["formula"], "ANSWER_FORMULA")
    return expect_formula(formula, "k1 + k2 - 1", ["k1", "k2"], name="ANSWER_FORMULA")
"""

HONEST = "import torch\ndef double(X):\n    return 2 * X\n"
#: Degree 64 over degree 64, 46 characters: sympy's simplify ran for hours on it.
FORMULA_BOMB = "((k1+k2+2)**8)**8/((k1+2)**8+k2**8)**8+k1+k2-1"
#: Parsed by the grader, yet ast.unparse recurses once per level of the default: 600 levels.
DEEP_DEFAULT = "import torch\ndef double(X, k=" + "+".join(["1"] * 600) + "):\n    return 2 * X\n"
#: 100,000 nots: the parser's stack overflows (MemoryError) in the grader's ast.parse and in the kernel's,
#: which reports it as the cell's error. (A sum of 100,000 terms raises RecursionError in both, but IPython
#: lets that one escape run_cell and the kernel never answers: the cell's timeout ends it, a slower test.)
DEEP_CELL = "z = " + "not " * 100_000 + "1"
#: The kernel-side module answers two of the grader's requests with values of the wrong type (the reply
#: marker is the module's own, so a notebook can print any reply it likes).
WRONG_TYPES = """
import json, sys
hw = sys.modules["_hwgrader"]
real_request = hw.request

def request(op, payload_json):
    if op == "values":
        print(hw.MARKER + json.dumps({"ok": "a string where a mapping belongs"}))
    elif op == "rebinding":
        print(hw.MARKER + json.dumps({"ok": 7}))
    else:
        real_request(op, payload_json)

hw.request = request
"""


@pytest.fixture(scope="module")
def assignment_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile-assignment")
    (folder / "config.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS, encoding="utf-8")
    return folder


def grade(tmp_path: Path, data_dir: Path, assignment: Path, *cells: str) -> tuple[GradeResult, dict]:
    """``grade NOTEBOOK`` on a notebook of these cells; the result as the file written says it."""
    path = tmp_path / "attack.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    out = tmp_path / "out"
    grade_paths([path], out=out, assignment=str(assignment), budget="quick", device="cpu", data_dir=str(data_dir), cell_timeout=120)
    written = out / "attack.json"
    assert written.is_file(), "no result was written"
    result = GradeResult.from_dict(json.loads(written.read_text(encoding="utf-8")))
    return result, {q.id: q for q in result.questions}


def test_a_formula_sympy_would_simplify_for_hours_is_sent_to_a_ta_within_seconds(tmp_path, data_dir, assignment_folder):
    started = time.monotonic()
    result, by_id = grade(tmp_path, data_dir, assignment_folder, HONEST, f"ANSWER_FORMULA = {FORMULA_BOMB!r}")
    formula = by_id["formula"]
    assert formula.status == "manual" and formula.points == 0
    assert "sent to a TA" in formula.message and "too large to judge automatically" in formula.message
    assert formula.details["seconds"] < 10  # the question's own time: parse, guard, child process
    assert by_id["double"].status == "pass" and by_id["double"].points == 1
    assert result.execution.status == "ok" and time.monotonic() - started < 300


def test_cells_nested_past_the_parsers_stack_cost_only_themselves(tmp_path, data_dir, assignment_folder):
    result, by_id = grade(tmp_path, data_dir, assignment_folder, DEEP_DEFAULT, DEEP_CELL, 'ANSWER_FORMULA = "k2 + k1 - 1"')
    assert by_id["double"].status == "pass" and by_id["double"].points == 1, by_id["double"].message
    assert by_id["formula"].status == "pass" and by_id["formula"].points == 1, by_id["formula"].message
    assert result.execution.status in ("ok", "error")  # the deep cell fails in the kernel too; grading goes on


def test_replies_of_the_wrong_type_cost_only_the_questions_they_answer(tmp_path, data_dir, assignment_folder):
    result, by_id = grade(tmp_path, data_dir, assignment_folder, HONEST, 'ANSWER_FORMULA = "k1 + k2 - 1"', WRONG_TYPES)
    formula = by_id["formula"]
    assert formula.status == "error" and formula.points == 0
    assert "could not read your kernel's answer" in formula.message and "mapping" in formula.message
    assert by_id["double"].status == "pass" and by_id["double"].points == 1, by_id["double"].message
    assert result.execution.status == "ok"
