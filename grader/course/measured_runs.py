"""What a ``full`` result measured for a training question: the accuracy, the training-set size, and the
images it was scored on (count and split) -- the runs ``grade calibrate`` (grader.course.calibrate) groups; and
the GPU memory the runs peaked at.

Since 2026-12-01 the grader scores a full run's model on the held-out half of the test split, which no
notebook's kernel is given (grader.course.fashion_mnist.held_out_images), and a result names that split beside the
count (``images``, ``split`` in the question's details). Graders before scored on the test split from its
first image and said only the count; such a result is placed by when it was graded (:data:`HELD_OUT_SINCE`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from grader.course.thresholds import HELD_OUT, SPLITS, TEST
from grader.results import GradeResult

#: When the grader began to score full runs on the held-out half (commit 1e0f56e): a result that does not
#: say its split was scored on HELD_OUT if graded at or after this, else on TEST (the first images of the test split).
HELD_OUT_SINCE = datetime(2026, 12, 1, 13, 15, 55, tzinfo=UTC)


@dataclass(frozen=True)
class Run:
    """One result's measurement of one training question."""

    accuracy: float
    train_images: int
    validation_images: int
    #: HELD_OUT or TEST: which part of the test split the validation images came from.
    split: str
    device: str

    @property
    def scored_on(self) -> tuple[int, str]:
        return self.validation_images, self.split


def device_of(result: GradeResult) -> str:
    """The device a run was really on: what the kernel observed where the result says, else the one asked for."""
    observed = getattr(result.execution, "observed_device", None) or {}
    if isinstance(observed.get("cuda"), bool):
        return "cuda" if observed["cuda"] else "cpu"
    return result.device


def split_graded_at(graded_at: str) -> str | None:
    """The split a result that does not name one was scored on, from when it was graded (None: no date)."""
    try:
        when = datetime.fromisoformat(graded_at)
    except ValueError:
        return None
    when = when if when.tzinfo is not None else when.replace(tzinfo=UTC)
    return HELD_OUT if when >= HELD_OUT_SINCE else TEST


def run_of(result: GradeResult, qid: str) -> Run | str:
    """What ``result`` measured for question ``qid``, or why it measured nothing."""
    graded = next((q for q in result.questions if q.id == qid), None)
    details = graded.details if graded is not None else {}
    accuracy, trained_on, images = details.get("validation_accuracy"), details.get("train_images"), details.get("images")
    if isinstance(accuracy, bool) or not isinstance(accuracy, (int, float)):
        why = "not in the result" if graded is None else f"{graded.status}: {graded.message}"
        return f"the run measured no accuracy ({why})"
    again = "grade the solution again with this version"
    if isinstance(trained_on, bool) or not isinstance(trained_on, int):  # a result from before the check recorded it
        return f"{accuracy:.1%}, but the result does not say how many images the model trained on; {again}"
    if isinstance(images, bool) or not isinstance(images, int) or images < 1:
        return f"{accuracy:.1%}, but the result does not say how many images it was scored on; {again}"
    split = details.get("split") or split_graded_at(result.graded_at)
    if split not in SPLITS:
        return f"{accuracy:.1%}, but the result says neither which images it was scored on nor when it was graded; {again}"
    return Run(float(accuracy), trained_on, images, str(split), device_of(result))


def gpu_memory_peak_gib(results: Sequence[GradeResult]) -> float | None:
    """The largest GPU memory peak the runs recorded (GiB, rounded up to 0.1), for ``--jobs-per-gpu`` admission.

    None when no run was on a GPU. A peak is the kernel's own report (torch's ``max_memory_reserved``), so it
    sizes packing and never decides a verdict; the solution's runs are the ones calibrated from.
    """
    peaks = [r.execution.gpu_memory_peak for r in results if getattr(r.execution, "gpu_memory_peak", 0)]
    if not peaks:
        return None
    return math.ceil(max(peaks) / 2**30 * 10) / 10
