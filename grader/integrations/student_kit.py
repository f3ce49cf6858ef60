"""The student kit: ``grade kit NAME -o PATH`` writes one wheel a student installs with ``pip install FILE``.

A student's self-check needs the grader, the assignment's config, its template and its *visible* checks,
and nothing of the answer key. The kit is therefore built from an allow-list, never by copying the
assignment's folder: ``config.toml`` and ``checks.py`` (plus the template, generated from the solution by
``grade assign``'s rules), the whole ``grader`` package, and of ``reference/`` only the modules the grader
and the visible checks import (followed transitively by parsing, nothing is imported). Everything else in
the assignment's folder -- ``checks_hidden.py``, ``solution.ipynb``, a TA's answers or measured runs -- and
every other ``reference`` module is left out, and the manifest says so, file by file.

The wheel is written with :mod:`zipfile` per the binary distribution format (PyPA's "Binary distribution
format" specification: ``{name}-{version}-py3-none-any.whl`` with a ``.dist-info`` holding ``METADATA``,
``WHEEL``, ``entry_points.txt`` and ``RECORD`` with a SHA-256 per file): it needs no build backend and no
network, and the same inputs give the same bytes. Its entry points give the ``grade`` command and declare
the assignment in :data:`grader.course.installed.ENTRY_POINT_GROUP`, so an installed kit is found by name.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.metadata
import io
import re
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

from grader import __version__
from grader.course.assignment import load_assignment, template_path_for
from grader.course.installed import ENTRY_POINT_GROUP
from grader.course.template import kit_for, make_template
from grader.errors import ConfigError
from grader.integrations.gradescope_bundle import source_files

#: The only files of an assignment's folder a kit carries (the template is generated, see :func:`build_kit`).
CARRIED_FROM_ASSIGNMENT = ("config.toml", "checks.py")
#: Why a file of the assignment's folder stays out, for the manifest (any other file: :data:`OTHER_REASON`).
LEFT_OUT_REASONS = {
    "checks_hidden.py": "the hidden checks (the answer key's tests)",
    "solution.ipynb": "the solution notebook (the template is generated from it instead)",
}
OTHER_REASON = "not a visible check or the config (a TA's answers, measured or calibration runs, notes)"
#: Fixed timestamp of every archive member: the same inputs give the same wheel.
_DATE = (2020, 1, 1, 0, 0, 0)


class KitError(ConfigError):
    """The kit cannot be built as asked (no template source, visible checks that import hidden ones...)."""


@dataclass
class Kit:
    """What :func:`build_kit` wrote: the wheel, and the manifest of what it carries and leaves out."""

    path: Path
    assignment: str
    carried: list[str]
    left_out: list[tuple[str, str]]
    seconds: float
    manifest_path: Path
    requires: list[str] = field(default_factory=list)

    @property
    def size_bytes(self) -> int:
        return self.path.stat().st_size

    def manifest(self) -> str:
        """The manifest as text: shipped inside the kit, written beside it, printed by ``grade kit``."""
        lines = [f"Student kit for {self.assignment} (hw-grader {__version__}): {self.path.name}", "", "Carried:"]
        lines += [f"  {name}" for name in self.carried]
        lines += ["", "Left out:"]
        lines += [f"  {name}  -- {why}" for name, why in self.left_out]
        return "\n".join(lines) + "\n"


def kit_names(assignment: str) -> tuple[str, str]:
    """(distribution name, import package) of ``assignment``'s kit: ``hw2`` -> (``hw2-kit``, ``hw2_kit``)."""
    package = re.sub(r"[^A-Za-z0-9]+", "_", assignment).strip("_").lower() + "_kit"
    if not package[0].isalpha():
        package = "a" + package
    return package.replace("_", "-"), package


def build_kit(assignment: str | Path, output: Path) -> Kit:
    """Write ``assignment``'s student kit in ``output`` (a folder) or beside it (a file path: its folder)."""
    started = time.perf_counter()
    loaded = load_assignment(assignment)
    solution = loaded.folder / "solution.ipynb"
    if not solution.is_file():
        raise KitError(f"{loaded.folder}: no solution.ipynb to generate the template from (build the kit from the course's checkout)")
    checks = (loaded.folder / "checks.py").read_text(encoding="utf-8")
    if _names_hidden_checks(checks):
        raise KitError(f"{loaded.folder / 'checks.py'} loads checks_hidden: the visible checks must stand without the hidden ones")
    import grader
    import reference

    grader_root = Path(grader.__file__).resolve().parent
    reference_root = Path(reference.__file__).resolve().parent
    # Not the config's claims module: the claims state the exercises' answers, and only the course's own
    # `grade claims` / `check-assignment` prove them.
    grader_sources = [p.read_text(encoding="utf-8") for p in source_files(grader_root) if p.suffix == ".py"]
    needed = _reference_closure([*grader_sources, checks], reference_root)
    distribution, package = kit_names(loaded.name)
    members: dict[str, bytes] = {}
    for path in source_files(grader_root):
        members[f"grader/{path.relative_to(grader_root).as_posix()}"] = path.read_bytes()
    left_out: list[tuple[str, str]] = []
    for path in source_files(reference_root):
        relative = path.relative_to(reference_root).as_posix()
        if relative in needed:
            members[f"reference/{relative}"] = path.read_bytes()
        else:
            left_out.append((f"reference/{relative}", f"not imported by the grader or {loaded.name}'s visible checks"))
    members[f"{package}/__init__.py"] = (
        f'"""Student kit of {loaded.name}: its config, template and visible checks (``grade kit``)."""\n'.encode()
    )
    for name in CARRIED_FROM_ASSIGNMENT:
        members[f"{package}/{name}"] = (loaded.folder / name).read_bytes()
    template = make_template(nbformat.read(solution, as_version=4), kit_for(solution))
    template_name = template_path_for(solution).name
    members[f"{package}/{template_name}"] = nbformat.writes(template).encode() + b"\n"
    for path in source_files(loaded.folder):
        relative = path.relative_to(loaded.folder).as_posix()
        if relative not in CARRIED_FROM_ASSIGNMENT:
            left_out.append((f"{loaded.folder.name}/{relative}", LEFT_OUT_REASONS.get(relative, OTHER_REASON)))
    for absent in sorted(set(LEFT_OUT_REASONS) - {p.relative_to(loaded.folder).as_posix() for p in source_files(loaded.folder)}):
        left_out.append((f"{loaded.folder.name}/{absent}", f"{LEFT_OUT_REASONS[absent]}: not in this folder, never carried"))
    requires = _grader_requirements()
    output = Path(output)
    folder = output if output.is_dir() or not output.suffix else output.parent
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"{package}-{__version__}-py3-none-any.whl"
    kit = Kit(wheel, loaded.name, [], left_out, 0.0, folder / f"{package}-{__version__}.manifest.txt", requires)
    kit.carried = sorted(members)
    members[f"{package}/KIT_MANIFEST.txt"] = kit.manifest().encode()
    _write_wheel(wheel, members, distribution, package, loaded.name, requires)
    kit.manifest_path.write_text(kit.manifest(), encoding="utf-8")
    kit.seconds = time.perf_counter() - started
    return kit


def _names_hidden_checks(source: str) -> bool:
    """Whether ``source`` imports ``checks_hidden`` or names it in a string (a path it could load); a comment may."""
    strings = [node.value for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Constant) and isinstance(node.value, str)]
    return any("checks_hidden" in text for text in _imported_modules(source) + strings)


def _imported_modules(source: str) -> list[str]:
    """Every module an ``import`` or ``from ... import`` of ``source`` names (``from a import b``: ``a`` and ``a.b``)."""
    names: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def _reference_closure(sources: list[str], root: Path) -> set[str]:
    """The files of ``reference/`` (relative paths) that ``sources`` import, directly or through each other."""
    wanted = [name for source in sources for name in _imported_modules(source)]
    needed: set[str] = {"__init__.py"}
    while wanted:
        name = wanted.pop()
        parts = name.split(".")
        if parts[0] != "reference" or len(parts) < 2:
            continue
        relative = "/".join(parts[1:]) + ".py"
        if relative in needed or not (root / relative).is_file():
            continue
        needed.add(relative)
        wanted += _imported_modules((root / relative).read_text(encoding="utf-8"))
    return needed


def _grader_requirements() -> list[str]:
    """The grader's own requirements (not its extras): what ``pip install KIT`` must bring along."""
    try:
        declared = importlib.metadata.requires("hw-grader") or []
    except importlib.metadata.PackageNotFoundError:
        raise KitError("hw-grader is not installed (pip install -e .): its requirements are the kit's") from None
    return [r for r in declared if "extra ==" not in r]


def _write_wheel(path: Path, members: dict[str, bytes], distribution: str, package: str, assignment: str, requires: list[str]) -> None:
    """The wheel, per the binary distribution format: the files, then ``.dist-info`` with ``RECORD`` last."""
    info = f"{package}-{__version__}.dist-info"
    metadata = [
        "Metadata-Version: 2.1",
        f"Name: {distribution}",
        f"Version: {__version__}",
        f"Summary: Self-check kit of {assignment} (hw-grader {__version__}): the grader and the visible checks",
        "Requires-Python: >=3.11",
        *(f"Requires-Dist: {r}" for r in requires),
    ]
    members = dict(members)
    members[f"{info}/METADATA"] = ("\n".join(metadata) + "\n").encode()
    wheel = ["Wheel-Version: 1.0", f"Generator: hw-grader {__version__}", "Root-Is-Purelib: true", "Tag: py3-none-any"]
    members[f"{info}/WHEEL"] = ("\n".join(wheel) + "\n").encode()
    members[f"{info}/entry_points.txt"] = (
        f"[console_scripts]\ngrade = grader.run.cli:main\n\n[{ENTRY_POINT_GROUP}]\n{assignment} = {package}\n".encode()
    )
    members[f"{info}/top_level.txt"] = f"grader\n{package}\nreference\n".encode()
    record = io.StringIO()
    for name, data in members.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.write(f"{name},sha256={digest},{len(data)}\n")
    record.write(f"{info}/RECORD,,\n")
    members[f"{info}/RECORD"] = record.getvalue().encode()
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            entry = zipfile.ZipInfo(name, date_time=_DATE)
            entry.external_attr = 0o100644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(entry, data)
    tmp.replace(path)
