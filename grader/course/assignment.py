"""An assignment: its configuration (``config.toml``) and its checks (``checks.py``).

The grader core knows nothing about HW2. Everything specific -- questions,
points, sections, the names a question needs, which values to snapshot
after which cell, budgets, thresholds -- lives in ``assignments/<name>/``,
so a TA adds an assignment by adding a folder.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, ModuleType
from typing import Any

from grader.course.installed import installed_assignment
from grader.course.question_options import QUESTION_KEYS, declared_options, validate_options
from grader.course.self_check import kit_of
from grader.course.thresholds import check_calibration, parse_threshold
from grader.errors import ConfigError

ASSIGNMENTS_DIR = Path(__file__).resolve().parents[2] / "assignments"


def template_path_for(solution: Path) -> Path:
    """``assignments/hw2/solution.ipynb`` -> ``assignments/hw2.ipynb`` (the student template)."""
    return solution.parent.parent / f"{solution.parent.name}.ipynb"


@dataclass(frozen=True)
class Question:
    id: str
    title: str
    points: float
    section: str = ""
    kind: str = "auto"  # "auto" | "manual"
    defines: tuple[str, ...] = ()
    #: A hidden question's check lives in ``checks_hidden.py``, which the instructor keeps out
    #: of the student-facing repository; without that file the question is not run.
    hidden: bool = False
    #: Everything else the question's table holds, validated at load (``grader/course/question_options.py``); read-only.
    options: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


#: What an ``every_cell`` snapshot may look for in the student's namespace (a fixed vocabulary:
#: the kernel evaluates no expression of the config's to decide whether a cell is a candidate).
MATCH_TYPES = {"conv2d"}
MATCH_KEYS = {"type", "in_channels", "out_channels", "kernel_size", "names", "changed", "shapes", "roles", "max_elements"}


@dataclass(frozen=True)
class Snapshot:
    """Values to copy right after the cell that produced them.

    ``when = "after"`` (the default): after the last cell whose source matches
    ``after``, evaluate ``values``. ``when = "every_cell"``: after *every* cell,
    look in the namespace for what ``match`` describes and record a candidate
    each time it changed; the check chooses among the candidates by what the
    values are. There ``after`` is only a hint (each candidate says whether its
    cell's source matched it), never a condition.
    """

    key: str
    after: re.Pattern[str] | None
    values: dict[str, str]
    when: str = "after"
    match: dict[str, Any] = field(default_factory=dict)

    @property
    def every_cell(self) -> bool:
        return self.when == "every_cell"


def parse_snapshot(entry: dict[str, Any], where: str) -> Snapshot:
    """One ``[[snapshots]]`` table; a malformed one fails here, at load time."""
    key = entry.get("key")
    if not isinstance(key, str) or not key:
        raise ConfigError(f"{where}: a [[snapshots]] entry needs a key")
    when = entry.get("when", "after")
    after = re.compile(entry["after"], re.M) if "after" in entry else None
    values = {str(k): str(v) for k, v in entry.get("values", {}).items()}
    if when == "after":
        if after is None or not values:
            raise ConfigError(f'{where}: snapshot {key!r}: `when = "after"` needs `after` (a regex) and `values`')
        return Snapshot(key, after, values)
    if when != "every_cell":
        raise ConfigError(f'{where}: snapshot {key!r}: `when` is "after" or "every_cell", not {when!r}')
    match: dict[str, Any] = dict(entry.get("match", {}))
    unknown = set(match) - MATCH_KEYS
    if unknown:
        raise ConfigError(f"{where}: snapshot {key!r}: unknown match keys {sorted(unknown)} (known: {sorted(MATCH_KEYS)})")
    if ("type" in match) == ("names" in match):
        raise ConfigError(f"{where}: snapshot {key!r}: `match` needs exactly one of `type` or `names`")
    if "type" in match and match["type"] not in MATCH_TYPES:
        raise ConfigError(f"{where}: snapshot {key!r}: match type {match['type']!r} is not one of {sorted(MATCH_TYPES)}")
    if "names" in match:
        names = match["names"]
        if not names or not all(isinstance(n, str) and n.isidentifier() for n in names):
            raise ConfigError(f"{where}: snapshot {key!r}: `names` must list identifiers")
        if not set(match.get("changed", names)) <= set(names) or not set(match.get("shapes", {})) <= set(names):
            raise ConfigError(f"{where}: snapshot {key!r}: `changed` and `shapes` may name only the `names`")
        roles = match.get("roles", {})
        if (
            not isinstance(roles, dict)
            or not set(roles) <= set(names)
            or not all(isinstance(v, list) and v and all(isinstance(d, int) and d > 0 for d in v) for v in roles.values())
        ):
            raise ConfigError(f"{where}: snapshot {key!r}: `roles` maps some of the `names` to a shape (a list of sizes)")
    if values:
        raise ConfigError(f"{where}: snapshot {key!r}: an every_cell snapshot records what `match` finds; it takes no `values`")
    return Snapshot(key, after, {}, when, match)


@dataclass
class Assignment:
    name: str
    title: str
    folder: Path
    questions: list[Question]
    snapshots: list[Snapshot]
    budgets: dict[str, dict[str, Any]]
    config_text: str
    #: The module whose ``CLAIMS`` ``grade check-assignment`` proves (``claims = true``: ``reference.claims``;
    #: ``claims = "reference.other_claims"``: that module); None: the assignment has none.
    claims_module: str | None = None
    #: Section titles by number, for reports (``[sections]`` in the config).
    sections: dict[str, str] = field(default_factory=dict)
    #: Per graded name, the signature the assignment asks for and what other editions write
    #: (``[signatures]``): said to a student whose definition takes other arguments.
    signatures: dict[str, dict[str, str]] = field(default_factory=dict)
    #: Limits on what a submission may bring (``[limits]``): ``max_notebook_mb`` (see ``grader.source.load``).
    limits: dict[str, float] = field(default_factory=dict)
    #: Where the course's student kit is (``[self_check] kit``): the template's self-check cell installs it.
    self_check_kit: str | None = None
    _modules: dict[str, ModuleType] = field(default_factory=dict, repr=False)
    #: Run the visible checks only (a student's self-check), even where ``checks_hidden.py`` is present; set after loading.
    visible_only: bool = False

    @property
    def checks_path(self) -> Path:
        return self.folder / "checks.py"

    @property
    def hidden_checks_path(self) -> Path:
        return self.folder / "checks_hidden.py"

    def _module(self, path: Path) -> ModuleType:
        """Import a checks file on first use: reusing cached results never pays for torch's import."""
        if path.name not in self._modules:
            self._modules[path.name] = _load_module(path, f"assignment_{self.folder.name}_{path.stem}")
        return self._modules[path.name]

    def check_for(self, question: Question) -> Callable | None:
        if not self.runnable(question):
            return None
        path = self.hidden_checks_path if question.hidden else self.checks_path
        return getattr(self._module(path), f"check_{question.id}", None)

    def runnable(self, question: Question) -> bool:
        """Hidden questions run only where their checks are present (the TA's copy), and not in a self-check."""
        return not question.hidden or (not self.visible_only and self.hidden_checks_path.is_file())

    @property
    def defined_names(self) -> list[str]:
        return sorted({name for q in self.questions for name in q.defines})

    @property
    def fingerprint(self) -> str:
        """A hash of the config and checks: part of what makes a cached result reusable."""
        digest = hashlib.sha256(self.config_text.encode())
        for name in ("checks.py", "checks_hidden.py"):
            if (self.folder / name).is_file():
                digest.update((self.folder / name).read_bytes())
        return digest.hexdigest()


#: Keys of an assignment's ``[limits]`` table.
LIMIT_KEYS = ("max_notebook_mb",)


def load_assignment(name_or_folder: str | Path) -> Assignment:
    """Load an assignment folder's path, ``assignments/<name>/`` beside the source, or else the installed kit
    that declares ``<name>`` (:mod:`grader.course.installed`; a non-editable install has no ``assignments/``)."""
    folder = Path(name_or_folder)
    if not folder.is_dir():
        folder = ASSIGNMENTS_DIR / str(name_or_folder)
        if not (folder / "config.toml").is_file():
            folder = installed_assignment(str(name_or_folder)) or folder
    config_path = folder / "config.toml"
    if not config_path.is_file():
        raise ConfigError(f"no assignment {name_or_folder!r} (looked for {config_path})")
    text = config_path.read_text(encoding="utf-8")
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{config_path}: not valid TOML: {exc}") from None
    questions = [_question(q, position, config_path) for position, q in enumerate(config.get("questions", []))]
    ids = [q.id for q in questions]
    if len(ids) != len(set(ids)):
        raise ConfigError(f"{config_path}: duplicate question ids")
    snapshots = [parse_snapshot(s, str(config_path)) for s in config.get("snapshots", [])]
    if len({s.key for s in snapshots}) != len(snapshots):
        raise ConfigError(f"{config_path}: duplicate snapshot keys")
    declared = declared_options([folder / "checks.py", folder / "checks_hidden.py"])
    for position, q in enumerate(questions):
        validate_options(
            q.options,
            question=q.id,
            where=str(config_path),
            declared=declared,
            earlier=ids[:position],
            snapshots={s.key for s in snapshots},
        )
    for q in questions:  # a malformed threshold or calibration fails here, not after hours of a full run
        try:
            if "full_threshold" in q.options:
                parse_threshold(q.options["full_threshold"])
            if "full_calibration" in q.options or "full_calibration_history" in q.options:
                recorded = (q.options.get(key) for key in ("full_threshold", "full_calibration", "full_calibration_history"))
                check_calibration(*recorded)
        except ValueError as exc:
            raise ConfigError(f"{config_path}: question {q.id!r}: {exc}") from None
    assignment = Assignment(
        config.get("name", folder.name),
        config.get("title", folder.name),
        folder,
        questions,
        snapshots,
        config.get("budgets", {}),
        text,
        _claims_module(config.get("claims", False), config_path),
        {str(k): str(v) for k, v in config.get("sections", {}).items()},
    )
    for name, entry in config.get("signatures", {}).items():
        if not isinstance(entry, dict) or set(entry) - {"asks", "editions", "sequential", "sequential_of"}:
            known = "`asks`, `editions`, `sequential` and `sequential_of` (strings)"
            raise ConfigError(f"{config_path}: signatures.{name}: only {known} are known")
        assignment.signatures[str(name)] = {str(k): str(v) for k, v in entry.items()}
    assignment.self_check_kit = kit_of(config, str(config_path))
    for key, value in config.get("limits", {}).items():
        if key not in LIMIT_KEYS or isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
            raise ConfigError(f"{config_path}: limits.{key}: known limits are {', '.join(LIMIT_KEYS)}, each a positive number")
        assignment.limits[key] = float(value)
    # Each auto question's check in the file it is looked up in: checks_hidden.py for a hidden one, else checks.py.
    for path, hidden in ((assignment.checks_path, False), (assignment.hidden_checks_path, True)):
        defined = _check_functions(path)
        missing = [
            q.id for q in questions if q.kind == "auto" and q.hidden == hidden and assignment.runnable(q) and f"check_{q.id}" not in defined
        ]
        if missing:
            raise ConfigError(f"{path} has no check_<id> for: {', '.join(missing)}")
    return assignment


def _question(table: Any, position: int, config_path: Path) -> Question:
    """One ``[[questions]]`` table; a missing ``id`` or ``points``, or points that are not a number, fail here."""
    try:
        return Question(
            id=str(table["id"]),
            title=table.get("title", table["id"]),
            points=float(table["points"]),
            section=table.get("section", ""),
            kind=table.get("kind", "auto"),
            defines=tuple(table.get("defines", ())),
            hidden=bool(table.get("hidden", False)),
            options=MappingProxyType({k: v for k, v in table.items() if k not in QUESTION_KEYS}),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(
            f"{config_path}: question {position + 1}: needs an `id` and numeric `points` ({type(exc).__name__}: {exc})"
        ) from None


def _claims_module(value: Any, config_path: Path) -> str | None:
    """``claims = true`` (the course's ``reference.claims``), ``claims = "reference.x"``, or none."""
    if value is True:
        return "reference.claims"
    if value is False:
        return None
    if isinstance(value, str) and all(part.isidentifier() for part in value.split(".")):
        return value
    raise ConfigError(f'{config_path}: claims is true, false or a module name ("reference.my_claims"), not {value!r}')


def _check_functions(path: Path) -> dict[str, int]:
    """``check_*`` functions a checks file defines, found by parsing (nothing is imported)."""
    if not path.is_file():
        return {}
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return {node.name: node.lineno for node in tree.body if isinstance(node, ast.FunctionDef) and node.name.startswith("check_")}


def _load_module(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py path (checks.py, checks_hidden.py) always has a source loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
