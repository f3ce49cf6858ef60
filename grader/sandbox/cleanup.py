"""Removing and reading what a kernel could write, within bounds, without ever raising.

Why a module of its own: the kernel's IPC folder (``Confinement.kernel_dir``)
is shared with the sandbox, so its contents are the student's to shape. A
3,000-deep tree of folders there made ``shutil.rmtree`` (recursive) die with
``RecursionError``: a single ``grade`` left no result, and a batch's
coordinator died after every child had finished, leaving no gradebook. So
everything here is iterative (an explicit stack, never recursion), bounded
(entries, open folders, seconds), never follows a symbolic link (every step
goes through a descriptor of the folder it is in: ``O_NOFOLLOW``,
``dir_fd``), and never raises: what it could not do is counted in the
returned :class:`CleanupReport`, and said in one line on stderr.

Depth is no limit to what is removed: a subtree deeper than ``max_depth``
open folders is moved up to the top of the tree (a rename within it) and
removed from there, so any depth is removed with at most ``max_depth`` open
descriptors.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from grader.sandbox.platform import current, open_flag

#: Open folders (descriptors) at most at once; deeper subtrees are moved up first.
MAX_DEPTH = 32
#: Entries (files, links, folders) visited at most; a kernel's folder of a million empty files is still removed.
MAX_ENTRIES = 1_000_000
#: Seconds one removal may take before it gives up and reports what is left.
MAX_SECONDS = 120.0
#: How many error messages a report keeps (the rest are counted).
KEPT_ERRORS = 5

_DIR_FLAGS = os.O_RDONLY | open_flag("O_DIRECTORY") | open_flag("O_NOFOLLOW") | open_flag("O_CLOEXEC")


@dataclass
class CleanupReport:
    """What a bounded removal did: removed entries, entries left behind and why."""

    path: str
    removed: int = 0
    #: Entries seen but not removed (an error, or a limit reached below them).
    left: int = 0
    #: A limit (entries, seconds) stopped the walk: more may be left than ``left`` counts.
    stopped: str = ""
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return not self.left and not self.stopped

    def failed(self, what: str, exc: BaseException | str) -> None:
        self.left += 1
        if len(self.errors) < KEPT_ERRORS:
            reason = exc if isinstance(exc, str) else (getattr(exc, "strerror", None) or type(exc).__name__)
            self.errors.append(f"{what}: {reason}")

    def line(self) -> str:
        """One line for a log: what is left and why (empty when everything was removed)."""
        if self.complete:
            return ""
        left = f"{'at least ' if self.stopped else ''}{self.left:,} entr{'y' if self.left == 1 else 'ies'}"
        why = "; ".join(([self.stopped] if self.stopped else []) + self.errors)
        return f"could not remove {left} under {self.path} ({self.removed:,} removed){': ' + why if why else ''}"


def _warn(line: str) -> None:
    try:
        print(f"grade: {line}", file=sys.stderr)
    except Exception:  # a closed stderr must not turn a cleanup into a crash
        pass


def remove_tree(
    path: str | os.PathLike,
    *,
    max_depth: int = MAX_DEPTH,
    max_entries: int = MAX_ENTRIES,
    max_seconds: float = MAX_SECONDS,
    log: Callable[[str], None] | None = _warn,
) -> CleanupReport:
    """Remove ``path`` (a folder with everything in it, or a file or link) without following links; never raises.

    ``max_depth``: folders held open at once (a deeper subtree is moved up to
    the top and removed from there, so depth itself is never a limit).
    ``max_entries`` and ``max_seconds`` bound the work; when one is reached the
    walk stops and the report says so. A report that is not complete is also
    written to ``log`` (stderr by default; ``None``: silent).
    """
    report = CleanupReport(str(path))
    if not current().descriptors:  # Windows: no dir_fd; a self-check's own folders, removed by path
        _remove_by_path(Path(os.path.abspath(path)), report)
        if log is not None and not report.complete:
            log(report.line())
        return report
    try:
        _remove(Path(os.path.abspath(path)), report, max(2, max_depth), max_entries, time.monotonic() + max_seconds)
    except Exception as exc:  # noqa: BLE001 -- the promise is "never raises"; what happened is in the report
        report.failed(str(path), f"{type(exc).__name__}: {exc}")
    if log is not None and not report.complete:
        log(report.line())
    return report


def _remove_by_path(path: Path, report: CleanupReport) -> None:
    """Where the system has no ``dir_fd`` (Windows): ``shutil.rmtree``, which does not follow a link to a folder."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        report.failed(str(path), f"{type(exc).__name__}: {exc}")


def _remove(path: Path, report: CleanupReport, max_depth: int, max_entries: int, deadline: float) -> None:
    try:
        parent_fd = os.open(path.parent, _DIR_FLAGS & ~open_flag("O_NOFOLLOW"))  # the caller's own path may go through links
    except FileNotFoundError:
        return
    except OSError as exc:
        report.failed(str(path.parent), exc)
        return
    try:
        try:
            info = os.stat(path.name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        if not stat.S_ISDIR(info.st_mode):  # a file or a link: the link itself goes, never its target
            _unlink(parent_fd, path.name, str(path), report)
            return
        top_fd = _open_dir(parent_fd, path.name, str(path), report)
        if top_fd is None:
            return
        try:
            _empty(top_fd, path, report, max_depth, max_entries, deadline)
        finally:
            os.close(top_fd)
        if report.stopped:
            report.left += 1  # the top folder itself
            return
        try:
            os.rmdir(path.name, dir_fd=parent_fd)
            report.removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            report.failed(str(path), exc)
    finally:
        os.close(parent_fd)


def _open_dir(parent_fd: int, name: str, shown: str, report: CleanupReport) -> int | None:
    """A descriptor of the folder ``name`` in ``parent_fd`` (never through a link); made readable if it was not."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=parent_fd)
    except PermissionError:
        pass
    except FileNotFoundError:
        return None
    except OSError as exc:
        report.failed(shown, exc)
        return None
    # The kernel may have taken its own folder's permissions away (same user): give them back through an
    # O_PATH descriptor, which names this very folder, so a link swapped in meanwhile is never followed.
    try:
        handle = os.open(name, open_flag("O_PATH") | open_flag("O_DIRECTORY") | open_flag("O_NOFOLLOW"), dir_fd=parent_fd)
        try:
            os.chmod(f"/proc/self/fd/{handle}", 0o700)
            return os.open(f"/proc/self/fd/{handle}", os.O_RDONLY | open_flag("O_DIRECTORY"))
        finally:
            os.close(handle)
    except OSError as exc:
        report.failed(shown, exc)
        return None


def _unlink(dir_fd: int, name: str, shown: str, report: CleanupReport) -> None:
    try:
        os.unlink(name, dir_fd=dir_fd)
        report.removed += 1
    except FileNotFoundError:
        pass
    except OSError as exc:
        report.failed(shown, exc)


def _empty(top_fd: int, top: Path, report: CleanupReport, max_depth: int, max_entries: int, deadline: float) -> None:
    """Remove everything inside the open folder ``top_fd``, iteratively; deep subtrees are moved up to it first."""
    moved = 0
    while True:
        moved_this_pass = 0
        # A frame: (descriptor, shown path, entries iterator). Frame 0 is the top, never closed here.
        stack: list[tuple[int, str, object]] = [(top_fd, str(top), os.scandir(top_fd))]
        try:
            while stack:
                fd, shown, entries = stack[-1]
                entry = next(entries, None)  # type: ignore[call-overload]
                if entry is None:
                    entries.close()  # type: ignore[attr-defined]
                    stack.pop()
                    if stack:  # a finished sub-folder: close it, then remove it from its parent
                        os.close(fd)
                        _rmdir(stack[-1][0], Path(shown).name, shown, report)
                    continue
                if report.removed + report.left >= max_entries:
                    report.stopped = f"stopped after {max_entries:,} entries"
                    return
                if time.monotonic() > deadline:
                    report.stopped = "stopped: out of time"
                    return
                name, where = entry.name, f"{shown}/{entry.name}"
                try:
                    is_dir = entry.is_dir(follow_symlinks=False)
                except OSError:
                    is_dir = False
                if not is_dir:
                    _unlink(fd, name, where, report)
                    continue
                if len(stack) >= max_depth:  # too deep to hold open: move it to the top, handled next pass
                    moved += 1
                    moved_this_pass += 1
                    try:
                        os.rename(name, f".removing-{os.getpid()}-{moved}", src_dir_fd=fd, dst_dir_fd=top_fd)
                    except OSError as exc:
                        report.failed(where, exc)
                    continue
                child = _open_dir(fd, name, where, report)
                if child is not None:
                    try:
                        stack.append((child, where, os.scandir(child)))
                    except OSError as exc:
                        os.close(child)
                        report.failed(where, exc)
        finally:
            for fd, _, entries in stack:
                entries.close()  # type: ignore[attr-defined]
                if fd != top_fd:
                    os.close(fd)
        if not moved_this_pass:
            return


def _rmdir(parent_fd: int, name: str, shown: str, report: CleanupReport) -> None:
    try:
        os.rmdir(name, dir_fd=parent_fd)
        report.removed += 1
    except FileNotFoundError:
        pass
    except OSError as exc:
        report.failed(shown, exc)


def remove_cgroup(
    folder: str | os.PathLike, *, max_entries: int = 10_000, max_seconds: float = 5.0, log: Callable[[str], None] | None = _warn
) -> CleanupReport:
    """Remove a cgroup folder and any cgroups nested in it (deepest first); never raises.

    A cgroup's files cannot be unlinked -- a cgroup is removed with ``rmdir``
    once no process is left in it -- so this walks folders only. Processes
    still in a nested cgroup (one the kernel made, where it could) are
    killed first. A cgroup still busy is retried until ``max_seconds``.
    """
    import signal

    report = CleanupReport(str(folder))
    deadline = time.monotonic() + max_seconds
    try:
        order: list[Path] = []  # pre-order; removed in reverse (children before parents)
        pending = [Path(folder)]
        while pending and len(order) < max_entries:
            current = pending.pop()
            order.append(current)
            try:
                with os.scandir(current) as entries:
                    pending.extend(Path(e.path) for e in entries if e.is_dir(follow_symlinks=False))
            except FileNotFoundError:
                order.pop()
            except OSError as exc:
                report.failed(str(current), exc)
        if pending:
            report.stopped = f"stopped after {max_entries:,} nested cgroups"
        for cgroup in reversed(order):
            while True:
                try:
                    with open(cgroup / "cgroup.procs", encoding="ascii") as procs:
                        pids = procs.read(1 << 20).split()
                except OSError:
                    pids = []
                for pid in pids[:100_000]:
                    try:
                        os.kill(int(pid), signal.SIGKILL)
                    except (OSError, ValueError):
                        pass
                try:
                    os.rmdir(cgroup)
                    report.removed += 1
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if time.monotonic() > deadline:
                        report.failed(str(cgroup), exc)
                        break
                    time.sleep(0.05)
    except Exception as exc:  # noqa: BLE001 -- never raises
        report.failed(str(folder), f"{type(exc).__name__}: {exc}")
    if log is not None and not report.complete:
        log(report.line())
    return report


def read_tail(path: str | os.PathLike, limit: int = 64 << 10) -> str:
    """The last ``limit`` bytes of a file as text (a log the kernel or a child may have grown without bound); '' if unreadable.

    Opened without following a link, and never more than ``limit`` bytes read,
    whatever the file's size.
    """
    try:
        fd = os.open(path, os.O_RDONLY | open_flag("O_NOFOLLOW") | open_flag("O_CLOEXEC") | open_flag("O_NONBLOCK"))
    except OSError:
        return ""
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return ""
        size = os.lseek(fd, 0, os.SEEK_END)
        os.lseek(fd, max(0, size - limit), os.SEEK_SET)
        chunks, left = [], limit
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
    except OSError:
        return ""
    finally:
        os.close(fd)
