"""Reading a submission: bytes in, a v4 notebook or a one-line reason out.

Hand-ins arrive broken in every way (empty, truncated JSON, a PDF renamed
``.ipynb``, Latin-1, an nbformat 3 file from an old Jupyter). None of that
may raise: the grader turns it into execution status ``invalid`` with the
reason this module gives, and grades the rest of the batch.

A notebook over the size limit (:data:`DEFAULT_MAX_NOTEBOOK_MB`, an
assignment's ``[limits] max_notebook_mb``, ``--max-notebook-mb``) is refused
before it is parsed: a 17 MB notebook (a 14 MB cell of pasted output) took
six minutes to grade and its report died of memory. Only its hash is
computed, in pieces, so any size costs a megabyte of memory here.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

#: The default limit on a notebook's file size, in MB (10^6 bytes, as a file manager shows it).
#: HW2's solution with its outputs is well under 1 MB; a notebook over the limit almost always carries
#: a huge output, which clearing the outputs removes.
DEFAULT_MAX_NOTEBOOK_MB = 5.0


@dataclass
class LoadedNotebook:
    """A submission's bytes, their hash, and either the notebook or why there is none."""

    path: Path
    sha256: str
    notebook: NotebookNode | None
    reason: str = ""
    original_version: int | None = None

    @property
    def valid(self) -> bool:
        return self.notebook is not None


def _first_line(text: object, limit: int = 200) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def max_notebook_bytes(limits: dict[str, Any] | None = None, override_mb: float | None = None) -> int:
    """The size limit in bytes: ``--max-notebook-mb`` if given, else the assignment's ``[limits] max_notebook_mb``, else 5 MB."""
    mb = override_mb if override_mb else (limits or {}).get("max_notebook_mb", DEFAULT_MAX_NOTEBOOK_MB)
    return int(float(mb) * 1_000_000)


def too_large_reason(size: int, limit: int) -> str:
    """What a student reads when the notebook is over the limit, and what to do about it."""
    return (
        f"the notebook is {size / 1e6:.1f} MB; the limit is {limit / 1e6:g} MB — clear its outputs "
        "(Edit → Clear all outputs) and hand it in again"
    )


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_notebook(path: Path, max_bytes: int | None = None) -> LoadedNotebook:
    """Read, decode, parse, upgrade to nbformat 4 and validate ``path``.

    ``max_bytes``: the size limit (default :func:`max_notebook_bytes`, 5 MB; ``0``: none). A larger
    file is refused before a byte of it is parsed, with :func:`too_large_reason`.
    """
    path = Path(path)
    limit = max_notebook_bytes() if max_bytes is None else max_bytes
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return LoadedNotebook(path, "", None, "cannot read the file: it is not a regular file")
        if limit and info.st_size > limit:
            return LoadedNotebook(path, _hash_file(path), None, too_large_reason(info.st_size, limit))
        with open(path, "rb") as handle:
            raw = handle.read(limit + 1) if limit else handle.read()
    except OSError as exc:
        return LoadedNotebook(path, "", None, f"cannot read the file: {exc.strerror or exc}")
    if limit and len(raw) > limit:  # it grew after its size was read
        try:
            digest = _hash_file(path)
        except OSError:
            digest = ""
        return LoadedNotebook(path, digest, None, too_large_reason(len(raw), limit))
    digest = hashlib.sha256(raw).hexdigest()

    def invalid(reason: str, version: int | None = None) -> LoadedNotebook:
        return LoadedNotebook(path, digest, None, reason, version)

    if not raw.strip():
        return invalid("the file is empty")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return invalid(f"the file is not UTF-8 text (byte {exc.start} cannot be decoded)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        return invalid(f"the file is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}")
    if not isinstance(data, dict) or "nbformat" not in data:
        return invalid("the file is JSON but not a Jupyter notebook (no 'nbformat' field)")
    version = data.get("nbformat")
    if not isinstance(version, int) or version < 3:
        return invalid(f"unsupported notebook format {version!r} (3 and 4 are read)", None)
    try:
        notebook = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many kinds on malformed structure
        return invalid(f"not a readable notebook: {_first_line(exc)}", version)
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        return invalid(f"not a valid notebook: {_first_line(exc.message)}", version)
    return LoadedNotebook(path, digest, notebook, "", version)
