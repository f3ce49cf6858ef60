"""Messages a student can act on: the student's own line, and what to change when the arguments differ (issue 16, item 2)."""

from __future__ import annotations

import nbformat

from grader.bridge import NotDefined, StudentError
from grader.messages import is_argument_mismatch, locate_in_notebook, signature_message
from grader.source_index import index_notebook

SIGNATURES = {"vgg_block": {"asks": "vgg_block(num_convs, out_channels)",
                            "editions": "d2l-zh 2.0 writes vgg_block(num_convs, in_channels, out_channels)"}}


def notebook(*sources: str):
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# HW2")] + [nbformat.v4.new_code_cell(s) for s in sources])


def test_the_line_shown_is_found_in_the_students_cell():
    nb = notebook("import torch", "def corr2d(X, K):\n    h, w = K.shape\n    return X[h]")
    error = StudentError("corr2d", "IndexError", "index 3 is out of bounds", cell=2, line=3, code="return X[h]")
    located = locate_in_notebook(error, nb)
    assert (located.cell, located.line, located.code) == (2, 3, "return X[h]")


def test_a_line_in_another_cell_than_the_kernel_named_is_found_there():
    nb = notebook("def helper(X):\n    return X[99]", "def corr2d(X, K):\n    return helper(X)")
    error = StudentError("corr2d", "IndexError", "out of range", cell=2, line=2, code="return X[99]")
    located = locate_in_notebook(error, nb)
    assert (located.cell, located.line) == (1, 2)


def test_a_line_that_is_in_no_cell_is_never_shown_as_the_students():
    nb = notebook("def vgg_block(num_convs, in_channels, out_channels):\n    pass")
    error = StudentError("vgg_block", "TypeError", "missing 1 required positional argument", cell=1, line=189,
                         code="return factory(*decode(args), **decode(kwargs)), cell, None")
    located = locate_in_notebook(error, nb)
    assert located.line is None and located.code == "" and "line" not in str(located)


def test_a_call_the_students_definition_cannot_take_is_an_argument_mismatch():
    error = StudentError("vgg_block", "TypeError", "vgg_block() missing 1 required positional argument: 'out_channels'")
    assert is_argument_mismatch(error)


def test_a_type_error_inside_the_students_code_is_not_an_argument_mismatch():
    error = StudentError("corr2d", "TypeError", "unsupported operand type(s)", cell=1, line=2, code="return X + None")
    assert not is_argument_mismatch(error)


def test_the_signature_message_names_the_call_the_students_signature_and_the_asked_one():
    nb = notebook("def vgg_block(num_convs, in_channels, out_channels):\n    pass")
    error = StudentError("vgg_block", "TypeError", "vgg_block() missing 1 required positional argument: 'out_channels'",
                         call="vgg_block(1, 4)")
    message = signature_message(error, index_notebook(nb), SIGNATURES)
    assert "the grader called `vgg_block(1, 4)`" in message
    assert "your `vgg_block(num_convs, in_channels, out_channels)` (cell 1)" in message
    assert "the assignment asks for `vgg_block(num_convs, out_channels)` (d2l 1.0's API)" in message
    assert "d2l-zh 2.0" in message


def test_a_model_written_as_a_sequential_is_told_to_write_the_class():
    nb = notebook("from torch import nn", "net = nn.Sequential(nn.LazyConv2d(6, 5), nn.Sigmoid())")
    definition = index_notebook(nb).bound("net")
    message = str(NotDefined("LeNet", definition, "class LeNet(d2l.Classifier) with self.net = nn.Sequential(...)"))
    assert "the assignment asks for `class LeNet(d2l.Classifier) with self.net = nn.Sequential(...)`" in message
    assert "found `net = nn.Sequential(...)` in cell 2" in message
