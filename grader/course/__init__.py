"""Course material: an assignment folder and its options, the template, thresholds and budgets, the data and the seeds.

Imports nothing of the grader but ``grader.errors`` and ``grader.results``.
"""
