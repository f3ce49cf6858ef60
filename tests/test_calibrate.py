"""`grade calibrate`: full-budget thresholds proposed from a full run of the solution."""

from __future__ import annotations

import json
import re

import pytest

from grader import results as r
from grader.assignment import load_assignment
from grader.calibrate import propose
from grader.cli import main
from tests.conftest import with_thresholds


def trained(qid: str, status: str, accuracy: float | None, train_images: int = 7000, **extra) -> r.QuestionResult:
    details = {} if accuracy is None else {"validation_accuracy": accuracy, "images": 1200, "train_images": train_images}
    return r.QuestionResult(qid, qid, status, 0.0, 2.0, extra.pop("message", ""), {**details, **extra}, "8.2")


def full_run(*questions: r.QuestionResult, budget: str = "full") -> r.GradeResult:
    return r.GradeResult("assignments/hw2/solution.ipynb", "ab" * 32, "hw2", budget, "cpu", "0.1.0",
                         r.ExecutionRecord("ok", ""), list(questions), graded_at="2026-11-22T23:00:00+00:00")  # fmt: skip


@pytest.fixture(scope="module")
def hw2():
    """HW2 with known thresholds (the real config's numbers change when it is calibrated again)."""
    settings = {"lenet_train": {"60000": 0.7}, "vgg_train": {"60000": 0.85}, "resnet_train": 0.85}
    return with_thresholds(load_assignment("hw2"), settings)


def test_a_threshold_is_proposed_a_margin_below_the_solutions_accuracy_for_the_size_it_trained_on(hw2):
    vgg = next(p for p in propose(full_run(trained("vgg_train", "pass", 0.8342)), hw2, margin=0.1) if p.question == "vgg_train")
    assert (vgg.threshold, vgg.train_images, vgg.validation_images) == (0.73, 7000, 1200)
    assert "83.4% on 1,200 validation images after training on 7,000" in vgg.reason


def test_the_proposal_keeps_the_other_calibrated_sizes_as_a_line_to_paste(hw2):
    lenet = propose(full_run(trained("lenet_train", "manual", 0.81)), hw2)[0]
    assert lenet.toml == "full_threshold = { 60000 = 0.70, 7000 = 0.71 }"


def test_a_proposal_says_when_it_replaces_one_threshold_for_any_training_set(hw2):
    resnet = propose(full_run(trained("resnet_train", "pass", 0.9)), hw2)[2]
    assert resnet.toml == "full_threshold = { 7000 = 0.80 }" and "replaces the one threshold 0.85" in resnet.reason


def test_no_bar_is_proposed_for_a_model_near_chance(hw2):
    lenet = propose(full_run(trained("lenet_train", "manual", 0.098)), hw2)[0]
    assert lenet.threshold is None and lenet.toml == "" and "leave this size to a TA" in lenet.reason


def test_a_question_the_run_measured_nothing_for_says_why(hw2):
    proposals = propose(full_run(trained("lenet_train", "error", None, message="kernel died")), hw2)
    assert proposals[0].accuracy is None and "error: kernel died" in proposals[0].reason
    assert "not in the result" in proposals[1].reason  # vgg_train was not graded at all


def test_a_result_that_does_not_say_how_many_images_it_trained_on_proposes_nothing(hw2):
    old = trained("vgg_train", "pass", 0.8)
    del old.details["train_images"]
    vgg = propose(full_run(old), hw2)[1]
    assert vgg.accuracy is None and "does not say how many images the model trained on" in vgg.reason


def test_a_quick_result_is_refused(hw2):
    with pytest.raises(ValueError, match="quick budget; calibration needs a full run"):
        propose(full_run(trained("vgg_train", "pass", 0.8), budget="quick"), hw2)


def test_the_command_prints_a_line_per_question_and_exits_1_when_one_measured_nothing(tmp_path, capsys):
    path = tmp_path / "solution.json"
    run = full_run(trained("lenet_train", "manual", 0.098), trained("vgg_train", "pass", 0.8342), trained("resnet_train", "pass", 0.9))
    path.write_text(json.dumps(run.to_dict()), encoding="utf-8")
    assert main(["calibrate", "hw2", str(path)]) == 0
    out = capsys.readouterr().out
    assert "vgg_train: 83.4% on 1,200" in out and re.search(r"full_threshold = \{ (.*, )?7000 = 0\.73 \}", out)
    assert "lenet_train: 9.8%" in out and "resnet_train: 90.0%" in out
    run.questions.pop()
    path.write_text(json.dumps(run.to_dict()), encoding="utf-8")
    assert main(["calibrate", "hw2", str(path)]) == 1
    assert "resnet_train: the run measured no accuracy" in capsys.readouterr().out


def test_an_unreadable_result_is_a_usage_error(tmp_path, capsys):
    path = tmp_path / "broken.json"
    path.write_text("{", encoding="utf-8")
    assert main(["calibrate", "hw2", str(path)]) == 2
    assert capsys.readouterr().err.startswith("grade calibrate: ")
