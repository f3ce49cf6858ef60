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
"""

from __future__ import annotations

from dataclasses import dataclass
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
    below = [size for size in table if size <= train_images]
    if not below:
        return None
    return Threshold(table[max(below)], max(below))


def calibrated_sizes(setting: Any) -> list[int]:
    """The training-set sizes a table calibrates, largest first (for messages)."""
    return sorted((size for size in parse_threshold(setting) if size is not None), reverse=True)
