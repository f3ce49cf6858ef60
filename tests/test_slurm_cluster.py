"""``grade --scheduler slurm`` through a real one-node SLURM (the session's ``slurm`` fixture, tests/slurm_node.py).

One batch is shared by most tests: the fixture solution cut before LeNet (tests/class_notebooks.py), a mutation of it
and a hostile notebook, graded by three jobs on a two-core node (so one waits), one job ``scancel``-led mid-notebook.
"""

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
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import pytest

from grader.run.cli import main
from tests.class_notebooks import FIXTURES, hostile, mutated
from tests.notebook_sources import CORR2D
from tests.processes import start_stoppable
from tests.slurm_node import CLOSED_PARTITION, PARTITION, SlurmNode

#: The shared batch's notebooks: the solution, a hand-in with an off-by-one corr2d, and a kernel that kills itself.
BATCH = {
    "solution": lambda: mutated(FIXTURES / "solution.ipynb", "exact"),
    "off_by_one": lambda: mutated(FIXTURES / "solution.ipynb", "off_by_one"),
    "hostile": lambda: hostile("exits"),
}


@pytest.fixture
def work():
    """A short folder for the workers' temporary files (the kernels' socket paths must stay under 108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="hwg-"))
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def write_config(path: Path, work: Path, partition: str = PARTITION, jobs: int = 2, **extra) -> Path:
    """A cluster config for the test node; the workers' temporary files go to ``work``, so a test can see what is left."""
    work.mkdir(parents=True, exist_ok=True)
    keys = {"partition": partition, "jobs": jobs, "memory": "5GB", "walltime": "00:30:00", **extra}
    lines = [f"{k} = {json.dumps(v)}" for k, v in keys.items()]
    lines.append(f"prologue = {json.dumps([f'export TMPDIR={work}'])}")
    path.write_text("[slurm]\n" + "\n".join(lines) + "\n", encoding="utf-8")
    return path


def common(data_dir: Path) -> list[str]:
    return ["--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir), "--json"]


def ours(node: SlurmNode) -> list[str]:
    """This run's jobs still in the queue (every job grade submits is named hwgrader-...)."""
    return [line for line in node.queue() if " hwgrader-" in line]


def verdicts(out: Path, name: str) -> tuple[str, dict[str, str]]:
    data = json.loads((out / f"{name}.json").read_text(encoding="utf-8"))
    return data["execution"]["status"], {q["id"]: q["status"] for q in data["questions"]}


@dataclass
class Run:
    out: Path
    work: Path
    code: int
    stderr: str
    seconds: float
    cancelled: list[str] = field(default_factory=list)
    results_when_cancelled: int = -1
    queue_after: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def submissions(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("slurm-class")
    for name, make in BATCH.items():
        nbformat.write(make(), str(folder / f"{name}.ipynb"))
    return folder


@pytest.fixture(scope="module")
def slurm_batch(slurm: SlurmNode, submissions: Path, tmp_path_factory, data_dir: Path):
    """The batch graded through SLURM (3 jobs, 2 cores); once two jobs run, one of them is cancelled mid-notebook."""
    base = tmp_path_factory.mktemp("slurm-batch")
    work = Path(tempfile.mkdtemp(prefix="hwg-"))  # short: see the `work` fixture
    config = write_config(base / "cluster.toml", work, jobs=3)
    run = Run(base / "out", work, -1, "", 0.0)

    def cancel_one() -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            running = [line.split()[0] for line in ours(slurm) if line.endswith(" RUNNING")]
            if len(running) >= 2:
                time.sleep(8)  # the workers connect and start a notebook each; a cut notebook takes 15 s and more
                run.results_when_cancelled = len(list(run.out.glob("*.json")))
                slurm.run(["scancel", running[0]])
                run.cancelled.append(running[0])
                return
            time.sleep(0.5)

    canceller = threading.Thread(target=cancel_one, daemon=True)
    canceller.start()
    stderr = io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        run.code = main(
            [str(submissions), "--out", str(run.out), "--scheduler", "slurm", "--cluster-config", str(config), *common(data_dir)]
        )
    run.seconds = time.monotonic() - started
    canceller.join(5)
    run.stderr, run.queue_after = stderr.getvalue(), ours(slurm)
    yield run
    shutil.rmtree(work, ignore_errors=True)


@pytest.fixture(scope="module")
def local_batch(submissions: Path, tmp_path_factory, data_dir: Path) -> Path:
    out = tmp_path_factory.mktemp("local-batch") / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        assert main([str(submissions), "--out", str(out), "--jobs", "2", *common(data_dir)]) == 0
    return out


def test_the_fixtures_and_a_hostile_notebook_graded_through_slurm_have_the_verdicts_of_a_local_batch(slurm_batch, local_batch):
    assert slurm_batch.code == 0, slurm_batch.stderr
    for name in BATCH:
        assert verdicts(slurm_batch.out, name) == verdicts(local_batch, name), name
    assert verdicts(slurm_batch.out, "solution")[1]["corr2d"] == "pass" and verdicts(slurm_batch.out, "off_by_one")[1]["corr2d"] == "fail"
    assert verdicts(slurm_batch.out, "hostile")[0] != "ok"
    assert (slurm_batch.out / "index.html").is_file() and (slurm_batch.out / "gradebook.csv").is_file()


def test_a_worker_job_cancelled_mid_notebook_is_replaced_and_every_result_is_written(slurm_batch):
    assert slurm_batch.cancelled and slurm_batch.results_when_cancelled == 0  # both running jobs were mid-notebook
    for name in BATCH:
        data = json.loads((slurm_batch.out / f"{name}.json").read_text(encoding="utf-8"))
        assert "Dask worker died" not in data["execution"]["message"], name  # rescheduled, not recorded as crashed
        assert (slurm_batch.out / f"{name}.html").is_file() and (slurm_batch.out / "notebooks" / f"{name}.ipynb").is_file()


def test_the_coordinator_says_how_many_jobs_run_and_wait_until_a_worker_arrives(slurm_batch):
    assert "of 3 SLURM jobs running" in slurm_batch.stderr and "; grading" in slurm_batch.stderr


def test_nothing_is_left_in_the_queue_or_the_work_folders_afterwards(slurm_batch):
    assert slurm_batch.queue_after == []
    assert list(slurm_batch.work.iterdir()) == []  # each job's folder is removed as it ends, the cancelled one's too
    assert not list(Path.cwd().glob("slurm-*.out"))  # sbatch's default output file is not written


def test_a_partition_that_does_not_exist_is_a_clear_error_before_anything_is_submitted(
    slurm, submissions, tmp_path, work, data_dir, capsys
):
    config = write_config(tmp_path / "cluster.toml", work, partition="nope")
    out = tmp_path / "out"
    assert main([str(submissions), "--out", str(out), "--scheduler", "slurm", "--cluster-config", str(config), *common(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "SLURM has no partition 'nope'" in err and "nothing was submitted" in err
    assert not out.exists() and ours(slurm) == []


def test_jobs_that_never_start_end_in_a_clear_error_not_a_hang(slurm, submissions, tmp_path, work, data_dir, capsys):
    config = write_config(tmp_path / "cluster.toml", work, partition=CLOSED_PARTITION, start_timeout=6)
    started = time.monotonic()
    assert (
        main([str(submissions), "--out", str(tmp_path / "out"), "--scheduler", "slurm", "--cluster-config", str(config), *common(data_dir)])
        == 2
    )
    assert time.monotonic() - started < 60
    err = capsys.readouterr().err
    assert "0 of 2 SLURM jobs running, 2 pending (PartitionDown)" in err
    assert "no SLURM job started within start_timeout = 6 s" in err and "cancelled" in err
    assert ours(slurm) == [] and not (tmp_path / "out").exists()


def test_a_batch_interrupted_halfway_and_started_again_regrades_only_what_has_no_result(slurm, tmp_path, work, data_dir):
    """Issue 31, item 4: Ctrl-C cancels the jobs; the same command again grades only the rest."""
    subs = tmp_path / "subs"
    subs.mkdir()
    for n, source in enumerate([CORR2D, CORR2D.replace("- h + 1", "- h")]):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), str(subs / f"n{n}.ipynb"))
    config = write_config(tmp_path / "cluster.toml", work, jobs=1)
    out = tmp_path / "out"
    command = [str(subs), "--out", str(out), "--scheduler", "slurm", "--cluster-config", str(config), *common(data_dir)]
    coordinator = start_stoppable([sys.executable, "-m", "grader.run.cli", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while not list(out.glob("*.json")) and time.monotonic() < deadline and coordinator.poll() is None:
        time.sleep(0.2)
    coordinator.send_signal(signal.SIGINT)  # Ctrl-C
    _, err = coordinator.communicate(timeout=60)
    assert coordinator.returncode == 130, err.decode()
    assert ours(slurm) == []  # Ctrl-C cancelled the job
    first = {p.stem: p.stat().st_mtime_ns for p in out.glob("*.json")}
    assert len(first) == 1
    rerun = io.StringIO()
    with contextlib.redirect_stdout(rerun), contextlib.redirect_stderr(io.StringIO()):
        assert main(command[:-1]) == 0  # without --json: the reuse lines are printed
    reused = {line.split(":")[0] for line in rerun.getvalue().splitlines() if "unchanged since it was graded" in line}
    assert reused == {str(subs / f"{stem}.ipynb") for stem in first}
    assert {p.stem for p in out.glob("*.json")} == {"n0", "n1"}
    assert all((out / f"{stem}.json").stat().st_mtime_ns == mtime for stem, mtime in first.items())
    assert verdicts(out, "n1")[1]["corr2d"] == "fail" and ours(slurm) == []


def test_the_test_node_is_idle_and_runs_a_job(slurm):
    """The fixture itself: a batch job runs to completion on the node and leaves the queue."""
    submitted = slurm.run(["sbatch", "--output=/dev/null", "--wrap", "true"])
    assert submitted.returncode == 0, submitted.stderr
    job = submitted.stdout.split()[-1]
    deadline = time.monotonic() + 60
    while job in " ".join(slurm.queue()) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert job not in " ".join(slurm.queue()) and os.environ["SLURM_CONF"] == str(slurm.conf)
