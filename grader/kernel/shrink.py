"""Cutting a notebook's outputs to a size a report can carry.

A submission may print 100 MB or display a 5 MB image; the executed
notebook kept beside its result, and the HTML report made from it, must
stay small enough to open and to e-mail. Cut outputs say so in place.

Each output is cut on its own (:data:`TEXT_LIMIT`, :data:`IMAGE_LIMIT`,
:data:`OUTPUTS_PER_CELL`), and the whole file has a budget too
(:data:`NOTEBOOK_LIMIT`, 10 MB): an 80 KB notebook whose every cell filled
every per-output limit made a 302 MB executed notebook. Outputs are taken in
order while they fit; from the first that does not fit, every later output is
left out, each cell that lost some ends with one line saying how many outputs
and bytes, and ``metadata.grader.outputs_cut`` sums it up. The size is counted
as each output is taken, so nothing larger than the budget is ever built. The
student's own sources are never cut.
"""

from __future__ import annotations

import copy
import json

from nbformat import NotebookNode

#: Characters of one text output kept (half from its start, half from its end).
TEXT_LIMIT = 20_000
#: Bytes of one base64 image kept; a larger image is replaced by a note.
IMAGE_LIMIT = 1_500_000
#: Outputs of one cell kept.
OUTPUTS_PER_CELL = 50
#: Bytes of the executed notebook as written (nbformat's JSON); outputs past it are left out, with a note.
NOTEBOOK_LIMIT = 10_000_000
#: Of the budget, what is kept back for the notes themselves (one line per cut cell, while it lasts).
NOTE_RESERVE = 200_000


def cut_text(text: str, limit: int = TEXT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n… [{len(text) - limit:,} characters cut by the grader] …\n{text[-half:]}"


def _shrink_output(output: NotebookNode) -> NotebookNode:
    if "text" in output:
        text = output["text"] if isinstance(output["text"], str) else "".join(output["text"])
        output["text"] = cut_text(text)
    if output.get("output_type") == "error":
        output["traceback"] = [cut_text(line, 4000) for line in output.get("traceback", [])[-30:]]
        output["evalue"] = cut_text(str(output.get("evalue", "")), 4000)
    data = output.get("data")
    if isinstance(data, dict):
        for mime in list(data):
            value = "".join(map(str, data[mime])) if isinstance(data[mime], list) else data[mime]
            if mime.startswith("image/") and isinstance(value, str) and len(value) > IMAGE_LIMIT:
                del data[mime]
                data["text/plain"] = f"[a {mime} output of {len(value) * 3 // 4:,} bytes was removed by the grader]"
            elif isinstance(value, str):
                data[mime] = cut_text(value)
    return output


def written_size(value: object) -> int:
    """An upper bound on the bytes ``value`` takes in nbformat's JSON (indented, multi-line strings split into lists).

    ``ensure_ascii`` counts a non-ASCII character as six bytes (UTF-8 needs at most four), and each
    line break is charged the indentation and quotes of a list item of its own.
    """
    text = json.dumps(value, ensure_ascii=True)
    return len(text) + 12 * text.count("\\n") + 64


def _raw_size(output: NotebookNode) -> int:
    """The characters of an output's text and data as they are (an estimate for what is left out)."""
    size = 0
    for value in [output.get("text"), output.get("evalue"), *(output.get("traceback") or [])] + list((output.get("data") or {}).values()):
        if isinstance(value, str):
            size += len(value)
        elif isinstance(value, list):
            size += sum(len(v) for v in value if isinstance(v, str))
    return size


def _note(outputs: int, size: int, limit: int) -> NotebookNode:
    return NotebookNode(
        output_type="stream",
        name="stderr",
        text=f"[{outputs:,} more output{'s' if outputs > 1 else ''} (about {size:,} bytes) cut by the grader: "
        f"the executed notebook keeps {limit / 1e6:g} MB of outputs in all]\n",
    )


def shrink_outputs(notebook: NotebookNode, limit: int = NOTEBOOK_LIMIT) -> NotebookNode:
    """A copy of ``notebook`` whose outputs fit the per-output limits above and, together, ``limit`` bytes."""
    outputs_of = {id(cell): cell.get("outputs", []) for cell in notebook.cells if cell.get("cell_type") == "code"}
    shell = NotebookNode({key: copy.deepcopy(value) for key, value in notebook.items() if key != "cells"})
    shell["cells"] = []
    for cell in notebook.cells:  # every cell copied without its outputs: those are taken one by one below
        bare = NotebookNode({k: v for k, v in cell.items() if k != "outputs"})
        if id(cell) in outputs_of:
            bare["outputs"] = []
        shell["cells"].append(copy.deepcopy(bare))
    total = written_size(shell)
    budget = max(0, limit - NOTE_RESERVE)
    cut_outputs = cut_bytes = cut_cells = 0
    notes_left = NOTE_RESERVE
    full = False
    for original, cell in zip(notebook.cells, shell["cells"], strict=True):
        outputs = outputs_of.get(id(original))
        if not outputs:
            continue
        kept, left_out, left_size = [], 0, 0
        for output in outputs[:OUTPUTS_PER_CELL]:
            if full:  # past the budget: not copied or cut, only counted
                left_out += 1
                left_size += _raw_size(output)
                continue
            shrunk = _shrink_output(copy.deepcopy(output))
            size = written_size(shrunk)
            if total + size <= budget:
                kept.append(shrunk)
                total += size
            else:  # from the first output that does not fit, every later one is left out (the order is kept)
                full = True
                left_out += 1
                left_size += size
        if len(outputs) > OUTPUTS_PER_CELL:
            kept.append(
                NotebookNode(
                    output_type="stream", name="stderr", text=f"[{len(outputs) - OUTPUTS_PER_CELL} more outputs cut by the grader]\n"
                )
            )
        if left_out:
            cut_outputs, cut_bytes, cut_cells = cut_outputs + left_out, cut_bytes + left_size, cut_cells + 1
            note = _note(left_out, left_size, limit)
            if written_size(note) <= notes_left:
                notes_left -= written_size(note)
                kept.append(note)
        cell["outputs"] = kept
    if cut_outputs:
        grader = dict(shell.get("metadata", {}).get("grader", {}))
        grader["outputs_cut"] = {"outputs": cut_outputs, "bytes": cut_bytes, "cells": cut_cells, "limit_bytes": limit}
        shell.setdefault("metadata", NotebookNode())["grader"] = grader
    return shell
