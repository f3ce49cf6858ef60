"""Reading a submission: bytes in, a v4 notebook or a one-line reason out.

Hand-ins arrive broken in every way (empty, truncated JSON, a PDF renamed
``.ipynb``, Latin-1, an nbformat 3 file from an old Jupyter). None of that
may raise: the grader turns it into execution status ``invalid`` with the
reason this module gives, and grades the rest of the batch.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode


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


def _first_line(text: str, limit: int = 200) -> str:
    line = str(text).strip().splitlines()[0] if str(text).strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def load_notebook(path: Path) -> LoadedNotebook:
    """Read, decode, parse, upgrade to nbformat 4 and validate ``path``."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        return LoadedNotebook(path, "", None, f"cannot read the file: {exc.strerror or exc}")
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
