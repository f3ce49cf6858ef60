"""Grading on a Dask cluster (a LocalCluster here): same verdicts as local jobs; a dying worker is retried, then recorded."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dask.distributed  # noqa: F401 -- the README's set-up installs the [cluster] extra: no skip, a failure without it
import nbformat

from grader.run.cli import main
from tests.notebook_sources import CORR2D as GOOD
from tests.processes import descendants, start_stoppable, still_running

#: Kills the Dask worker that runs the grading process that runs this kernel (only possible without the sandbox):
#: kernel -> its launcher (grader.sandbox.launcher) -> the grading process -> the worker.
KILLS_ITS_WORKER = """
import os, signal
def parent(pid):
    return int(open(f'/proc/{pid}/stat').read().rsplit(')', 1)[1].split()[1])
os.kill(parent(parent(os.getppid())), signal.SIGKILL)
"""


def write(folder, name, source):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), folder / f"{name}.ipynb")


def graded(out, name):
    data = json.loads((out / f"{name}.json").read_text())
    return data["execution"]["status"], {q["id"]: q["status"] for q in data["questions"]}, data


def test_a_local_cluster_grades_like_local_jobs_and_the_coordinator_writes_everything(tmp_path, data_dir):
    """Same verdicts and cache keys as local jobs; results, notebooks, reports and class files are written here."""
    subs = tmp_path / "subs"
    subs.mkdir()
    write(subs, "good", GOOD)
    write(subs, "wrong", GOOD.replace("- h + 1", "- h"))
    common = ["--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir), "--json"]
    assert main([str(subs), "--out", str(tmp_path / "dask"), "--scheduler", "local:2", *common]) == 0
    assert main([str(subs), "--out", str(tmp_path / "local"), "--jobs", "2", *common]) == 0
    for name in ("good", "wrong"):
        on_dask, local = graded(tmp_path / "dask", name), graded(tmp_path / "local", name)
        assert on_dask[:2] == local[:2]
        assert on_dask[2]["submission"] == str(subs / f"{name}.ipynb") and on_dask[2]["cache_key"] == local[2]["cache_key"]
        assert (tmp_path / "dask" / "notebooks" / f"{name}.ipynb").is_file()
        report = (tmp_path / "dask" / f"{name}.html").read_text()  # drawn on the worker, naming the coordinator's path
        assert str(subs / f"{name}.ipynb") in report and "hwgrader-worker-" not in report
    assert graded(tmp_path / "dask", "good")[1]["corr2d"] == "pass" and graded(tmp_path / "dask", "wrong")[1]["corr2d"] == "fail"
    assert (tmp_path / "dask" / "index.html").is_file() and (tmp_path / "dask" / "gradebook.csv").is_file()


def test_a_worker_that_keeps_dying_is_retried_then_recorded_as_crashed(tmp_path, data_dir, capsys):
    subs = tmp_path / "subs"
    subs.mkdir()
    write(subs, "good", GOOD)
    write(subs, "killer", KILLS_ITS_WORKER)
    code = main(
        [
            str(subs),
            "--out",
            str(tmp_path / "out"),
            "--scheduler",
            "local:2",
            "--no-sandbox",
            "--budget",
            "quick",
            "--device",
            "cpu",
            "--data-dir",
            str(data_dir),
            "--json",
        ]
    )
    assert code == 0
    killer = graded(tmp_path / "out", "killer")
    assert killer[0] == "crashed" and "Dask worker died" in killer[2]["execution"]["message"]
    assert killer[2]["score"] == 0
    assert graded(tmp_path / "out", "good")[1]["corr2d"] == "pass"  # graded on a worker the killer did not take down


def test_a_notebook_whose_cuda_failed_on_its_worker_is_submitted_once_more_alone(tmp_path, data_dir, monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")  # the workers' kernels see no GPU, though CUDA is asked for
    subs = tmp_path / "subs"
    subs.mkdir()
    write(subs, "good", GOOD)
    out = tmp_path / "dask"
    code = main(
        [
            str(subs),
            "--out",
            str(out),
            "--scheduler",
            "local:1",
            "--budget",
            "quick",
            "--device",
            "cuda",
            "--data-dir",
            str(data_dir),
            "--json",
        ]
    )
    status, questions, data = graded(out, "good")
    assert code == 3 and status == "environment_error" and set(questions.values()) == {"environment"}
    assert data["execution"]["message"].endswith("graded again alone, with the same outcome")


def test_a_cluster_run_interrupted_halfway_and_started_again_regrades_only_what_has_no_result(tmp_path, data_dir):
    """Issue 31, item 4 on Dask: Ctrl-C closes the cluster (no worker left); the same command grades only the rest."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name, source in (("a", GOOD), ("b", "import time\ntime.sleep(6)\n" + GOOD), ("c", GOOD.replace("- h + 1", "- h"))):
        write(subs, name, source)
    command = [str(subs), "--out", str(out), "--scheduler", "local:1", "--budget", "quick", "--device", "cpu"]
    command += ["--data-dir", str(data_dir)]
    temporary = Path(tempfile.mkdtemp(prefix="t-", dir="/tmp"))  # short: the grading stays below it (scratch_root)
    environment = {**os.environ, "TMPDIR": str(temporary)}
    coordinator = start_stoppable(
        [sys.executable, "-m", "grader.run.cli", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment
    )
    deadline = time.monotonic() + 300
    while not list(out.glob("*.json")) and time.monotonic() < deadline and coordinator.poll() is None:
        time.sleep(0.2)
    started = descendants(coordinator.pid)  # the LocalCluster's worker, its grading process and kernel
    coordinator.send_signal(signal.SIGINT)  # Ctrl-C, with one result written and the next notebook on the worker
    _, err = coordinator.communicate(timeout=120)
    assert coordinator.returncode == 130, err.decode()
    first = {p.stem: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert 1 <= len(first) < 3 and started
    assert still_running(started, within=15) == []
    # Dask's own lock files of its shared scratch space (one fixed name, reused by every run) may stay.
    left = sorted(str(path.relative_to(temporary)) for path in temporary.rglob("*") if "dask-scratch-space" not in path.parts)
    shutil.rmtree(temporary, ignore_errors=True)
    assert left == []  # the worker stopped mid-notebook left neither its copy of it nor its grading's folder
    rerun = io.StringIO()
    with contextlib.redirect_stdout(rerun), contextlib.redirect_stderr(io.StringIO()):
        assert main(command) == 0
    reused = {line.split(":")[0] for line in rerun.getvalue().splitlines() if "unchanged since it was graded" in line}
    assert reused == {str(subs / f"{stem}.ipynb") for stem in first}
    assert all((out / f"{stem}.json").stat().st_mtime_ns == mtime for stem, mtime in first.items())
    assert {name: graded(out, name)[1]["corr2d"] for name in "abc"} == {"a": "pass", "b": "pass", "c": "fail"}
