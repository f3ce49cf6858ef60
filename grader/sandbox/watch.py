"""Watching a submission's running sandbox: finding it once launched, stopping it when its disk is full, saying why.

Why apart from :mod:`grader.sandbox.confinement`: that module builds the confinement (cgroups, the
launcher's command line, bubblewrap's options) and tears it down; what is here runs while
the kernel does -- :meth:`SandboxWatch.attach` after each launch,
:meth:`SandboxWatch.stop_if_over_limit` after each cell, :meth:`SandboxWatch.stop_reason`
when the kernel died -- and reaches the running sandbox by its pid. :class:`grader.sandbox.confinement.Confinement`
inherits these methods; the reasons for the design are in its docstring.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from grader.errors import BridgeError
from grader.sandbox.bubblewrap import INSIDE_BLOBS, INSIDE_KERNEL, INSIDE_SHM, INSIDE_TMP, read_info
from grader.sandbox.files import BlobFolder, open_folder, pin_socket
from grader.sandbox.limits import Limits, MiB, describe_bytes
from grader.sandbox.platform import current

#: Free space below which a tmpfs counts as full when a cell ends (the kernel is then stopped).
FULL_MARGIN = MiB


class SandboxWatch:
    """The methods of :class:`grader.sandbox.confinement.Confinement` that act on the sandbox running now."""

    if TYPE_CHECKING:  # what Confinement provides (its fields and its launch files' names)
        limits: Limits
        workdir: Path
        bwrap: str | None
        _sandbox: tuple[int, int] | None
        _launches: int
        _stopped: str
        _pinned: list[int]

        @property
        def kernel_dir(self) -> Path: ...

        @property
        def blob_dir(self) -> Path: ...

        def _info_file(self, launch: int) -> Path: ...

        def _stopped_file(self, launch: int) -> Path: ...

    async def attach(self, launcher_alive: Callable[[], bool], timeout: float = 20.0) -> bool:
        """Point :attr:`kernel_dir` at the IPC folder of the sandbox just launched; False if it never started.

        bubblewrap writes its first process's pid to the info file (``--info-fd``) once the
        namespaces exist; the link is replaced atomically, so it never points at the previous,
        dead sandbox (whose pid may already belong to another process).
        """
        if not self.bwrap:
            return True
        info_file = self._info_file(self._launches)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = read_info(info_file)
            if info is not None:
                pid, _ = info
                self._sandbox = info
                link = self.workdir / f".kernel-link-{self._launches}"
                link.unlink(missing_ok=True)
                link.symlink_to(f"/proc/{pid}/root{INSIDE_KERNEL}")
                os.replace(link, self.kernel_dir)
                return True
            if not launcher_alive():
                return False
            await asyncio.sleep(0.02)
        return False

    async def pin_sockets(self, prefix: str, ports: list[int], launcher_alive: Callable[[], bool], timeout: float = 60.0) -> str | None:
        """The kernel's sockets ``<prefix>-<port>`` pinned by descriptor: the ``ip`` prefix the grader connects through.

        ZeroMQ connects (and reconnects, after a refused message or a dropped connection) by path.
        Through ``/proc/<pid>/root/tmp/.kernel/...`` that path is the kernel's to redirect: a socket
        replaced by a link to ``/run/...`` would be resolved on the host. So once the kernel has bound
        its sockets (before any cell of the notebook runs) each is opened as an ``O_PATH`` descriptor,
        and the grader connects through links of its own, in :attr:`launch_dir` (which the kernel never
        sees), to ``/proc/self/fd/N``: that very inode, whatever is later put at its name. None when the
        sockets never appeared (the kernel did not start).
        """
        pid = self._sandbox_pid()
        if pid is None:
            return None
        self.unpin_sockets()
        deadline = time.monotonic() + timeout
        pinned: dict[int, int] = {}
        folder = None
        while time.monotonic() < deadline and launcher_alive():
            if folder is None:
                try:
                    folder = open_folder(f"/proc/{pid}/root", tuple(INSIDE_KERNEL.strip("/").split("/")))
                except OSError:
                    await asyncio.sleep(0.02)  # the sandbox is still being set up
                    continue
            for port in ports:
                if port not in pinned:
                    fd = pin_socket(folder, f"{prefix}-{port}")
                    if fd is not None:
                        pinned[port] = fd
            if len(pinned) == len(ports):
                break
            await asyncio.sleep(0.02)
        if folder is not None:
            os.close(folder)
        self._pinned.extend(pinned.values())
        if len(pinned) != len(ports) or self._sandbox_pid() != pid:
            self.unpin_sockets()
            return None
        links = self.workdir / "launch" / f"sockets-{self._launches}"
        links.mkdir(parents=True, exist_ok=True)
        for port, fd in pinned.items():
            (links / f"k-{port}").symlink_to(f"/proc/self/fd/{fd}")
        return str(links / "k")

    def unpin_sockets(self) -> None:
        """Close the descriptors of the previous sandbox's sockets (its kernel is gone)."""
        while self._pinned:
            try:
                os.close(self._pinned.pop())
            except OSError:
                pass

    def open_blob_folder(self) -> BlobFolder:
        """The kernel's tensor-file folder, for one request: a descriptor reached without following a link.

        Taken when a tensor first needs it (most requests move no file). In the sandbox the walk starts
        at ``/proc/<pid>/root`` of the running sandbox (its pid checked before and after, so a reused pid
        is never entered) and goes ``tmp``, ``.kernel``, ``blobs`` with ``O_NOFOLLOW``: a kernel that put
        a link anywhere on that way (to a host folder, which the grader would resolve against its own
        root) gets that request refused, never a file on the host. Without the sandbox the walk starts at
        the grader's work folder.
        """
        if not current().descriptors:  # Windows: no dir_fd; the kernel runs unconfined as the student, its folder reached by path
            return BlobFolder(path=str(self.blob_dir))
        return BlobFolder(opener=self._blob_folder_fd)

    def _blob_folder_fd(self) -> int:
        parts: tuple[str, ...]
        pid = None
        if not self.bwrap:
            base, parts = str(self.workdir), (self.kernel_dir.name, "blobs")
        else:
            pid = self._sandbox_pid()
            if pid is None:
                raise BridgeError("the kernel's sandbox is not running")
            base, parts = f"/proc/{pid}/root", tuple(INSIDE_BLOBS.strip("/").split("/"))
        try:
            fd = open_folder(base, parts)
        except OSError as exc:
            raise BridgeError(f"the kernel's tensor folder cannot be reached without following a link ({exc})") from None
        if pid is not None and self._sandbox_pid() != pid:
            os.close(fd)
            raise BridgeError("the kernel's sandbox ended while the grader reached its tensor folder")
        return fd

    def _sandbox_pid(self) -> int | None:
        """The running sandbox's first pid, if that process is still the sandbox (same mount namespace)."""
        if self._sandbox is None:
            return None
        pid, namespace = self._sandbox
        try:
            return pid if os.stat(f"/proc/{pid}/ns/mnt").st_ino == namespace else None
        except OSError:
            return None

    def stop_if_over_limit(self) -> bool:
        """After a cell: if the kernel's tmpfs or ``/dev/shm`` is full, stop the sandbox and keep why (:meth:`stop_reason`).

        Full, not merely refused: a write that did not fit already failed in the cell
        (``ENOSPC``). A kernel left with no room would fail every later cell and every
        check that sends a tensor as a file; a fresh sandbox (the restart replays the cells
        that ran) has room again.
        """
        pid = self._sandbox_pid()
        if pid is None:
            return False
        areas = (
            (
                INSIDE_TMP,
                self.limits.disk_bytes,
                "the kernel's files reached the {} disk limit (/tmp, its home and the grader's IPC folder share it)",
            ),
            (INSIDE_SHM, self.limits.shm_bytes, "the kernel filled its {} of shared memory (/dev/shm)"),
        )
        for inside, cap, words in areas:
            if not cap:
                continue
            try:
                usage = os.statvfs(f"/proc/{pid}/root{inside}")
            except OSError:
                continue
            if usage.f_bavail * usage.f_frsize < FULL_MARGIN and self._sandbox_pid() == pid:
                self._stopped = words.format(describe_bytes(cap)) + "; it was stopped"
                try:
                    os.kill(pid, signal.SIGKILL)  # the namespace's first process: every process in it dies with it
                except OSError:
                    pass
                return True
        return False

    def stop_reason(self) -> str:
        """Why the kernel was stopped at a cap since last asked (the grader's disk check, the launcher's output cap); '' if not."""
        reason, self._stopped = self._stopped, ""
        for launch in range(1, self._launches + 1):
            stopped = self._stopped_file(launch)
            try:
                with open(stopped, "rb") as file:
                    written = file.read(1024).decode("utf-8", "replace").strip()
                stopped.unlink()
            except OSError:
                continue
            reason = reason or written
        return reason
