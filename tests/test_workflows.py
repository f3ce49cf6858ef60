"""The GitHub Actions workflows a course copies (docs/workflows/): valid YAML, every `grade` command real.

Each `run:` script is read as the shell would split it (shlex, control operators apart, heredoc
bodies skipped); every command that invokes `grade` must use a subcommand and options the README
documents and that `grade`'s own argument parser accepts, unabbreviated. Two commands then run end
to end in a cheap form: the course's `grade claims` (one claim) and the student's grading command
on a one-cell notebook, which must fail the `--fail-under` gate and leave the report where the
workflow's upload step looks for it.
"""

from __future__ import annotations

import fnmatch
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from grader.run.cli import SUBCOMMANDS, build_parser

REPO = Path(__file__).resolve().parents[1]
WORKFLOWS = REPO / "docs" / "workflows"
README = (REPO / "README.md").read_text(encoding="utf-8")
CONTROL = {";", "&&", "||", "|", "&", "(", ")", ";;"}
KEYWORDS = {"then", "do", "else", "elif", "if", "while", "until", "!", "time", "{", "}"}
HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


def load(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text(encoding="utf-8"))


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job["steps"]]


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a `run:` script, as argument lists (heredoc bodies are not shell)."""
    commands: list[list[str]] = []
    lines = script.replace("\\\n", " ").splitlines()
    ending = None
    for line in lines:
        if ending is not None:
            ending = None if line.strip() == ending else ending
            continue
        heredoc = HEREDOC.search(line)
        if heredoc:
            ending, line = heredoc.group(2), line[: heredoc.start()]
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        current: list[str] = []
        for token in [*lexer, ";"]:
            if token in CONTROL:
                if current:
                    commands.append(current)
                current = []
            elif current or token not in KEYWORDS:
                current.append(token)
    return commands


def grade_commands(workflow: dict) -> list[list[str]]:
    """`grade` invocations of every step, without the program name."""
    found = []
    for step in steps(workflow):
        for command in shell_commands(step.get("run", "")):
            if Path(command[0]).name == "grade":
                found.append(command[1:])
    return found


def as_parsed(argv: list[str]) -> list[str]:
    """What `grade` hands its parser: `grade PATH...` is `grade run PATH...` (grader.run.cli.main)."""
    return argv if argv and argv[0] in SUBCOMMANDS else ["run", *argv]


def subparser(name: str):
    parser = build_parser()
    return next(a for a in parser._subparsers._group_actions).choices[name]  # noqa: SLF001 (argparse keeps them here)


def documented(option: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", README) is not None


@pytest.fixture(params=["course.yml", "student.yml"])
def workflow(request) -> dict:
    return load(request.param)


def test_every_workflow_is_valid_yaml_with_jobs_and_triggers():
    names = sorted(p.name for p in WORKFLOWS.glob("*.yml"))
    assert names == ["course.yml", "selfcheck.yml", "student.yml"]
    for name in names:
        data = load(name)
        triggers = data.get("on", data.get(True))  # YAML 1.1 reads the key `on` as true
        assert "push" in triggers, name
        for job in data["jobs"].values():
            assert job["runs-on"] and job["steps"] and job["timeout-minutes"] > 0
            for step in job["steps"]:
                assert ("uses" in step) != ("run" in step), step


def test_every_grade_command_is_documented_and_accepted_by_grades_parser(workflow):
    commands = grade_commands(workflow)
    assert commands, "a workflow without a grade command"
    for argv in commands:
        parsed = as_parsed(argv)
        try:
            build_parser().parse_args(parsed)
        except SystemExit:
            pytest.fail(f"grade's parser rejects: grade {shlex.join(argv)}")
        command = parsed[0]
        assert command == "run" or f"grade {command}" in README, f"`grade {command}` is not in the README"
        known = subparser(command)._option_string_actions  # noqa: SLF001
        for token in parsed[1:]:
            if token.startswith("--"):
                option = token.split("=", 1)[0]
                assert option in known, f"{option} is not an option of `grade {command}` (abbreviated?)"
                assert documented(option), f"{option} is not documented in the README"


def test_the_course_workflow_proves_each_assignment_and_publishes_junit():
    course = load("course.yml")
    assert course.get("on", course.get(True)).keys() >= {"push"}
    commands = [as_parsed(argv) for argv in grade_commands(course)]
    assert ["claims"] in commands
    assert any(c[0] == "check-assignment" for c in commands)
    runs = [build_parser().parse_args(c) for c in commands if c[0] == "run"]
    junit = [args.junit for args in runs if args.junit]
    assert junit and all(args.budget == "quick" for args in runs)
    published = [s["with"]["report_paths"] for s in steps(course) if s.get("uses", "").startswith("mikepenz/action-junit-report@")]
    assert published and any(fnmatch.fnmatch(path, published[0]) for path in junit)
    loop = next(s["run"] for s in steps(course) if "check-assignment" in s.get("run", ""))
    assert "assignments/*/" in loop and "exit" in loop  # every assignment, and the step fails if one does


def test_the_student_workflow_gates_on_a_score_and_keeps_the_report():
    student = load("student.yml")
    (argv,) = grade_commands(student)
    args = build_parser().parse_args(as_parsed(argv))
    assert args.fail_under is not None and args.budget == "quick"
    upload = next(s for s in steps(student) if s.get("uses", "").startswith("actions/upload-artifact@"))
    assert upload["if"] == "${{ !cancelled() }}"  # kept when the grade step failed the gate
    assert any(fnmatch.fnmatch(f"{args.out.rstrip('/')}/hw2.html", p) for p in upload["with"]["path"].split())


def test_the_workflows_install_the_releases_the_readme_installs(workflow):
    pins = re.search(r"torch==([\d.]+) torchvision==([\d.]+)", README).groups()
    installs = [c for step in steps(workflow) for c in shell_commands(step.get("run", "")) if c[:2] == ["pip", "install"]]
    assert installs and all(c[2:4] == [f"torch=={pins[0]}", f"torchvision=={pins[1]}"] and "-e" in c for c in installs)


def test_the_self_check_workflow_runs_the_self_check_tests_on_windows_and_macos():
    selfcheck = load("selfcheck.yml")
    (job,) = selfcheck["jobs"].values()
    assert job["strategy"]["matrix"]["os"] == ["windows-latest", "macos-latest"] and job["runs-on"] == "${{ matrix.os }}"
    tests = [c for step in steps(selfcheck) for c in shell_commands(step.get("run", "")) if c[1:4] == ["-m", "pytest", "-q"]]
    assert tests and {"tests/test_platform.py", "tests/test_magic.py"} <= set(tests[0])
    assert all((REPO / path).is_file() for path in tests[0][4:])
    installs = [c for step in steps(selfcheck) for c in shell_commands(step.get("run", "")) if c[:2] == ["pip", "install"]]
    pins = re.search(r"torch==([\d.]+) torchvision==([\d.]+)", README).groups()
    assert installs and installs[0][2:4] == [f"torch=={pins[0]}", f"torchvision=={pins[1]}"]


def test_the_readme_points_at_the_workflow_files():
    assert "cp docs/workflows/*.yml .github/workflows/" in README
    for path in WORKFLOWS.glob("*.yml"):
        assert f"docs/workflows/{path.name}" in README


# --------------------------------------------------------------------------- end to end


def grade_program() -> str:
    return shutil.which("grade", path=str(Path(sys.executable).parent)) or "grade"


def test_the_course_workflows_claims_command_runs():
    (argv,) = [a for a in grade_commands(load("course.yml")) if a[:1] == ["claims"]]
    done = subprocess.run([grade_program(), *argv, "conv1x1_is_matmul"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "holds  conv1x1_is_matmul" in done.stdout and "1 passed, 0 failed" in done.stdout


def test_the_student_workflows_grade_command_fails_a_low_score_and_writes_the_report(tmp_path, data_dir):
    """A notebook with one of the questions: exit 1 under --fail-under, the report where the upload step looks."""
    student = load("student.yml")
    (argv,) = grade_commands(student)
    notebook = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import torch\ndef corr2d(X, K):\n    h, w = K.shape\n"
                "    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))\n"
                "    for i in range(Y.shape[0]):\n        for j in range(Y.shape[1]):\n"
                "            Y[i, j] = (X[i:i + h, j:j + w] * K).sum()\n"
                "    return Y"
            )
        ]
    )
    notebook.metadata["grader"] = {"assignment": "hw2"}
    nbformat.write(notebook, str(tmp_path / "hw2.ipynb"))
    # The step's own arguments, with the notebook list filled in; run from a folder like the checkout's root.
    command = [str(tmp_path / "hw2.ipynb") if token == "${notebooks[@]}" else token for token in argv]
    out = build_parser().parse_args(as_parsed(command)).out
    done = subprocess.run(
        [grade_program(), *command, "--device", "cpu", "--data-dir", str(data_dir)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 1, (done.stdout[-2000:], done.stderr[-2000:])  # 3/42 < 60%: the gate fails the run
    report = tmp_path / out / "hw2.html"
    assert report.is_file() and "corr2d" in report.read_text(encoding="utf-8")
    upload = next(s for s in steps(student) if s.get("uses", "").startswith("actions/upload-artifact@"))
    kept = [
        p
        for p in (tmp_path / out).rglob("*")
        if any(fnmatch.fnmatch(str(p.relative_to(tmp_path)), pattern) for pattern in upload["with"]["path"].split())
    ]
    assert {p.name for p in kept} == {"hw2.html", "hw2.json"}

    # The summary step's script, run on that folder, states the score.
    script = next(s["run"] for s in steps(student) if "GITHUB_STEP_SUMMARY" in s.get("run", ""))
    body = script.split("<<'PY'\n", 1)[1].rsplit("\nPY", 1)[0]
    summary = subprocess.run([sys.executable, "-"], input=body, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert summary.returncode == 0, summary.stderr
    assert re.search(r"^- `.*hw2\.ipynb`: 3 / 42, execution ok$", summary.stdout, re.M), summary.stdout
