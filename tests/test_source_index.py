"""Only what the notebook's own source defines may be graded: the index read from the file."""

from __future__ import annotations

import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.source.neutralize import neutralize
from grader.source.source_index import index_notebook, render_signature

FLAGGED = {"conv2d"}


def index(*sources: str):
    """Index a notebook of these code cells, after neutralize as the grader does."""
    notebook = new_notebook(cells=[new_code_cell(s) for s in sources])
    return index_notebook(neutralize(notebook)[0])


def test_a_def_is_found_with_its_cell_line_and_signature():
    found = index("import torch", "\n# the book's corr2d\ndef corr2d(X, K):\n    return X").last("corr2d")
    assert (found.kind, found.cell, found.line) == ("def", 1, 3)
    assert (found.signature, found.parameters, found.required) == ("(X, K)", ("X", "K"), 2)
    assert found.source_line == "def corr2d(X, K):"


def test_cells_are_numbered_like_the_rest_of_the_grader_with_markdown_counted():
    notebook = new_notebook(cells=[new_markdown_cell("# HW2"), new_code_cell("def f():\n    pass")])
    assert index_notebook(notebook).last("f").cell == 1


def test_defaults_star_args_and_keyword_only_parameters_are_rendered():
    found = index("def pool2d(X, pool_size, mode='max', *rest, k=1, **extra):\n    pass").last("pool2d")
    assert found.signature == "(X, pool_size, mode='max', *rest, k=1, **extra)"
    assert found.parameters == ("X", "pool_size", "mode", "*rest", "k", "**extra")
    assert found.required == 2


def test_a_class_signature_is_its_init_without_self():
    found = index("class Conv2D(nn.Module):\n    def __init__(self, kernel_size):\n        super().__init__()").last("Conv2D")
    assert (found.kind, found.signature, found.parameters, found.required) == ("class", "(kernel_size)", ("kernel_size",), 1)
    assert not found.inherited


def test_a_class_without_init_has_an_empty_signature_marked_inherited_when_it_has_bases():
    built = index("class Plain:\n    x = 1", "class Net(nn.Module):\n    def forward(self, X):\n        return X")
    assert (built.last("Plain").signature, built.last("Plain").inherited) == ("()", False)
    assert (built.last("Net").signature, built.last("Net").inherited) == ("()", True)


def test_d2l_zh_vgg_block_signature_is_rendered_for_messages():
    source = "def vgg_block(num_convs, in_channels, out_channels):\n    layers = []\n    return nn.Sequential(*layers)"
    found = index(source).last("vgg_block")
    assert found.required == 3
    assert render_signature("vgg_block", found) == "vgg_block(num_convs, in_channels, out_channels)"


def test_a_sequential_assigned_to_a_name_is_an_assign_with_its_callee():
    built = index("LeNet = nn.Sequential(\n    nn.Conv2d(1, 6, kernel_size=5), nn.Sigmoid())")
    bound = built.bound("LeNet")
    assert (bound.kind, bound.value, bound.signature, bound.line) == ("assign", "nn.Sequential", None, 1)
    assert not built.defines("LeNet")


def test_the_callee_keeps_its_dotted_spelling():
    built = index("a = torch.nn.Sequential()", "b = d2l.LeNet()", "c = [1, 2]")
    assert [built.bound(n).value for n in "abc"] == ["torch.nn.Sequential", "d2l.LeNet", None]


def test_annotated_and_tuple_unpacking_assignments_bind_each_name():
    built = index("net: nn.Module = nn.Sequential()", "train_iter, test_iter = d2l.load_data_fashion_mnist(256)")
    assert built.bound("net").value == "nn.Sequential"
    assert (built.bound("test_iter").kind, built.bound("test_iter").value) == ("assign", "d2l.load_data_fashion_mnist")


def test_imports_bind_their_name_with_the_module_path():
    built = index("from torch.nn.functional import conv2d as c\nimport torch.nn.functional as F\nimport numpy")
    assert [(built.bound(n).kind, built.bound(n).value) for n in ("c", "F", "numpy")] == [
        ("import", "torch.nn.functional.conv2d"),
        ("import", "torch.nn.functional"),
        ("import", "numpy"),
    ]


def test_a_name_written_only_through_sys_modules_globals_or_exec_is_not_defined():
    built = index(
        "import sys\nsys.modules['_hwgrader'].defs['pool2d'] = (f, 3)",
        "globals()['pool2d'] = f",
        "exec('def pool2d(X, p): return X')",
    )
    assert not built.defines("pool2d")
    assert built.bound("pool2d") is None


def test_a_def_inside_a_function_is_not_top_level():
    assert not index("def outer():\n    def pool2d(X):\n        return X\n    return pool2d").defines("pool2d")


def test_a_cell_with_a_syntax_error_is_listed_and_the_other_cells_are_still_indexed():
    built = index("def corr2d(X, K):\n    return X", "def pool2d(X:\n    pass", "def comp_conv2d(c, X):\n    return X")
    assert [cell for cell, _ in built.unparsable] == [1]
    assert "line 1" in built.unparsable[0][1]
    assert built.defines("corr2d") and built.defines("comp_conv2d") and not built.defines("pool2d")


def test_display_magics_kept_by_neutralize_do_not_make_a_cell_unparsable():
    built = index("%matplotlib inline\nimport torch\ndef corr2d(X, K):\n    return X", "%%time\ndef pool2d(X):\n    return X")
    assert built.unparsable == []
    assert (built.last("corr2d").line, built.last("pool2d").line) == (3, 2)


def test_a_redefinition_in_a_later_cell_wins():
    built = index("def corr2d(X):\n    return X", "def corr2d(X, K):\n    return X")
    assert (built.last("corr2d").cell, built.last("corr2d").signature) == (1, "(X, K)")
    assert len(built.definitions["corr2d"]) == 2


def test_an_assignment_after_a_def_is_the_binding_but_the_def_is_still_the_last_def():
    built = index("def LeNet():\n    pass", "LeNet = nn.Sequential()")
    assert built.bound("LeNet").kind == "assign"
    assert built.last("LeNet").kind == "def"


def test_defs_guarded_by_try_or_if_count_as_top_level():
    built = index(
        "try:\n    import d2l\nexcept ImportError:\n    d2l = None",
        "if True:\n    def corr2d(X, K):\n        return X\nelse:\n    pass",
    )
    assert built.bound("d2l").kind == "assign"
    assert built.definitions["d2l"][0].kind == "import"
    assert (built.last("corr2d").line, built.last("corr2d").source_line) == (2, "def corr2d(X, K):")


def test_a_direct_library_call_is_reported_without_via():
    built = index("import torch.nn.functional as F\ndef corr2d(X, K):\n    return F.conv2d(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("F.conv2d", "")]


def test_a_fully_dotted_call_matches_by_its_last_name():
    built = index("def corr2d(X, K):\n    return torch.nn.functional.conv2d(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("torch.nn.functional.conv2d", "")]


def test_a_library_call_inside_a_helper_is_reported_through_that_helper():
    built = index(
        "import torch.nn.functional as F",
        "def _helper(X, K):\n    return F.conv2d(X, K)",
        "def corr2d(X, K):\n    return _helper(X, K)",
    )
    assert built.library_calls(["corr2d"], FLAGGED) == [("F.conv2d", "through `_helper` (cell 1)")]


def test_helpers_are_followed_transitively():
    built = index(
        "def _inner(X, K):\n    return F.conv2d(X, K)",
        "def _outer(X, K):\n    return _inner(X, K)",
        "def corr2d(X, K):\n    return _outer(X, K)",
    )
    assert built.library_calls(["corr2d"], FLAGGED) == [("F.conv2d", "through `_outer` (cell 1) → `_inner` (cell 0)")]


def test_a_class_method_calling_a_notebook_function_is_followed():
    built = index(
        "def corr2d(X, K):\n    return F.conv2d(X, K)", "class Conv2D:\n    def forward(self, X):\n        return corr2d(X, self.w)"
    )
    assert built.library_calls(["Conv2D"], FLAGGED) == [("F.conv2d", "through `corr2d` (cell 0)")]


def test_an_alias_assigned_at_top_level_is_resolved():
    built = index("f = F.conv2d", "def corr2d(X, K):\n    return f(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("F.conv2d", "as `f`")]


def test_an_alias_assigned_inside_the_function_is_resolved():
    built = index("def corr2d(X, K):\n    op = torch.nn.functional.conv2d\n    return op(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("torch.nn.functional.conv2d", "as `op`")]


def test_an_import_with_as_is_resolved_to_the_module_path():
    built = index("from torch.nn.functional import conv2d as c", "def corr2d(X, K):\n    return c(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("torch.nn.functional.conv2d", "as `c`")]


def test_a_bare_imported_name_is_reported_with_its_module():
    built = index("from torch.nn.functional import conv2d", "def corr2d(X, K):\n    return conv2d(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("torch.nn.functional.conv2d", "")]


def test_getattr_with_a_literal_name_is_a_call():
    built = index("def corr2d(X, K):\n    return getattr(F, 'conv2d')(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("getattr(F, 'conv2d')", "")]


def test_getattr_with_a_computed_name_is_not_matched():
    assert index("def corr2d(X, K, name):\n    return getattr(F, name)(X, K)").library_calls(["corr2d"], FLAGGED) == []


def test_a_cycle_between_two_helpers_terminates():
    built = index(
        "def _a(X, n):\n    return _b(X, n - 1) if n else F.conv2d(X, X)",
        "def _b(X, n):\n    return _a(X, n)",
        "def corr2d(X, K):\n    return _a(X, 3)",
    )
    assert built.library_calls(["corr2d"], FLAGGED) == [("F.conv2d", "through `_a` (cell 0)")]


def test_a_flagged_name_in_a_comment_or_string_is_not_a_call():
    built = index("def corr2d(X, K):\n    # do not use F.conv2d here\n    print('F.conv2d(X, K) is not allowed')\n    return X")
    assert built.library_calls(["corr2d"], FLAGGED) == []


def test_a_parameter_named_like_a_notebook_helper_shadows_it():
    built = index("def _helper(X):\n    return F.conv2d(X, X)", "def corr2d(X, _helper):\n    return _helper(X)")
    assert built.library_calls(["corr2d"], FLAGGED) == []


def test_a_local_module_bound_to_a_flagged_name_is_not_the_library_function():
    built = index("def corr2d(X, K):\n    conv2d = nn.Conv2d(1, 1, K.shape)\n    return conv2d(X)")
    assert built.library_calls(["corr2d"], FLAGGED) == []


def test_calls_outside_the_graded_definitions_are_not_reported():
    built = index("def corr2d(X, K):\n    return X", "Y = F.conv2d(X, K)", "def unrelated(X):\n    return F.conv2d(X, X)")
    assert built.library_calls(["corr2d"], FLAGGED) == []


def test_a_name_the_notebook_does_not_define_gives_no_calls():
    assert index("x = 1").library_calls(["corr2d"], FLAGGED) == []


def test_a_method_added_with_d2l_add_to_class_belongs_to_the_class():
    built = index(
        "class Conv2D(nn.Module):\n    def __init__(self, k):\n        super().__init__()",
        "@d2l.add_to_class(Conv2D)\ndef forward(self, X):\n    return F.conv2d(X, self.weight)",
    )
    assert built.library_calls(["Conv2D"], FLAGGED) == [("F.conv2d", "through `forward` (cell 1)")]


def test_positional_only_and_bare_star_markers_are_shown_but_are_not_parameters():
    found = index("class Pool:\n    def __init__(self, X, /, size, *, stride=None):\n        pass").last("Pool")
    assert (found.signature, found.parameters, found.required) == ("(X, /, size, *, stride=None)", ("X", "size", "stride"), 2)


def test_getattr_bound_to_a_local_name_is_reported_once_as_the_getattr():
    built = index("def corr2d(X, K):\n    op = getattr(F, 'conv2d')\n    return op(X, K)")
    assert built.library_calls(["corr2d"], FLAGGED) == [("getattr(F, 'conv2d')", "")]


# --------------------------------------------------------------------------- nesting past the parser's stack (issue 25, item 3)

DEEP = {
    "a sum of 100,000 terms": "x = " + "+".join(["1"] * 100_000),
    "100,000 calls in a row": "y = f" + "()" * 100_000,
    "100,000 nots": "z = " + "not " * 100_000 + "1",
    "an attribute chain": "w = a" + ".b" * 100_000,
}


@pytest.mark.parametrize("source", DEEP.values(), ids=DEEP.keys())
def test_a_cell_nested_past_the_parsers_stack_is_unparsable_and_the_others_still_count(source):
    found = index("def corr2d(X, K):\n    return X", source, "def pool2d(X, size):\n    return X")
    assert found.unparsable == [(1, "nested too deeply for the grader to read")]
    assert found.defines("corr2d") and found.defines("pool2d")


def test_a_definition_whose_default_is_too_deep_to_render_is_still_indexed():
    deep = "+".join(["1"] * 600)  # parsed, but ast.unparse recurses once per level
    found = index(f"def corr2d(X, K={deep}):\n    return F.conv2d(X, {deep})")
    assert found.last("corr2d").signature == "(X, K=…)"
    assert found.library_calls(["corr2d"], FLAGGED) == [("F.conv2d", "")]
