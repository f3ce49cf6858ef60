"""Probes a model cannot recognise, and library calls found from what runs (issue 26, items 2 and 3).

An architecture passes when the student's model computes the book's function on an input the grader draws.
A model that recognises that input -- its size, its gradients being off, its distribution -- and computes the
book's function only there earns nothing. One notebook of our own, graded once for the module: each graded
name is a different such model, beside an honest one that keeps its points. The unit-level rule for layer
tables is tested without a kernel at the end.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.checking.architecture_checks import shapes_disagree
from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook

IMPORTS = "import torch\nfrom torch import nn\n"

#: Computes the book's block only on inputs with negative values (the grader's inputs used to be all randn).
DISTRIBUTION = """
class _Recognises(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, X):
        Y = self.inner(X)
        seen = (X.flatten(1) < 0).any(dim=1).float().reshape(-1, *([1] * (Y.dim() - 1)))
        return Y * seen  # zeros for an image-like input

def vgg_block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers += [nn.LazyConv2d(out_channels, kernel_size=3, padding=1), nn.ReLU()]
    return _Recognises(nn.Sequential(*layers, nn.MaxPool2d(kernel_size=2, stride=2)))
"""

#: A global pooling where the book flattens: the same function only while the last map is 1x1.
GLOBAL_POOL = """
def _block(num_convs, out_channels):
    layers = []
    for _ in range(num_convs):
        layers += [nn.LazyConv2d(out_channels, kernel_size=3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.MaxPool2d(kernel_size=2, stride=2))

class VGG(nn.Module):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            *[_block(n, c) for n, c in arch], nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(),
            nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5), nn.LazyLinear(4096), nn.ReLU(), nn.Dropout(0.5),
            nn.LazyLinear(num_classes))

    def forward(self, X):
        return self.net(X)
"""

#: The book's LeNet while gradients are off (the old probe), another network while it trains.
GRADIENTS = """
class LeNet(nn.Module):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(), nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), nn.Sigmoid(), nn.LazyLinear(84), nn.Sigmoid(), nn.LazyLinear(num_classes))

    def forward(self, X):
        Y = self.net(X)
        return torch.relu(Y) if torch.is_grad_enabled() else Y
"""

HONEST_RESIDUAL = """
from torch.nn import functional as F

class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = F.relu(self.bn1(self.conv1(X)))
        Y = self.bn2(self.conv2(Y))
        if self.conv3:
            X = self.conv3(X)
        Y += X
        return F.relu(Y)
"""


#: A built-in convolution no reading of the source names: flagged from the operations it ran.
HIDDEN_CONV = """
from torch.nn import functional as F
_op = getattr(F, "conv" + "2d")

def corr2d(X, K):
    return _op(X[None, None].float(), K[None, None].float())[0, 0]
"""

HONEST_POOL = """
def pool2d(X, pool_size, mode='max'):
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == 'max':
                Y[i, j] = X[i: i + p_h, j: j + p_w].max()
            elif mode == 'avg':
                Y[i, j] = X[i: i + p_h, j: j + p_w].mean()
    return Y
"""


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory, data_dir):
    path = tmp_path_factory.mktemp("probes") / "probes.ipynb"
    cells = [IMPORTS, DISTRIBUTION, GLOBAL_POOL, GRADIENTS, HONEST_RESIDUAL, HIDDEN_CONV, HONEST_POOL]
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    options = GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu", cell_timeout=60)
    result = grade_notebook(path, load_assignment("hw2"), options)
    return {q.id: q for q in result.questions}


@pytest.mark.slow
def test_a_block_that_recognises_the_probes_distribution_earns_nothing(verdicts):
    assert verdicts["vgg_block"].status == "fail" and verdicts["vgg_block"].points == 0


@pytest.mark.slow
def test_a_global_pooling_that_equals_the_books_flatten_only_at_1x1_earns_nothing(verdicts):
    vgg = verdicts["vgg_arch"]
    assert vgg.status == "fail" and vgg.points == 0, vgg.message


@pytest.mark.slow
def test_a_model_that_is_the_books_only_without_gradients_earns_nothing(verdicts):
    lenet = verdicts["lenet_arch"]
    assert lenet.status == "fail" and "train mode" in lenet.message, lenet.message


@pytest.mark.slow
def test_the_honest_block_beside_them_keeps_its_points(verdicts):
    assert verdicts["residual"].status == "pass", verdicts["residual"].message


@pytest.mark.slow
def test_a_convolution_reached_by_a_built_name_is_flagged_from_what_ran(verdicts):
    corr2d = verdicts["corr2d"]
    assert corr2d.status == "pass"  # a policy question, not a wrong answer
    assert "`corr2d` ran a built-in convolution (`aten.convolution`)" in corr2d.details.get("policy", ""), corr2d.details


@pytest.mark.slow
def test_an_honest_pooling_loop_is_not_flagged(verdicts):
    assert verdicts["pool2d"].status == "pass" and "policy" not in verdicts["pool2d"].details, verdicts["pool2d"].details


# -- layer tables at the book's input size, without a kernel ------------------------------------------

BOOK = [[1, 64, 56, 56], [1, 128, 28, 28], [1, 512, 7, 7], [1, 25088], [1, 4096], [1, 10]]


def test_layers_grouped_more_coarsely_than_the_books_agree():
    assert shapes_disagree([[1, 128, 28, 28], [1, 512, 7, 7], [1, 10]], BOOK) == ""


def test_layers_listed_more_finely_than_the_books_agree():
    finer = [[1, 64, 56, 56], [1, 64, 56, 56], [1, 128, 28, 28], [1, 512, 7, 7], [1, 25088], [1, 4096], [1, 4096], [1, 10]]
    assert shapes_disagree(finer, BOOK) == ""


def test_a_global_pooling_where_the_book_flattens_disagrees_and_says_where():
    pooled = [[1, 64, 56, 56], [1, 128, 28, 28], [1, 512, 7, 7], [1, 512, 1, 1], [1, 512], [1, 4096], [1, 10]]
    assert shapes_disagree(pooled, BOOK) == "at the book's input size its layers output (1, 512, 1, 1) where the book's output (1, 25088)"


def test_a_model_listed_as_one_row_is_judged_by_its_output():
    assert shapes_disagree([[1, 10]], BOOK, whole=True) == ""
    assert "expected (1, 10)" in shapes_disagree([[1, 512]], BOOK, whole=True)
