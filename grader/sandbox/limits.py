"""How much of the machine one submission's kernel may take: memory, processes, disk, shared memory, output.

Why apart from the sandbox (:mod:`grader.sandbox.confinement`): the batch and the command line size the
limits (a share of the machine's memory per job) without building any confinement.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

GiB = 2**30
MiB = 2**20


@dataclass
class Limits:
    """Per-kernel limits; ``None`` means no limit of that kind."""

    memory_bytes: int | None = None
    processes: int | None = 256
    #: Every file the kernel writes: /tmp, its home and the IPC folder share one tmpfs of this size
    #: (without the sandbox: the largest file, ``RLIMIT_FSIZE``).
    disk_bytes: int | None = 2 * GiB
    #: ``/dev/shm``, where DataLoader workers hand batches over: a tmpfs of its own.
    shm_bytes: int | None = GiB
    #: The kernel's own stdout/stderr (C-level output; what ipykernel echoes of fd 1/2): past this the
    #: kernel is stopped. Only the first ``launcher.KEPT_OUTPUT`` bytes are kept, in the launcher's log.
    output_bytes: int | None = 64 * MiB

    @staticmethod
    def default(jobs: int = 1) -> Limits:
        """A share of the machine's memory per job (at least 6 GiB: VGG/ResNet training needs it)."""
        share = int(machine_memory() * 0.8) // max(1, jobs)
        return Limits(memory_bytes=max(6 * GiB, share))


def machine_memory() -> int:
    """The machine's physical memory in bytes (8 GiB where the system will not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 8 * GiB


def describe_bytes(n: int) -> str:
    """A size for a sentence: GiB from one GiB up, MiB below (three significant digits)."""
    return f"{n / GiB:.3g} GiB" if n >= GiB else f"{n / 2**20:.3g} MiB"
