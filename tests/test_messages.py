"""Messages a student can act on: the student's own line, and what to change when the arguments differ (issue 16, item 2)."""

from __future__ import annotations

import nbformat

from grader.checking.messages import is_argument_mismatch, locate_in_notebook, signature_message
from grader.kernel.failures import NotDefined, StudentError
from grader.source.source_index import index_notebook

SIGNATURES = {
    "vgg_block": {
        "asks": "vgg_block(num_convs, out_channels)",
        "editions": "d2l-zh 2.0 writes vgg_block(num_convs, in_channels, out_channels)",
    }
}


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
    error = StudentError(
        "vgg_block",
        "TypeError",
        "missing 1 required positional argument",
        cell=1,
        line=189,
        code="return factory(*decode(args), **decode(kwargs)), cell, None",
    )
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
    error = StudentError(
        "vgg_block", "TypeError", "vgg_block() missing 1 required positional argument: 'out_channels'", call="vgg_block(1, 4)"
    )
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


def test_a_type_error_inside_a_module_bound_to_the_name_is_not_the_students_signature():
    error = StudentError("pool2d", "TypeError", "MaxPool2d.forward() takes 2 positional arguments but 3 were given")
    assert not is_argument_mismatch(error)


def test_a_class_whose_init_takes_other_arguments_is_an_argument_mismatch():
    error = StudentError("Residual", "TypeError", "Residual.__init__() missing 1 required positional argument: 'num_channels'")
    assert is_argument_mismatch(error)


def test_an_import_of_another_editions_d2l_is_told_how_d2l_1_0_is_imported():
    from grader.checking.messages import edition_hint

    error = StudentError("corr2d_multi_in", "AttributeError", "module 'd2l' has no attribute 'corr2d'", cell=4, line=2, code="x")
    assert "from d2l import torch as d2l" in edition_hint(error)


def test_a_definition_rebound_later_in_its_own_cell_is_kept_with_the_cells_line_numbers():
    from grader.notebook.snapshot_code import rebound_in_cell as _rebound_in_cell

    source = "import torch\ndef pool2d(X, pool_size, mode='max'):\n    return X\npool2d = torch.nn.MaxPool2d(3)\n"
    kept = _rebound_in_cell(source, ["pool2d"])
    assert kept["pool2d"].split("\n")[1:3] == ["def pool2d(X, pool_size, mode='max'):", "    return X"]
    assert "MaxPool2d" not in kept["pool2d"] and kept["pool2d"].split("\n")[0] == ""


def test_a_lower_case_function_of_the_asked_class_is_named_as_what_was_written_instead():
    from grader.kernel.submission import Submission

    nb = notebook("def vgg(conv_arch):\n    return None")
    sub = Submission(None, None, nb, source=index_notebook(nb))
    try:
        sub.require_defined("VGG")
    except NotDefined as missing:
        assert "found `def vgg(conv_arch)` in cell 1" in str(missing)
    else:
        raise AssertionError("VGG is not defined by this notebook")


def test_an_unrelated_sequential_is_not_named_for_a_missing_class():
    from grader.kernel.submission import Submission

    nb = notebook("from torch import nn", "b5 = nn.Sequential(nn.ReLU())")
    sub = Submission(None, None, nb, source=index_notebook(nb))
    try:
        sub.require_defined("LeNet")
    except NotDefined as missing:
        assert "b5" not in str(missing)


# --------------------------------------------------------------------------- the other editions' models (issue 27, item 6)

#: d2l-zh 2.0's LeNet (cell 2), then its ResNet assembled from stages (cells 3 and 4), each bound to `net`.
ZH_MODELS = (
    "from torch import nn",
    "net = nn.Sequential(nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(), nn.Flatten(), nn.Linear(1176, 10))",
    "b1 = nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.ReLU())\nb2 = nn.Sequential(nn.ReLU())",
    "net = nn.Sequential(b1, b2,\n                    nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.LazyLinear(10))",
)


def _hw2_signatures() -> dict[str, dict[str, str]]:
    from grader.course.assignment import load_assignment

    return load_assignment("hw2").signatures


def _not_defined(name: str, *sources: str) -> str:
    from grader.course.assignment import load_assignment
    from grader.kernel.submission import Submission

    nb = notebook(*sources)
    sub = Submission(None, None, nb, assignment=load_assignment("hw2"), source=index_notebook(nb))
    try:
        sub.require_defined(name)
    except NotDefined as missing:
        return str(missing)
    raise AssertionError(f"{name} is not defined by this notebook")


def test_a_resnet_written_as_a_sequential_of_stages_is_pointed_at_that_sequential():
    message = _not_defined("ResNet18", *ZH_MODELS)
    assert message == (
        "`ResNet18` is not defined: the assignment asks for `class ResNet18` called as `ResNet18(lr=0.1, num_classes=10)`; "
        "found `net = nn.Sequential(b1, b2, …)` in cell 4"
    )


def test_a_lenet_written_as_a_sequential_is_still_pointed_at_its_own_not_the_resnets():
    assert "found `net = nn.Sequential(...)` in cell 2" in _not_defined("LeNet", *ZH_MODELS)


#: d2l-zh 2.0's Residual, its stride keyword spelled ``{}``.
RESIDUAL = (
    "from torch import nn\n"
    "class Residual(nn.Module):\n"
    "    def __init__(self, input_channels, num_channels, use_1x1conv=False, {}=1):\n"
    "        pass"
)
#: What the grader's first call, ``Residual(3)``, raises on either.
NO_NUM_CHANNELS = StudentError(
    "Residual", "TypeError", "Residual.__init__() missing 1 required positional argument: 'num_channels'", call="Residual(3)"
)


def test_a_residual_with_the_earlier_editions_stride_is_told_the_keyword_beside_the_dropped_input_channels():
    nb = notebook(RESIDUAL.format("stride"))
    message = signature_message(NO_NUM_CHANNELS, index_notebook(nb), _hw2_signatures())
    assert message.endswith(
        "so drop input_channels (in_channels); and write `strides` for your `stride` (d2l 1.0's code passes it by that name)"
    )


def test_a_residual_with_d2l_zh_s_strides_is_told_of_no_keyword_to_rename():
    nb = notebook(RESIDUAL.format("strides"))
    assert signature_message(NO_NUM_CHANNELS, index_notebook(nb), _hw2_signatures()).endswith("so drop input_channels (in_channels)")
