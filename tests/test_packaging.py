"""pyproject.toml tells the truth: every imported distribution is declared, and the version is written once."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import tomllib

import pytest

import grader
from tests.conftest import REPO

FIRST_PARTY = {"grader", "reference", "assignments", "tests"}


def pyproject() -> dict:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_distributions() -> set[str]:
    """Every distribution the project names: its dependencies and every extra (``dask[distributed]`` counts as dask)."""
    project = pyproject()["project"]
    requirements = [*project["dependencies"], *(r for extra in project["optional-dependencies"].values() for r in extra)]
    return {normalized(re.match(r"[A-Za-z0-9_.-]+", r).group(0)) for r in requirements}


def imported_top_level_modules() -> dict[str, str]:
    """Each third-party module imported anywhere in the project's Python code, with one file that imports it."""
    found: dict[str, str] = {}
    for folder in sorted(FIRST_PARTY):
        for path in sorted((REPO / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                else:
                    continue
                for name in names:
                    top = name.split(".")[0]
                    if top not in sys.stdlib_module_names and top not in FIRST_PARTY:
                        found.setdefault(top, str(path.relative_to(REPO)))
    return found


def test_every_imported_third_party_module_comes_from_a_declared_distribution():
    providers = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    undeclared = {}
    for module, where in imported_top_level_modules().items():
        distributions = {normalized(d) for d in providers.get(module, [])}
        if not distributions & declared:
            undeclared[module] = f"{where} (installed by {sorted(distributions) or 'nothing'})"
    assert not undeclared, f"imported but not declared in pyproject.toml: {undeclared}"


def test_the_version_is_read_from_grader_and_written_nowhere_else_in_pyproject():
    config = pyproject()
    assert "version" not in config["project"] and "version" in config["project"]["dynamic"]
    assert config["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "grader.__version__"}


def test_grade_version_prints_the_package_version(capsys):
    from grader.run.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"grade {grader.__version__}"
