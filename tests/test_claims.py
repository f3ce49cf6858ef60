"""Every exercise claim holds, every mutated twin is rejected, and formula answers are judged safely."""

from __future__ import annotations

import hypothesis.strategies as st
import pytest
import sympy
from hypothesis import given

from reference import claims as c

# --------------------------------------------------------------------------- every claim holds


@pytest.mark.parametrize("claim", c.CLAIMS, ids=lambda claim: claim.__name__)
def test_claim_holds(claim):
    result = claim()
    assert result.holds, result.line()
    assert result.counterexample is None
    assert result.cases > 0


def test_claims_that_sympy_can_prove_are_proved_symbolically():
    symbolic = {r.name for r in c.check_all() if r.method == "symbolic"}
    assert {
        "convolution_is_commutative", "continuous_convolution_is_commutative", "convolution_is_associative",
        "two_kernels_compose_into_one", "composed_kernel_side", "output_shape_plus_one_form",
        "conv1x1_is_matmul", "correlation_is_flipped_convolution", "correlation_is_translation_equivariant",
    } <= symbolic  # fmt: skip


# --------------------------------------------------------------------------- each claim's mutated twin is rejected


def test_cross_correlation_is_not_commutative():
    result = c.check_commutative(c.sym_corr_full)
    assert not result.holds and "entry" in result.counterexample


def test_continuous_cross_correlation_is_not_commutative():
    result = c.check_continuous_commutative(c.continuous_correlation)
    assert not result.holds and result.counterexample["difference"] != "0"


def test_the_substitution_proof_finds_no_substitution_for_correlation():
    assert c._substitution_proof(c.continuous_convolution) == "z = -u + x"
    assert c._substitution_proof(c.continuous_correlation) is None


def test_an_op_with_a_lopsided_term_is_not_associative():
    def lopsided(f, g):  # f * g plus a term that depends on f alone
        return c.sym_conv_full(f, g) + c.sym_conv_full(f, sympy.ones(*g.shape))

    assert not c.check_associative(lopsided).holds


def test_composing_with_cross_correlation_is_rejected():
    result = c.check_composed_kernel(c.sym_corr_full)
    assert not result.holds and result.counterexample["k1"] * result.counterexample["k2"] > 1


@pytest.mark.parametrize("side", ["k1 + k2", "k1 * k2", "(k1 + k2 - 1)**2", "max(k1, k2)"])
def test_wrong_composed_kernel_sides_are_rejected(side):
    result = c.check_composed_kernel_side(side)
    assert not result.holds
    assert result.counterexample["side"] == result.counterexample["k1"] + result.counterexample["k2"] - 1


def test_side_formula_is_not_the_entry_count():
    result = c.check_composed_kernel_entries("k1 + k2 - 1")
    assert not result.holds and result.counterexample["entries"] == (
        result.counterexample["k1"] + result.counterexample["k2"] - 1
    ) ** 2


@pytest.mark.parametrize("formula", ["floor((n - k + p) / s)", "(n - k + p + s) / s", "floor((n - k + 2*p + s) / s)"])
def test_wrong_output_shape_formulas_disagree_with_pytorch(formula):
    result = c.check_formula_matches_pytorch(formula)
    assert not result.holds
    assert result.counterexample["pytorch"] != result.counterexample["formula_gives"]


def test_output_shape_identity_without_the_plus_one_is_rejected():
    result = c.check_formula_identity(c.OUTPUT_SHAPE_FORMULA, "floor((n - k + p) / s)")
    assert not result.holds and result.method == "exhaustive"


def test_transposed_kernel_is_not_a_1x1_convolution():
    assert not c.check_conv1x1_matmul(lambda K, X: K.T * X).holds


def test_flipping_one_axis_is_not_enough():
    assert not c.check_flipped_kernel(lambda K: c._flip(K, rows=True, cols=False)).holds


def test_unflipped_convolution_is_not_correlation():
    assert not c.check_flipped_kernel(lambda K: K).holds


def test_average_pooling_is_a_convolution_so_the_maxpool_argument_rejects_it():
    result = c.check_not_a_convolution(c._avg)
    assert not result.holds
    assert result.counterexample["linear"] is True
    assert result.counterexample["kernel_and_bias"] == ["1/2", "1/2", "0"]


def test_maxpool_counterexample_names_the_inputs():
    result = c.maxpool_is_not_a_convolution()
    assert "additivity fails" in result.detail and "no solution" in result.detail


def test_strided_correlation_is_not_translation_equivariant_for_odd_shifts():
    result = c.check_translation_equivariance(lambda X, K: c.sym_corr2d(X, K, stride=2), shifts=((1, 0),))
    assert not result.holds and result.counterexample["shift"] == (1, 0)


# --------------------------------------------------------------------------- equivalent()


@pytest.mark.parametrize("answer", ["k1+k2-1", "-1+k2+k1", "(k1+k2)-1", "k2 + (k1 - 1)", "floor(k1 + k2 - 1)", "2*k1 - k1 + k2 - 1"])
def test_equivalent_accepts_rewritings_of_the_composed_kernel_side(answer):
    result = c.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"])
    assert result.equivalent, result.reason


@pytest.mark.parametrize("answer", ["k1+k2", "(k1+k2-1)^2", "(k1+k2-1)**2", "k1*k2", "k1 + k2 + 1"])
def test_equivalent_rejects_wrong_formulas_with_a_counterexample(answer):
    result = c.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"])
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
    result = c.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"])
    assert not result.equivalent and result.method == "parse"
    assert reason in result.reason


def test_equivalent_refuses_non_strings():
    result = c.equivalent(3, "k1 + k2 - 1", ["k1", "k2"])
    assert not result.equivalent and "string" in result.reason


@pytest.mark.parametrize("answer", ["(n - k + p)//s + 1", "floor((n-k+p)/s) + 1", "ceiling((n - k + p + 1)/s)", "floor((n+p-k)/s+1)"])
def test_equivalent_accepts_output_shape_forms(answer):
    assert c.equivalent(answer, c.OUTPUT_SHAPE_FORMULA, "nkps", c.OUTPUT_SHAPE_DOMAIN).equivalent


def test_equivalent_falls_back_to_exhaustive_checking_and_says_so():
    result = c.equivalent("ceiling((n - k + p + 1)/s)", c.OUTPUT_SHAPE_FORMULA, "nkps", c.OUTPUT_SHAPE_DOMAIN)
    assert result.method == "exhaustive" and result.cases == 34_104


def test_equivalent_reports_the_first_differing_case_of_the_domain():
    result = c.equivalent("floor((n - k + p)/s)", c.OUTPUT_SHAPE_FORMULA, "nkps", c.OUTPUT_SHAPE_DOMAIN)
    assert result.counterexample == {"n": 1, "k": 1, "p": 0, "s": 1, "answer": "0", "expected": "1"}


def test_equivalent_decides_floor_identities_sympy_cannot_prove_by_exact_enumeration():
    # Hermite's identity: floor(k/3) + floor((k+1)/3) + floor((k+2)/3) == k.
    result = c.equivalent("floor(k1/3) + floor((k1+1)/3) + floor((k1+2)/3)", "k1", ["k1"], {"k1": range(0, 300)})
    assert result.equivalent and result.method == "exhaustive" and result.cases == 300


@given(a=st.integers(-3, 3), b=st.integers(-3, 3), const=st.integers(-3, 3))
def test_a_linear_form_is_equivalent_exactly_when_it_is_the_truth(a, b, const):
    answer = f"({a})*k1 + ({b})*k2 + ({const})"
    assert c.equivalent(answer, "k1 + k2 - 1", ["k1", "k2"]).equivalent == ((a, b, const) == (1, 1, -1))


def test_an_invalid_reference_formula_is_a_programming_error():
    with pytest.raises(ValueError, match="reference formula"):
        c.equivalent("k1", "k1 +", ["k1"])
