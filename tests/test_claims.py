"""Every exercise claim holds and every mutated twin is rejected (the formula engine: ``tests/test_formulas.py``)."""

from __future__ import annotations

import pytest
import sympy

from reference import claims as c
from reference import formulas

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
        "convolution_is_commutative",
        "continuous_convolution_is_commutative",
        "convolution_is_associative",
        "two_kernels_compose_into_one",
        "composed_kernel_side",
        "output_shape_plus_one_form",
        "conv1x1_is_matmul",
        "correlation_is_flipped_convolution",
        "correlation_is_translation_equivariant",
    } <= symbolic


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
    assert not result.holds and result.counterexample["entries"] == (result.counterexample["k1"] + result.counterexample["k2"] - 1) ** 2


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


# --------------------------------------------------------------------------- one vocabulary for checks


@pytest.mark.parametrize("name", formulas.__all__)
def test_claims_re_exports_the_formula_engine_for_check_authors(name):
    # assignments/*/checks.py write claims.equivalent(answer, claims.OUTPUT_SHAPE_FORMULA, ...).
    assert getattr(c, name) is getattr(formulas, name)
