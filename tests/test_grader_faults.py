"""A cell's error is the grader's only when its innermost frame is code the grader added.

The tracebacks here are written as IPython writes them (its colours included); the tests that run a real
kernel, with a bug of the grader's injected, are in test_d2l_budget.py (the budget's code, the data folder)
and test_grade.py (a replaced line).
"""

from __future__ import annotations

import nbformat

from grader.course.d2l_budget import BUDGET_CODE
from grader.kernel.grader_faults import grader_fault
from grader.source.neutralize import neutralize_source

ANSI_CELL = "\x1b[36mCell\x1b[39m\x1b[36m \x1b[39m\x1b[32mIn[{count}]\x1b[39m\x1b[32m, line {line}\x1b[39m\n"
#: A multi-line mount in cell 4: its lines 2 and 3 (numbered from 1) are the grader's.
MOUNT = neutralize_source("x = 1\ndrive.mount(\n    '/content/drive')\ny = 1 / 0", 4)


def failed_cell(count: int, *frames: str) -> nbformat.NotebookNode:
    """A cell run as ``In[count]`` whose error's traceback has ``frames``, outermost first."""
    cell = nbformat.v4.new_code_cell("", execution_count=count)
    error = {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": ["---", *frames, "ZeroDivisionError: x"]}
    cell.outputs = [nbformat.v4.new_output("error", **error)]
    return cell


def test_an_error_on_a_replaced_statements_continuation_line_names_the_statements_first_line():
    note = grader_fault(failed_cell(7, ANSI_CELL.format(count=7, line=3)), 4, MOUNT.lines)
    assert note == " (the line `drive.mount(` was replaced by the grader (Google Drive mount): the grader's error, not this notebook's)"


def test_an_error_on_a_line_the_grader_left_as_it_was_is_the_notebooks():
    assert grader_fault(failed_cell(7, ANSI_CELL.format(count=7, line=4)), 4, MOUNT.lines) == ""


def test_a_line_number_of_another_cell_is_never_matched_with_this_cells_replaced_lines():
    """A function an earlier cell (In[2]) defined fails at its line 3; cell 4's line 3 was replaced, not that one."""
    cell = failed_cell(7, ANSI_CELL.format(count=7, line=1), ANSI_CELL.format(count=2, line=3))
    assert grader_fault(cell, 4, MOUNT.lines) == ""


def test_a_syntax_error_on_a_replaced_line_is_the_graders():
    """IPython writes a cell's SyntaxError as its location alone, indented, with no frames above it."""
    cell = failed_cell(5)
    cell.outputs[0]["traceback"] = ["  " + ANSI_CELL.format(count=5, line=2) + "    pass pass\n         ^\nSyntaxError: invalid syntax\n"]
    assert grader_fault(cell, 4, MOUNT.lines).startswith(" (the line `drive.mount(` was replaced by the grader")


def test_a_library_error_below_the_budgets_code_is_the_notebooks():
    """The budget's loader called torch, which raised on the notebook's data set: only the innermost frame counts."""
    budget = f"File {BUDGET_CODE}:300, in _hwgrader_budget.<locals>.Capped.__next__(self)\n"
    library = "File /venv/lib/python3.11/site-packages/torch/utils/data/dataloader.py:733, in __next__(self)\n"
    assert grader_fault(failed_cell(3, ANSI_CELL.format(count=3, line=1), budget, library), 0) == ""
