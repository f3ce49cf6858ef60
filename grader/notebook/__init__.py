"""Grading one notebook: load -> neutralize -> execute -> check -> result (``pipeline``), and the code run after each cell.

May import checking, kernel, sandbox, source and course (and ``grader.errors``/``grader.results``); nothing of run, reports, integrations.
"""
