"""Which device a kernel really has, and which failures are the grader's environment's, not the student's.

Why: a kernel asked to run on CUDA can silently end up on the CPU (an
address-space limit made ``torch.cuda.is_available()`` False inside every
packed kernel on a GPU server; every grade was wrong and every result said
``device: cuda``). So the grader asks the kernel, right after it starts and
before any of the notebook's cells run -- while the only code in it is the
grader's -- what torch can see, and records that beside the requested
device. A kernel that cannot use the CUDA it was given, or that loses it
mid-run for a reason that is the grader's (out of GPU memory under packing,
a driver failure), makes the notebook an ``environment_error``: nothing is
charged to the student, the report and terminal say what to change, and
the command's exit status is non-zero.
"""

from __future__ import annotations

import json
import re
from typing import Any

from grader.sandbox.confinement import describe_bytes

#: Printed before the probe's JSON line; the probe runs before the student's first cell, so its output is ours.
PROBE_PREFIX = "@@hwgrader-device:"

PROBE_CODE = f"""
def _hwgrader_probe():
    import json, torch
    info = {{"cuda": False, "count": 0, "name": "", "total_memory": 0, "torch": torch.__version__}}
    try:
        info["cuda"] = bool(torch.cuda.is_available())
        if info["cuda"]:
            props = torch.cuda.get_device_properties(0)
            info.update(count=torch.cuda.device_count(), name=props.name, total_memory=int(props.total_memory))
            torch.zeros(1, device="cuda").add_(1).item()  # a context really works, not only the driver's word
    except Exception as exc:
        info.update(cuda=False, error=f"{{type(exc).__name__}}: {{exc}}"[:500])
    print({PROBE_PREFIX!r} + json.dumps(info))

_hwgrader_probe()
del _hwgrader_probe
"""

PEAK_CODE = f"""
def _hwgrader_peak():
    import json, sys
    torch = sys.modules.get("torch")
    peak = int(torch.cuda.max_memory_reserved()) if torch is not None and torch.cuda.is_initialized() else 0
    print({PROBE_PREFIX!r} + json.dumps({{"gpu_memory_peak": peak}}))

_hwgrader_peak()
del _hwgrader_peak
"""


def parse_probe(stdout: str) -> dict[str, Any]:
    """The probe's JSON from a kernel's output (empty if it printed none)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(PROBE_PREFIX):
            try:
                data = json.loads(line[len(PROBE_PREFIX) :])
            except (ValueError, RecursionError):  # the peak is asked after the notebook's cells: any line may come
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def memory_fraction_code(share: float) -> str:
    """Kernel code capping this process's share of the GPU's memory (``--jobs-per-gpu``): packed kernels cannot
    take each other's memory through torch's allocator. It is a fairness cap, not a security boundary: the
    notebook could lift it, and would only risk its own run."""
    return f"import torch as _t\nif _t.cuda.is_available():\n    _t.cuda.set_per_process_memory_fraction({share:.4f})\ndel _t\n"


def describe(observed: dict[str, Any]) -> str:
    """The observed device in a few words, for the terminal and the report."""
    if not observed:
        return "not probed"
    if observed.get("cuda"):
        memory = f", {describe_bytes(int(observed['total_memory']))}" if observed.get("total_memory") else ""
        return f"CUDA: {observed.get('name') or 'a GPU'}{memory}"
    return "CPU only" + (f" (CUDA failed: {observed['error']})" if observed.get("error") else "")


#: Errors that say CUDA itself failed (the driver, the device, its memory), not the student's code.
#: A device-side assert ("CUDA error: device-side assert triggered") is the student's (a label out of
#: range) and is deliberately not here.
_CUDA_ENVIRONMENT = re.compile(
    r"CUDA out of memory|OutOfMemoryError|CUDA error: out of memory|CUDA driver|cudaErrorDevicesUnavailable|"
    r"busy or unavailable|no CUDA GPUs are available|CUDA error: (?:unknown error|initialization error|"
    r"an illegal memory access)|NVML|CUDA-capable device",
    re.I,
)


def is_cuda_environment_error(error: str) -> bool:
    """Whether a cell's error line (``Ename: evalue``) is CUDA failing, which under packing is the grader's doing."""
    return bool(_CUDA_ENVIRONMENT.search(error))


def unusable_cuda_message(observed: dict[str, Any]) -> str:
    """Why a kernel given CUDA cannot use it, and what the TA should change."""
    why = observed.get("error") or "torch.cuda.is_available() is False inside the kernel"
    return (
        f"CUDA was requested but the kernel cannot use it ({why}); nothing was charged to the student. "
        "Check that the kernel sees the GPU (CUDA_VISIBLE_DEVICES, the sandbox's /dev/nvidia*), raise "
        "--memory-limit or lower --jobs-per-gpu, then grade again -- or grade with --device cpu"
    )


def lost_cuda_message(cell: int, error: str, packed: int) -> str:
    """CUDA failed in a cell for a reason that is the environment's; what the TA should change."""
    fix = (
        f"lower --jobs-per-gpu (it was {packed}) or grade this notebook alone"
        if packed > 1
        else "grade it again alone on a GPU with more free memory, or with --device cpu"
    )
    return f"CUDA failed in cell {cell} ({error}); nothing was charged to the student: {fix}"
