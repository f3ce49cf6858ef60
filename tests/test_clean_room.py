"""The clean room (issue 26, item 1): what a question grades is built from the notebook's source, never from its kernel.

The first half reads which statements the clean room runs for a graded name (fast: parsing only). The second grades
one notebook of our own whose attacks each reached their goal when the kernel that ran the notebook answered the
checks: a stub replaced by ``exec``, a ``__code__`` swapped in, a ``globals()`` write, the grader's kernel-side table
rewritten from inside a graded call, a call that kills its own process, and comparisons patched in the last cell
beside an honest model. Each attack earns nothing; the honest questions keep their points.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from grader.source.clean_room import plan_room
from grader.source.neutralize import neutralize
from tests.notebook_sources import BOOK_LENET, CORR2D


def plan(*sources: str):
    return plan_room(neutralize(new_notebook(cells=[new_code_cell(s) for s in sources]))[0])


def ran(sources: tuple[str, ...], name: str) -> list[str]:
    """The text of each statement the clean room runs for ``name``, stripped."""
    room = plan(*sources)
    return [room.statements[i].text.strip() for i in room.needs(name)["run"]]


# -- which statements run ------------------------------------------------------------------------------------------------


def test_a_graded_function_runs_with_the_imports_and_the_helpers_it_reads():
    texts = ran(("import torch", "def _slide(X, K):\n    return X", "def corr2d(X, K):\n    return _slide(X, K)", "print(1)"), "corr2d")
    assert texts == ["import torch", "def _slide(X, K):\n    return X", "def corr2d(X, K):\n    return _slide(X, K)"]


def test_an_exec_that_redefines_a_graded_function_never_runs():
    texts = ran(("def corr2d(X, K):\n    return None", "exec('def corr2d(X, K):\\n    return X')"), "corr2d")
    assert texts == ["def corr2d(X, K):\n    return None"]


def test_a_code_object_swapped_into_a_graded_function_never_runs():
    sources = ("def pool2d(X, size):\n    return X", "def _real(X, size):\n    return X + 1", "pool2d.__code__ = _real.__code__")
    assert ran(sources, "pool2d") == ["def pool2d(X, size):\n    return X"]


def test_a_globals_write_and_a_library_patch_never_run():
    sources = ("import torch", "def f(X):\n    return torch.zeros(1)", "globals()['f'] = len", "torch.zeros = torch.ones")
    assert ran(sources, "f") == ["import torch", "def f(X):\n    return torch.zeros(1)"]


def replayed(sources: tuple[str, ...], cell: int) -> list[int]:
    return [c["cell"] for c in plan(*sources).replay(cell)]


def test_a_rerun_takes_the_cells_that_bind_what_the_training_cell_reads():
    sources = (
        "import torch\nfrom torch import nn",
        "def corr2d(X, K):\n    return torch.zeros(1)",
        "X = torch.ones((6, 8))\nX[:, 2:6] = 0",
        "lenet = nn.Sequential(nn.LazyLinear(10))\nfor epoch in range(10):\n    lenet(torch.ones(1, 4)).sum().backward()",
        "Y = corr2d(X, torch.ones(1, 2))",
        "conv2d = nn.LazyConv2d(1, kernel_size=(1, 2))\nX = X.reshape((1, 1, 6, 8))\nfor i in range(10):\n    l = (conv2d(X) - Y) ** 2",
    )
    assert replayed(sources, 5) == [0, 1, 2, 4, 5]  # never the cell that trains another model


def test_a_rerun_takes_a_cell_that_changes_a_read_name_in_place_after_it_was_bound():
    sources = ("import torch", "X = torch.ones((6, 8))", "X[:, 2:6] = 0", "X = torch.zeros(2)", "X.fill_(2)", "Z = X + 1")
    assert replayed(sources, 5) == [0, 3, 4, 5]  # the cells before X's last binding no longer matter


def test_a_name_the_cell_binds_before_it_reads_it_needs_no_earlier_cell():
    assert replayed(("i = 5", "l = 1", "for i in range(3):\n    l = i\nprint(l)"), 2) == [2]


def test_methods_added_with_add_to_class_run_with_their_class():
    sources = (
        "from d2l import torch as d2l",
        "class Net:\n    pass",
        "@d2l.add_to_class(Net)\ndef forward(self, X):\n    return X",
        "@d2l.add_to_class(Other)\ndef unrelated(self):\n    pass",
    )
    texts = ran(sources, "Net")
    assert texts[-1].startswith("@d2l.add_to_class(Net)") and not any("unrelated" in t for t in texts)


def test_a_model_assembled_in_place_after_it_is_bound_keeps_its_layers():
    sources = ("net = nn.Sequential()", "net.add_module('b1', nn.ReLU())", "trainer.fit(net)", "def model():\n    return net")
    assert ran(sources, "model") == ["net = nn.Sequential()", "net.add_module('b1', nn.ReLU())", "def model():\n    return net"]


def test_the_graded_definition_is_the_def_even_where_the_same_cell_rebinds_its_name():
    room = plan("def pool2d(X, size):\n    return X\npool2d = max")
    anchor = room.needs("pool2d")["anchor"]["pool2d"]
    assert room.statements[anchor].kind == "def"


def test_a_statement_keeps_its_cells_line_numbers_and_cell_index():
    room = plan_room(new_notebook(cells=[new_markdown_cell("# hw"), new_code_cell("x = 1\n\n\ndef f():\n    return x")]))
    statement = room.statements[room.needs("f")["anchor"]["f"]]
    assert (statement.cell, statement.line) == (1, 4)
    compile(statement.text, "cell", "exec")  # the blank lines before it keep line 4 at line 4


def test_a_definition_inside_a_try_block_compiles_on_its_own_at_its_own_line():
    room = plan("try:\n    import torch\nexcept ImportError:\n    pass\nif True:\n    def f(\n        x):\n        return x")
    statement = room.statements[room.needs("f")["anchor"]["f"]]
    code = compile(statement.text, "cell", "exec")
    assert statement.line == 6 and any(c.co_firstlineno == 6 for c in code.co_consts if hasattr(c, "co_firstlineno"))


def test_a_name_the_source_defines_no_def_or_class_for_runs_nothing():
    assert plan("f = len").needs("f") == {"run": [], "anchor": {}}


# -- the attacks, graded --------------------------------------------------------------------------------------------------

IMPORTS = "import os, sys, torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"

HONEST = CORR2D + BOOK_LENET

#: Stubs the source shows, each made to work at run time by a statement the clean room never runs.
STUBS = """
def corr2d_multi_in(X, K):
    return None


def corr2d_multi_in_out(X, K):
    return None


def corr2d_multi_in_out_1x1(X, K):
    raise NotImplementedError  # the attack: a stub the source shows, replaced by `exec` in a later cell


def _multi_in(X, K):
    return sum(corr2d(x, k) for x, k in zip(X, K))


def _multi_in_out(X, K):
    return torch.stack([_multi_in(X, k) for k in K], 0)
"""

SWAPS = """
globals()["corr2d_multi_in"] = _multi_in
corr2d_multi_in_out.__code__ = _multi_in_out.__code__
exec("def corr2d_multi_in_out_1x1(X, K):\\n    return _multi_in_out(X, K)")
"""

#: A pooling that, once called, rewrites the grader's kernel-side table so that every later call answers as the book.
REWRITER = """
def pool2d(X, pool_size, mode="max"):
    hw = sys.modules["_hwgrader"]
    book = lambda X, pool_size, mode="max": (F.max_pool2d if mode == "max" else F.avg_pool2d)(X[None, None], pool_size, 1)[0, 0]
    hw.defs["pool2d"] = (book, 3)
    return book(X, pool_size, mode)


class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.rand(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, X):
        os.kill(os.getpid(), 9)
"""

#: The last cell: comparisons patched in the notebook's kernel; the honest LeNet is graded elsewhere.
PATCHES = """
torch.allclose = lambda *args, **kwargs: False
torch.Tensor.__eq__ = lambda self, other: torch.tensor(False)
F.conv2d = None
"""


#: A Y typed in by hand beside a corr2d that computes nothing, and a learned kernel typed in by hand.
TYPED_Y = (
    "import torch\n\ndef corr2d(X, K):\n    return torch.zeros((X.shape[0] - K.shape[0] + 1, X.shape[1] - K.shape[1] + 1))",
    "X = torch.ones((6, 8))\nX[:, 2:6] = 0\nK = torch.tensor([[1.0, -1.0]])\nY = torch.zeros((6, 7))\nY[:, 1] = 1\nY[:, 5] = -1",
    # the learned kernel typed in by hand, after a gradient that left the layer's weight with a .grad
    "from torch import nn\nconv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)\nconv2d(X.reshape(1, 1, 6, 8)).sum().backward()",
    "conv2d.weight.data[:] = torch.tensor([[[[1.0, -1.0]]]])",
)


FORGED_TABLE = (
    "import torch\nfrom torch import nn",
    "conv2d = nn.LazyConv2d(1, kernel_size=(1, 2), bias=False)\nconv2d(torch.ones(1, 1, 6, 8))",  # built, never trained
    # a later cell finds the grader's snapshot table in its own kernel and claims cell 1 trained the edge kernel
    "import gc\n"
    "for table in [o for o in gc.get_objects() if type(o) is dict and 'learn_kernel' in o]:\n"
    "    entry = table['learn_kernel']\n"
    "    if isinstance(entry, dict) and isinstance(entry.get('candidates'), list):\n"
    "        entry['candidates'].append({'name': 'conv2d', 'trained': True, 'cell': 1, 'hint': True,\n"
    "            'reason': 'it was built in this cell and trained there', 'values': {'weight': torch.tensor([[[[1.0, -1.0]]]])}})",
)


def _grade(folder: Path, name: str, sources: tuple[str, ...], data_dir: Path):
    path = folder / f"{name}.ipynb"
    nbformat.write(new_notebook(cells=[new_code_cell(s) for s in sources]), path)
    options = GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu", cell_timeout=60)
    result = grade_notebook(path, load_assignment("hw2"), options)
    return result, {q.id: q for q in result.questions}


@pytest.fixture(scope="module")
def attacks_graded(tmp_path_factory, data_dir):
    return _grade(tmp_path_factory.mktemp("clean_room"), "attacks", (IMPORTS, HONEST, STUBS, SWAPS, REWRITER, PATCHES), data_dir)


@pytest.fixture(scope="module")
def typed_y_graded(tmp_path_factory, data_dir):
    return _grade(tmp_path_factory.mktemp("clean_room"), "typed_y", TYPED_Y, data_dir)


@pytest.fixture(scope="module")
def forged_table_graded(tmp_path_factory, data_dir):
    return _grade(tmp_path_factory.mktemp("clean_room"), "forged_table", FORGED_TABLE, data_dir)


@pytest.mark.parametrize("question", ["corr2d_multi_in", "corr2d_multi_in_out", "conv1x1"])
def test_code_made_at_run_time_in_place_of_the_stub_the_source_shows_earns_nothing(attacks_graded, question):
    verdict = attacks_graded[1][question]
    assert verdict.points == 0 and verdict.status != "pass", verdict.message


def test_a_call_that_rewrites_the_graders_kernel_side_table_earns_nothing(attacks_graded):
    pool2d = attacks_graded[1]["pool2d"]
    assert pool2d.points == 0 and pool2d.status == "error", pool2d.message
    assert "_hwgrader" in pool2d.message  # the module is not there to be found: a KeyError at their own line


def test_a_call_that_kills_its_own_process_costs_only_its_question(attacks_graded):
    result, verdicts = attacks_graded
    conv = verdicts["conv2d_layer"]
    assert conv.points == 0 and conv.status == "error" and "signal 9" in conv.message, conv.message
    assert result.execution.status == "ok"  # the notebook's kernel never saw it


def test_honest_definitions_beside_the_attacks_keep_their_points(attacks_graded):
    verdicts = attacks_graded[1]
    assert verdicts["corr2d"].status == "pass", verdicts["corr2d"].message
    assert verdicts["lenet_arch"].status == "pass", verdicts["lenet_arch"].message


def test_a_y_typed_in_by_hand_beside_a_broken_corr2d_does_not_pass_edge_detection(typed_y_graded):
    edge = typed_y_graded[1]["edge_detect"]
    assert edge.points == 0 and edge.status == "fail", edge.message
    assert "your own corr2d" in edge.message


def test_a_learned_kernel_typed_in_by_hand_is_not_taken_for_a_trained_one(typed_y_graded):
    learn = typed_y_graded[1]["learn_kernel"]
    assert learn.points == 0 and learn.status == "fail", learn.message
    assert "after cell 2" in learn.message and "after cell 3" not in learn.message  # the hand-set weight is never graded


def test_a_snapshot_table_forged_to_say_trained_earns_nothing_where_the_rerun_trains_nothing(forged_table_graded):
    learn = forged_table_graded[1]["learn_kernel"]
    assert learn.points == 0 and learn.status == "fail", learn.message
    assert "reran cell 1" in learn.message and "not trained there" in learn.message
