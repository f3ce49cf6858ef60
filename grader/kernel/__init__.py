"""The kernel boundary: the kernel process and its channels, running cells, the kernel-side text, the wire format, ``Submission``.

May import sandbox, source and course (and ``grader.errors``/``grader.results``).
"""
