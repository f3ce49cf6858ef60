"""The template's self-check cell: what the student runs last, and what the grader never runs."""

from __future__ import annotations

import ast
import shutil
import sys

import nbformat
import pytest
from IPython.core.inputtransformer2 import TransformerManager
from IPython.utils.text import DollarFormatter
from nbformat.v4 import new_code_cell, new_notebook

from grader.course.assignment import load_assignment
from grader.course.self_check import self_check_cell
from grader.course.template import make_template
from grader.errors import ConfigError
from grader.results import SELF_CHECK_TAG
from grader.source.neutralize import SELF_CHECK_REASON, is_self_check, neutralize
from tests.conftest import REPO

SOLUTION = REPO / "assignments" / "hw2" / "solution.ipynb"


def test_the_template_ends_with_one_self_check_cell_that_installs_the_configured_kit():
    template = make_template(nbformat.read(SOLUTION, as_version=4), "https://example.org/hw2_kit-0.2.0-py3-none-any.whl")
    last = template.cells[-1]
    assert last.cell_type == "code" and last.metadata["tags"] == [SELF_CHECK_TAG]
    assert "    %pip install --quiet https://example.org/hw2_kit-0.2.0-py3-none-any.whl" in last.source.splitlines()
    assert last.source.splitlines()[-2:] == ["%load_ext grader", "%grade"]
    again = make_template(template, "other.whl")  # a solution that already ends with one: replaced, not doubled
    assert sum(is_self_check(cell) for cell in again.cells) == 1 and "other.whl" in again.cells[-1].source


def test_without_a_kit_the_self_check_cell_installs_nothing_and_says_whom_to_ask():
    source = self_check_cell(None).source
    assert "%pip" not in source and "ask for it" in source and source.endswith("%load_ext grader\n%grade")


@pytest.mark.parametrize("kit", [None, "hw2_kit-*-py3-none-any.whl"])
def test_the_self_check_cell_is_python_once_ipython_has_read_its_magics(kit):
    tree = ast.parse(TransformerManager().transform_cell(self_check_cell(kit).source))
    assert isinstance(tree.body[0], ast.Try)  # the kit is installed only where `import grader` fails


def test_a_kit_glob_reaches_pip_as_the_file_name_found_so_that_no_shell_has_to_expand_it(tmp_path, monkeypatch):
    """On Windows %pip's command line goes through cmd, which expands no glob: the cell expands it in Python, and
    IPython's own ``{...}`` expansion (its DollarFormatter, what ``run_line_magic`` applies) puts the name in."""
    (tmp_path / "hw2_kit-0.2.0-py3-none-any.whl").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "grader", None)  # `import grader` fails: the cell takes its install branch
    calls: list[tuple[str, str]] = []

    class Shell:
        def run_line_magic(self, name: str, line: str) -> None:
            calls.append((name, line))

    namespace: dict = {"get_ipython": Shell}
    exec(TransformerManager().transform_cell(self_check_cell("hw2_kit-*-py3-none-any.whl").source), namespace)
    assert [name for name, _ in calls] == ["pip", "load_ext", "grade"]
    assert DollarFormatter().vformat(calls[0][1], args=[], kwargs=namespace) == "install --quiet hw2_kit-0.2.0-py3-none-any.whl"


@pytest.mark.parametrize("name", ["demo", "hw2", "hw3"])
def test_every_committed_template_ends_with_the_self_check_cell(name):
    template = nbformat.read(REPO / "assignments" / f"{name}.ipynb", as_version=4)
    assert is_self_check(template.cells[-1]) and f"glob({name + '_kit-*-py3-none-any.whl'!r})" in template.cells[-1].source
    assert not any(is_self_check(cell) for cell in template.cells[:-1])


def test_the_grader_skips_a_tagged_cell_whatever_its_source_and_says_so():
    source = "x = 1\n%grade"
    notebook = new_notebook(cells=[new_code_cell(source, metadata={"tags": ["other", SELF_CHECK_TAG]}), new_code_cell(source)])
    clean, records = neutralize(notebook)
    assert "x = 1" not in clean.cells[0].source and ast.parse(clean.cells[0].source)
    assert clean.cells[1].source.startswith("x = 1\n")  # no tag: only the magic line goes
    assert [(r.cell, r.source, r.reason) for r in records if r.cell == 0] == [(0, source, SELF_CHECK_REASON)]


def test_a_cell_whose_tags_are_not_a_list_is_not_a_self_check():
    cell = new_code_cell("x = 1")
    cell.metadata["tags"] = SELF_CHECK_TAG  # a string (nbformat's schema wants a list): a notebook edited by hand
    assert not is_self_check(cell)


@pytest.mark.parametrize(
    "table",
    [
        'kit = "two words.whl"',
        'kit = "a.whl; rm -rf ~"',
        'kit = "a.whl&b"',
        'kit = "$HOME/a.whl"',
        'kit = "{x}.whl"',
        'url = "a"',
        "kit = 3",
    ],
)
def test_a_malformed_self_check_table_is_refused_when_the_assignment_loads(tmp_path, table):
    folder = tmp_path / "demo"
    shutil.copytree(REPO / "assignments" / "demo", folder)
    config = (folder / "config.toml").read_text().split("[self_check]")[0]
    (folder / "config.toml").write_text(config + "[self_check]\n" + table + "\n")
    with pytest.raises(ConfigError, match="self_check"):
        load_assignment(folder)


def test_the_configured_kit_is_read_with_the_assignment():
    assert load_assignment("hw2").self_check_kit == "hw2_kit-*-py3-none-any.whl"
