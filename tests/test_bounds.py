"""The grader's own process cannot be exhausted or crashed by a notebook (issue 17).

Each attack is a small notebook of its own, graded for real through
``grader.run.cli.main`` in a fresh process whose peak memory (``ru_maxrss`` of
that process alone, not of the kernel it starts) is read back, with
``TMPDIR`` pointed at a folder of the test. The demo assignment's three
questions (none of which these notebooks answer) keep each grading short.

Every test asserts the same four things besides its own: the notebook gains
no points, the grading process stays under 2 GiB, a result and a report are
written (and, for a batch, the class-wide files), and nothing is left in
TMPDIR.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.conftest import REPO

GiB = 2**30
#: A grading process of a notebook that prints nothing peaks at 0.6-1.5 GiB (torch, the checks); 10 x 512 MiB printed took it to 6.7 GiB.
PEAK_LIMIT = 2 * GiB

#: Runs ``grade`` in this process and records the exit status and this process's own peak memory.
WRAPPER = """
import json, resource, sys
from grader.run.cli import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as handle:
    json.dump({"code": code, "peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}, handle)
"""


@dataclass
class Graded:
    code: int
    peak: int
    out: Path
    tmpdir: Path
    stdout: str
    stderr: str

    def result(self, stem: str) -> dict:
        return json.loads((self.out / f"{stem}.json").read_text(encoding="utf-8"))


def notebook(folder: Path, name: str, *sources: str, markdown: str = "") -> Path:
    """A notebook of code cells (and, first, one markdown cell if given), written where the test wants it."""
    cells = ([nbformat.v4.new_markdown_cell(markdown)] if markdown else []) + [nbformat.v4.new_code_cell(s) for s in sources]
    path = folder / f"{name}.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    return path


@pytest.fixture
def tmpdir_for_grade():
    """An empty TMPDIR for the grading process, with a short path: a kernel's IPC socket paths live under it and
    a Unix socket's path has at most 107 bytes (pytest's own folders are too deep for a batch's nested ones)."""
    folder = Path(tempfile.mkdtemp(prefix="hwb-", dir="/tmp"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def grade(tmp_path: Path, tmpdir: Path, data_dir: Path, *args: str, timeout: float = 600) -> Graded:
    """``grade ARGS --out OUT`` (quick budget, CPU, the demo assignment unless ARGS name one) in a fresh process."""
    out, stats = tmp_path / "out", tmp_path / "stats.json"
    argv = [*args, "--out", str(out), "--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir)]
    if "--assignment" not in args:
        argv += ["--assignment", "demo"]
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(stats), *argv], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert stats.is_file(), f"grade died (status {done.returncode}): {done.stderr[-3000:]}"
    measured = json.loads(stats.read_text(encoding="utf-8"))
    return Graded(measured["code"], measured["peak"], out, tmpdir, done.stdout, done.stderr)


def assert_bounded(graded: Graded, *stems: str) -> None:
    """No points, the grader under 2 GiB, a result and a report for each notebook, nothing left in TMPDIR."""
    for stem in stems:
        result = graded.result(stem)
        assert result["score"] == 0, result["questions"]
        assert (graded.out / f"{stem}.html").is_file()
    assert graded.peak < PEAK_LIMIT, f"the grading process peaked at {graded.peak / GiB:.2f} GiB"
    assert (graded.out / "gradebook.csv").is_file()
    assert list(graded.tmpdir.iterdir()) == []


# --------------------------------------------------------------------------- output


def test_gigabytes_printed_in_one_cell_are_counted_not_kept(tmp_path, tmpdir_for_grade, data_dir):
    path = notebook(tmp_path / "in", "flood", "for _ in range(2):\n    print('x' * (512 << 20))")
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path))
    assert graded.code == 0, graded.stderr[-2000:]
    assert_bounded(graded, "flood")
    executed = nbformat.read(graded.out / "notebooks" / "flood.ipynb", as_version=4)
    cut = executed.cells[0].metadata["grader"]["output_cut"]
    assert cut["chars"] > 0  # counted (what the kernel itself dropped, when the grader read slower, never arrived)
    assert "not kept" in (graded.out / "flood.html").read_text(encoding="utf-8")


def test_a_display_over_the_connections_limit_is_refused_and_the_next_cell_still_reports(tmp_path, tmpdir_for_grade, data_dir):
    path = notebook(
        tmp_path / "in",
        "huge_display",
        "from IPython.display import HTML, display\ndisplay(HTML('<b>' + 'z' * (20 << 20) + '</b>'))",
        "print('the next cell')",
    )
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path))
    assert_bounded(graded, "huge_display")
    executed = nbformat.read(graded.out / "notebooks" / "huge_display.ipynb", as_version=4)
    assert executed.cells[0].metadata["grader"]["output_cut"]["refused"] >= 1
    assert "the next cell" in "".join(o.get("text", "") for o in executed.cells[1].outputs)


def test_an_exception_too_large_to_send_is_an_error_of_its_cell_not_a_timeout(tmp_path, tmpdir_for_grade, data_dir):
    path = notebook(tmp_path / "in", "huge_error", "raise ValueError('v' * (12 << 20))")
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path), "--cell-timeout", "120")
    assert_bounded(graded, "huge_error")
    cell = graded.result("huge_error")["execution"]["cells"][0]
    assert cell["status"] == "error" and "GraderRefusedReply" in cell["error"] and cell["seconds"] < 60


def test_outputs_filling_every_cap_leave_a_report_and_an_executed_notebook_under_10_mb(tmp_path, tmpdir_for_grade, data_dir):
    displays = "from IPython.display import display\nfor i in range(60):\n    display({'text/plain': 'ab\\n' * 8000}, raw=True)"
    path = notebook(tmp_path / "in", "every_cap", *[displays] * 14)
    assert path.stat().st_size < 80_000
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path))
    assert_bounded(graded, "every_cap")
    executed_file, report = graded.out / "notebooks" / "every_cap.ipynb", graded.out / "every_cap.html"
    assert executed_file.stat().st_size <= 10_000_000 and report.stat().st_size <= 10_000_000
    executed = nbformat.read(executed_file, as_version=4)
    assert executed.metadata["grader"]["outputs_cut"]["outputs"] > 0  # what the 10 MB left out is recorded
    assert any("output_cut" in c.metadata.get("grader", {}) for c in executed.cells)  # and what the run did not keep
    page = report.read_text(encoding="utf-8")
    assert "Not everything is shown here" in page and "left out of the executed notebook" in page


# --------------------------------------------------------------------------- the notebook file


def test_a_notebook_over_the_assignments_size_limit_is_refused_unparsed_with_what_to_do(tmp_path, tmpdir_for_grade, data_dir):
    assignment = tmp_path / "small_demo"
    assignment.mkdir()
    for name in ("checks.py", "checks_hidden.py"):
        (assignment / name).write_bytes((REPO / "assignments" / "demo" / name).read_bytes())
    config = (REPO / "assignments" / "demo" / "config.toml").read_text(encoding="utf-8")
    (assignment / "config.toml").write_text(config + "\n[limits]\nmax_notebook_mb = 1\n", encoding="utf-8")
    path = notebook(tmp_path / "in", "pasted", "print(1)", markdown="x" * 1_600_000)
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path), "--assignment", str(assignment))
    assert_bounded(graded, "pasted")
    result = graded.result("pasted")
    reason = (
        "the notebook is 1.6 MB, and its code and markdown alone are over the 1 MB limit (saved outputs are not counted)"
        " — move pasted output or data out of its cells and hand it in again"
    )
    assert (result["execution"]["status"], result["execution"]["message"]) == ("invalid", reason)
    assert all(q["status"] == "error" and reason in q["message"] for q in result["questions"])


def test_max_notebook_mb_on_the_command_line_overrides_the_default(tmp_path, tmpdir_for_grade, data_dir):
    path = notebook(tmp_path / "in", "pasted", "print(1)", markdown="x" * 2_500_000)
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path), "--max-notebook-mb", "2")
    assert_bounded(graded, "pasted")
    assert graded.result("pasted")["execution"]["message"].startswith(
        "the notebook is 2.5 MB, and its code and markdown alone are over the 2 MB limit"
    )


# --------------------------------------------------------------------------- the kernel's folder


DEEP_TREE = """
import os, _hwgrader
os.chdir(os.path.dirname(_hwgrader.BLOBS))  # the IPC folder: the one the grader and the kernel share
for _ in range(3000):
    os.mkdir("d")
    os.chdir("d")
"""

#: Folders where the next kernel's connection file would go, named as the grader names them, then a crash.
BLOCK_RESTART = """
import os, _hwgrader
shared, home = os.path.dirname(_hwgrader.BLOBS), os.getcwd()
for where in (shared, os.path.join(home, "..", "launch"), home):
    for name in ("kernel-1.json", "connection-1.json", "ipc-1-1", "ipc-1-2", "ipc-1-3", "ipc-1-4", "ipc-1-5"):
        try:
            os.makedirs(os.path.join(where, name, "x"))
        except OSError:
            pass
os._exit(1)
"""


def test_a_3000_deep_tree_in_the_kernels_folder_is_removed_and_the_result_written(tmp_path, tmpdir_for_grade, data_dir):
    # Without the sandbox the kernel's IPC folder is a folder of the grader's TMPDIR (in the sandbox, its own tmpfs).
    path = notebook(tmp_path / "in", "deep", DEEP_TREE)
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path), "--no-sandbox")
    assert graded.code == 0, graded.stderr[-2000:]
    assert_bounded(graded, "deep")


def test_folders_where_the_next_connection_file_goes_leave_a_result_saying_what_happened(tmp_path, tmpdir_for_grade, data_dir):
    path = notebook(tmp_path / "in", "blocked", BLOCK_RESTART, "print('after')")
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(path), "--no-sandbox")
    assert_bounded(graded, "blocked")
    execution = graded.result("blocked")["execution"]
    assert execution["status"] == "crashed" and execution["message"]


def test_a_batch_with_a_deep_tree_writes_the_class_wide_files_and_a_rerun_reuses_it(tmp_path, tmpdir_for_grade, data_dir):
    folder = tmp_path / "in"
    notebook(folder, "deep", DEEP_TREE)
    notebook(folder, "plain", "print('hello')")
    junit = tmp_path / "junit.xml"
    graded = grade(tmp_path, tmpdir_for_grade, data_dir, str(folder), "--jobs", "2", "--no-sandbox", "--junit", str(junit))
    assert graded.code == 0, graded.stderr[-2000:]
    assert_bounded(graded, "deep", "plain")
    assert (graded.out / "index.html").is_file() and junit.is_file()
    assert {graded.result(s)["execution"]["status"] for s in ("deep", "plain")} == {"ok"}
    again = grade(tmp_path, tmpdir_for_grade, data_dir, str(folder), "--jobs", "2", "--no-sandbox", "--junit", str(junit))
    assert again.code == 0 and again.stdout.count("unchanged since it was graded") == 2
    assert_bounded(again, "deep", "plain")


# --------------------------------------------------------------------------- the cleanup itself


def test_remove_tree_removes_any_depth_and_never_follows_a_link(tmp_path):
    from grader.sandbox.cleanup import remove_tree

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("the grader's own file", encoding="utf-8")
    tree = tmp_path / "tree"
    here = tree
    for depth in range(1000):  # deeper than the descriptors it holds open at once: moved up and removed from the top
        here = here / "d"
        here.mkdir(parents=True)
        if depth % 250 == 0:
            (here / "to-folder").symlink_to(outside)
            (here / "to-file").symlink_to(outside / "keep.txt")
            (here / "locked").mkdir(mode=0)
    report = remove_tree(tree, log=None)
    assert report.complete and not tree.exists()
    assert (outside / "keep.txt").read_text(encoding="utf-8") == "the grader's own file"


def test_remove_tree_stops_at_its_limit_and_says_what_is_left_instead_of_raising(tmp_path):
    from grader.sandbox.cleanup import remove_tree

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(20):
        (folder / f"f{i}").touch()
    said: list[str] = []
    report = remove_tree(folder, max_entries=5, log=said.append)
    assert not report.complete and report.removed == 5 and said == [report.line()]
    assert "stopped after 5 entries" in said[0] and str(folder) in said[0]
    assert remove_tree(tmp_path / "absent", log=None).complete
