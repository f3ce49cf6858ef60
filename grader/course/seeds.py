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
    it once (:func:`grader.checking.reference_cache.stored`), while a new run -- a student's self-check, a TA's regrade --
    draws new initial weights nobody could have prepared for. Kernels never see this variable: each is seeded
    with :func:`kernel_seed`, derived from it one way.
    """
    value = os.environ.get(RUN_SEED_VARIABLE, "")
    if not value.isdigit():
        value = str(secrets.randbits(31))
        os.environ[RUN_SEED_VARIABLE] = value
    return int(value)


#: PBKDF2 rounds between the run's seed and a kernel's: a notebook knows its kernel's seed and its own hash, and
#: must not be able to search the run's seed (31 bits) from them to predict the checks' initial weights.
_KERNEL_SEED_ROUNDS = 50_000


def kernel_seed(run_seed: int, sha256: str) -> int:
    """The seed of the kernel that runs the notebook whose file hashes to ``sha256``, in the run seeded ``run_seed``.

    The same file graded twice in one run (or in a rerun with ``GRADER_RUN_SEED``) gets the same seed, so the
    same outputs; two files of one batch get unrelated seeds. One-way and slow to invert (see ``_KERNEL_SEED_ROUNDS``).
    """
    import hashlib

    digest = hashlib.pbkdf2_hmac("sha256", str(run_seed).encode(), f"hw-grader kernel {sha256}".encode(), _KERNEL_SEED_ROUNDS)
    return int.from_bytes(digest[:4], "big") >> 1  # 31 bits: any RNG accepts it


def kernel_seed_code(seed: int) -> str:
    """Kernel code seeding Python's, NumPy's and torch's generators (CUDA's too) before the first cell;
    a library the kernel lacks is skipped. ``PYTHONHASHSEED`` is set in the kernel's environment."""
    return f"""
def _hwgrader_seed(seed):
    import random

    random.seed(seed)
    try:
        import numpy

        numpy.random.seed(seed)
    except Exception:
        pass
    try:
        import torch

        torch.manual_seed(seed)
    except Exception:
        pass

_hwgrader_seed({int(seed)})
del _hwgrader_seed
"""
