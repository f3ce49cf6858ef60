"""Generating the student template from the solution notebook (``grade assign``).

The instructor edits one notebook, the solution, and marks what students
must write with ``### BEGIN SOLUTION`` / ``### END SOLUTION``. The template
is derived from it, so the two can never drift apart:

* in a code cell, a marked region that only assigns values
  (``ANSWER_FORMULA = 'a + b'``) keeps the names with ``...``
  as the value; any other region becomes ``raise NotImplementedError()`` at
  the region's indentation, so ``def corr2d(X, K):`` still parses;
* in a markdown cell, a marked region becomes ``YOUR ANSWER HERE``;
* outputs and execution counts are cleared; notebook metadata is kept;
* a last cell, the self-check (``grader/course/self_check.py``), is added: it installs the course's
  student kit where needed and runs ``%grade``; its kit comes from ``[self_check]`` in the config
  beside the solution.

:func:`template_differences` is what CI uses to say which cell of a
committed template no longer matches its solution.
"""

from __future__ import annotations

import ast
import copy
import re
import tomllib
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from grader.course.self_check import kit_of, self_check_cell
from grader.errors import ConfigError
from grader.results import SELF_CHECK_TAG

BEGIN = re.compile(r"^(\s*)(#+|<!--)\s*BEGIN SOLUTION\b.*$")
END = re.compile(r"^\s*(#+|<!--)\s*END SOLUTION\b.*$")
MARKDOWN_PLACEHOLDER = "YOUR ANSWER HERE"


class SolutionMarkupError(ConfigError):
    """A BEGIN without END (or the reverse) in the solution; names the cell."""


def _value_only(lines: list[str]) -> list[str] | None:
    """``NAME = ...`` lines when the region only assigns values to plain names, else ``None``."""
    text = "\n".join(line.strip() for line in lines if line.strip())
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    if not tree.body:
        return None
    targets = []
    for node in tree.body:
        if not isinstance(node, ast.Assign):
            return None
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
        if len(names) != len(node.targets):  # a target that is not a plain name (x.a, x[0], a tuple)
            return None
        targets.append(" = ".join(names))
    return [f"{target} = ..." for target in targets]


def strip_solution(source: str, cell_type: str, cell_index: int = 0) -> str:
    """One cell's source with every marked solution region replaced."""
    out: list[str] = []
    region: list[str] | None = None
    indent = ""
    for number, line in enumerate(source.split("\n")):
        if region is None:
            begin = BEGIN.match(line)
            if begin:
                region, indent = [], begin.group(1)
            elif END.match(line):
                raise SolutionMarkupError(f"cell {cell_index}, line {number + 1}: END SOLUTION without BEGIN")
            else:
                out.append(line)
            continue
        if END.match(line):
            if cell_type == "markdown":
                out.append(indent + MARKDOWN_PLACEHOLDER)
            else:
                values = _value_only(region)
                # The template's placeholder for the student's code (this is the feature, not a stub).
                out.extend(indent + v for v in values) if values else out.append(indent + "raise NotImplementedError()")
            region = None
            continue
        region.append(line)
    if region is not None:
        raise SolutionMarkupError(f"cell {cell_index}: BEGIN SOLUTION without END")
    return "\n".join(out)


def make_template(solution: NotebookNode, kit: str | None = None) -> NotebookNode:
    """The student template of ``solution`` (a new notebook; the input is not changed), ending with the
    self-check cell that installs ``kit`` (the one the solution may carry is replaced, never doubled)."""
    template = copy.deepcopy(solution)
    template.cells = [cell for cell in template.cells if SELF_CHECK_TAG not in cell.metadata.get("tags", [])]
    for index, cell in enumerate(template.cells):
        cell.source = strip_solution(cell.source, cell.cell_type, index)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.metadata.pop("execution", None)
    cell = self_check_cell(kit)
    if (template.nbformat, template.nbformat_minor) >= (4, 5):
        cell.id = SELF_CHECK_TAG  # a fixed id: regenerating the template changes nothing
    else:
        del cell["id"]  # nbformat 4.4 and earlier have no cell ids
    template.cells.append(cell)
    return template


def kit_for(solution_path: Path) -> str | None:
    """The ``[self_check] kit`` of the config beside ``solution_path`` (None without a config or without the key)."""
    config = Path(solution_path).parent / "config.toml"
    if not config.is_file():
        return None
    try:
        return kit_of(tomllib.loads(config.read_text(encoding="utf-8")), str(config))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config}: not valid TOML: {exc}") from None


def template_differences(solution_path: Path, template_path: Path) -> list[str]:
    """Why the committed template is not what ``grade assign`` would generate (empty when it is)."""
    expected = make_template(nbformat.read(solution_path, as_version=4), kit_for(solution_path))
    if not template_path.exists():
        return [f"{template_path} does not exist; run `grade assign {solution_path}`"]
    actual = nbformat.read(template_path, as_version=4)
    problems = []
    if len(expected.cells) != len(actual.cells):
        problems.append(f"the solution has {len(expected.cells)} cells, the template {len(actual.cells)}")
    # strict=False: a differing cell count is reported above; the cells both have are still compared one by one.
    for index, (want, got) in enumerate(zip(expected.cells, actual.cells, strict=False)):
        want_tags, got_tags = want.metadata.get("tags", []), got.metadata.get("tags", [])
        if want.cell_type != got.cell_type or want.source != got.source or want_tags != got_tags:
            first_line = (want.source.splitlines() or [""])[0][:60]
            problems.append(f"cell {index} ({want.cell_type}, starting {first_line!r}) differs from the solution")
    if expected.metadata != actual.metadata:
        problems.append("the notebook metadata differs from the solution's")
    return problems


def write_template(solution_path: Path, template_path: Path) -> NotebookNode:
    template = make_template(nbformat.read(solution_path, as_version=4), kit_for(solution_path))
    template_path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(template, template_path)
    return template
