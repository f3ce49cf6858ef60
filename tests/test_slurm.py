"""``--scheduler slurm``: the ``[slurm]`` table is checked before anything is submitted, and becomes the jobs' sbatch header.

Fast: no SLURM is needed here (the header comes from dask-jobqueue's job class, nothing is submitted). Grading through
a real SLURM is tests/test_slurm_cluster.py.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from grader.errors import ConfigError
from grader.run.cli import main
from grader.run.slurm import JOB_FOLDER, SlurmConfig, SlurmConfigError, job_script, load_config, parse_config, queue_state, walltime_seconds
from grader.sandbox.platform import SOCKET_PATH_BELOW, SOCKET_PATH_LIMIT

HOUR = 3600.0


def table(**keys):
    return {"slurm": {"partition": "gpu", **keys}}


def test_a_full_table_is_read_with_every_key():
    config = parse_config(
        table(
            cores=4,
            memory="16GB",
            walltime="02:00:00",
            jobs=10,
            gpus_per_job=1,
            prologue=["module load cuda", "source /shared/venv/bin/activate"],
            data_dir="/shared/fashion-mnist",
            python="/shared/venv/bin/python",
            account="cs231",
            start_timeout=120,
        ),
        HOUR,
    )
    assert config == SlurmConfig(
        "gpu", 4, "16GB", "02:00:00", 10, 1, ("module load cuda", "source /shared/venv/bin/activate"), "/shared/fashion-mnist",
        "/shared/venv/bin/python", "cs231", None, 120.0,
    )  # fmt: skip
    assert config.memory_bytes == 16 * 10**9


def test_an_unknown_key_is_an_error_that_lists_the_known_ones():
    with pytest.raises(SlurmConfigError, match=r"unknown key \[slurm\] gpus \(the keys are -- partition:"):
        parse_config(table(gpus=1), HOUR)


def test_an_unknown_table_is_an_error():
    with pytest.raises(SlurmConfigError, match="unknown table or key pbs"):
        parse_config({**table(), "pbs": {}}, HOUR)


def test_a_missing_partition_is_an_error_that_says_where_to_look():
    with pytest.raises(SlurmConfigError, match="partition is missing.*sinfo"):
        parse_config({"slurm": {"cores": 2}}, HOUR)


def test_a_file_without_a_slurm_table_is_an_error():
    with pytest.raises(SlurmConfigError, match=r"no \[slurm\] table"):
        parse_config({}, HOUR)


def test_a_walltime_shorter_than_the_notebook_timeout_is_an_error():
    with pytest.raises(SlurmConfigError, match=r"walltime 00:20:00 \(1200 s\) is shorter than the notebook timeout \(1500 s\)"):
        parse_config(table(walltime="00:20:00"), 1500)
    assert parse_config(table(walltime="00:25:00"), 1500).walltime == "00:25:00"


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("cores", 0, "cores must be at least 1"),
        ("jobs", "10", "jobs must be a int"),
        ("cores", True, "cores must be a int"),
        ("gpus_per_job", -1, "gpus_per_job must be at least 0"),
        ("memory", "lots", "memory 'lots' is not a size"),
        ("walltime", "two hours", "not a SLURM time limit"),
        ("prologue", "source venv", "prologue must be a list"),
        ("partition", " ", "partition is empty"),
        ("start_timeout", 0, "start_timeout must be positive"),
    ],
)
def test_a_value_of_the_wrong_kind_is_an_error_naming_its_key(key, value, said):
    with pytest.raises(SlurmConfigError, match=said):
        parse_config(table(**{key: value}), 60)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90", 5400), ("5:30", 330), ("02:00:00", 7200), ("1-0", 86400), ("1-2:30", 95400), ("2-00:00:01", 172801)],
)
def test_slurm_time_limits_are_read_in_all_their_forms(text, seconds):
    assert walltime_seconds(text) == seconds


def test_the_config_errors_are_the_projects_config_errors():
    assert issubclass(SlurmConfigError, ConfigError)


def test_the_sbatch_header_asks_for_the_partition_cores_memory_walltime_and_gpus():
    config = parse_config(
        table(cores=4, memory="16GB", walltime="02:00:00", gpus_per_job=2, prologue=["source /shared/venv/bin/activate"], account="cs"),
        HOUR,
    )
    script = job_script(config, job_name="hwgrader-abc")
    header = [line for line in script.splitlines() if line.startswith("#SBATCH")]
    assert "#SBATCH -J hwgrader-abc" in header
    assert "#SBATCH -p gpu" in header and "#SBATCH -A cs" in header
    assert "#SBATCH --cpus-per-task=4" in header and "#SBATCH -t 02:00:00" in header
    assert "#SBATCH --gres=gpu:2" in header
    assert "#SBATCH --output=/dev/null" in header  # no slurm-<id>.out left in the folder grade ran in
    assert any(line.startswith("#SBATCH --mem=") for line in header)
    body = script.split("source /shared/venv/bin/activate", 1)
    assert len(body) == 2 and "distributed.cli.dask_worker" in body[1]  # the prologue runs before the worker starts
    assert "--nthreads 1" in body[1]  # one notebook at a time per job: the job's cores are its kernel's
    folder = body[1].index("mktemp -d"), body[1].index("trap 'rm -rf"), body[1].index("dask_worker")
    assert folder == tuple(sorted(folder))  # after the TA's prologue: the job's own temporary folder, removed as the job ends


def job_folder_of(node_tmpdir: Path) -> tuple[Path, bool]:
    """Runs the job script's folder lines as a job would (bash, SLURM's job id, the node's TMPDIR): the folder made,
    and whether it was gone once the job's shell had exited."""
    lines = "\n".join([*JOB_FOLDER, 'touch "$TMPDIR/kernel-file"', 'echo "$TMPDIR"'])
    env = {**os.environ, "TMPDIR": str(node_tmpdir), "SLURM_JOB_ID": "4242424242"}
    done = subprocess.run(["bash", "-c", lines], env=env, capture_output=True, text=True, check=True, timeout=30)
    folder = Path(done.stdout.strip())
    return folder, not folder.exists()


def test_a_jobs_folder_is_below_the_nodes_tmpdir_and_removed_when_the_job_ends():
    node_tmpdir = Path(tempfile.mkdtemp(prefix="n-", dir="/tmp"))  # short, as on most nodes
    try:
        folder, removed = job_folder_of(node_tmpdir)
        assert folder.parent == node_tmpdir and folder.name.startswith("hwg-4242424242-")
        assert removed
    finally:
        shutil.rmtree(node_tmpdir, ignore_errors=True)


def test_a_deep_node_tmpdir_moves_the_job_folder_where_a_kernels_socket_fits_so_the_trap_still_removes_everything(tmp_path):
    """Below a deep TMPDIR each grading process would put its kernel's folder in /tmp, outside the job's folder."""
    node_tmpdir = tmp_path / ("job-scratch-" + "d" * 60)
    node_tmpdir.mkdir()
    folder, removed = job_folder_of(node_tmpdir)
    assert not folder.is_relative_to(node_tmpdir) and folder.parent == Path("/tmp")
    assert len(os.fsencode(folder)) + SOCKET_PATH_BELOW <= SOCKET_PATH_LIMIT  # scratch_root keeps the grading below it
    assert removed


def test_no_gres_line_without_gpus_and_the_logs_go_where_asked(tmp_path):
    script = job_script(parse_config(table(log_directory=str(tmp_path)), HOUR))
    assert "--gres" not in script and "/dev/null" not in script and str(tmp_path) in script


def test_a_cluster_config_file_is_read_and_a_bad_one_named(tmp_path):
    good = tmp_path / "cluster.toml"
    good.write_text('[slurm]\npartition = "debug"\njobs = 2\n', encoding="utf-8")
    assert load_config(good, HOUR).jobs == 2
    bad = tmp_path / "bad.toml"
    bad.write_text("[slurm\n", encoding="utf-8")
    with pytest.raises(SlurmConfigError, match="bad.toml: not valid TOML"):
        load_config(bad, HOUR)
    with pytest.raises(SlurmConfigError, match="cannot read the cluster config"):
        load_config(tmp_path / "missing.toml", HOUR)


def test_the_waiting_line_counts_running_and_pending_jobs_from_squeue(monkeypatch):
    import subprocess

    listed = "RUNNING None\nRUNNING None\nPENDING Resources\nPENDING Priority\nPENDING Resources\n"
    monkeypatch.setattr("grader.run.slurm._run", lambda command, timeout=30: subprocess.CompletedProcess(command, 0, listed, ""))
    assert queue_state("hwgrader-x").line(5) == "2 of 5 SLURM jobs running, 3 pending (Resources, Priority)"


@pytest.fixture
def notebook(tmp_path):
    import nbformat

    path = tmp_path / "subs" / "a.ipynb"
    path.parent.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")]), path)
    return path


def test_grade_with_a_bad_cluster_config_exits_2_before_anything_is_graded(tmp_path, notebook, capsys):
    config = tmp_path / "cluster.toml"
    config.write_text('[slurm]\npartition = "gpu"\nwalltime = "00:10:00"\n', encoding="utf-8")
    out = tmp_path / "out"
    code = main([str(notebook.parent), "--out", str(out), "--scheduler", "slurm", "--cluster-config", str(config), "--budget", "quick"])
    assert code == 2
    assert "is shorter than the notebook timeout (1500 s)" in capsys.readouterr().err  # hw2's quick timeout
    assert not out.exists()


def test_slurm_without_a_cluster_config_and_a_config_without_slurm_are_usage_errors(tmp_path, notebook, capsys):
    out = str(tmp_path / "out")
    assert main([str(notebook), "--out", out, "--scheduler", "slurm", "--budget", "quick"]) == 2
    assert "--scheduler slurm needs --cluster-config" in capsys.readouterr().err
    assert main([str(notebook), "--out", out, "--cluster-config", "c.toml", "--budget", "quick"]) == 2
    assert "--cluster-config is read by --scheduler slurm only" in capsys.readouterr().err


@pytest.mark.parametrize(("gpus", "device"), [(0, "cpu"), (1, "cuda")])
def test_jobs_with_gpus_are_planned_for_cuda_even_from_a_coordinator_without_one(tmp_path, notebook, monkeypatch, gpus, device):
    """`--device auto` on a login node without a GPU: the jobs' GPUs decide, not the coordinator's lack of one."""
    from grader.run.grading_run import plan
    from grader.run.settings import RunRequest

    checked = []
    monkeypatch.setattr("grader.run.slurm.require_slurm", lambda: None)
    monkeypatch.setattr("grader.run.slurm.check_submission", checked.append)  # no SLURM here: what would be submitted
    monkeypatch.setattr("grader.run.grading_run.resolve_device", lambda asked: "cpu" if asked == "auto" else asked)
    config = tmp_path / "cluster.toml"
    config.write_text(f'[slurm]\npartition = "gpu"\ncores = 3\nmemory = "10GB"\ngpus_per_job = {gpus}\n', encoding="utf-8")
    request = RunRequest(paths=(str(notebook),), out=tmp_path / "out", budget="quick", scheduler="slurm", cluster_config=config)
    settings, jobs = plan(request, [notebook])
    assert settings.device == device and len(jobs) == 1 and checked and checked[-1].gpus_per_job == gpus
    assert settings.threads == 3 and settings.memory_bytes == 8 * 10**9  # the job's cores; 80 % of its memory for the kernel
