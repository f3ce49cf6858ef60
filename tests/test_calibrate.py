"""`grade calibrate`: full-budget thresholds proposed (and recorded) from full runs of the solution."""

from __future__ import annotations

import json
import re
import shutil
import tomllib
from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

from grader import results as r
from grader.assertions import Fail
from grader.assignment import ASSIGNMENTS_DIR, load_assignment
from grader.calibrate import Run, Z, merge, propose, render, threshold_from, write
from grader.cli import main
from grader.question_context import context_for
from grader.thresholds import Calibration, parse_calibration, threshold_for
from reference import models
from tests.conftest import with_thresholds

#: VGG's validation accuracies in 12 GPU runs of the solution on the 7,000-image subset (issue 15).
VGG_RUNS = [0.739, 0.746, 0.772, 0.753, 0.774, 0.662, 0.789, 0.738, 0.687, 0.771, 0.732, 0.707]


def trained(qid: str, status: str, accuracy: float | None, train_images: int = 7000, **extra) -> r.QuestionResult:
    details = {} if accuracy is None else {"validation_accuracy": accuracy, "images": 1200, "train_images": train_images}
    return r.QuestionResult(qid, qid, status, 0.0, 2.0, extra.pop("message", ""), {**details, **extra}, "8.2")


def full_run(
    *questions: r.QuestionResult,
    budget: str = "full",
    device: str = "cpu",
    graded_at: str = "2026-11-22T23:00:00+00:00",
    observed: dict | None = None,
) -> r.GradeResult:
    return r.GradeResult(
        "assignments/hw2/solution.ipynb",
        "ab" * 32,
        "hw2",
        budget,
        device,
        "0.1.0",
        r.ExecutionRecord("ok", "", observed_device=observed or {}),
        list(questions),
        graded_at=graded_at,
    )


def vgg_runs(*accuracies: float, train_images: int = 7000) -> list[r.GradeResult]:
    """One result per accuracy, each graded at its own time (a run given twice is refused)."""
    return [
        full_run(trained("vgg_train", "pass", a, train_images), graded_at=f"2026-11-22T23:{i:02d}:00+00:00")
        for i, a in enumerate(accuracies)
    ]


def without_calibration(assignment):
    """Tests that must not merge into the runs the real config records."""
    questions = [replace(q, options={k: v for k, v in q.options.items() if k != "full_calibration"}) for q in assignment.questions]
    return replace(assignment, questions=questions)


@pytest.fixture(scope="module")
def hw2():
    """HW2 with known thresholds and no recorded runs (the real config's numbers change when it is calibrated again)."""
    settings = {"lenet_train": {"60000": 0.7}, "vgg_train": {"60000": 0.85}, "resnet_train": 0.85}
    return without_calibration(with_thresholds(load_assignment("hw2"), settings))


@pytest.fixture
def hw2_copy(tmp_path):
    """A copy of assignments/hw2 that ``--write`` may change."""
    folder = tmp_path / "hw2"
    shutil.copytree(ASSIGNMENTS_DIR / "hw2", folder, ignore=shutil.ignore_patterns("solution.ipynb", "__pycache__"))
    return folder


def by_question(proposals):
    return {p.question: p for p in proposals}


def test_a_threshold_is_proposed_a_margin_below_the_solutions_accuracy_for_the_size_it_trained_on(hw2):
    vgg = by_question(propose([full_run(trained("vgg_train", "pass", 0.8342))], hw2, margin=0.1))["vgg_train"]
    (group,) = vgg.groups
    assert (group.threshold, group.train_images, group.calibration.n, group.calibration.sd) == (0.73, 7000, 1, 0.0)
    assert "83.4% on 1,200 validation images after training on 7,000: minus a margin of 0.10" in group.reason


def test_the_proposal_keeps_the_other_calibrated_sizes_as_lines_to_paste(hw2):
    lenet = propose([full_run(trained("lenet_train", "manual", 0.81))], hw2)[0]
    assert lenet.toml.splitlines() == [
        "full_threshold = { 60000 = 0.70, 7000 = 0.71 }",
        'full_calibration = { 7000 = { n = 1, min = 0.81, max = 0.81, mean = 0.81, sd = 0.0, margin = 0.1, devices = ["cpu"], '
        "runs = [0.81] } }",
    ]


def test_a_proposal_says_when_it_replaces_one_threshold_for_any_training_set(hw2):
    resnet = by_question(propose([full_run(trained("resnet_train", "pass", 0.9))], hw2))["resnet_train"]
    assert resnet.full_threshold == {7000: 0.8} and resnet.replaces == 0.85
    assert "resnet_train: this replaces the one threshold 0.85 for any training set" in render([resnet])


def test_no_bar_is_proposed_for_runs_near_chance(hw2):
    lenet = propose(vgg_runs() + [full_run(trained("lenet_train", "manual", 0.098))], hw2)[0]
    assert lenet.groups[0].threshold is None and lenet.toml == "" and "leave this size to a TA" in lenet.groups[0].reason


def test_a_question_the_run_measured_nothing_for_says_why(hw2):
    proposals = by_question(propose([full_run(trained("lenet_train", "error", None, message="kernel died"))], hw2))
    assert not proposals["lenet_train"].groups and "error: kernel died" in proposals["lenet_train"].unmeasured[0]
    assert "not in the result" in proposals["vgg_train"].unmeasured[0]  # vgg_train was not graded at all


def test_a_result_that_does_not_say_how_many_images_it_trained_on_proposes_nothing(hw2):
    old = trained("vgg_train", "pass", 0.8)
    del old.details["train_images"]
    vgg = by_question(propose([full_run(old)], hw2))["vgg_train"]
    assert not vgg.groups and "does not say how many images the model trained on" in vgg.unmeasured[0]


def test_a_quick_result_is_refused(hw2):
    with pytest.raises(ValueError, match="quick budget; calibration needs a full run"):
        propose([full_run(trained("vgg_train", "pass", 0.8), budget="quick")], hw2)


def test_a_run_given_twice_is_refused(hw2):
    run = full_run(trained("vgg_train", "pass", 0.8))
    with pytest.raises(ValueError, match="graded at 2026-11-22T23:00:00\\+00:00 is given twice"):
        propose([run, run], hw2)


# --------------------------------------------------------------------------- several runs and the model


def test_several_results_give_the_runs_statistics_and_a_threshold(hw2):
    vgg = by_question(propose(vgg_runs(0.80, 0.76, 0.78), hw2))["vgg_train"]
    c = vgg.groups[0].calibration
    assert (c.n, c.min, c.max, c.mean, c.sd, c.runs) == (3, 0.76, 0.8, 0.78, 0.02, (0.8, 0.76, 0.78))
    assert vgg.groups[0].threshold == 0.66  # min(0.78 - 3.09 * 0.02 = 0.718, 0.76 - 0.10 = 0.66)
    assert "3 runs (3 new) on 1,200 validation images after training on 7,000: 76.0% to 80.0%, mean 78.0%" in vgg.groups[0].reason


def test_runs_on_different_training_sets_are_calibrated_apart(hw2):
    subset, whole = vgg_runs(0.8, 0.9)
    whole.questions[0].details["train_images"] = 60000
    vgg = by_question(propose([subset, whole], hw2))["vgg_train"]
    assert [(g.train_images, g.calibration.n) for g in vgg.groups] == [(60000, 1), (7000, 1)]
    assert vgg.full_threshold == {60000: 0.8, 7000: 0.7} and set(vgg.full_calibration) == {60000, 7000}
    assert vgg.full_calibration[7000].runs == (0.8,) and vgg.full_calibration[60000].runs == (0.9,)


def test_the_device_a_run_was_on_is_the_one_its_kernel_observed(hw2):
    gpu = full_run(trained("vgg_train", "pass", 0.8), device="cpu", observed={"cuda": True, "name": "H100"})
    cpu = full_run(trained("vgg_train", "pass", 0.7), device="cuda", graded_at="2026-11-23", observed={"cuda": False})
    unknown = full_run(trained("vgg_train", "pass", 0.75), device="cuda", graded_at="2026-11-24")
    assert by_question(propose([gpu], hw2))["vgg_train"].groups[0].calibration.devices == ("cuda",)
    assert by_question(propose([cpu, unknown], hw2))["vgg_train"].groups[0].calibration.devices == ("cpu", "cuda")


def test_the_model_on_the_twelve_vgg_runs_is_bounded_by_the_worst_run_minus_the_margin():
    c = merge(None, [Run(a, 7000, 1200, "cuda") for a in VGG_RUNS], 0.1, 7000)
    assert (c.n, c.min, c.max, c.mean, c.sd) == (12, 0.662, 0.789, 0.7392, 0.0379)
    assert round(Z, 2) == 3.09 and round(c.mean - Z * c.sd, 3) == 0.622  # a correct run falls below with p < 0.1%...
    assert threshold_from(c) == 0.56  # ...but the worst run seen, 66.2%, minus 0.10 is lower still


def test_runs_that_spread_widely_put_the_threshold_below_the_worst_run_minus_the_margin():
    c = merge(None, [Run(a, 7000, 1200, "cuda") for a in (0.6, 0.8, 0.8, 0.8)], 0.1, 7000)
    assert (c.mean, c.sd) == (0.75, 0.1) and threshold_from(c) == 0.44  # 0.75 - 3.09 * 0.1 = 0.441 < 0.6 - 0.1


def test_a_threshold_is_rounded_down_even_where_floating_point_lands_just_below():
    one = Calibration(7000, 1, 0.7, 0.7, 0.7, 0.0, 0.05, ("cpu",), (0.7,))
    assert 0.7 - 0.05 < 0.65 and threshold_from(one) == 0.65


def test_runs_so_spread_that_the_bar_would_be_at_chance_get_none():
    c = merge(None, [Run(a, 7000, 1200, "cuda") for a in (0.31, 0.9, 0.9)], 0.1, 7000)
    assert c.mean > 0.3 and threshold_from(c) is None


# --------------------------------------------------------------------------- merging into the recorded runs


def test_new_runs_are_merged_into_the_runs_the_config_records(hw2):
    recorded = {
        "7000": {"n": 2, "min": 0.76, "max": 0.8, "mean": 0.78, "sd": 0.0283, "margin": 0.1, "devices": ["cuda"], "runs": [0.8, 0.76]}
    }
    assignment = with_thresholds(hw2, {"vgg_train": {"7000": 0.66}})
    assignment = replace(
        assignment,
        questions=[
            replace(q, options={**q.options, "full_calibration": recorded}) if q.id == "vgg_train" else q for q in assignment.questions
        ],
    )
    vgg = by_question(propose(vgg_runs(0.78), assignment))["vgg_train"]
    c = vgg.groups[0].calibration
    assert (c.n, c.runs, c.mean, c.sd, c.devices) == (3, (0.8, 0.76, 0.78), 0.78, 0.02, ("cpu", "cuda"))
    assert vgg.groups[0].new_runs == 1 and "3 runs (2 recorded + 1 new)" in vgg.groups[0].reason


def test_runs_known_only_as_a_range_are_pooled_with_new_ones_and_stay_estimated():
    recorded = Calibration(7000, 12, 0.871, 0.881, 0.876, 0.0031, 0.1, ("cuda",), (), ("mean", "sd"))
    c = merge(recorded, [Run(0.868, 7000, 1200, "cpu")], 0.1, 7000)
    assert (c.n, c.min, c.max, c.mean, c.sd, c.runs) == (13, 0.868, 0.881, 0.8754, 0.0037, (0.868,))
    assert c.estimated == ("mean", "sd") and c.devices == ("cpu", "cuda")
    exact = [0.871, 0.881] * 6  # pooling an exactly summarized group gives what the runs themselves give
    pooled = merge(merge(None, [Run(a, 7000, 0, "cuda") for a in exact], 0.1, 7000), [], 0.1, 7000)
    summarized = replace(pooled, runs=(), estimated=())
    from_summary, from_runs = (merge(c, [Run(0.868, 7000, 0, "cpu")], 0.1, 7000) for c in (summarized, pooled))
    assert (from_summary.mean, from_summary.sd) == (from_runs.mean, from_runs.sd) == (0.8754, 0.0055)


def test_the_committed_thresholds_are_what_the_model_gives_for_the_recorded_runs():
    assignment = load_assignment("hw2")
    recorded = {q.id: parse_calibration(q.options["full_calibration"]) for q in assignment.questions if "full_calibration" in q.options}
    assert set(recorded) == {"vgg_train", "resnet_train"}  # LeNet stays at chance on the subset: a TA decides
    for qid, table in recorded.items():
        setting = next(q for q in assignment.questions if q.id == qid).options["full_threshold"]
        for size, calibration in table.items():
            assert threshold_for(setting, size).accuracy == threshold_from(calibration), (qid, size)
    assert recorded["vgg_train"][7000].runs[:12] == tuple(VGG_RUNS)


# --------------------------------------------------------------------------- --write


def test_write_records_the_runs_and_keeps_every_other_line_and_comment(hw2_copy):
    before = (hw2_copy / "config.toml").read_text(encoding="utf-8")
    assignment = load_assignment(hw2_copy)
    write(assignment, propose(vgg_runs(0.70), assignment))
    after = (hw2_copy / "config.toml").read_text(encoding="utf-8")
    # strict=False: a line count that changed is what the next assertion reports.
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1  # only the VGG record's line
    assert changed[0][1].startswith("full_calibration = { 7000 = { n = 14, ")
    config = tomllib.loads(after)
    vgg = next(q for q in config["questions"] if q["id"] == "vgg_train")
    assert vgg["full_calibration"]["7000"]["runs"][-1] == 0.7 and vgg["full_threshold"] == {"60000": 0.85, "7000": 0.56}
    assert load_assignment(hw2_copy).questions  # still a valid assignment


def test_write_adds_a_calibration_where_the_config_had_none(hw2_copy):
    assignment = load_assignment(hw2_copy)
    lenet = propose([full_run(trained("lenet_train", "pass", 0.85, train_images=60000))], assignment)
    write(assignment, lenet)
    text = (hw2_copy / "config.toml").read_text(encoding="utf-8")
    assert "full_threshold = { 60000 = 0.75 }\nfull_calibration = { 60000 = { n = 1, min = 0.85," in text
    assert "#   - 60000 (the whole training set): provisional" in text
    lenet_config = next(q for q in tomllib.loads(text)["questions"] if q["id"] == "lenet_train")
    assert parse_calibration(lenet_config["full_calibration"])[60000].runs == (0.85,)


def test_the_command_reads_several_results_and_exits_1_when_one_measured_nothing(tmp_path, hw2_copy, capsys):
    paths = []
    for i, run in enumerate(vgg_runs(0.80, 0.76, 0.78)):
        run.questions += [trained("lenet_train", "manual", 0.1), trained("resnet_train", "pass", 0.9)]
        paths.append(tmp_path / f"solution-{i}.json")
        paths[-1].write_text(json.dumps(run.to_dict()), encoding="utf-8")
    assert main(["calibrate", str(hw2_copy), *map(str, paths)]) == 0
    out = capsys.readouterr().out
    assert out.count("from assignments/hw2/solution.ipynb (budget full, device cpu") == 3
    assert "vgg_train: 16 runs (13 recorded + 3 new)" in out and re.search(r"full_threshold = \{ 60000 = 0\.85, 7000 = 0\.56 \}", out)
    assert "lenet_train: 3 runs (3 new)" in out and "leave this size to a TA" in out
    broken = full_run(trained("lenet_train", "error", None, message="kernel died"), graded_at="2026-11-24")
    paths[0].write_text(json.dumps(broken.to_dict()), encoding="utf-8")
    assert main(["calibrate", str(hw2_copy), *map(str, paths)]) == 1
    assert (
        "lenet_train: assignments/hw2/solution.ipynb (2026-11-24): the run measured no accuracy (error: kernel died)"
        in capsys.readouterr().out
    )


def test_the_command_writes_the_merged_runs_into_the_config(tmp_path, hw2_copy, capsys):
    path = tmp_path / "solution.json"
    path.write_text(json.dumps(vgg_runs(0.75)[0].to_dict()), encoding="utf-8")
    assert main(["calibrate", str(hw2_copy), str(path), "--write"]) == 1  # lenet and resnet measured nothing
    assert f"wrote {hw2_copy / 'config.toml'}" in capsys.readouterr().out
    record = parse_calibration(next(q for q in load_assignment(hw2_copy).questions if q.id == "vgg_train").options["full_calibration"])
    assert record[7000].n == 14 and record[7000].runs[-1] == 0.75


def test_an_unreadable_result_is_a_usage_error(tmp_path, capsys):
    good, broken = tmp_path / "good.json", tmp_path / "broken.json"
    good.write_text(json.dumps(vgg_runs(0.8)[0].to_dict()), encoding="utf-8")
    broken.write_text("{", encoding="utf-8")
    assert main(["calibrate", "hw2", str(good), str(broken)]) == 2
    assert capsys.readouterr().err.startswith("grade calibrate: ")


# --------------------------------------------------------------------------- the student's report


def lenet_submission(data_dir, threshold: float):
    """hw2's check_lenet_train at the full budget, on an untrained LeNet (about 10%), with a recorded calibration."""
    assignment = load_assignment("hw2")
    question = next(q for q in assignment.questions if q.id == "lenet_train")
    record = {"n": 2, "min": 0.7, "max": 0.8, "mean": 0.75, "sd": 0.0707, "margin": 0.1, "devices": ["cuda"], "runs": [0.7, 0.8]}
    torch.manual_seed(0)
    state = [t.detach().clone() for t in models.materialize(models.LeNet(), (1, 1, 28, 28)).state_dict().values()]
    sub = SimpleNamespace(values=lambda key: {"state": state, "__cell__": 1}, assignment=assignment)
    options = {**question.options, "full_threshold": {"7000": threshold}, "full_calibration": {"7000": record}}
    ctx = context_for(question.id, options, "full", assignment.budgets, str(data_dir), {"lenet_arch": SimpleNamespace(status="pass")})
    check = assignment.check_for(question)
    return (lambda s: check(s, ctx)), sub


def test_a_failing_report_shows_what_correct_notebooks_reach(data_dir):
    check, sub = lenet_submission(data_dir, 0.6)
    with pytest.raises(Fail) as failed:
        check(sub)
    assert re.fullmatch(
        r"your trained LeNet reaches \d+\.\d% validation accuracy; correct notebooks reach 70\.0–80\.0% "
        r"\(2 runs of the solution\), and at least 60% is needed",
        str(failed.value),
    )
    assert failed.value.details["calibration"] == {"n": 2, "min": 0.7, "max": 0.8, "mean": 0.75}


def test_a_passing_report_shows_the_range_beside_the_threshold(data_dir):
    check, sub = lenet_submission(data_dir, 0.01)
    details = check(sub)
    assert "(correct notebooks reach 70.0–80.0% (2 runs of the solution); threshold 1%)" in details["message"]
    assert details["calibration"]["n"] == 2


# --------------------------------------------------------------------------- GPU memory for --jobs-per-gpu


def test_the_largest_gpu_memory_peak_of_the_runs_is_recorded_for_packing(tmp_path, hw2_copy, capsys):
    runs = vgg_runs(0.75, 0.76)
    runs[0].execution.gpu_memory_peak, runs[1].execution.gpu_memory_peak = int(7.93 * 2**30), int(9.41 * 2**30)
    paths = []
    for i, run in enumerate(runs):
        paths.append(tmp_path / f"solution-{i}.json")
        paths[-1].write_text(json.dumps(run.to_dict()), encoding="utf-8")
    main(["calibrate", str(hw2_copy), *map(str, paths), "--write"])
    assert "[budgets.full] gpu_memory_peak_gib = 9.5" in capsys.readouterr().out  # rounded up, never down
    budgets = tomllib.loads((hw2_copy / "config.toml").read_text(encoding="utf-8"))["budgets"]
    assert budgets["full"]["gpu_memory_peak_gib"] == 9.5 and budgets["full"]["val_size"] == 2000


def test_runs_on_a_cpu_record_no_gpu_memory_peak(tmp_path, hw2_copy, capsys):
    path = tmp_path / "solution.json"
    path.write_text(json.dumps(vgg_runs(0.75)[0].to_dict()), encoding="utf-8")
    main(["calibrate", str(hw2_copy), str(path), "--write"])
    assert "gpu_memory_peak_gib" not in capsys.readouterr().out
    assert "gpu_memory_peak_gib" not in (hw2_copy / "config.toml").read_text(encoding="utf-8")
