"""The options a question may carry in ``config.toml``: a fixed vocabulary, typed, checked when the assignment loads.

Options the grader itself reads are listed in :data:`GRADER_OPTIONS`. Anything else a question's check
reads must be declared by the assignment's ``checks.py`` in a module-level literal, read here without
importing the module (a cached rerun never pays for torch)::

    OPTIONS = {"arch": "list", "growth_rate": "int"}

An unknown key or a value of the wrong type is a :class:`~grader.errors.ConfigError` naming the file, the
question and the key -- at load time, not as "the check itself failed" hours into a batch.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader.errors import ConfigError

#: The value types an option may have, by the name a ``checks.py`` declares it with.
TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list": (list,),
    "table": (dict,),
    "str|list": (str, list),
}


@dataclass(frozen=True)
class OptionSpec:
    type: str
    #: What the option does, for the error that names an unknown key and for the README.
    help: str


#: Options the grader core reads (its training check, the report, the answer finder, the policy flags).
GRADER_OPTIONS: dict[str, OptionSpec] = {
    "requires": OptionSpec("str|list", "earlier question(s) whose verdict this question's check reads (`ctx.verdict`)"),
    "flag_calls": OptionSpec("list", "library calls shown to the TA when the question's definitions use them"),
    "answer_after": OptionSpec("str", "regex of the heading after which a manual question's prose answer is found"),
    "notebook_cell_after": OptionSpec("str", "snapshot whose cell the report names as the notebook's own work"),
    "full_snapshot": OptionSpec("str", "snapshot holding the notebook's own trained model (full budget)"),
    "full_input_size": OptionSpec("int", "input size the full budget evaluates the notebook's trained model at"),
    "full_threshold": OptionSpec("table", "validation accuracy needed under the full budget, by training-set size"),
    "full_calibration": OptionSpec("table", "what runs of the solution reached, and on which images (written by `grade calibrate`)"),
    "full_calibration_history": OptionSpec("table", "records superseded by runs scored on other images (kept, never used)"),
    "input_size": OptionSpec("int", "input size of the quick budget's training check"),
    "optimizer": OptionSpec("str", "the quick training check's optimizer: adam or sgd"),
    "lr": OptionSpec("float", "the quick training check's learning rate"),
    "steps": OptionSpec("int", "the quick training check's optimizer steps"),
    "loss_mode": OptionSpec("str", "the quick training check's loss: logits or probabilities"),
    "validation_images": OptionSpec("int", "held-out images the quick training check scores (default 500)"),
}

#: Keys of a ``[[questions]]`` table that are the question itself, not options.
QUESTION_KEYS = ("id", "title", "points", "section", "kind", "defines", "hidden")


def declared_options(checks_files: list[Path]) -> dict[str, OptionSpec]:
    """The ``OPTIONS`` literal of each checks file (parsed, never imported)."""
    declared: dict[str, OptionSpec] = {}
    for path in checks_files:
        if not path.is_file():
            continue
        for node in ast.parse(path.read_text(encoding="utf-8"), filename=str(path)).body:
            if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "OPTIONS" for t in node.targets):
                try:
                    table = ast.literal_eval(node.value)
                except ValueError:
                    raise ConfigError(f"{path}: OPTIONS must be a literal dict of option name -> type name") from None
                if not isinstance(table, dict):
                    raise ConfigError(f"{path}: OPTIONS must be a dict of option name -> type name")
                for key, kind in table.items():
                    if kind not in TYPES:
                        raise ConfigError(f"{path}: OPTIONS[{key!r}] is {kind!r}; a type is one of {', '.join(TYPES)}")
                    if key in GRADER_OPTIONS or key in QUESTION_KEYS:
                        raise ConfigError(f"{path}: OPTIONS declares {key!r}, which the grader already defines")
                    declared[str(key)] = OptionSpec(kind, f"declared in {path.name}")
    return declared


def validate_options(
    options: Mapping[str, Any],
    *,
    question: str,
    where: str,
    declared: Mapping[str, OptionSpec],
    earlier: list[str],
    snapshots: set[str],
) -> None:
    """Raise :class:`ConfigError` for an unknown key, a wrong type, or a reference to nothing.

    ``earlier``: ids of the questions listed before this one -- ``requires`` may name only those, so no
    verdict a check reads depends on an order nobody wrote down. ``snapshots``: the config's snapshot keys.
    """
    for key, value in options.items():
        spec = GRADER_OPTIONS.get(key) or declared.get(key)
        if spec is None:
            known = ", ".join(sorted({*GRADER_OPTIONS, *declared}))
            raise ConfigError(
                f"{where}: question {question!r}: unknown option {key!r} (known: {known}; an assignment's "
                "own options are declared in its checks.py as OPTIONS = {name: type})"
            )
        kinds = TYPES[spec.type]
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            raise ConfigError(f"{where}: question {question!r}: option {key!r} must be of type {spec.type}, not {value!r}")
    for needed in requires_of(options):
        if needed not in earlier:
            raise ConfigError(f"{where}: question {question!r}: requires {needed!r}, which is not a question listed before it")
    for key in ("full_snapshot", "notebook_cell_after"):
        if key in options and options[key] not in snapshots:
            raise ConfigError(f"{where}: question {question!r}: {key} {options[key]!r} names no [[snapshots]] key")


def requires_of(options: Mapping[str, Any]) -> list[str]:
    """The ``requires`` option as a list of question ids."""
    value = options.get("requires", [])
    return [value] if isinstance(value, str) else [str(v) for v in value]
