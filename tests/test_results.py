"""Result files follow schema 1, are written atomically, and get unique names in a batch."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from grader import results as r


def sample() -> r.GradeResult:
    return r.GradeResult(
        submission="subs/a.ipynb",
        sha256="ab" * 32,
        assignment="hw2",
        budget="quick",
        device="cpu",
        grader_version="0.1.0",
        execution=r.ExecutionRecord("ok", "", 1.5, [r.CellRecord(0, "ok", 0.2)], [r.NeutralizedLine(1, 0, "!ls", "shell command")]),
        questions=[
            r.QuestionResult("corr2d", "2-D cross-correlation", "pass", 3.0, 3.0),
            r.QuestionResult("pool2d", "Pooling", "fail", 0.0, 3.0, "avg: expected 2.0, got 4.0"),
            r.QuestionResult("ex_conv_commutative", "Proof", "manual", 0.0, 2.0, details={"answer": "..."}),
        ],
    )


def test_scores_count_auto_graded_points_and_manual_points_are_pending():
    data = sample().to_dict()
    assert (data["score"], data["max_score"], data["manual_points_pending"]) == (3.0, 6.0, 2.0)


def test_schema_keys_are_the_documented_ones():
    data = sample().to_dict()
    assert list(data) == [
        "schema_version",
        "submission",
        "sha256",
        "assignment",
        "budget",
        "device",
        "grader_version",
        "execution",
        "questions",
        "hidden_questions_not_run",
        "cache_key",
        "grading_seconds",
        "graded_at",
        "sections",
        "phase_seconds",
        "score",
        "max_score",
        "manual_points_pending",
    ]
    assert data["schema_version"] == 1
    assert set(data["execution"]) >= {"status", "message", "seconds", "cells"}
    assert set(data["questions"][0]) == {
        "id",
        "title",
        "status",
        "points",
        "max_points",
        "message",
        "details",
        "section",
        "ta_points",
        "ta_comment",
    }


def test_a_manual_question_counts_once_a_ta_has_graded_it():
    result = sample()
    manual = result.questions[2]
    manual.ta_points, manual.points = 1.5, 1.5
    assert (result.score, result.max_score, result.manual_points_pending) == (4.5, 8.0, 0.0)


def test_a_result_survives_a_round_trip_through_json(tmp_path):
    path = tmp_path / "a.json"
    r.write_result(sample(), path)
    again = r.GradeResult.from_dict(json.loads(path.read_text()))
    assert again.to_dict() == sample().to_dict()


def test_a_result_file_written_before_phase_seconds_still_loads():
    data = sample().to_dict()
    del data["phase_seconds"]
    assert r.GradeResult.from_dict(data).phase_seconds == {}


def test_the_phase_clock_charges_each_phase_its_own_time_and_never_more_than_the_whole():
    ticks = iter([10.4004, 12.0009, 12.0009, 40.25, 41.0])  # after a start at 10.0
    clock = r.PhaseClock(10.0, now=lambda: next(ticks))
    for phase in ("load", "kernel_start", "checks", "cells", "checks"):
        clock.lap(phase)
    assert clock.phases == {"load": 0.4, "kernel_start": 1.6, "checks": 0.75, "cells": 28.249}
    assert list(clock.phases) == ["load", "kernel_start", "checks", "cells"]
    assert sum(clock.phases.values()) <= 41.0 - 10.0
    result = sample()
    result.phase_seconds = clock.phases
    r.PhaseClock(0.0, result.phase_seconds, now=lambda: 2.5).lap("report")  # the report's time, added to the result's own
    assert r.GradeResult.from_dict(json.loads(json.dumps(result.to_dict()))).phase_seconds["report"] == 2.5


def test_from_dict_rejects_another_schema_version():
    data = sample().to_dict() | {"schema_version": 2}
    with pytest.raises(ValueError, match="schema version 2"):
        r.GradeResult.from_dict(data)


def test_write_atomic_never_leaves_a_half_written_file(tmp_path, monkeypatch):
    path = tmp_path / "out.json"
    r.write_atomic(path, "old")

    def crash(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        r.write_atomic(path, "new" * 1000)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_write_atomic_creates_the_folder(tmp_path):
    r.write_atomic(tmp_path / "deep" / "er" / "x.json", "{}")
    assert (tmp_path / "deep" / "er" / "x.json").read_text() == "{}"


def test_unique_stems_number_repeated_names_in_order():
    paths = [Path("a/hw2.ipynb"), Path("b/hw2.ipynb"), Path("c/HW2.ipynb"), Path("x.ipynb")]
    assert r.unique_stems(paths) == ["hw2", "hw2-2", "HW2-3", "x"]


def test_a_cached_result_is_reused_only_under_the_same_key(tmp_path):
    result = sample()
    result.cache_key = r.cache_key("ab" * 32, "fingerprint", "quick", "cpu", "0.1.0")
    r.write_result(result, tmp_path / "a.json")
    assert r.cached_result(tmp_path / "a.json", result.cache_key).to_dict() == result.to_dict()
    other = r.cache_key("ab" * 32, "fingerprint", "full", "cpu", "0.1.0")
    assert r.cached_result(tmp_path / "a.json", other) is None


def test_an_unreadable_cached_result_is_ignored(tmp_path):
    (tmp_path / "a.json").write_text("{half", encoding="utf-8")
    assert r.cached_result(tmp_path / "a.json", "key") is None
    assert r.cached_result(tmp_path / "missing.json", "key") is None


def test_a_lone_surrogate_from_a_kernels_message_does_not_make_a_result_unwritable(tmp_path):
    from grader.results import write_atomic

    write_atomic(tmp_path / "r.json", '{"message": "bad \ud800 text"}')
    assert (tmp_path / "r.json").read_text(encoding="utf-8") == '{"message": "bad ? text"}'
