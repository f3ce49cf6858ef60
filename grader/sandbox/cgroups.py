"""The cgroup file system, read and written for one kernel's memory and process caps.

Why: a cgroup's memory cap kills the kernel alone (and the report can say the cap was hit), its
process cap stops a fork bomb, and every process left in it can be found and killed when the
submission is done. :class:`grader.sandbox.confinement.Confinement` decides which hierarchy it uses (v1 where
its folders are writable, else a delegated v2 subtree); these are the file-level pieces.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

from grader.sandbox.cleanup import remove_cgroup
from grader.sandbox.limits import Limits

CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroups_turned_off_by_environment() -> bool:
    """``GRADER_CGROUPS=0``: confine by rlimits even where cgroups are writable (the path CUDA machines without them take)."""
    return os.environ.get("GRADER_CGROUPS") == "0"


def own_cgroup(controller: str) -> Path | None:
    """The folder of this process's cgroup for a v1 ``controller``, if it is mounted and writable."""
    try:
        for line in Path("/proc/self/cgroup").read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controller in controllers.split(","):
                folder = CGROUP_ROOT / controller / path.lstrip("/")
                return folder if os.access(folder, os.W_OK) else None
    except OSError:
        pass
    return None


def cgroup2_mount() -> Path | None:
    """Where the unified (v2) hierarchy is mounted: ``/sys/fs/cgroup`` on pure v2, ``.../unified`` on hybrid machines."""
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            left, _, right = line.partition(" - ")
            if right.split(" ", 1)[0] == "cgroup2":
                return Path(left.split()[4])
    except (OSError, IndexError):
        pass
    return None


def cgroup2_parent() -> Path | None:
    """A v2 cgroup under which a kernel's cgroup with ``memory`` and ``pids`` can be made, if any.

    ``$GRADER_CGROUP_PARENT`` names one an administrator delegated (``mkdir
    /sys/fs/cgroup/grader; echo +memory +pids > .../cgroup.subtree_control;
    chown`` it to the grading user); otherwise this process's own v2 cgroup,
    when it is writable and already hands both controllers to its children
    (v2 forbids enabling them on a cgroup that holds processes itself).
    """
    configured = os.environ.get("GRADER_CGROUP_PARENT")
    if configured:
        folder = Path(configured)
    else:
        mount = cgroup2_mount()
        if mount is None:
            return None
        try:
            own = next(line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
        except (OSError, StopIteration):
            return None
        folder = mount / own.lstrip("/")
    try:
        enabled = (folder / "cgroup.subtree_control").read_text().split()
    except OSError:
        return None
    if not {"memory", "pids"} <= set(enabled) or not os.access(folder, os.W_OK):
        return None
    return folder


def join_v1(name: str, limits: Limits, parent_of: Callable[[str], Path | None] = own_cgroup) -> dict[str, Path]:
    """A cgroup per v1 controller (memory, pids) with the limits written, by controller; empty if none could be made.

    ``parent_of(controller)``: this process's writable cgroup folder for a controller (:func:`own_cgroup`).
    """
    joined: dict[str, Path] = {}
    for controller, settings in (
        ("memory", {"memory.limit_in_bytes": limits.memory_bytes, "memory.memsw.limit_in_bytes": limits.memory_bytes}),
        ("pids", {"pids.max": limits.processes}),
    ):
        parent = parent_of(controller)
        if parent is None or not any(settings.values()):
            continue
        folder = parent / name
        try:
            folder.mkdir()
            for key, value in settings.items():
                if value is not None and (folder / key).exists():
                    try:
                        (folder / key).write_text(str(value))
                    except OSError:
                        if key != "memory.memsw.limit_in_bytes":  # swap accounting is optional
                            raise
            joined[controller] = folder
        except OSError:
            remove_cgroup(folder, log=None)  # a cgroup's files cannot be unlinked: rmdir, nested ones first
    return joined


def join_v2(name: str, limits: Limits) -> dict[str, Path] | None:
    """One v2 cgroup holding both limits (``memory.max``, ``pids.max``), by controller; None where no delegated subtree allows it."""
    parent = cgroup2_parent()
    if parent is None:
        return None
    folder = parent / name
    settings = {"memory.max": limits.memory_bytes, "memory.swap.max": 0 if limits.memory_bytes else None, "pids.max": limits.processes}
    try:
        folder.mkdir()
        for key, value in settings.items():
            if value is None:
                continue
            try:
                (folder / key).write_text(str(value))
            except OSError:
                if key != "memory.swap.max":  # a machine without swap accounting has no such file
                    raise
    except OSError:
        try:
            folder.rmdir()
        except OSError:
            pass
        return None
    joined: dict[str, Path] = {}
    if limits.memory_bytes:
        joined["memory"] = folder
    if limits.processes:
        joined["pids"] = folder
    return joined


def oom_kills(folder: Path, version: int) -> int:
    """How often the memory cap of the cgroup at ``folder`` was hit so far (kernel OOM kills in it)."""
    try:
        if version == 2:
            events = dict(line.split() for line in (folder / "memory.events").read_text().splitlines() if line.strip())
            return int(events.get("oom_kill", 0))
        for line in (folder / "memory.oom_control").read_text().splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return int((folder / "memory.failcnt").read_text().strip() != "0")
    except (OSError, ValueError):
        return 0


def kill_all(folders: set[Path]) -> None:
    """Kill every process in the cgroups at ``folders`` (forked children, daemons), until none is left (bounded)."""
    for _ in range(20):
        pids: set[int] = set()
        for folder in folders:
            try:
                pids.update(int(p) for p in (folder / "cgroup.procs").read_text().split())
            except (OSError, ValueError):
                pass
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.05)
