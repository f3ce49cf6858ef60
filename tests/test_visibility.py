"""What a kernel can write and what it can see (issue 17, item 4): every write capped, no host path, only the data set.

Two notebooks are graded for real (``grader.run.cli.main``, quick budget) with the grader's
temporary folder (TMPDIR) pointed at a folder of the test's own, so what reaches the host
is measured there:

* ``writers`` writes 3 GiB into its IPC folder (where its connection file is), then 3 GiB
  to its own stdout, then 3 GiB to its own stderr (the descriptors ipykernel keeps of
  fd 1 and 2), beside an honest ``corr2d``;
* ``snooper`` is graded with ``--data-dir`` pointing at a course folder that holds
  ``submissions/`` (a classmate's notebook) and ``reports/`` beside ``FashionMNIST/``, and
  prints every command line in its sandbox, every file it can find from its data folder,
  and what its test split holds.

The rest are direct tests of the data view and of the grader's held-out images. Like
tests/test_sandbox.py, the notebook tests need bubblewrap (``apt-get install bubblewrap``):
without it they are skipped, with the reason shown -- unless ``GRADER_REQUIRE_SANDBOX=1``
(CI sets it), where a missing sandbox fails the run.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import threading
from pathlib import Path

import nbformat
import pytest
import torch
from torchvision.datasets import FashionMNIST

from grader.course.d2l_budget import Budget
from grader.course.data_view import TEST_FILES, TRAIN_FILES, build_data_view, course_folder_warning, kernel_share
from grader.course.fashion_mnist import held_out_images, raw_images, resized, validation_accuracy
from grader.reports.html_report import notebook_path
from grader.run.cli import main
from grader.sandbox.confinement import Confinement, GiB, Limits, bwrap_path
from tests.notebook_sources import CORR2D

SANDBOX = bwrap_path() is not None
if not SANDBOX and os.environ.get("GRADER_REQUIRE_SANDBOX") == "1":
    raise RuntimeError("GRADER_REQUIRE_SANDBOX=1 but bubblewrap cannot build a sandbox here (apt-get install bubblewrap)")
needs_sandbox = pytest.mark.skipif(not SANDBOX, reason="bubblewrap is not available: the kernel's writes and view are the sandbox's")

#: The default disk cap a graded kernel runs under (``Limits.disk_bytes``).
DISK_CAP = Limits().disk_bytes


def graded(tmp: Path, data_dir: Path, *cells: str) -> dict:
    """Grade a notebook of ``cells`` through the command line, the grader's TMPDIR a folder of its own, sampled while it runs."""
    path = tmp / "submission.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    private = tmp / "tmpdir"
    private.mkdir()
    sampler = _DiskSampler(private)
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err):
        patch.setattr(tempfile, "tempdir", str(private))
        patch.setenv("TMPDIR", str(private))
        sampler.start()
        try:
            main(
                [
                    str(path),
                    "--out",
                    str(tmp / "out"),
                    "--budget",
                    "quick",
                    "--device",
                    "cpu",
                    "--data-dir",
                    str(data_dir),
                    "--cell-timeout",
                    "120",
                ]
            )
        finally:
            sampler.stop()
    result = json.loads((tmp / "out" / "submission.json").read_text())
    executed = nbformat.read(str(notebook_path(tmp / "out" / "submission.json")), as_version=4)
    outputs = ["".join(o.get("text", "") for o in c.outputs) for c in executed.cells if c.cell_type == "code"]
    return {"result": result, "outputs": outputs, "tmpdir": private, "peak": sampler.peak, "stderr": err.getvalue()}


class _DiskSampler(threading.Thread):
    """The most bytes a folder held at any of its samples (every 0.1 s), links not followed."""

    def __init__(self, folder: Path):
        super().__init__(daemon=True)
        self.folder, self.peak, self._done = folder, 0, threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.1):
            self.peak = max(self.peak, _bytes_under(self.folder))

    def stop(self) -> None:
        self._done.set()
        self.join()
        self.peak = max(self.peak, _bytes_under(self.folder))


def _bytes_under(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):  # os.walk follows no link to a folder
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


# --------------------------------------------------------------------------- writing: every path is capped

THREE_GIB = 3 * GiB
#: Into the folder its connection file is in: the IPC folder the grader reads tensors from.
WRITE_IPC = f"""
import os
from ipykernel import get_connection_file
folder = os.path.dirname(get_connection_file())
chunk, written = b'x' * 2**26, 0
try:
    while written < {THREE_GIB}:
        with open(os.path.join(folder, f'fill-{{written}}'), 'wb') as f:
            f.write(chunk)
        written += len(chunk)
except OSError as e:
    print('REFUSED after', written, type(e).__name__)
"""
#: To the kernel process's own fd 1 or 2 (ipykernel keeps a copy of each when it captures them), bypassing Jupyter.
WRITE_FD = """
import os, sys
stream = sys.{name}
fd = getattr(stream, '_original_stdstream_copy', None) or stream.fileno()
chunk = b'y' * 2**24
for _ in range({count}):
    os.write(fd, chunk)
"""


@pytest.fixture(scope="module")
def writers(tmp_path_factory, data_dir):
    tmp = tmp_path_factory.mktemp("writers")
    count = THREE_GIB // 2**24
    return graded(
        tmp,
        data_dir,
        CORR2D,
        WRITE_IPC,
        WRITE_FD.format(name="stdout", count=count),
        WRITE_FD.format(name="stderr", count=count),
        "print('still running')",
    )


def _cell(result: dict, index: int) -> dict:
    return next(c for c in result["execution"]["cells"] if c["index"] == index)


@needs_sandbox
def test_a_kernel_writing_3_gib_into_its_ipc_folder_is_refused_at_the_disk_cap_and_stopped_in_that_cell(writers):
    assert writers["outputs"][1].startswith("REFUSED after") and int(writers["outputs"][1].split()[2]) < DISK_CAP
    cell = _cell(writers["result"], 1)
    assert cell["status"] == "error" and cell["error"].startswith("the kernel's files reached the 2 GiB disk limit")
    assert cell["error"].endswith("it was stopped")


@needs_sandbox
def test_a_kernel_writing_3_gib_to_its_stdout_is_stopped_in_that_cell(writers):
    cell = _cell(writers["result"], 2)
    assert cell["status"] == "error"
    assert cell["error"] == "the kernel wrote more than 64 MiB to its own stdout/stderr; it was stopped"


@needs_sandbox
def test_a_kernel_writing_3_gib_to_its_stderr_is_stopped_in_that_cell(writers):
    cell = _cell(writers["result"], 3)
    assert cell["status"] == "error"
    assert cell["error"] == "the kernel wrote more than 64 MiB to its own stdout/stderr; it was stopped"


@needs_sandbox
def test_the_result_says_the_kernel_was_stopped_and_in_which_cell(writers):
    execution = writers["result"]["execution"]
    assert execution["status"] == "crashed"
    assert execution["message"] == "the kernel wrote more than 64 MiB to its own stdout/stderr; it was stopped in cell 3"


@needs_sandbox
def test_none_of_the_9_gib_reaches_the_hosts_temporary_folder_while_grading(writers):
    """The launcher's logs keep at most a megabyte of output per kernel; the kernel's files stay in its tmpfs."""
    assert writers["peak"] < 16 * 2**20 < DISK_CAP, writers["peak"]


@needs_sandbox
def test_nothing_is_left_in_the_hosts_temporary_folder(writers):
    assert list(writers["tmpdir"].iterdir()) == []


@needs_sandbox
def test_the_honest_answer_and_the_cells_after_the_writers_still_run(writers):
    assert {q["id"]: q["status"] for q in writers["result"]["questions"]}["corr2d"] == "pass"
    assert writers["outputs"][4] == "still running\n"


# --------------------------------------------------------------------------- seeing: no host path, only the data set


@pytest.fixture(scope="module")
def course(tmp_path_factory, data_dir):
    """A course folder as a TA keeps it: the data set beside submissions/ (a classmate's notebook) and reports/."""
    root = tmp_path_factory.mktemp("course") / "hw2-data"
    shutil.copytree(Path(data_dir) / "FashionMNIST", root / "FashionMNIST")
    (root / "submissions").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CORR2D)]), root / "submissions" / "classmate.ipynb")
    (root / "reports").mkdir()
    (root / "reports" / "classmate.json").write_text('{"score": 10}')
    return root


@pytest.fixture(scope="module")
def snooper(tmp_path_factory, course):
    tmp = tmp_path_factory.mktemp("snooper")
    cmdlines = (
        "import os\nfor pid in sorted(p for p in os.listdir('/proc') if p.isdigit()):\n    try:\n"
        "        print(pid, open(f'/proc/{pid}/cmdline', 'rb').read().replace(b'\\0', b' ').decode())\n"
        "    except OSError:\n        pass"
    )
    classmate = course / "submissions" / "classmate.ipynb"
    guesses = [
        str(classmate),
        "/data/submissions/classmate.ipynb",
        "/data/../submissions/classmate.ipynb",
        "/data/FashionMNIST/../submissions/classmate.ipynb",
        "/data/reports/classmate.json",
    ]
    snoop = (
        "import os\n"
        "for folder, dirs, files in os.walk('/data'):\n    for name in files:\n        print('FOUND', os.path.join(folder, name))\n"
        f"for path in {guesses!r}:\n    try:\n        open(path).read(10)\n        print('OPENED', path)\n"
        "    except OSError as e:\n        print('DENIED', path)"
    )
    split = (
        "import struct, torchvision\nheader = open('/data/FashionMNIST/raw/t10k-labels-idx1-ubyte', 'rb').read(8)\n"
        "print('TEST LABELS', struct.unpack('>II', header)[1])\n"
        "print('LOADED', len(torchvision.datasets.FashionMNIST('/data', train=False)) > 0)"
    )
    places = [
        "/",
        "/dev",
        "/data",
        "/usr",
        "/etc",
        "/opt",
        "/var",
        "/run",
        "/home",
        "/root",
        "/tmp",
        "/tmp/home",
        "/tmp/.kernel",
        "/dev/shm",
        sys.prefix,
    ]
    writable = (
        f"import os\nfor place in {places!r}:\n    try:\n        os.makedirs(place, exist_ok=True)\n"
        "        open(os.path.join(place, '.probe'), 'w').close()\n        os.unlink(os.path.join(place, '.probe'))\n"
        "        usage = os.statvfs(place)\n        print('WRITABLE', place, usage.f_blocks * usage.f_frsize)\n"
        "    except OSError:\n        print('DENIED', place)"
    )
    return {**graded(tmp, course, CORR2D, cmdlines, snoop, split, writable), "course": course}


@needs_sandbox
def test_no_command_line_in_the_sandbox_names_the_work_folder_the_data_folder_or_the_kernels_home(snooper):
    shown = snooper["outputs"][1]
    assert "ipykernel_launcher" in shown  # the command lines were read
    for host_path in (snooper["tmpdir"], snooper["course"], snooper["course"].parent):  # work folders and homes are under TMPDIR
        assert str(host_path) not in shown, host_path


@needs_sandbox
def test_the_data_folder_holds_only_the_data_sets_files(snooper):
    found = sorted(line.split()[1] for line in snooper["outputs"][2].splitlines() if line.startswith("FOUND"))
    assert found == sorted(f"/data/FashionMNIST/raw/{name}" for name in TRAIN_FILES + TEST_FILES)


@needs_sandbox
def test_a_classmates_notebook_and_results_beside_the_data_cannot_be_opened(snooper):
    tried = [line for line in snooper["outputs"][2].splitlines() if not line.startswith("FOUND")]
    assert len(tried) == 5 and all(line.startswith("DENIED") for line in tried), tried


@needs_sandbox
def test_the_kernels_test_split_is_the_first_half_and_torchvision_loads_it(snooper):
    total = len(FashionMNIST(str(snooper["course"]), train=False))
    assert snooper["outputs"][3].splitlines() == [f"TEST LABELS {kernel_share(total)}", "LOADED True"]


@needs_sandbox
def test_the_kernel_can_write_only_in_its_capped_tmpfs_and_shared_memory(snooper):
    writable = {line.split()[1]: int(line.split()[2]) for line in snooper["outputs"][4].splitlines() if line.startswith("WRITABLE")}
    limits = Limits()
    assert writable == {
        "/tmp": limits.disk_bytes,
        "/tmp/home": limits.disk_bytes,
        "/tmp/.kernel": limits.disk_bytes,
        "/dev/shm": limits.shm_bytes,
    }, snooper["outputs"][4]


@needs_sandbox
def test_a_data_folder_that_also_holds_notebooks_and_results_is_one_warning_line(snooper):
    expected = f"--data-dir {snooper['course']} also holds notebooks or results; the kernel is given only the Fashion-MNIST files"
    assert [line for line in snooper["stderr"].splitlines() if "also holds" in line] == [f"grade: warning: {expected}"]


# --------------------------------------------------------------------------- the data view and the held-out images


def _idx(path: Path, items: list[bytes], shape: tuple[int, ...], packed: bool = False) -> None:
    """An idx file of unsigned bytes (``shape``: the dimensions after the count), optionally gzipped."""
    data = bytes([0, 0, 8, 1 + len(shape)]) + struct.pack(f">{1 + len(shape)}I", len(items), *shape) + b"".join(items)
    path.write_bytes(gzip.compress(data) if packed else data)


@pytest.fixture
def tiny_data(tmp_path) -> Path:
    """Ten training and nine test images of 2x2 pixels, raw and gzipped, as torchvision's download leaves them."""
    raw = tmp_path / "data" / "FashionMNIST" / "raw"
    raw.mkdir(parents=True)
    for packed in (False, True):
        suffix = ".gz" if packed else ""
        _idx(raw / f"train-images-idx3-ubyte{suffix}", [bytes([i] * 4) for i in range(10)], (2, 2), packed)
        _idx(raw / f"train-labels-idx1-ubyte{suffix}", [bytes([i % 10]) for i in range(10)], (), packed)
        _idx(raw / f"t10k-images-idx3-ubyte{suffix}", [bytes([100 + i] * 4) for i in range(9)], (2, 2), packed)
        _idx(raw / f"t10k-labels-idx1-ubyte{suffix}", [bytes([i]) for i in range(9)], (), packed)
    return tmp_path / "data"


def test_the_view_holds_the_train_files_whole_and_the_first_half_of_the_test_split(tiny_data, tmp_path):
    view = build_data_view(tiny_data, tmp_path / "view", download=False)
    assert (view.test_images, view.test_total, view.complete) == (4, 9, True)
    train, test = FashionMNIST(str(view.path), train=True), FashionMNIST(str(view.path), train=False)
    assert len(train) == 10 and len(test) == 4
    assert test.data[:, 0, 0].tolist() == [100, 101, 102, 103] and test.targets.tolist() == [0, 1, 2, 3]


def test_the_view_never_holds_the_test_splits_archives_which_hold_all_of_it(tiny_data, tmp_path):
    view = build_data_view(tiny_data, tmp_path / "view", download=False)
    names = sorted(p.name for p in (view.path / "FashionMNIST" / "raw").iterdir())
    assert names == sorted([*TRAIN_FILES, *(f"{n}.gz" for n in TRAIN_FILES), *TEST_FILES])


def test_a_data_folder_with_only_the_archives_gives_a_view_torchvision_loads(tiny_data, tmp_path):
    for name in TRAIN_FILES + TEST_FILES:
        (tiny_data / "FashionMNIST" / "raw" / name).unlink()
    view = build_data_view(tiny_data, tmp_path / "view", download=False)
    assert len(FashionMNIST(str(view.path), train=True)) == 10 and len(FashionMNIST(str(view.path), train=False)) == 4


def test_a_data_folder_without_the_data_set_gives_an_empty_view(tmp_path):
    view = build_data_view(tmp_path / "nothing-here", tmp_path / "view", download=False)
    assert not view.complete and list((view.path / "FashionMNIST" / "raw").iterdir()) == []


def test_only_a_folder_with_notebooks_results_or_reports_beside_the_data_gets_the_warning(tiny_data, tmp_path):
    assert course_folder_warning(tiny_data) is None
    (tiny_data / "reports").mkdir()
    assert course_folder_warning(tiny_data) == (
        f"--data-dir {tiny_data} also holds notebooks or results; the kernel is given only the Fashion-MNIST files"
    )
    other = tmp_path / "other"
    (other / "week2").mkdir(parents=True)
    (other / "week2" / "alice.ipynb").write_text("{}")
    assert course_folder_warning(other) is not None


def test_without_the_sandbox_the_kernel_is_given_the_view_too(tiny_data, tmp_path):
    view = build_data_view(tiny_data, tmp_path / "view", download=False)
    confinement = Confinement.create(tmp_path / "work", Limits(), [], [], sandbox=False, data=view.path)
    try:
        assert confinement.kernel_data_dir == str(view.path)
        preamble = Budget("quick", tiny_data).preamble(confinement.kernel_data_dir)
        assert repr(str(view.path)) in preamble and repr(str(tiny_data)) not in preamble
    finally:
        confinement.close()


def test_in_the_sandbox_the_kernel_names_its_data_folder_slash_data(tiny_data, tmp_path):
    confinement = Confinement(Limits(), tmp_path / "work", bwrap="bwrap", data=tmp_path / "view")
    args = confinement._bwrap_args()
    at = args.index("/data")
    assert confinement.kernel_data_dir == "/data" and args[at - 2 : at] == ["--ro-bind", str(tmp_path / "view")]
    assert str(tiny_data) not in args  # only the view is bound, never the folder it was made from


def test_validation_accuracy_never_uses_an_image_the_kernel_could_read(data_dir, tmp_path):
    view = build_data_view(Path(data_dir), tmp_path / "view", download=False)
    readable = {bytes(image.numpy()) for image in FashionMNIST(str(view.path), train=False).data}

    class Recorder(torch.nn.Module):
        """Scores nothing; keeps every image it is shown, back at 28x28 in 8-bit levels."""

        def __init__(self):
            super().__init__()
            self.seen: list[bytes] = []

        def forward(self, X):
            self.seen += [bytes(x.mul(255).round().to(torch.uint8).numpy()) for x in X[:, 0]]
            return torch.zeros(len(X), 10)

    recorder = Recorder()
    _, used = validation_accuracy(recorder, str(data_dir), 28, 10**6)
    assert used == len(recorder.seen) == len(raw_images(str(data_dir), train=False)[1]) - len(readable) > 0
    assert readable.isdisjoint(recorder.seen)


def test_the_held_out_images_are_the_ones_after_the_kernels_share(data_dir):
    images, _ = raw_images(str(data_dir), train=False)
    held, _ = held_out_images(str(data_dir))
    assert torch.equal(resized(held, 28), resized(images[kernel_share(len(images)) :], 28))
