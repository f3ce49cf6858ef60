"""Results and reports: the terminal, the HTML report and class summary, the gradebook, JUnit, a TA's manual points, safe text.

May import kernel and course (and ``grader.errors``/``grader.results``); used by run and integrations.
"""
