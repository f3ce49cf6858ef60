"""Gradescope: the autograder bundle (``grade gradescope NAME -o autograder.zip``) and ``results.json``.

Gradescope's autograder specification (gradescope-autograders.readthedocs.io, "Autograder
Specifications"): a zip with ``setup.sh`` and ``run_autograder`` at its root; the zip is unpacked into
``/autograder/source``, ``setup.sh`` runs once, as root, when Gradescope builds the image (Ubuntu), and
``run_autograder`` runs for every submission with the student's files in ``/autograder/submission``
and must leave ``/autograder/results/results.json``. Only that file reaches Gradescope (the script's
stdout is kept for instructors), so every piece of evidence a student needs is written into it as text:
the spec has no way to attach a file, and the HTML report stays in the container.

The two halves live apart, since one runs on the instructor's machine and the other inside Gradescope's:

* ``grader/integrations/gradescope_bundle.py`` -- the zip: ``setup.sh``, ``run_autograder``, the grader's source,
  the assignment's folder and optionally Fashion-MNIST (:func:`build_bundle`, :class:`BundleError`).
* ``grader/integrations/gradescope_results.py`` -- ``results.json`` from one :class:`~grader.results.GradeResult`
  (:func:`results_json`, :func:`write_results_json`), validated by the tests against
  ``grader/integrations/schemas/gradescope-results.schema.json``.

This module re-exports both, so ``from grader.integrations.gradescope import ...`` keeps working for callers.
"""

from __future__ import annotations

from grader.integrations.gradescope_bundle import (
    CPU_INDEX,
    DEFAULT_TIMEOUT,
    PYTHON,
    RAW_FILES,
    TORCH,
    TORCHVISION,
    Bundle,
    BundleError,
    build_bundle,
    run_script,
    setup_script,
)
from grader.integrations.gradescope_results import (
    OUTPUT_LIMIT,
    REPORT_NOTE,
    SCHEMA_PATH,
    question_output,
    results_json,
    top_level_output,
    write_results_json,
)

__all__ = [
    "CPU_INDEX",
    "DEFAULT_TIMEOUT",
    "OUTPUT_LIMIT",
    "PYTHON",
    "RAW_FILES",
    "REPORT_NOTE",
    "SCHEMA_PATH",
    "TORCH",
    "TORCHVISION",
    "Bundle",
    "BundleError",
    "build_bundle",
    "question_output",
    "results_json",
    "run_script",
    "setup_script",
    "top_level_output",
    "write_results_json",
]
