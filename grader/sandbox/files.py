"""The kernel's IPC folder as the grader reaches it: by descriptors, never through a link the kernel planted.

Why a module of its own: the grader runs as root and reaches the kernel's IPC folder (tensor files,
ZeroMQ sockets) through ``/proc/<sandbox pid>/root/tmp/.kernel``. Every name below that prefix is
the kernel's to change. A path such as ``.../blobs/<name>`` opened with ``O_NOFOLLOW`` guards only its
last component: a kernel that replaces ``blobs`` with a symbolic link to ``/etc`` makes every open,
write and unlink of the grader's land on the *host*, as root (an absolute link is resolved against the
grader's root, not the sandbox's). So:

* :func:`open_folder` walks from a descriptor of a trusted folder one component at a time, each opened
  with ``O_NOFOLLOW | O_DIRECTORY`` relative to the previous one: a link anywhere on the way is refused
  (``ELOOP``/``ENOTDIR``), and nothing is resolved by name twice.
* :class:`BlobFolder` reads, writes and removes tensor files only with ``dir_fd`` relative to that
  descriptor (the file itself again ``O_NOFOLLOW``; written ``O_EXCL``), and reads a tensor's bytes
  straight into the tensor's own memory, so a 1 GiB reply is held once.
* :func:`pin_socket` opens a kernel's socket file as an ``O_PATH`` descriptor: the grader connects
  through ``/proc/self/fd/N``, which names that very inode, so a socket replaced later by a link to a
  host socket (ZeroMQ reconnects by path) is never reached.

The kernel cannot mount, chroot or pivot (all capabilities dropped), so a walk without links from the
sandbox's root stays in the sandbox's own file systems.
"""

from __future__ import annotations

import os
import secrets
import stat
from collections.abc import Callable, Sequence

from grader.errors import BridgeError
from grader.sandbox.platform import open_flag

#: A tensor file the grader writes: a new one, never one the kernel prepared (``O_EXCL``), never through a link.
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | open_flag("O_NOFOLLOW") | open_flag("O_CLOEXEC")
_DIR_FLAGS = os.O_RDONLY | open_flag("O_DIRECTORY") | open_flag("O_NOFOLLOW") | open_flag("O_CLOEXEC")


def open_folder(base: str, parts: Sequence[str]) -> int:
    """A descriptor of ``base/parts[0]/parts[1]/...``, no component of ``parts`` followed if it is a link.

    ``base`` is the grader's own trusted starting point (``/proc/<pid>/root`` of the sandbox, or the
    grader's work folder) and is opened as named; raises ``OSError`` for a link or a missing folder.
    """
    fd = os.open(base, os.O_RDONLY | open_flag("O_DIRECTORY") | open_flag("O_CLOEXEC"))
    try:
        for part in parts:
            if not part or part in (".", "..") or "/" in part:
                raise OSError(f"not a plain folder name: {part!r}")
            inner = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


class BlobFolder:
    """The kernel's tensor-file folder (``blobs/``), held open by a descriptor for one request.

    Use as a context manager (the descriptor is closed at its end). Every file is reached with
    ``dir_fd`` relative to the descriptor, never by a path.
    """

    def __init__(self, fd: int | None = None, opener: Callable[[], int] | None = None, path: str | None = None):
        """``fd``: the folder's descriptor; or ``opener``, which takes it when a tensor first needs the folder
        (so a request that moves no file -- most do not -- never depends on the folder at all); or ``path`` where the
        system has no ``dir_fd`` (Windows: a plain self-check, the kernel unconfined, see ``grader/sandbox/platform.py``)."""
        self._fd = fd
        self._opener = opener
        self._path = path

    def _open(self, name: str, flags: int, mode: int = 0o777) -> int:
        if self._path is not None:
            return os.open(os.path.join(self._path, name), flags | open_flag("O_BINARY"), mode)
        return os.open(name, flags, mode, dir_fd=self.fd)

    @property
    def fd(self) -> int:
        if self._fd is None:
            if self._opener is None:
                raise BridgeError("the kernel's tensor folder is closed")
            self._fd, self._opener = self._opener(), None
        return self._fd

    @classmethod
    def open(cls, base: str | os.PathLike[str], parts: Sequence[str] = ()) -> BlobFolder:
        """The folder at ``base/parts...``, reached without following a link (see :func:`open_folder`)."""
        return cls(open_folder(os.fspath(base), parts))

    def __enter__(self) -> BlobFolder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = self._opener = None

    def read_into(self, name: str, target: memoryview) -> None:
        """Fill ``target`` (a tensor's own bytes) from the kernel's file ``name``, then remove the file.

        The file is hostile: not a link, a regular file (not a FIFO that would block), exactly
        ``len(target)`` bytes -- checked before a byte is read.
        """
        expected = target.nbytes
        try:
            fd = self._open(name, os.O_RDONLY | open_flag("O_NOFOLLOW") | open_flag("O_NONBLOCK") | open_flag("O_CLOEXEC"))
        except OSError as exc:
            raise BridgeError(f"the tensor file {name} cannot be read ({exc.strerror})") from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode) or info.st_size != expected:
                raise BridgeError(f"the tensor file {name} is not a file of {expected} bytes")
            done = 0
            while done < expected:
                n = _read_into(fd, target[done:])
                if n == 0:
                    raise BridgeError(f"the tensor file {name} ended after {done} of {expected} bytes")
                done += n
        finally:
            os.close(fd)
            self.remove(name)

    def write(self, raw: bytes | memoryview) -> str:
        """A new file (``O_EXCL``: never one the kernel prepared) holding ``raw``; its name."""
        name = secrets.token_hex(8) + ".in"
        try:
            fd = self._open(name, _NEW_FILE_FLAGS, 0o644)
        except OSError as exc:
            raise BridgeError(f"the grader could not hand a tensor to the kernel ({exc.strerror})") from None
        try:
            view, done = memoryview(raw).cast("B"), 0
            while done < len(view):
                done += os.write(fd, view[done:])
        except OSError as exc:
            self.remove(name)
            raise BridgeError(f"the grader could not hand a tensor to the kernel ({exc.strerror}: its disk is full?)") from None
        finally:
            os.close(fd)
        return name

    def remove(self, name: str) -> None:
        """Remove ``name`` from this folder (an unlink never follows a link); gone already is fine."""
        try:
            if self._path is not None:
                os.unlink(os.path.join(self._path, name))
            else:
                os.unlink(name, dir_fd=self.fd)
        except (OSError, BridgeError):
            pass


def _read_into(fd: int, view: memoryview) -> int:
    """Bytes read from ``fd`` straight into ``view`` (``readv``); where the system has none (Windows), through a copy."""
    if hasattr(os, "readv"):
        return os.readv(fd, [view])
    data = os.read(fd, len(view))
    view[: len(data)] = data
    return len(data)


def pin_socket(folder_fd: int, name: str) -> int | None:
    """An ``O_PATH`` descriptor of the socket ``name`` in the folder, or None while it is not (yet) a socket.

    Connecting to ``/proc/self/fd/N`` reaches exactly this inode, whatever is later put at ``name``.
    """
    try:
        fd = os.open(name, open_flag("O_PATH") | open_flag("O_NOFOLLOW") | open_flag("O_CLOEXEC"), dir_fd=folder_fd)
    except OSError:
        return None
    if not stat.S_ISSOCK(os.fstat(fd).st_mode):
        os.close(fd)
        return None
    return fd
