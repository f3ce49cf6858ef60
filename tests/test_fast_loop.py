"""`pytest -m "not slow"` is a fast loop that still covers most of the suite, and its slow lists name real tests."""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

from tests.conftest import REPO, SLOW_FIXTURES, SLOW_MODULES, SLOW_TESTS, is_slow

TESTS = REPO / "tests"


def defined_in_tests() -> tuple[set[str], set[str]]:
    """(every ``module.py::function`` of a test function, every fixture's name) defined in tests/."""
    functions, fixtures = set(), set()
    for path in TESTS.glob("*.py"):
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef):
                functions.add(f"{path.name}::{node.name}")
                if any("fixture" in ast.unparse(d) for d in node.decorator_list):
                    fixtures.add(node.name)
    return functions, fixtures


def test_every_module_fixture_and_test_the_slow_lists_name_exists():
    functions, fixtures = defined_in_tests()
    assert {m for m in SLOW_MODULES if not (TESTS / f"{m}.py").is_file()} == set()
    assert SLOW_FIXTURES - fixtures == set()
    assert SLOW_TESTS - functions == set()


@pytest.mark.parametrize(
    "module, fixtures, test, slow",
    [
        ("test_grade", [], "test_anything", True),
        ("test_markup", ["hostile_batch", "tmp_path"], "test_a_hostile_batchs_junit_parses", True),
        ("test_markup", ["tmp_path"], "test_csv_text_round_trips", False),
        ("test_cli", [], "test_no_sandbox_turns_off_only_this_run_and_the_result_says_so", True),
        ("test_cli", [], "test_grade_claims_json_is_parseable_and_complete", False),
    ],
)
def test_a_test_is_slow_by_its_module_its_fixtures_or_its_own_name(module, fixtures, test, slow):
    assert is_slow(module, fixtures, test) is slow


def test_the_fast_loop_keeps_at_least_150_tests_and_deselects_the_slow_modules():
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-m", "not slow", "-p", "no:cacheprovider"]
    listed = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert listed.returncode == 0, listed.stdout[-2000:] + listed.stderr[-2000:]
    ids = [line for line in listed.stdout.splitlines() if "::" in line]
    assert len(ids) >= 150
    assert not [i for i in ids if i.split("::")[0].removeprefix("tests/").removesuffix(".py") in SLOW_MODULES]
    assert not [i for i in ids if i.split("[")[0].removeprefix("tests/") in SLOW_TESTS]
