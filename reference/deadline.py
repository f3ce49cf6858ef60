"""A computation run in a forked child under a wall-clock deadline and a memory cap: only JSON comes back.

sympy has no time limit of its own, and a formula of fifty characters can keep ``simplify`` busy for
hours (issue 25). So :func:`reference.formulas.equivalent` judges in a child of the grader's process:
a fork (sympy already imported; the truth and the domain's filter shared without pickling) that writes
one JSON line to a pipe and exits. The parent waits at most ``seconds`` and then kills it: whatever the
formula does, the grader answers in time, with :class:`Outcome` ``done``, ``timeout`` or ``failed``.

Inside the child, :func:`interrupt_after` bounds one step (sympy's proof attempt) by a timer whose
handler raises :class:`OutOfTime`; a step stuck in C (a huge integer power) is ended by the parent's kill.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import math
import os
import resource
import select
import signal
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

__all__ = ["CHILD_MEMORY_BYTES", "MAX_ANSWER_BYTES", "OutOfTime", "Outcome", "interrupt_after", "run_with_deadline"]

#: Memory the child may allocate beyond what it shares with the grader at the fork (``RLIMIT_AS``).
CHILD_MEMORY_BYTES = 2 << 30
#: The most the child's JSON line may hold (a verdict and its counterexample are a few hundred bytes).
MAX_ANSWER_BYTES = 1 << 20
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Outcome:
    """How a bounded computation ended: ``done`` (``value`` is its JSON result), ``timeout`` or ``failed`` (``reason``)."""

    status: str
    value: Any = None
    reason: str = ""


class OutOfTime(BaseException):
    """Raised in the child when :func:`interrupt_after`'s time is up (a BaseException: sympy's ``except Exception`` lets it through)."""


def run_with_deadline(fn: Callable[..., Any], *args: Any, seconds: float, memory_bytes: int = CHILD_MEMORY_BYTES) -> Outcome:
    """``fn(*args)`` in a forked child, its JSON-serialisable result back within ``seconds`` of wall time, or why not.

    The child is killed at the deadline (and when the grader dies: ``PR_SET_PDEATHSIG``), may use
    ``memory_bytes`` more than at the fork and ``seconds`` of CPU, and never returns into the caller's
    code: it leaves by ``os._exit``. An exception in ``fn`` is a ``failed`` outcome with its type and message.
    """
    read_fd, write_fd = os.pipe()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # Python 3.12+ warns when the grader has threads
            pid = os.fork()
    except OSError as exc:
        os.close(read_fd)
        os.close(write_fd)
        return Outcome("failed", reason=f"no process could be started to judge in ({exc.strerror or exc})")
    if pid == 0:
        _child(read_fd, write_fd, fn, args, seconds, memory_bytes)
    os.close(write_fd)
    try:
        read = _read(read_fd, seconds)
    finally:
        os.close(read_fd)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)  # done or not: unreaped, the child's pid is still its own
        _, status = os.waitpid(pid, 0)
    return read if isinstance(read, Outcome) else _answer(read, status)


def _child(read_fd: int, write_fd: int, fn: Callable[..., Any], args: tuple, seconds: float, memory_bytes: int) -> NoReturn:
    status = 0
    try:
        os.close(read_fd)
        for number in (signal.SIGINT, signal.SIGTERM, signal.SIGALRM):
            signal.signal(number, signal.SIG_DFL)  # not the grader's handlers
        _confine(seconds, memory_bytes)
        try:
            line = json.dumps({"ok": fn(*args)})
        except BaseException as exc:  # noqa: BLE001 -- whatever it was, the parent hears of it as data
            line = json.dumps({"error": f"{type(exc).__name__}: {exc}"[:500]})
        data = memoryview(line.encode("utf-8"))
        while data:
            data = data[os.write(write_fd, data) :]
    except BaseException:  # noqa: BLE001 -- never back into the grader's code from a child
        status = 1
    finally:
        os._exit(status)


def _confine(seconds: float, memory_bytes: int) -> None:
    """Die with the grader; at most ``seconds`` (+1) of CPU and ``memory_bytes`` of address space beyond the fork's."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    cpu = math.ceil(seconds) + 1
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/statm", encoding="ascii") as statm:
            mapped = int(statm.read().split()[0]) * resource.getpagesize()
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        soft = mapped + memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))


def _read(read_fd: int, seconds: float) -> bytes | Outcome:
    """The child's line, read until it closes the pipe, at most ``seconds`` from now; else why not."""
    deadline = time.monotonic() + seconds
    poller = select.poll()  # poll, not select: the grader may hold more than 1024 descriptors
    poller.register(read_fd, select.POLLIN | select.POLLHUP)
    chunks: list[bytes] = []
    size = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return Outcome("timeout", reason=f"not decided within {seconds:g} s")
        if not poller.poll(max(1, math.ceil(left * 1000))):
            continue
        chunk = os.read(read_fd, 1 << 16)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            return Outcome("failed", reason=f"an answer of more than {MAX_ANSWER_BYTES} bytes")
        chunks.append(chunk)


def _answer(data: bytes, status: int) -> Outcome:
    """The child's JSON line as an outcome; a child that died first says how."""
    try:
        answer = json.loads(data.decode("utf-8")) if data else None
    except (ValueError, RecursionError):
        answer = None
    if not isinstance(answer, dict) or not ({"ok", "error"} & set(answer)):
        if os.WIFSIGNALED(status):
            limit = " (past its memory or CPU limit)" if os.WTERMSIG(status) in (signal.SIGKILL, signal.SIGXCPU) else ""
            ended = f"killed by signal {os.WTERMSIG(status)}{limit}"
        else:
            ended = f"exit status {os.WEXITSTATUS(status)}"
        return Outcome("failed", reason=f"the judging process ended without an answer ({ended})")
    if "error" in answer:
        return Outcome("failed", reason=str(answer["error"])[:500])
    return Outcome("done", answer["ok"])


@contextlib.contextmanager
def interrupt_after(seconds: float) -> Iterator[None]:
    """Raise :class:`OutOfTime` in the block once ``seconds`` of wall time have passed (in a child's main thread only;
    elsewhere the block runs unbounded and only the parent's deadline ends it)."""

    def _alarm(signum: int, frame: Any) -> None:
        raise OutOfTime(f"{seconds:g} s")

    try:
        previous = signal.signal(signal.SIGALRM, _alarm)
    except ValueError:  # not the main thread
        yield
        return
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
