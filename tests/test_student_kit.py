"""The student kit (``grade kit``): one wheel with the grader and the visible checks, never the answer key."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from grader.course import assignment as assignment_module
from grader.course.installed import ENTRY_POINT_GROUP, installed_assignment
from grader.course.template import BEGIN, END
from grader.integrations.student_kit import build_kit
from grader.notebook.pipeline import _grader_folders
from grader.results import SELF_CHECK_TAG
from grader.run.cli import main
from grader.run.settings import assignment_reference
from grader.source.neutralize import SELF_CHECK_REASON
from tests.conftest import REPO

ASSIGNMENTS = REPO / "assignments"


def wheel_text(path: Path) -> dict[str, str]:
    """Every member of the wheel, decompressed, as text (``replace``: a byte the text does not hold cannot hide a line)."""
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name).decode("utf-8", "replace") for name in archive.namelist()}


def solution_code_lines(solution: Path) -> list[str]:
    """The lines between BEGIN and END SOLUTION of the solution's code cells: what the template replaces."""
    lines: list[str] = []
    for cell in nbformat.read(solution, as_version=4).cells:
        inside = False
        for line in cell.source.split("\n"):
            if BEGIN.match(line):
                inside = True
            elif END.match(line):
                inside = False
            elif inside and cell.cell_type == "code":
                lines.append(line.strip())
    return lines


def test_the_kit_is_one_wheel_named_as_pip_requires_with_its_manifest(tmp_path, capsys):
    assert main(["kit", "demo", "-o", str(tmp_path / "kits" / "anything.whl")]) == 0
    out = capsys.readouterr().out
    written = sorted(p.name for p in (tmp_path / "kits").iterdir())
    wheel = next(name for name in written if name.endswith(".whl"))
    assert re.fullmatch(r"demo_kit-\d+\.\d+\.\d+-py3-none-any\.whl", wheel) and len(written) == 2  # the wheel and its manifest
    members = wheel_text(tmp_path / "kits" / wheel)
    info = wheel.removesuffix("-py3-none-any.whl") + ".dist-info"
    assert f"[{ENTRY_POINT_GROUP}]\ndemo = demo_kit" in members[f"{info}/entry_points.txt"]
    assert "grade = grader.run.cli:main" in members[f"{info}/entry_points.txt"]
    assert {"demo_kit/config.toml", "demo_kit/checks.py", "demo_kit/demo.ipynb", "grader/run/cli.py"} <= set(members)
    assert "Left out:\n" in out and "demo/checks_hidden.py  -- the hidden checks" in out
    assert members["demo_kit/KIT_MANIFEST.txt"] == (tmp_path / "kits" / written[1 - written.index(wheel)]).read_text()


def test_the_kit_leaves_out_the_hidden_checks_and_the_solution(tmp_path):
    kit = build_kit("hw3", tmp_path)
    left_out = dict(kit.left_out)
    assert set(left_out) >= {"hw3/checks_hidden.py", "hw3/solution.ipynb"}
    assert not [name for name in kit.carried if name.endswith(("checks_hidden.py", "solution.ipynb"))]
    assert set(wheel_text(kit.path)) >= set(kit.carried)


@pytest.mark.parametrize("name", ["demo", "hw2", "hw3"])
def test_no_line_of_the_hidden_checks_or_of_the_solutions_code_is_inside_the_wheel(tmp_path, name):
    """Outside what the visible checks need. The reference modules they compare with are the book's code, and so
    hold some solution lines (hw2's Residual, VGG block, LeNet; README: "what a course must hide itself"); every
    other file of the wheel, the grader's own docstrings included, holds none."""
    kit = build_kit(name, tmp_path)
    members = wheel_text(kit.path)
    everywhere = "\n".join(members.values())
    beyond_reference = "\n".join(text for member, text in members.items() if not member.startswith("reference/"))
    folder = ASSIGNMENTS / name
    hidden = folder / "checks_hidden.py"
    definitions = [line.strip() for line in hidden.read_text().splitlines() if line.startswith("def check_")] if hidden.is_file() else []
    assert [line for line in definitions if line in everywhere] == []
    # Solution lines long enough to be the solution's own (a short `return Y` is in every book listing).
    solution = [line for line in solution_code_lines(folder / "solution.ipynb") if len(line) >= 30 and not line.startswith("#")]
    assert solution, "the assignment has nothing to hide: the test would prove nothing"
    assert [line for line in solution if line in beyond_reference] == []


def test_the_kit_carries_only_the_reference_modules_the_visible_checks_need(tmp_path):
    kit = build_kit("hw2", tmp_path)
    carried = {name for name in kit.carried if name.startswith("reference/")}
    assert {"reference/ops.py", "reference/models.py", "reference/formulas.py"} <= carried
    assert "reference/densenet_claims.py" not in carried  # hw3's claims: hw2's checks never import it
    assert {"reference/densenet_claims.py", "reference/claims.py"} <= set(dict(kit.left_out))


def test_hw2s_kit_carries_neither_exercise_answer(tmp_path):
    """The two exercises whose check is their answer are hidden, and the claims that state the answers stay home."""
    kit = build_kit("hw2", tmp_path)
    texts = wheel_text(kit.path)
    assert "hw2/checks_hidden.py" in dict(kit.left_out)
    for answer in ("k1 + k2 - 1", 'OUTPUT_SHAPE_FORMULA = "', "check_ex_output_shape", "check_ex_composed_kernel"):
        assert [name for name, text in texts.items() if answer in text] == [], answer


def test_hw3s_kit_carries_neither_dense_net_exercise_answer_nor_hw2s_claims(tmp_path):
    """hw3's two formula exercises are hidden, so densenet_claims (their answers) and claims (hw2's) stay home."""
    kit = build_kit("hw3", tmp_path)
    texts = wheel_text(kit.path)
    assert {"reference/densenet_claims.py", "reference/claims.py"} <= set(dict(kit.left_out))
    answers = ('DENSE_BLOCK_PARAMS_FORMULA = "', 'DENSENET_SIDE_FORMULA = "', "floor((n + 3) / 32)", "k1 + k2 - 1")
    for answer in (*answers, "check_ex_dense_block_params", "check_ex_densenet_side"):
        assert [name for name, text in texts.items() if answer in text] == [], answer


def test_the_same_assignment_gives_the_same_wheel(tmp_path):
    first = build_kit("demo", tmp_path / "a").path.read_bytes()
    assert build_kit("demo", tmp_path / "b").path.read_bytes() == first


def test_the_kits_template_ends_with_the_self_check_cell_of_its_config(tmp_path):
    kit = build_kit("hw2", tmp_path)
    template = nbformat.reads(wheel_text(kit.path)["hw2_kit/hw2.ipynb"], as_version=4)
    last = template.cells[-1]
    assert SELF_CHECK_TAG in last.metadata["tags"]
    assert "glob('hw2_kit-*-py3-none-any.whl')" in last.source and last.source.endswith("%load_ext grader\n%grade")


def test_an_installed_kit_is_found_by_name_where_no_assignments_folder_is_beside_the_source(tmp_path, monkeypatch):
    kit = build_kit("demo", tmp_path / "kits")
    site = tmp_path / "site"
    with zipfile.ZipFile(kit.path) as archive:  # what pip does with a pure-Python wheel: unpack it into site-packages
        archive.extractall(site)
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(assignment_module, "ASSIGNMENTS_DIR", tmp_path / "no-checkout" / "assignments")
    assert installed_assignment("demo") == site / "demo_kit"
    loaded = assignment_module.load_assignment("demo")
    assert loaded.folder == site / "demo_kit" and [q.id for q in loaded.questions] == ["relu", "softmax", "softmax_shift"]
    assert not loaded.runnable(loaded.questions[-1])  # the hidden question's checks are not in the kit
    assert assignment_reference(loaded.folder) == "demo"  # a grading process is sent the name, as for assignments/
    assert site / "demo_kit" in _grader_folders()  # hidden from the kernel like the checkout's assignments/


def test_without_a_kit_an_assignment_outside_the_checkout_is_still_unknown(tmp_path, monkeypatch):
    monkeypatch.setattr(assignment_module, "ASSIGNMENTS_DIR", tmp_path / "assignments")
    with pytest.raises(ValueError, match="no assignment 'demo'"):
        assignment_module.load_assignment("demo")


def test_a_kit_whose_visible_checks_name_the_hidden_ones_is_refused(tmp_path):
    import shutil

    folder = tmp_path / "leaky"
    shutil.copytree(ASSIGNMENTS / "demo", folder)
    (folder / "checks.py").write_text((folder / "checks.py").read_text() + "\nfrom checks_hidden import check_softmax_shift\n")
    with pytest.raises(ValueError, match="loads checks_hidden"):
        build_kit(folder, tmp_path / "kits")
    assert not (tmp_path / "kits").exists() or not list((tmp_path / "kits").glob("*.whl"))
    (folder / "checks.py").write_text((folder / "checks.py").read_text().replace("from checks_hidden", "# see checks_hidden for"))
    assert build_kit(folder, tmp_path / "kits").path.is_file()  # a comment that mentions the file loads nothing


@pytest.mark.slow
def test_the_installed_kit_grades_the_template_and_the_solution_outside_any_checkout(tmp_path, data_dir):
    """Build hw2's kit, pip install it into a fresh venv, then `grade` the template and the solution from a folder
    outside the checkout. The venv reaches torch and the other requirements through a ``.pth`` line naming this
    environment's site-packages (a plain path: its own ``.pth`` files, among them the editable install of the
    checkout, are not read), so ``grader`` can come only from the kit."""
    started = time.perf_counter()
    kit = build_kit("hw2", tmp_path / "kits")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    venv_site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    (venv_site / "outer.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", str(kit.path)], check=True)
    work = tmp_path / "student"
    work.mkdir()
    template = work / "hw2.ipynb"
    with zipfile.ZipFile(kit.path) as archive:
        template.write_bytes(archive.read("hw2_kit/hw2.ipynb"))
    solution = work / "solution.ipynb"
    solution.write_bytes((ASSIGNMENTS / "hw2" / "solution.ipynb").read_bytes())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    where = subprocess.run(
        [python, "-c", "import grader, reference; print(grader.__file__, reference.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert str(REPO) not in where.stdout and str(venv_site) in where.stdout
    run = subprocess.run(
        [
            venv / "bin" / "grade",
            "hw2.ipynb",
            "solution.ipynb",
            "--budget",
            "quick",
            "--data-dir",
            str(data_dir),
            "--device",
            "cpu",
            "--json",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    by_name = {Path(r["submission"]).name: r for r in json.loads(run.stdout)}
    graded_template, graded_solution = by_name["hw2.ipynb"], by_name["solution.ipynb"]
    assert graded_template["score"] == 0
    # Zero for its blanks, not for a kit that could not grade: it ran, and the checks judged what it defines.
    assert graded_template["execution"]["status"] == "error" and "NotImplementedError" in graded_template["execution"]["message"]
    by_question = {q["id"]: q for q in graded_template["questions"]}
    assert "is not implemented yet: it raises NotImplementedError" in by_question["corr2d"]["message"]
    assert {q["status"] for q in by_question.values()} <= {"error", "missing", "manual"}
    skipped = [n for n in graded_template["execution"]["neutralized"] if n["reason"] == SELF_CHECK_REASON]
    assert [n["cell"] for n in skipped] == [len(nbformat.read(template, as_version=4).cells) - 1]  # its last cell, not run
    assert graded_solution["score"] == graded_solution["max_score"] > 0
    assert graded_solution["hidden_questions_not_run"] == 2  # ex_output_shape, ex_composed_kernel: their checks are answers
    assert not [q["id"] for q in graded_solution["questions"] if q["status"] not in ("pass", "manual")]
    print(
        f"kit {kit.size_bytes / 1e6:.2f} MB built in {kit.seconds:.2f} s; install and both grades in {time.perf_counter() - started:.0f} s"
    )
