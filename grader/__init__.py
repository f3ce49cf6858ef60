"""The grader behind the ``grade`` command.

Today it offers ``grade claims`` (checks the exercise claims of
``reference.claims``); executing and grading notebooks is built on top of
``reference`` in ``grader`` modules of their own.
"""

__version__ = "0.1.0"
