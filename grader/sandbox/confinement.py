"""Confining a submission's kernel: a bubblewrap sandbox and memory/process/disk limits.

Why: the kernel runs a stranger's code. The checks never trust what it
says (see ``bridge``), but without confinement it could still read the
grader's checks, write into other students' folders, reach the network,
or take the machine down with a fork bomb or a 200 GB allocation.

What is used depends on the machine, and the result records it
(``execution.isolation``):

* **bubblewrap** (``bwrap``), where installed and working: the kernel sees
  a read-only system (``/usr``, ``/etc``, Python), the kernel's data view
  read-only at ``/data`` (:mod:`grader.course.data_view`: the data set's files
  only, and only its share of the test split), and nothing else -- not the
  grader's source, the checks, the reference, other submissions, the
  reports, or what sits beside the data set. It has no network and its own
  PID namespace; it dies with the grader. See :class:`Confinement` for
  where it may write (everything capped) and how the grader reaches its
  sockets.
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

Here is :class:`Confinement`, which builds and removes all of it (what watches the running
sandbox is in :mod:`grader.sandbox.watch`, which it inherits); the limits are in
:mod:`grader.sandbox.limits`, the cgroup files in :mod:`grader.sandbox.cgroups`, bubblewrap's probe and options in
:mod:`grader.sandbox.bubblewrap` (the names other modules import from here are re-exported: ``__all__``).
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from grader.errors import EnvironmentProblem
from grader.sandbox import cgroups
from grader.sandbox.bubblewrap import (
    INSIDE_BLOBS,
    INSIDE_CONNECTION,
    INSIDE_DATA,
    INSIDE_KERNEL,
    bwrap_args,
    bwrap_path,
    turned_off_by_environment,
)
from grader.sandbox.cgroups import cgroups_turned_off_by_environment, own_cgroup
from grader.sandbox.cleanup import remove_cgroup
from grader.sandbox.limits import GiB, Limits, MiB, describe_bytes, machine_memory
from grader.sandbox.platform import REQUIRE_SANDBOX_VARIABLE, Platform, current, sandbox_required
from grader.sandbox.watch import SandboxWatch

__all__ = ["Confinement", "GiB", "Limits", "MiB", "bwrap_path", "describe_bytes", "machine_memory", "own_cgroup"]


@dataclass
class Confinement(SandboxWatch):
    """The sandbox and limits of one submission's kernel(s); ``close()`` leaves nothing running.

    **Where the kernel can write, and why everything is capped.** Measured on an earlier
    design: the IPC folder was a host folder bound into the sandbox, and the kernel's own
    stdout/stderr a host log file; a notebook wrote 3.76 GB into the host's TMPDIR through
    them although its tmpfs was capped. Three designs were weighed:

    (a) sockets and tensor files inside the sandbox's own size-capped tmpfs, reached by the
        grader through ``/proc/<sandbox pid>/root/...``;
    (b) the host folder kept, every file capped by ``RLIMIT_FSIZE``, and the grader polling
        the folder's total and killing the kernel past the cap;
    (c) something better.

    (a) is used. Its cap is the file system's own: a write past it fails in the kernel
    (``ENOSPC``), nothing reaches the host's disk, and no race is left open. Under (b) a
    kernel writes at disk speed between two polls (a gigabyte or more in half a second),
    ``RLIMIT_FSIZE`` caps files one at a time (a thousand files of 1 GiB each pass it), a
    bounded walk of the folder cannot see the total of a million small files, and the
    folder's path stays visible to the kernel. So inside the sandbox:

    * one tmpfs of ``limits.disk_bytes`` is mounted at ``/tmp``; the kernel's home and working
      directory (``/tmp/home``) and the IPC folder (``/tmp/.kernel``: ZeroMQ sockets, the
      connection file, ``blobs/`` for large tensors) are folders in it, so one number caps
      all the files the kernel writes; ``/dev/shm`` is a tmpfs of ``limits.shm_bytes``;
    * the sandbox's root and ``/dev`` are remounted read-only (bubblewrap makes them
      writable, uncapped tmpfs otherwise), and so are the empty folders laid over hidden paths;
    * the kernel's own stdout/stderr (fd 1 and 2 of the process: C-level output, and what
      ipykernel echoes of them) are a pipe the launcher (``grader.sandbox.launcher``, outside the
      sandbox) drains: it keeps the first ``launcher.KEPT_OUTPUT`` bytes in its log, counts the
      rest, and stops the kernel past ``limits.output_bytes``.

    The grader reaches the IPC folder through :attr:`kernel_dir`, a symbolic link it points at
    ``/proc/<pid>/root/tmp/.kernel`` of each new sandbox (:meth:`attach`; bubblewrap reports
    the pid with ``--info-fd``). A connection file for the kernel is copied into the sandbox
    by bubblewrap (``--file``): the grader's own stays in :attr:`launch_dir`, which the kernel
    never sees. When a cell ends with the tmpfs or ``/dev/shm`` full the kernel is stopped
    (:meth:`stop_if_over_limit`): a fresh sandbox, with room again, runs the rest, and
    :meth:`stop_reason` gives the result its sentence ("the kernel's files reached the 2 GiB
    disk limit ...; it was stopped", followed by the cell).

    What the kernel sees of the host: see :mod:`grader.sandbox.bubblewrap`, which builds its view.
    Without bubblewrap (or with it turned off) none of this exists: the kernel runs as the
    grader's user with ``RLIMIT_FSIZE`` on each file, the IPC folder is a host folder, and
    only the output cap and the data view still apply.
    """

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
    #: The kernel's data view (:func:`grader.course.data_view.build_data_view`): bound read-only at ``/data``,
    #: or given as it is without the sandbox. None: no data for the kernel.
    data: Path | None = None
    #: The running sandbox: its first process's pid and mount namespace (from bubblewrap's ``--info-fd``).
    _sandbox: tuple[int, int] | None = field(default=None, repr=False)
    _launches: int = field(default=0, repr=False)
    _stopped: str = field(default="", repr=False)
    #: ``O_PATH`` descriptors of the running kernel's sockets (see ``SandboxWatch.pin_sockets``).
    _pinned: list[int] = field(default_factory=list, repr=False)
    #: Set where this system has no sandbox, launcher or limits (:mod:`grader.sandbox.platform`): the kernel runs plainly.
    plain: Platform | None = None

    @classmethod
    def create(
        cls, workdir: Path, limits: Limits, readonly: list[Path], hidden: list[Path], sandbox: bool = True, data: Path | None = None
    ) -> Confinement:
        """The confinement of one submission's kernels, with the grader's folders for them made under ``workdir``.

        Where the system has no sandbox at all (Windows, macOS: :mod:`grader.sandbox.platform`) the kernel runs plainly,
        and the result says so; with ``GRADER_REQUIRE_SANDBOX=1`` that is refused here, before a kernel starts."""
        host = current()
        if host.plain:
            if sandbox_required():
                raise EnvironmentProblem(
                    f"{REQUIRE_SANDBOX_VARIABLE}=1, but {host.name} has no sandbox for the kernel (bubblewrap, cgroups, rlimits "
                    "are Linux's): nothing is graded unconfined"
                )
            confinement = cls(limits, workdir, readonly, hidden, None, turned_off=True, data=data, plain=host)
            confinement.launch_dir.mkdir(parents=True, exist_ok=True)
            confinement.home.mkdir(parents=True, exist_ok=True)
            confinement.blob_dir.mkdir(parents=True, exist_ok=True)
            return confinement
        turned_off = not sandbox or turned_off_by_environment()
        confinement = cls(limits, workdir, readonly, hidden, None if turned_off else bwrap_path(), turned_off=turned_off, data=data)
        confinement.launch_dir.mkdir(parents=True, exist_ok=True)
        confinement.home.mkdir(parents=True, exist_ok=True)
        if not confinement.bwrap:  # the kernel's IPC folder is a host folder; in the sandbox it is made there
            confinement.blob_dir.mkdir(parents=True, exist_ok=True)
        if not cgroups_turned_off_by_environment():
            confinement._join_cgroups(f"hwgrader-{uuid.uuid4().hex[:12]}")
        return confinement

    def _join_cgroups(self, name: str) -> None:
        """Cgroups with the limits: v1 (one per controller) where writable, else one in a v2 subtree.

        ``own_cgroup`` is this module's name for it, so that a test replacing ``grader.sandbox.confinement.own_cgroup`` is obeyed.
        """
        joined: dict[str, Path] | None = cgroups.join_v1(name, self.limits, own_cgroup)
        version = 1
        if not joined:
            joined, version = cgroups.join_v2(name, self.limits), 2
        if joined is not None:
            self.cgroups.update(joined)
            self.cgroup_version = version

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
        if self.plain is not None:
            return self.plain.isolation
        parts = [
            "bubblewrap sandbox (read-only system, no network, private /tmp)"
            if self.bwrap
            else f"no sandbox ({'turned off' if self.turned_off else 'bubblewrap not available'})"
        ]
        limits = self.limits
        if limits.memory_bytes:
            parts.append(f"memory {describe_bytes(limits.memory_bytes)} ({self.memory_mechanism})")
        if limits.processes:
            kind = f"cgroup v{self.cgroup_version} pids.max" if "pids" in self.cgroups else "RLIMIT_NPROC"
            parts.append(f"{limits.processes} processes ({kind})")
        if limits.disk_bytes:
            where = "tmpfs size: /tmp, home and IPC folder together" if self.bwrap else "file-size rlimit"
            parts.append(f"disk {describe_bytes(limits.disk_bytes)} ({where})")
        if limits.shm_bytes and self.bwrap:
            parts.append(f"/dev/shm {describe_bytes(limits.shm_bytes)}")
        if limits.output_bytes:
            parts.append(f"kernel output {describe_bytes(limits.output_bytes)} (then stopped)")
        if self.data is not None:
            parts.append("data: the Fashion-MNIST files only, half of the test split")
        return "; ".join(parts)

    # ------------------------------------------------------------------ the kernel's command

    @property
    def launch_dir(self) -> Path:
        """The grader's own files for each launch (connection files, bubblewrap's options, logs): never seen by the kernel."""
        return self.workdir / "launch"

    @property
    def kernel_dir(self) -> Path:
        """The grader's way to the kernel's IPC folder (sockets, ``blobs/``).

        In the sandbox, a symbolic link to ``/proc/<pid>/root/tmp/.kernel`` of the sandbox
        running now (made by :meth:`attach`; absent before the first launch); without it, a
        host folder the kernel writes to.
        """
        return self.workdir / ("kernel" if self.bwrap else ".kernel")

    @property
    def blob_dir(self) -> Path:
        """Where the grader reads the kernel's tensor files (``grader.kernel.protocol.read_blob``)."""
        return self.kernel_dir / "blobs"

    @property
    def kernel_blob_dir(self) -> str:
        """The same folder as the kernel names it (``_hwgrader.BLOBS``)."""
        return INSIDE_BLOBS if self.bwrap else str(self.blob_dir)

    @property
    def kernel_data_dir(self) -> str | None:
        """The data folder as the kernel names it (the budget's ``data_dir``): ``/data`` in the sandbox."""
        if self.data is None:
            return None
        return INSIDE_DATA if self.bwrap else str(self.data)

    @property
    def home(self) -> Path:
        """The launcher's working directory on the host; without the sandbox, the kernel's working directory and $HOME too."""
        return self.workdir / "home"

    def connection_file(self, launch: int) -> Path:
        """The grader's connection file for a launch: in :attr:`launch_dir`, where the kernel cannot write."""
        return self.launch_dir / f"connection-{launch}.json"

    def kernel_ip(self, launch: int) -> str:
        """The sockets' path prefix as the kernel binds them (``ipc`` transport); the grader connects through :attr:`kernel_dir`."""
        if self.plain is not None and not self.plain.ipc:
            return "127.0.0.1"  # TCP on the loopback interface: ZeroMQ picks the ports and writes them in the connection file
        return f"{INSIDE_KERNEL}/ipc-{launch}" if self.bwrap else str(self.kernel_dir / f"ipc-{launch}")

    @property
    def transport(self) -> str:
        """ZeroMQ's transport for the kernel's sockets: ``ipc`` (socket files in the kernel's folder) unless the system lacks it."""
        return self.plain.transport if self.plain is not None else "ipc"

    def log_file(self, launch: int) -> Path:
        """The launcher's log: its own messages, bubblewrap's, and the first bytes of the kernel's stdout/stderr."""
        return self.launch_dir / f"kernel-{launch}.log"

    def kernel_preamble(self) -> str:
        """Kernel code naming the IPC folder as the kernel sees it (the bridge was installed with the grader's path)."""
        return f"__import__('_hwgrader').BLOBS = {self.kernel_blob_dir!r}\n"

    def wrap(self, command: list[str], connection_file: str | None = None) -> list[str]:
        """``command`` (the kernel's launch) run through the launcher, inside the sandbox where there is one.

        ``connection_file``: the grader's connection file named in ``command``; in the sandbox
        the kernel is given a copy of it at ``/tmp/.kernel/connection.json`` instead.
        """
        self._launches += 1
        launch = self._launches
        if self.plain is not None:  # no launcher (it needs rlimits and prctl): the kernel's own command, its time limits kept by the client
            return command
        launcher = [sys.executable, "-m", "grader.sandbox.launcher", "--parent", str(os.getpid())]
        for folder in dict.fromkeys(self.cgroups.values()):  # v2: one folder holds both limits
            launcher += ["--cgroup", str(folder)]
        if "memory" not in self.cgroups and self.limits.memory_bytes:
            launcher += ["--rlimit-data", str(self.limits.memory_bytes)]  # not RLIMIT_AS: CUDA must be able to start
        if "pids" not in self.cgroups and self.limits.processes:
            launcher += ["--rlimit-nproc", str(self.limits.processes)]
        if not self.bwrap and self.limits.disk_bytes:
            launcher += ["--rlimit-fsize", str(self.limits.disk_bytes)]
        if self.limits.output_bytes:
            launcher += ["--output-limit", str(self.limits.output_bytes), "--stopped", str(self._stopped_file(launch))]
        if not self.bwrap:
            return [*launcher, "--", *command]
        options = self.launch_dir / f"bwrap-{launch}.args"
        options.write_bytes(b"".join(os.fsencode(a) + b"\0" for a in self._bwrap_args()))
        launcher += ["--bwrap", self.bwrap, "--bwrap-args", str(options), "--info", str(self._info_file(launch))]
        if connection_file is not None:
            launcher += ["--copy-in", connection_file, INSIDE_CONNECTION]
            given = {connection_file, os.path.realpath(connection_file)}
            command = [INSIDE_CONNECTION if part in given else part for part in command]
        return [*launcher, "--", *command]

    def _stopped_file(self, launch: int) -> Path:
        return self.launch_dir / f"stopped-{launch}"

    def _info_file(self, launch: int) -> Path:
        return self.launch_dir / f"info-{launch}.json"

    def _bwrap_args(self) -> list[str]:
        """bubblewrap's options for this confinement's kernel (:func:`grader.sandbox.bubblewrap.bwrap_args`)."""
        return bwrap_args(self.limits, self.readonly, self.hidden, self.data)

    # ------------------------------------------------------------------ the running sandbox: attach, stop_if_over_limit and
    # stop_reason are inherited from SandboxWatch (grader/sandbox/watch.py)

    # ------------------------------------------------------------------ after
    def oom_kills(self) -> int:
        """How often the memory cap was hit so far (kernel OOM kills in the cgroup)."""
        folder = self.cgroups.get("memory")
        return 0 if folder is None else cgroups.oom_kills(folder, self.cgroup_version)

    def close(self) -> None:
        """Kill what is left and remove the cgroups (nested ones too, deepest first); bounded in time, never raises."""
        self.unpin_sockets()
        try:
            cgroups.kill_all(set(self.cgroups.values()))  # forked children, daemons: nothing outlives grading
        except Exception:  # noqa: BLE001 -- removing the cgroups below kills what is in them too
            pass
        for folder in set(self.cgroups.values()):
            remove_cgroup(folder)
        self.cgroups.clear()
