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
from grader.checking.assertions import Fail
from grader.checking.question_context import context_for
from grader.course.assignment import ASSIGNMENTS_DIR, load_assignment
from grader.course.calibrate import Z, merge, propose, render, threshold_from, write
from grader.course.measured_runs import HELD_OUT_SINCE, Run, run_of
from grader.course.thresholds import HELD_OUT, TEST, Calibration, parse_calibration, parse_history, parse_threshold, threshold_for
from grader.run.cli import main
from reference import models
from tests.conftest import REPO, with_thresholds

#: VGG's validation accuracies in 12 GPU runs of the solution on the 7,000-image subset (issue 15).
VGG_RUNS = [0.739, 0.746, 0.772, 0.753, 0.774, 0.662, 0.789, 0.738, 0.687, 0.771, 0.732, 0.707]


def trained(qid: str, status: str, accuracy: float | None, train_images: int = 7000, **extra) -> r.QuestionResult:
    """A training question's result as the grader writes it now: scored on the subset's 600 held-out images."""
    scored = {"images": extra.pop("images", 600), "split": extra.pop("split", HELD_OUT)}
    details = {} if accuracy is None else {"validation_accuracy": accuracy, **scored, "train_images": train_images}
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


RECORDS = ("full_calibration", "full_calibration_history")


def without_calibration(assignment, keys=RECORDS):
    """Tests that must not merge into the runs the real config records (``keys``: also ``full_threshold``)."""
    questions = [replace(q, options={k: v for k, v in q.options.items() if k not in keys}) for q in assignment.questions]
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
    assert "83.4% on 600 held-out validation images after training on 7,000: minus a margin of 0.10" in group.reason


def test_the_proposal_keeps_the_other_calibrated_sizes_as_lines_to_paste(hw2):
    lenet = by_question(propose([full_run(trained("lenet_train", "manual", 0.81))], hw2))["lenet_train"]
    assert lenet.toml.splitlines() == [
        "full_threshold = { 60000 = 0.70, 7000 = 0.71 }",
        'full_calibration = { 7000 = { images = 600, split = "held-out", n = 1, min = 0.81, max = 0.81, mean = 0.81, sd = 0.0, '
        'margin = 0.1, devices = ["cpu"], runs = [0.81] } }',
    ]


def test_a_proposal_says_when_it_replaces_one_threshold_for_any_training_set(hw2):
    resnet = by_question(propose([full_run(trained("resnet_train", "pass", 0.9))], hw2))["resnet_train"]
    assert resnet.full_threshold == {7000: 0.8} and resnet.replaces == 0.85
    assert "resnet_train: this replaces the one threshold 0.85 for any training set" in render([resnet])


def test_no_bar_is_proposed_for_runs_near_chance(hw2):
    lenet = by_question(propose(vgg_runs() + [full_run(trained("lenet_train", "manual", 0.098))], hw2))["lenet_train"]
    assert lenet.groups[0].threshold is None and lenet.toml == "" and "leave this size to a TA" in lenet.groups[0].reason
    assert lenet.outcome == "chance-level after 7,000 training images -> a TA decides"


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
    assert "3 runs (3 new) on 600 held-out validation images after training on 7,000: 76.0% to 80.0%, mean 78.0%" in vgg.groups[0].reason


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
    c = merge(None, [Run(a, 7000, 1200, TEST, "cuda") for a in VGG_RUNS], 0.1, 7000)
    assert (c.n, c.min, c.max, c.mean, c.sd) == (12, 0.662, 0.789, 0.7392, 0.0379)
    assert round(Z, 2) == 3.09 and round(c.mean - Z * c.sd, 3) == 0.622  # a correct run falls below with p < 0.1%...
    assert threshold_from(c) == 0.56  # ...but the worst run seen, 66.2%, minus 0.10 is lower still


def test_runs_that_spread_widely_put_the_threshold_below_the_worst_run_minus_the_margin():
    c = merge(None, [Run(a, 7000, 1200, TEST, "cuda") for a in (0.6, 0.8, 0.8, 0.8)], 0.1, 7000)
    assert (c.mean, c.sd) == (0.75, 0.1) and threshold_from(c) == 0.44  # 0.75 - 3.09 * 0.1 = 0.441 < 0.6 - 0.1


def test_a_threshold_is_rounded_down_even_where_floating_point_lands_just_below():
    one = Calibration(7000, 1, 0.7, 0.7, 0.7, 0.0, 0.05, ("cpu",), (0.7,), images=600, split=HELD_OUT)
    assert 0.7 - 0.05 < 0.65 and threshold_from(one) == 0.65


def test_runs_so_spread_that_the_bar_would_be_at_chance_get_none():
    c = merge(None, [Run(a, 7000, 1200, TEST, "cuda") for a in (0.31, 0.9, 0.9)], 0.1, 7000)
    assert c.mean > 0.3 and threshold_from(c) is None


# --------------------------------------------------------------------------- merging into the recorded runs


#: What a record of runs on the subset's held-out images says they were scored on.
ON_HELD_OUT = {"images": 600, "split": HELD_OUT}


def with_records(assignment, qid: str, **records):
    """``assignment`` with question ``qid``'s options updated (``full_calibration=...``, ``full_calibration_history=...``)."""
    return replace(assignment, questions=[replace(q, options={**q.options, **records}) if q.id == qid else q for q in assignment.questions])


def test_new_runs_are_merged_into_the_runs_the_config_records(hw2):
    recorded = {
        "7000": {
            **ON_HELD_OUT,
            "n": 2,
            "min": 0.76,
            "max": 0.8,
            "mean": 0.78,
            "sd": 0.0283,
            "margin": 0.1,
            "devices": ["cuda"],
            "runs": [0.8, 0.76],
        }
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
    recorded = Calibration(7000, 12, 0.871, 0.881, 0.876, 0.0031, 0.1, ("cuda",), (), ("mean", "sd"), images=1200, split=TEST)
    c = merge(recorded, [Run(0.868, 7000, 1200, TEST, "cpu")], 0.1, 7000)
    assert (c.n, c.min, c.max, c.mean, c.sd, c.runs) == (13, 0.868, 0.881, 0.8754, 0.0037, (0.868,))
    assert c.estimated == ("mean", "sd") and c.devices == ("cpu", "cuda")
    exact = [0.871, 0.881] * 6  # pooling an exactly summarized group gives what the runs themselves give
    pooled = merge(merge(None, [Run(a, 7000, 1200, TEST, "cuda") for a in exact], 0.1, 7000), [], 0.1, 7000)
    summarized = replace(pooled, runs=(), estimated=())
    from_summary, from_runs = (merge(c, [Run(0.868, 7000, 1200, TEST, "cpu")], 0.1, 7000) for c in (summarized, pooled))
    assert (from_summary.mean, from_summary.sd) == (from_runs.mean, from_runs.sd) == (0.8754, 0.0055)


@pytest.mark.parametrize(("name", "calibrated"), [("hw2", {"vgg_train", "resnet_train"}), ("hw3", {"bn_lenet_train", "densenet_train"})])
def test_the_committed_thresholds_are_what_the_model_gives_for_the_recorded_runs(name, calibrated):
    assignment = load_assignment(name)
    recorded = {q.id: parse_calibration(q.options["full_calibration"]) for q in assignment.questions if "full_calibration" in q.options}
    assert set(recorded) == calibrated  # hw2's LeNet stays at chance on the subset: a TA decides
    for qid, table in recorded.items():
        setting = next(q for q in assignment.questions if q.id == qid).options["full_threshold"]
        for size, calibration in table.items():
            assert threshold_for(setting, size).accuracy == threshold_from(calibration), (qid, size)
            assert calibration.scored_on == (600, HELD_OUT), (qid, size)  # the images the grader scores a student's model on


def test_the_runs_on_other_images_are_kept_only_as_history():
    history = {
        q.id: parse_history(q.options["full_calibration_history"])
        for q in load_assignment("hw2").questions
        if "full_calibration_history" in q.options
    }
    assert set(history) == {"vgg_train", "resnet_train"}
    assert [c.scored_on for c in history["vgg_train"][7000]] == [(1200, TEST)]
    assert history["vgg_train"][7000][0].runs[:12] == tuple(VGG_RUNS)


# --------------------------------------------------------------------------- the recorded GPU runs

GPU_RUNS = REPO.parent / "shared" / "gpu-runs"


@pytest.mark.parametrize("name", ["hw2", "hw3"])
def test_the_committed_calibration_is_what_the_result_files_of_the_gpu_runs_give(name):
    """Every threshold, record and quoted range of the config, recomputed from the result files kept in ../shared/gpu-runs."""
    files = sorted(GPU_RUNS.glob(f"*/{name}/*.json"))
    if not GPU_RUNS.parent.is_dir():  # a checkout without ../shared; CI always has it beside the clone, so there this test runs
        pytest.skip(f"no {GPU_RUNS.parent}: the course's shared folder is not beside this checkout")
    assert files, f"the shared folder is here but holds no result files of {name} under {GPU_RUNS}"
    committed = load_assignment(name)
    results = [r.GradeResult.from_dict(json.loads(path.read_text(encoding="utf-8"))) for path in files]
    proposals = by_question(propose(results, without_calibration(committed, (*RECORDS, "full_threshold"))))
    for question in committed.questions:
        proposal, options = proposals[question.id], question.options
        if not proposal.trains:
            assert not any(k.startswith("full_") for k in options), question.id
            continue
        assert not proposal.unmeasured and proposal.groups, question.id  # every run measured every training question
        thresholds = parse_threshold(options.get("full_threshold", {"1": 1.0}))
        records = parse_calibration(options["full_calibration"]) if "full_calibration" in options else {}
        for group in proposal.groups:
            size = group.train_images
            if group.threshold is None:  # chance-level: no bar and no record for that size
                assert size not in thresholds and size not in records, (question.id, group.reason)
                continue
            c = records[size]
            assert thresholds[size] == group.threshold, (question.id, size)
            assert c == replace(group.calibration, runs=c.runs) and sorted(c.runs) == sorted(group.calibration.runs), question.id
        assert set(records) == {g.train_images for g in proposal.groups if g.threshold is not None}, question.id


# --------------------------------------------------------------------------- which images a run was scored on


def test_a_result_from_before_it_named_its_split_is_placed_by_when_it_was_graded():
    question = trained("vgg_train", "pass", 0.75, images=1200)
    del question.details["split"]
    just_after, just_before = HELD_OUT_SINCE.isoformat(), "2026-12-01T13:15:54+00:00"
    assert run_of(full_run(question, graded_at=just_after), "vgg_train").split == HELD_OUT
    assert run_of(full_run(question, graded_at=just_before), "vgg_train").split == TEST
    assert "nor when it was graded" in run_of(full_run(question, graded_at=""), "vgg_train")


def test_runs_on_the_test_split_propose_nothing_and_join_no_record(hw2):
    old = [full_run(trained("vgg_train", "pass", a, images=1200, split=TEST), graded_at=f"2026-11-2{i}") for i, a in enumerate((0.8, 0.7))]
    new = vgg_runs(0.75)
    vgg = by_question(propose(old + new, hw2))["vgg_train"]
    assert [(g.calibration.scored_on, g.calibration.n, g.threshold) for g in vgg.groups] == [
        ((1200, TEST), 2, None),
        ((600, HELD_OUT), 1, 0.65),
    ]
    assert "not the held-out images the grader scores on now; not calibrated" in vgg.groups[0].reason
    assert vgg.full_calibration[7000].runs == (0.75,)
    assert vgg.outcome.startswith("not calibrated: 2 runs on 1,200 test images; proposed 0.65 for 7,000 training images")


def test_runs_on_other_images_are_never_merged():
    with pytest.raises(ValueError, match="scored on different images .* never merged"):
        merge(None, [Run(0.8, 7000, 600, HELD_OUT, "cuda"), Run(0.8, 7000, 1200, TEST, "cuda")], 0.1, 7000)
    recorded = merge(None, [Run(0.8, 7000, 1200, TEST, "cuda")], 0.1, 7000)
    with pytest.raises(ValueError, match="never merged"):
        merge(recorded, [Run(0.8, 7000, 600, HELD_OUT, "cuda")], 0.1, 7000)


def test_new_runs_on_the_held_out_images_supersede_a_record_of_the_test_split(hw2):
    old = {**ON_HELD_OUT, "images": 1200, "split": TEST, "n": 2, "min": 0.7, "max": 0.8, "mean": 0.75, "sd": 0.0707}
    old.update(margin=0.1, devices=["cuda"], runs=[0.7, 0.8])
    assignment = with_records(with_thresholds(hw2, {"vgg_train": {"7000": 0.6}}), "vgg_train", full_calibration={"7000": old})
    vgg = by_question(propose(vgg_runs(0.76), assignment))["vgg_train"]
    (group,) = vgg.groups
    assert group.calibration.n == 1 and group.superseded.scored_on == (1200, TEST) and vgg.full_threshold == {7000: 0.66}
    assert [c.runs for c in vgg.full_calibration_history[7000]] == [(0.7, 0.8)]
    assert "the 2 recorded runs on 1,200 test images go to full_calibration_history, out of the bar and the range" in group.reason
    assert vgg.toml.splitlines()[2].startswith('full_calibration_history = { 7000 = [{ images = 1200, split = "test", n = 2,')


def test_runs_of_one_size_on_two_counts_of_held_out_images_set_no_bar(hw2):
    runs = vgg_runs(0.8, 0.7)
    runs[1].questions[0].details["images"] = 500
    vgg = by_question(propose(runs, hw2))["vgg_train"]
    assert [g.threshold for g in vgg.groups] == [None, None] and vgg.toml == ""
    assert "were scored on 500 and 600 images: grade again with one" in vgg.groups[0].reason


# --------------------------------------------------------------------------- every question, with a threshold or not yet


def test_a_training_question_without_a_threshold_is_calibrated_and_every_question_is_accounted_for():
    hw3 = without_calibration(load_assignment("hw3"), (*RECORDS, "full_threshold"))
    results = [
        full_run(trained("bn_lenet_train", "manual", a), trained("densenet_train", "manual", b), graded_at=f"2026-12-04T1{i}:00:00+00:00")
        for i, (a, b) in enumerate(((0.8, 0.83), (0.78, 0.81)))
    ]
    for result in results:
        result.assignment = "hw3"
    proposals = propose(results, hw3)
    by_id = by_question(proposals)
    assert by_id["bn_lenet_train"].full_threshold == {7000: 0.68} and by_id["densenet_train"].full_threshold == {7000: 0.71}
    assert {p.question for p in proposals} == {q.id for q in hw3.questions}
    assert [p.question for p in proposals if p.trains] == ["bn_lenet_train", "densenet_train"]
    text = render(proposals)
    assert "    bn_lenet_train: proposed 0.68 for 7,000 training images (2 runs on 600 held-out images)" in text
    assert "not measured by these results (their full run measures no accuracy): nin_block, nin_arch, inception," in text


def test_a_training_question_no_result_measured_says_so(hw2):
    lenet = by_question(propose(vgg_runs(0.8), hw2))["lenet_train"]
    assert lenet.trains and lenet.outcome == "not measured by these results (1 of the results measured nothing: see above)"


# --------------------------------------------------------------------------- --write


def test_write_records_the_runs_and_keeps_every_other_line_and_comment(hw2_copy):
    before = (hw2_copy / "config.toml").read_text(encoding="utf-8")
    assignment = load_assignment(hw2_copy)
    write(assignment, propose(vgg_runs(0.70), assignment))
    after = (hw2_copy / "config.toml").read_text(encoding="utf-8")
    # strict=False: a line count that changed is what the next assertion reports.
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=False) if a != b]
    assert len(before.splitlines()) == len(after.splitlines()) and len(changed) == 1  # only the VGG record's line
    assert changed[0][1].startswith('full_calibration = { 7000 = { images = 600, split = "held-out", n = 10, ')
    config = tomllib.loads(after)
    vgg = next(q for q in config["questions"] if q["id"] == "vgg_train")
    assert vgg["full_calibration"]["7000"]["runs"][-1] == 0.7 and vgg["full_threshold"] == {"60000": 0.85, "7000": 0.59}
    assert vgg["full_calibration_history"]["7000"][0]["n"] == 13  # the runs on the 1,200 test images, untouched
    assert load_assignment(hw2_copy).questions  # still a valid assignment


def test_write_adds_a_calibration_where_the_config_had_none(hw2_copy):
    assignment = load_assignment(hw2_copy)
    lenet = propose([full_run(trained("lenet_train", "pass", 0.85, train_images=60000))], assignment)
    write(assignment, lenet)
    text = (hw2_copy / "config.toml").read_text(encoding="utf-8")
    assert 'full_threshold = { 60000 = 0.75 }\nfull_calibration = { 60000 = { images = 600, split = "held-out", n = 1, min = 0.85,' in text
    assert 'runs = [0.85] } }\n\n[[questions]]\nid = "vgg_block"' in text  # the blank line before the next question kept
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
    assert "vgg_train: 12 runs (9 recorded + 3 new)" in out and re.search(r"full_threshold = \{ 60000 = 0\.85, 7000 = 0\.59 \}", out)
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
    assert record[7000].n == 10 and record[7000].runs[-1] == 0.75


def test_an_unreadable_result_is_a_usage_error(tmp_path, capsys):
    good, broken = tmp_path / "good.json", tmp_path / "broken.json"
    good.write_text(json.dumps(vgg_runs(0.8)[0].to_dict()), encoding="utf-8")
    broken.write_text("{", encoding="utf-8")
    assert main(["calibrate", "hw2", str(good), str(broken)]) == 2
    assert capsys.readouterr().err.startswith("grade calibrate: ")


# --------------------------------------------------------------------------- the student's report


def held_out_count(data_dir) -> int:
    """How many images a full check scores on in ``data_dir``: the held-out half of its test split, at most val_size."""
    from grader.course.fashion_mnist import held_out_images

    return min(2000, len(held_out_images(str(data_dir))[1]))


def lenet_submission(data_dir, threshold: float, **scored):
    """hw2's check_lenet_train at the full budget, on an untrained LeNet (about 10%), with a recorded calibration
    (``scored``: the images its runs were scored on, by default those the check scores on)."""
    assignment = load_assignment("hw2")
    question = next(q for q in assignment.questions if q.id == "lenet_train")
    record = {"images": held_out_count(data_dir), "split": HELD_OUT, **scored}
    record.update(n=2, min=0.7, max=0.8, mean=0.75, sd=0.0707, margin=0.1, devices=["cuda"], runs=[0.7, 0.8])
    torch.manual_seed(0)
    state = [t.detach().clone() for t in models.materialize(models.LeNet(), (1, 1, 28, 28)).state_dict().values()]
    sub = SimpleNamespace(values=lambda key: {"state": state, "__cell__": 1}, assignment=assignment)
    options = {**question.options, "full_threshold": {"7000": threshold}, "full_calibration": {"7000": record}}
    ctx = context_for(question.id, options, "full", assignment.budgets, str(data_dir), {"lenet_arch": SimpleNamespace(status="pass")})
    check = assignment.check_for(question)
    return (lambda s: check(s, ctx)), sub


def test_a_failing_report_shows_what_correct_notebooks_reach(data_dir):
    check, sub = lenet_submission(data_dir, 0.6)
    images = held_out_count(data_dir)
    with pytest.raises(Fail) as failed:
        check(sub)
    assert re.fullmatch(
        r"your trained LeNet reaches \d+\.\d% validation accuracy; correct notebooks reach 70\.0–80\.0% "
        rf"\(2 runs of the solution, scored on the same {images:,} images\), and at least 60% is needed",
        str(failed.value),
    )
    assert failed.value.details["calibration"] == {"n": 2, "min": 0.7, "max": 0.8, "mean": 0.75, "images": images, "split": HELD_OUT}
    assert (failed.value.details["images"], failed.value.details["split"]) == (images, HELD_OUT)  # what calibrate reads


def test_a_passing_report_shows_the_range_beside_the_threshold(data_dir):
    check, sub = lenet_submission(data_dir, 0.01)
    details = check(sub)
    images = held_out_count(data_dir)
    assert (
        f"(correct notebooks reach 70.0–80.0% (2 runs of the solution, scored on the same {images:,} images); threshold 1%)"
        in (details["message"])
    )
    assert details["calibration"]["n"] == 2


@pytest.mark.parametrize("scored", [{"split": TEST}, {"images": 1200}], ids=["other split", "other count"])
def test_runs_scored_on_other_images_are_not_quoted_to_the_student(data_dir, scored):
    """The bar still holds (a TA recalibrates it), but a range from other images is not the student's to compare with."""
    check, sub = lenet_submission(data_dir, 0.6, **scored)
    with pytest.raises(Fail) as failed:
        check(sub)
    assert re.fullmatch(r"your trained LeNet reaches \d+\.\d% validation accuracy; at least 60% is needed", str(failed.value))
    assert "calibration" not in failed.value.details


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
    # Right after the table's last key, not after the comment that opens what follows it.
    assert "model on\ngpu_memory_peak_gib = 9.5\n\n# Every cell" in (hw2_copy / "config.toml").read_text(encoding="utf-8")


def test_runs_on_a_cpu_record_no_gpu_memory_peak(tmp_path, hw2_copy, capsys):
    path = tmp_path / "solution.json"
    path.write_text(json.dumps(vgg_runs(0.75)[0].to_dict()), encoding="utf-8")
    main(["calibrate", str(hw2_copy), str(path), "--write"])
    assert "gpu_memory_peak_gib" not in capsys.readouterr().out
    assert "gpu_memory_peak_gib" not in (hw2_copy / "config.toml").read_text(encoding="utf-8")
