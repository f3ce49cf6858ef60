"""Full-budget thresholds from a graded run of the solution: ``grade calibrate NAME RESULT.json``.

A ``full`` threshold is only as good as the run it came from, so the
numbers are derived, not typed: grade the solution as written
(``grade assignments/hw2/solution.ipynb --budget full``, hours on a CPU,
minutes on a GPU), then let this module read the accuracies that run
measured and propose, per training question, an entry for the training-set
size it ran on, a margin below what the solution reached. Nothing is
written: the instructor pastes the lines into ``config.toml`` with a comment
saying where they came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from grader.assignment import Assignment
from grader.results import GradeResult
from grader.thresholds import parse_threshold

#: Fashion-MNIST has ten classes; a model this close to 10% has not learned.
CHANCE = 0.1


@dataclass(frozen=True)
class Proposal:
    question: str
    #: None where the result gives nothing to calibrate from (the question errored...) -- ``reason`` says why.
    accuracy: float | None
    validation_images: int = 0
    train_images: int = 0
    #: None where no bar can be set (at chance, or nothing measured).
    threshold: float | None = None
    reason: str = ""
    #: The question's ``full_threshold`` with this proposal merged in, as a TOML line (empty without a proposal).
    toml: str = ""


def propose(result: GradeResult, assignment: Assignment, margin: float = 0.1) -> list[Proposal]:
    """One proposal per question with a ``full_threshold``, from a ``full`` result of the solution."""
    if result.budget != "full":
        raise ValueError(f"{result.submission} was graded with the {result.budget} budget; calibration needs a full run")
    if result.assignment != assignment.name:
        raise ValueError(f"{result.submission} is a result of {result.assignment!r}, not {assignment.name!r}")
    by_id = {q.id: q for q in result.questions}
    proposals = []
    for question in assignment.questions:
        if "full_threshold" not in question.options:
            continue
        graded = by_id.get(question.id)
        proposals.append(_proposal(question.id, question.options["full_threshold"], graded, margin))
    return proposals


def _proposal(qid: str, setting: Any, graded, margin: float) -> Proposal:
    details = graded.details if graded is not None else {}
    accuracy, trained_on = details.get("validation_accuracy"), details.get("train_images")
    if not isinstance(accuracy, (int, float)):
        why = "not in the result" if graded is None else f"{graded.status}: {graded.message}"
        return Proposal(qid, None, reason=f"the run measured no accuracy ({why})")
    if not isinstance(trained_on, int):  # a result from before the check recorded it
        return Proposal(qid, None, reason=f"{accuracy:.1%}, but the result does not say how many images the model "
                                          "trained on; grade the solution again with this version")  # fmt: skip
    images = int(details.get("images", 0))
    measured = f"{accuracy:.1%} on {images:,} validation images after training on {trained_on:,}"
    if accuracy < CHANCE + 2 * margin:
        return Proposal(qid, accuracy, images, trained_on, None,
                        f"{measured}: within two margins of chance ({CHANCE:.0%}), so no bar can tell a correct "
                        f"model from a broken one; leave this size to a TA")  # fmt: skip
    threshold = math.floor((accuracy - margin) * 100) / 100
    table = parse_threshold(setting)
    single = table.pop(None, None)
    table[trained_on] = threshold
    entries = ", ".join(f"{size} = {table[size]:.2f}" for size in sorted(table, reverse=True))
    replaces = "" if single is None else f"; this replaces the one threshold {single:.2f} for any training set"
    return Proposal(qid, accuracy, images, trained_on, threshold, f"{measured}, minus a margin of {margin:.2f}{replaces}",
                    f"full_threshold = {{ {entries} }}")  # fmt: skip


def render(proposals: list[Proposal]) -> str:
    lines = []
    for p in proposals:
        lines.append(f"{p.question}: {p.reason}")
        if p.toml:
            lines.append(f"    {p.toml}")
    return "\n".join(lines)
