"""Reading a submission: bytes in, a v4 notebook or a one-line reason out.

Hand-ins arrive broken in every way (empty, truncated JSON, a PDF renamed
``.ipynb``, Latin-1, an nbformat 3 file from an old Jupyter). None of that
may raise: the grader turns it into execution status ``invalid`` with the
reason this module gives, and grades the rest of the batch.

The size limit (:data:`DEFAULT_MAX_NOTEBOOK_MB`, an assignment's ``[limits]
max_notebook_mb``, ``--max-notebook-mb``) applies to what is graded: the
notebook without its saved outputs. The grader re-runs every notebook and
never reads what a student's run printed, so a correct notebook carrying a
5 MB plot is graded like any other: a file over the limit is scanned once
(mapped, never read whole) and copied without its cells' ``outputs``
(:func:`without_outputs`), whose bytes are never built in memory. Only a
notebook whose code and markdown themselves are over the limit is refused (a
17 MB notebook, a 14 MB cell of pasted output, took six minutes to grade and
its report died of memory); what is copied stops at the limit, so any size
costs at most the limit in memory here.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import re
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.corpus.words import generate_corpus_id
from nbformat.warnings import MissingIDFieldWarning

from grader.errors import GraderError

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


def sources_too_large_reason(size: int, limit: int) -> str:
    """What a student reads when the notebook's code and markdown alone (its saved outputs not counted) are over the limit."""
    return (
        f"the notebook is {size / 1e6:.1f} MB, and its code and markdown alone are over the {limit / 1e6:g} MB limit "
        "(saved outputs are not counted) — move pasted output or data out of its cells and hand it in again"
    )


_STRUCTURE = re.compile(rb'["{}\[\]:,]')
_NESTING = re.compile(rb'["{}\[\]]')
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*"', re.S)
_SPACE = re.compile(rb"[ \t\r\n]*")
#: The deepest nesting followed outside outputs (a notebook's is under ten): a file of brackets costs no memory.
_MAX_DEPTH = 256


class _NotFollowed(GraderError, ValueError):
    """The bytes are not JSON this scan can follow (the caller then refuses the file for its size)."""


def _string_end(buf: Any, pos: int) -> int:
    """Where the string whose opening quote ends at ``pos`` ends (after its closing quote)."""
    match = _STRING_REST.match(buf, pos)
    if match is None:
        raise _NotFollowed("an unterminated string")
    return match.end()


def _value_end(buf: Any, start: int) -> int:
    """Where the array or object starting at ``start`` ends, its strings skipped whole (a plot is one match)."""
    if buf[start : start + 1] not in (b"[", b"{"):
        raise _NotFollowed("outputs that are not a list")
    depth, pos = 0, start
    while match := _NESTING.search(buf, pos):
        char, pos = match.group(), match.end()
        if char == b'"':
            pos = _string_end(buf, pos)
        elif char in (b"[", b"{"):
            depth += 1
        else:
            depth -= 1
            if depth == 0:
                return pos
    raise _NotFollowed("an unclosed list")


def without_outputs(buf: Any, limit: int) -> bytes | None:
    """The notebook's bytes (``buf``: bytes or a memory map) with every cell's ``outputs`` emptied (``[]``),
    scanned once; None when what is kept exceeds ``limit`` bytes (0: no limit). Raises ``_NotFollowed``
    on bytes that are not a JSON structure (the caller refuses them)."""
    kept, last, pos = bytearray(), 0, 0
    stack: list[tuple[bytes, bytes | None]] = []  # each open container, and the key it is the value of
    key: bytes | None = None
    expect_key = False

    def keep(end: int) -> bool:
        nonlocal last
        if limit and len(kept) + end - last > limit:
            return False
        kept.extend(buf[last:end])
        last = end
        return True

    while match := _STRUCTURE.search(buf, pos):
        char, pos = match.group(), match.end()
        if char == b'"':
            end = _string_end(buf, pos)
            if expect_key:
                key, expect_key = bytes(buf[pos : end - 1]), False
            pos = end
        elif char == b":":
            in_cell = len(stack) >= 2 and stack[-1][0] == b"{" and stack[-2] == (b"[", b"cells")  # nbformat 4 and 3 alike
            if key == b"outputs" and in_cell:
                start = _SPACE.match(buf, pos).end()  # type: ignore[union-attr]  # it matches the empty string
                end = _value_end(buf, start)
                if not keep(start):
                    return None
                kept.extend(b"[]")
                last = pos = end
                key = None
        elif char in (b"{", b"["):
            if len(stack) >= _MAX_DEPTH:
                raise _NotFollowed("nested too deep")
            stack.append((char, key))
            key, expect_key = None, char == b"{"
        elif char in (b"}", b"]"):
            if not stack or stack.pop()[0] != (b"{" if char == b"}" else b"["):
                raise _NotFollowed("unbalanced brackets")
            key = None
        else:  # ","
            key, expect_key = None, bool(stack) and stack[-1][0] == b"{"
    if stack:
        raise _NotFollowed("unclosed brackets")
    return bytes(kept) if keep(len(buf)) else None


def _read_without_outputs(path: Path, limit: int) -> bytes | None:
    """The file at ``path`` without its outputs (:func:`without_outputs`), mapped rather than read."""
    with open(path, "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        return without_outputs(buf, limit)


def _hash_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_notebook(path: Path, max_bytes: int | None = None) -> LoadedNotebook:
    """Read, decode, parse, upgrade to nbformat 4 and validate ``path``.

    ``max_bytes``: the size limit (default :func:`max_notebook_bytes`, 5 MB; ``0``: none) on what is
    graded. A larger file is read without its saved outputs (:func:`without_outputs`); when its code
    and markdown are still over the limit it is refused before a byte of it is parsed, with
    :func:`sources_too_large_reason`.
    """
    path = Path(path)
    limit = max_notebook_bytes() if max_bytes is None else max_bytes
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return LoadedNotebook(path, "", None, "cannot read the file: it is not a regular file")
        if limit and info.st_size > limit:
            digest = _hash_file(path)
            try:
                stripped = _read_without_outputs(path, limit)
            except _NotFollowed:  # not a notebook's JSON: refused for its size, as it is
                return LoadedNotebook(path, digest, None, too_large_reason(info.st_size, limit))
            if stripped is None:
                return LoadedNotebook(path, digest, None, sources_too_large_reason(info.st_size, limit))
            raw = stripped
        else:
            with open(path, "rb") as handle:
                raw = handle.read(limit + 1) if limit else handle.read()
            if limit and len(raw) > limit:  # it grew after its size was read
                return LoadedNotebook(path, _hash_file(path), None, too_large_reason(len(raw), limit))
            digest = hashlib.sha256(raw).hexdigest()
    except (OSError, ValueError) as exc:  # ValueError: mmap of a file emptied meanwhile
        return LoadedNotebook(path, "", None, f"cannot read the file: {getattr(exc, 'strerror', None) or exc}")

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
        with warnings.catch_warnings():  # a cell without an id is no fault of the student's: given one below, silently
            warnings.simplefilter("ignore", MissingIDFieldWarning)
            notebook = nbformat.reads(text, as_version=4)
    except Exception as exc:  # nbformat raises many kinds on malformed structure
        return invalid(f"not a readable notebook: {_first_line(exc)}", version)
    _give_ids(notebook)
    try:
        nbformat.validate(notebook)
    except nbformat.ValidationError as exc:
        return invalid(f"not a valid notebook: {_first_line(exc.message)}", version)
    return LoadedNotebook(path, digest, notebook, "", version)


def _give_ids(notebook: NotebookNode) -> None:
    """Give every cell of a format 4.5+ notebook that lacks one an id (written by hand, or by an old tool).

    nbformat gives them today while it reads, with a ``MissingIDFieldWarning`` on the terminal that only the
    student could act on; it says it will stop, and then the notebook must still load.
    """
    if (notebook.get("nbformat"), notebook.get("nbformat_minor", 0)) < (4, 5):
        return
    for cell in notebook.cells:
        if not cell.get("id"):
            cell["id"] = generate_corpus_id()
