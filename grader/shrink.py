"""Cutting a notebook's outputs to a size a report can carry.

A submission may print 100 MB or display a 5 MB image; the executed
notebook kept beside its result, and the HTML report made from it, must
stay small enough to open and to e-mail. Cut outputs say so in place.
"""

from __future__ import annotations

import copy

from nbformat import NotebookNode

#: Characters of one text output kept (half from its start, half from its end).
TEXT_LIMIT = 20_000
#: Bytes of one base64 image kept; a larger image is replaced by a note.
IMAGE_LIMIT = 1_500_000
#: Outputs of one cell kept.
OUTPUTS_PER_CELL = 50


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


def shrink_outputs(notebook: NotebookNode) -> NotebookNode:
    """A copy of ``notebook`` whose outputs fit the limits above."""
    notebook = copy.deepcopy(notebook)
    for cell in notebook.cells:
        if cell.get("cell_type") != "code":
            continue
        outputs = cell.get("outputs", [])
        kept = [_shrink_output(o) for o in outputs[:OUTPUTS_PER_CELL]]
        if len(outputs) > OUTPUTS_PER_CELL:
            kept.append(NotebookNode(output_type="stream", name="stderr",
                                     text=f"[{len(outputs) - OUTPUTS_PER_CELL} more outputs cut by the grader]\n"))  # fmt: skip
        cell["outputs"] = kept
    return notebook
