"""Reference implementations of HW2's ops and models, and its exercise claims.

Plain PyTorch and sympy, no d2l: every verdict the grader gives compares a
student's value with a value from here, so this package is proven against
PyTorch's own kernels and the book's published figures in ``tests/``.
"""
