"""Hidden checks of HW3: kept out of the student-facing repository (a student's self-check reports them as not run)."""

from __future__ import annotations

from grader.checks import Submission, same_function
from reference import models


def check_inception_unusual(sub: Submission):
    """Inception on shapes the notebook never shows: a 1x1 input, one channel per branch, a long thin image, and
    branches 2 and 3 of equal width (swapped, they would still have the right shape)."""
    details = {}
    for args, shape in (((1, (1, 1), (1, 1), 1), (3, 2, 1, 1)), ((3, (2, 4), (1, 4), 2), (2, 2, 3, 11))):
        details[f"Inception{args}"] = same_function(
            sub, "Inception", models.Inception(*args), shape, args=args, label=f"Inception{args} on a {shape} input"
        )
    return details
