"""A submission that cannot be read becomes a one-line reason, never a traceback."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import nbformat
import pytest

from grader.source.load import load_notebook

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


#: A notebook of format 4.5 whose cells have no ids, as hand-edited files and some tools write them.
WITHOUT_IDS = json.dumps(
    {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {},
        "cells": [
            {"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": "x = 1"},
            {"cell_type": "markdown", "metadata": {}, "source": "# notes"},
        ],
    }
).encode()


def test_cells_without_ids_load_with_ids_and_without_nbformats_warning(tmp_path):
    """Issue 27, item 6: nbformat's MissingIDFieldWarning is no student's to act on and never reaches the terminal."""
    from nbformat.warnings import MissingIDFieldWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_notebook(write(tmp_path, WITHOUT_IDS))
    assert [w.message for w in caught if issubclass(w.category, MissingIDFieldWarning)] == []
    assert loaded.valid and all(cell.get("id") for cell in loaded.notebook.cells)


def test_cells_are_given_ids_where_nbformat_no_longer_gives_them(tmp_path, monkeypatch):
    """nbformat says it will stop filling missing ids while it reads: the notebook still loads, ids and all, silently."""
    reads = nbformat.reads

    def reads_leaving_ids_out(text, as_version):
        notebook = reads(text, as_version)
        for cell in notebook.cells:
            cell.pop("id", None)
        return notebook

    monkeypatch.setattr(nbformat, "reads", reads_leaving_ids_out)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        loaded = load_notebook(write(tmp_path, WITHOUT_IDS))
    assert [str(w.message) for w in caught] == []  # not left to the validation after it (it would warn)
    assert loaded.valid and all(cell.get("id") for cell in loaded.notebook.cells)


# --------------------------------------------------------------------------- saved outputs never cost a grade (issue 27, item 7)

#: A PNG's base64 as Jupyter saves it: 5 MB on its own.
PLOT = "iVBORw0KGgo" + "A" * 5_000_000


def _with_plot(cells: list[str], extra: str = "") -> bytes:
    """A correct notebook whose first cell carries one 5 MB plot (and ``extra`` as a second stream output)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": PLOT, "text/plain": '<Figure "outputs": [ } >'}),
        nbformat.v4.new_output("stream", name="stdout", text=extra or 'a quote \\" and "outputs": ['),
    ]
    return nbformat.writes(nb).encode()


def test_a_notebook_over_the_limit_only_by_its_saved_outputs_is_read_without_them(tmp_path):
    data = _with_plot(["import torch\nplt.plot([1, 2])", "def corr2d(X, K):\n    return X"])
    path = write(tmp_path, data)
    assert path.stat().st_size > 5_000_000
    loaded = load_notebook(path)
    assert loaded.valid, loaded.reason
    assert [c.source for c in loaded.notebook.cells] == ["import torch\nplt.plot([1, 2])", "def corr2d(X, K):\n    return X"]
    assert [c.outputs for c in loaded.notebook.cells] == [[], []]
    assert loaded.sha256 == hashlib.sha256(data).hexdigest()  # the file as handed in


def test_a_notebook_whose_code_and_markdown_are_over_the_limit_is_refused(tmp_path):
    path = write(tmp_path, _with_plot(["x = '" + "y" * 1_200_000 + "'"]))
    loaded = load_notebook(path, max_bytes=1_000_000)
    assert not loaded.valid
    assert loaded.reason.startswith("the notebook is 6.2 MB, and its code and markdown alone are over the 1 MB limit")
    assert "saved outputs are not counted" in loaded.reason


def test_an_nbformat_3_notebook_over_the_limit_by_its_outputs_loads_too(tmp_path):
    cell = nbformat.v3.new_code_cell("x = 1", outputs=[nbformat.v3.new_output("pyout", output_png=PLOT, prompt_number=1)])
    v3 = nbformat.v3.new_notebook(worksheets=[nbformat.v3.new_worksheet(cells=[cell])])
    loaded = load_notebook(write(tmp_path, json.dumps(v3).encode()))
    assert loaded.valid and loaded.original_version == 3, loaded.reason
    assert loaded.notebook.cells[0].source == "x = 1" and loaded.notebook.cells[0].outputs == []


@pytest.mark.parametrize("data", [b"{" * 6_000_000, b'{"cells": [{"outputs": ' + b"[" * 6_000_000, b'"' + b"x" * 6_000_000])
def test_over_the_limit_bytes_that_are_no_notebook_are_refused_for_their_size(tmp_path, data):
    loaded = load_notebook(write(tmp_path, data))
    assert not loaded.valid and loaded.reason.startswith("the notebook is 6.0 MB")
