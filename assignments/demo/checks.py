"""Checks of the demo assignment: property tests against PyTorch's own functions."""

from __future__ import annotations

import torch
from hypothesis import strategies as st

from grader.checks import Submission, expect_tensor, property_check, tensors

matrices = st.tuples(st.integers(1, 5), st.integers(1, 6)).flatmap(lambda shape: tensors(shape, -20, 20))


def check_relu(sub: Submission):
    relu = sub.function("relu")
    property_check(
        "relu", matrices, lambda X: expect_tensor(relu(X), torch.relu(X), f"relu(X {tuple(X.shape)})"), show=lambda X: X.tolist()
    )


def check_softmax(sub: Submission):
    softmax = sub.function("softmax")
    property_check(
        "softmax",
        matrices,
        lambda X: expect_tensor(softmax(X), torch.softmax(X, dim=1), f"softmax(X {tuple(X.shape)})"),
        show=lambda X: X.tolist(),
    )
    large = torch.tensor([[1000.0, 1001.0], [-1000.0, -1002.0]])
    expect_tensor(softmax(large), torch.softmax(large, dim=1), "softmax of large logits (subtract the row maximum first)")
