"""A batch: each notebook in its own grading process, N at a time; one hostile notebook costs only itself."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from grader.run.batch import default_jobs, gpu_slots, threads_per_job, visible_gpus
from grader.run.cli import main
from tests.notebook_sources import CORR2D as GOOD
from tests.processes import command_line, descendants, start_stoppable, still_running

#: The kernel's parent is its launcher (grader.sandbox.launcher); the launcher's parent is the grading process.
KILLS_ITS_GRADER = (
    "import os, signal\n"
    "grader = int(open(f'/proc/{os.getppid()}/stat').read().rsplit(')', 1)[1].split()[1])\n"
    "os.kill(grader, signal.SIGKILL)"
)


def write(folder, name, source):
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), folder / f"{name}.ipynb")


def verdicts(out, name):
    data = json.loads((out / f"{name}.json").read_text())
    return data["execution"]["status"], {q["id"]: q["status"] for q in data["questions"]}, data["score"]


def test_parallel_jobs_give_the_same_verdicts_as_one_job(tmp_path, data_dir):
    subs = tmp_path / "subs"
    subs.mkdir()
    write(subs, "a", GOOD)
    write(subs, "b", "x = 1")
    write(subs, "c", GOOD.replace("- h + 1", "- h"))
    common = ["--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir), "--json"]
    assert main([str(subs), "--out", str(tmp_path / "one"), "--jobs", "1", *common]) == 0
    assert main([str(subs), "--out", str(tmp_path / "two"), "--jobs", "2", *common]) == 0
    for name in "abc":
        assert verdicts(tmp_path / "one", name) == verdicts(tmp_path / "two", name)
    assert verdicts(tmp_path / "two", "a")[1]["corr2d"] == "pass"
    assert verdicts(tmp_path / "two", "c")[1]["corr2d"] == "fail"


def test_a_notebook_that_kills_its_grader_costs_only_its_own_result(tmp_path, data_dir, capsys, monkeypatch):
    monkeypatch.setenv("GRADER_NO_SANDBOX", "1")  # in the sandbox the kill cannot reach the grader (tests/test_sandbox.py)
    subs = tmp_path / "subs"
    subs.mkdir()
    write(subs, "good", GOOD)
    write(subs, "hostile", KILLS_ITS_GRADER)
    before = set(Path(tempfile.gettempdir()).glob("hwgrader-*"))
    code = main(
        [
            str(subs),
            "--out",
            str(tmp_path / "out"),
            "--jobs",
            "2",
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
    results = {r["submission"].rsplit("/", 1)[-1]: r for r in json.loads(capsys.readouterr().out)}
    assert results["good.ipynb"]["execution"]["status"] == "ok"
    assert {q["id"]: q["status"] for q in results["good.ipynb"]["questions"]}["corr2d"] == "pass"
    assert set(Path(tempfile.gettempdir()).glob("hwgrader-*")) == before  # the killed child's folder went with the batch's
    hostile = results["hostile.ipynb"]
    assert hostile["execution"]["status"] == "crashed" and "exited with status -9" in hostile["execution"]["message"]
    assert hostile["score"] == 0 and all(q["status"] in ("error", "manual") for q in hostile["questions"])


def test_jobs_and_threads_fit_the_machine():
    assert default_jobs() >= 1
    assert threads_per_job(1) >= threads_per_job(2) >= 1


def test_gpu_slots_pack_k_kernels_on_each_gpu():
    slots = gpu_slots(["0", "1"], 3)
    assert len(slots) == 6
    assert [s["CUDA_VISIBLE_DEVICES"] for s in slots].count("0") == 3
    assert slots[:2] == [{"CUDA_VISIBLE_DEVICES": "0"}, {"CUDA_VISIBLE_DEVICES": "1"}]  # spread before stacking


def test_visible_gpus_follow_cuda_visible_devices(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert visible_gpus() == ["2", "3"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_killing_a_batch_with_sigkill_and_rerunning_grades_only_what_is_missing(tmp_path, data_dir):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name, seconds in (("a", 1), ("b", 10), ("c", 1)):  # b is still running when a's result appears
        write(subs, name, f"import time\ntime.sleep({seconds})\n" + GOOD)
    command = [
        sys.executable,
        "-m",
        "grader.run.cli",
        str(subs),
        "--out",
        str(out),
        "--jobs",
        "1",
        "--budget",
        "quick",
        "--device",
        "cpu",
        "--data-dir",
        str(data_dir),
    ]
    batch = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while not (out / "a.json").exists() and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.2)
    os.killpg(batch.pid, signal.SIGKILL)  # the coordinator and every child, mid-way through b
    batch.wait()
    assert (out / "a.json").exists() and not (out / "c.json").exists()
    assert not list(out.rglob("*.tmp"))  # nothing half-written
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0
    assert "a.ipynb: unchanged since it was graded" in rerun.stdout
    assert "b.ipynb: unchanged" not in rerun.stdout and "c.ipynb: unchanged" not in rerun.stdout
    assert all(verdicts(out, name)[1]["corr2d"] == "pass" for name in "abc")


def kernels_below(pid: int) -> set[int]:
    """The Jupyter kernels a coordinator's grading processes run (not the bubblewrap processes around them)."""
    return {p for p in descendants(pid) if "ipykernel_launcher" in command_line(p) and "bwrap" not in command_line(p).split(" ")[0]}


def test_kill_stops_a_batch_as_ctrl_c_does_and_nothing_it_started_outlives_it(tmp_path, data_dir):
    """`kill` (SIGTERM) on the coordinator: exit 143, the way to resume said, no grading process or kernel left."""
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    for name in "ab":
        write(subs, name, "import time\ntime.sleep(300)")
    command = [sys.executable, "-m", "grader.run.cli", str(subs), "--out", str(out), "--jobs", "2"]
    command += ["--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir)]
    batch = start_stoppable(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while len(kernels_below(batch.pid)) < 2 and time.monotonic() < deadline and batch.poll() is None:
        time.sleep(0.5)
    started = descendants(batch.pid)
    assert len(kernels_below(batch.pid)) >= 2, "the two kernels never started"
    batch.terminate()
    _, err = batch.communicate(timeout=60)
    assert batch.returncode == 143, err
    assert "grade: terminated; every finished result is saved, and a rerun grades only the rest" in err
    assert still_running(started, within=15) == []
