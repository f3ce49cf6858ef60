"""Reference implementations of HW2's ops and models, its exercise claims, and the formula engine.

Plain PyTorch and sympy, no d2l: every verdict the grader gives compares a
student's value with a value from here, so this package is proven against
PyTorch's own kernels and the book's published figures in ``tests/``.

``ops`` and ``models`` are the reference computations; ``claims`` checks the
exercise claims; ``formulas`` reads and judges a student's formula answer
(``claims`` re-exports its names).
"""
