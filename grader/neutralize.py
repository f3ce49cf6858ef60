"""Lines a grading sandbox must not run, replaced by ``pass`` and recorded.

Students run on Colab: ``!pip install d2l``, ``drive.mount(...)``,
``!jupyter nbconvert ...``. Those would install packages, wait for a Google
login or touch paths that do not exist, so they are neutralized *line by
line* -- the rest of the cell still runs, and each line becomes ``pass``
with the same indentation so that an ``if`` or ``for`` around it stays valid
Python. Every replaced line is recorded for the report.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass

from nbformat import NotebookNode

from grader.results import NeutralizedLine

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
]
_LINE_MAGIC = re.compile(r"^\s*%(?!%)([A-Za-z_][A-Za-z0-9_]*)")
_CELL_MAGIC = re.compile(r"^\s*%%([A-Za-z_][A-Za-z0-9_]*)")


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
    """Neutralize one cell's source; backslash-continued lines go with their first line."""
    lines = source.split("\n")
    cell_magic = _CELL_MAGIC.match(lines[0]) if lines else None
    if cell_magic and cell_magic.group(1) not in HARMLESS_CELL_MAGICS:
        record = NeutralizedLine(cell_index, 0, source, f"cell magic %%{cell_magic.group(1)}")
        return NeutralizedCell(f"pass  # [grader] neutralized cell magic %%{cell_magic.group(1)}", [record])
    out: list[str] = []
    records: list[NeutralizedLine] = []
    continuing = False
    for number, line in enumerate(lines):
        reason = "continuation of a neutralized line" if continuing else _why(line)
        if reason is None:
            out.append(line)
            continue
        indent = line[: len(line) - len(line.lstrip())] if not continuing else out[-1][: len(out[-1]) - len(out[-1].lstrip())]
        out.append(f"{indent}pass  # [grader] neutralized: {reason}")
        records.append(NeutralizedLine(cell_index, number, line.strip(), reason))
        continuing = line.rstrip().endswith("\\")
    return NeutralizedCell("\n".join(out), records)


def neutralize(notebook: NotebookNode) -> tuple[NotebookNode, list[NeutralizedLine]]:
    """A copy of ``notebook`` with every code cell neutralized, and the list of replaced lines."""
    clean = copy.deepcopy(notebook)
    records: list[NeutralizedLine] = []
    for index, cell in enumerate(clean.cells):
        if cell.cell_type != "code":
            continue
        result = neutralize_source(cell.source, index)
        cell.source = result.source
        records.extend(result.lines)
    return clean, records
