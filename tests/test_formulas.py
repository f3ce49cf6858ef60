"""The formula engine reads a student's formula safely and judges it exactly."""

from __future__ import annotations

import os
import time

import hypothesis.strategies as st
import pytest
from hypothesis import given

from reference import deadline
from reference import formulas as f
from reference.claims import OUTPUT_SHAPE_DOMAIN, OUTPUT_SHAPE_FORMULA

# --------------------------------------------------------------------------- exact values


def test_exact_evaluator_floors_exact_fractions():
    floor_third = f.exact_evaluator(f.parse_formula("floor(k1/3)", ["k1"]))
    assert [floor_third({"k1": k}) for k in (2, 3, 8, -1)] == [0, 1, 2, -1]


def test_exact_evaluator_says_where_a_formula_is_undefined():
    assert f.exact_evaluator(f.parse_formula("1/(k1 - 2)", ["k1"]))({"k1": 2}).startswith("undefined")


def test_exact_evaluator_falls_back_to_sympy_for_roots():
    root = f.exact_evaluator(f.parse_formula("sqrt(k1)", ["k1"]))
    assert root({"k1": 4}) == 2 and f.same_value(root({"k1": 2}), "2**(1/2)")


def test_an_integer_domain_enumerates_only_the_points_its_condition_admits():
    domain = f.IntegerDomain({"a": range(1, 4), "b": range(1, 4)}, where=lambda v: v["a"] < v["b"])
    assert list(domain.points()) == [{"a": 1, "b": 2}, {"a": 1, "b": 3}, {"a": 2, "b": 3}]


# --------------------------------------------------------------------------- equivalent()


@pytest.mark.parametrize("answer", ["k1+k2-1", "-1+k2+k1", "(k1+k2)-1", "k2 + (k1 - 1)", "floor(k1 + k2 - 1)", "2*k1 - k1 + k2 - 1"])
def test_equivalent_accepts_rewritings_of_the_composed_kernel_side(answer):
    result = f.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"])
    assert result.equivalent, result.reason


@pytest.mark.parametrize("answer", ["k1+k2", "(k1+k2-1)^2", "(k1+k2-1)**2", "k1*k2", "k1 + k2 + 1"])
def test_equivalent_rejects_wrong_formulas_with_a_counterexample(answer):
    result = f.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"])
    assert not result.equivalent
    assert result.counterexample["answer"] != result.counterexample["expected"]


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("garbage!!", "may only use"),
        ("__import__('os')", "may only use"),
        ("__import__('os').system('true')", "may only use"),
        ("k1.__class__", "may only use"),
        ("k1.func", "may only use"),
        ("eval(k1)", "unknown name 'eval'"),
        ("x + 1", "unknown name 'x'"),
        ("k1 +* k2", "cannot parse"),
        ("", "empty"),
        ("k1 + " * 60 + "k2", "characters long"),
        ("9**9**9**9", "too large"),
        ("k1**k2**k1", "too large"),
        ("k1**1000", "too large"),
        ("k1/0", "undefined"),
    ],
)
def test_equivalent_refuses_what_it_cannot_read_safely(answer, reason):
    result = f.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"])
    assert not result.equivalent and result.method == "parse"
    assert reason in result.reason


def test_equivalent_refuses_non_strings():
    result = f.equivalent(3, "k1 + k2 - 1", ["k1", "k2"])
    assert not result.equivalent and "string" in result.reason


@pytest.mark.parametrize("answer", ["(n - k + p)//s + 1", "floor((n-k+p)/s) + 1", "ceiling((n - k + p + 1)/s)", "floor((n+p-k)/s+1)"])
def test_equivalent_accepts_output_shape_forms(answer):
    assert f.equivalent(answer, OUTPUT_SHAPE_FORMULA, "nkps", OUTPUT_SHAPE_DOMAIN).equivalent


def test_equivalent_falls_back_to_exhaustive_checking_and_says_so():
    result = f.equivalent("ceiling((n - k + p + 1)/s)", OUTPUT_SHAPE_FORMULA, "nkps", OUTPUT_SHAPE_DOMAIN)
    assert result.method == "exhaustive" and result.cases == 34_104


def test_equivalent_reports_the_first_differing_case_of_the_domain():
    result = f.equivalent("floor((n - k + p)/s)", OUTPUT_SHAPE_FORMULA, "nkps", OUTPUT_SHAPE_DOMAIN)
    assert result.counterexample == {"n": 1, "k": 1, "p": 0, "s": 1, "answer": "0", "expected": "1"}


def test_equivalent_decides_floor_identities_sympy_cannot_prove_by_exact_enumeration():
    # Hermite's identity: floor(k/3) + floor((k+1)/3) + floor((k+2)/3) == k.
    result = f.equivalent("floor(k1/3) + floor((k1+1)/3) + floor((k1+2)/3)", "k1", ["k1"], {"k1": range(0, 300)})
    assert result.equivalent and result.method == "exhaustive" and result.cases == 300


@given(a=st.integers(-3, 3), b=st.integers(-3, 3), const=st.integers(-3, 3))
def test_a_linear_form_is_equivalent_exactly_when_it_is_the_truth(a, b, const):
    answer = f"({a})*k1 + ({b})*k2 + ({const})"
    assert f.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"]).equivalent == ((a, b, const) == (1, 1, -1))


def test_an_invalid_reference_formula_is_a_programming_error():
    with pytest.raises(ValueError, match="reference formula"):
        f.equivalent("k1", "k1 +", ["k1"])


def test_the_books_floor_brackets_are_read_as_floor():
    from reference.formulas import equivalent

    assert equivalent("⌊(n - k + p + s) / s⌋", "floor((n - k + p + s)/s)", "nkps")


def test_a_subscripted_name_as_the_exercise_writes_it_is_the_questions_name():
    from reference.formulas import equivalent

    assert equivalent("k_1 + k_{2} - 1", "k1 + k2 - 1", ["k1", "k2"])
    assert equivalent("k₁ + k₂ − 1", "k1 + k2 - 1", ["k1", "k2"])


# --------------------------------------------------------------------------- hostile answers (issue 25, item 2)

#: Degree 64 over degree 64: sympy's simplify ran for hours on it (and on the second, of 61 characters).
HOSTILE = ["((k1+k2+2)**8)**8/((k1+2)**8+k2**8)**8+k1+k2-1", "((k1*k2+2)**8)**8/((k1+2)**8+k2)**8-((k2+1)**8)**8/(k1+k2)**8"]


@pytest.mark.parametrize("answer", HOSTILE)
def test_a_formula_too_large_to_simplify_is_sent_to_a_ta_within_seconds(answer):
    started = time.monotonic()
    result = f.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"])
    assert time.monotonic() - started < 5
    assert result.undecided and not result.equivalent
    assert "too large to judge automatically" in result.reason and "degree 1" in result.reason


def test_a_too_large_answer_that_is_right_is_undecided_not_wrong():
    result = f.equivalent("((k1+k2)**8)**4 - ((k2+k1)**4)**8 + k1 + k2 - 1", "k1 + k2 - 1", ["k1", "k2"])
    assert result.undecided and result.method == "undecided"


def test_a_wrong_answer_past_the_size_guards_is_refuted_by_the_enumeration_without_waiting_on_sympy(monkeypatch):
    """The enumeration runs first: sympy, which can sit in one C call past its timer, never delays a counterexample."""
    monkeypatch.setattr(f, "MAX_FORMULA_DEGREE", 1000)
    monkeypatch.setattr(f, "MAX_EXPANDED_TERMS", 10**9)
    f._warm()  # the parent's one real simplify, before it is replaced
    monkeypatch.setattr(f.sympy, "simplify", lambda expr: time.sleep(3600))  # were it asked, the verdict would time out
    result = f.equivalent(HOSTILE[0], "k1 + k2 - 1", ["k1", "k2"], seconds=10)
    assert result.method == "exhaustive" and not result.equivalent and result.counterexample["k1"] == 1, result


def test_a_right_answer_sympy_cannot_prove_in_time_is_equivalent_on_the_enumerated_domain(monkeypatch):
    monkeypatch.setattr(f, "SYMBOLIC_SECONDS", 0.5)
    f._warm()
    monkeypatch.setattr(f.sympy, "simplify", lambda expr: time.sleep(3600))  # a proof that never ends (interrupted by the timer)
    result = f.equivalent("k2 + k1 - 1", "k1 + k2 - 1", ["k1", "k2"], seconds=10)
    assert result.equivalent and result.method == "exhaustive" and result.cases == 100, result


def test_a_judgement_past_its_deadline_is_undecided_and_the_grader_answers_in_time():
    never = f.IntegerDomain({"k1": range(1, 3)}, where=lambda point: time.sleep(3600) is None)  # the enumeration hangs
    started = time.monotonic()
    result = f.equivalent("k1 + 0*k1**2 + floor(k1/7)", "k1", ["k1"], never, seconds=1.5)
    assert time.monotonic() - started < 4
    assert result.undecided and "within 1.5 s" in result.reason


@pytest.mark.parametrize(
    "formula, degree, terms",
    [("k1 + k2 - 1", 1, 3), ("(k1 + k2 - 1)**2", 2, 6), ("(k1 + 1)/(k2 + 1)", 2, 4), ("floor((n - k + p + s)/s)", 2, 4), ("k1**k2", 1, 1)],
)
def test_a_formulas_size_is_read_before_anything_expands(formula, degree, terms):
    from sympy.parsing.sympy_parser import parse_expr

    size = f.formula_size(parse_expr(formula, evaluate=False))
    assert (size.degree, size.terms) == (degree, terms)


def test_a_constant_that_would_grow_past_its_digits_is_never_computed():
    started = time.monotonic()
    result = f.equivalent("(((9**64)**64)**64)**64", "k1", ["k1"])
    assert time.monotonic() - started < 5 and result.undecided and "digits" in result.reason


# --------------------------------------------------------------------------- the child process (reference/deadline.py)


def test_a_bounded_computation_returns_its_json():
    assert deadline.run_with_deadline(lambda a, b: {"sum": a + b}, 2, 3, seconds=10) == deadline.Outcome("done", {"sum": 5})


def test_a_bounded_computation_that_raises_says_what():
    outcome = deadline.run_with_deadline(lambda: 1 / 0, seconds=10)
    assert outcome.status == "failed" and "ZeroDivisionError" in outcome.reason


def test_a_bounded_computation_that_hangs_is_killed_at_its_deadline():
    started = time.monotonic()
    assert deadline.run_with_deadline(time.sleep, 3600, seconds=1).status == "timeout"
    assert time.monotonic() - started < 3


def test_a_bounded_computation_that_dies_or_overeats_is_a_failure_not_a_crash():
    assert "exit status 7" in deadline.run_with_deadline(os._exit, 7, seconds=10).reason
    outcome = deadline.run_with_deadline(lambda: len(bytearray(8 << 30)), seconds=10, memory_bytes=256 << 20)
    assert outcome.status == "failed" and "MemoryError" in outcome.reason


def test_interrupt_after_cuts_a_step_inside_the_child():
    def step() -> str:
        try:
            with deadline.interrupt_after(0.5):
                time.sleep(3600)
        except deadline.OutOfTime:
            return "cut"
        return "not cut"

    assert deadline.run_with_deadline(step, seconds=10) == deadline.Outcome("done", "cut")


# --------------------------------------------------------------------------- the check API's verdicts


def test_expect_formula_passes_fails_or_sends_to_a_ta():
    from grader.checking.assertions import Fail, ForTA, expect_formula

    assert expect_formula("k2 + k1 - 1", "k1 + k2 - 1", ["k1", "k2"], name="ANSWER") == {"formula": "k1 + k2 - 1", "method": "symbolic"}
    with pytest.raises(Fail, match="ANSWER: at"):
        expect_formula("k1 + k2", "k1 + k2 - 1", ["k1", "k2"], name="ANSWER")
    with pytest.raises(ForTA, match="ANSWER: sent to a TA: .* too large to judge automatically") as sent:
        expect_formula(HOSTILE[0], "k1 + k2 - 1", ["k1", "k2"], name="ANSWER")
    assert sent.value.status == "manual"
