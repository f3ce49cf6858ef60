"""Gradescope: results.json follows Gradescope's documented format, and the autograder bundle works end to end."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import jsonschema
import nbformat
import pytest

from grader import results as r
from grader.integrations.gradescope import SCHEMA_PATH, results_json, write_results_json
from grader.run.cli import main
from tests.notebook_sources import CORR2D

SCHEMA = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
ERROR_CELL = "import torch\n\ndef pool2d(X, pool_size, mode='max'):\n    return X[99]\n"


def validate(data: dict) -> None:
    jsonschema.Draft202012Validator.check_schema(SCHEMA)
    jsonschema.validate(data, SCHEMA, cls=jsonschema.Draft202012Validator)


def graded(execution: r.ExecutionRecord | None = None) -> r.GradeResult:
    """A result with a question of every kind: pass, fail, error, missing, manual (pending and TA-graded), hidden."""
    return r.GradeResult(
        submission="student.ipynb",
        sha256="0" * 64,
        assignment="hw2",
        budget="quick",
        device="cpu",
        grader_version="0.1.0",
        execution=execution or r.ExecutionRecord("ok", "", 10.0),
        grading_seconds=14.6,
        questions=[
            r.QuestionResult("corr2d", "2-D cross-correlation `corr2d`", "pass", 3, 3, section="7.2"),
            r.QuestionResult(
                "conv2d_layer",
                "Conv2D",
                "fail",
                0,
                2,
                "corr2d on the book's example: first difference at [0, 0]",
                {
                    "expected": [[19.0, 25.0], [37.0, 43.0]],
                    "got": [[20.0, 25.0], [37.0, 43.0]],
                    "tolerance": {"rtol": 1e-4, "atol": 1e-4},
                    "first_difference": [0, 0],
                    "max_abs_difference": 1.0,
                },
                section="7.2",
            ),
            r.QuestionResult(
                "pool2d",
                "pool2d",
                "error",
                0,
                3,
                "pool2d raised IndexError",
                {
                    "exception": "IndexError",
                    "cell": 0,
                    "line": 4,
                    "code": "return X[99]",
                    "traceback": "Traceback (most recent call last):\n\x1b[31mIndexError\x1b[0m: index 99 is out of bounds",
                },
                section="7.5",
            ),
            r.QuestionResult("lenet_arch", "LeNet", "missing", 0, 3, "`LeNet` is not defined", section="7.6"),
            r.QuestionResult("ex_conv_commutative", "proof", "manual", 0, 2, details={"answer": "f * g = g * f", "cell": 1}, section="7.1"),
            r.QuestionResult(
                "ex_maxpool_not_conv", "max-pooling", "manual", 1.5, 2, ta_points=1.5, ta_comment="name the counterexample", section="7.5"
            ),
            r.QuestionResult("secret", "a hidden question", "pass", 1, 1, section="7.2"),
        ],
    )


def not_graded() -> r.GradeResult:
    """What a notebook whose CUDA failed looks like: execution environment_error, every question environment."""
    result = graded(r.ExecutionRecord("environment_error", "CUDA was requested but the kernel sees no GPU", 3.0))
    for q in result.questions:
        q.status, q.points, q.ta_points = "environment", 0, None
    return result


def by_id(data: dict) -> dict[str, dict]:
    return {t["extra_data"]["id"]: t for t in data["tests"]}


@pytest.mark.parametrize("make", [graded, not_graded], ids=["graded", "environment_error"])
def test_results_json_validates_against_the_schema(make):
    validate(results_json(make(), hidden=["secret"]))


def test_schema_rejects_what_gradescope_does_not_document():
    good = results_json(graded())
    for bad in (
        {**good, "scores": 1},
        {**good, "tests": [{**good["tests"][0], "status": "error"}]},
        {**good, "tests": [{**good["tests"][0], "visibility": "students"}]},
        {"output": "no score, no tests"},
    ):
        with pytest.raises(jsonschema.ValidationError):
            validate(bad)


def test_one_test_per_question_in_the_results_order():
    result = graded()
    assert [t["extra_data"]["id"] for t in results_json(result)["tests"]] == [q.id for q in result.questions]


def test_statuses_map_to_passed_and_failed():
    tests = by_id(results_json(graded()))
    assert {i: t["status"] for i, t in tests.items()} == {
        "corr2d": "passed",
        "conv2d_layer": "failed",
        "pool2d": "failed",
        "lenet_arch": "failed",
        "ex_conv_commutative": "passed",
        "ex_maxpool_not_conv": "failed",
        "secret": "passed",
    }


def test_scores_are_the_questions_points_and_the_total_is_the_results_score():
    result = graded()
    data = results_json(result)
    tests = by_id(data)
    assert {i: (t["score"], t["max_score"]) for i, t in tests.items()} == {
        "corr2d": (3, 3),
        "conv2d_layer": (0, 2),
        "pool2d": (0, 3),
        "lenet_arch": (0, 3),
        "ex_conv_commutative": (0, 2),
        "ex_maxpool_not_conv": (1.5, 2),
        "secret": (1, 1),
    }
    assert data["score"] == result.score == sum(t["score"] for t in data["tests"]) == 5.5
    assert data["execution_time"] == 15 and data["extra_data"]["manual_points_pending"] == 2


def test_hidden_questions_are_shown_once_the_grades_are_published():
    tests = by_id(results_json(graded(), hidden=["secret"]))
    assert tests["secret"]["visibility"] == "after_published"
    assert {t["visibility"] for i, t in tests.items() if i != "secret"} == {"visible"}


def test_a_manual_question_is_zero_of_its_points_with_a_note_that_a_ta_grades_it():
    test = by_id(results_json(graded()))["ex_conv_commutative"]
    assert (test["score"], test["max_score"], test["status"]) == (0, 2, "passed")
    assert "A TA grades this question" in test["output"] and "f * g = g * f" in test["output"]
    assert test["name"].endswith("(graded by a TA)")


def test_a_ta_graded_question_shows_the_tas_points_and_comment():
    test = by_id(results_json(graded()))["ex_maxpool_not_conv"]
    assert "TA points: 1.5 / 2 -- name the counterexample" in test["output"]


def test_environment_error_says_not_graded_at_the_top_and_in_every_test():
    data = results_json(not_graded())
    assert data["output"].startswith("<strong>NOT GRADED") and "sees no GPU" in data["output"]
    assert data["score"] == 0
    for test in data["tests"]:
        assert (test["status"], test["score"]) == ("failed", 0)
        assert test["output"].startswith("NOT GRADED") and "not your code" in test["output"]


def test_execution_problems_appear_in_the_top_level_output():
    execution = r.ExecutionRecord(
        "timeout", "the notebook exceeded its 420 s limit", 420.0, cells=[r.CellRecord(5, "timeout", 400.0, "cell exceeded 400 s")]
    )
    output = results_json(graded(execution))["output"]
    assert "Execution timeout: The notebook ran out of time: the notebook exceeded its 420 s limit" in output
    assert "cell 5 (timeout): cell exceeded 400 s" in output


def test_failure_evidence_is_plain_text_with_expected_got_and_the_raising_line():
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(ERROR_CELL)])
    tests = by_id(results_json(graded(), notebook=notebook))
    wrong = tests["conv2d_layer"]["output"]
    assert "expected:\n    19  25\n    37  43" in wrong and "got (entries that differ marked *):\n    20* 25\n    37  43" in wrong
    error = tests["pool2d"]["output"]
    assert "IndexError in cell 0, line 4" in error and ">> 4 |     return X[99]" in error
    assert "\x1b" not in error and "IndexError: index 99 is out of bounds" in error
    assert results_json(graded())["test_output_format"] == "text"


def test_top_level_output_escapes_what_it_did_not_write():
    data = results_json(graded(), note="<script>alert(1)</script> & more")
    assert data["output_format"] == "simple_format"
    assert "<script>" not in data["output"] and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in data["output"]


def test_the_report_note_says_the_html_report_cannot_be_attached():
    output = results_json(graded())["output"]
    assert "cannot be attached" in output and "http" not in output


def test_write_results_json_reads_the_executed_notebook_for_the_cell(tmp_path):
    executed = tmp_path / "nb.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(ERROR_CELL)]), executed)
    path = write_results_json(graded(), tmp_path / "results" / "results.json", ["secret"], executed)
    data = json.loads(path.read_text(encoding="utf-8"))
    validate(data)
    assert ">> 4 |     return X[99]" in by_id(data)["pool2d"]["output"]


def test_gradescope_option_with_several_notebooks_is_a_usage_error(tmp_path, capsys):
    for name in ("a", "b"):
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tmp_path / f"{name}.ipynb")
    code = main([str(tmp_path), "--out", str(tmp_path / "out"), "--gradescope", str(tmp_path / "results.json")])
    assert code == 2 and "one notebook" in capsys.readouterr().err
    assert not (tmp_path / "results.json").exists() and not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- the bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "autograder.zip"
    assert main(["gradescope", "hw2", "-o", str(path)]) == 0
    return path


def unpack(bundle: Path, root: Path) -> Path:
    """The zip as Gradescope lays it out: its contents in ROOT/source (run in place, as /autograder/source)."""
    with zipfile.ZipFile(bundle) as archive:
        archive.extractall(root / "source")
    return root / "source"


def test_bundle_has_setup_and_run_autograder_at_its_root_and_executable(bundle):
    with zipfile.ZipFile(bundle) as archive:
        modes = {info.filename: (info.external_attr >> 16) & 0o777 for info in archive.infolist()}
    assert modes["setup.sh"] & stat.S_IXUSR and modes["run_autograder"] & stat.S_IXUSR


def test_bundle_carries_the_grader_and_the_assignment_without_its_solution(bundle):
    names = set(zipfile.ZipFile(bundle).namelist())
    assert {
        "pyproject.toml",
        "README.md",
        "grader/run/cli.py",
        "grader/reports/templates/report.html.j2",
        "reference/ops.py",
        "assignments/hw2/config.toml",
        "assignments/hw2/checks.py",
    } <= names
    assert not any("solution.ipynb" in n or "__pycache__" in n or n.startswith("data/") for n in names)


def test_bundle_carries_every_module_of_the_grader_and_the_reference_packages(tmp_path):
    """The bundle walks the package folders: a module added (or split off) ships without a list to update.

    Its own zip, not the ``bundle`` fixture's, so that this stays in the fast loop (the fixture is slow for
    the tests that run ``run_autograder`` on it).
    """
    assert main(["gradescope", "hw2", "-o", str(tmp_path / "a.zip")]) == 0
    names = set(zipfile.ZipFile(tmp_path / "a.zip").namelist())
    repo = Path(__file__).resolve().parents[1]
    modules = {p.relative_to(repo).as_posix() for package in ("grader", "reference") for p in (repo / package).rglob("*.py")}
    assert {
        "grader/integrations/gradescope_bundle.py",
        "grader/integrations/gradescope_results.py",
        "grader/integrations/lms_roster.py",
        "grader/integrations/code_fingerprints.py",
    } <= modules
    assert modules <= names, sorted(modules - names)


def test_the_split_modules_are_reexported_and_a_bundle_error_is_a_config_error():
    """``grader.integrations.gradescope`` keeps every name callers imported from it before the split (same objects)."""
    from grader.errors import ConfigError
    from grader.integrations import gradescope, gradescope_bundle, gradescope_results

    for name in gradescope.__all__:
        source = gradescope_bundle if hasattr(gradescope_bundle, name) else gradescope_results
        assert getattr(gradescope, name) is getattr(source, name), name
    assert issubclass(gradescope.BundleError, ConfigError) and issubclass(gradescope.BundleError, ValueError)


def test_bundle_of_an_assignment_with_hidden_questions_carries_their_checks(tmp_path):
    assert main(["gradescope", "demo", "-o", str(tmp_path / "demo.zip")]) == 0
    names = set(zipfile.ZipFile(tmp_path / "demo.zip").namelist())
    assert {"assignments/demo/checks.py", "assignments/demo/checks_hidden.py"} <= names
    assert "assignments/demo/solution.ipynb" not in names


def test_bundle_with_data_dir_carries_fashion_mnist_raw_files(tmp_path, data_dir):
    assert main(["gradescope", "hw2", "-o", str(tmp_path / "a.zip"), "--data-dir", str(data_dir)]) == 0
    names = set(zipfile.ZipFile(tmp_path / "a.zip").namelist())
    assert {f"data/FashionMNIST/raw/{f}" for f in ("train-images-idx3-ubyte", "t10k-labels-idx1-ubyte")} <= names


def test_bundle_of_an_unknown_assignment_or_a_data_dir_without_data_is_a_usage_error(tmp_path, capsys):
    assert main(["gradescope", "no-such-hw", "-o", str(tmp_path / "a.zip")]) == 2
    assert main(["gradescope", "hw2", "-o", str(tmp_path / "a.zip"), "--data-dir", str(tmp_path)]) == 2
    assert "FashionMNIST/raw" in capsys.readouterr().err and not (tmp_path / "a.zip").exists()


def test_setup_sh_parses_and_installs_the_pinned_releases(bundle, tmp_path):
    setup = unpack(bundle, tmp_path) / "setup.sh"
    subprocess.run(["bash", "-n", str(setup)], check=True)
    text = setup.read_text(encoding="utf-8")
    assert "torch==2.14.1" in text and "torchvision==0.29.1" in text and "python3.11" in text
    assert 'TORCH_INDEX="https://download.pytorch.org/whl/cpu"' in text and 'pip install -e "$SOURCE"' in text


def test_setup_sh_of_a_cuda_bundle_installs_pypis_torch(tmp_path):
    assert main(["gradescope", "hw2", "-o", str(tmp_path / "cuda.zip"), "--cuda"]) == 0
    source = unpack(tmp_path / "cuda.zip", tmp_path)
    subprocess.run(["bash", "-n", str(source / "setup.sh")], check=True)
    assert (
        'TORCH_INDEX=""' in (source / "setup.sh").read_text()
        and 'DEVICE="${GRADER_DEVICE:-auto}"' in (source / "run_autograder").read_text()
    )


def test_run_autograder_parses(bundle, tmp_path):
    subprocess.run(["bash", "-n", str(unpack(bundle, tmp_path) / "run_autograder")], check=True)


def run_autograder(root: Path, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "AUTOGRADER_ROOT": str(root), "GRADER_PYTHON": sys.executable, "GRADER_DATA_DIR": str(data_dir)}
    return subprocess.run(["bash", str(root / "source" / "run_autograder")], env=env, capture_output=True, text=True, timeout=300)


def test_run_autograder_without_a_notebook_still_writes_a_valid_results_json(bundle, tmp_path, data_dir):
    unpack(bundle, tmp_path)
    (tmp_path / "submission").mkdir()
    (tmp_path / "submission" / "answers.py").write_text("x = 1\n")
    done = run_autograder(tmp_path, data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "results" / "results.json").read_text(encoding="utf-8"))
    validate(data)
    assert data["score"] == 0 and "No notebook" in data["output"]


def test_run_autograder_grades_the_submitted_notebook_end_to_end(bundle, tmp_path, data_dir):
    """Build -> unpack -> a notebook in submission/ -> run_autograder with the root and Python redirected."""
    source = unpack(bundle, tmp_path)
    (tmp_path / "submission").mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CORR2D)]), tmp_path / "submission" / "hw2.ipynb")
    done = run_autograder(tmp_path, data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"from {source / 'grader' / '__init__.py'}" in done.stdout  # the bundle's grader, not this checkout's
    data = json.loads((tmp_path / "results" / "results.json").read_text(encoding="utf-8"))
    validate(data)
    tests = by_id(data)
    assert (tests["corr2d"]["status"], tests["corr2d"]["score"], tests["corr2d"]["max_score"]) == ("passed", 3, 3)
    assert tests["pool2d"]["status"] == "failed" and "not defined" in tests["pool2d"]["output"]
    assert data["score"] == 3 and data["extra_data"]["budget"] == "quick" and data["extra_data"]["device"] == "cpu"
    assert (tmp_path / "reports" / "hw2.html").is_file()  # the HTML report stays in the container


def test_run_autograder_grades_the_first_of_several_notebooks_and_names_the_others(bundle, tmp_path, data_dir):
    unpack(bundle, tmp_path)
    (tmp_path / "submission" / "old").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CORR2D)]), tmp_path / "submission" / "a_hw2.ipynb")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tmp_path / "submission" / "old" / "b.ipynb")
    done = run_autograder(tmp_path, data_dir)
    assert done.returncode == 0, done.stdout + done.stderr
    data = json.loads((tmp_path / "results" / "results.json").read_text(encoding="utf-8"))
    validate(data)
    assert "only the first by name, a_hw2.ipynb, was graded (not graded: old/b.ipynb)" in data["output"]
    assert by_id(data)["corr2d"]["status"] == "passed"
