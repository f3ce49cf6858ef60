"""The training question, made general: does the student's model learn, and how well did the notebook train it?

Two budgets, two questions asked of the same model (see ``README.md``, "Budgets"):

* ``quick`` -- :func:`~grader.checking.equivalence.trains_like_reference`: the student's model, started from the
  grader's weights and trained in the kernel by the grader's fixed procedure (options ``optimizer``,
  ``lr``, ``steps``, ``loss_mode`` at ``input_size``), must lower the loss about as much as the book's
  model does and reach its held-out accuracy (``validation_images`` images the kernel never had).
* ``full`` -- the model the notebook trained itself (snapshot ``full_snapshot``), evaluated here at
  ``full_input_size`` against ``full_threshold`` (by training-set size) and shown against the runs of the
  solution in ``full_calibration``. Without a threshold for the training-set size the verdict is a TA's.

A training question ``requires`` its architecture question: a model that is not the book's is not trained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from grader.checking.assertions import Fail, ForTA, NotGraded
from grader.checking.equivalence import trains_like_reference
from grader.checking.question_context import QuestionContext
from grader.course.fashion_mnist import fixed_batch, held_out_images, resized, training_images, validation_accuracy
from grader.course.question_options import requires_of
from grader.course.thresholds import SCORED_ON, calibrated_sizes, calibration_for, threshold_for
from grader.kernel.submission import Submission
from grader.results import QuestionStatus
from reference import models


def check_training(
    sub: Submission,
    ctx: QuestionContext,
    name: str,
    build: Callable[[], nn.Module],
    *,
    kwargs: dict[str, Any] | None = None,
    build_trained: Callable[[dict[str, Any]], nn.Module] | None = None,
) -> dict[str, Any]:
    """A training question's check: ``build`` makes the book's model; ``build_trained`` (full budget) builds
    it from the values the snapshot took (e.g. the notebook's own ``arch``), default ``build()``."""
    for needed in requires_of(ctx.options):
        verdict = ctx.verdict(needed)
        if verdict is not None and verdict.status != QuestionStatus.PASS:
            message = f"not trained: the architecture question `{needed}` did not pass ({verdict.status})"
            if verdict.status in (QuestionStatus.MISSING, QuestionStatus.ERROR):
                raise NotGraded(verdict.status, message)
            raise Fail(message)
    if ctx.budget == "full":
        return check_trained_model(sub, ctx, name, build_trained or (lambda taken: build()))
    q = ctx.options
    procedure = {"optimizer": q["optimizer"], "lr": q["lr"], "steps": q["steps"], "loss_mode": q["loss_mode"]}
    X, y = fixed_batch(ctx.data_dir, q["input_size"], 64)
    images, labels = held_out_images(ctx.data_dir)
    count = int(q.get("validation_images", 500))
    validation = (resized(images[:count], q["input_size"]), labels[:count])
    return trains_like_reference(sub, name, build, X, y, validation, procedure, kwargs=kwargs)


def check_trained_model(sub: Submission, ctx: QuestionContext, name: str, build: Callable[[dict[str, Any]], nn.Module]) -> dict[str, Any]:
    """Full budget: the model the notebook trained itself, evaluated here on validation images."""
    q = ctx.options
    taken = sub.values(q["full_snapshot"])
    size = q["full_input_size"]
    model = models.materialize(build(taken), (1, 1, size, size))
    try:
        models.load_state_by_order(model, taken["state"])
    except ValueError as exc:
        raise Fail(f"the trained {name} does not fit the book's architecture: {exc}") from None
    count = ctx.budget_settings.get("val_size", 2000)
    accuracy, images = validation_accuracy(model, ctx.data_dir, size, count)
    trained_on = training_images(ctx.data_dir)
    details = {
        "validation_accuracy": round(accuracy, 4),
        # What the accuracy was scored on: `grade calibrate` never merges runs scored on other images.
        "images": images,
        "split": SCORED_ON,
        "train_images": trained_on,
        "trained_in_cell": taken.get("__cell__"),
    }
    if "full_threshold" not in q:
        raise ForTA(
            f"{accuracy:.1%} validation accuracy after training on {trained_on:,} images; no threshold has been "
            "calibrated for this question yet (`grade calibrate`), so a TA decides",
            **details,
        )
    threshold = threshold_for(q["full_threshold"], trained_on)
    if threshold is None:
        sizes = ", ".join(f"{n:,}" for n in calibrated_sizes(q["full_threshold"]))
        raise ForTA(
            f"{accuracy:.1%} validation accuracy after training on {trained_on:,} images; thresholds exist "
            f"only for {sizes} images, so a TA decides",
            **details,
        )
    details.update(threshold=threshold.accuracy, threshold_calibrated_for=threshold.train_images)
    # What runs of the solution reached on the size the threshold was set for: the student sees the bar's evidence,
    # but only runs scored on the same images -- on other images the same model scores differently.
    record = calibration_for(q.get("full_calibration"), threshold.train_images) if threshold.train_images else None
    reach = ""
    if record is not None and record.train_images == threshold.train_images and record.scored_on == (images, SCORED_ON):
        details["calibration"] = record.summary()
        reach = (
            f"correct notebooks reach {record.min * 100:.1f}–{record.max:.1%} "
            f"({record.n} runs of the solution, scored on the same {images:,} images)"
        )
    needed = f"at least {threshold.accuracy:.0%} is needed"
    if accuracy < threshold.accuracy:
        raise Fail(
            f"your trained {name} reaches {accuracy:.1%} validation accuracy; " + (f"{reach}, and {needed}" if reach else needed), **details
        )
    details["message"] = f"validation accuracy {accuracy:.1%} ({reach + '; ' if reach else ''}threshold {threshold.accuracy:.0%})"
    return details
