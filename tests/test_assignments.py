"""Assignments are folders: a TA adds one without touching grader/, and hidden checks stay hidden."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from grader.run.cli import main
from tests.conftest import REPO

DEMO = REPO / "assignments" / "demo"


@pytest.fixture(scope="module")
def quick(data_dir):
    return GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu")


def test_check_assignment_demo_passes(data_dir, capsys):
    assert main(["check-assignment", "demo", "--data-dir", str(data_dir), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "ok    the solution earns 4/4" in out and "ok    the template earns 0" in out
    assert out.strip().endswith("3 passed, 0 failed")


def test_check_assignment_hw2_passes(data_dir, capsys):
    """What the course's CI runs: template current, solution full marks, template zero, claims hold."""
    assert main(["check-assignment", "hw2", "--data-dir", str(data_dir), "--device", "cpu"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == f"{len(lines) - 1} passed, 0 failed"
    assert any(line.startswith("ok    claim output_shape_matches_pytorch") for line in lines)


def test_hidden_questions_run_where_their_checks_are(quick):
    result = grade_notebook(DEMO / "solution.ipynb", load_assignment("demo"), quick)
    assert [q.id for q in result.questions] == ["relu", "softmax", "softmax_shift"]
    assert result.hidden_questions_not_run == 0 and result.score == 4


def test_without_the_hidden_checks_a_self_check_says_they_were_not_run(quick, tmp_path):
    student_copy = tmp_path / "demo"
    shutil.copytree(DEMO, student_copy, ignore=shutil.ignore_patterns("checks_hidden.py", "__pycache__"))
    result = grade_notebook(DEMO / "solution.ipynb", load_assignment(student_copy), quick)
    assert [q.id for q in result.questions] == ["relu", "softmax"]
    assert result.hidden_questions_not_run == 1 and result.max_score == 3


def test_an_assignment_without_a_check_for_a_question_is_refused(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "config.toml").write_text('name = "broken"\n[[questions]]\nid = "q1"\npoints = 1\n', encoding="utf-8")
    (folder / "checks.py").write_text("", encoding="utf-8")
    with pytest.raises(ValueError, match="no check_<id> for: q1"):
        load_assignment(folder)


def test_an_assignment_with_a_malformed_full_threshold_is_refused_when_loaded(tmp_path):
    folder = tmp_path / "thresholds"
    folder.mkdir()
    config = 'name = "t"\n[[questions]]\nid = "q1"\npoints = 1\nfull_threshold = { "60,000" = 0.7 }\n'
    (folder / "config.toml").write_text(config, encoding="utf-8")
    (folder / "checks.py").write_text("def check_q1(sub):\n    pass\n", encoding="utf-8")
    with pytest.raises(ValueError, match="question 'q1': full_threshold: '60,000' is not a training-set size"):
        load_assignment(folder)


def test_an_unknown_assignment_is_a_usage_error(capsys):
    assert main(["check-assignment", "no-such-assignment"]) == 2
    assert "no assignment" in capsys.readouterr().err


def test_loading_an_assignment_imports_no_checks_and_no_torch():
    """So that reusing cached results (a rerun of a graded batch) takes a fraction of a second."""
    import subprocess
    import sys

    code = "import sys; from grader.course.assignment import load_assignment; load_assignment('hw2'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
