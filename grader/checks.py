"""The public API for check authors: everything an ``assignments/<name>/checks.py`` may import from the grader.

A check is a plain function ``check_<question id>(sub, ctx)`` (or ``check_<id>(sub)``). It drives the
student's code through ``sub`` with inputs it chooses, compares what comes back with ``reference`` here,
and passes by returning (optionally a dict of details, ``"message"`` among them, for the report) or ends
otherwise by raising :class:`Fail` (wrong, with evidence), :class:`ForTA` (a TA decides) or
:class:`NotGraded`. Whatever the student's code does -- raise, hang, crash, leave a name undefined --
propagates as a kernel error the grader turns into a verdict itself; a check need not catch it.

``ctx`` (:class:`QuestionContext`) holds the question's options from ``config.toml`` (validated when the
assignment loads; options of the assignment's own are declared in its checks.py as
``OPTIONS = {"name": "int"}``), the budget, the data folder, and the verdicts of the questions it
``requires``. Anything not listed in ``__all__`` is the grader's inside and may change without notice.
"""

from __future__ import annotations

from grader.checking.architecture_checks import KIND_WORDS, layer_table, same_architecture
from grader.checking.assertions import (
    Fail,
    ForTA,
    NotGraded,
    answered,
    describe,
    difference_map,
    expect_equal,
    expect_formula,
    expect_tensor,
    property_check,
    tensor_data,
    tensors,
)
from grader.checking.equivalence import accuracy, randomize, run_seed, same_function, trains_like_reference
from grader.checking.question_context import QuestionContext
from grader.checking.training_checks import check_trained_model, check_training
from grader.course.fashion_mnist import fixed_batch, held_out_images, resized, training_images, validation_accuracy
from grader.course.thresholds import calibrated_sizes, calibration_for, threshold_for
from grader.kernel.failures import CheckTimeout, KernelCrashed, Missing, StateMisfit, StudentError
from grader.kernel.protocol import Module, RemoteObject, SnapshotFailure
from grader.kernel.submission import Submission
from grader.results import QuestionResult, QuestionStatus

__all__ = [
    # the handle and the context a check receives
    "Submission",
    "QuestionContext",
    "Module",
    "RemoteObject",
    "SnapshotFailure",
    # ending a question: verdicts a check raises, and what the kernel may raise through it
    "Fail",
    "ForTA",
    "NotGraded",
    "Missing",
    "StudentError",
    "StateMisfit",
    "CheckTimeout",
    "KernelCrashed",
    "QuestionResult",
    "QuestionStatus",
    # comparing and property testing
    "answered",
    "describe",
    "expect_equal",
    "expect_formula",
    "expect_tensor",
    "tensor_data",
    "difference_map",
    "property_check",
    "tensors",
    # models: the same function as the book's (an architecture: with its layer table as evidence), and training
    "same_architecture",
    "layer_table",
    "KIND_WORDS",
    "same_function",
    "randomize",
    "run_seed",
    "accuracy",
    "trains_like_reference",
    "check_training",
    "check_trained_model",
    # data the grader reads itself (the kernel sees only its own view)
    "fixed_batch",
    "held_out_images",
    "resized",
    "training_images",
    "validation_accuracy",
    # full-budget thresholds
    "threshold_for",
    "calibrated_sizes",
    "calibration_for",
]
