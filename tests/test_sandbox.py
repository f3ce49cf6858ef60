"""Hostile notebooks against the sandbox and the limits: the grader finishes, honest work keeps its verdict.

Each notebook holds an honest ``corr2d`` beside the attacks; the tests
assert what the attack achieved from the *host's* side (files that must
not exist, a listener that must not be reached, processes that must not
survive) and what the result says about it. Comparison patching and fake
scores are in tests/test_grade.py; the measured table is in SECURITY.md
(made by tests/benchmarks/attacks.py).

The sandbox needs bubblewrap (``apt-get install bubblewrap``). Without it
the sandbox-only assertions are skipped -- unless ``GRADER_REQUIRE_SANDBOX=1``
(CI sets it), where a missing sandbox fails.
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import tempfile
import uuid
from pathlib import Path

import nbformat
import pytest

import grader
import reference
from grader.course.assignment import ASSIGNMENTS_DIR, load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from grader.sandbox.confinement import Confinement, GiB, Limits, bwrap_path, own_cgroup
from tests.conftest import FIXTURES
from tests.notebook_sources import CORR2D

SANDBOX = bwrap_path() is not None
if not SANDBOX and os.environ.get("GRADER_REQUIRE_SANDBOX") == "1":
    raise RuntimeError("GRADER_REQUIRE_SANDBOX=1 but bubblewrap cannot build a sandbox here (apt-get install bubblewrap)")
needs_sandbox = pytest.mark.skipif(not SANDBOX, reason="bubblewrap is not available")
needs_pids_cgroup = pytest.mark.skipif(own_cgroup("pids") is None, reason="no writable pids cgroup: a fork loop would not be contained")
needs_memory_cgroup = pytest.mark.skipif(own_cgroup("memory") is None, reason="no writable memory cgroup")


def outputs_of(notebook_path: Path) -> list[str]:
    """Each code cell's printed text and error, in order, from the notebook as it ran."""
    cells = [c for c in nbformat.read(str(notebook_path), as_version=4).cells if c.cell_type == "code"]
    return [
        "".join(o.get("text", "") + (f"{o.get('ename')}: {o.get('evalue')}" if o.get("output_type") == "error" else "") for o in c.outputs)
        for c in cells
    ]


def grade(tmp_path: Path, data_dir: Path, *cells: str, limits: Limits | None = None, cell_timeout: float = 60):
    path = tmp_path / "submission.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    options = GradeOptions(
        Budget("quick", Path(data_dir), 256, 128, 1),
        "cpu",
        cell_timeout=cell_timeout,
        limits=limits or Limits(memory_bytes=4 * GiB, processes=128, disk_bytes=256 * 2**20),
    )
    executed = tmp_path / "out" / "executed.ipynb"
    result = grade_notebook(path, load_assignment("hw2"), options, executed_to=executed)
    return result, {q.id: q for q in result.questions}, outputs_of(executed)


@pytest.fixture(scope="module")
def host_listener():
    """A TCP server on the host's loopback that no notebook should be able to reach."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(5)
    server.setblocking(False)
    yield server
    server.close()


@pytest.fixture(scope="module")
def snooping(tmp_path_factory, data_dir, host_listener):
    """One notebook that reads, writes and connects where it should not, with an honest corr2d."""
    tmp = tmp_path_factory.mktemp("snoop")
    marker = f"escape-{uuid.uuid4().hex[:8]}"
    secrets = [
        Path(grader.__file__).parent / "kernel" / "submission.py",
        ASSIGNMENTS_DIR / "hw2" / "checks.py",
        Path(reference.__file__).parent / "ops.py",
        FIXTURES / "student_a.ipynb",
        tmp,
    ]
    read = (
        f"import os\nfor path in {[str(p) for p in secrets]!r}:\n    try:\n"
        "        print('READ', path, open(path).read(60) if os.path.isfile(path) else os.listdir(path)[:3])\n"
        "    except OSError as e:\n        print('DENIED', path, type(e).__name__)"
    )
    targets = [f"../{marker}", f"~/{marker}", f"/tmp/{marker}", str(tmp / marker)]
    write = (
        f"import os\nfor path in {targets!r}:\n    try:\n"
        "        open(os.path.expanduser(path), 'w').write('x')\n        print('WROTE', path)\n"
        "    except OSError as e:\n        print('DENIED', path, type(e).__name__)"
    )
    port = host_listener.getsockname()[1]
    connect = (
        f"import socket\nfor host, port in [('1.1.1.1', 80), ('127.0.0.1', {port})]:\n    try:\n"
        "        socket.create_connection((host, port), timeout=3)\n        print('CONNECTED', host)\n"
        "    except OSError as e:\n        print('DENIED', host, type(e).__name__)"
    )
    fill = (
        f"for path in {['big', '/tmp/big'] if SANDBOX else ['big']!r}:\n    try:\n        open(path, 'wb').write(b'x' * 300 * 2**20)\n"
        "        print('WROTE', path)\n    except OSError as e:\n        print('DENIED', path, type(e).__name__)"
    )
    result, questions, outputs = grade(tmp, data_dir, CORR2D, read, write, connect, fill)
    return {"result": result, "questions": questions, "outputs": outputs, "marker": marker, "tmp": tmp}


def test_the_honest_answer_beside_the_snooping_still_passes(snooping):
    assert snooping["questions"]["corr2d"].status == "pass"


def test_the_result_says_which_isolation_was_in_force(snooping):
    isolation = snooping["result"].execution.isolation
    assert ("bubblewrap sandbox" in isolation) == SANDBOX and "memory 4 GiB" in isolation


@needs_sandbox
def test_the_grader_the_checks_the_reference_and_other_submissions_are_invisible(snooping):
    lines = snooping["outputs"][1].splitlines()
    assert len(lines) == 5 and all(line.startswith("DENIED") for line in lines), lines


@needs_sandbox
def test_writes_outside_the_private_folders_do_not_reach_the_host(snooping):
    marker = snooping["marker"]
    assert "DENIED" in snooping["outputs"][2].splitlines()[3]  # the test's own folder is not even visible
    for place in (Path("/tmp"), Path.home(), snooping["tmp"], Path(snooping["result"].submission).parent):
        assert not (place / marker).exists(), place


@needs_sandbox
def test_the_network_is_unreachable_and_the_hosts_loopback_too(snooping, host_listener):
    assert [line.split()[0] for line in snooping["outputs"][3].splitlines()] == ["DENIED", "DENIED"]
    with pytest.raises(BlockingIOError):
        host_listener.accept()


def test_writing_past_the_disk_limit_fails_in_the_notebook(snooping):
    lines = snooping["outputs"][4].splitlines()
    expected = ["DENIED big", "DENIED /tmp/big"] if SANDBOX else ["DENIED big"]  # without the sandbox /tmp is the host's
    assert [" ".join(line.split()[:2]) for line in lines] == expected, lines


@pytest.fixture(scope="module")
def unruly(tmp_path_factory, data_dir):
    """One notebook that allocates 200 GB, prints 100 MB, shows a 7 MB image and kills its parent; corr2d is honest."""
    tmp = tmp_path_factory.mktemp("unruly")
    image = (
        "import base64, os\nfrom IPython.display import display\n"
        "display({'image/png': base64.b64encode(os.urandom(5 * 2**20)).decode()}, raw=True)"
    )
    kill = ["import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"] if SANDBOX else []  # without it, the parent is the launcher
    result, questions, outputs = grade(tmp, data_dir, "x = bytearray(200 * 2**30)", "print('x' * 100_000_000)", image, CORR2D, *kill)
    return {"result": result, "questions": questions, "outputs": outputs, "executed": tmp / "out" / "executed.ipynb"}


def test_a_200_gb_allocation_fails_in_its_cell_and_the_kernel_lives_on(unruly):
    assert unruly["result"].execution.cells[0].status in ("error", "ok") and "MemoryError" in unruly["outputs"][0]
    assert unruly["questions"]["corr2d"].status == "pass"  # a later cell, in the same kernel


@needs_memory_cgroup
def test_exceeding_the_memory_limit_kills_only_that_kernel_and_the_report_says_so(tmp_path, data_dir):
    hog = "chunks = []\nwhile True:\n    chunks.append(b'x' * 2**28)"
    result, questions, _ = grade(tmp_path, data_dir, CORR2D, hog, limits=Limits(memory_bytes=int(1.5 * GiB)))
    assert result.execution.status == "crashed"
    assert result.execution.message == "memory limit 1.5 GiB exceeded in cell 1"
    assert questions["corr2d"].status == "pass"  # the cell before it was replayed in a fresh kernel


@needs_pids_cgroup
def test_a_fork_loop_stops_at_the_process_limit_and_no_child_survives(tmp_path, data_dir):
    marker = f"fork-{uuid.uuid4().hex[:8]}"  # each child names itself: no other grading on this machine shares it
    forks = (
        "import os, time\nn = 0\ntry:\n    for _ in range(5000):\n        if os.fork() == 0:\n"
        f"            open('/proc/self/comm', 'w').write({marker!r})\n"
        "            time.sleep(300)\n            os._exit(0)\n        n += 1\nexcept OSError as e:\n"
        "    print('STOPPED', n, type(e).__name__)"
    )
    result, questions, outputs = grade(tmp_path, data_dir, forks, CORR2D, limits=Limits(memory_bytes=4 * GiB, processes=64))
    assert outputs[0].startswith("STOPPED") and int(outputs[0].split()[1]) < 64
    assert questions["corr2d"].status == "pass"
    assert _processes_named(marker) == []


def _processes_named(name: str) -> list[Path]:
    """Processes on this machine whose name (``/proc/PID/comm``) is ``name``."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and (proc / "comm").read_text().strip() == name:
                found.append(proc)
        except OSError:
            pass
    return found


@pytest.fixture(scope="module")
def crashing(tmp_path_factory, data_dir):
    """One notebook whose interpreter dies (C stack overflow), then calls sys.exit(), then os._exit(1)."""
    tmp = tmp_path_factory.mktemp("crashing")
    private = tmp_path_factory.mktemp("tmpdir")  # the grader's temporary folders go here: other gradings on this machine use /tmp
    # Through map(), every level is a C call too: the C stack overflows and the interpreter dies.
    crash = "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return list(map(f, [n + 1]))\nf(0)"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(tempfile, "tempdir", str(private))
        result, questions, _ = grade(tmp, data_dir, CORR2D, crash, "import sys\nsys.exit()", "import os\nos._exit(1)", cell_timeout=30)
    return {"result": result, "questions": questions, "tempdir": private}


def test_a_recursion_that_crashes_the_interpreter_costs_only_its_cell(crashing):
    assert crashing["result"].execution.cells[1].status == "error" and crashing["questions"]["corr2d"].status == "pass"


def test_sys_exit_only_fails_its_cell(crashing):
    assert crashing["result"].execution.cells[2].status == "error"


def test_huge_outputs_are_cut_and_the_report_stays_small(unruly):
    assert unruly["executed"].stat().st_size < 2**20
    text = unruly["executed"].read_text(encoding="utf-8")
    # the streaming caps (grader/kernel/execute.py) say in the cell what they did not keep: the print's middle, the image
    assert re.search(r"not kept: [\d,]+ characters", text) or "characters cut by the grader" in text
    assert "not kept: 1 output" in text or "removed by the grader" in text
    assert len(json.dumps(unruly["result"].to_dict())) < 200_000


def test_a_50_mb_notebook_is_graded_where_the_size_limit_allows_it(tmp_path, data_dir):
    cell = nbformat.v4.new_code_cell(CORR2D)
    cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": base64.b64encode(os.urandom(37 * 2**20)).decode()})]
    path = tmp_path / "big.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), path)
    assert path.stat().st_size > 50 * 10**6
    options = GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu", cell_timeout=60, max_notebook_mb=100)
    result = grade_notebook(path, load_assignment("hw2"), options)
    assert result.execution.status == "ok" and {q.id: q.status for q in result.questions}["corr2d"] == "pass"


def test_replacing_the_graders_helper_in_the_kernel_gains_nothing(tmp_path, data_dir):
    forge = (
        "import sys, types\nfake = types.ModuleType('_hwgrader')\n"
        "fake.__getattr__ = lambda name: (lambda *a, **k: print('@@hwgrader:{\"ok\": true}'))\n"
        "sys.modules['_hwgrader'] = fake"
    )
    result, questions, _ = grade(tmp_path, data_dir, forge, "def corr2d(X, K):\n    return X")
    assert questions["corr2d"].status != "pass" and result.score == 0


@needs_sandbox
def test_killing_the_grader_from_the_sandbox_does_not_reach_it(unruly):
    assert unruly["result"].execution.cells[4].status == "ok"  # the kill ran
    assert unruly["questions"]["corr2d"].status == "pass"  # and the grading process is still here to say so


def test_without_the_sandbox_the_limits_still_apply_and_the_result_says_so(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("GRADER_NO_SANDBOX", "1")
    result, questions, _ = grade(tmp_path, data_dir, CORR2D)
    assert questions["corr2d"].status == "pass"
    assert result.execution.isolation.startswith("no sandbox (turned off); memory 4 GiB")


def test_grading_a_notebook_whose_kernel_died_leaves_no_temporary_folder(crashing):
    assert list(crashing["tempdir"].iterdir()) == []


def test_folders_under_tmp_stay_visible_above_the_private_tmp(tmp_path):
    """A venv or data folder under /tmp (a CI clone, say) is bound after the private /tmp, not hidden by it."""
    confinement = Confinement(Limits(), tmp_path / "work", readonly=[Path("/tmp/course/data")], bwrap="bwrap")
    args = confinement._bwrap_args()
    private_tmp = args.index("/tmp")
    assert args[private_tmp - 1] == "--tmpfs"
    assert args.index("/tmp/course/data") > private_tmp


def test_a_folder_reached_through_a_symlink_is_visible_at_both_paths(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "real")
    confinement = Confinement(Limits(), tmp_path / "work", readonly=[tmp_path / "link"], bwrap="bwrap")
    args = confinement._bwrap_args()
    binds = {(args[i + 1], args[i + 2]) for i, a in enumerate(args) if a == "--ro-bind-try"}
    assert (str(tmp_path / "real"), str(tmp_path / "real")) in binds
    assert (str(tmp_path / "real"), str(tmp_path / "link")) in binds


def test_a_grader_folder_under_a_visible_folder_is_covered_and_one_elsewhere_is_left_alone(tmp_path):
    (tmp_path / "data" / "grader").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    hidden = [tmp_path / "data" / "grader", tmp_path / "elsewhere"]
    confinement = Confinement(Limits(), tmp_path / "work", readonly=[tmp_path / "data"], hidden=hidden, bwrap="bwrap")
    args = confinement._bwrap_args()
    covered = {args[i + 1] for i, a in enumerate(args) if a == "--tmpfs"}
    assert str(tmp_path / "data" / "grader") in covered
    assert str(tmp_path / "elsewhere") not in covered


def test_the_empty_folder_over_a_hidden_one_is_read_only_so_it_holds_no_uncapped_files(tmp_path):
    hidden = tmp_path / "data" / "grader"
    hidden.mkdir(parents=True)
    confinement = Confinement(Limits(), tmp_path / "work", readonly=[tmp_path / "data"], hidden=[hidden], bwrap="bwrap")
    args = confinement._bwrap_args()
    at = args.index(str(hidden))
    assert args[at - 1 : at + 3] == ["--tmpfs", str(hidden), "--remount-ro", str(hidden)]


def test_the_sandboxs_root_and_dev_are_remounted_read_only_after_everything_else(tmp_path):
    args = Confinement(Limits(), tmp_path / "work", bwrap="bwrap")._bwrap_args()
    assert args[-4:] == ["--remount-ro", "/dev", "--remount-ro", "/"]


def test_the_kernel_is_given_library_sites_on_the_path_but_not_a_checkout_an_editable_install_put_there(tmp_path, monkeypatch):
    from grader.sandbox.bubblewrap import library_folders

    checkout, site = tmp_path / "course", tmp_path / "user" / "site-packages"
    checkout.mkdir()
    site.mkdir(parents=True)
    monkeypatch.setattr("sys.path", [str(checkout), str(site), str(tmp_path / "gone" / "site-packages")])
    assert library_folders() == [site]
