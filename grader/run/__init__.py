"""Entry points: the command line, the API behind it, a run's plan, its grading processes (local or Dask), its output files.

May import every other subpackage of the grader (it is the top of the layers), and ``grader.errors``/``grader.results``.
"""
