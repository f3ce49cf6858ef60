"""Sentences a student can act on, built from an error and the notebook's own source.

Why here and not in the kernel: the kernel's account of an error (its cell, its line)
is the notebook's to forge, and its traceback may end in the grader's own kernel-side
code. So the line shown is looked up in the notebook file -- the student's line or
none -- and a call the student's code could not take is explained with the signature
found in the source, beside the one the assignment asks for.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import re
from typing import Any

from nbformat import NotebookNode

from grader.kernel.failures import StudentError

_ARGUMENTS = re.compile(
    r"(missing \d+ required (positional|keyword-only) argument|takes (from )?\d+ (to \d+ )?positional arguments? but \d+"
    r"|got an unexpected keyword argument|got multiple values for argument|takes no arguments)"
)


def locate_in_notebook(error: StudentError, notebook: NotebookNode) -> StudentError:
    """The error with its line found in the notebook's own cells, or with no line at all.

    The kernel names a line by its text and number; the text is looked for in the cell the
    kernel named first, then in every code cell. A line that is in no cell (the grader's own
    code, a library's) is never shown as the student's.
    """
    code = error.code.strip()
    if not code:
        return dataclasses.replace(error, line=None, code="")
    cells = [(i, c) for i, c in enumerate(notebook.cells) if c.get("cell_type") == "code"]
    cells.sort(key=lambda item: item[0] != error.cell)  # the cell the kernel named first
    for index, cell in cells:
        lines = str(cell.get("source", "")).splitlines()
        if error.line and 0 < error.line <= len(lines) and lines[error.line - 1].strip() == code:
            return dataclasses.replace(error, cell=index, line=error.line)
    for index, cell in cells:
        for number, text in enumerate(str(cell.get("source", "")).splitlines(), 1):
            if text.strip() == code:
                return dataclasses.replace(error, cell=index, line=number)
    return dataclasses.replace(error, line=None, code="")


def is_argument_mismatch(error: StudentError) -> bool:
    """A ``TypeError`` raised by calling the student's function or class with the assignment's arguments.

    Python names the callee first (``vgg_block() missing ...``, ``Residual.__init__() takes ...``); a
    mismatch inside something else (an ``nn.MaxPool2d`` bound to the name, a library call) is not this.
    """
    name = error.name.split(".")[-1]
    names_it = re.match(rf"{re.escape(name)}(\.__init__)?\(\)", error.message) is not None
    return error.type == "TypeError" and error.line is None and names_it and bool(_ARGUMENTS.search(error.message))


_OLD_D2L = re.compile(r"module 'd2l' has no attribute|name 'd2l' is not defined|No module named 'd2l(zh_pytorch)?'")


def edition_hint(error: StudentError) -> str:
    """A sentence for an error that comes from importing d2l as another edition does, else ""."""
    if _OLD_D2L.search(error.message):
        return (
            "this assignment uses d2l 1.0: import it as `from d2l import torch as d2l` "
            "(`import d2l` alone, or the first edition's `d2lzh_pytorch`, has none of its functions)"
        )
    return ""


def signature_message(error: StudentError, source: Any, signatures: dict[str, dict[str, str]]) -> str:
    """What the grader called, what the student's definition takes, what the assignment asks for, and why."""
    name = error.name
    definition = source.last(name) if source is not None else None
    asked = signatures.get(name, {})
    called = f"the grader called `{error.call}`" if error.call else f"the grader called `{name}`"
    if definition is not None and definition.signature is not None:
        from grader.source.source_index import render_signature

        yours = f"your `{render_signature(name, definition)}` (cell {definition.cell}) takes other arguments"
    else:
        yours = f"your `{name}` takes other arguments"
    sentence = f"{called}, but {yours} ({error.type}: {error.message})"
    if asked.get("asks"):
        sentence += f"; the assignment asks for `{asked['asks']}` (d2l 1.0's API)"
    if asked.get("editions"):
        sentence += f" — {asked['editions']}"
    renamed = _renamed_keywords(asked.get("asks", ""), definition.parameters if definition is not None else ())
    if renamed:
        sentence += "; and " + ", ".join(f"write `{ours}` for your `{theirs}`" for theirs, ours in renamed)
        sentence += " (d2l 1.0's code passes it by that name)" if len(renamed) == 1 else " (d2l 1.0's code passes them by those names)"
    return sentence


def _renamed_keywords(asks: str, parameters: tuple[str, ...]) -> list[tuple[str, str]]:
    """(theirs, the assignment's) for each keyword parameter of ``asks`` that the student's ``parameters`` spell
    otherwise: the earlier editions' ``Residual(..., stride=1)`` where d2l 1.0 writes ``strides=1``. A caller that
    passes it by name (d2l 1.0's ResNet: ``Residual(num_channels, use_1x1conv=True, strides=2)``) fails on theirs."""
    try:
        call = ast.parse(asks, mode="eval").body
    except SyntaxError:  # `asks` in words ("class LeNet(...) with self.net = ..."): no keywords to compare
        return []
    if not isinstance(call, ast.Call):
        return []
    wanted = [k.arg for k in call.keywords if k.arg and k.arg not in parameters]
    spare = [p.lstrip("*") for p in parameters if p.lstrip("*") not in {k.arg for k in call.keywords}]
    pairs = []
    for keyword in wanted:
        close = difflib.get_close_matches(keyword, spare, n=1, cutoff=0.8)
        if close:
            pairs.append((close[0], keyword))
            spare.remove(close[0])
    return pairs
