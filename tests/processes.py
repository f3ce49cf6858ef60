"""Child processes that a test (or a benchmark) stops as a TA would, with Ctrl-C or ``kill``."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def ctrl_c_as_at_a_terminal() -> None:
    """``preexec_fn``: SIGINT back to its default in the child.

    A shell starts a background job (``pytest ... &``, ``bench_class.py ... &``) with SIGINT ignored; a child
    inherits that, Python then never installs its KeyboardInterrupt handler, and a Ctrl-C sent to the child is
    lost -- the run goes on to its end and the test reads a behaviour the grader does not have.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_stoppable(command: list[str], **popen: Any) -> subprocess.Popen:
    """``subprocess.Popen(command, **popen)`` whose child takes Ctrl-C however this process was started."""
    return subprocess.Popen(command, preexec_fn=ctrl_c_as_at_a_terminal, **popen)


def descendants(pid: int) -> set[int]:
    """Every process below ``pid`` now (Linux: read from /proc), children first seen by their parent's id."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parents[int(stat.parent.name)] = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):  # gone while read
            continue
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, of in parents.items() if of == parent and child not in found}
        found |= children
        todo.extend(children)
    return found


def running(pid: int) -> bool:
    """Whether ``pid`` is still a live process (a zombie, dead and waiting to be reaped, is not)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def still_running(pids: Iterable[int], within: float) -> list[tuple[int, str]]:
    """Of ``pids``, those still running after waiting up to ``within`` seconds for them to end, with their command lines."""
    deadline = time.monotonic() + within
    while (left := [pid for pid in pids if running(pid)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return [(pid, command_line(pid)[:80]) for pid in left]
