"""The one place that knows what this operating system lacks: fork, rlimits, bubblewrap, cgroups, IPC sockets, ``O_`` flags.

Why one module: the confinement (:mod:`grader.sandbox.confinement`), the kernel's transport
(:mod:`grader.kernel.session`) and the clean room's per-request fork (``grader/kernel/room.py``) all depend on
Linux. A student's self-check on a Windows or macOS laptop needs none of them -- it grades the student's own
code, for the student -- so there the grader runs the kernel *plainly*: no sandbox, no launcher, no memory,
process or disk limits, the kernel reached over TCP on the loopback interface where ZeroMQ's ``ipc``
transport (AF_UNIX sockets) is missing, and the clean room answering each request without a fork. Time
limits still hold: they are enforced from the grader's side, by the kernel client (interrupts by message,
restarts). The result's ``execution.isolation`` and the report say so first: "self-check on Windows: no
isolation".

A TA's batch on Linux keeps the sandbox. ``GRADER_REQUIRE_SANDBOX=1`` (CI sets it) refuses plain mode: the
grading is stopped as an environment problem rather than run unconfined.

``GRADER_SIMULATE_PLATFORM=Windows`` (or ``macOS``) makes Linux behave as that system does here: a
simulation for the tests (tests/test_platform.py), which can only run on Linux in this project's CI. It
changes nothing else of the machine: the simulated branch is the code that runs on the real system.
"""

from __future__ import annotations

import os
import platform as _platform
import sys
import tempfile
from dataclasses import dataclass

#: The environment variable that simulates another system (tests only): ``Windows``, ``macOS``.
SIMULATE_VARIABLE = "GRADER_SIMULATE_PLATFORM"
#: The environment variable under which running without the sandbox is refused.
REQUIRE_SANDBOX_VARIABLE = "GRADER_REQUIRE_SANDBOX"
#: The longest path a Unix socket may have (``sun_path`` holds 108 bytes on Linux, its NUL included).
SOCKET_PATH_LIMIT = 107
#: What the grader adds below its scratch folder on the way to a kernel's socket
#: (``hwgrader-XXXXXXXX/room/launch/sockets-1/k-4`` is 44 bytes), with room to spare.
SOCKET_PATH_BELOW = 56
#: Short temporary folders a scratch folder may move to when the system's own is too deep for a socket below it.
SHORT_TEMPORARY_FOLDERS = ("/tmp", "/var/tmp", "/dev/shm")


@dataclass(frozen=True)
class Platform:
    """What this system offers the grader (each field: whether it is there and usable)."""

    #: The system's name as a student knows it: ``Linux``, ``Windows``, ``macOS``, else ``platform.system()``.
    name: str
    #: ``os.fork`` is safe to use after importing torch (not on macOS, where forking a process that loaded
    #: system frameworks may crash, nor on Windows, which has none).
    fork: bool
    #: The ``resource`` module (rlimits), and ``prctl`` for the launcher's death signal: Linux.
    launcher: bool
    #: bubblewrap and cgroups can exist at all (both are Linux's).
    sandbox: bool
    #: ZeroMQ's ``ipc`` transport (AF_UNIX sockets by path); otherwise TCP on 127.0.0.1. Not on Windows (none), nor on
    #: macOS, where a socket's path may hold 104 bytes and its temporary folder's paths come close to that.
    ipc: bool
    #: Files reached relative to a folder's descriptor (``dir_fd``): not on Windows, where the kernel's folder and the
    #: grader's temporary folders are reached by path (they are the student's own, on the student's own machine).
    descriptors: bool = True
    #: Set by :data:`SIMULATE_VARIABLE`: a Linux machine behaving as ``name`` for a test.
    simulated: bool = False

    @property
    def plain(self) -> bool:
        """The kernel runs without sandbox, launcher or limits (other than time): a self-check, said so loudly."""
        return not (self.launcher and self.sandbox)

    @property
    def transport(self) -> str:
        return "ipc" if self.ipc else "tcp"

    @property
    def isolation(self) -> str:
        """The sentence a result and a report start with in plain mode."""
        simulated = f" (simulated on {system_name(_platform.system())})" if self.simulated else ""
        shared = "" if self.fork else "; the clean room answered every request in one process (no fork)"
        return (
            f"self-check on {self.name}{simulated}: no isolation -- the kernel ran as you, without sandbox or memory, "
            f"process and disk limits (time limits still apply){shared}; a TA's grading on Linux runs it confined"
        )


def system_name(system: str) -> str:
    """A system as a student knows it: ``platform.system()``'s ``Darwin`` is macOS."""
    return {"Darwin": "macOS", "Windows": "Windows", "Linux": "Linux"}.get(system, system or "an unknown system")


def _detect(system: str) -> Platform:
    linux = system == "Linux"
    return Platform(
        name=system_name(system),
        fork=hasattr(os, "fork") and system not in ("Darwin", "Windows"),
        launcher=linux and _has_resource(),
        sandbox=linux,
        ipc=system not in ("Windows", "Darwin") and sys.platform != "win32",
        descriptors=system != "Windows" and os.open in os.supports_dir_fd and os.unlink in os.supports_dir_fd,
    )


def _has_resource() -> bool:
    try:
        import resource  # noqa: F401 -- only whether it exists
    except ImportError:
        return False
    return True


def current() -> Platform:
    """This system, or the one :data:`SIMULATE_VARIABLE` names (then every feature it lacks is treated as missing)."""
    simulated = os.environ.get(SIMULATE_VARIABLE, "").strip()
    if simulated:
        system = {"windows": "Windows", "macos": "Darwin", "darwin": "Darwin"}.get(simulated.lower(), simulated)
        real = _detect(_platform.system())
        pretend = _detect(system)
        # A feature the real system lacks stays missing: a simulation only takes features away.
        return Platform(
            name=pretend.name,
            fork=pretend.fork and real.fork,
            launcher=pretend.launcher and real.launcher,
            sandbox=pretend.sandbox and real.sandbox,
            ipc=pretend.ipc and real.ipc,
            descriptors=pretend.descriptors and real.descriptors,
            simulated=True,
        )
    return _detect(_platform.system())


def scratch_root() -> str:
    """The folder the grader's working folders are made in: the system's temporary folder, unless it is so deep
    that a kernel's socket below it would pass a Unix socket's path limit -- then a short one beside it.

    Why: ZeroMQ refuses such a path ("File name too long") and the notebook is then a grader failure, not graded.
    A deep ``TMPDIR`` is common where it matters least to the student: a test's temporary folder, a Jupyter
    server's or a cluster job's (each gets a folder of its own below the system's).
    """
    base = tempfile.gettempdir()
    if not current().ipc or len(os.fsencode(base)) + SOCKET_PATH_BELOW <= SOCKET_PATH_LIMIT:
        return base
    for folder in SHORT_TEMPORARY_FOLDERS:
        if os.path.isdir(folder) and os.access(folder, os.W_OK | os.X_OK):
            return folder
    return base  # none writable: the kernel's start then says why, as a grader failure


def sandbox_required() -> bool:
    """``GRADER_REQUIRE_SANDBOX=1``: plain mode is refused (CI, and a TA who wants to be sure)."""
    return os.environ.get(REQUIRE_SANDBOX_VARIABLE) == "1"


def open_flag(name: str) -> int:
    """``os.O_<name>``, or 0 where this system has none (Windows lacks ``O_NOFOLLOW``, ``O_DIRECTORY``, ``O_CLOEXEC``...)."""
    value = getattr(os, name, 0)
    return value if isinstance(value, int) else 0
