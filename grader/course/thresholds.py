"""Accuracy thresholds that depend on how many images a model was trained on.

A ``full`` budget check trains nothing itself: it evaluates the model the
notebook trained as written, so how good that model can be depends on the
data the notebook had. The book's LeNet learns from 60,000 Fashion-MNIST
images in 10 epochs, but on a 7,000-image subset the same 10 epochs are too
few steps to leave chance. One number cannot be right for both, so a config
may give a threshold per training-set size it was calibrated for::

    full_threshold = 0.80                       # any training set
    full_threshold = { 60000 = 0.70, 7000 = 0.60 }

A run uses the threshold calibrated for its training-set size or, failing
that, for the largest calibrated size below it (more data does not make the
bar harder to reach). Below every calibrated size there is no rule: the
check hands the accuracy to a TA instead of inventing a verdict.

Beside a threshold, ``full_calibration`` records the runs of the solution it
was computed from, and the images they were scored on (see the section below
and grader.course.calibrate).
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Threshold:
    accuracy: float
    #: The training-set size it was calibrated for; None when it holds for any size.
    train_images: int | None = None


def parse_threshold(setting: Any) -> dict[int | None, float]:
    """``full_threshold`` from a config as {training-set size or None: accuracy}; ValueError says what is wrong."""
    if isinstance(setting, bool):
        raise ValueError(f"full_threshold must be an accuracy or a table of them, not {setting!r}")
    if isinstance(setting, (int, float)):
        table: dict[Any, Any] = {None: setting}
    elif isinstance(setting, dict) and setting:
        table = {}
        for size, accuracy in setting.items():
            if not str(size).isdigit() or int(size) <= 0:
                raise ValueError(f"full_threshold: {size!r} is not a training-set size (a positive whole number of images)")
            table[int(size)] = accuracy
    else:
        raise ValueError(f"full_threshold must be an accuracy or a non-empty table of them, not {setting!r}")
    for size, accuracy in table.items():
        if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)) or not 0 < accuracy <= 1:
            where = "" if size is None else f" for {size} images"
            raise ValueError(f"full_threshold{where}: {accuracy!r} is not an accuracy in (0, 1]")
    return {size: float(accuracy) for size, accuracy in table.items()}


def threshold_for(setting: Any, train_images: int) -> Threshold | None:
    """The threshold a model trained on ``train_images`` images must reach; None when none is calibrated that low."""
    table = parse_threshold(setting)
    if None in table:
        return Threshold(table[None])
    below = [size for size in table if size is not None and size <= train_images]  # None is not in a table of sizes
    if not below:
        return None
    return Threshold(table[max(below)], max(below))


def calibrated_sizes(setting: Any) -> list[int]:
    """The training-set sizes a table calibrates, largest first (for messages)."""
    return sorted((size for size in parse_threshold(setting) if size is not None), reverse=True)


# --------------------------------------------------------------------------- calibration records
#
# A threshold is a decision; ``full_calibration`` keeps the evidence it was
# decided from -- what runs of the solution reached on each training-set size,
# and on which images they were scored -- so the threshold can be recomputed
# (grader.course.calibrate), new runs merged in by ``grade calibrate --write``, and the
# student's report can say what correct notebooks reach on the images the
# student's own model was scored on::
#
#     full_calibration = { 7000 = { images = 600, split = "held-out", n = 9, min = 0.6917, max = 0.7817,
#                                   mean = 0.7446, sd = 0.0258, margin = 0.1, devices = ["cuda"], runs = [0.7533, ...] } }
#
# (one line in the config: TOML 1.0 inline tables cannot span lines). ``runs``
# lists the runs known one by one; when fewer than ``n`` are, the statistics
# also cover runs known only in aggregate, and ``estimated`` names any
# statistic that was inferred rather than measured (a mean and sd guessed
# from a reported range).
#
# ``images`` and ``split`` say what every run of the record was scored on: the
# same model scores differently on other images, so runs of different splits
# are never one record, and a student is shown a record only when it was scored
# on the images their own model was. ``full_calibration_history`` keeps, per
# size, records superseded by runs on another split (out of the bar and the
# range): ``{ 7000 = [{ images = 1200, split = "test", n = 13, ... }] }``.

#: The held-out half of Fashion-MNIST's test split, which no notebook's kernel is given: what the
#: grader scores a full run's model on (grader.course.fashion_mnist.held_out_images), since 2026-12-01.
HELD_OUT = "held-out"
#: The test split from its first image, which the notebook could read too: what graders before 2026-12-01 scored on.
TEST = "test"
SPLITS = (HELD_OUT, TEST)
#: The split grader.course.fashion_mnist.validation_accuracy scores on now: the only one thresholds are calibrated from.
SCORED_ON = HELD_OUT

#: How far a recorded statistic may be from the runs it summarizes: statistics are recorded to 4 decimals.
TOLERANCE = 1e-4
_KEYS = {"images", "split", "n", "min", "max", "mean", "sd", "margin", "devices", "runs", "estimated"}
_OPTIONAL = {"estimated"}
_ESTIMABLE = ("mean", "sd")


@dataclass(frozen=True)
class Calibration:
    """What ``n`` runs of the solution reached after training on ``train_images`` images."""

    train_images: int
    n: int
    min: float
    max: float
    mean: float
    #: Sample standard deviation; 0 for one run.
    sd: float
    #: The margin the threshold was computed with (see grader.course.calibrate).
    margin: float
    #: The devices the runs were on ("cpu", "cuda").
    devices: tuple[str, ...]
    #: The runs known one by one (all ``n`` of them, or fewer where some are known only in aggregate).
    runs: tuple[float, ...] = ()
    #: Statistics inferred rather than measured ("mean", "sd").
    estimated: tuple[str, ...] = ()
    #: How many validation images every run was scored on, and which split they came from (HELD_OUT or TEST).
    images: int = field(kw_only=True)
    split: str = field(kw_only=True)

    @property
    def scored_on(self) -> tuple[int, str]:
        """(images, split): runs scored on other images are never merged into this record, nor shown beside it."""
        return self.images, self.split

    def summary(self) -> dict[str, Any]:
        """The part a student's report shows (and which statistics are estimates, where some are)."""
        shown: dict[str, Any] = {"n": self.n, "min": self.min, "max": self.max, "mean": self.mean}
        shown.update(images=self.images, split=self.split)
        return {**shown, "estimated": list(self.estimated)} if self.estimated else shown

    def toml(self) -> str:
        """The record as a TOML inline table (the value of one size in ``full_calibration``)."""
        fields = [
            f"images = {self.images}",
            f"split = {json.dumps(self.split)}",
            f"n = {self.n}",
            *(f"{key} = {_number(getattr(self, key))}" for key in ("min", "max", "mean", "sd", "margin")),
            f"devices = {json.dumps(list(self.devices))}",
            f"runs = [{', '.join(_number(r) for r in self.runs)}]",
        ]
        if self.estimated:
            fields.append(f"estimated = {json.dumps(list(self.estimated))}")
        return "{ " + ", ".join(fields) + " }"


def _number(value: float) -> str:
    return repr(round(float(value), 4))


def calibration_toml(table: dict[int, Calibration]) -> str:
    """A whole ``full_calibration`` value, largest size first."""
    return "{ " + ", ".join(f"{size} = {table[size].toml()}" for size in sorted(table, reverse=True)) + " }"


def history_toml(table: dict[int, tuple[Calibration, ...]]) -> str:
    """A whole ``full_calibration_history`` value, largest size first."""
    sizes = sorted(table, reverse=True)
    return "{ " + ", ".join(f"{size} = [{', '.join(c.toml() for c in table[size])}]" for size in sizes) + " }"


def parse_calibration(setting: Any) -> dict[int, Calibration]:
    """``full_calibration`` from a config as {training-set size: record}; ValueError says what is wrong."""
    return _sized(setting, "full_calibration", _record)


def parse_history(setting: Any) -> dict[int, tuple[Calibration, ...]]:
    """``full_calibration_history`` as {training-set size: the records runs on other images superseded}."""

    def records(size: int, value: Any) -> tuple[Calibration, ...]:
        if not isinstance(value, list) or not value:
            raise ValueError(f"{value!r} is not a non-empty list of records")
        parsed = tuple(_record(size, record) for record in value)
        if len({c.scored_on for c in parsed}) < len(parsed):
            raise ValueError("two records of runs scored on the same images: they are one record")
        return parsed

    return _sized(setting, "full_calibration_history", records)


def _sized(setting: Any, key: str, parse: Callable[[int, Any], Any]) -> dict[int, Any]:
    if not isinstance(setting, dict) or not setting:
        raise ValueError(f"{key} must be a non-empty table of training-set sizes, not {setting!r}")
    table = {}
    for size, value in setting.items():
        if not str(size).isdigit() or int(size) <= 0:
            raise ValueError(f"{key}: {size!r} is not a training-set size (a positive whole number of images)")
        try:
            table[int(size)] = parse(int(size), value)
        except ValueError as exc:
            raise ValueError(f"{key} for {size} images: {exc}") from None
    return table


def _record(size: int, record: Any) -> Calibration:
    if not isinstance(record, dict):
        raise ValueError(f"{record!r} is not a table of images, split, n, min, max, mean, sd, margin, devices, runs")
    missing, unknown = sorted(_KEYS - _OPTIONAL - record.keys()), sorted(record.keys() - _KEYS)
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    if unknown:
        raise ValueError(f"unknown key {', '.join(unknown)} (a record has {', '.join(sorted(_KEYS))})")
    n = record["n"]
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n = {n!r} is not a number of runs (a whole number, at least 1)")
    for key in ("min", "max", "mean"):
        _accuracy(key, record[key])
    sd, margin = record["sd"], record["margin"]
    if isinstance(sd, bool) or not isinstance(sd, (int, float)) or not 0 <= sd <= 1:
        raise ValueError(f"sd = {sd!r} is not a standard deviation of accuracies (0 to 1)")
    if isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1:
        raise ValueError(f"margin = {margin!r} is not an accuracy margin (0 to 1)")
    images, split = record["images"], record["split"]
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        raise ValueError(f"images = {images!r} is not a number of validation images (a whole number, at least 1)")
    if split not in SPLITS:
        raise ValueError(f"split = {split!r} is not one of {', '.join(map(repr, SPLITS))}")
    devices, runs, estimated = record["devices"], record["runs"], record.get("estimated", [])
    if not isinstance(devices, list) or not devices or not all(isinstance(d, str) and d for d in devices):
        raise ValueError(f"devices = {devices!r} is not a non-empty list of device names")
    if not isinstance(runs, list):
        raise ValueError(f"runs = {runs!r} is not a list of accuracies")
    for run in runs:
        _accuracy("a run", run)
    if not isinstance(estimated, list) or not set(estimated) <= set(_ESTIMABLE):
        raise ValueError(f"estimated = {estimated!r} may only name {' and '.join(_ESTIMABLE)}")
    calibration = Calibration(
        size,
        n,
        float(record["min"]),
        float(record["max"]),
        float(record["mean"]),
        float(sd),
        float(margin),
        tuple(devices),
        tuple(float(r) for r in runs),
        tuple(estimated),
        images=images,
        split=split,
    )
    _consistent(calibration)
    return calibration


def _accuracy(key: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ValueError(f"{key} = {value!r} is not an accuracy in [0, 1]")


def _consistent(c: Calibration) -> None:
    """The statistics must be able to describe the runs: a typo in one number would move a threshold unseen."""
    if not c.min - TOLERANCE <= c.mean <= c.max + TOLERANCE:
        raise ValueError(f"mean {c.mean} is not between min {c.min} and max {c.max}")
    if len(c.runs) > c.n:
        raise ValueError(f"{len(c.runs)} runs listed, but n = {c.n}")
    if c.n == 1 and (c.sd != 0 or c.min != c.max):
        raise ValueError("one run has sd 0 and min = max")
    outside = [r for r in c.runs if not c.min - TOLERANCE <= r <= c.max + TOLERANCE]
    if outside:
        raise ValueError(f"runs {outside} lie outside min {c.min} .. max {c.max}")
    if len(c.runs) < c.n:
        return
    if c.estimated:
        raise ValueError(f"every run is listed, so {', '.join(c.estimated)} cannot be estimated")
    actual = (min(c.runs), max(c.runs), statistics.fmean(c.runs), statistics.stdev(c.runs) if c.n > 1 else 0.0)
    for key, recorded, value in zip(("min", "max", "mean", "sd"), (c.min, c.max, c.mean, c.sd), actual, strict=True):
        if abs(recorded - value) > TOLERANCE:
            raise ValueError(f"{key} = {recorded} but the {c.n} runs listed give {value:.4f}")


def check_calibration(threshold_setting: Any, calibration_setting: Any, history_setting: Any = None) -> dict[int, Calibration]:
    """``full_calibration`` parsed, every calibrated size given its own ``full_threshold`` entry, and
    ``full_calibration_history`` (if any) holding no record of the images the current one was scored on.

    A record beside no threshold of its own size would be shown to a
    student next to a bar it did not produce; runs on the same images in two
    records would be two halves of one population.
    """
    table = parse_calibration(calibration_setting) if calibration_setting is not None else {}
    thresholds = parse_threshold(threshold_setting) if threshold_setting is not None else {}
    orphans = [size for size in table if size not in thresholds]
    if orphans:
        raise ValueError(f"full_calibration for {', '.join(map(str, sorted(orphans)))} images has no full_threshold entry for that size")
    history = parse_history(history_setting) if history_setting is not None else {}
    for size, records in history.items():
        current = table.get(size)
        if current is not None and current.scored_on in {c.scored_on for c in records}:
            raise ValueError(
                f"full_calibration_history for {size} images has a record of runs scored on {current.images} {current.split} "
                "images, as full_calibration's is: they are one record"
            )
    return table


def calibration_for(setting: Any, train_images: int) -> Calibration | None:
    """The record for the largest calibrated size not above ``train_images`` (threshold_for's rule); None if none."""
    if setting is None:
        return None
    table = parse_calibration(setting)
    below = [size for size in table if size <= train_images]
    return table[max(below)] if below else None
