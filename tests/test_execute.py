"""The executor survives whatever a cell does and keeps the kernel for the checks."""

from __future__ import annotations

import asyncio

import nbformat
import pytest

from grader.errors import EnvironmentProblem
from grader.kernel.execute import DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT, ExecutionOptions, KernelSession, run_notebook_sync


def notebook(*sources: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in sources])


def run(tmp_path, *sources, **options):
    return run_notebook_sync(notebook(*sources), ExecutionOptions(tmp_path / "work", **options))


def statuses(record):
    return [c.status for c in record.cells]


def test_a_clean_notebook_runs_every_cell(tmp_path):
    record = run(tmp_path, "x = 1", "y = x + 1\nprint(y)")
    assert record.status == "ok" and statuses(record) == ["ok", "ok"]
    assert all(c.seconds >= 0 for c in record.cells)


def test_a_raising_cell_is_recorded_and_later_cells_still_run(tmp_path):
    record = run(tmp_path, "x = 1", "raise ValueError('boom')", "y = x + 1")
    assert statuses(record) == ["ok", "error", "ok"]
    assert record.cells[1].error == "ValueError: boom"
    assert record.status == "error" and "cell 1" in record.message


def test_a_hanging_cell_is_interrupted_and_execution_goes_on(tmp_path):
    record = run(tmp_path, "while True: pass", "z = 3", cell_timeout=2)
    assert statuses(record) == ["timeout", "ok"]
    assert record.status == "timeout" and record.cells[0].error == "interrupted after 2 s"


def test_sys_exit_only_fails_its_cell(tmp_path):
    record = run(tmp_path, "import sys; sys.exit()", "z = 3")
    assert statuses(record) == ["error", "ok"]


def test_a_dead_kernel_is_restarted_and_earlier_cells_replayed(tmp_path):
    async def go():
        nb = notebook("x = 41", "import os; os._exit(1)", "y = x + 1")
        async with KernelSession(nb, ExecutionOptions(tmp_path / "work")) as session:
            record = await session.run_notebook()
            return record, await session.run_code("print(y)")

    record, after = asyncio.run(go())
    assert statuses(record) == ["ok", "error", "ok"]
    assert record.status == "crashed" and "cell 1" in record.message
    assert after.stdout == "42\n"


def test_the_whole_notebook_limit_interrupts_the_running_cell_and_skips_the_rest(tmp_path):
    record = run(tmp_path, "import time; time.sleep(30)", "a = 1", "b = 2", timeout=2)
    assert statuses(record) == ["timeout", "skipped", "skipped"]
    assert record.status == "timeout" and "its 2 s limit at cell 0" in record.message
    assert record.cells[0].seconds < 10  # cut at the notebook's limit, not the cell's own (600 s)


def test_cells_run_in_the_given_working_directory(tmp_path):
    async def go():
        options = ExecutionOptions(tmp_path / "work")
        async with KernelSession(notebook("open('made.txt', 'w').write('hi')"), options) as session:
            await session.run_notebook()
            return await session.run_code("import os; print(os.getcwd())")

    result = asyncio.run(go())
    assert result.stdout.strip() == str(tmp_path / "work")
    assert (tmp_path / "work" / "made.txt").read_text() == "hi"


def test_run_code_interrupts_a_hanging_call_and_the_kernel_stays_usable(tmp_path):
    async def go():
        async with KernelSession(notebook("def f():\n    while True: pass"), ExecutionOptions(tmp_path / "w")) as session:
            await session.run_notebook()
            return await session.run_code("f()", timeout=1), await session.run_code("print('alive')")

    hung, alive = asyncio.run(go())
    assert hung.status == "timeout" and alive.stdout == "alive\n"


def test_after_cell_code_runs_right_after_its_cell(tmp_path):
    snapshots = []

    async def go():
        nb = notebook("X = 1", "X = 2")
        async with KernelSession(nb, ExecutionOptions(tmp_path / "w")) as session:
            await session.run_notebook(after_cell=lambda i, cell: "_grader_seen = X" if i == 0 else "")
            snapshots.append((await session.run_code("print(_grader_seen, X)")).stdout)

    asyncio.run(go())
    assert snapshots == ["1 2\n"]


def test_a_failing_preamble_is_the_graders_error_not_the_students(tmp_path):
    async def go():
        async with KernelSession(notebook("x = 1"), ExecutionOptions(tmp_path / "w", preamble="raise RuntimeError('x')")):
            pass

    with pytest.raises(EnvironmentProblem, match="preamble failed") as raised:
        asyncio.run(go())
    assert isinstance(raised.value, RuntimeError)  # callers written before grader.errors still catch it


def test_the_default_limits_are_the_ones_grading_uses(tmp_path):
    options = ExecutionOptions(tmp_path)
    assert (options.cell_timeout, options.timeout) == (DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT) == (600.0, 3600.0)


def test_the_preamble_runs_first_and_every_cell_still_runs(tmp_path):
    async def go():
        nb = notebook("y = x + 1", "print(y)")
        async with KernelSession(nb, ExecutionOptions(tmp_path / "w", preamble="x = 41")) as session:
            record = await session.run_notebook()
            return record, nb.cells[1].outputs

    record, outputs = asyncio.run(go())
    assert statuses(record) == ["ok", "ok"]
    assert outputs[0]["text"] == "42\n"


def test_run_code_output_never_lands_in_a_notebook_cell(tmp_path):
    async def go():
        nb = notebook("print('cell')")
        async with KernelSession(nb, ExecutionOptions(tmp_path / "w")) as session:
            await session.run_notebook()
            await session.run_code("print('grader')")
            return nb.cells[0].outputs

    assert [o["text"] for o in asyncio.run(go())] == ["cell\n"]
