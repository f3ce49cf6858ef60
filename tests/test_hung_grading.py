"""A grading process stuck in the grader's own work is stopped: its slot is freed, its notebook recorded as not graded.

The notebook's limit bounds the student's code; ``grader.run.job.process_limit`` bounds the grading process
around it. Here the limit is shrunk to seconds and the notebook sleeps far longer than that (but well within
its own limit), which is what a grading process stuck in ``poll()`` looks like from outside.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import replace

import nbformat
import pytest

from grader.run.cli import main
from grader.run.cluster import grade_on_worker
from grader.run.job import WorkerJob
from tests.processes import still_running

#: Seconds a grading process may run in these tests: long enough to start its kernel, far shorter than the sleep.
LIMIT = 20.0


def sleeper(folder, pid_file):
    """A notebook that writes its kernel's pid and then sleeps two minutes."""
    source = f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(120)"
    path = folder / "sleeper.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)
    return path


def gone(pid_file, within=15.0):
    """Whether the process whose pid the notebook wrote has ended (or never started)."""
    if not pid_file.exists():
        return True
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.2)
    return False


@pytest.fixture
def unsandboxed(monkeypatch):
    monkeypatch.setenv("GRADER_NO_SANDBOX", "1")  # the kernel may write its pid where the test reads it


def test_a_local_batch_stops_a_grading_process_that_outlives_its_limit_and_records_it_as_not_graded(
    tmp_path, data_dir, monkeypatch, unsandboxed
):
    monkeypatch.setattr("grader.run.settings.process_limit", lambda notebook_seconds: LIMIT)
    subs, out, pid_file = tmp_path / "subs", tmp_path / "out", tmp_path / "kernel.pid"
    subs.mkdir()
    sleeper(subs, pid_file)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), subs / "short.ipynb")  # two: a batch
    start = time.monotonic()
    code = main([str(subs), "--out", str(out), "--jobs", "2", "--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir)])
    assert code == 0 and time.monotonic() - start < 100  # not the two minutes of the sleep
    result = json.loads((out / "sleeper.json").read_text())
    assert result["execution"]["status"] == "crashed" and result["cache_key"] == ""  # a rerun grades it again
    assert "was still running after" in result["execution"]["message"] and "fault of the grader" in result["execution"]["message"]
    assert all(q["message"].startswith("not graded") for q in result["questions"] if q["status"] == "error")
    assert gone(pid_file)  # its kernel went with it
    assert json.loads((out / "short.json").read_text())["execution"]["status"] == "ok"  # graded beside it, not stopped


def test_a_dask_worker_stops_a_grading_process_that_outlives_its_limit_and_says_why(tmp_path, data_dir, unsandboxed):
    pid_file = tmp_path / "kernel.pid"
    notebook = sleeper(tmp_path, pid_file)
    job = WorkerJob(
        notebook="", out="", stem="sleeper", assignment="hw2", budget="quick", device="cpu", data_dir=str(data_dir),
        threads=1, memory_bytes=0, sandbox=False, stop_after=LIMIT,
    )  # fmt: skip
    start = time.monotonic()
    payload = grade_on_worker(notebook.name, notebook.read_bytes(), job.to_json())
    assert time.monotonic() - start < LIMIT + 15
    assert payload["json"] is None and "was still running after" in payload["error"]
    assert gone(pid_file)


def test_a_grading_process_is_given_twice_its_notebooks_limit_and_a_grace():
    from grader.run.job import PROCESS_GRACE, process_limit

    assert process_limit(1500) == 3000 + PROCESS_GRACE


#: The grading process's parent in the next test: starts it as a batch or a Dask worker does, says its pid, waits.
PARENT = """
import subprocess, sys
from grader.run.job import WorkerJob, worker_command
child = subprocess.Popen(worker_command(WorkerJob.from_json(sys.argv[1])))
print(child.pid, flush=True)
child.wait()
"""


def test_a_grading_process_and_its_kernel_die_with_the_process_that_started_it(tmp_path, data_dir, unsandboxed):
    """A Dask worker closed on Ctrl-C (or any parent killed) leaves no grading process running on, orphaned."""
    pid_file, out = tmp_path / "kernel.pid", tmp_path / "out"
    notebook = sleeper(tmp_path, pid_file)
    job = WorkerJob(
        notebook=str(notebook), out=str(out), stem="sleeper", assignment="hw2", budget="quick", device="cpu",
        data_dir=str(data_dir), threads=1, memory_bytes=0, sandbox=False,
    )  # fmt: skip
    parent = subprocess.Popen([sys.executable, "-c", PARENT, job.to_json()], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    grading = int(parent.stdout.readline())
    deadline = time.monotonic() + 120
    while not pid_file.exists() and time.monotonic() < deadline:  # the kernel is running the student's sleep
        time.sleep(0.2)
    assert pid_file.exists()
    parent.kill()
    parent.wait()
    assert still_running([grading], within=15) == []
    assert gone(pid_file)  # its kernel went with it
    assert not (out / "sleeper.json").exists()


def test_a_grading_process_whose_parent_has_already_ended_grades_nothing(tmp_path, data_dir):
    job = WorkerJob(
        notebook=str(tmp_path / "a.ipynb"), out=str(tmp_path / "out"), stem="a", assignment="hw2", budget="quick",
        device="cpu", data_dir=str(data_dir), threads=1, memory_bytes=0,
    )  # fmt: skip
    orphan = replace(job, parent=os.getpid() + 1_000_000)  # not its parent: the one that started it is gone
    done = subprocess.run([sys.executable, "-m", "grader.run.worker", orphan.to_json()], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "has already ended; nothing graded" in done.stderr
    assert not (tmp_path / "out").exists()
