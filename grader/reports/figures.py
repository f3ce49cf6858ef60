"""The grader's own figures (PNG, inlined as data URIs): reports carry no files and load nothing.

Drawn with matplotlib's Agg backend in the grader's process from numbers
the grader holds; nothing here runs student code.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from typing import Any

COLORS = {"reference": "#4c72b0", "student": "#dd8452"}


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def heatmap(values: Sequence[Sequence[float]], title: str) -> str:
    """|got - expected| over a 2-D slice: where a large output goes wrong at a glance."""
    plt = _pyplot()
    rows, cols = len(values), max((len(r) for r in values), default=1)
    figure, axes = plt.subplots(figsize=(min(7, 1.5 + cols * 0.12), min(6, 1.2 + rows * 0.12)))
    image = axes.imshow(values, cmap="magma", interpolation="nearest", aspect="auto")
    figure.colorbar(image, ax=axes, label="|got − expected|")
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("column")
    axes.set_ylabel("row")
    return _data_uri(figure)


def loss_curves(curves: Mapping[str, Sequence[float]], title: str) -> str:
    """Training loss per step under the grader's fixed procedure: student vs reference."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 3.2))
    styles: dict[str, dict[str, Any]] = {"reference": {"linewidth": 3.2, "alpha": 0.45}, "student": {"linewidth": 1.4, "linestyle": "--"}}
    for name, values in curves.items():  # the reference wide and pale, the student's dashed on top: both show where they agree
        if values:
            axes.plot(range(1, len(values) + 1), values, label=name, color=COLORS.get(name), **styles.get(name, {}))
    axes.set_xlabel("step")
    axes.set_ylabel("cross-entropy loss")
    axes.set_title(title, fontsize=9)
    axes.grid(alpha=0.3)
    axes.legend()
    return _data_uri(figure)


def histogram(percentages: Sequence[float]) -> str:
    """Distribution of the class's scores, in 10-point bins."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(5.5, 3))
    axes.hist(list(percentages), bins=list(range(0, 101, 10)), color=COLORS["reference"], edgecolor="white")
    axes.set_xlabel("score (% of counted points)")
    axes.set_ylabel("submissions")
    axes.set_xlim(0, 100)
    axes.yaxis.get_major_locator().set_params(integer=True)
    return _data_uri(figure)


def pass_rates(rates: Mapping[str, float]) -> str:
    """Share of submissions passing each question: which questions the class found hard."""
    plt = _pyplot()
    names = list(rates)
    figure, axes = plt.subplots(figsize=(5.5, 0.6 + 0.28 * len(names)))
    axes.barh(names, [100 * rates[n] for n in names], color=COLORS["student"])
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% of submissions passing")
    axes.tick_params(axis="y", labelsize=8)
    return _data_uri(figure)
