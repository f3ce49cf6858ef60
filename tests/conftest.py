"""Shared test settings: Hypothesis profiles, devices, and the Fashion-MNIST folder."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, settings

REPO = Path(__file__).resolve().parents[1]

# "ci" (the default) keeps the property suite well under its 5-minute budget on
# 2 cores and never fails on a slow first call (torch warms up lazily);
# HYPOTHESIS_PROFILE=thorough runs ten times the examples.
settings.register_profile("ci", max_examples=60, deadline=None, print_blob=True, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("thorough", parent=settings.get_profile("ci"), max_examples=600)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config: pytest.Config) -> None:
    """One run seed for the whole session, inherited by every ``grade`` child a test starts.

    The reference models are trained once per seed (:func:`grader.checking.reference_cache.stored`): without this, each
    ``grade`` subprocess started before the first in-process draw would draw its own seed and train VGG, ResNet
    and LeNet again. Random unless ``GRADER_RUN_SEED`` is set, and shown in the header so a failure can be rerun
    with the same draws; a test that needs its own seed still sets it with ``monkeypatch``.
    """
    from grader.course.seeds import RUN_SEED_VARIABLE

    if not os.environ.get(RUN_SEED_VARIABLE, "").isdigit():
        os.environ[RUN_SEED_VARIABLE] = str(secrets.randbits(31))


def pytest_report_header(config: pytest.Config) -> str:
    return f"GRADER_RUN_SEED={os.environ.get('GRADER_RUN_SEED')} (set it to rerun with this session's draws)"


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
    from grader.run.api import grade_paths

    out = tmp_path_factory.mktemp("fixture-batch")
    grades = out.parent / "fixture-grades.csv"
    grades.write_text(FIXTURE_GRADES, encoding="utf-8")
    outcome = grade_paths(
        [FIXTURES], out=out, jobs=2, budget="quick", device="cpu", data_dir=data_dir, junit=out / "junit.xml", manual=grades
    )
    assert len(outcome.results) == 3 and not any(r.environment_problem for r in outcome.results)
    return out


@pytest.fixture(scope="session")
def slurm():
    """A one-node SLURM cluster for the session (tests/slurm_node.py), found through ``SLURM_CONF``; stopped and removed after.

    Skipped, with the reason, where SLURM cannot run (not installed, not root); ``GRADER_REQUIRE_SLURM=1`` (CI sets it)
    makes that a failure.
    """
    import tempfile

    from tests.slurm_node import SlurmNode, why_not_here

    reason = why_not_here()
    if reason:
        if os.environ.get("GRADER_REQUIRE_SLURM") == "1":
            pytest.fail(f"GRADER_REQUIRE_SLURM=1 but SLURM cannot run here: {reason}")
        pytest.skip(f"SLURM cannot run here: {reason}")
    node = SlurmNode(Path(tempfile.mkdtemp(prefix="hwgrader-slurm-")))
    before = os.environ.get("SLURM_CONF")
    try:
        node.write_configs()
        os.environ["SLURM_CONF"] = str(node.conf)  # for grade's own sbatch/squeue/scancel, and its children
        node.start()
        yield node
    finally:
        node.stop()
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before


def with_thresholds(assignment, settings: dict):
    """``assignment`` with some questions' ``full_threshold`` replaced: tests that must not follow the config's calibration."""
    from dataclasses import replace

    questions = [
        replace(q, options={**q.options, "full_threshold": settings[q.id]}) if q.id in settings else q for q in assignment.questions
    ]
    return replace(assignment, questions=questions)


# --------------------------------------------------------------------------- the fast loop: `pytest -m "not slow"`
# A test is `slow` when it grades a notebook end to end or starts a Jupyter kernel (directly, in a
# grading child, on a Dask worker or behind a session fixture). The full suite stays the CI command.
# To mark a new one, name it in the narrowest list that fits:
#   - SLOW_MODULES: a module where (nearly) every test starts a kernel -- its file name without ".py";
#   - SLOW_FIXTURES: a fixture that grades or starts a kernel -- every test using it, in any module, is slow;
#   - SLOW_TESTS: one test that starts a kernel itself in a module of fast tests -- "file.py::name";
#   - or put ``@pytest.mark.slow`` on the test (``pytestmark = pytest.mark.slow`` for a module) in its own file.
# tests/test_fast_loop.py fails when a name here no longer matches a collected test.

#: Modules whose tests grade notebooks or start kernels almost throughout (measured: every
#: test, or all but a few cheap ones, starts a kernel or a grading child or reads one that did).
SLOW_MODULES = frozenset(
    {
        "test_assignments",  # grade check-assignment hw2/demo; hidden questions graded in a kernel
        "test_batch",  # batches of grading children, killed and resumed
        "test_bounds",  # hostile outputs streamed from real kernels
        "test_browser",  # the fixture batch's reports in headless Chromium
        "test_cache",  # a batch graded twice
        "test_class_outputs",  # the fixture batch's class-wide files
        "test_cluster",  # grading on a Dask LocalCluster
        "test_editions",  # every notebook of other d2l editions graded end to end
        "test_execute",  # the executor against real kernels
        "test_forgery",  # forged kernel replies, graded in a kernel
        "test_grade",  # real and hostile notebooks through the whole pipeline
        "test_sandbox",  # hostile notebooks against bubblewrap and the limits
        "test_slurm_cluster",  # grading through a one-node SLURM started by the `slurm` fixture
    }
)

#: Fixtures that grade a notebook or start a kernel, used by a few tests of otherwise fast modules.
SLOW_FIXTURES = frozenset(
    {
        "fixture_batch",  # this file: the three fixture submissions graded as a batch
        "hostile_batch",  # test_markup
        "under_rlimits",  # test_device
        "gpu_hidden",  # test_device
        "writers",  # test_visibility
        "snooper",  # test_visibility
        "quick_run",  # test_d2l_budget
        "full_run",  # test_d2l_budget
        "no_fashion_run",  # test_d2l_budget
        "bundle",  # test_gradescope: run_autograder end to end
        "edge_and_kernel",  # test_snapshots
        "attacks_graded",  # test_clean_room: the attacks notebook graded once
        "typed_y_graded",  # test_clean_room: a hand-typed Y graded once
        "hw3_graded",  # test_hw3: HW3's wrong notebooks graded as one batch
    }
)

#: Single tests that start a kernel without a fixture, in modules of fast tests.
SLOW_TESTS = frozenset(
    {
        "test_cli.py::test_no_sandbox_turns_off_only_this_run_and_the_result_says_so",
        "test_device.py::test_grade_exits_3_when_the_environment_kept_a_notebook_from_being_graded",
        "test_device.py::test_a_batch_grades_a_notebook_whose_cuda_failed_once_more_alone_before_giving_up",
        "test_workflows.py::test_the_student_workflows_grade_command_fails_a_low_score_and_writes_the_report",
    }
)


def is_slow(module: str, fixtures: Iterable[str], test: str) -> bool:
    """Whether a test named ``test`` (its function name), in test module ``module``, using ``fixtures``, is slow."""
    return module in SLOW_MODULES or not SLOW_FIXTURES.isdisjoint(fixtures) or f"{module}.py::{test}" in SLOW_TESTS


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that grade notebooks or start kernels ``slow``, so ``-m "not slow"`` is a fast loop."""
    for item in items:
        module = Path(str(item.fspath)).stem
        test = getattr(item, "originalname", None) or item.name
        if is_slow(module, getattr(item, "fixturenames", ()), test):
            item.add_marker(pytest.mark.slow)
