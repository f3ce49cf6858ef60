"""The seeds the checks draw their inputs and initial weights from (no torch here: the command line imports it)."""

from __future__ import annotations

import os
import secrets

#: Set by ``grade`` once per invocation and inherited by the grading processes of its batch.
RUN_SEED_VARIABLE = "GRADER_RUN_SEED"


def batch_seed() -> int:
    """The training checks' seed: drawn once per ``grade`` run, shared by every notebook of its batch.

    Why not per check: the reference is trained here from the same start as the student's model, and a
    VGG's training costs about half a minute of CPU; one seed per run lets the batch's processes train
    it once (:func:`grader.reference_cache.stored`), while a new run -- a student's self-check, a TA's regrade --
    draws new initial weights nobody could have prepared for. Kernels never see this variable.
    """
    value = os.environ.get(RUN_SEED_VARIABLE, "")
    if not value.isdigit():
        value = str(secrets.randbits(31))
        os.environ[RUN_SEED_VARIABLE] = value
    return int(value)
