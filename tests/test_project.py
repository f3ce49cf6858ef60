"""The README's set-up is what CI runs, so the documented commands cannot rot."""

from __future__ import annotations

import re

from tests.conftest import REPO


def readme_setup_commands() -> list[str]:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    section = readme.split("## Set-up", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_readme_setup_is_two_commands():
    commands = readme_setup_commands()
    assert len(commands) == 2
    assert 'pip install torch==2.14.1 torchvision==0.29.1 -e ".[cluster,lint]"' in commands[0]  # the tests use Dask
    assert "pytest" in commands[1]


def test_the_test_command_runs_the_linters_and_the_type_checker_before_the_tests():
    steps = readme_setup_commands()[1].split(" && ")
    assert [s.split()[0].rsplit("/", 1)[-1] for s in steps] == ["ruff", "ruff", "mypy", "python"]
    assert steps[0].endswith("ruff check .") and steps[1].endswith("ruff format --check .") and "pytest" in steps[3]


def test_ci_runs_the_readme_commands_verbatim():
    ci_lines = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    for command in readme_setup_commands():
        assert command in ci_lines, f"README command missing from .ci/run: {command}"


def test_ci_installs_the_browser_packages_the_readme_documents():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8")
    packages = "--no-install-recommends chromium fonts-noto-cjk bubblewrap slurmctld slurmd slurm-client munge"
    assert packages in readme and packages in ci
    assert "command -v slurmctld" in ci  # the guard installs them where SLURM is missing too
    assert "export GRADER_REQUIRE_BROWSER=1 GRADER_REQUIRE_SANDBOX=1 GRADER_REQUIRE_SLURM=1" in ci  # in CI none may be skipped
