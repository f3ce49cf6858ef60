"""Snapshots found by what the values are, not by how a line is spelled (issue 16).

Tiny notebooks through real kernels; only the two questions under test are
graded, so each notebook costs a kernel start and little else.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import nbformat
import pytest

from grader.course.assignment import load_assignment, parse_snapshot
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from tests.notebook_sources import CORR2D

EDGE_INPUTS = """
X = torch.ones((6, 8))
X[:, 2:6] = 0
K = torch.tensor([[1.0, -1.0]])
"""
EDGE_Y = "Y = corr2d(X, K)\nY"
BOOK_LEARN = """
from torch import nn
torch.manual_seed(0)
conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)
X = X.reshape((1, 1, 6, 8))
Y = Y.reshape((1, 1, 6, 7))
lr = 3e-2
for i in range(10):
    Y_hat = conv2d(X)
    l = (Y_hat - Y) ** 2
    conv2d.zero_grad()
    l.sum().backward()
    conv2d.weight.data[:] -= lr * conv2d.weight.grad
"""
# An exercise that reuses the names on another image: the old regex graded this cell.
EXERCISE = """
X = torch.ones((8, 8))
X[2:6, :] = 0
Y = corr2d(X, K)
"""
TARGETS = """
import torch
from torch import nn
torch.manual_seed(0)
images = torch.ones((1, 1, 6, 8))
images[:, :, :, 2:6] = 0
targets = images[:, :, :, :-1] - images[:, :, :, 1:]
"""
LOOP = """
for i in range(20):
    loss = ((layer(images) - targets) ** 2).sum()
    layer.zero_grad()
    loss.backward()
    layer.weight.data[:] -= 3e-2 * layer.weight.grad
"""


@pytest.fixture(scope="module")
def edge_and_kernel():
    hw2 = load_assignment("hw2")
    return replace(hw2, questions=[q for q in hw2.questions if q.id in ("edge_detect", "learn_kernel")])


@pytest.fixture(scope="module")
def grade(edge_and_kernel, data_dir, tmp_path_factory):
    options = GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu", cell_timeout=60)

    def run(name: str, *sources: str) -> dict:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
        path = tmp_path_factory.mktemp("snapshots") / f"{name}.ipynb"
        nbformat.write(nb, path)
        return {q.id: q for q in grade_notebook(path, edge_and_kernel, options).questions}

    return run


@pytest.fixture(scope="module")
def book_with_exercise(grade):
    return grade("book_with_exercise", CORR2D, EDGE_INPUTS, EDGE_Y, BOOK_LEARN, EXERCISE)


def test_edge_detect_grades_the_cell_on_the_books_image_not_a_later_exercise(book_with_exercise):
    edge = book_with_exercise["edge_detect"]
    assert edge.status == "pass", edge.message
    assert edge.details["snapshot_cell"] == 2
    assert "cell 2" in edge.message and "6x8" in edge.message
    assert "4" in edge.message.split("other inputs")[0].rsplit(";", 1)[1]  # cell 4 is named as another computation
    assert edge.details["candidate_cells"] == [2, 3, 4]


def test_a_cell_that_only_reshapes_y_is_not_said_to_compute_it_on_other_inputs(book_with_exercise):
    """Issue 27, item 6: the book's `Y = Y.reshape((1, 1, 6, 7))` (cell 3) holds the graded Y's numbers; the exercise does not."""
    assert "; cell 3 only reshapes Y; cell 4 computes Y on other inputs" in book_with_exercise["edge_detect"].message


def test_the_books_spelling_of_learn_kernel_passes(book_with_exercise):
    kernel = book_with_exercise["learn_kernel"]
    assert kernel.status == "pass", kernel.message
    assert kernel.details["snapshot_cell"] == 3
    assert "trained" in kernel.details["snapshot_reason"]


def test_a_conv2d_trained_in_a_later_cell_passes_and_the_training_cell_is_named(grade):
    kernel = grade("conv2d", TARGETS, "layer = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)", LOOP, "layer.weight")["learn_kernel"]
    assert kernel.status == "pass", kernel.message
    assert kernel.details["snapshot_cell"] == 2
    assert "weight changed" in kernel.details["snapshot_reason"]
    assert "cell 2" in kernel.message and "`layer`" in kernel.message


def test_a_lazy_conv2d_with_keyword_arguments_and_an_optimizer_passes(grade):
    build = "conv = nn.LazyConv2d(out_channels=1, kernel_size=(1, 2), bias=False)\nopt = torch.optim.SGD(conv.parameters(), lr=3e-2)"
    loop = (
        "for i in range(20):\n    opt.zero_grad()\n    ((conv(images) - targets) ** 2).sum().backward()\n    opt.step()\n"
        "opt.zero_grad(set_to_none=True)"
    )
    kernel = grade("lazy_keywords", TARGETS, build, loop)["learn_kernel"]
    assert kernel.status == "pass", kernel.message
    assert kernel.details["snapshot_cell"] == 2


def test_wrong_corr2d_and_an_untrained_kernel_fail(grade):
    wrong = CORR2D.replace("X.shape[0] - h + 1", "X.shape[0] - h")
    untrained = "from torch import nn\nconv2d = nn.Conv2d(1, 1, kernel_size=(1, 2), bias=False)"
    questions = grade("wrong", wrong, EDGE_INPUTS, EDGE_Y, untrained)
    edge, kernel = questions["edge_detect"], questions["learn_kernel"]
    assert edge.status == "fail"
    assert "expected shape (6, 7), got (5, 7)" in edge.message and "cell 2" in edge.message
    assert kernel.status == "fail"
    assert "no cell trains it" in kernel.message and "cell 3" in kernel.message


def test_a_notebook_without_the_values_is_missing(grade):
    questions = grade("nothing", "import torch\nX = torch.ones(3)")
    assert questions["edge_detect"].status == "missing"
    assert questions["learn_kernel"].status == "missing"
    assert "kernel_size=(1, 2)" in questions["learn_kernel"].message


@pytest.mark.parametrize(
    "entry, error",
    [
        ({"key": "k", "when": "every_cell", "match": {"type": "linear"}}, "not one of"),
        ({"key": "k", "when": "every_cell", "match": {"names": ["X"], "expression": "X"}}, "unknown match keys"),
        ({"key": "k", "when": "every_cell", "match": {"names": ["X"], "changed": ["Y"]}}, "only the `names`"),
        ({"key": "k", "when": "every_cell", "match": {"names": ["X"]}, "values": {"X": "X"}}, "takes no `values`"),
        ({"key": "k", "when": "sometimes"}, "`when`"),
        ({"key": "k", "when": "every_cell", "match": {"names": ["X"], "roles": {"Z": [6, 8]}}}, "`roles`"),
        ({"key": "k", "when": "every_cell", "match": {"names": ["X"], "roles": {"X": "6x8"}}}, "`roles`"),
        ({"key": "k", "values": {"X": "X"}}, "needs `after`"),
    ],
)
def test_a_malformed_snapshot_fails_at_load_time(entry, error):
    with pytest.raises(ValueError, match=error):
        parse_snapshot(entry, "config.toml")


def test_the_books_values_under_other_names_are_candidates_by_their_shapes():
    """``roles``: `edges = corr2d(img, edge_kernel)` is found though no X, K or Y exists."""
    import types

    import torch

    from grader.kernel import side_text

    kernel = types.ModuleType("_hwgrader_test")
    exec(compile(side_text.KERNEL_SOURCE, "<_hwgrader>", "exec"), kernel.__dict__)
    namespace = {"img": torch.ones(6, 8), "edge_kernel": torch.tensor([[1.0, -1.0]])}
    kernel._ns = lambda: namespace
    match = {"names": ["X", "K", "Y"], "changed": ["Y"], "roles": {"X": [6, 8], "K": [1, 2], "Y": [6, 7]}}
    kernel.snap_scan({"edge": match}, 1)
    namespace["edges"] = torch.zeros(6, 7)
    kernel.snap_scan({"edge": match}, 2)
    kernel.snap_scan({"edge": match}, 3)  # nothing changed: no new candidate
    found = kernel.values["edge"]["candidates"]
    assert [c["cell"] for c in found] == [2]
    assert set(found[0]["roles"]["X"]) == {"img"} and set(found[0]["roles"]["Y"]) == {"edges"}
