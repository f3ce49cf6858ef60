"""A question's evidence said in a TA's words: one or two sentences, and the raw numbers kept aside.

Why: the details a check returns are written for the result file and for reproducing a verdict
(``seed 427712884``, ``parameters 368``, ``compared_modes ["train", "eval"]``); listed as they are,
they read as the grader's internals. The report shows the sentence made here where they were
("Same outputs as the book's `nin_block(8, 3, 2, 1)` (368 parameters) on random weights and inputs,
in training and evaluation mode.") and keeps the numbers in a collapsed part; Gradescope's text
(:mod:`grader.integrations.gradescope_results`) shows the same sentence. The result JSON is never changed: this
only reads ``details``.

Known evidence, by who writes it:

* :func:`grader.checking.equivalence.same_function` -- ``seed``, ``parameters``, ``compared_modes``, at the top
  (an architecture question, with ``book_parameters`` from :mod:`grader.checking.architecture_checks`) or one
  such mapping per configuration under its label (``"nin_block(8, 3, 2, 1)": {...}``). Said only for
  a pass: a failing question's message says what differed.
* :func:`grader.checking.equivalence.trains_like_reference` (quick budget) -- ``procedure``, ``student_loss``,
  ``reference_loss``, ``required_fraction``, ``validation_accuracy``, ``reference_validation_accuracy``,
  ``validation_images``; facts, said for any status.
* :func:`grader.checking.training_checks.check_trained_model` (full budget) -- ``validation_accuracy``,
  ``images``, ``split``, ``train_images``, ``trained_in_cell``, ``threshold``, ``threshold_calibrated_for``,
  ``calibration``; facts, said for any status.
* :func:`grader.checking.assertions.expect_formula` -- ``formula``, ``method``: said for a pass.
* snapshot checks (``snapshot_cell``, ``snapshot_reason``, ``candidate_cells``): which cell's values
  were graded, unless the message says so already.
* any check -- ``seed``, to reproduce a verdict: kept with the numbers, never said.

Any other key is left to the caller to show as before; a known key whose value is not of the
expected type is left there too, so nothing a result holds is ever hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

#: What a mode of :func:`grader.checking.equivalence.same_function` is called in a sentence.
MODE_WORDS = {"train": "training", "eval": "evaluation"}
#: Optimizer names as a reader writes them.
OPTIMIZER_WORDS = {"adam": "Adam", "sgd": "SGD", "adamw": "AdamW", "rmsprop": "RMSprop"}
_EQUIVALENCE = {"seed", "parameters", "compared_modes"}
_QUICK_TRAINING = ("student_loss", "reference_loss", "validation_accuracy", "reference_validation_accuracy")
_FULL_TRAINING = ("validation_accuracy", "train_images")
_CALL = re.compile(r"^[A-Za-z_][\w.]*\(.*\)$", re.S)


@dataclass
class Evidence:
    """A question's details split three ways: the sentence, the numbers it was made from, everything else."""

    sentence: str = ""
    numbers: dict[str, Any] = field(default_factory=dict)  # known keys: shown collapsed, under the sentence
    other: dict[str, Any] = field(default_factory=dict)  # unknown keys: shown as before


def evidence_in_words(status: str, details: dict[str, Any], shown: dict[str, Any] | None = None, message: str = "") -> Evidence:
    """The sentence for ``details`` of a question with ``status``, and which keys it stands for.

    ``shown``: the keys the caller lists itself (the report's ``SHOWN_ELSEWHERE`` left out), default
    all of ``details``; only these are split into ``numbers`` and ``other``. ``message``: the question's
    message, so a sentence that would repeat it is left out.
    """
    shown = dict(details if shown is None else shown)
    sentences: list[str] = []
    known: set[str] = set()
    for part in (_equivalence, _quick_training, _full_training, _formula, _snapshot, _reproduce):
        said, used = part(status, details, message)
        if said:
            sentences.append(said)
        known |= used
    numbers = {k: v for k, v in shown.items() if k in known}
    other = {k: v for k, v in shown.items() if k not in known}
    return Evidence(" ".join(_capital(s) for s in sentences), numbers, other)


# --------------------------------------------------------------------------- parts: (sentence or "", keys it stands for)


def _equivalence(status: str, d: dict[str, Any], message: str) -> tuple[str, set[str]]:
    """Same outputs as the book's model: the top-level comparison and each labelled one."""
    used: set[str] = set()
    items: list[tuple[str, str | None, tuple[str, ...]]] = []  # (what, its parameters in words, modes compared)
    smaller = ""
    if _is_equivalence(d):
        used |= _EQUIVALENCE & d.keys()
        count, book = _count(d.get("parameters")), _count(d.get("book_parameters"))
        used |= {"book_parameters"} & d.keys()
        if count is not None and book is not None and count != book:
            smaller = f"compared at a smaller size ({count} parameters), where the book's full model has {book}"
        items.append(("model", count, _modes(d)))
    for label, entry in d.items():
        if isinstance(entry, dict) and _is_equivalence(entry) and set(entry) <= _EQUIVALENCE:
            used.add(label)
            name = f"`{label}`" if _CALL.match(label) and "`" not in label else f"model “{label}”"
            items.append((name, _count(entry.get("parameters")), _modes(entry)))
    if not items or status != "pass":
        return "", used
    alike = len({modes for _, _, modes in items}) == 1
    named = [name + (f" ({count} parameters)" if count is not None and len(items) > 1 else "") for name, count, _ in items]
    if alike:
        where = f", {_mode_phrase(items[0][2])}" if items[0][2] else ""
        said = f"same outputs as the book's {_join(named)} on random weights and inputs{where}"
    else:
        each = [f"{n}, {_mode_phrase(modes)}" if modes else n for n, (_, _, modes) in zip(named, items, strict=True)]
        said = f"same outputs as the book's {'; '.join(each)}; each on random weights and inputs"
    if smaller:
        said += f"; {smaller}"
    elif len(items) == 1 and items[0][1] is not None:
        said += f"; {items[0][1]} parameters"
    return said + ".", used


def _reproduce(status: str, d: dict[str, Any], message: str) -> tuple[str, set[str]]:
    """The seed a verdict can be reproduced from: kept with the numbers, never in the sentence."""
    return "", {"seed"} if _count(d.get("seed")) is not None else set()


def _quick_training(status: str, d: dict[str, Any], message: str) -> tuple[str, set[str]]:
    """The quick budget's training from the grader's weights by its fixed procedure."""
    if not all(k in d for k in _QUICK_TRAINING):
        return "", set()
    mine, book = _pair(d["student_loss"]), _pair(d["reference_loss"])
    accuracy, book_accuracy = _fraction(d["validation_accuracy"]), _fraction(d["reference_validation_accuracy"])
    if mine is None or book is None or accuracy is None or book_accuracy is None:
        return "", set()
    used = set(_QUICK_TRAINING)
    procedure = ""
    if isinstance(d.get("procedure"), dict):
        used.add("procedure")
        procedure = _procedure(d["procedure"])
    needed = ""
    if _fraction(d.get("required_fraction")) is not None:
        used.add("required_fraction")
        needed = f" (at least {d['required_fraction']:.0%} of the book's drop is needed)"
    images = ""
    if _count(d.get("validation_images")) is not None:
        used.add("validation_images")
        images = f" on {_count(d['validation_images'])} validation images it never saw"
    return (
        f"trained by the grader from its own starting weights by a fixed procedure{procedure}: "
        f"its loss fell from {mine[0]:.3f} to {mine[1]:.3f}, the book's model's from {book[0]:.3f} to {book[1]:.3f}{needed}. "
        f"It reaches {accuracy:.1%} accuracy{images}; the book's model, trained the same way, {book_accuracy:.1%}.",
        used,
    )


def _full_training(status: str, d: dict[str, Any], message: str) -> tuple[str, set[str]]:
    """The full budget: the model the notebook trained itself, scored by the grader."""
    if not all(k in d for k in _FULL_TRAINING) or "student_loss" in d:
        return "", set()
    accuracy, trained_on = _fraction(d["validation_accuracy"]), _count(d["train_images"])
    if accuracy is None or trained_on is None:
        return "", set()
    used = set(_FULL_TRAINING) | {"calibration"} & d.keys()
    where = f"cell {d['trained_in_cell']}, " if isinstance(d.get("trained_in_cell"), int) else ""
    used |= {"trained_in_cell"} & d.keys()
    scored = ""
    if _count(d.get("images")) is not None:
        used |= {"images", "split"} & d.keys()
        split = " held-out" if d.get("split") == "held-out" else ""
        scored = f" on {_count(d['images'])}{split} validation images it never saw"
    said = f"the model the notebook trained ({where}on {trained_on} training images) reaches {accuracy:.1%} accuracy{scored}."
    threshold = _fraction(d.get("threshold"))
    if threshold is not None:
        used.add("threshold")
        calibrated = _count(d.get("threshold_calibrated_for"))
        used |= {"threshold_calibrated_for"} & d.keys()
        said += f" The threshold is {threshold:.0%}" + (f", set for {calibrated} training images." if calibrated else ".")
    return said, used


def _formula(status: str, d: dict[str, Any], message: str) -> tuple[str, set[str]]:
    """A formula judged by :func:`reference.formulas.equivalent`."""
    if not isinstance(d.get("method"), str):
        return "", set()
    used = {"method"} | ({"formula"} if isinstance(d.get("formula"), str) else set())
    if status != "pass" or "formula" not in used:
        return "", used
    formula = d["formula"]
    shown = f"`{formula}`" if "`" not in formula else f"“{formula}”"
    how = {
        "symbolic": "simplifies to the book's",
        "exhaustive": "equals the book's on every integer case the grader tried",
    }.get(d["method"], f"equals the book's ({d['method']})")
    return f"your formula, read as {shown}, {how}.", used


def _snapshot(status: str, d: dict[str, Any], message: str) -> tuple[str, set[str]]:
    """Which cell's values a snapshot check graded, and which other cells could have been."""
    cell = d.get("snapshot_cell")
    if not isinstance(cell, int) or not isinstance(d.get("snapshot_reason"), str):
        return "", set()
    used = {"snapshot_reason"} | ({"candidate_cells"} & d.keys())
    if f"after cell {cell}" in message:
        return "", used
    others = [c for c in d.get("candidate_cells") or [] if isinstance(c, int) and c != cell]
    also = f"; {'cell' if len(others) == 1 else 'cells'} {_join([str(c) for c in others])} could have been graded too" if others else ""
    return f"graded the values the notebook had after cell {cell} ({d['snapshot_reason']}){also}.", used


# --------------------------------------------------------------------------- words


def _is_equivalence(d: dict[str, Any]) -> bool:
    return isinstance(d.get("compared_modes"), list) and all(isinstance(m, str) for m in d["compared_modes"])


def _modes(d: dict[str, Any]) -> tuple[str, ...]:
    return tuple(d.get("compared_modes") or ())


def _mode_phrase(modes: tuple[str, ...]) -> str:
    if not modes:
        return ""
    words = [MODE_WORDS.get(m, m) for m in modes]
    return f"in {_join(words)} mode"


def _count(value: Any) -> str | None:
    """A whole number with thousands separated, or None when it is not one."""
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else None


def _fraction(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _pair(value: Any) -> tuple[float, float] | None:
    if isinstance(value, list) and len(value) == 2 and all(_fraction(v) is not None for v in value):
        return float(value[0]), float(value[1])
    return None


def _procedure(p: dict[str, Any]) -> str:
    parts = []
    if isinstance(p.get("optimizer"), str):
        parts.append(OPTIMIZER_WORDS.get(p["optimizer"].lower(), p["optimizer"]))
    if _fraction(p.get("lr")) is not None:
        parts.append(f"learning rate {p['lr']:g}")
    if _count(p.get("steps")) is not None:
        parts.append(f"{_count(p['steps'])} steps")
    return f" ({', '.join(parts)})" if parts else ""


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _capital(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]
