"""Helpers for writing checks: failing with evidence, comparing tensors, property testing.

A check is a plain function ``check_<question id>(submission)`` in an
assignment's ``checks.py``. It passes by returning, and fails by raising
:class:`Fail` with a message a student can act on and ``details`` the
report can show (expected vs got, the first differing entry, the shrunk
Hypothesis example). These helpers make that the easy way to write one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import seed as fixed_seed
from hypothesis import strategies as st

from grader.errors import Verdict
from grader.kernel.failures import CheckTimeout, KernelCrashed, Missing, StudentError
from grader.kernel.protocol import RemoteObject
from grader.results import QuestionStatus


class Fail(Verdict, AssertionError):
    """The student's answer is wrong; ``message`` says how, ``details`` carry the evidence."""

    status = QuestionStatus.FAIL

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details


class ForTA(Verdict):
    """The grader has the evidence but no rule to decide with: status ``manual``, a TA gives the points.

    Used when a verdict would be invented rather than measured (a ``full``
    accuracy on a training set no threshold was calibrated for).
    """

    status = QuestionStatus.MANUAL

    def __init__(self, message: str, **details: Any):
        super().__init__(message)
        self.message = message
        self.details = details


class NotGraded(Verdict):
    """A question that cannot be graded because another part is missing (status ``missing`` or ``error``)."""

    def __init__(self, status: str, message: str):
        super().__init__(message)
        self.status = QuestionStatus(status)
        self.message = message
        self.details: dict[str, Any] = {}


def answered(value: Any, name: str) -> Any:
    """``value`` unless it is still the template's ``...``, which means not answered yet."""
    if isinstance(value, RemoteObject) and value.type.endswith("ellipsis"):
        raise NotGraded("missing", f"`{name}` is still `...`: not answered yet")
    return value


def describe(value: Any) -> str:
    """A short, human description of a returned value (for 'expected X, got Y')."""
    if isinstance(value, torch.Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, RemoteObject):
        return f"a {value.type} ({value.repr[:80]})"
    return f"{type(value).__name__} {value!r:.80}"


def tensor_data(t: torch.Tensor, limit: int = 64) -> Any:
    """A tensor as nested lists for a report (only when small enough to read)."""
    return t.tolist() if t.numel() <= limit else f"{tuple(t.shape)} tensor"


def expect_tensor(got: Any, want: torch.Tensor, what: str, rtol: float = 1e-4, atol: float = 1e-4) -> None:
    """Raise :class:`Fail` unless ``got`` is a tensor equal to ``want`` (shape, then values).

    The message names the first differing entry and the largest absolute
    difference, which is what a student needs to find an off-by-one.
    """
    if not isinstance(got, torch.Tensor):
        raise Fail(f"{what}: expected {describe(want)}, got {describe(got)}", expected=tensor_data(want))
    if tuple(got.shape) != tuple(want.shape):
        raise Fail(
            f"{what}: expected shape {tuple(want.shape)}, got {tuple(got.shape)}",
            expected_shape=list(want.shape),
            got_shape=list(got.shape),
            expected=tensor_data(want),
            got=tensor_data(got),
        )
    got64, want64 = got.detach().to(torch.float64), want.detach().to(torch.float64)
    close = torch.isclose(got64, want64, rtol=rtol, atol=atol, equal_nan=False)
    if bool(close.all()):
        return
    diff = (got64 - want64).abs().nan_to_num(nan=float("inf"))
    index = tuple(int(i) for i in (~close).nonzero()[0])
    evidence = {"expected": tensor_data(want), "got": tensor_data(got), "tolerance": {"rtol": rtol, "atol": atol}}
    if want.numel() > 64 and want.dim() >= 1:
        evidence["difference_map"] = difference_map(diff, index)
    raise Fail(
        f"{what}: first difference at {list(index)}: expected {want64[index].item():.6g}, got {got64[index].item():.6g}; "
        f"max abs difference {diff.max().item():.3g} ({int((~close).sum())} of {close.numel()} entries differ)",
        first_difference=list(index),
        max_abs_difference=diff.max().item(),
        **evidence,
    )


def difference_map(diff: torch.Tensor, index: tuple[int, ...], limit: int = 64) -> dict[str, Any]:
    """The 2-D slice of ``|got - want|`` holding the first difference, for the report's heat-map.

    Leading dimensions are fixed at the first differing entry; the slice is
    cut to ``limit`` x ``limit`` so a result file stays small.
    """
    plane = diff.reshape(1, -1) if diff.dim() == 1 else diff[index[:-2]]
    plane = plane[:limit, :limit].clamp(max=1e30)
    return {"slice": [*index[:-2], ":", ":"] if diff.dim() > 1 else [":"], "values": [[round(v, 6) for v in row] for row in plane.tolist()]}


def expect_equal(got: Any, want: Any, what: str) -> None:
    if got != want:
        raise Fail(f"{what}: expected {want!r}, got {got!r}", expected=want, got=got if _jsonable(got) else describe(got))


def _jsonable(value: Any) -> bool:
    return value is None or isinstance(value, (bool, int, float, str, list, tuple, dict))


def expect_formula(answer: Any, truth: Any, symbols: Any, domain: Any = None, name: str = "the formula") -> dict[str, Any]:
    """Pass with ``{"formula", "method"}`` if the formula ``answer`` means ``truth`` (:func:`reference.formulas.equivalent`:
    read safely, judged in a child process within its deadline); :class:`Fail` with the counterexample if not;
    :class:`ForTA` when the grader could not judge it (too large, or not decided in time) -- never a wrong answer."""
    from reference.formulas import equivalent  # sympy: imported by the checks that judge a formula only

    verdict = equivalent(answer, truth, symbols, domain)
    if verdict.undecided:
        raise ForTA(f"{name}: sent to a TA: {verdict.reason}", method=verdict.method, formula=verdict.answer)
    if not verdict:
        raise Fail(f"{name}: {verdict.reason}", method=verdict.method, counterexample=verdict.counterexample)
    return {"formula": verdict.answer, "method": verdict.method}


#: Errors that mean the student's code, not the grader, stopped a property run.
STOP = (Missing, StudentError, CheckTimeout, KernelCrashed)


class _Stopped(BaseException):
    """Carries a :data:`STOP` error out of Hypothesis at once: it shrinks an ``Exception``, never a ``BaseException``."""

    def __init__(self, error: Exception):
        super().__init__(error)
        self.error = error


def property_check(
    name: str,
    strategy: st.SearchStrategy,
    check: Callable[[Any], None],
    examples: int = 40,
    seed: int = 0,
    show: Callable[[Any], Any] = repr,
) -> None:
    """Run ``check`` on Hypothesis-generated examples; on failure, shrink and report the minimal one.

    Reproducible: generation starts from the fixed ``seed`` and no example
    database is used, so the same notebook always gets the same grade.
    ``check(example)`` raises :class:`Fail` for a wrong answer; a student
    error ends the run at once (shrinking an exception would only hide it).
    """
    failing: list[tuple[Any, Fail]] = []

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        print_blob=False,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate, Phase.shrink],
    )
    @fixed_seed(seed)
    @given(strategy)
    def run(example):
        try:
            check(example)
        except Fail as fail:
            failing.append((example, fail))
            raise
        except STOP as stop:  # not shrunk: each try would call the student's code again (a hang: once per try)
            raise _Stopped(stop) from None

    try:
        run()
    except _Stopped as stopped:
        raise stopped.error from None
    except Fail:
        example, fail = failing[-1]  # Hypothesis replays the shrunk example last
        details = dict(fail.details)
        details["example"] = show(example)
        raise Fail(f"{fail.message} (smallest failing example: {show(example)})", **details) from None


def tensors(shape: Sequence[int], low: float = -10, high: float = 10) -> st.SearchStrategy[torch.Tensor]:
    """float32 tensors of ``shape`` with values that shrink toward 0."""
    size = 1
    for s in shape:
        size *= int(s)
    return st.lists(st.floats(low, high, allow_nan=False, width=32), min_size=size, max_size=size).map(
        lambda values: torch.tensor(values, dtype=torch.float32).reshape(tuple(shape))
    )
