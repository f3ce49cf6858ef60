"""The grader behind the ``grade`` command: load → execute → check → report.

``grade NOTEBOOK|FOLDER`` grades submissions, ``grade check-assignment`` proves
an assignment sound, ``grade assign`` makes a template from a solution and
``grade claims`` checks the exercise claims of ``reference.claims``.
"""

import sys

#: The project's version, written here only: pyproject.toml reads it (``dynamic = ["version"]``,
#: statically, without importing the package), and it is part of every cache key, so a bump
#: regrades every stored result. A literal string, so setuptools can read it from the source.
__version__ = "0.1.0"

# nbformat validates with jsonschema, which imports ``rfc3987_syntax`` when it is
# installed (jupyter-events pulls it in) and that compiles a Lark grammar at import:
# 2.7 s of CPU in every grading process, half a cached regrade
# (python-jsonschema/jsonschema#1428). nbformat's schemas use no ``iri`` format, so
# validation is unchanged without it; jsonschema treats the import as unavailable.
sys.modules.setdefault("rfc3987_syntax", None)
