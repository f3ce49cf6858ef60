"""Hidden checks of the demo assignment: kept out of the student-facing repository."""

from __future__ import annotations

from hypothesis import strategies as st

from grader.checks import Submission, expect_tensor, property_check, tensors


def check_softmax_shift(sub: Submission):
    softmax = sub.function("softmax")
    cases = st.tuples(st.integers(1, 4), st.integers(1, 5)).flatmap(lambda s: tensors(s, -5, 5))

    def shift_invariant(X):
        expect_tensor(softmax(X + 7.0), softmax(X), "softmax(X + 7) compared with softmax(X)", atol=1e-5)

    property_check("softmax_shift", cases, shift_invariant, show=lambda X: X.tolist())
