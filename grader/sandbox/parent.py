"""A process that dies with its parent: the kernel's launcher with its grading process, a grading process with the
batch or Dask worker that started it.

Why: a parent stopped for good -- ``SIGKILL``, a Dask worker closed on Ctrl-C, a SLURM job cancelled -- runs no code
of the grader's to stop its children, and a child left running on holds a CPU, a GPU and a kernel for nobody (up to
``grader.run.job.process_limit``) and writes into folders its parent already removed. Linux signals a process whose
parent has died if it asked (``PR_SET_PDEATHSIG``); elsewhere (macOS, Windows: a student's own self-check) there is
nothing to ask, and nothing is pretended.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

#: prctl(2)'s option: the signal this process gets when its parent dies.
PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int | None = None, parent: int | None = None) -> bool:
    """Ask for ``sig`` (default ``SIGKILL``) when this process's parent dies; False if ``parent`` is no longer its
    parent (the one that started it had died before the request could count). Where Linux's prctl is not, True.
    """
    if not sys.platform.startswith("linux"):
        return True
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL if sig is None else sig), 0, 0, 0)
    except (OSError, AttributeError):
        return True
    return parent is None or os.getppid() == parent
