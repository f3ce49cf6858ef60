"""Whether a run may use CUDA, and how many kernels one GPU can hold (``--device cuda``, ``--jobs-per-gpu``)."""

from __future__ import annotations

import sys

from grader.errors import ConfigError
from grader.run import batch
from grader.sandbox.confinement import GiB

#: What each kernel's CUDA context takes beside torch's allocator (not in a measured peak).
CUDA_CONTEXT_GIB = 0.5


def require_cuda() -> None:
    """``--device cuda`` where torch sees no usable GPU is a usage error, before any kernel starts."""
    import torch

    if not torch.cuda.is_available():
        build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ConfigError(
            f"--device cuda, but torch {torch.__version__} ({build}) sees no usable CUDA device here; "
            "grade with --device cpu (the quick budget) or on a machine with a GPU"
        )


def admitted_per_gpu(requested: int, jobs: list[batch.Job], quiet: bool) -> int:
    """``--jobs-per-gpu N``, lowered where N kernels at the assignment's measured GPU peak would not fit the GPU.

    The peak is ``gpu_memory_peak_gib`` under ``[budgets.full]`` (``grade calibrate`` records it from the
    solution's full runs); without one N is taken as asked, each kernel still held to 1/N of the memory.
    """
    peaks = [float(j.assignment.budgets.get("full", {}).get("gpu_memory_peak_gib", 0) or 0) for j in jobs]
    peak = max(peaks, default=0.0)
    if requested <= 1 or peak <= 0:
        return max(1, requested)
    import torch

    total = min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())) / GiB
    need = peak + CUDA_CONTEXT_GIB
    fits = max(1, int(0.95 * total // need))
    if fits < requested and not quiet:
        print(
            f"grade: --jobs-per-gpu {requested} would oversubscribe the GPU ({requested} x ({peak:.1f} GiB measured peak "
            f"+ {CUDA_CONTEXT_GIB} GiB CUDA context) > 95% of {total:.0f} GiB); packing {fits} per GPU",
            file=sys.stderr,
        )
    return min(requested, fits)
