"""Colab and shell lines are neutralized one by one; everything else still runs."""

from __future__ import annotations

import ast

import nbformat

from grader.source.neutralize import neutralize, neutralize_source


def test_shell_line_becomes_pass_and_the_rest_of_the_cell_is_kept():
    result = neutralize_source("!pip install d2l==1.0.3\nimport torch", 1)
    assert result.source == "pass  # [grader] neutralized: shell command\nimport torch"
    assert [(r.cell, r.line, r.source, r.reason) for r in result.lines] == [(1, 0, "!pip install d2l==1.0.3", "shell command")]


def test_indentation_is_kept_so_the_cell_still_parses():
    source = "if True:\n    !pip install d2l\n    x = 1"
    result = neutralize_source(source, 0)
    ast.parse(result.source)
    assert result.source.splitlines()[1].startswith("    pass")


def test_colab_drive_and_files_lines_are_neutralized():
    source = "from google.colab import drive\ndrive.mount('/content/drive')\nfrom google.colab import files\nfiles.download('x.csv')\ny = 2"
    result = neutralize_source(source, 3)
    assert [r.reason for r in result.lines] == ["Colab-only import", "Google Drive mount", "Colab-only import", "Colab file transfer"]
    assert result.source.splitlines()[-1] == "y = 2"


def test_installing_magics_are_neutralized_but_display_magics_are_kept():
    result = neutralize_source("%pip install d2l\n%matplotlib inline\n%cd /content\n%config InlineBackend.figure_format = 'svg'", 0)
    assert [r.source for r in result.lines] == ["%pip install d2l", "%cd /content"]
    assert "%matplotlib inline" in result.source and "%config" in result.source


def test_a_shell_cell_magic_neutralizes_the_whole_cell():
    result = neutralize_source("%%bash\nrm -rf /\necho hi", 5)
    assert result.source.startswith("pass") and len(result.lines) == 1
    assert result.lines[0].reason == "cell magic %%bash"


def test_a_capture_cell_magic_is_kept():
    assert neutralize_source("%%capture\nx = 1", 0).lines == []


def test_backslash_continuations_go_with_their_shell_line():
    result = neutralize_source("!jupyter nbconvert \\\n    --to html x.ipynb\nz = 3", 0)
    assert [r.line for r in result.lines] == [0, 1]
    assert result.source.splitlines()[2] == "z = 3"


def test_plain_python_that_mentions_drive_is_untouched():
    source = "drive_mount = 3\nprint('!pip is not run')\nx = files_download = 1"
    result = neutralize_source(source, 0)
    assert result.source == source and result.lines == []


def test_neutralize_copies_the_notebook_and_skips_markdown():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("!not code"), nbformat.v4.new_code_cell("!ls")])
    clean, records = neutralize(nb)
    assert nb.cells[1].source == "!ls"
    assert clean.cells[0].source == "!not code" and clean.cells[1].source.startswith("pass")
    assert [r.cell for r in records] == [1]


def test_a_python_statement_over_several_lines_is_neutralized_whole_so_the_cell_still_parses():
    """Issue 27, item 5: an argument left behind on its own line would be an IndentationError the grader caused."""
    source = "from google.colab import drive\ndrive.mount(\n    '/content/drive',\n    force_remount=True)\ny = 2"
    result = neutralize_source(source, 0)
    ast.parse(result.source)
    assert [(r.line, r.reason) for r in result.lines] == [
        (0, "Colab-only import"),
        (1, "Google Drive mount"),
        (2, "continuation of a neutralized line"),
        (3, "continuation of a neutralized line"),
    ]
    assert result.source.splitlines()[-1] == "y = 2"


def test_a_statement_left_open_to_the_cells_end_neutralizes_its_first_line_only():
    """The notebook's own syntax error (a bracket never closed) is not swallowed with the lines after it."""
    result = neutralize_source("drive.mount('/content/drive'\nx = 1\ny = 2", 0)
    assert [r.line for r in result.lines] == [0]
    assert result.source.splitlines()[1:] == ["x = 1", "y = 2"]


def test_a_shell_line_never_takes_the_python_lines_after_it():
    """A bracket in a shell command opens nothing: only a backslash continues it."""
    result = neutralize_source("!echo (\nx = 1", 0)
    assert [r.line for r in result.lines] == [0] and result.source.splitlines()[1] == "x = 1"


def test_the_self_check_magic_and_loading_the_grader_extension_are_neutralized_but_other_extensions_are_kept():
    source = "%load_ext grader\n%reload_ext grader\n%grade\n%grade q1 q2\n%load_ext autoreload\nx = 1"
    result = neutralize_source(source, 3)
    assert [r.source for r in result.lines] == ["%load_ext grader", "%reload_ext grader", "%grade", "%grade q1 q2"]
    assert {r.reason for r in result.lines} == {"the grader's self-check"}
    assert result.source.splitlines()[-2:] == ["%load_ext autoreload", "x = 1"]


def test_an_extension_whose_name_only_starts_with_grader_is_kept():
    result = neutralize_source("%load_ext graderx\n%gradebook", 0)
    assert [r.source for r in result.lines] == ["%gradebook"]  # an unknown magic, neutralized as any other
    assert result.lines[0].reason == "line magic %gradebook"
