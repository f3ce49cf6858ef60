"""Verdicts the kernel cannot forge (issue 17, item 1).

Two notebooks of our own, graded once for the module: a *forger* that rewrites the
kernel-side operations (the table of definitions, the model summary, the forward
and training operations) to return what a passing model would, and an *impostor*
whose code is wrong in ways that only names, counts and self-reported weights
used to hide. Every forged or wrong question earns nothing, and says why.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from tests.notebook_sources import BOOK_LENET

IMPORTS = "import sys, torch\nfrom torch import nn\nfrom torch.nn import functional as F\n"

STUBS = """
def vgg_block(num_convs, out_channels):
    return nn.Sequential()

class VGG(nn.Module):
    def __init__(self, arch, lr=0.1, num_classes=10):
        super().__init__()

class ResNet18(nn.Module):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()

class Residual(nn.Module):
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()

class Conv2D(nn.Module):
    def __init__(self, kernel_size):
        super().__init__()
"""

#: The kernel-side operations rewritten to answer as a passing model would, without one.
FORGERY = """
hw = sys.modules["_hwgrader"]
real_forward, real_summary = hw.OPS["forward"], hw.OPS["summary"]

def fake_forward(name, args, kwargs, X, seed, state=None, modes=("train", "eval")):
    if name == "LeNet":  # the real LeNet passes its architecture; only its training is forged
        return real_forward(name, args, kwargs, X, seed, state, modes)
    X = hw.decode(X)
    sent = hw.decode(state) if state is not None else []
    zeros = [torch.zeros_like(t) for t in sent]
    shape = (X.shape[0], 10) if X.dim() == 4 and name != "Residual" and name != "vgg_block" else tuple(X.shape)
    return {"ok": {"outputs": {m: torch.zeros(shape) for m in modes}, "state": sent or zeros, "keys": [], "cell": 1}}

def fake_summary(name, args, kwargs, input_shape, seed):
    if name == "LeNet":
        return real_summary(name, args, kwargs, input_shape, seed)
    return {"ok": {"rows": [], "parameters": 61706, "module_types": ["Sigmoid", "AvgPool2d"], "cell": 1}}

def fake_train(name, args, kwargs, X, y, procedure, state=None):
    sent = hw.decode(state) if state is not None else []
    before = [torch.zeros_like(t) for t in sent]
    if before:
        before[-1] = before[-1] + 30.0  # a large last bias: a large "loss before"
    after = [torch.zeros_like(t) for t in sent]  # all-zero logits: loss 2.303
    return {"ok": {"before": before, "after": after, "keys": [], "cell": 1, "losses": [6.878, 2.303]}}

hw.OPS["forward"] = fake_forward
hw.OPS["summary"] = fake_summary
hw.OPS["train"] = fake_train
hw.defs["pool2d"] = (lambda X, pool_size, mode="max": F.max_pool2d(X[None, None], pool_size, 1)[0, 0], 1)
"""

WRONG_CODE = """
class Conv2D(nn.Module):  # zero weights and a forward that returns zeros
    def __init__(self, kernel_size):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(kernel_size))
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, X):
        return torch.zeros(X.shape[0] - self.weight.shape[0] + 1, X.shape[1] - self.weight.shape[1] + 1)


class Residual(nn.Module):  # no first BatchNorm, no ReLU between the convolutions, second BatchNorm scale 0
    def __init__(self, num_channels, use_1x1conv=False, strides=1):
        super().__init__()
        self.conv1 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1, stride=strides)
        self.conv2 = nn.LazyConv2d(num_channels, kernel_size=3, padding=1)
        self.conv3 = nn.LazyConv2d(num_channels, kernel_size=1, stride=strides) if use_1x1conv else None
        self.bn1 = nn.LazyBatchNorm2d()
        self.bn2 = nn.LazyBatchNorm2d()

    def forward(self, X):
        Y = self.bn2(self.conv2(self.conv1(X)))
        if self.conv3:
            X = self.conv3(X)
        return F.relu(Y + X)


class Sigmoid(nn.ReLU):  # a ReLU by another name
    pass


class AvgPool2d(nn.MaxPool2d):  # a max-pool by another name
    pass


class LeNet(nn.Module):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), Sigmoid(), AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), Sigmoid(), AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(), nn.LazyLinear(120), Sigmoid(), nn.LazyLinear(84), Sigmoid(), nn.LazyLinear(num_classes))

    def forward(self, X):
        return self.net(X)


def _slide(X, K):
    return F.conv2d(X[None, None], K[None, None])[0, 0]


def corr2d(X, K):  # a library shortcut, one call away
    return _slide(X, K)
"""


def _notebook(folder: Path, name: str, *sources: str) -> Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources]), path)
    return path


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory, data_dir):
    folder = tmp_path_factory.mktemp("forgery")
    options = GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu", cell_timeout=60)
    hw2 = load_assignment("hw2")
    graded = {}
    for name, sources in (("forger", (IMPORTS, BOOK_LENET + STUBS, FORGERY)), ("impostor", (IMPORTS, WRONG_CODE))):
        result = grade_notebook(_notebook(folder, name, *sources), hw2, options)
        graded[name] = {q.id: q for q in result.questions}
    return graded


@pytest.mark.parametrize("question", ["vgg_block", "vgg_arch", "resnet18_arch", "residual", "conv2d_layer"])
def test_forged_forward_and_summary_operations_earn_nothing(verdicts, question):
    assert verdicts["forger"][question].status != "pass", verdicts["forger"][question].message
    assert verdicts["forger"][question].points == 0


def test_the_real_lenet_beside_the_forgeries_passes_its_architecture(verdicts):
    assert verdicts["forger"]["lenet_arch"].status == "pass", verdicts["forger"]["lenet_arch"].message


def test_a_forged_training_operation_never_answers_the_training_check(verdicts):
    # The clean room trains the LeNet the source defines, in a fork that never saw the forged table: the real
    # model's real training is judged (it is the book's, so it passes), never the forged 6.878 -> 2.303.
    lenet = verdicts["forger"]["lenet_train"]
    assert lenet.status == "pass", lenet.message
    assert lenet.details["student_loss"] == pytest.approx(lenet.details["reference_loss"], abs=1e-3)


def test_a_forged_training_operation_is_judged_from_the_graders_own_starting_loss(verdicts):
    details = verdicts["forger"]["lenet_train"].details
    before = details["student_loss"][0]
    assert before == details["reference_loss"][0] and before < 3.0  # not the forged 6.878


def test_a_name_written_into_the_kernels_table_but_never_defined_is_missing(verdicts):
    pool2d = verdicts["forger"]["pool2d"]
    assert pool2d.status == "missing" and "pool2d" in pool2d.message


def test_a_conv2d_layer_that_returns_zeros_fails(verdicts):
    conv = verdicts["impostor"]["conv2d_layer"]
    assert conv.status == "fail" and "Conv2D" in conv.message


def test_a_residual_block_without_its_first_batchnorm_and_relu_fails(verdicts):
    assert verdicts["impostor"]["residual"].status == "fail", verdicts["impostor"]["residual"].message


def test_a_relu_named_sigmoid_and_a_maxpool_named_avgpool_fail_the_lenet_architecture(verdicts):
    lenet = verdicts["impostor"]["lenet_arch"]
    assert lenet.status == "fail" and "LeNet" in lenet.message


def test_a_library_call_through_a_helper_is_flagged_for_the_ta(verdicts):
    corr2d = verdicts["impostor"]["corr2d"]
    assert corr2d.status == "pass"
    assert "conv2d" in corr2d.details.get("policy", "") and "_slide" in corr2d.details["policy"]
