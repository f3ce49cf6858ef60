"""Hidden checks of HW2: the two exercises whose check is their answer.

A student's self-check runs the visible checks on the student's machine, so a check that compares with an answer
hands that answer over; these stay out of the student kit and the student-facing repository, and the self-check
reports them as not run (README: "What a course must hide itself").
"""

from __future__ import annotations

from grader.checks import Submission, answered, expect_equal, expect_formula
from reference import claims

# --------------------------------------------------------------------------- 7.3


def check_ex_output_shape(sub: Submission):
    taken = sub.values("output_shape")
    shape = answered(taken["shape"], "ANSWER_OUTPUT_SHAPE")
    answered(taken["formula"], "ANSWER_OUTPUT_SHAPE_FORMULA")
    shape = tuple(shape) if isinstance(shape, (list, tuple)) else shape
    expect_equal(shape, (2, 2), "ANSWER_OUTPUT_SHAPE for an 8x8 input, kernel (3, 5), padding (0, 1), stride (3, 4)")
    return expect_formula(taken["formula"], claims.OUTPUT_SHAPE_FORMULA, "nkps", claims.OUTPUT_SHAPE_DOMAIN, "ANSWER_OUTPUT_SHAPE_FORMULA")


# --------------------------------------------------------------------------- 7.4


def check_ex_composed_kernel(sub: Submission):
    formula = answered(sub.values("composed_kernel")["formula"], "ANSWER_COMPOSED_KERNEL")
    return expect_formula(formula, "k1 + k2 - 1", ["k1", "k2"], name="ANSWER_COMPOSED_KERNEL")
