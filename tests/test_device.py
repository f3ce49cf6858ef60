"""GPU grading that can be trusted: memory caps CUDA can live with, and never a silent change of device.

Everything here runs on a CPU machine. The rlimit fallback is forced with
``GRADER_CGROUPS=0`` (the path GPU servers without writable cgroups take);
"CUDA requested but unusable" is produced by hiding the GPU from the
kernel's environment (``CUDA_VISIBLE_DEVICES=""``), which on a machine
without CUDA is what the kernel sees anyway.
"""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest
import torch

from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.kernel.device import PROBE_PREFIX, describe, is_cuda_environment_error, lost_cuda_message, parse_probe
from grader.notebook.pipeline import GradeOptions, _gpu_share_preamble, grade_notebook
from grader.reports.gradebook import gradebook_csv
from grader.reports.html_report import render_report
from grader.reports.junit import junit_xml
from grader.run import cli, gpu_admission
from grader.run.settings import RunRequest, RunSettings
from grader.sandbox.confinement import Confinement, GiB, Limits
from tests.notebook_sources import CORR2D

MMAP_64_GIB_NO_ACCESS = (
    "import mmap\n"
    "reserved = mmap.mmap(-1, 64 * 2**30, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x4000, prot=0)  # MAP_NORESERVE\n"
    "print('RESERVED', len(reserved) // 2**30, 'GiB')"
)
ALLOCATE_3_GIB = "hog = bytearray(3 * 2**30)\nprint('ALLOCATED')"


def write_notebook(folder: Path, name: str, *cells: str) -> Path:
    path = folder / f"{name}.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    return path


def outputs_of(path: Path) -> list[str]:
    cells = [c for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == "code"]
    return [
        "".join(o.get("text", "") + (f"{o.get('ename')}: {o.get('evalue')}" if o.get("output_type") == "error" else "") for o in c.outputs)
        for c in cells
    ]


def options(data_dir: Path, device: str = "cpu", memory: int = 4 * GiB) -> GradeOptions:
    return GradeOptions(
        Budget("quick", Path(data_dir), 256, 128, 1),
        device,
        cell_timeout=60,
        limits=Limits(memory_bytes=memory, processes=128, disk_bytes=256 * 2**20),
    )


# --------------------------------------------------------------------------- memory confinement


@pytest.fixture(scope="module")
def under_rlimits(tmp_path_factory, data_dir):
    """One notebook under the forced rlimit fallback (2 GiB): a 64 GiB no-access reservation, then a real 3 GiB allocation."""
    tmp = tmp_path_factory.mktemp("rlimit")
    path = write_notebook(tmp, "submission", MMAP_64_GIB_NO_ACCESS, ALLOCATE_3_GIB, CORR2D)
    executed = tmp / "executed.ipynb"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GRADER_CGROUPS", "0")
        result = grade_notebook(path, load_assignment("hw2"), options(data_dir, memory=2 * GiB), executed_to=executed)
    return {"result": result, "outputs": outputs_of(executed), "questions": {q.id: q for q in result.questions}}


def test_grader_cgroups_0_caps_memory_by_the_data_segment_and_the_result_says_so(under_rlimits):
    isolation = under_rlimits["result"].execution.isolation
    assert "memory 2 GiB (data-segment rlimit (RLIMIT_DATA))" in isolation and "cgroup" not in isolation


def test_under_the_rlimit_a_kernel_can_reserve_64_gib_of_inaccessible_address_space(under_rlimits):
    # What CUDA does when it starts; an address-space cap (RLIMIT_AS) made this fail and CUDA vanish.
    assert under_rlimits["outputs"][0].strip() == "RESERVED 64 GiB"


def test_under_the_rlimit_a_real_allocation_over_the_cap_fails_and_the_report_says_the_limit_was_hit(under_rlimits):
    result = under_rlimits["result"]
    assert "MemoryError" in under_rlimits["outputs"][1] and "ALLOCATED" not in under_rlimits["outputs"][1]
    cell = result.execution.cells[1]
    assert cell.status == "error" and "the kernel's memory limit of 2 GiB was reached" in cell.error
    assert "memory limit of 2 GiB was reached" in result.execution.message


def test_under_the_rlimit_the_kernel_lives_on_after_the_refused_allocation(under_rlimits):
    assert under_rlimits["questions"]["corr2d"].status == "pass"


def test_a_cpu_run_records_the_device_the_kernel_really_had(under_rlimits):
    observed = under_rlimits["result"].execution.observed_device
    assert observed["cuda"] is False and observed["torch"] == torch.__version__
    assert under_rlimits["result"].execution.gpu_memory_peak == 0


def test_grader_cgroups_0_makes_no_cgroup_even_where_they_are_writable(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_CGROUPS", "0")
    confinement = Confinement.create(tmp_path, Limits(memory_bytes=3 * GiB), [], [], sandbox=False)
    try:
        assert confinement.cgroups == {} and confinement.memory_mechanism == "data-segment rlimit (RLIMIT_DATA)"
        launcher = confinement.wrap(["python"])
        assert launcher[launcher.index("--rlimit-data") + 1] == str(3 * GiB) and "--rlimit-as" not in launcher
    finally:
        confinement.close()


def test_a_delegated_cgroup_v2_subtree_gets_memory_max_and_pids_max(tmp_path, monkeypatch):
    """A stand-in for a delegated v2 folder (files the kernel's cgroupfs would make are plain files here)."""
    parent = tmp_path / "grader.slice"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("cpu memory pids\n")
    monkeypatch.setenv("GRADER_CGROUP_PARENT", str(parent))
    monkeypatch.delenv("GRADER_CGROUPS", raising=False)
    monkeypatch.setattr("grader.sandbox.confinement.own_cgroup", lambda controller: None)  # no writable v1 here
    confinement = Confinement.create(tmp_path / "work", Limits(memory_bytes=3 * GiB, processes=64), [], [], sandbox=False)
    folder = confinement.cgroups["memory"]
    assert folder.parent == parent and confinement.cgroups["pids"] == folder and confinement.cgroup_version == 2
    assert (folder / "memory.max").read_text() == str(3 * GiB) and (folder / "pids.max").read_text() == "64"
    assert "memory 3 GiB (cgroup v2 memory.max); 64 processes (cgroup v2 pids.max)" in confinement.isolation
    assert confinement.wrap(["python"]).count("--cgroup") == 1  # one folder holds both limits
    (folder / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert confinement.oom_kills() == 1
    for file in folder.iterdir():  # a real cgroup's files vanish with it; the stand-in's must go first
        file.unlink()
    confinement.close()
    assert not folder.exists()


def test_a_v2_cgroup_that_does_not_hand_out_both_controllers_is_not_used(tmp_path, monkeypatch):
    parent = tmp_path / "grader.slice"
    parent.mkdir()
    (parent / "cgroup.subtree_control").write_text("cpu pids\n")  # no memory controller for its children
    monkeypatch.setenv("GRADER_CGROUP_PARENT", str(parent))
    monkeypatch.setattr("grader.sandbox.confinement.own_cgroup", lambda controller: None)
    confinement = Confinement.create(tmp_path / "work", Limits(memory_bytes=3 * GiB), [], [], sandbox=False)
    assert confinement.cgroups == {} and confinement.memory_mechanism.startswith("data-segment rlimit")
    assert list(parent.iterdir()) == [parent / "cgroup.subtree_control"]


# --------------------------------------------------------------------------- the device


def test_the_probe_line_is_read_and_anything_else_is_ignored():
    line = PROBE_PREFIX + json.dumps({"cuda": True, "name": "NVIDIA H200", "total_memory": 140 * GiB})
    assert parse_probe(f"noise\n{line}\n")["name"] == "NVIDIA H200"
    assert parse_probe("no probe here") == {} and parse_probe(PROBE_PREFIX + "{not json") == {}
    assert describe(parse_probe(line)) == "CUDA: NVIDIA H200, 140 GiB"


@pytest.mark.parametrize(
    "error",
    [
        "OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
        "RuntimeError: CUDA error: out of memory",
        "RuntimeError: CUDA driver initialization failed, you might not have a CUDA gpu.",
        "RuntimeError: CUDA error: all CUDA-capable devices are busy or unavailable",
    ],
)
def test_cuda_failing_is_the_environments_doing(error):
    assert is_cuda_environment_error(error)


@pytest.mark.parametrize(
    "error",
    [
        "RuntimeError: CUDA error: device-side assert triggered",  # a label out of range: the student's bug
        "RuntimeError: mat1 and mat2 shapes cannot be multiplied (64x400 and 256x120)",
        "MemoryError: ",
    ],
)
def test_the_students_own_errors_are_not_blamed_on_the_environment(error):
    assert not is_cuda_environment_error(error)


def test_a_lost_gpu_under_packing_tells_the_ta_to_lower_the_packing():
    assert "lower --jobs-per-gpu (it was 8)" in lost_cuda_message(12, "OutOfMemoryError: CUDA out of memory", 8)


def test_packed_kernels_are_each_held_to_their_share_of_gpu_memory(data_dir):
    packed = GradeOptions(Budget("full", Path(data_dir)), "cuda", jobs_per_gpu=4)
    assert "set_per_process_memory_fraction(0.2375)" in _gpu_share_preamble(packed)
    assert _gpu_share_preamble(GradeOptions(Budget("full", Path(data_dir)), "cuda")) == ""  # alone: the whole GPU
    assert _gpu_share_preamble(GradeOptions(Budget("full", Path(data_dir)), "cpu", jobs_per_gpu=4)) == ""


def test_jobs_per_gpu_is_lowered_where_the_measured_peak_would_oversubscribe_the_gpu(monkeypatch, capsys):
    class Props:
        total_memory = 80 * GiB

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda index: Props())
    hw2 = load_assignment("hw2")
    hw2.budgets = {**hw2.budgets, "full": {**hw2.budgets.get("full", {}), "gpu_memory_peak_gib": 9.5}}
    job = type("Job", (), {"assignment": hw2})()
    assert gpu_admission.admitted_per_gpu(7, [job], quiet=False) == 7  # 7 x (9.5 + 0.5) = 70 GiB fits in 95% of 80 GiB
    assert gpu_admission.admitted_per_gpu(12, [job], quiet=False) == 7
    assert "--jobs-per-gpu 12 would oversubscribe the GPU" in capsys.readouterr().err


def test_the_retry_of_a_notebook_alone_gets_the_whole_gpu_and_the_machines_cores():
    run = RunSettings(
        RunRequest(paths=("x.ipynb",)),
        device="cuda",
        budget="full",
        data_dir=Path("data"),
        parallel=8,
        threads=2,
        memory_bytes=12 * GiB,
        jobs_per_gpu=8,
    )
    job = type("Job", (), {"assignment": load_assignment("hw2"), "path": Path("x.ipynb"), "stem": "x"})()
    packed, alone = run.worker_job(job), run.worker_job(job, alone=True)
    assert packed.jobs_per_gpu == 8 and alone.jobs_per_gpu == 1
    assert alone.memory_bytes >= 12 * GiB


needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")


@needs_no_cuda
def test_device_cuda_without_cuda_is_a_usage_error_before_any_kernel_starts(tmp_path, data_dir, capsys):
    path = write_notebook(tmp_path, "nb", CORR2D)
    code = cli.main([str(path), "--device", "cuda", "--out", str(tmp_path / "out"), "--data-dir", str(data_dir)])
    assert code == 2 and "--device cuda" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def gpu_hidden(tmp_path_factory, data_dir):
    """A notebook graded with CUDA requested while the kernel's environment hides every GPU."""
    tmp = tmp_path_factory.mktemp("hidden-gpu")
    path = write_notebook(tmp, "submission", CORR2D)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CUDA_VISIBLE_DEVICES", "")  # the kernel keeps this variable: it sees no GPU
        result = grade_notebook(path, load_assignment("hw2"), options(data_dir, device="cuda"))
    return result


def test_cuda_requested_but_unusable_in_the_kernel_is_an_environment_error(gpu_hidden):
    execution = gpu_hidden.execution
    assert execution.status == "environment_error" and execution.observed_device["cuda"] is False
    assert "CUDA was requested but the kernel cannot use it" in execution.message
    assert "--jobs-per-gpu" in execution.message and "--device cpu" in execution.message
    assert gpu_hidden.device == "cuda"  # what was asked, beside what was had


def test_an_environment_error_charges_the_student_nothing(gpu_hidden):
    assert {q.status for q in gpu_hidden.questions} == {"environment"}
    assert gpu_hidden.score == 0 and gpu_hidden.max_score == 0 and gpu_hidden.manual_points_pending == 0
    assert all(q.message.startswith("not graded: CUDA was requested") for q in gpu_hidden.questions)


def test_an_environment_error_is_loud_in_the_report_the_gradebook_and_junit(gpu_hidden):
    html = render_report(gpu_hidden, None)
    assert 'id="environment"' in html and "not graded" in html and "CPU only" in html
    row = gradebook_csv([gpu_hidden]).splitlines()[1].split(",")
    assert "environment_error" in row and row[-1] == ""
    assert 'type="environment"' in junit_xml([gpu_hidden])


@needs_no_cuda
def test_grade_exits_3_when_the_environment_kept_a_notebook_from_being_graded(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(gpu_admission, "require_cuda", lambda: None)  # as on a GPU machine whose kernels cannot use it
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    path = write_notebook(tmp_path, "nb", CORR2D)
    out = tmp_path / "out"
    code = cli.main([str(path), "--device", "cuda", "--budget", "quick", "--out", str(out), "--data-dir", str(data_dir), "--json"])
    assert code == 3
    assert json.loads((out / "nb.json").read_text())["execution"]["status"] == "environment_error"


@needs_no_cuda
def test_a_batch_grades_a_notebook_whose_cuda_failed_once_more_alone_before_giving_up(tmp_path, data_dir, monkeypatch):
    monkeypatch.setattr(gpu_admission, "require_cuda", lambda: None)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    subs = tmp_path / "subs"
    subs.mkdir()
    write_notebook(subs, "a", CORR2D)
    write_notebook(subs, "b", CORR2D)
    out = tmp_path / "out"
    code = cli.main(
        [str(subs), "--device", "cuda", "--budget", "quick", "--jobs", "2", "--out", str(out), "--data-dir", str(data_dir), "--json"]
    )
    assert code == 3
    for name in "ab":
        execution = json.loads((out / f"{name}.json").read_text())["execution"]
        assert execution["status"] == "environment_error" and execution["message"].endswith("graded again alone, with the same outcome")
    assert "environment_error" in (out / "gradebook.csv").read_text()
