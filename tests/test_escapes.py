"""Hostile notebooks that try to make the grader itself act outside the sandbox, or outlive it.

Each attack is a small notebook of its own with an honest question beside it; the tests look from the
*host's* side: no file may appear outside the work area, no process of the kernel may outlive a killed
grader, and the honest question keeps its points. The unit-level twins (links planted on the way to the
tensor folder, a tensor read straight into its own memory) are in tests/test_protocol.py.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import nbformat
import pytest

from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from grader.sandbox.confinement import GiB, Limits, bwrap_path
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SANDBOX = bwrap_path() is not None
if not SANDBOX and os.environ.get("GRADER_REQUIRE_SANDBOX") == "1":
    raise RuntimeError("GRADER_REQUIRE_SANDBOX=1 but bubblewrap cannot build a sandbox here (apt-get install bubblewrap)")
needs_sandbox = pytest.mark.skipif(not SANDBOX, reason="bubblewrap is not available")

#: A two-question assignment: an honest function, and a model the grader sends its weights to as a file.
CONFIG = """
name = "escapes"
title = "Escapes"

[[questions]]
id = "double"
title = "`double(X)`"
points = 1
defines = ["double"]

[[questions]]
id = "net"
title = "`Net`"
points = 1
defines = ["Net"]
"""

CHECKS = """
import torch

from grader.checks import Fail, Submission, expect_tensor


def check_double(sub: Submission):
    X = torch.arange(6.0)
    expect_tensor(sub.call("double", X), 2 * X, "double(X)")


def check_net(sub: Submission):
    torch.manual_seed(0)
    book = torch.nn.Linear(200, 200)  # 160 KB of weights: they travel to the kernel as a file
    X = torch.randn(3, 200)
    reply = sub.forward("Net", X, state=list(book.state_dict().values()), modes=("eval",))
    expect_tensor(reply["outputs"]["eval"], book(X).detach(), "Net()(X)")
"""

HONEST = "import torch\ndef double(X):\n    return 2 * X\n"


@pytest.fixture(scope="module")
def escapes_assignment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("escapes")
    (folder / "config.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS, encoding="utf-8")
    return load_assignment(folder)


def grade(tmp_path: Path, data_dir: Path, assignment, *cells: str, timeout: float | None = None):
    path = tmp_path / "submission.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    options = GradeOptions(
        Budget("quick", Path(data_dir), 256, 128, 1),
        "cpu",
        cell_timeout=60,
        timeout=timeout,
        limits=Limits(memory_bytes=4 * GiB, processes=128, disk_bytes=256 * 2**20),
    )
    result = grade_notebook(path, assignment, options)
    return result, {q.id: q for q in result.questions}


def _flipping_net(host: Path) -> str:
    """A model whose constructor puts the real tensor folder back: the grader's file, written through the link
    before the request, would stay on the host (the grader's removal afterwards goes to the real folder)."""
    return textwrap.dedent(
        f"""
        import os, torch
        os.rename("/tmp/.kernel/blobs", "/tmp/.kernel/real")
        os.symlink({str(host)!r}, "/tmp/.kernel/blobs")

        class Net(torch.nn.Module):
            def __init__(self):
                super().__init__()
                if os.path.islink("/tmp/.kernel/blobs"):
                    os.remove("/tmp/.kernel/blobs")
                    os.rename("/tmp/.kernel/real", "/tmp/.kernel/blobs")
                self.linear = torch.nn.Linear(200, 200)

            def forward(self, X):
                return self.linear(X)
        """
    )


@needs_sandbox
def test_a_tensor_folder_swapped_for_a_link_to_a_host_folder_gets_no_file_written_there(tmp_path, data_dir, escapes_assignment):
    host = tmp_path / "host"
    host.mkdir()
    result, by_id = grade(tmp_path, data_dir, escapes_assignment, HONEST, _flipping_net(host))
    assert list(host.iterdir()) == []
    # The link lives in the notebook's kernel; `Net` is built and run in the clean room, whose tensor folder no cell
    # reaches, so the attack gains nothing and the model is judged as written (the refusal of a planted link
    # itself is tests/test_protocol.py's, on the descriptor walk).
    assert by_id["net"].status == "pass"
    assert by_id["double"].status == "pass" and by_id["double"].points == 1
    assert result.execution.status == "ok"


@needs_sandbox
def test_a_socket_replaced_by_a_link_is_never_reconnected_through_it(tmp_path, data_dir, escapes_assignment):
    """The kernel moves its shell socket away and links its name to a host socket; the grader's next
    requests still reach the kernel's own socket (pinned by descriptor), never the host's."""
    listener_path = tmp_path / "host.sock"
    import socket

    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(listener_path))
    listener.listen(8)
    listener.setblocking(False)
    swap = textwrap.dedent(
        f"""
        import glob, os
        for name in glob.glob("/tmp/.kernel/ipc-*"):
            os.rename(name, name + ".moved")
            os.symlink({str(listener_path)!r}, name)
        """
    )
    try:
        result, by_id = grade(tmp_path, data_dir, escapes_assignment, HONEST, swap)
        try:
            listener.accept()
            reached = True
        except BlockingIOError:
            reached = False
    finally:
        listener.close()
    assert not reached
    assert by_id["double"].status == "pass"


GRADING_CHILD = """
import sys
from pathlib import Path
from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
options = GradeOptions(Budget("quick", Path(sys.argv[2]), 256, 128, 1), "cpu", cell_timeout=600, sandbox=sys.argv[3] == "1")
grade_notebook(Path(sys.argv[1]), load_assignment("demo"), options)
"""


def _descendants(root: int) -> dict[int, str]:
    """Every living descendant of ``root`` (pid -> start time, to tell a reused pid apart)."""
    children: dict[int, list[int]] = {}
    starts: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        starts[int(entry)] = fields[19]
    found: dict[int, str] = {}
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = starts[child]
            todo.append(child)
    return found


def _alive(pid: int, start: str) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == start and fields[0] != "Z"


@pytest.mark.parametrize("sandboxed", [pytest.param(True, marks=needs_sandbox), False], ids=["sandbox", "no-sandbox"])
def test_killing_the_grading_process_kills_its_kernel_and_everything_the_notebook_started(tmp_path, data_dir, sandboxed):
    notebook = tmp_path / "sleeper.ipynb"
    cell = "import subprocess, time\nsubprocess.Popen(['sleep', '600'])\nprint('started', flush=True)\ntime.sleep(600)\n"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]), notebook)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen([sys.executable, "-c", GRADING_CHILD, str(notebook), str(data_dir), "1" if sandboxed else "0"], env=env)
    try:
        deadline = time.monotonic() + 600  # a busy 2-core machine: the kernel and its first cell may take minutes
        seen: dict[int, str] = {}
        while time.monotonic() < deadline:  # until the notebook's own `sleep 600` runs
            assert child.poll() is None, "the grading process ended before the notebook's cell ran"
            seen = _descendants(child.pid)
            if any(Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"sleep\x00600\x00") for pid in seen if _alive(pid, seen[pid])):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the notebook's cell never started")
        seen = _descendants(child.pid)
        child.send_signal(signal.SIGKILL)
        child.wait()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(_alive(pid, start) for pid, start in seen.items()):
            time.sleep(0.2)
        survivors = {pid: Path(f"/proc/{pid}/cmdline").read_bytes()[:80] for pid, start in seen.items() if _alive(pid, start)}
        assert survivors == {}
    finally:
        for pid, start in _descendants(child.pid).items():
            if _alive(pid, start):
                os.kill(pid, signal.SIGKILL)


MEMORY_CHILD = """
import os, resource, tempfile
from grader.kernel import protocol
from grader.sandbox.files import BlobFolder
folder = tempfile.mkdtemp()
with open(os.path.join(folder, "0123456789abcdef.bin"), "wb") as file:  # 256 MiB of float32 ones, as the kernel writes them
    for _ in range(256):
        file.write(b"\\x00\\x00\\x80\\x3f" * (1 << 18))
reply = {"__tensor__": "float32", "shape": [256 << 18], "blob": "0123456789abcdef.bin"}
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
value = protocol.decode(reply, BlobFolder.open(folder))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(before, after, float(value[-10:].sum()), os.listdir(folder))
"""


def test_a_large_tensor_reply_is_held_once_in_the_graders_memory():
    """256 MiB from the kernel costs the grader about 256 MiB more at its peak, not twice that; the file is removed."""
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD], capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    before, after, total, left = out.stdout.split(maxsplit=3)
    grown_mib = (int(after) - int(before)) / 1024  # ru_maxrss is in KiB on Linux
    assert float(total) == 10.0 and left.strip() == "[]"
    assert grown_mib < 256 * 1.25, f"the peak grew by {grown_mib:.0f} MiB for a 256 MiB tensor"
