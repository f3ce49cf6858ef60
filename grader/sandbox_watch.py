"""Watching a submission's running sandbox: finding it once launched, stopping it when its disk is full, saying why.

Why apart from :mod:`grader.sandbox`: that module builds the confinement (cgroups, the
launcher's command line, bubblewrap's options) and tears it down; what is here runs while
the kernel does -- :meth:`SandboxWatch.attach` after each launch,
:meth:`SandboxWatch.stop_if_over_limit` after each cell, :meth:`SandboxWatch.stop_reason`
when the kernel died -- and reaches the running sandbox by its pid. :class:`grader.sandbox.Confinement`
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

from grader.bubblewrap import INSIDE_KERNEL, INSIDE_SHM, INSIDE_TMP, read_info
from grader.limits import Limits, MiB, describe_bytes

#: Free space below which a tmpfs counts as full when a cell ends (the kernel is then stopped).
FULL_MARGIN = MiB


class SandboxWatch:
    """The methods of :class:`grader.sandbox.Confinement` that act on the sandbox running now."""

    if TYPE_CHECKING:  # what Confinement provides (its fields and its launch files' names)
        limits: Limits
        workdir: Path
        bwrap: str | None
        _sandbox: tuple[int, int] | None
        _launches: int
        _stopped: str

        @property
        def kernel_dir(self) -> Path: ...

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
