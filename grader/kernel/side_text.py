"""The kernel-side module's text, as the grader sends it to each kernel.

``grader/kernel/side.py`` and the files after it in :data:`KERNEL_FILES` are never imported by the grader: they are
read here as text and executed in the student's kernel as the module ``_hwgrader`` (see
``grader.kernel.submission.install_code``). Kept in one place so the files that make it up are listed once.
"""

from __future__ import annotations

from pathlib import Path

#: The kernel-side files, concatenated in this order into one module's source (protocol and encoding,
#: snapshots, operations, the clean room; ``OPS`` in the last is read by ``request`` in the first only when called).
KERNEL_FILES = ("side.py", "snapshots.py", "ops.py", "room.py")

KERNEL_SOURCE = "\n".join((Path(__file__).with_name(name)).read_text(encoding="utf-8") for name in KERNEL_FILES)
