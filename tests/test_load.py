"""A submission that cannot be read becomes a one-line reason, never a traceback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import pytest

from grader.load import load_notebook

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "submissions"


def write(tmp_path: Path, data: bytes, name: str = "nb.ipynb") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("name", ["solution.ipynb", "student_a.ipynb", "student_b.ipynb"])
def test_fixture_submissions_load(name):
    loaded = load_notebook(FIXTURES / name)
    assert loaded.valid and loaded.notebook.nbformat == 4 and loaded.reason == ""
    assert loaded.sha256 == hashlib.sha256((FIXTURES / name).read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "the file is empty"),
        (b"  \n", "the file is empty"),
        (b"\xff\xfe{not utf8", "not UTF-8"),
        (b'{"cells": [', "not JSON"),
        (b"%PDF-1.4 binary", "not JSON"),
        (b"[1, 2, 3]", "not a Jupyter notebook"),
        (b'{"cells": []}', "not a Jupyter notebook"),
        (b'{"nbformat": 2, "cells": []}', "unsupported notebook format 2"),
        (b'{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}', "invalid"),
    ],
)
def test_unreadable_submissions_get_a_one_line_reason(tmp_path, data, reason):
    loaded = load_notebook(write(tmp_path, data))
    assert not loaded.valid
    assert reason in loaded.reason and "\n" not in loaded.reason
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()


def test_a_missing_file_is_invalid_not_an_exception(tmp_path):
    loaded = load_notebook(tmp_path / "absent.ipynb")
    assert not loaded.valid and "cannot read" in loaded.reason


def test_nbformat_3_is_upgraded_to_4(tmp_path):
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[nbformat.v3.new_code_cell("x = 1")])])
    loaded = load_notebook(write(tmp_path, json.dumps(v3).encode()))
    assert loaded.valid and loaded.original_version == 3
    assert loaded.notebook.nbformat == 4 and loaded.notebook.cells[0].source == "x = 1"


def test_a_utf8_bom_is_accepted(tmp_path):
    text = nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# 한국어")]))
    loaded = load_notebook(write(tmp_path, b"\xef\xbb\xbf" + text.encode()))
    assert loaded.valid and loaded.notebook.cells[0].source == "# 한국어"
