"""Full-budget thresholds from graded runs of the solution: ``grade calibrate NAME RESULT...``.

A ``full`` threshold is only as good as the runs it came from, so the
numbers are derived, not typed: grade the solution as written
(``grade assignments/hw2/solution.ipynb --budget full``, hours on a CPU,
minutes on a GPU) as many times as there is time for -- other seeds, other
machines -- and hand every result to this module. It reads the accuracy
each run measured, groups the runs by the training-set size they trained
on, merges them into the runs the config already records
(``full_calibration``, see grader.thresholds) and proposes a threshold per
size.

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

from grader.assignment import Assignment
from grader.results import GradeResult, write_atomic
from grader.thresholds import Calibration, calibration_toml, check_calibration, parse_calibration, parse_threshold

#: Fashion-MNIST has ten classes; a model this close to 10% has not learned.
CHANCE = 0.1
#: The probability, under the normal fit, that a correct notebook falls below its threshold.
FAIL_RATE = 0.001
#: How many sds below the mean that is (about 3.09).
Z = NormalDist().inv_cdf(1 - FAIL_RATE)


@dataclass(frozen=True)
class Run:
    """One result's measurement of one training question."""

    accuracy: float
    train_images: int
    validation_images: int
    device: str


@dataclass(frozen=True)
class Group:
    """The runs of one training-set size, merged into those the config already recorded."""

    train_images: int
    calibration: Calibration
    #: How many of ``calibration.n`` runs came from the results given now.
    new_runs: int
    #: None where no bar can be set (at chance, or the runs spread too widely) -- ``reason`` says why.
    threshold: float | None
    reason: str


@dataclass(frozen=True)
class Proposal:
    """What the results say about one question with a ``full_threshold``."""

    question: str
    groups: tuple[Group, ...] = ()
    #: One line per result that measured nothing for this question, saying why.
    unmeasured: tuple[str, ...] = ()
    #: ``full_threshold`` and ``full_calibration`` with the groups that set a bar merged in (empty without one).
    full_threshold: dict[int, float] | None = None
    full_calibration: dict[int, Calibration] | None = None
    #: The one threshold for any training set this proposal replaces, if the config had one.
    replaces: float | None = None

    @property
    def toml(self) -> str:
        """The lines to paste (empty when no size got a bar)."""
        if self.full_threshold is None or self.full_calibration is None:
            return ""
        return f"{threshold_line(self.full_threshold)}\nfull_calibration = {calibration_toml(self.full_calibration)}"


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


def device_of(result: GradeResult) -> str:
    """The device a run was really on: what the kernel observed where the result says, else the one asked for."""
    observed = getattr(result.execution, "observed_device", None) or {}
    if isinstance(observed.get("cuda"), bool):
        return "cuda" if observed["cuda"] else "cpu"
    return result.device


def run_of(result: GradeResult, qid: str) -> Run | str:
    """What ``result`` measured for question ``qid``, or why it measured nothing."""
    graded = next((q for q in result.questions if q.id == qid), None)
    details = graded.details if graded is not None else {}
    accuracy, trained_on = details.get("validation_accuracy"), details.get("train_images")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
        why = "not in the result" if graded is None else f"{graded.status}: {graded.message}"
        return f"the run measured no accuracy ({why})"
    if isinstance(trained_on, bool) or not isinstance(trained_on, int):  # a result from before the check recorded it
        return (
            f"{accuracy:.1%}, but the result does not say how many images the model trained on; grade the solution again with this version"
        )
    return Run(float(accuracy), trained_on, int(details.get("images", 0)), device_of(result))


def merge(recorded: Calibration | None, runs: Sequence[Run], margin: float, train_images: int) -> Calibration:
    """``recorded`` (None: nothing yet) with ``runs`` added; statistics to 4 decimals, as the config keeps them."""
    values = [r.accuracy for r in runs]
    devices = tuple(sorted({*(recorded.devices if recorded else ()), *(r.device for r in runs)}))
    if not values:
        if recorded is None:
            raise ValueError(f"no run to calibrate {train_images} images from")
        return replace(recorded, margin=margin)
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
    return Calibration(train_images, n, round(low, 4), round(high, 4), round(mean, 4), round(sd, 4), margin, devices, kept, estimated)


def propose(results: Sequence[GradeResult], assignment: Assignment, margin: float = 0.1) -> list[Proposal]:
    """One proposal per question with a ``full_threshold``, from ``full`` results of the solution."""
    _check_results(results, assignment)
    proposals = []
    for question in assignment.questions:
        if "full_threshold" in question.options:
            measured = [run_of(result, question.id) for result in results]
            proposals.append(_proposal(question.id, question.options, results, measured, margin))
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
    groups = tuple(
        _group(size, recorded.get(size), [r for r in runs if r.train_images == size], margin)
        for size in sorted({r.train_images for r in runs}, reverse=True)
    )
    barred = [g for g in groups if g.threshold is not None]
    if not barred:
        return Proposal(qid, groups, unmeasured)
    parsed = parse_threshold(options["full_threshold"])
    single = parsed.get(None)  # the one threshold for any size, which the sized table replaces
    table = {size: bar for size, bar in parsed.items() if size is not None}
    calibration = dict(recorded)
    for g in barred:
        assert g.threshold is not None  # barred holds only the groups with a bar
        table[g.train_images], calibration[g.train_images] = g.threshold, g.calibration
    return Proposal(qid, groups, unmeasured, table, calibration, single)


def _group(size: int, recorded: Calibration | None, runs: list[Run], margin: float) -> Group:
    c = merge(recorded, runs, margin, size)
    threshold, rule = _decide(c)
    images = sorted({r.validation_images for r in runs})
    on = f"{', '.join(f'{i:,}' for i in images)} validation images"
    if c.n == 1:
        measured = f"{c.mean:.1%} on {on} after training on {size:,}"
    else:
        earlier = "" if recorded is None else f"{recorded.n} recorded + "
        guessed = "" if not c.estimated else f" ({' and '.join(c.estimated)} partly estimated)"
        measured = (
            f"{c.n} runs ({earlier}{len(runs)} new) on {on} after training on {size:,}: {c.min:.1%} to "
            f"{c.max:.1%}, mean {c.mean:.1%}, sd {c.sd:.1%}{guessed}, on {', '.join(c.devices)}"
        )
    return Group(size, c, len(runs), threshold, f"{measured}: {rule}")


def gpu_memory_peak_gib(results: Sequence[GradeResult]) -> float | None:
    """The largest GPU memory peak the runs recorded (GiB, rounded up to 0.1), for ``--jobs-per-gpu`` admission.

    None when no run was on a GPU. A peak is the kernel's own report (torch's ``max_memory_reserved``), so it
    sizes packing and never decides a verdict; the solution's runs are the ones calibrated from.
    """
    peaks = [r.execution.gpu_memory_peak for r in results if getattr(r.execution, "gpu_memory_peak", 0)]
    if not peaks:
        return None
    return math.ceil(max(peaks) / 2**30 * 10) / 10


def render(proposals: list[Proposal]) -> str:
    lines = []
    for p in proposals:
        for g in p.groups:
            lines.append(f"{p.question}: {g.reason}")
        for why in p.unmeasured:
            lines.append(f"{p.question}: {why}")
        if p.replaces is not None:
            lines.append(f"{p.question}: this replaces the one threshold {p.replaces:.2f} for any training set")
        lines.extend(f"    {line}" for line in p.toml.splitlines())
    return "\n".join(lines)


def write(assignment: Assignment, proposals: list[Proposal], gpu_peak_gib: float | None = None) -> Path:
    """Rewrite ``full_threshold`` and ``full_calibration`` of the proposals that set a bar, in place,
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
        table["full_threshold"] = _value(threshold_line(p.full_threshold))
        table["full_calibration"] = _value(f"full_calibration = {calibration_toml(p.full_calibration)}")
    if gpu_peak_gib is not None:
        budgets = document.setdefault("budgets", tomlkit.table(is_super_table=True))
        full = budgets.setdefault("full", tomlkit.table())
        full["gpu_memory_peak_gib"] = max(float(full.get("gpu_memory_peak_gib", 0) or 0), gpu_peak_gib)
    text = tomlkit.dumps(document)
    for question in tomllib.loads(text).get("questions", []):
        if "full_calibration" in question:
            check_calibration(question.get("full_threshold"), question["full_calibration"])
    write_atomic(path, text)
    return path


def _value(line: str):
    """The value of a ``key = value`` line as a tomlkit item that keeps the line's own formatting."""
    import tomlkit

    document = tomlkit.parse(line)
    return document[next(iter(document))]
