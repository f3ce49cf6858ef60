"""End to end: real and hostile notebooks through load -> execute -> check -> result.

Fixture notebooks are graded once per session (a kernel and d2l import per
notebook is the dominant cost) and each test asserts one behaviour.
"""

from __future__ import annotations

import html
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import nbformat
import pytest

from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from grader.reports.html_report import render_report
from grader.results import PHASES, GradeResult
from tests.conftest import FIXTURES, with_thresholds
from tests.notebook_sources import CORR2D, POOL2D_AVG_IS_MAX
from tests.processes import start_stoppable


@pytest.fixture(scope="session")
def hw2():
    return load_assignment("hw2")


@pytest.fixture(scope="session")
def options(data_dir):
    return GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu", cell_timeout=60)


@pytest.fixture(scope="session")
def graded(hw2, options, request):
    """Grade a path once per session, whatever test asks first.

    The fixture submissions come from the session's batch (graded together
    by the command line, as a TA does); built notebooks are graded here.
    """
    cache: dict[str, object] = {}

    def grade(path: Path, **overrides):
        key = f"{path}:{sorted(overrides.items())}"
        if key not in cache and path.parent == FIXTURES and not overrides:
            out = request.getfixturevalue("fixture_batch")
            cache[key] = GradeResult.from_dict(json.loads((out / f"{path.stem}.json").read_text(encoding="utf-8")))
        if key not in cache:
            opts = GradeOptions(**{**options.__dict__, **overrides})
            cache[key] = grade_notebook(path, hw2, opts)
        return cache[key]

    return grade


def notebook_file(tmp_path_factory, name: str, *sources: str) -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])
    path = tmp_path_factory.mktemp("nb") / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def by_id(result):
    return {q.id: q for q in result.questions}


# --------------------------------------------------------------------------- fixtures of real students


def test_the_solution_earns_every_auto_graded_point(graded):
    result = graded(FIXTURES / "solution.ipynb")
    failed = {q.id: q.message for q in result.questions if q.status not in ("pass", "manual")}
    assert failed == {}
    assert result.score == result.max_score == 42
    assert result.manual_points_pending == 4


def test_each_phase_of_a_batch_s_grading_is_timed_within_its_grading_time(graded):
    result = graded(FIXTURES / "solution.ipynb")  # graded by a batch's grading process: its report's time too
    assert list(result.phase_seconds) == list(PHASES)
    assert all(seconds >= 0 for seconds in result.phase_seconds.values())
    assert sum(s for phase, s in result.phase_seconds.items() if phase != "report") <= result.grading_seconds
    assert result.phase_seconds["cells"] > 0 and result.phase_seconds["checks"] > 0


def test_the_solutions_pip_line_is_neutralized_and_recorded(graded):
    result = graded(FIXTURES / "solution.ipynb")
    assert [(n.cell, n.source) for n in result.execution.neutralized] == [(1, "!pip install d2l==1.0.3")]


def test_manual_questions_carry_the_students_prose(graded):
    questions = by_id(graded(FIXTURES / "solution.ipynb"))
    assert "max-pooling cannot be implemented" in questions["ex_maxpool_not_conv"].details["answer"]
    assert questions["ex_conv_commutative"].status == "manual"


@pytest.mark.parametrize("name", ["student_a.ipynb", "student_b.ipynb"])
def test_students_who_rebind_pool2d_are_graded_on_their_own_function(graded, name):
    pool2d = by_id(graded(FIXTURES / name))["pool2d"]
    assert pool2d.status == "pass", pool2d.message
    assert "MaxPool2d" in pool2d.details["rebound"]


@pytest.mark.parametrize("name", ["student_a.ipynb", "student_b.ipynb"])
def test_students_without_answers_get_missing_for_the_exercises(graded, name):
    questions = by_id(graded(FIXTURES / name))
    assert questions["ex_output_shape"].status == "missing"
    assert "ANSWER_OUTPUT_SHAPE" in questions["ex_output_shape"].message
    assert questions["ex_composed_kernel"].status == "missing"


@pytest.mark.parametrize("name", ["student_a.ipynb", "student_b.ipynb"])
def test_students_book_code_passes_the_code_questions(graded, name):
    questions = by_id(graded(FIXTURES / name))
    code_questions = [
        "corr2d",
        "conv2d_layer",
        "edge_detect",
        "learn_kernel",
        "comp_conv2d",
        "corr2d_multi_in",
        "corr2d_multi_in_out",
        "conv1x1",
        "pool2d",
        "lenet_arch",
        "vgg_block",
        "vgg_arch",
        "residual",
        "resnet18_arch",
    ]
    assert {q: questions[q].status for q in code_questions} == {q: "pass" for q in code_questions}


def test_student_b_colab_lines_are_neutralized(graded):
    reasons = [n.reason for n in graded(FIXTURES / "student_b.ipynb").execution.neutralized]
    assert reasons.count("Google Drive mount") == 1 and reasons.count("Colab-only import") == 1
    assert reasons.count("shell command") == 3


# --------------------------------------------------------------------------- notebooks built to break things


def test_an_off_by_one_corr2d_fails_with_the_shapes(graded, tmp_path_factory):
    wrong = CORR2D.replace("X.shape[0] - h + 1", "X.shape[0] - h")
    corr2d = by_id(graded(notebook_file(tmp_path_factory, "off_by_one", wrong)))["corr2d"]
    assert corr2d.status == "fail"
    assert "expected shape (2, 2), got (1, 2)" in corr2d.message


def test_a_pool2d_whose_avg_computes_max_fails_on_avg(graded, tmp_path_factory):
    pool2d = by_id(graded(notebook_file(tmp_path_factory, "avg_max", POOL2D_AVG_IS_MAX)))["pool2d"]
    assert pool2d.status == "fail"
    assert "'avg'" in pool2d.message and "expected 2, got 4" in pool2d.message


def test_a_property_failure_reports_the_shrunk_example(graded, tmp_path_factory):
    wrong = CORR2D.replace("(X[i:i + h, j:j + w] * K).sum()", "(X[i:i + h, j:j + w] * K).sum() + (1 if X.shape[0] > 3 else 0)")
    corr2d = by_id(graded(notebook_file(tmp_path_factory, "big_only", wrong)))["corr2d"]
    assert corr2d.status == "fail"
    assert "smallest failing example" in corr2d.message and "example" in corr2d.details


def test_a_missing_name_says_it_is_not_defined(graded, tmp_path_factory):
    result = graded(notebook_file(tmp_path_factory, "empty", "x = 1"))
    corr2d = by_id(result)["corr2d"]
    assert corr2d.status == "missing" and corr2d.message == "`corr2d` is not defined"
    assert result.score == 0


def test_a_raising_function_is_an_error_naming_the_exception_and_cell(graded, tmp_path_factory):
    source = "import torch\ndef corr2d(X, K):\n    h, w = K.shape\n    return X[h + 100]"
    corr2d = by_id(graded(notebook_file(tmp_path_factory, "raises", source)))["corr2d"]
    assert corr2d.status == "error"
    assert "IndexError" in corr2d.message and "cell 0" in corr2d.message and "line 4" in corr2d.message


def test_a_library_shortcut_passes_but_is_flagged_for_the_ta(graded, tmp_path_factory):
    shortcut = (
        "import torch\nfrom torch.nn import functional as F\ndef corr2d(X, K):\n    return F.conv2d(X[None, None], K[None, None])[0, 0]"
    )
    corr2d = by_id(graded(notebook_file(tmp_path_factory, "shortcut", shortcut)))["corr2d"]
    assert corr2d.status == "pass" and corr2d.details["policy"].startswith("uses `F.conv2d`")


def test_a_cell_that_raises_does_not_stop_later_cells(graded, tmp_path_factory):
    result = graded(notebook_file(tmp_path_factory, "raise_then", "raise RuntimeError('oops')", CORR2D))
    assert result.execution.cells[0].status == "error" and by_id(result)["corr2d"].status == "pass"


def test_a_hanging_cell_times_out_and_the_rest_is_graded(graded, tmp_path_factory):
    result = graded(notebook_file(tmp_path_factory, "hang", CORR2D, "while True:\n    pass", POOL2D_AVG_IS_MAX), cell_timeout=3)
    assert result.execution.status == "timeout" and result.execution.cells[1].status == "timeout"
    assert by_id(result)["corr2d"].status == "pass" and by_id(result)["pool2d"].status == "fail"


def test_os_exit_in_the_last_cell_is_a_crash_and_earlier_work_still_counts(graded, tmp_path_factory):
    result = graded(notebook_file(tmp_path_factory, "exit", CORR2D, "import os\nos._exit(1)"))
    assert result.execution.status == "crashed" and "cell 1" in result.execution.message
    assert by_id(result)["corr2d"].status == "pass"


def test_patching_comparisons_in_the_kernel_gains_nothing(graded, tmp_path_factory):
    hostile = """
import torch, builtins
torch.allclose = lambda *a, **k: True
torch.equal = lambda *a, **k: True
torch.Tensor.__eq__ = lambda self, other: True
builtins.abs = lambda x: 0
def corr2d(X, K):
    return torch.zeros(1)
"""
    corr2d = by_id(graded(notebook_file(tmp_path_factory, "patcher", hostile)))["corr2d"]
    assert corr2d.status == "fail"


def test_printing_a_fake_score_or_reply_gains_nothing(graded, tmp_path_factory):
    fake = 'print(\'{"score": 100, "max_score": 100}\')\nprint(\'@@hwgrader:{"ok": 1}\')'
    result = graded(notebook_file(tmp_path_factory, "fake", fake))
    assert result.score == 0 and by_id(result)["corr2d"].status == "missing"


def test_invalid_json_is_graded_as_invalid_with_zero(graded, tmp_path_factory):
    path = tmp_path_factory.mktemp("bad") / "broken.ipynb"
    path.write_text('{"cells": [', encoding="utf-8")
    result = graded(path)
    assert result.execution.status == "invalid" and "not JSON" in result.execution.message
    assert result.score == 0 and all(q.status in ("error", "manual") for q in result.questions)


def test_an_nbformat_3_notebook_is_upgraded_and_graded(graded, tmp_path_factory):
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell(CORR2D)])])
    path = tmp_path_factory.mktemp("v3") / "old.ipynb"
    path.write_text(json.dumps(v3), encoding="utf-8")
    assert by_id(graded(path))["corr2d"].status == "pass"


def test_an_error_raised_on_a_line_the_grader_replaced_is_said_to_be_the_graders(hw2, options, tmp_path_factory, monkeypatch):
    """Issue 27, item 5: the grader's replacement for a Colab line fails (a bug of the grader's, injected); the
    notebook's own error in the next cell stays its own."""
    from grader.source import neutralize

    monkeypatch.setattr(neutralize, "REPLACEMENT", "1 / 0  # [grader] neutralized: {reason}")
    path = notebook_file(tmp_path_factory, "mount", "x = 1\ndrive.mount('/content/drive')", "y = 1 / 0")
    result = grade_notebook(path, hw2, options)
    note = (
        "(the line `drive.mount('/content/drive')` was replaced by the grader (Google Drive mount): "
        "the grader's error, not this notebook's)"
    )
    assert result.execution.cells[0].error == f"ZeroDivisionError: division by zero {note}"
    assert result.execution.cells[1].error == "ZeroDivisionError: division by zero"
    assert result.execution.message == f"cell 0 raised ZeroDivisionError: division by zero {note}"
    assert f"cell 0 raised ZeroDivisionError: division by zero {note}" in html.unescape(render_report(result, None))


# --------------------------------------------------------------------------- the command


def test_grade_json_prints_one_result_object_and_writes_the_file(tmp_path, tmp_path_factory, data_dir):
    path = notebook_file(tmp_path_factory, "cli", CORR2D)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.run.cli",
            str(path),
            "--out",
            str(tmp_path / "reports"),
            "--json",
            "--budget",
            "quick",
            "--device",
            "cpu",
            "--data-dir",
            str(data_dir),
            "--junit",
            str(tmp_path / "junit.xml"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["schema_version"] == 1 and data["budget"] == "quick"
    assert json.loads((tmp_path / "reports" / "cli.json").read_text()) == data
    suite = ET.parse(tmp_path / "junit.xml").getroot().find("testsuite")
    assert suite.get("tests") == str(len(data["questions"])) and suite.find("testcase[@name='corr2d']/failure") is None


def test_grading_a_notebook_whose_cells_have_no_ids_prints_no_nbformat_warning(tmp_path, data_dir):
    """Issue 27, item 6: the file is graded, and nbformat's MissingIDFieldWarning does not reach the terminal."""
    from tests.test_load import WITHOUT_IDS

    path = tmp_path / "no_ids.ipynb"
    path.write_bytes(WITHOUT_IDS)
    command = [sys.executable, "-m", "grader.run.cli", str(path), "--assignment", "demo", "--out", str(tmp_path / "out"), "--json"]
    out = subprocess.run(
        [*command, "--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir)], capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["execution"]["status"] == "ok"
    assert "MissingIDFieldWarning" not in out.stderr and "missing an id" not in out.stderr


def test_grade_exits_1_under_fail_under(tmp_path, tmp_path_factory, data_dir):
    path = notebook_file(tmp_path_factory, "low", "x = 1")
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.run.cli",
            str(path),
            "--out",
            str(tmp_path),
            "--budget",
            "quick",
            "--device",
            "cpu",
            "--data-dir",
            str(data_dir),
            "--fail-under",
            "50",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 1
    assert "score 0/42" in out.stdout


LENET_UNTRAINED = """
import torch
from torch import nn
from d2l import torch as d2l

class LeNet(d2l.Classifier):
    def __init__(self, lr=0.1, num_classes=10):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(
            nn.LazyConv2d(6, kernel_size=5, padding=2), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.LazyConv2d(16, kernel_size=5), nn.Sigmoid(),
            nn.AvgPool2d(kernel_size=2, stride=2),
            nn.Flatten(),
            nn.LazyLinear(120), nn.Sigmoid(),
            nn.LazyLinear(84), nn.Sigmoid(),
            nn.LazyLinear(num_classes))
"""
TRAIN_WITH_ZERO_LR = """
trainer = d2l.Trainer(max_epochs=1)
data = d2l.FashionMNIST(batch_size=256)
model = LeNet(lr=0.0)
trainer.fit(model, data)
"""


@pytest.fixture(scope="module")
def train_images(data_dir) -> int:
    from grader.course.fashion_mnist import training_images

    return training_images(str(data_dir))  # 7,000 in the shared subset


def test_full_budget_evaluates_the_notebooks_own_trained_model(hw2, options, tmp_path_factory, train_images):
    path = notebook_file(tmp_path_factory, "full", LENET_UNTRAINED, TRAIN_WITH_ZERO_LR)
    opts = GradeOptions(**{**options.__dict__, "budget": Budget("full", options.budget.data_dir)})
    result = grade_notebook(path, with_thresholds(hw2, {"lenet_train": {str(train_images): 0.7}}), opts)
    lenet_train = by_id(result)["lenet_train"]
    assert result.budget == "full" and by_id(result)["lenet_arch"].status == "pass"
    assert lenet_train.status == "fail", lenet_train.message
    assert "validation accuracy" in lenet_train.message and lenet_train.details["validation_accuracy"] < 0.3
    assert lenet_train.details["threshold_calibrated_for"] == lenet_train.details["train_images"] == train_images
    assert lenet_train.details["trained_in_cell"] == 1
    from grader.course.fashion_mnist import held_out_images

    held = len(held_out_images(str(options.budget.data_dir))[1])  # the half no kernel is given: 600 of the subset's 1,200
    assert lenet_train.details["images"] == min(2000, held)  # what was used, not what was asked for


def test_full_budget_leaves_an_accuracy_no_threshold_is_calibrated_for_to_a_ta(hw2, options, tmp_path_factory, train_images):
    """The book's LeNet cannot learn in 10 epochs of the 7,000-image subset: a fixed bar would fail a correct notebook."""
    path = notebook_file(tmp_path_factory, "full-uncalibrated", LENET_UNTRAINED, TRAIN_WITH_ZERO_LR)
    opts = GradeOptions(**{**options.__dict__, "budget": Budget("full", options.budget.data_dir)})
    result = grade_notebook(path, with_thresholds(hw2, {"lenet_train": {str(train_images + 1): 0.7}}), opts)
    lenet_train = by_id(result)["lenet_train"]
    assert lenet_train.status == "manual" and lenet_train.points == 0 and not lenet_train.counted
    assert f"after training on {train_images:,} images" in lenet_train.message
    assert f"exist only for {train_images + 1:,} images" in lenet_train.message and "a TA decides" in lenet_train.message
    assert "threshold" not in lenet_train.details and 0 <= lenet_train.details["validation_accuracy"] < 0.3


def test_ctrl_c_leaves_no_kernel_and_says_how_to_resume(tmp_path, tmp_path_factory, data_dir):
    import os
    import signal
    import time

    path = notebook_file(tmp_path_factory, "slow", "import time\ntime.sleep(60)")
    process = start_stoppable(
        [
            sys.executable,
            "-m",
            "grader.run.cli",
            str(path),
            "--out",
            str(tmp_path),
            "--budget",
            "quick",
            "--device",
            "cpu",
            "--data-dir",
            str(data_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    kernels: list[str] = []
    while time.monotonic() < deadline and not kernels:
        time.sleep(0.5)
        kernels = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
    assert kernels, "the kernel never started"
    time.sleep(8)  # inside the sleeping cell
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 130 and "a rerun grades only the rest" in err
    time.sleep(2)
    for pid in kernels:
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid), 0)
