"""A batch: each notebook in its own grading process, N at a time; one hostile notebook costs only itself."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import nbformat

from grader.batch import default_jobs, threads_per_job
from grader.cli import main
from tests.notebook_sources import CORR2D as GOOD

KILLS_ITS_GRADER = "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)"


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
    code = main([str(subs), "--out", str(tmp_path / "out"), "--jobs", "2", "--budget", "quick", "--device", "cpu",
                 "--data-dir", str(data_dir), "--json"])  # fmt: skip
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
