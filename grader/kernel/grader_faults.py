"""Whose error it is: a cell's error raised inside code the grader added is said to be the grader's.

The grader puts code of its own where a notebook runs: in the kernel, the budget's patches and its reading of
the data folder the kernel is given (each compiled under a file name of its own, :data:`GRADER_CODE`), and in the cells
themselves, the lines :mod:`grader.source.neutralize` replaced. A student told "cell 3 raised ..." for a bug of
the grader's would hunt for it in their own code, so the innermost frame of the cell's traceback decides:
in the grader's code, the cell's error says so; anywhere else (a library the student's code called
included) it is the notebook's. The kernel writes the traceback, so a notebook could forge one; it would
only move the blame for its own failing cell, which costs it the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from nbformat import NotebookNode

from grader.course.d2l_budget import BUDGET_CODE, DATA_CODE
from grader.results import NeutralizedLine
from grader.source.neutralize import CONTINUATION

#: Code the grader runs in the kernel, by the file name it is compiled under, and what it is in words.
GRADER_CODE = {
    BUDGET_CODE: "the budget's patch of torch, torchvision and d2l",
    DATA_CODE: "the kernel's view of the data folder",
}
NOT_THEIRS = "the grader's error, not this notebook's"
#: How much of a replaced line a note quotes.
QUOTED_CHARS = 80
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
#: A frame's header as IPython writes it: ``File <name>:12, in f()`` for a file, ``Cell In[3], line 2`` for a cell
#: (a SyntaxError's location in a cell too).
_FRAME = re.compile(r"^ {0,2}(?:File (?P<file>\S.*?):\d+(?:,|$)|Cell In\[(?P<count>\d+)\], line (?P<line>\d+))", re.M)


def grader_fault(cell: NotebookNode, index: int, replaced: Sequence[NeutralizedLine] = ()) -> str:
    """A note for cell ``index`` whose error was raised inside code the grader added ('' for any other error).

    ``replaced``: the lines :mod:`grader.source.neutralize` replaced in the notebook; an error raised on one of this
    cell's (its innermost frame is this cell, at that line) names the line the notebook had there.
    """
    frame = _innermost(cell)
    if frame is None:
        return ""
    if frame["file"] is not None:
        what = GRADER_CODE.get(frame["file"], "")
        return f" (raised inside code the grader added to the kernel, {what}: {NOT_THEIRS})" if what else ""
    if int(frame["count"]) != cell.get("execution_count"):  # a line of another cell (a function it defined)
        return ""
    line = _replaced_at(replaced, index, int(frame["line"]) - 1)
    if line is None:
        return ""
    return f" (the line `{_quoted(line.source)}` was replaced by the grader ({line.reason}): {NOT_THEIRS})"


def _innermost(cell: NotebookNode) -> re.Match[str] | None:
    """The innermost frame of the cell's error output, if it has one."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            frames = list(_FRAME.finditer(_ANSI.sub("", "\n".join(str(line) for line in output.get("traceback", [])))))
            return frames[-1] if frames else None
    return None


def _replaced_at(replaced: Sequence[NeutralizedLine], cell: int, number: int) -> NeutralizedLine | None:
    """The replaced statement line ``number`` of ``cell`` belongs to (its first line: the one with the reason), if any."""
    mine = {line.line: line for line in replaced if line.cell == cell}
    while number in mine and mine[number].reason == CONTINUATION and number - 1 in mine:
        number -= 1
    return mine.get(number)


def _quoted(source: str) -> str:
    """A replaced line as a note quotes it: its first line, at most :data:`QUOTED_CHARS` characters."""
    lines = source.strip().splitlines() or [""]
    first = lines[0]
    if len(first) > QUOTED_CHARS or len(lines) > 1:
        return first[:QUOTED_CHARS].rstrip() + " …"
    return first
