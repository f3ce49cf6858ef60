"""Shared test settings: Hypothesis profiles, devices, and the Fashion-MNIST folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

# "ci" (the default) keeps the property suite well under its 5-minute budget on
# 2 cores and never fails on a slow first call (torch warms up lazily);
# HYPOTHESIS_PROFILE=thorough runs ten times the examples.
settings.register_profile(
    "ci", max_examples=60, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=600)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

#: Every op is checked on each device this machine has.
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Fashion-MNIST in torchvision's layout.

    GRADER_DATA_DIR wins; else the course's shared subset beside the
    checkout (what CI uses); else a cache folder that torchvision's ordinary
    download fills on a machine with internet.
    """
    configured = os.environ.get("GRADER_DATA_DIR")
    if configured:
        return Path(configured)
    shared = REPO.parent / "shared" / "data"
    if (shared / "FashionMNIST" / "raw").is_dir():
        return shared
    return Path.home() / ".cache" / "hw-grader" / "data"


FIXTURES = REPO.parent / "shared" / "fixtures" / "submissions"
#: A TA's grades file for the fixture batch: one manual question of student_b, with a Korean comment.
FIXTURE_GRADES = "submission,question,points,comment\nstudent_b.ipynb,ex_conv_commutative,1.5,치환 z = x - u 를 명시하세요\n"


@pytest.fixture(scope="session")
def fixture_batch(tmp_path_factory, data_dir) -> Path:
    """The three fixture submissions graded together, as a TA would: ``grade FOLDER --jobs 2 --junit --manual``.

    Graded once per session; tests of verdicts, reports, gradebook, JUnit
    and the browser all read this one folder.
    """
    from grader.cli import main

    out = tmp_path_factory.mktemp("fixture-batch")
    grades = out.parent / "fixture-grades.csv"
    grades.write_text(FIXTURE_GRADES, encoding="utf-8")
    code = main([str(FIXTURES), "--out", str(out), "--jobs", "2", "--budget", "quick", "--device", "cpu",
                 "--data-dir", str(data_dir), "--junit", str(out / "junit.xml"), "--manual", str(grades)])  # fmt: skip
    assert code == 0
    return out


def with_thresholds(assignment, settings: dict):
    """``assignment`` with some questions' ``full_threshold`` replaced: tests that must not follow the config's calibration."""
    from dataclasses import replace

    questions = [replace(q, options={**q.options, "full_threshold": settings[q.id]}) if q.id in settings else q
                 for q in assignment.questions]  # fmt: skip
    return replace(assignment, questions=questions)
