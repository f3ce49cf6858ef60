"""From a check's ending to a question's verdict: status, message, evidence -- and the notes the report adds.

Every way a check can end maps to a status here: a verdict it raised (``Fail``, ``ForTA``, ``NotGraded``),
something the student's kernel did (a :class:`~grader.errors.KernelError`, looked up in
:data:`KERNEL_FAILURES`), or a bug in the check itself (never charged as the student's mistake in
silence: the message says to tell the TA).
"""

from __future__ import annotations

import inspect
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

from nbformat import NotebookNode

from grader.checking.messages import edition_hint, is_argument_mismatch, locate_in_notebook, signature_message
from grader.checking.question_context import QuestionContext
from grader.course.assignment import Assignment, Question
from grader.errors import BridgeError, ConfigError, KernelError, Verdict
from grader.kernel.failures import CheckTimeout, KernelCrashed, Missing, OutOfTime, StateMisfit, StudentError
from grader.kernel.submission import Submission
from grader.results import GradeResult, QuestionResult, QuestionStatus
from grader.source.source_index import SourceIndex


def question_result(question: Question, status: str, message: str = "", details: dict | None = None) -> QuestionResult:
    points = question.points if status == QuestionStatus.PASS else 0.0
    return QuestionResult(
        question.id, question.title, QuestionStatus(status), points, question.points, message, details or {}, question.section
    )


def run_check(submission: Submission, question: Question, check: Callable, context: QuestionContext) -> QuestionResult:
    """One question's verdict, with the seconds its check took."""
    start = time.monotonic()
    verdict = _verdict(submission, question, check, context)
    verdict.details.setdefault("seconds", round(time.monotonic() - start, 3))
    return verdict


def takes_context(check: Callable) -> bool:
    """``check_<id>(sub, ctx)`` or ``check_<id>(sub)``: a check that needs nothing of its question takes one argument."""
    parameters = [p for p in inspect.signature(check).parameters.values() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(parameters) >= 2


def _verdict(submission: Submission, question: Question, check: Callable, context: QuestionContext) -> QuestionResult:
    try:
        outcome = check(submission, context) if takes_context(check) else check(submission)
    except Verdict as raised:
        return question_result(question, raised.status, raised.message, dict(getattr(raised, "details", {})))
    except KernelError as failure:
        status, message, details = kernel_failure(failure, submission)
        return question_result(question, status, message, details)
    except Exception as exc:  # a bug in a check must not cost the rest of the batch
        return not_judged(question, exc)
    details = dict(outcome) if isinstance(outcome, dict) else {}
    message = details.pop("message", "")
    return question_result(question, QuestionStatus.PASS, message, details)


def not_judged(question: Question, exc: BaseException) -> QuestionResult:
    """The grader's own failure to judge a question (a check's bug, an answer it could not take apart): sent to a
    TA with the reason and the traceback, never charged to the student as a wrong or failing answer."""
    return question_result(
        question,
        QuestionStatus.MANUAL,
        f"the grader could not judge this question ({type(exc).__name__}: {str(exc)[:300]}); sent to a TA",
        {"grader_traceback": traceback.format_exc()[-4000:]},
    )


def judge_question(
    submission: Submission, notebook: NotebookNode, question: Question, assignment: Assignment, context: QuestionContext
) -> QuestionResult:
    """One question's verdict with the report's notes: whatever goes wrong in here costs this question only.

    A failure in the grader's own handling of what the kernel said (:func:`not_judged`) is the TA's to judge;
    a note that cannot be written is left out, the verdict kept. Only a configuration error, the same for
    every notebook, stops the run.
    """
    try:
        verdict = grade_question(submission, notebook, question, assignment, context)
    except ConfigError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a question's failure stays that question's
        return not_judged(question, exc)
    notes: list[tuple[str, Callable[[], None]]] = [
        ("notebook cell", lambda: note_notebook_cell(verdict, question, assignment, notebook)),
        ("library calls", lambda: note_policy(verdict, question, submission.source, submission.ran_ops)),
    ]
    for what, note in notes:
        try:
            note()
        except Exception as exc:  # noqa: BLE001 -- the verdict stands without its note
            verdict.details.setdefault("notes_left_out", []).append(f"{what}: {type(exc).__name__}")
    return verdict


def _student_error(error: StudentError, submission: Submission) -> tuple[str, str, dict[str, Any]]:
    error = locate_in_notebook(error, submission.notebook)
    message = str(error)
    if error.type == "NotImplementedError":  # the generated template's placeholder, not a grader stub
        where = f" (cell {error.cell})" if error.cell is not None else ""
        subject = f"`{error.name}`" if error.name.isidentifier() else error.name
        message = f"{subject} is not implemented yet: it raises NotImplementedError{where}"
    elif is_argument_mismatch(error):
        message = signature_message(error, submission.source, getattr(submission.assignment, "signatures", {}))
    elif edition_hint(error):
        message = f"{message} — {edition_hint(error)}"
    return (
        QuestionStatus.ERROR,
        message,
        {"exception": error.type, "cell": error.cell, "line": error.line, "code": error.code, "traceback": error.traceback},
    )


#: What the kernel did -> the status and the sentence for the student (most specific class first).
KERNEL_FAILURES: Mapping[type[KernelError], Callable[[Any, Submission], tuple[str, str, dict[str, Any]]]] = {
    StudentError: _student_error,
    Missing: lambda e, _: (QuestionStatus.MISSING, str(e), {}),
    # a check that did not turn a misfit into a sentence of its own
    StateMisfit: lambda e, _: (QuestionStatus.FAIL, f"`{e.name}`: the book's weights do not fit its parameters", {}),
    OutOfTime: lambda e, submission: out_of_time(submission, before_start=False),
    CheckTimeout: lambda e, _: (QuestionStatus.FAIL, f"your code did not finish: {e}", {}),
    KernelCrashed: lambda e, _: (QuestionStatus.ERROR, str(e), {}),
    BridgeError: lambda e, _: (QuestionStatus.ERROR, f"the grader could not read your kernel's answer: {e}", {}),
}


def out_of_time(submission: Submission, before_start: bool) -> tuple[str, str, dict[str, Any]]:
    """A question the notebook's time limit did not let the grader finish: charged only when the student's code used the time."""
    deadline = submission.deadline
    if deadline is None:  # OutOfTime comes only from a deadline; kept total for a hand-built Submission
        return QuestionStatus.FAIL, "your code did not finish in time", {}
    charged, message = deadline.out_of_time(before_start)
    details = {
        "time_limit_seconds": deadline.seconds,
        "calls_seconds": round(deadline.call_seconds, 1),
        "cells_seconds": round(deadline.cell_seconds, 1),
    }
    return (QuestionStatus.FAIL if charged else QuestionStatus.ENVIRONMENT), message, details


def kernel_failure(failure: KernelError, submission: Submission) -> tuple[str, str, dict[str, Any]]:
    """The status, message and details for what the kernel did (looked up by the failure's class)."""
    for kind in type(failure).__mro__:
        if kind in KERNEL_FAILURES:
            return KERNEL_FAILURES[kind](failure, submission)
    return QuestionStatus.ERROR, str(failure), {}


def grade_question(
    submission: Submission, notebook: NotebookNode, question: Question, assignment: Assignment, context: QuestionContext
) -> QuestionResult:
    if question.kind == "manual":
        from grader.checking.answers import find_answer  # the student's prose answer, for the TA

        return question_result(question, QuestionStatus.MANUAL, "", find_answer(notebook, question))
    check = assignment.check_for(question)
    if check is None:  # load_assignment makes sure each runnable auto question has its check_<id>
        raise ConfigError(f"{question.id}: no check_{question.id} in the assignment's checks")
    return run_check(submission, question, check, context)


def note_rebinding(submission: Submission, result: GradeResult, assignment: Assignment) -> None:
    """Say where the notebook later rebound a graded name (``pool2d = nn.MaxPool2d(3)``)."""
    try:
        rebound = submission.rebinding(assignment.defined_names)
    except Exception:  # noqa: BLE001 -- a note, never worth a verdict: a kernel that answers garbage gets none
        return
    defines = {q.id: q.defines for q in assignment.questions}  # only questions that ran are in the result
    for question in result.questions:
        for name in defines[question.id]:
            if name in rebound:
                question.details["rebound"] = f"`{name}` was later rebound to a {rebound[name]}; your own definition of `{name}` was graded"


def note_notebook_cell(verdict: QuestionResult, question: Question, assignment: Assignment, notebook: NotebookNode) -> None:
    """Name the cell where the notebook does a question's work itself (its own training), for the report's plots."""
    key = question.options.get("full_snapshot") or question.options.get("notebook_cell_after")
    snapshot = next((s for s in assignment.snapshots if s.key == key), None)
    if snapshot is None:
        return
    if isinstance(verdict.details.get("snapshot_cell"), int):  # the cell the check graded, found by its values
        verdict.details.setdefault("notebook_cell", verdict.details["snapshot_cell"])
        return
    if snapshot.after is None:
        return
    cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and snapshot.after.search(c.source)]
    if cells:
        verdict.details.setdefault("notebook_cell", cells[-1])


#: Built-in operations a from-scratch question should not reach, by their aten name, in words.
BUILT_IN_OPS = {
    "convolution": "a built-in convolution",
    "convolution_backward": "a built-in convolution",
    "_convolution": "a built-in convolution",
    "max_pool2d_with_indices": "a built-in max pooling",
    "max_pool3d_with_indices": "a built-in max pooling",
    "max_pool2d": "a built-in max pooling",
    "avg_pool2d": "a built-in average pooling",
    "avg_pool3d": "a built-in average pooling",
    "adaptive_max_pool2d": "a built-in max pooling",
    "_adaptive_avg_pool2d": "a built-in average pooling",
    "native_batch_norm": "a built-in batch norm",
    "_native_batch_norm_legit": "a built-in batch norm",
    "_native_batch_norm_legit_no_training": "a built-in batch norm",
    "cudnn_batch_norm": "a built-in batch norm",
}


def note_policy(verdict: QuestionResult, question: Question, source: SourceIndex, ran_ops: Mapping[str, set[str]] | None = None) -> None:
    """Flag a library shortcut (``F.conv2d`` inside ``corr2d``, or in a helper it calls) for the TA.

    Two kinds of evidence: the notebook's source (read from the file, not asked of the kernel), and the
    built-in operations the graded code ran when the checks called it (``ran_ops``, recorded in the kernel),
    which catch a call no reading of the source names (``getattr(F, "conv" + "2d")``, ``eval``). A policy
    question, not a wrong answer: the answer keeps its verdict.
    """
    flagged = set(question.options.get("flag_calls", ()))
    if not flagged or not question.defines:
        return
    notes = []
    calls = source.library_calls(question.defines, flagged)
    if calls:
        notes.append("uses " + ", ".join(f"`{call}`" + (f" ({via})" if via else "") for call, via in calls))
    for name in question.defines:
        built_in = sorted({BUILT_IN_OPS[op] for op in (ran_ops or {}).get(name, set()) if op in BUILT_IN_OPS})
        ops = sorted(op for op in (ran_ops or {}).get(name, set()) if op in BUILT_IN_OPS)
        if built_in:
            notes.append(f"`{name}` ran {' and '.join(built_in)} (`{'`, `'.join(f'aten.{op}' for op in ops)}`)")
    if notes:
        verdict.details["policy"] = "; ".join(notes) + " (allowed to pass; your TA decides)"
