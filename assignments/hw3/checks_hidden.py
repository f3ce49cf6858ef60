"""Hidden checks of HW3: kept out of the student-facing repository and the student kit (a student's self-check
reports them as not run).

Two kinds: a check on shapes the notebook never shows (a student who saw it would code to it), and the two 8.7
exercises whose check is their answer -- a self-check runs the visible checks on the student's machine, so a check
that compares with a formula hands that formula over (README: "What a course must hide itself").
"""

from __future__ import annotations

from grader.checks import Submission, answered, expect_formula, same_function
from reference import densenet_claims, models


def check_inception_unusual(sub: Submission):
    """Inception on shapes the notebook never shows: a 1x1 input, one channel per branch, a long thin image, and
    branches 2 and 3 of equal width (swapped, they would still have the right shape)."""
    details = {}
    for args, shape in (((1, (1, 1), (1, 1), 1), (3, 2, 1, 1)), ((3, (2, 4), (1, 4), 2), (2, 2, 3, 11))):
        details[f"Inception{args}"] = same_function(
            sub, "Inception", models.Inception(*args), shape, args=args, label=f"Inception{args} on a {shape} input"
        )
    return details


# --------------------------------------------------------------------------- 8.7 exercises


def _formula(sub: Submission, key: str, name: str, truth: str, symbols: tuple[str, ...], domain) -> dict:
    formula = answered(sub.values(key)["formula"], name)
    return expect_formula(formula, truth, symbols, domain, name)


def check_ex_dense_block_params(sub: Submission):
    return _formula(
        sub,
        "dense_block_params",
        "ANSWER_DENSE_BLOCK_PARAMS",
        densenet_claims.DENSE_BLOCK_PARAMS_FORMULA,
        ("c", "g", "m"),
        densenet_claims.DENSE_BLOCK_PARAMS_DOMAIN,
    )


def check_ex_densenet_side(sub: Submission):
    return _formula(
        sub, "densenet_side", "ANSWER_DENSENET_SIDE", densenet_claims.DENSENET_SIDE_FORMULA, ("n",), densenet_claims.DENSENET_SIDE_DOMAIN
    )
