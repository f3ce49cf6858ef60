"""One notebook, one time limit: its cells and its checks together end by ``--timeout``.

The clock itself (grader/kernel/deadlines.py) is tested here without a kernel; the notebooks below are graded in
one: slow functions called many times by a property check, and cells that would run past the limit.
"""

from __future__ import annotations

import time
from pathlib import Path

import hypothesis.strategies as st
import nbformat
import pytest

from grader.checking.assertions import Fail, property_check
from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.kernel.deadlines import CHECK_SHARE, Deadline
from grader.kernel.failures import CheckTimeout
from grader.notebook.pipeline import GradeOptions, grade_notebook
from grader.results import GradeResult, write_result

# -- the clock, without a kernel ---------------------------------------------------------------


def test_the_cells_may_use_the_limit_less_the_checks_share():
    deadline = Deadline(100.0, start=1000.0)
    assert deadline.cells_end == pytest.approx(1000.0 + 100.0 * (1 - CHECK_SHARE))
    assert deadline.end == 1100.0


def test_a_question_leaves_time_for_each_question_after_it():
    deadline = Deadline(40.0)
    deadline.begin_question(questions_after=3)
    mine = deadline.left()
    assert 40.0 - 3 * 10.0 - 1 < mine < 40.0 - 3 * 5.0  # three reserves of at most 10 s each, at least half the time is its own
    deadline.begin_question(questions_after=0)
    assert deadline.left() == pytest.approx(40.0, abs=1)


def test_time_used_by_the_students_code_is_charged():
    deadline = Deadline(10.0)
    deadline.cell_seconds = 7.0
    charged, message = deadline.out_of_time(before_start=True)
    assert charged and "your notebook's code used 7 s" in message


def test_time_used_by_the_grader_is_never_charged():
    deadline = Deadline(10.0)
    deadline.cell_seconds = 1.0
    charged, message = deadline.out_of_time(before_start=True)
    assert not charged and message.startswith("not graded") and "--timeout" in message


def test_a_question_whose_calls_used_its_window_is_charged_for_it():
    deadline = Deadline(10.0)
    deadline.begin_question(questions_after=0)
    deadline.spent_calling(9.0)
    charged, message = deadline.out_of_time(before_start=False)
    assert charged and "9 s of its 10 s went to running your code" in message


def test_a_property_check_whose_call_hangs_stops_at_once_instead_of_shrinking():
    calls = []

    def check(x):
        calls.append(x)
        if x > 3:
            raise CheckTimeout("no answer within 60 s")

    with pytest.raises(CheckTimeout):
        property_check("hang", st.integers(0, 100), check, examples=40)
    assert calls and calls[-1] > 3 and len([x for x in calls if x > 3]) == 1


def test_a_property_check_still_shrinks_a_wrong_answer():
    def check(x):
        if x > 3:
            raise Fail(f"wrong for {x}")

    with pytest.raises(Fail, match="smallest failing example: 4"):
        property_check("wrong", st.integers(0, 100), check, examples=40)


# -- notebooks graded in a kernel -------------------------------------------------------------------

CONFIG = """
name = "deadlines"
title = "Deadlines"

[[questions]]
id = "slow"
title = "`slow(x)`"
points = 2
defines = ["slow"]

[[questions]]
id = "double"
title = "`double(x)`"
points = 1
defines = ["double"]
"""

CHECKS = """
import hypothesis.strategies as st

from grader.checks import Fail, Submission, property_check


def check_slow(sub: Submission):
    def one(x):
        if sub.call("slow", x, timeout=4) != x + 1:
            raise Fail("wrong")

    property_check("slow", st.integers(0, 1000), one, examples=40)


def check_double(sub: Submission):
    if sub.call("double", 21) != 42:
        raise Fail("double(21) is not 42")
"""

HONEST = "def double(x):\n    return 2 * x\n"


@pytest.fixture(scope="module")
def deadlines_assignment(tmp_path_factory):
    folder = tmp_path_factory.mktemp("deadlines")
    (folder / "config.toml").write_text(CONFIG, encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS, encoding="utf-8")
    return load_assignment(folder)


def grade(tmp_path: Path, data_dir: Path, assignment, cells: list[str], timeout: float):
    path = tmp_path / "submission.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), path)
    options = GradeOptions(Budget("quick", Path(data_dir), 256, 128, 1), "cpu", cell_timeout=60, timeout=timeout, check_timeout=30)
    started = time.monotonic()
    result = grade_notebook(path, assignment, options)
    write_result(result, tmp_path / "result.json")
    return result, {q.id: q for q in result.questions}, time.monotonic() - started


@pytest.mark.slow
def test_many_slow_calls_end_by_the_notebooks_limit_and_the_honest_question_keeps_its_points(tmp_path, data_dir, deadlines_assignment):
    """Each call of ``slow`` takes 3 s: forty of them would take two minutes; the notebook has 45 s in all."""
    slow = "import time\ndef slow(x):\n    time.sleep(3)\n    return x + 1\n"
    result, by_id, seconds = grade(tmp_path, data_dir, deadlines_assignment, [slow, HONEST], timeout=45)
    assert seconds < 45 + 15, f"graded in {seconds:.0f} s under a 45 s limit"  # the kernel's teardown comes after the limit
    assert by_id["slow"].status == "fail" and "make it faster" in by_id["slow"].message
    assert by_id["double"].status == "pass" and by_id["double"].points == 1
    assert GradeResult.from_dict(__import__("json").loads((tmp_path / "result.json").read_text()))  # written, and reads back


@pytest.mark.slow
def test_a_call_that_hangs_is_tried_once_not_once_per_shrink(tmp_path, data_dir, deadlines_assignment):
    hang = "import time\ndef slow(x):\n    if x > 10:\n        time.sleep(3600)\n    return x + 1\n"
    result, by_id, seconds = grade(tmp_path, data_dir, deadlines_assignment, [hang, HONEST], timeout=300)
    assert seconds < 60, f"graded in {seconds:.0f} s: the hanging call was repeated"
    assert by_id["slow"].status == "fail" and "did not finish" in by_id["slow"].message
    assert by_id["double"].status == "pass"


@pytest.mark.slow
def test_cells_that_would_outrun_the_limit_are_cut_at_their_share_and_the_answers_are_still_checked(
    tmp_path, data_dir, deadlines_assignment
):
    result, by_id, seconds = grade(
        tmp_path, data_dir, deadlines_assignment, ["def slow(x):\n    return x + 1\n", HONEST, "import time\ntime.sleep(600)\n"], timeout=40
    )
    assert seconds < 40 + 15
    assert result.execution.status == "timeout" and "its cells may use of its 40 s limit" in result.execution.message
    assert by_id["slow"].status == "pass" and by_id["double"].status == "pass"
