"""The shape a maintainer relies on: one API for check authors, one error tree, one place for each rule."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import pkgutil
from pathlib import Path

import pytest

import grader
from grader.errors import GraderError
from grader.results import QuestionResult, QuestionStatus
from grader.worker import WorkerJob, worker_command

REPO = Path(__file__).resolve().parents[1]
#: Sent to the kernel as text, never imported by the grader (grader/kernel_source.py).
KERNEL_TEXT = {"kernel_side", "kernel_snapshots", "kernel_ops"}


def grader_modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules(grader.__path__) if m.name not in KERNEL_TEXT]


def test_assignments_import_only_the_public_check_api_from_the_grader():
    for path in sorted((REPO / "assignments").glob("*/checks*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert {m for m in imported if m.split(".")[0] == "grader"} <= {"grader.checks"}, path


def test_every_name_the_check_api_exports_exists():
    checks = importlib.import_module("grader.checks")
    assert checks.__all__ and all(hasattr(checks, name) for name in checks.__all__)


#: Not errors: signals that carry an error past a library that would otherwise handle it (Hypothesis shrinks every
#: ``Exception``); each is caught a few lines from where it is raised and never reaches a verdict.
CONTROL_FLOW = {"grader.assertions._Stopped"}


@pytest.mark.parametrize("name", grader_modules())
def test_every_exception_the_grader_defines_derives_from_the_one_base(name):
    module = importlib.import_module(f"grader.{name}")
    for _, value in inspect.getmembers(module, inspect.isclass):
        if f"{module.__name__}.{value.__name__}" in CONTROL_FLOW:
            continue
        if issubclass(value, BaseException) and value.__module__ == module.__name__:
            assert issubclass(value, GraderError), f"{module.__name__}.{value.__name__}"


@pytest.mark.parametrize("folder, limit", [("grader", 400), ("reference", 700)])
def test_no_module_is_longer_than_a_maintainer_can_hold(folder, limit):
    long = {p.name: n for p in (REPO / folder).glob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit}
    assert not long


def test_only_the_command_lines_parse_arguments():
    """``grade``'s own, and the sandbox launcher's (a separate process the sandbox starts); no Namespace travels further."""
    users = [name for name in grader_modules() if "argparse" in (REPO / "grader" / f"{name}.py").read_text(encoding="utf-8")]
    assert users == ["cli", "sandbox_launcher"]


def test_the_grading_process_s_command_line_is_written_in_one_place():
    writers = [name for name in grader_modules() if '"-m", "grader.worker"' in (REPO / "grader" / f"{name}.py").read_text(encoding="utf-8")]
    assert writers == ["worker"]


def test_a_worker_job_crosses_the_process_boundary_as_json():
    job = WorkerJob(
        notebook="a.ipynb",
        out="out",
        stem="a",
        assignment="hw2",
        budget="quick",
        device="cpu",
        data_dir="/d",
        threads=1,
        memory_bytes=1 << 30,
        cell_timeout=5.0,
    )
    command = worker_command(job)
    assert command[1:3] == ["-m", "grader.worker"] and WorkerJob.from_json(command[3]) == job


def test_a_job_description_with_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="unknown job fields"):
        WorkerJob.from_json(json.dumps({"notebook": "a", "stem": "a", "evil": 1}))


def test_every_status_has_its_words_in_the_one_display_table():
    assert all(s.label and s.symbol and s.style for s in QuestionStatus)


def test_a_status_is_its_plain_word_in_a_result_file():
    result = QuestionResult("q", "Q", "manual", 0.0, 1.0)
    assert result.status is QuestionStatus.MANUAL and json.dumps({"s": result.status}) == '{"s": "manual"}'


def test_the_package_map_names_every_module():
    documented = grader.__doc__ or ""
    assert all(f"``{name}``" in documented for name in grader_modules() + sorted(KERNEL_TEXT))


def batch_job(assignment_folder: Path):
    from grader.assignment import load_assignment

    return type("Job", (), {"assignment": load_assignment(assignment_folder), "path": Path("x.ipynb"), "stem": "x"})()


def test_a_batch_s_grading_process_gets_its_threads_less_one_for_data_loaders():
    from grader.grading_run import RunRequest, RunSettings

    settings = RunSettings(RunRequest(paths=("x.ipynb",)), "cpu", "full", Path("data"), parallel=1, threads=3, memory_bytes=1 << 30)
    job = batch_job(REPO / "assignments" / "hw2")
    assert settings.worker_job(job, in_batch=True).loader_workers == 2 and settings.worker_job(job).loader_workers is None


def test_a_packed_cuda_kernel_s_data_loaders_get_all_its_threads():
    """Under CUDA the kernel's process waits on its loaders: one worker per packed kernel left half a 16-core machine idle."""
    from grader import batch
    from grader.grading_run import RunRequest, RunSettings

    settings = RunSettings(RunRequest(paths=("x.ipynb",)), "cuda", "full", Path("data"), parallel=8, threads=2, memory_bytes=1 << 30)
    job = batch_job(REPO / "assignments" / "hw2")
    assert settings.worker_job(job, in_batch=True).loader_workers == 2
    assert (batch.loader_workers(1, "cuda"), batch.loader_workers(1, "cpu"), batch.loader_workers(4, "cpu")) == (1, 0, 3)


def test_a_course_assignment_is_sent_to_a_worker_by_name_and_one_kept_elsewhere_by_folder(tmp_path):
    import shutil

    from grader.grading_run import RunRequest, RunSettings

    settings = RunSettings(RunRequest(paths=("x.ipynb",)), "cpu", "quick", Path("data"))
    assert settings.worker_job(batch_job(REPO / "assignments" / "hw2")).assignment == "hw2"
    shutil.copytree(REPO / "assignments" / "demo", tmp_path / "demo")
    assert settings.worker_job(batch_job(tmp_path / "demo")).assignment == str(tmp_path / "demo")
