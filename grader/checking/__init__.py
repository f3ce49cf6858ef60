"""Checking: what a check knows, the assertions it makes, the general checks, and a check's ending as a verdict.

May import kernel, sandbox, source and course (and ``grader.errors``/``grader.results``).
"""
