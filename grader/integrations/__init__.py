"""Beside the reports: similarity across a class, Gradescope and the LMS gradebooks.

May import reports, checking, source and course (and ``grader.errors``/``grader.results``).
"""
