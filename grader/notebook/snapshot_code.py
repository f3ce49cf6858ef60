"""The grader's code run in the kernel after each cell: copy the student's own definitions and values.

Which names are the student's own ``def``/``class`` comes from the notebook's source (``grader/source/source_index.py``),
never from the kernel; what to copy after which cell comes from the assignment's ``[[snapshots]]``.
"""

from __future__ import annotations

import ast
from collections.abc import Callable

from nbformat import NotebookNode

from grader.course.assignment import Assignment
from grader.source.source_index import SourceIndex


def after_cell_code(assignment: Assignment, source: SourceIndex) -> Callable[[int, NotebookNode], str]:
    """Grader code to run after each cell: snapshot the student's own definitions and values.

    An ``after`` snapshot runs after a cell whose source matches its regex; the ``every_cell``
    ones scan the namespace after every cell (what the values are decides, not how a line is
    spelled), their ``after`` regex only marking the candidates of matching cells as hinted.
    """
    wanted = set(assignment.defined_names)
    scans = {s.key: s.match for s in assignment.snapshots if s.every_cell}
    by_cell: dict[int, list[str]] = {}
    for name in wanted:
        for definition in source.definitions.get(name, []):
            if definition.kind in ("def", "class"):
                by_cell.setdefault(definition.cell, []).append(name)

    def code(index: int, cell: NotebookNode) -> str:
        lines = []
        names = sorted(set(by_cell.get(index, [])))
        again = rebound_in_cell(cell.source, names)
        if names and set(names) - set(again):
            lines.append(f"__import__('_hwgrader').snap_defs({sorted(set(names) - set(again))!r}, {index})")
        for name, statement in again.items():
            lines.append(f"__import__('_hwgrader').snap_def_source({name!r}, {statement!r}, {index})")
        failed = next(
            (f"{o.get('ename', 'Error')}: {o.get('evalue', '')}" for o in cell.get("outputs", []) if o.get("output_type") == "error"), None
        )
        for snap in assignment.snapshots:
            if not snap.every_cell and snap.after is not None and snap.after.search(cell.source):  # not every_cell: has its regex
                lines.append(f"__import__('_hwgrader').snap_values({snap.key!r}, {snap.values!r}, {index}, {failed!r})")
        if scans:
            hints = [s.key for s in assignment.snapshots if s.every_cell and s.after is not None and s.after.search(cell.source)]
            lines.append(f"__import__('_hwgrader').snap_scan({scans!r}, {index}, {failed!r}, {hints!r})")
        return "\n".join(lines)

    return code


def rebound_in_cell(source: str, names: list[str]) -> dict[str, str]:
    """Graded names whose ``def``/``class`` the same cell rebinds after it, each with that statement's text
    (other lines blanked, so line numbers stay the cell's): the kernel keeps the definition, not the rebinding."""
    if not names:
        return {}
    try:
        body = ast.parse(source).body
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # what the source index could not read either
        return {}
    lines = source.split("\n")
    found: dict[str, str] = {}
    for position, node in enumerate(body):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name not in names:
            continue
        later = body[position + 1 :]
        if any(isinstance(t, ast.Name) and t.id == node.name and isinstance(t.ctx, ast.Store) for stmt in later for t in ast.walk(stmt)):
            first, last = min([node.lineno] + [d.lineno for d in node.decorator_list]), node.end_lineno
            assert last is not None  # ast.parse sets every statement's end line
            kept = [text if first <= number <= last else "" for number, text in enumerate(lines, 1)]
            found[node.name] = "\n".join(kept)
    return found
