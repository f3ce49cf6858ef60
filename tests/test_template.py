"""The student template is generated from the solution and never drifts from it.

The ``raise NotImplementedError()`` strings below are the template's expected placeholders.
"""

from __future__ import annotations

import nbformat
import pytest

from grader.course.template import SolutionMarkupError, make_template, strip_solution, template_differences
from tests.conftest import REPO

SOLUTION = REPO / "assignments" / "hw2" / "solution.ipynb"
TEMPLATE = REPO / "assignments" / "hw2.ipynb"


def test_a_function_body_becomes_not_implemented_at_its_indentation():
    source = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION"
    assert strip_solution(source, "code") == "def f(x):\n    raise NotImplementedError()"


def test_value_assignments_keep_their_names():
    source = "### BEGIN SOLUTION\nA = 'k1 + k2 - 1'\nB = (2, 2)\n### END SOLUTION\nA"
    assert strip_solution(source, "code") == "A = ...\nB = ...\nA"


def test_markdown_answers_become_a_placeholder():
    source = "### Exercise\n\n<!-- BEGIN SOLUTION -->\nThe proof.\n<!-- END SOLUTION -->"
    assert strip_solution(source, "markdown") == "### Exercise\n\nYOUR ANSWER HERE"


def test_code_outside_the_markers_is_kept_verbatim():
    source = "x = 1\n### BEGIN SOLUTION\ny = f(x)\nprint(y)\n### END SOLUTION\nz = 3"
    assert strip_solution(source, "code") == "x = 1\nraise NotImplementedError()\nz = 3"


@pytest.mark.parametrize("source", ["### BEGIN SOLUTION\nx = 1", "x = 1\n### END SOLUTION"])
def test_unbalanced_markers_name_the_cell(source):
    with pytest.raises(SolutionMarkupError, match="cell 4"):
        strip_solution(source, "code", 4)


def test_the_template_clears_outputs_and_keeps_metadata():
    solution = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("1 + 1", outputs=[nbformat.v4.new_output("stream", text="2")], execution_count=3)]
    )
    solution.metadata["grader"] = {"assignment": "hw2"}
    template = make_template(solution)
    assert template.cells[0].outputs == [] and template.cells[0].execution_count is None
    assert template.metadata["grader"] == {"assignment": "hw2"}
    assert solution.cells[0].outputs != []


def test_the_committed_template_is_generated_from_the_solution():
    problems = template_differences(SOLUTION, TEMPLATE)
    assert problems == [], "regenerate with `grade assign assignments/hw2/solution.ipynb`: " + "; ".join(problems)


def test_an_edited_solution_cell_is_reported_by_index(tmp_path):
    solution = nbformat.read(SOLUTION, as_version=4)
    solution.cells[7].source = solution.cells[7].source.replace("corr2d", "corr2d_v2", 1)
    edited = tmp_path / "solution.ipynb"
    nbformat.write(solution, edited)
    (tmp_path / "config.toml").write_bytes((SOLUTION.parent / "config.toml").read_bytes())  # its [self_check] kit: the last cell
    problems = template_differences(edited, TEMPLATE)
    assert len(problems) == 1 and problems[0].startswith("cell 7 (code")


def test_the_template_keeps_every_graded_name_defined():
    template = make_template(nbformat.read(SOLUTION, as_version=4))
    code = "\n".join(c.source for c in template.cells if c.cell_type == "code")
    for name in [
        "def corr2d",
        "class Conv2D",
        "def comp_conv2d",
        "def pool2d",
        "class LeNet",
        "def vgg_block",
        "class VGG",
        "class Residual",
        "class ResNet18",
        "ANSWER_OUTPUT_SHAPE = ...",
        "ANSWER_COMPOSED_KERNEL = ...",
    ]:
        assert name in code
