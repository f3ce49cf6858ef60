"""Windows and macOS laptops (issue 30, item 3): where the system has no sandbox the kernel runs plainly, and says so.

These tests run on Linux only (this project's CI has no other system), so the other systems are **simulated**:
``GRADER_SIMULATE_PLATFORM=Windows`` makes :func:`grader.sandbox.platform.current` report what Windows lacks (fork,
rlimits, bubblewrap, cgroups, IPC sockets), and the grader then takes the very branch it takes on Windows: no
launcher, TCP on 127.0.0.1, the clean room without a fork. What a simulation cannot show (Windows' own paths,
its missing ``O_`` flags at import) is what docs/workflows/selfcheck.yml runs on real windows-latest and
macos-latest machines.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path
from platform import system as host_system

import nbformat
import pytest

from grader.run.cli import main
from grader.sandbox import platform
from grader.sandbox.confinement import Confinement, Limits

#: The line a plain run starts its isolation with, on the machine running the simulation.
SAID = f"self-check on Windows (simulated on {platform.system_name(host_system())}): no isolation"
DEMO = Path(__file__).resolve().parent.parent / "assignments" / "demo" / "solution.ipynb"


@pytest.fixture
def windows(monkeypatch):
    """A simulated Windows (this machine is Linux): the grader's plain branch, with the sandbox not required."""
    monkeypatch.setenv(platform.SIMULATE_VARIABLE, "Windows")
    monkeypatch.delenv(platform.REQUIRE_SANDBOX_VARIABLE, raising=False)


def test_linux_keeps_the_sandbox_branch():
    if sys.platform != "linux":  # docs/workflows/selfcheck.yml runs this file on Windows and macOS: there the plain branch is real
        pytest.skip("the real system is not Linux")
    host = platform.current()
    assert host.name == "Linux" and not host.plain and host.transport == "ipc" and host.fork


def test_a_simulated_windows_lacks_fork_rlimits_sandbox_and_ipc(windows):
    host = platform.current()
    assert (host.name, host.simulated, host.plain, host.fork, host.transport) == ("Windows", True, True, False, "tcp")
    assert host.isolation.startswith(SAID)
    assert "one process (no fork)" in host.isolation


def test_a_simulated_macos_runs_plainly_over_tcp_but_keeps_descriptors(monkeypatch):
    monkeypatch.setenv(platform.SIMULATE_VARIABLE, "macOS")
    host = platform.current()
    assert (host.name, host.plain, host.fork, host.transport, host.descriptors) == ("macOS", True, False, "tcp", True)


def test_a_flag_the_system_lacks_is_zero():
    assert platform.open_flag("O_NO_SUCH_FLAG_ANYWHERE") == 0
    assert platform.open_flag("O_RDONLY") == os.O_RDONLY


def test_plainly_the_kernel_is_launched_as_it_is_over_tcp_loopback(windows, tmp_path):
    confinement = Confinement.create(tmp_path, Limits(memory_bytes=1 << 30), readonly=[], hidden=[])
    try:
        command = [sys.executable, "-m", "ipykernel_launcher", "-f", "conn.json"]
        assert confinement.wrap(command, "conn.json") == command  # no launcher: it needs rlimits and prctl
        assert (confinement.transport, confinement.kernel_ip(1)) == ("tcp", "127.0.0.1")
        assert confinement.isolation.startswith(SAID)
        assert not confinement.cgroups and confinement.bwrap is None
    finally:
        confinement.close()


def test_the_sandbox_required_refuses_plain_mode(windows, monkeypatch, tmp_path):
    from grader.errors import EnvironmentProblem

    monkeypatch.setenv(platform.REQUIRE_SANDBOX_VARIABLE, "1")
    with pytest.raises(EnvironmentProblem, match="nothing is graded unconfined"):
        Confinement.create(tmp_path, Limits(), readonly=[], hidden=[])


@pytest.mark.slow
def test_a_simulated_windows_self_check_grades_the_demo_end_to_end_over_tcp_and_the_report_says_no_isolation(windows, tmp_path, data_dir):
    notebook = nbformat.read(DEMO, as_version=4)
    # Which transport the kernel was started with, printed by the kernel itself into the executed notebook.
    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    last.source += "\nfrom ipykernel.kernelapp import IPKernelApp\nprint('transport:', IPKernelApp.instance().transport)"
    # The template's self-check lines: the grader running the notebook must not run %grade inside it.
    last.source += "\n%load_ext grader\n%grade"
    nbformat.write(notebook, tmp_path / "mine.ipynb")
    args = [str(tmp_path / "mine.ipynb"), "--out", str(tmp_path / "out"), "--assignment", "demo", "--budget", "quick"]
    assert main([*args, "--device", "cpu", "--data-dir", str(data_dir)]) == 0
    result = json.loads((tmp_path / "out" / "mine.json").read_text())
    assert result["execution"]["isolation"].startswith(SAID)
    assert {q["id"]: q["status"] for q in result["questions"]} == {"relu": "pass", "softmax": "pass", "softmax_shift": "pass"}
    neutralized = [(line["source"], line["reason"]) for line in result["execution"]["neutralized"]]
    assert neutralized == [("%load_ext grader", "the grader's self-check"), ("%grade", "the grader's self-check")]
    executed = (tmp_path / "out" / "notebooks" / "mine.ipynb").read_text()
    assert "transport: tcp" in executed
    assert SAID in (tmp_path / "out" / "mine.html").read_text()


@pytest.mark.slow
def test_with_the_sandbox_required_a_simulated_windows_grades_nothing_and_exits_3(windows, monkeypatch, tmp_path, data_dir):
    monkeypatch.setenv(platform.REQUIRE_SANDBOX_VARIABLE, "1")
    shutil.copy(DEMO, tmp_path / "mine.ipynb")
    args = [str(tmp_path / "mine.ipynb"), "--out", str(tmp_path / "out"), "--assignment", "demo", "--budget", "quick"]
    assert main([*args, "--device", "cpu", "--data-dir", str(data_dir)]) == 3
    result = json.loads((tmp_path / "out" / "mine.json").read_text())
    assert result["execution"]["status"] == "environment_error"
    assert "nothing is graded unconfined" in result["execution"]["message"]


def test_without_dir_fd_the_kernels_tensor_files_are_reached_by_path(windows, tmp_path):
    """Windows has no ``dir_fd`` (simulated here): the blob folder works by path, and ``readv``'s absence is covered too."""
    assert not platform.current().descriptors
    confinement = Confinement.create(tmp_path, Limits(), readonly=[], hidden=[])
    try:
        with confinement.open_blob_folder() as blobs:
            assert blobs._path == str(confinement.blob_dir)  # by path: no descriptor is ever taken
            name = blobs.write(b"\x01\x02\x03\x04")
            assert (confinement.blob_dir / name).read_bytes() == b"\x01\x02\x03\x04"
            target = bytearray(4)
            blobs.read_into(name, memoryview(target))
            assert target == b"\x01\x02\x03\x04" and not (confinement.blob_dir / name).exists()
    finally:
        confinement.close()
    view = memoryview(bytearray(3))
    read, write = os.pipe()
    os.write(write, b"abc")
    os.close(write)
    from grader.sandbox import files

    readv = os.readv
    try:
        del os.readv  # as on Windows
        assert files._read_into(read, view) == 3 and bytes(view) == b"abc"
    finally:
        os.readv = readv
        os.close(read)


def test_without_dir_fd_a_folder_is_removed_by_path_and_a_link_in_it_is_not_followed(windows, tmp_path, monkeypatch):
    from grader.sandbox import cleanup
    from grader.sandbox.cleanup import remove_tree

    monkeypatch.setattr(cleanup, "_remove", lambda *args: pytest.fail("walked by descriptors, which Windows lacks"))

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("mine")
    work = tmp_path / "work"
    (work / "a" / "b").mkdir(parents=True)
    (work / "a" / "b" / "f.txt").write_text("x")
    (work / "link").symlink_to(outside)
    report = remove_tree(work, log=None)
    assert report.complete and not work.exists()
    assert (outside / "keep.txt").read_text() == "mine"


def test_a_temporary_folder_too_deep_for_a_kernels_socket_is_swapped_for_a_short_one(tmp_path, monkeypatch):
    deep = tmp_path / ("d" * (platform.SOCKET_PATH_LIMIT - platform.SOCKET_PATH_BELOW))
    deep.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(deep))
    root = platform.scratch_root()
    assert root in platform.SHORT_TEMPORARY_FOLDERS
    assert len(os.fsencode(root)) + platform.SOCKET_PATH_BELOW <= platform.SOCKET_PATH_LIMIT


def test_a_temporary_folder_short_enough_for_a_kernels_socket_is_kept(tmp_path, monkeypatch):
    short = Path("/tmp") / tmp_path.name[:20]
    short.mkdir(exist_ok=True)
    monkeypatch.setattr("tempfile.tempdir", str(short))
    try:
        assert platform.scratch_root() == str(short)
    finally:
        short.rmdir()
