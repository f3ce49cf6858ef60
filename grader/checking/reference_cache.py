"""Values the grader computes itself, kept on disk so the processes of a batch compute them once.

A batch grades each notebook in its own process, so an in-memory cache of a
reference model's training run (28 s for VGG on a CPU) would be paid again
for every student. :func:`stored` keeps such a value as JSON under a hash of
everything it depends on. Only the grader's own computations belong here --
never anything a submission produced -- and the kernel never sees the
folder (the sandbox hides it like the grader's code).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # Windows: a student's self-check is one process, so there is nobody to wait for
    fcntl = None  # type: ignore[assignment]

from grader.results import write_atomic

_MEMORY: dict[str, Any] = {}
_MISSING = object()


def cache_dir() -> Path:
    """``$GRADER_CACHE_DIR``, else ``$XDG_CACHE_HOME/hw-grader``, else ``~/.cache/hw-grader``."""
    configured = os.environ.get("GRADER_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hw-grader"


def key_of(parts: dict[str, Any]) -> str:
    """A stable hash of ``parts`` (JSON-able): the name a stored value is kept under."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def stored(namespace: str, parts: dict[str, Any], compute: Callable[[], Any]) -> Any:
    """``compute()``, or the value kept from an earlier call with the same ``parts``.

    ``parts`` must name everything the value depends on (inputs' hashes,
    library versions, the code's hash); the value must be JSON-able and comes
    back as JSON gives it (tuples as lists). An unreadable or unwritable
    cache only costs the computation, never the grade.
    """
    key = f"{namespace}/{key_of(parts)}"
    if key in _MEMORY:
        return _MEMORY[key]
    path = cache_dir() / namespace / f"{key.split('/')[1]}.json"
    value = _read(path)
    if value is _MISSING:
        with _computing(path):
            value = _read(path)  # computed by the process we waited for
            if value is _MISSING:
                value = json.loads(json.dumps(compute()))  # what a later read gives, so both paths return the same
                try:
                    write_atomic(path, json.dumps({"parts": parts, "value": value}, default=str))
                except OSError:
                    pass
    _MEMORY[key] = value
    return value


def _read(path: Path) -> Any:
    """The stored value, or ``_MISSING`` when there is none to read (missing, unreadable, corrupt)."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))["value"]
    except (OSError, ValueError, KeyError, TypeError):
        return _MISSING


@contextlib.contextmanager
def _computing(path: Path) -> Iterator[None]:
    """Hold ``path``'s lock while its value is computed, so the processes of a batch compute it once.

    Why: a batch's grading processes start together and all miss the cache at first; without the lock each of
    ``--jobs N`` trains the same reference models at once (N times the CPU, for the same numbers). The lock is an
    ``flock`` on a file beside the value: the kernel releases it when its holder dies, so a killed grading never
    blocks the next. Where no lock can be taken (no ``fcntl``, an unwritable cache) the value is simply computed.
    """
    handle = None
    if fcntl is not None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            handle = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 (held across the yield)
            fcntl.flock(handle, fcntl.LOCK_EX)
        except OSError:
            if handle is not None:
                handle.close()
            handle = None
    try:
        yield
    finally:
        if handle is not None:
            handle.close()  # closing drops the flock


def source_hash(*folders: Path) -> str:
    """A hash of the ``*.py`` files under ``folders``: stored values are dropped when that code changes."""
    digest = hashlib.sha256()
    for folder in folders:
        for file in sorted(Path(folder).rglob("*.py")):
            digest.update(file.name.encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()
