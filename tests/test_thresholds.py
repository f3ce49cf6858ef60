"""Full-budget thresholds by training-set size (grader.course.thresholds)."""

from __future__ import annotations

import pytest

from grader.course.assignment import load_assignment
from grader.course.thresholds import (
    HELD_OUT,
    TEST,
    Threshold,
    calibrated_sizes,
    calibration_for,
    check_calibration,
    history_toml,
    parse_calibration,
    parse_history,
    parse_threshold,
    threshold_for,
)

CALIBRATED = {"60000": 0.85, "7000": 0.6}


def test_a_plain_accuracy_holds_for_any_training_set():
    assert threshold_for(0.8, 12) == Threshold(0.8, None)


def test_the_threshold_calibrated_for_the_runs_own_size_is_used():
    assert threshold_for(CALIBRATED, 7000) == Threshold(0.6, 7000)
    assert threshold_for(CALIBRATED, 60000) == Threshold(0.85, 60000)


def test_between_calibrated_sizes_the_smaller_ones_threshold_is_used():
    assert threshold_for(CALIBRATED, 30000) == Threshold(0.6, 7000)


def test_below_every_calibrated_size_there_is_no_threshold():
    assert threshold_for(CALIBRATED, 6999) is None
    assert threshold_for({"60000": 0.7}, 7000) is None


def test_calibrated_sizes_are_listed_largest_first():
    assert calibrated_sizes(CALIBRATED) == [60000, 7000]
    assert calibrated_sizes(0.5) == []


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        ({"60,000": 0.7}, "'60,000' is not a training-set size"),
        ({"0": 0.7}, "'0' is not a training-set size"),
        ({"7000": 1.5}, "for 7000 images: 1.5 is not an accuracy"),
        (0, "0 is not an accuracy"),
        (True, "not True"),
        ({}, "non-empty table"),
        ("0.7", "not '0.7'"),
    ],
)
def test_a_malformed_threshold_says_what_is_wrong(setting, says):
    with pytest.raises(ValueError) as raised:
        parse_threshold(setting)
    assert says in str(raised.value)


# --------------------------------------------------------------------------- full_calibration

RUNS = [0.74, 0.7, 0.78]
RECORD = {
    "images": 600,
    "split": HELD_OUT,
    "n": 3,
    "min": 0.7,
    "max": 0.78,
    "mean": 0.74,
    "sd": 0.04,
    "margin": 0.1,
    "devices": ["cuda"],
    "runs": RUNS,
}
#: 12 runs known only as a range, and one known run (hw2's ResNet record).
RANGE_ONLY = {
    "images": 1200,
    "split": TEST,
    "n": 13,
    "min": 0.868,
    "max": 0.881,
    "mean": 0.8754,
    "sd": 0.0037,
    "margin": 0.1,
    "devices": ["cpu", "cuda"],
    "runs": [0.868],
    "estimated": ["mean", "sd"],
}


def test_a_calibration_record_is_read_with_its_runs():
    record = parse_calibration({"7000": RECORD})[7000]
    assert (record.train_images, record.n, record.min, record.max, record.mean, record.sd) == (7000, 3, 0.7, 0.78, 0.74, 0.04)
    assert record.runs == tuple(RUNS) and record.devices == ("cuda",) and record.estimated == ()
    assert record.scored_on == (600, HELD_OUT)


def test_a_record_may_cover_runs_known_only_in_aggregate_and_say_what_it_estimated():
    record = parse_calibration({"7000": RANGE_ONLY})[7000]
    assert record.n == 13 and record.runs == (0.868,) and record.estimated == ("mean", "sd")
    assert record.summary() == {
        "n": 13,
        "min": 0.868,
        "max": 0.881,
        "mean": 0.8754,
        "images": 1200,
        "split": TEST,
        "estimated": ["mean", "sd"],
    }


def test_the_record_for_a_run_is_that_of_the_largest_calibrated_size_not_above_it():
    setting = {"60000": {**RECORD}, "7000": {**RECORD, "runs": RUNS}}
    assert calibration_for(setting, 30000).train_images == 7000
    assert calibration_for(setting, 60000).train_images == 60000
    assert calibration_for(setting, 6999) is None
    assert calibration_for(None, 7000) is None


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"n": 0}, "n = 0 is not a number of runs"),
        ({"mean": 0.9}, "mean 0.9 is not between min 0.7 and max 0.78"),
        ({"sd": 0.01}, "sd = 0.01 but the 3 runs listed give 0.0400"),
        ({"min": 0.69}, "min = 0.69 but the 3 runs listed give 0.7000"),
        ({"runs": [0.74, 0.7, 0.78, 0.75]}, "4 runs listed, but n = 3"),
        ({"runs": [0.74, 0.95]}, "runs [0.95] lie outside min 0.7 .. max 0.78"),
        ({"runs": [0.74, "0.7"]}, "a run = '0.7' is not an accuracy"),
        ({"devices": []}, "devices = [] is not a non-empty list"),
        ({"estimated": ["max"]}, "may only name mean and sd"),
        ({"estimated": ["sd"]}, "every run is listed, so sd cannot be estimated"),
        ({"margin": 1.5}, "margin = 1.5 is not an accuracy margin"),
        ({"seed": 3}, "unknown key seed"),
        ({"images": 0}, "images = 0 is not a number of validation images"),
        ({"images": 600.0}, "images = 600.0 is not a number of validation images"),
        ({"split": "validation"}, "split = 'validation' is not one of 'held-out', 'test'"),
        ({"n": 1, "runs": [0.74], "min": 0.74, "max": 0.74, "mean": 0.74}, "one run has sd 0"),
    ],
)
def test_a_malformed_calibration_says_what_is_wrong(change, says):
    with pytest.raises(ValueError) as raised:
        parse_calibration({"7000": {**RECORD, **change}})
    assert "full_calibration for 7000 images: " in str(raised.value) and says in str(raised.value)


def test_a_calibration_without_its_keys_or_sizes_is_refused():
    with pytest.raises(ValueError, match="missing devices, runs"):
        parse_calibration({"7000": {k: v for k, v in RECORD.items() if k not in ("devices", "runs")}})
    with pytest.raises(ValueError, match="missing images, split"):  # a record must say what its runs were scored on
        parse_calibration({"7000": {k: v for k, v in RECORD.items() if k not in ("images", "split")}})
    with pytest.raises(ValueError, match="'7k' is not a training-set size"):
        parse_calibration({"7k": RECORD})
    with pytest.raises(ValueError, match="non-empty table"):
        parse_calibration({})


def test_a_calibrated_size_needs_a_threshold_of_its_own():
    assert check_calibration({"7000": 0.5}, {"7000": RECORD})[7000].n == 3
    with pytest.raises(ValueError, match="full_calibration for 7000 images has no full_threshold entry for that size"):
        check_calibration({"60000": 0.7}, {"7000": RECORD})
    with pytest.raises(ValueError, match="has no full_threshold entry"):
        check_calibration(0.5, {"7000": RECORD})  # one threshold for any size was not computed from these runs


def test_an_assignment_with_a_malformed_calibration_is_refused_when_loaded(tmp_path):
    folder = tmp_path / "calibrated"
    folder.mkdir()
    config = (
        'name = "t"\n[[questions]]\nid = "q1"\npoints = 1\nfull_threshold = { 7000 = 0.6 }\n'
        'full_calibration = { 7000 = { images = 600, split = "held-out", n = 2, min = 0.7, max = 0.8, mean = 0.75, sd = 0.0707, '
        'margin = 0.1, devices = ["cuda"], runs = [0.7, 0.9] } }\n'
    )
    (folder / "config.toml").write_text(config, encoding="utf-8")
    (folder / "checks.py").write_text("def check_q1(sub):\n    pass\n", encoding="utf-8")
    with pytest.raises(ValueError) as raised:
        load_assignment(folder)
    assert str(folder / "config.toml") in str(raised.value)
    assert "question 'q1': full_calibration for 7000 images: runs [0.9] lie outside min 0.7 .. max 0.8" in str(raised.value)


def test_an_assignment_with_a_malformed_history_is_refused_when_loaded(tmp_path):
    folder = tmp_path / "calibrated"
    folder.mkdir()
    config = 'name = "t"\n[[questions]]\nid = "q1"\npoints = 1\nfull_calibration_history = { 7000 = [{ images = 1200 }] }\n'
    (folder / "config.toml").write_text(config, encoding="utf-8")
    (folder / "checks.py").write_text("def check_q1(sub):\n    pass\n", encoding="utf-8")
    with pytest.raises(ValueError, match="question 'q1': full_calibration_history for 7000 images: missing devices, "):
        load_assignment(folder)


# --------------------------------------------------------------------------- full_calibration_history


def test_records_superseded_by_runs_on_other_images_are_kept_as_history():
    history = parse_history({"7000": [RANGE_ONLY]})
    assert [(c.scored_on, c.n) for c in history[7000]] == [((1200, TEST), 13)]
    assert history_toml(history).startswith('{ 7000 = [{ images = 1200, split = "test", n = 13, ')
    assert check_calibration({"7000": 0.6}, {"7000": RECORD}, {"7000": [RANGE_ONLY]})[7000].n == 3
    assert check_calibration(None, None, {"7000": [RANGE_ONLY]}) == {}  # history alone: no bar, nothing shown


@pytest.mark.parametrize(
    ("history", "says"),
    [
        ({"7000": []}, "full_calibration_history for 7000 images: [] is not a non-empty list of records"),
        ({"7000": [RANGE_ONLY, RANGE_ONLY]}, "two records of runs scored on the same images"),
        ({"7000": [{**RANGE_ONLY, "split": "train"}]}, "split = 'train' is not one of"),
        ({"7000": [RECORD]}, "has a record of runs scored on 600 held-out images, as full_calibration's is: they are one record"),
    ],
)
def test_a_malformed_history_says_what_is_wrong(history, says):
    with pytest.raises(ValueError) as raised:
        check_calibration({"7000": 0.6}, {"7000": RECORD}, history)
    assert says in str(raised.value)
