"""A notebook's source, read from its file (never asked of the kernel): loading, neutralized lines, what it
defines, the clean room's statements.

Imports nothing of the grader but ``grader.errors`` and ``grader.results``.
"""
