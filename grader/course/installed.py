"""Assignments installed as packages (a student kit from ``grade kit``), found by name.

A checkout finds its assignments beside the source (``assignments/<name>/``), but a wheel installed
with ``pip install`` has no such folder. A kit therefore declares its assignment in the entry point
group :data:`ENTRY_POINT_GROUP` (``hw2 = hw2_kit``: the name, and the package whose folder holds
``config.toml`` and ``checks.py``). The folder is located without importing the package, so no code
of the kit runs before the grader chooses to load its checks.
"""

from __future__ import annotations

import importlib.util
from importlib.metadata import entry_points
from pathlib import Path

#: The entry point group a kit declares its assignment in (``<name> = <package>``).
ENTRY_POINT_GROUP = "hw_grader.assignments"


def installed_assignments() -> dict[str, Path]:
    """Every installed assignment by name, with its folder (the first distribution wins a name twice declared)."""
    found: dict[str, Path] = {}
    for point in entry_points(group=ENTRY_POINT_GROUP):
        if point.name in found:
            continue
        folder = _package_folder(point.module)
        if folder is not None:
            found[point.name] = folder
    return found


def installed_assignment(name: str) -> Path | None:
    """The folder of the installed assignment ``name``, or None when no installed kit declares it."""
    return installed_assignments().get(name)


def _package_folder(module: str) -> Path | None:
    """Where the package ``module`` lives, found by the import system without running it."""
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return folder if (folder / "config.toml").is_file() else None
