"""The kernel's confinement: bubblewrap, cgroups, limits, the launcher, the running sandbox's watch, its folders and their cleanup.

Imports nothing of the grader but ``grader.errors`` and ``grader.results``: the bottom of the kernel's layers.
"""
