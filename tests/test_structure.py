"""The shape a maintainer relies on: one API for check authors, one error tree, one place for each rule."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import os
import pkgutil
import re
from dataclasses import replace
from pathlib import Path

import pytest

import grader
from grader.errors import GraderError
from grader.kernel.side_text import KERNEL_FILES
from grader.results import QuestionResult, QuestionStatus
from grader.run.job import WorkerJob, worker_command

REPO = Path(__file__).resolve().parents[1]
#: Sent to the kernel as text, never imported by the grader: the files ``grader/kernel/side_text.py`` lists.
KERNEL_TEXT = {f"kernel.{name.removesuffix('.py')}" for name in KERNEL_FILES}


def grader_modules() -> list[str]:
    """Every module of the grader as its path below ``grader`` (``run.cli``, ``errors``), the folders' ``__init__`` left out."""
    found = pkgutil.walk_packages(grader.__path__, prefix="grader.")
    return [m.name.removeprefix("grader.") for m in found if not m.ispkg and m.name.removeprefix("grader.") not in KERNEL_TEXT]


def source_of(name: str) -> str:
    return (REPO / "grader" / f"{name.replace('.', '/')}.py").read_text(encoding="utf-8")


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
#: ``Exception``; SIGTERM made a KeyboardInterrupt so that every backend's ``finally`` runs); each is caught by
#: the code that raises it (or ``cli.main``) and never reaches a verdict.
CONTROL_FLOW = {"grader.checking.assertions._Stopped", "grader.run.cli.Terminated"}


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
    long = {
        str(p.relative_to(REPO)): n for p in (REPO / folder).rglob("*.py") if (n := len(p.read_text(encoding="utf-8").splitlines())) > limit
    }
    assert not long


def test_only_the_command_lines_parse_arguments():
    """``grade``'s own, and the sandbox launcher's (a separate process the sandbox starts); no Namespace travels further."""
    users = [name for name in grader_modules() if "argparse" in source_of(name)]
    assert users == ["run.cli", "sandbox.launcher"]


def test_the_grading_process_s_command_line_is_written_in_one_place():
    writers = [name for name in grader_modules() if '"-m", "grader.run.worker"' in source_of(name)]
    assert writers == ["run.job"]


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
    assert command[1:3] == ["-m", "grader.run.worker"] and WorkerJob.from_json(command[3]) == replace(job, parent=os.getpid())


def test_a_job_description_with_an_unknown_field_is_refused():
    with pytest.raises(ValueError, match="unknown job fields"):
        WorkerJob.from_json(json.dumps({"notebook": "a", "stem": "a", "evil": 1}))


def test_every_status_has_its_words_in_the_one_display_table():
    assert all(s.label and s.symbol and s.style for s in QuestionStatus)


def test_a_status_is_its_plain_word_in_a_result_file():
    result = QuestionResult("q", "Q", "manual", 0.0, 1.0)
    assert result.status is QuestionStatus.MANUAL and json.dumps({"s": result.status}) == '{"s": "manual"}'


def package_map() -> dict[str, str]:
    """The package map's sections by folder (``""``: the top level's lines before the first folder)."""
    sections = {"": ""}
    folder = ""
    for line in (grader.__doc__ or "").splitlines():
        if match := re.match(r"(\w+)/ ", line):
            folder = match.group(1)
            sections[folder] = ""
        sections[folder] += line + "\n"
    return sections


def test_the_package_map_names_every_module_under_its_folder():
    sections = package_map()
    for name in grader_modules() + sorted(KERNEL_TEXT):
        folder, _, module = name.rpartition(".")
        assert f"``{module}``" in sections.get(folder, ""), name
    assert set(sections) - {""} == {p.name for p in (REPO / "grader").iterdir() if (p / "__init__.py").is_file()}


#: The folders of ``grader/`` in layers: each may import only the folders it lists (and the top level's ``errors`` and
#: ``results``, which import no folder). ``run`` is the top; ``sandbox``, ``source`` and ``course`` the bottom.
ALLOWED_IMPORTS: dict[str, set[str]] = {
    "run": {"notebook", "checking", "kernel", "sandbox", "source", "course", "reports", "integrations"},
    "notebook": {"checking", "kernel", "sandbox", "source", "course"},
    "checking": {"kernel", "sandbox", "source", "course"},
    "kernel": {"sandbox", "source", "course"},
    "sandbox": set(),
    "source": set(),
    "course": set(),
    "reports": {"kernel", "course"},
    "integrations": {"reports", "checking", "source", "course"},
}
#: The top level's modules, as the folders above: ``checks`` is the check authors' facade over the layers below it.
ALLOWED_IMPORTS |= {"errors": {"results"}, "results": set(), "checks": {"checking", "course", "kernel", "errors", "results"}}
BOTTOM = {"errors", "results"}


def is_module(dotted: str) -> bool:
    """Whether ``grader.x.y`` names a module or a folder (rather than a name defined in one, as ``grader.__version__``)."""
    path = REPO.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def grader_imports(name: str) -> list[tuple[int, str]]:
    """The grader modules ``name`` imports, anywhere in it (in a function, under ``TYPE_CHECKING``), with the line."""
    tree = ast.parse(source_of(name))
    package = "grader." + name.rpartition(".")[0] if "." in name else "grader"
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            found += [(node.lineno, f"{base}.{a.name}" if is_module(f"{base}.{a.name}") else base) for a in node.names]
    return [(line, target) for line, target in found if target.split(".")[0] == "grader"]


def layer_of(module: str) -> str:
    """``grader.run.cli`` -> ``run``; ``grader.errors`` -> ``errors``; ``grader`` (its ``__version__``) -> ``""``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_allowed_directions_name_every_folder():
    folders = {p.name for p in (REPO / "grader").iterdir() if (p / "__init__.py").is_file()}
    assert folders | {"errors", "results", "checks"} == set(ALLOWED_IMPORTS)


def test_imports_run_one_way_between_the_folders():
    against = []
    for name in grader_modules() + sorted(KERNEL_TEXT):
        source = layer_of(f"grader.{name}")
        for line, target in grader_imports(name):
            to = layer_of(target)
            if to in ("", source) or to in BOTTOM and source not in BOTTOM or to in ALLOWED_IMPORTS[source]:
                continue
            against.append(f"grader/{name.replace('.', '/')}.py:{line}: {source} -> {to} ({target})")
    assert not against, "\n".join(against)


def test_no_module_imports_itself_back():
    """No cycle between modules, counting the imports made inside functions: none may be placed there to dodge one."""
    modules = set(grader_modules())
    graph = {name: set() for name in modules}
    for name in modules:
        for _, target in grader_imports(name):
            parts = target.split(".")[1:]
            while parts and ".".join(parts) not in modules:
                parts.pop()
            if parts and ".".join(parts) != name:
                graph[name].add(".".join(parts))
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> None:
        if name in path:
            raise AssertionError(" -> ".join(path[path.index(name) :] + [name]))
        if name in done:
            return
        for target in sorted(graph[name]):
            visit(target, path + [name])
        done.add(name)

    for name in sorted(modules):
        visit(name, [])


def batch_job(assignment_folder: Path):
    from grader.course.assignment import load_assignment

    return type("Job", (), {"assignment": load_assignment(assignment_folder), "path": Path("x.ipynb"), "stem": "x"})()


def test_a_batch_s_grading_process_gets_its_threads_less_one_for_data_loaders():
    from grader.run.settings import RunRequest, RunSettings

    settings = RunSettings(RunRequest(paths=("x.ipynb",)), "cpu", "full", Path("data"), parallel=1, threads=3, memory_bytes=1 << 30)
    job = batch_job(REPO / "assignments" / "hw2")
    assert settings.worker_job(job, in_batch=True).loader_workers == 2 and settings.worker_job(job).loader_workers is None


def test_a_packed_cuda_kernel_s_data_loaders_get_all_its_threads():
    """Under CUDA the kernel's process waits on its loaders: one worker per packed kernel left half a 16-core machine idle."""
    from grader.run import batch
    from grader.run.settings import RunRequest, RunSettings

    settings = RunSettings(RunRequest(paths=("x.ipynb",)), "cuda", "full", Path("data"), parallel=8, threads=2, memory_bytes=1 << 30)
    job = batch_job(REPO / "assignments" / "hw2")
    assert settings.worker_job(job, in_batch=True).loader_workers == 2
    assert (batch.loader_workers(1, "cuda"), batch.loader_workers(1, "cpu"), batch.loader_workers(4, "cpu")) == (1, 0, 3)


def test_a_course_assignment_is_sent_to_a_worker_by_name_and_one_kept_elsewhere_by_folder(tmp_path):
    import shutil

    from grader.run.settings import RunRequest, RunSettings

    settings = RunSettings(RunRequest(paths=("x.ipynb",)), "cpu", "quick", Path("data"))
    assert settings.worker_job(batch_job(REPO / "assignments" / "hw2")).assignment == "hw2"
    shutil.copytree(REPO / "assignments" / "demo", tmp_path / "demo")
    assert settings.worker_job(batch_job(tmp_path / "demo")).assignment == str(tmp_path / "demo")
