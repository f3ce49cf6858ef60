"""Full-budget thresholds by training-set size (grader.thresholds)."""

from __future__ import annotations

import pytest

from grader.thresholds import Threshold, calibrated_sizes, parse_threshold, threshold_for

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
