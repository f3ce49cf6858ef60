"""Lines a grading sandbox must not run, replaced by ``pass`` and recorded.

Students run on Colab: ``!pip install d2l``, ``drive.mount(...)``,
``!jupyter nbconvert ...``. Those would install packages, wait for a Google
login or touch paths that do not exist, so they are neutralized *line by
line* -- the rest of the cell still runs, and each line becomes ``pass``
with the same indentation so that an ``if`` or ``for`` around it stays valid
Python. A statement goes whole: its backslash-continued lines, and for Python
(``drive.mount(`` with its arguments below) every line up to its closing bracket,
so that no argument is left behind as a line of its own that breaks the cell.
Every replaced line is recorded for the report, and for the kernel's errors: one
raised on a replaced line is the grader's (:mod:`grader.kernel.grader_faults`).

The template's self-check cell (tagged :data:`~grader.results.SELF_CHECK_TAG`) goes whole: it installs the
student kit and runs ``%grade``, which is for the student's own kernel, never for the grader's run.
"""

from __future__ import annotations

import copy
import io
import re
import tokenize
from dataclasses import dataclass

from nbformat import NotebookNode

from grader.results import SELF_CHECK_TAG, NeutralizedLine

#: Line magics that change nothing outside the kernel's own display settings.
HARMLESS_LINE_MAGICS = frozenset({"matplotlib", "config", "time", "load_ext", "autoreload", "precision", "pprint"})
#: Cell magics whose body is still ordinary Python run in the kernel.
HARMLESS_CELL_MAGICS = frozenset({"time", "capture"})

_RULES: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^\s*!"), "shell command"),
    (re.compile(r"^\s*(from\s+google\.colab\b|import\s+google\.colab\b)"), "Colab-only import"),
    (re.compile(r"^\s*drive\.(mount|flush_and_unmount)\s*\("), "Google Drive mount"),
    (re.compile(r"^\s*files\.(download|upload)\s*\("), "Colab file transfer"),
    (re.compile(r"^\s*[A-Za-z_][A-Za-z0-9_]*\s*=\s*files\.upload\s*\("), "Colab file transfer"),
    # The student's self-check (``grader/run/magic.py``): run by the grader it would grade the notebook again, from inside
    # the sandbox (where the grader is hidden). ``%load_ext`` is otherwise harmless, so the grader's own is named here.
    (re.compile(r"^\s*%(load_ext|reload_ext)\s+grader\s*(#.*)?$"), "the grader's self-check"),
    (re.compile(r"^\s*%grade\b"), "the grader's self-check"),
]
#: What a replaced line becomes (its indentation before it): code the grader puts in the student's cell.
REPLACEMENT = "pass  # [grader] neutralized: {reason}"
#: The reason recorded for the lines a replaced statement goes on over.
CONTINUATION = "continuation of a neutralized line"
_SHELL_REASONS = ("shell command", "line magic")
_LINE_MAGIC = re.compile(r"^\s*%(?!%)([A-Za-z_][A-Za-z0-9_]*)")
_CELL_MAGIC = re.compile(r"^\s*%%([A-Za-z_][A-Za-z0-9_]*)")
#: The reason recorded for a skipped self-check cell.
SELF_CHECK_REASON = "self-check cell (the student's own %grade)"


@dataclass
class NeutralizedCell:
    source: str
    lines: list[NeutralizedLine]


def _why(line: str) -> str | None:
    for pattern, reason in _RULES:
        if pattern.search(line):
            return reason
    magic = _LINE_MAGIC.match(line)
    if magic and magic.group(1) not in HARMLESS_LINE_MAGICS:
        return f"line magic %{magic.group(1)}"
    return None


def neutralize_source(source: str, cell_index: int) -> NeutralizedCell:
    """Neutralize one cell's source; a statement's continuation lines go with its first line."""
    lines = source.split("\n")
    cell_magic = _CELL_MAGIC.match(lines[0]) if lines else None
    if cell_magic and cell_magic.group(1) not in HARMLESS_CELL_MAGICS:
        magic = f"cell magic %%{cell_magic.group(1)}"
        return NeutralizedCell(REPLACEMENT.format(reason=magic), [NeutralizedLine(cell_index, 0, source, magic)])
    out: list[str] = []
    records: list[NeutralizedLine] = []
    number = 0
    while number < len(lines):
        line = lines[number]
        reason = _why(line)
        if reason is None:
            out.append(line)
            number += 1
            continue
        indent, span = line[: len(line) - len(line.lstrip())], _extent(lines, number, reason)
        for offset, replaced in enumerate(lines[number : number + span]):
            why = reason if offset == 0 else CONTINUATION
            out.append(indent + REPLACEMENT.format(reason=why))
            records.append(NeutralizedLine(cell_index, number + offset, replaced.strip(), why))
        number += span
    return NeutralizedCell("\n".join(out), records)


def _extent(lines: list[str], start: int, reason: str) -> int:
    """How many lines the statement starting at ``lines[start]`` spans: a shell line and its backslash continuations;
    a Python statement up to where its brackets close (read by one lazy pass of the tokenizer). A statement still
    open at the cell's end spans its first line only, so that the notebook's own syntax error stays its own."""
    end = start
    while end < len(lines) - 1 and lines[end].rstrip().endswith("\\"):
        end += 1
    if reason.startswith(_SHELL_REASONS):
        return end - start + 1
    rest = "\n".join([lines[start].lstrip(), *lines[start + 1 :]]) + "\n"
    try:
        for token in tokenize.generate_tokens(io.StringIO(rest).readline):
            if token.type == tokenize.NEWLINE:
                return token.start[0]
    except (tokenize.TokenError, SyntaxError):  # open to the cell's end, or not Python the tokenizer reads
        pass
    return end - start + 1


def is_self_check(cell: NotebookNode) -> bool:
    """Whether ``cell`` is a self-check cell: it carries the tag, whatever its source (a student may have edited it)."""
    tags = cell.get("metadata", {}).get("tags", [])
    return isinstance(tags, list) and SELF_CHECK_TAG in tags


def neutralize(notebook: NotebookNode) -> tuple[NotebookNode, list[NeutralizedLine]]:
    """A copy of ``notebook`` with every code cell neutralized, and the list of replaced lines."""
    clean = copy.deepcopy(notebook)
    records: list[NeutralizedLine] = []
    for index, cell in enumerate(clean.cells):
        if cell.cell_type != "code":
            continue
        if is_self_check(cell):
            skipped = NeutralizedLine(index, 0, cell.source, SELF_CHECK_REASON)
            result = NeutralizedCell(REPLACEMENT.format(reason=SELF_CHECK_REASON), [skipped])
        else:
            result = neutralize_source(cell.source, index)
        cell.source = result.source
        records.extend(result.lines)
    return clean, records
