"""Confining a submission's kernel: a bubblewrap sandbox and memory/process/disk limits.

Why: the kernel runs a stranger's code. The checks never trust what it
says (see ``bridge``), but without confinement it could still read the
grader's checks, write into other students' folders, reach the network,
or take the machine down with a fork bomb or a 200 GB allocation.

What is used depends on the machine, and the result records it
(``execution.isolation``):

* **bubblewrap** (``bwrap``), where installed and working: the kernel sees
  a read-only system (``/usr``, ``/etc``, Python), the data folder
  read-only, a private size-capped ``/tmp`` and working directory, and
  nothing else -- not the grader's source, the checks, the reference,
  other submissions or the reports. It has no network (its channels to
  the grader are IPC sockets in a folder bound in for that alone) and its
  own PID namespace; it dies with the grader.
* **cgroups**, where writable: a memory cap (the kernel alone is
  OOM-killed, and the report says the limit was hit) and a process cap (a
  fork bomb stops at it). Every process left in the cgroup is killed when
  the submission is done. cgroup v1 (``memory``/``pids`` controllers) is
  used where its folders are writable; otherwise cgroup v2 (``memory.max``,
  ``pids.max``) in a delegated subtree -- ``$GRADER_CGROUP_PARENT``, or this
  process's own v2 cgroup when it can hold children with both controllers.
* **rlimits** otherwise (or with ``GRADER_CGROUPS=0``, which tests and CI
  use to exercise this path on machines that have cgroups): memory is
  capped by the *data segment* (``RLIMIT_DATA``), not the address space.
  CUDA reserves tens of GiB of inaccessible address space when it starts;
  under an address-space cap (``RLIMIT_AS``) of 12 GiB
  ``torch.cuda.is_available()`` turns False inside the kernel and torch
  silently runs on the CPU. ``RLIMIT_DATA`` counts only memory that can be
  written (heap and private writable mappings), so CUDA starts and a real
  allocation over the cap still fails, with a ``MemoryError`` in the cell.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
GiB = 2**30


@dataclass
class Limits:
    """Per-kernel limits; ``None`` means no limit of that kind."""

    memory_bytes: int | None = None
    processes: int | None = 256
    disk_bytes: int | None = 2 * GiB

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
    return f"{n / GiB:.3g} GiB" if n >= GiB else f"{n / 2**20:.3g} MiB"


def turned_off_by_environment() -> bool:
    """``GRADER_NO_SANDBOX=1``: the one switch outside the command line, for runs that must reach the kernel from outside it."""
    return os.environ.get("GRADER_NO_SANDBOX") == "1"


def bwrap_path() -> str | None:
    """``bwrap`` if it is installed, not turned off, and can build a sandbox here (it needs namespaces)."""
    path = shutil.which("bwrap")
    if path is None or turned_off_by_environment():
        return None
    try:
        probe = subprocess.run([path, "--ro-bind", "/", "/", "--unshare-all", "--die-with-parent", "true"],
                               capture_output=True, timeout=20)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return None
    return path if probe.returncode == 0 else None


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


@dataclass
class Confinement:
    """The sandbox and limits of one submission's kernel(s); ``close()`` leaves nothing running."""

    limits: Limits
    workdir: Path
    readonly: list[Path] = field(default_factory=list)
    hidden: list[Path] = field(default_factory=list)
    bwrap: str | None = None
    cgroups: dict[str, Path] = field(default_factory=dict)
    #: The sandbox was turned off (``--no-sandbox`` or ``GRADER_NO_SANDBOX=1``), not missing.
    turned_off: bool = False
    #: 1 or 2: which cgroup hierarchy ``cgroups`` are in (0: none).
    cgroup_version: int = 0

    @classmethod
    def create(cls, workdir: Path, limits: Limits, readonly: list[Path], hidden: list[Path], sandbox: bool = True) -> Confinement:
        turned_off = not sandbox or turned_off_by_environment()
        confinement = cls(limits, workdir, readonly, hidden, None if turned_off else bwrap_path(), turned_off=turned_off)
        if not cgroups_turned_off_by_environment():
            name = f"hwgrader-{uuid.uuid4().hex[:12]}"
            confinement._join_cgroup_v1(name) or confinement._join_cgroup_v2(name)
        return confinement

    def _join_cgroup_v1(self, name: str) -> bool:
        """A cgroup per v1 controller (memory, pids) with the limits written; False if none could be made."""
        limits = self.limits
        for controller, settings in (
            ("memory", {"memory.limit_in_bytes": limits.memory_bytes, "memory.memsw.limit_in_bytes": limits.memory_bytes}),
            ("pids", {"pids.max": limits.processes}),
        ):  # fmt: skip
            parent = own_cgroup(controller)
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
                self.cgroups[controller] = folder
            except OSError:
                shutil.rmtree(folder, ignore_errors=True)
        if self.cgroups:
            self.cgroup_version = 1
        return bool(self.cgroups)

    def _join_cgroup_v2(self, name: str) -> bool:
        """One v2 cgroup holding both limits (``memory.max``, ``pids.max``); False where no delegated subtree allows it."""
        parent = cgroup2_parent()
        if parent is None:
            return False
        folder = parent / name
        settings = {"memory.max": self.limits.memory_bytes, "memory.swap.max": 0 if self.limits.memory_bytes else None,
                    "pids.max": self.limits.processes}  # fmt: skip
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
            return False
        if self.limits.memory_bytes:
            self.cgroups["memory"] = folder
        if self.limits.processes:
            self.cgroups["pids"] = folder
        self.cgroup_version = 2
        return True

    # ------------------------------------------------------------------ description

    @property
    def memory_mechanism(self) -> str:
        """What caps the kernel's memory, in words (empty: no cap)."""
        if not self.limits.memory_bytes:
            return ""
        if "memory" in self.cgroups:
            return "cgroup v2 memory.max" if self.cgroup_version == 2 else "cgroup v1 memory.limit_in_bytes"
        return "data-segment rlimit (RLIMIT_DATA)"

    @property
    def memory_killed_on_limit(self) -> bool:
        """Whether hitting the cap kills the kernel (a cgroup) or fails the allocation in the cell (an rlimit)."""
        return "memory" in self.cgroups

    @property
    def isolation(self) -> str:
        """One line for the result: what was in force for this submission."""
        parts = ["bubblewrap sandbox (read-only system, no network, private /tmp)" if self.bwrap
                 else f"no sandbox ({'turned off' if self.turned_off else 'bubblewrap not available'})"]  # fmt: skip
        limits = self.limits
        if limits.memory_bytes:
            parts.append(f"memory {describe_bytes(limits.memory_bytes)} ({self.memory_mechanism})")
        if limits.processes:
            kind = f"cgroup v{self.cgroup_version} pids.max" if "pids" in self.cgroups else "RLIMIT_NPROC"
            parts.append(f"{limits.processes} processes ({kind})")
        if limits.disk_bytes:
            parts.append(f"disk {describe_bytes(limits.disk_bytes)} ({'tmpfs size' if self.bwrap else 'file-size rlimit'})")
        return "; ".join(parts)

    # ------------------------------------------------------------------ the kernel's command

    @property
    def kernel_dir(self) -> Path:
        """Connection file and IPC sockets: the only folder the grader and the sandbox share."""
        return self.workdir / ".kernel"

    @property
    def home(self) -> Path:
        """The kernel's working directory and $HOME."""
        return self.workdir / "home"

    def wrap(self, command: list[str]) -> list[str]:
        """``command`` (the kernel's launch) run through the launcher, inside the sandbox where there is one."""
        launcher = [sys.executable, "-m", "grader.confine"]
        for folder in dict.fromkeys(self.cgroups.values()):  # v2: one folder holds both limits
            launcher += ["--cgroup", str(folder)]
        if "memory" not in self.cgroups and self.limits.memory_bytes:
            launcher += ["--rlimit-data", str(self.limits.memory_bytes)]  # not RLIMIT_AS: CUDA must be able to start
        if "pids" not in self.cgroups and self.limits.processes:
            launcher += ["--rlimit-nproc", str(self.limits.processes)]
        if not self.bwrap and self.limits.disk_bytes:
            launcher += ["--rlimit-fsize", str(self.limits.disk_bytes)]
        return [*launcher, "--", *(self._bwrap_args() if self.bwrap else []), *command]

    def _bwrap_args(self) -> list[str]:
        size = [] if not self.limits.disk_bytes else ["--size", str(self.limits.disk_bytes)]
        # The private /tmp first: anything bound below it (a venv or the data under /tmp) must go on top.
        args = [self.bwrap, "--die-with-parent", "--new-session", "--unshare-all", "--cap-drop", "ALL", *size, "--tmpfs", "/tmp"]
        tops = ("/usr", "/etc", "/opt")
        for top in tops:
            args += ["--ro-bind-try", top, top]
        for link in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
            if os.path.islink(link):
                args += ["--symlink", os.readlink(link), link]
            elif os.path.isdir(link):
                args += ["--ro-bind", link, link]
        bound = dict.fromkeys([Path(sys.prefix), Path(sys.base_prefix), *map(Path, self.readonly)])
        for folder in bound:
            real, given = folder.resolve(), Path(os.path.abspath(folder))
            args += ["--ro-bind-try", str(real), str(real)]
            if given != real:  # reached through a symlink (../shared -> ...): the kernel is given this path
                args += ["--ro-bind-try", str(real), str(given)]
        args += ["--ro-bind-try", "/sys", "/sys", "--proc", "/proc", "--dev", "/dev"]
        for device in sorted(glob.glob("/dev/nvidia*")):  # CUDA, when the machine has it
            args += ["--dev-bind", device, device]
        visible = [Path(top) for top in tops] + [p for folder in bound for p in (folder.resolve(), Path(os.path.abspath(folder)))]
        for path in self.hidden:  # the grader's own code, should any of it sit under a folder bound above
            if path.is_dir() and any(path.resolve().is_relative_to(v) or path.is_relative_to(v) for v in visible):
                args += ["--tmpfs", str(path)]
        args += ["--bind", str(self.kernel_dir), str(self.kernel_dir)]
        args += [*size, "--tmpfs", str(self.home), "--chdir", str(self.home)]
        args += ["--setenv", "HOME", str(self.home), "--setenv", "TMPDIR", "/tmp", "--unsetenv", "JPY_PARENT_PID"]
        return args

    # ------------------------------------------------------------------ after

    def oom_kills(self) -> int:
        """How often the memory cap was hit so far (kernel OOM kills in the cgroup)."""
        folder = self.cgroups.get("memory")
        if folder is None:
            return 0
        try:
            if self.cgroup_version == 2:
                events = dict(line.split() for line in (folder / "memory.events").read_text().splitlines() if line.strip())
                return int(events.get("oom_kill", 0))
            for line in (folder / "memory.oom_control").read_text().splitlines():
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
            return int((folder / "memory.failcnt").read_text().strip() != "0")
        except (OSError, ValueError):
            return 0

    def kill_all(self) -> None:
        """Kill every process in the cgroups (forked children, daemons) -- nothing outlives grading."""
        for _ in range(20):
            pids = set()
            for folder in set(self.cgroups.values()):
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

    def close(self) -> None:
        self.kill_all()
        for folder in set(self.cgroups.values()):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.1)
        self.cgroups.clear()
