"""Full-budget thresholds from graded runs of the solution: ``grade calibrate NAME RESULT...``.

A ``full`` threshold is only as good as the runs it came from, so the
numbers are derived, not typed: grade the solution as written
(``grade assignments/hw2/solution.ipynb --budget full``, hours on a CPU,
minutes on a GPU) as many times as there is time for -- other seeds, other
machines -- and hand every result to this module. For every question whose
full run measures an accuracy (a training question, with a threshold or not
yet) it reads the accuracy each run measured, groups the runs by the
training-set size they trained on and by the images they were scored on
(count and split), merges them into the runs the config already records
for the same images (``full_calibration``, see grader.course.thresholds) and
proposes a threshold per size; it says for every question of the
assignment what it did (proposed, chance-level so a TA decides, or not
measured by these results).

Which images. The same model scores differently on other images, so runs
scored on different images are never one population: a run joins a record
only of the same image count and split. The grader scores on the held-out
half of the test split (``HELD_OUT``) since 2026-12-01; a run scored on the
test split from its first image (``TEST``, graders before that) proposes
nothing, and a recorded record of other images that new runs replace is
kept in ``full_calibration_history`` -- out of the bar and of the range a
student is shown. A result says which images it was scored on
(``images`` and ``split`` in the question's details); one from before it
said its split is dated: graded before :data:`HELD_OUT_SINCE`, on ``TEST``.

The threshold model. One run of the same code is not the next: twelve GPU
runs of the HW2 solution's VGG on the same 7,000 images reached anywhere
from 66.2% to 78.9%. So the runs of a size are taken as draws from a normal
distribution (mean and sample sd of the runs), and the threshold is::

    threshold = floor2( min(mean - z * sd,  min - margin) ),   z = inv_cdf(1 - 0.001) ~ 3.09

-- under the fit a correct notebook falls below it with probability under
0.1%, and it is never above the worst run actually seen minus ``margin``
(the guard a handful of runs needs: their sd can be small by luck, and
one run has none). ``floor2`` rounds down to two decimals. With one run it
is ``min - margin``, the rule of a single run. ``margin`` defaults to 0.10:
a bar a good deal lower than needed costs little -- a broken model sits
near chance, 10% -- while a bar too high fails correct notebooks; and the
VGG runs above show that one run minus 0.10 (76.8% - 10 = 66.8%) can still
sit above a correct run (66.2%), so a smaller margin is not justified
until many runs are recorded. A size whose runs average within two
margins of chance (10% for Fashion-MNIST's ten classes) gets no threshold:
no bar tells a correct model from a broken one there, and a TA decides.

Without ``--write`` nothing is written: the lines to paste are printed.
``--write`` merges the new runs into ``config.toml`` in place (tomlkit keeps
every other line and comment); give each result once, since a run merged
twice would count twice.
"""

from __future__ import annotations

import math
import statistics
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from statistics import NormalDist
from typing import Any

from grader.course.assignment import Assignment
from grader.course.measured_runs import Run, run_of
from grader.course.thresholds import (
    SCORED_ON,
    Calibration,
    calibration_toml,
    check_calibration,
    history_toml,
    parse_calibration,
    parse_history,
    parse_threshold,
)
from grader.results import GradeResult, write_atomic

#: Fashion-MNIST has ten classes; a model this close to 10% has not learned.
CHANCE = 0.1
#: The probability, under the normal fit, that a correct notebook falls below its threshold.
FAIL_RATE = 0.001
#: How many sds below the mean that is (about 3.09).
Z = NormalDist().inv_cdf(1 - FAIL_RATE)


@dataclass(frozen=True)
class Group:
    """The runs of one training-set size scored on the same images, merged into those the config recorded for them."""

    train_images: int
    calibration: Calibration
    #: How many of ``calibration.n`` runs came from the results given now.
    new_runs: int
    #: None where no bar is set (at chance, spread too widely, scored on other images) -- ``reason`` says why.
    threshold: float | None
    reason: str
    #: What became of the group, in a few words (for the summary of every question).
    outcome: str
    #: The record of this size these runs replace: scored on other images, it goes to the history.
    superseded: Calibration | None = None


@dataclass(frozen=True)
class Proposal:
    """What the results say about one question of the assignment."""

    question: str
    groups: tuple[Group, ...] = ()
    #: One line per result that measured nothing for this question, saying why.
    unmeasured: tuple[str, ...] = ()
    #: ``full_threshold`` and ``full_calibration`` with the groups that set a bar merged in (empty without one).
    full_threshold: dict[int, float] | None = None
    full_calibration: dict[int, Calibration] | None = None
    #: ``full_calibration_history`` with the superseded records added (None where it stays as it was).
    full_calibration_history: dict[int, tuple[Calibration, ...]] | None = None
    #: The one threshold for any training set this proposal replaces, if the config had one.
    replaces: float | None = None
    #: False for a question whose full run measures no accuracy: nothing to calibrate.
    trains: bool = True

    @property
    def toml(self) -> str:
        """The lines to paste (empty when no size got a bar)."""
        if self.full_threshold is None or self.full_calibration is None:
            return ""
        lines = [threshold_line(self.full_threshold), f"full_calibration = {calibration_toml(self.full_calibration)}"]
        if self.full_calibration_history:
            lines.append(f"full_calibration_history = {history_toml(self.full_calibration_history)}")
        return "\n".join(lines)

    @property
    def outcome(self) -> str:
        """What the calibration did for this question, in a line."""
        if not self.groups:
            failed = f" ({len(self.unmeasured)} of the results measured nothing: see above)" if self.unmeasured else ""
            return f"not measured by these results{failed}"
        return "; ".join(g.outcome for g in self.groups)


def threshold_line(table: dict[int, float]) -> str:
    entries = ", ".join(f"{size} = {table[size]:.2f}" for size in sorted(table, reverse=True))
    return f"full_threshold = {{ {entries} }}"


def threshold_from(calibration: Calibration) -> float | None:
    """The threshold the model gives for a recorded calibration; None where no bar can be set."""
    return _decide(calibration)[0]


def _decide(c: Calibration) -> tuple[float | None, str]:
    if c.mean < CHANCE + 2 * c.margin:
        return None, (
            f"within two margins of chance ({CHANCE:.0%}), so no bar can tell a correct model from a broken one; leave this size to a TA"
        )
    fitted, seen = c.mean - Z * c.sd, c.min - c.margin
    threshold = _floor2(min(fitted, seen))
    if threshold <= CHANCE:
        return None, f"the runs spread so widely that the bar ({threshold:.2f}) would be at chance; leave this size to a TA"
    if c.n == 1:
        return threshold, f"minus a margin of {c.margin:.2f}"
    return threshold, (f"threshold min(mean - {Z:.2f} sd = {fitted:.3f}, min - margin {c.margin:.2f} = {seen:.3f}), rounded down")


def _floor2(value: float) -> float:
    """Down to two decimals; the inner round keeps 0.77 - 0.00000000001 (float noise) at 0.77."""
    return math.floor(round(value * 100, 6)) / 100


def merge(recorded: Calibration | None, runs: Sequence[Run], margin: float, train_images: int) -> Calibration:
    """``recorded`` (None: nothing yet) with ``runs`` added; statistics to 4 decimals, as the config keeps them.

    Every run must have been scored on the images ``recorded``'s were (count and split): ValueError otherwise.
    """
    scored = {r.scored_on for r in runs} | ({recorded.scored_on} if recorded else set())
    if len(scored) > 1:
        on = ", ".join(f"{images:,} {split}" for images, split in sorted(scored))
        raise ValueError(f"runs scored on different images ({on}) are not one population and are never merged")
    values = [r.accuracy for r in runs]
    devices = tuple(sorted({*(recorded.devices if recorded else ()), *(r.device for r in runs)}))
    if not values:
        if recorded is None:
            raise ValueError(f"no run to calibrate {train_images} images from")
        return replace(recorded, margin=margin)
    images, split = scored.pop()
    estimated: tuple[str, ...]
    if recorded is None or len(recorded.runs) == recorded.n:  # every run known one by one: exact
        known = [*(recorded.runs if recorded else ()), *values]
        n, mean = len(known), statistics.fmean(known)
        sd = statistics.stdev(known) if n > 1 else 0.0
        low, high, estimated = min(known), max(known), ()
    else:  # some runs known only in aggregate: pool the two groups' means and squared deviations
        n_old, n_new, mean_new = recorded.n, len(values), statistics.fmean(values)
        n = n_old + n_new
        delta = mean_new - recorded.mean
        mean = recorded.mean + delta * n_new / n
        squares = recorded.sd**2 * (n_old - 1) + sum((v - mean_new) ** 2 for v in values) + delta**2 * n_old * n_new / n
        sd = math.sqrt(squares / (n - 1))
        low, high, estimated = min(recorded.min, *values), max(recorded.max, *values), recorded.estimated
    kept = (*(recorded.runs if recorded else ()), *values)
    stats = (round(low, 4), round(high, 4), round(mean, 4), round(sd, 4))
    return Calibration(train_images, n, *stats, margin, devices, kept, estimated, images=images, split=split)


def propose(results: Sequence[GradeResult], assignment: Assignment, margin: float = 0.1) -> list[Proposal]:
    """One proposal per question of the assignment, from ``full`` results of the solution: a training question
    (one whose full run measures an accuracy, with a ``full_threshold`` or not yet) is calibrated; any other
    comes back with ``trains`` False."""
    _check_results(results, assignment)
    proposals = []
    for question in assignment.questions:
        measured = [run_of(result, question.id) for result in results]
        options = question.options
        if "full_snapshot" in options or "full_threshold" in options or any(isinstance(m, Run) for m in measured):
            proposals.append(_proposal(question.id, options, results, measured, margin))
        else:
            proposals.append(Proposal(question.id, trains=False))
    return proposals


def _check_results(results: Sequence[GradeResult], assignment: Assignment) -> None:
    if not results:
        raise ValueError("no result to calibrate from")
    seen: dict[tuple[str, str], str] = {}
    for result in results:
        if result.budget != "full":
            raise ValueError(f"{result.submission} was graded with the {result.budget} budget; calibration needs a full run")
        if result.assignment != assignment.name:
            raise ValueError(f"{result.submission} is a result of {result.assignment!r}, not {assignment.name!r}")
        key = (result.submission, result.graded_at)
        if result.graded_at and key in seen:  # a run given twice would count twice and shrink the sd
            raise ValueError(f"the run of {result.submission} graded at {result.graded_at} is given twice")
        seen[key] = result.graded_at


def _proposal(qid: str, options: Mapping[str, Any], results, measured: list[Run | str], margin: float) -> Proposal:
    unmeasured = tuple(
        f"{r.submission} ({r.graded_at or 'no date'}): {m}" if len(results) > 1 else m
        for r, m in zip(results, measured, strict=True)  # measured: one per result
        if isinstance(m, str)
    )
    runs = [m for m in measured if isinstance(m, Run)]
    recorded = parse_calibration(options["full_calibration"]) if "full_calibration" in options else {}
    history = parse_history(options["full_calibration_history"]) if "full_calibration_history" in options else {}
    groups = []
    for size in sorted({r.train_images for r in runs}, reverse=True):
        sized = [r for r in runs if r.train_images == size]
        current = sorted({r.scored_on for r in sized if r.split == SCORED_ON})
        for scored_on in sorted({r.scored_on for r in sized}, reverse=True):
            these = [r for r in sized if r.scored_on == scored_on]
            if scored_on[1] != SCORED_ON:
                groups.append(_apart(size, these, margin, f"not the {SCORED_ON} images the grader scores on now"))
            elif len(current) > 1:
                counts = " and ".join(f"{images:,}" for images, _ in current)
                groups.append(_apart(size, these, margin, f"the runs of this size were scored on {counts} images: grade again with one"))
            else:
                groups.append(_group(size, recorded.get(size), history.get(size, ()), these, margin))
    barred = [g for g in groups if g.threshold is not None]
    if not barred:
        return Proposal(qid, tuple(groups), unmeasured)
    parsed = parse_threshold(options["full_threshold"]) if "full_threshold" in options else {}
    single = parsed.get(None)  # the one threshold for any size, which the sized table replaces
    table = {size: bar for size, bar in parsed.items() if size is not None}
    calibration, kept = dict(recorded), dict(history)
    for g in barred:
        assert g.threshold is not None  # barred holds only the groups with a bar
        size = g.train_images
        table[size], calibration[size] = g.threshold, g.calibration
        older = [c for c in kept.get(size, ()) if c.scored_on != g.calibration.scored_on]  # revived, if it was there
        kept[size] = (*older, *([g.superseded] if g.superseded is not None else []))
    kept = {size: records for size, records in kept.items() if records}
    return Proposal(qid, tuple(groups), unmeasured, table, calibration, kept or None, single)


def _group(size: int, current: Calibration | None, history: Sequence[Calibration], runs: list[Run], margin: float) -> Group:
    """Runs on the images the grader scores on now, merged into the record of the same images (current or history)."""
    scored_on = runs[0].scored_on
    earlier = next((c for c in (current, *history) if c is not None and c.scored_on == scored_on), None)
    superseded = current if current is not None and current.scored_on != scored_on else None
    c = merge(earlier, runs, margin, size)
    threshold, rule = _decide(c)
    if threshold is not None:
        outcome = f"proposed {threshold:.2f} for {size:,} training images ({c.n} runs on {c.images:,} {c.split} images)"
    elif c.mean < CHANCE + 2 * c.margin:
        outcome = f"chance-level after {size:,} training images -> a TA decides"
    else:
        outcome = f"spread too widely for a bar after {size:,} training images -> a TA decides"
    reason = f"{_measured(c, earlier, len(runs))}: {rule}"
    if superseded is not None:
        on = f"{superseded.n} recorded runs on {superseded.images:,} {superseded.split} images"
        if threshold is not None:
            reason += f"; the {on} go to full_calibration_history, out of the bar and the range"
        else:
            reason += f"; full_threshold for {size:,} images still comes from the {on}: remove it by hand if a TA should decide"
    return Group(size, c, len(runs), threshold, reason, outcome, superseded)


def _apart(size: int, runs: list[Run], margin: float, why: str) -> Group:
    """Runs that set no bar and join no record, for what they scored on."""
    c = merge(None, runs, margin, size)
    outcome = f"not calibrated: {c.n} runs on {c.images:,} {c.split} images"
    return Group(size, c, len(runs), None, f"{_measured(c, None, len(runs))}: {why}; not calibrated", outcome)


def _measured(c: Calibration, recorded: Calibration | None, new: int) -> str:
    on = f"{c.images:,} {c.split} validation images"
    if c.n == 1:
        return f"{c.mean:.1%} on {on} after training on {c.train_images:,}"
    earlier = "" if recorded is None else f"{recorded.n} recorded + "
    guessed = "" if not c.estimated else f" ({' and '.join(c.estimated)} partly estimated)"
    return (
        f"{c.n} runs ({earlier}{new} new) on {on} after training on {c.train_images:,}: {c.min:.1%} to "
        f"{c.max:.1%}, mean {c.mean:.1%}, sd {c.sd:.1%}{guessed}, on {', '.join(c.devices)}"
    )


def render(proposals: list[Proposal]) -> str:
    """Each training question's groups, unmeasured results and lines to paste; then what became of every question."""
    lines = []
    for p in proposals:
        for g in p.groups:
            lines.append(f"{p.question}: {g.reason}")
        for why in p.unmeasured:
            lines.append(f"{p.question}: {why}")
        if p.replaces is not None:
            lines.append(f"{p.question}: this replaces the one threshold {p.replaces:.2f} for any training set")
        lines.extend(f"    {line}" for line in p.toml.splitlines())
    lines.append("every question:")
    lines.extend(f"    {p.question}: {p.outcome}" for p in proposals if p.trains)
    others = [p.question for p in proposals if not p.trains]
    if others:
        lines.append(f"    not measured by these results (their full run measures no accuracy): {', '.join(others)}")
    return "\n".join(lines)


def write(assignment: Assignment, proposals: list[Proposal], gpu_peak_gib: float | None = None) -> Path:
    """Rewrite ``full_threshold``, ``full_calibration`` and ``full_calibration_history`` of the proposals that set a bar, in place,
    and raise ``[budgets.full] gpu_memory_peak_gib`` to ``gpu_peak_gib`` where that is higher.

    tomlkit edits the document rather than re-serializing a dict, so every
    other line and comment stays as it was; the new text is checked with
    tomllib and the config's own validation before it replaces the file.
    """
    import tomlkit

    path = assignment.folder / "config.toml"
    document = tomlkit.parse(path.read_text(encoding="utf-8"))
    tables = {str(q.get("id")): q for q in document.get("questions", [])}
    for p in proposals:
        if p.full_threshold is None or p.full_calibration is None:
            continue
        table = tables[p.question]
        _set(table, "full_threshold", _value(threshold_line(p.full_threshold)))
        _set(table, "full_calibration", _value(f"full_calibration = {calibration_toml(p.full_calibration)}"))
        if p.full_calibration_history:
            _set(table, "full_calibration_history", _value(f"full_calibration_history = {history_toml(p.full_calibration_history)}"))
        elif "full_calibration_history" in table:  # its one record was revived
            del table["full_calibration_history"]
    if gpu_peak_gib is not None:
        budgets = document.setdefault("budgets", tomlkit.table(is_super_table=True))
        full = budgets.setdefault("full", tomlkit.table())
        _set(full, "gpu_memory_peak_gib", max(float(full.get("gpu_memory_peak_gib", 0) or 0), gpu_peak_gib))
    text = tomlkit.dumps(document)
    for question in tomllib.loads(text).get("questions", []):
        if "full_calibration" in question or "full_calibration_history" in question:
            check_calibration(question.get("full_threshold"), question.get("full_calibration"), question.get("full_calibration_history"))
    write_atomic(path, text)
    return path


def _set(table, key: str, value: Any) -> None:
    """``table[key] = value``, a new key placed right after the table's last key: tomlkit would append it after the
    blank lines and comments that close the table (and belong to what follows), leaving it glued to the next one."""
    if key in table:
        table[key] = value
        return
    body = table.value.body
    last = max((i for i, (k, _) in enumerate(body) if k is not None), default=-1)
    if last + 1 == len(body):
        table.append(key, value)
    else:
        table.value._insert_at(last + 1, key, value)


def _value(line: str):
    """The value of a ``key = value`` line as a tomlkit item that keeps the line's own formatting."""
    import tomlkit

    document = tomlkit.parse(line + "\n")  # the newline ends the line: without it the next blank line closes it
    return document[next(iter(document))]
