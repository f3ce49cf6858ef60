"""Running a submission in its own Jupyter kernel, cell by cell, and keeping it for the checks.

Why a kernel and not ``exec``: student code is untrusted and may hang, exit
or crash, so it runs in a separate process (an ipykernel driven by
nbclient) in a fresh working directory. The grader's process only ever sees
messages from it.

What this module guarantees, whatever the notebook does:

* a cell that raises is recorded (exception and line) and the next cells
  still run, as "Run all" with errors ignored would;
* a cell that exceeds ``cell_timeout`` is interrupted, recorded as
  ``timeout``, and execution goes on; past the whole-notebook ``timeout``
  the remaining cells are ``skipped``;
* if the kernel dies (``os._exit``, a segfault, the OOM killer) a fresh
  kernel replays the cells that ran before the fatal one, skips it, and
  carries on, so every question whose code ran can still be graded;
* after the last cell the kernel stays up (:meth:`KernelSession.run_code`)
  so checks can call the student's functions with their own inputs;
* the grader's memory does not follow the notebook's output. Every message
  from the kernel is refused above :data:`MAX_MESSAGE_BYTES` by the socket
  itself (ZMQ's ``MAXMSGSIZE``; at most :data:`RECEIVE_QUEUE` wait on a
  channel), a message that cannot be read is counted and dropped, and what a
  cell displays or prints is capped *as it arrives* (:class:`OutputCaps`: per
  output, per cell, per notebook); the rest is counted, not stored, and the
  cell says what was cut (:class:`OutputCut`). Ten 512 MiB prints in one cell
  took the grader to 6.7 GiB before this.

Where each part lives: the notebook run (cell by cell, the replay after a
crash) is here; the kernel's start, restart, shutdown and grader code in
:mod:`grader.kernel.session`; the sockets, channels and kernel manager in
:mod:`grader.kernel.channels`; the output caps in :mod:`grader.kernel.output_caps`
and :mod:`grader.kernel.bounded_client`. Every name other modules import from
``grader.kernel.execute`` is still importable from here.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from collections.abc import Callable
from typing import cast

import nbformat
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from grader.kernel.channels import MAX_MESSAGE_BYTES, RECEIVE_QUEUE, REFUSED_ENAME
from grader.kernel.deadlines import CHECK_SHARE
from grader.kernel.grader_faults import grader_fault
from grader.kernel.output_caps import OutputCaps, OutputCut
from grader.kernel.session import (
    DEFAULT_CELL_TIMEOUT,
    DEFAULT_NOTEBOOK_TIMEOUT,
    GRADER_CODE_TIMEOUT,
    STDOUT_HEAD,
    STDOUT_TAIL,
    STREAM_CHUNK,
    TIMEOUT_ENAME,
    CodeResult,
    ExecutionOptions,
    KernelProcess,
)
from grader.results import CellRecord, CellStatus, ExecutionRecord, ExecutionStatus
from grader.sandbox.confinement import describe_bytes

#: What other modules (and tests) import from here; defined where the docstring above says.
__all__ = [
    "DEFAULT_CELL_TIMEOUT",
    "DEFAULT_NOTEBOOK_TIMEOUT",
    "MAX_MESSAGE_BYTES",
    "MAX_RESTARTS",
    "RECEIVE_QUEUE",
    "REFUSED_ENAME",
    "STDOUT_HEAD",
    "STDOUT_TAIL",
    "STREAM_CHUNK",
    "TIMEOUT_ENAME",
    "CodeResult",
    "ExecutionOptions",
    "KernelSession",
    "OutputCaps",
    "OutputCut",
    "run_notebook_sync",
]

#: How a refused host allocation reads: Python's MemoryError, torch's CPU allocator, numpy.
MEMORY_REFUSED = re.compile(r"^MemoryError|can't allocate memory|Unable to allocate|std::bad_alloc", re.M)
CUDA_MEMORY = re.compile(r"CUDA", re.I)
#: Kernel crashes after which the rest of the notebook is skipped instead of run in a fresh kernel.
MAX_RESTARTS = 3


class KernelSession(KernelProcess):
    """One submission's kernel: run the notebook, then answer the checks' requests.

    Use as ``async with KernelSession(notebook, options) as session:``; the
    kernel is shut down (and its process group killed) on exit.
    """

    def __init__(self, notebook: NotebookNode, options: ExecutionOptions):
        super().__init__(notebook, options)
        #: OOM kills of the memory cgroup already blamed on a cell (see :meth:`_why_dead`).
        self._oom_seen = 0

    async def _execute(self, cell: NotebookNode, index: int, seconds: float | None = None) -> str:
        """Run one notebook cell for at most ``seconds`` (default: the cell limit); return 'ok', 'error', 'timeout' or 'dead'."""
        limit = max(1, math.ceil(self.options.cell_timeout if seconds is None else seconds))
        self.client.timeout = limit
        self.client.error_on_timeout = {"ename": TIMEOUT_ENAME, "evalue": f"cell exceeded {limit:g} s", "traceback": []}
        start = time.monotonic()
        try:
            await self.client.async_execute_cell(cell, index)
        except DeadKernelError:
            return "dead"
        if self.options.confinement is not None and self.options.confinement.stop_if_over_limit():
            return "dead"  # the cell left the kernel's disk full: stopped, and _why_dead says so
        error = _error_of(cell)
        if error is None:  # an interrupted cell whose error output was lost still ran out of time
            return "timeout" if time.monotonic() - start >= limit else "ok"
        # The interrupt surfaces as the kernel's own KeyboardInterrupt, so the clock decides.
        if error[0] == TIMEOUT_ENAME or (error[0] == "KeyboardInterrupt" and time.monotonic() - start >= limit):
            return "timeout"
        return "error"

    async def run_notebook(
        self, on_cell: Callable[[int, int], None] | None = None, after_cell: Callable[[int, NotebookNode], str] | None = None
    ) -> ExecutionRecord:
        """Run every code cell; return the per-cell record and the overall status.

        ``on_cell(position, total)`` reports progress; ``after_cell(index,
        cell)`` may return grader code to run right after a cell that ran
        (snapshots of the student's definitions), never shown to the student.
        """
        start = time.monotonic()
        # The cells' share of the notebook's limit ends here (grader/kernel/deadlines.py); without one, the limit from now.
        cells_end = self.options.deadline if self.options.deadline is not None else start + self.options.timeout
        code_cells = [(i, c) for i, c in enumerate(self.notebook.cells) if c.cell_type == "code" and c.source.strip()]
        records: list[CellRecord] = []
        done: list[tuple[int, NotebookNode]] = []  # cells that ran cleanly, for a replay after a crash
        status: ExecutionStatus
        status, message = "ok", ""
        out_of_time = False
        for position, (index, cell) in enumerate(code_cells):
            if on_cell:
                on_cell(position, len(code_cells))
            left = cells_end - time.monotonic()
            if left <= 0:
                records.append(CellRecord(index, "skipped", 0.0, "whole-notebook time limit reached"))
                if not out_of_time:  # said once, at the first cell the time did not reach
                    status, message, out_of_time = "timeout", f"the notebook exceeded {self._cells_limit()} at cell {index}", True
                continue
            cell_start = time.monotonic()
            cut_by_notebook = left < self.options.cell_timeout
            outcome = await self._execute(cell, index, min(self.options.cell_timeout, left))
            seconds = round(time.monotonic() - cell_start, 3)
            if outcome == "dead":
                why = self._why_dead()
                records.append(CellRecord(index, "error", seconds, why or "the kernel died while running this cell"))
                status, message = "crashed", f"{why or 'the kernel died'} in cell {index}"
                if self.restarts >= MAX_RESTARTS:
                    records.extend(CellRecord(i, "skipped", 0.0, "too many kernel crashes") for i, _ in code_cells[position + 1 :])
                    message += f"; gave up after {MAX_RESTARTS} restarts"
                    break
                try:
                    await self._restart()
                except Exception as exc:  # noqa: BLE001 -- no kernel: the rest cannot run, and the result says why
                    why = f"the kernel could not be started again ({type(exc).__name__}: {str(exc)[:300]})"
                    records.extend(CellRecord(i, "skipped", 0.0, why) for i, _ in code_cells[position + 1 :])
                    message += f"; {why}"
                    break
                await self._replay(done, after_cell)
                continue
            error = _error_of(cell)
            detail = f"interrupted after {self.options.cell_timeout:g} s" if outcome == "timeout" else (error[1] if error else "")
            if outcome == "timeout" and cut_by_notebook:
                detail = f"interrupted after {seconds:.0f} s: the notebook reached {self._cells_limit()}"
            if outcome == "error" and error is not None:  # an allocation the memory cap refused: say so
                error = (error[0], error[1] + self._memory_note(error[1]) + grader_fault(cell, index, self.options.neutralized))
                detail = error[1]
            records.append(_cell_record(index, outcome, seconds, detail, self.client.cuts.get(index), self.client.caps))
            if outcome == "timeout" and status == "ok":
                status, message = "timeout", f"cell {index} exceeded {self.options.cell_timeout:g} s and was interrupted"
                if cut_by_notebook:
                    message, out_of_time = f"the notebook exceeded {self._cells_limit()} at cell {index}", True
            elif outcome == "error" and status == "ok":
                assert error is not None  # _execute says "error" only of a cell with an error output
                status, message = "error", f"cell {index} raised {error[1]}"
            if outcome == "ok":
                done.append((index, cell))
            if after_cell:
                await self._after(index, cell, after_cell)
        return ExecutionRecord(status, message, round(time.monotonic() - start, 3), records)

    def _why_dead(self) -> str:
        """What the confinement knows about a death: the memory cap, if it was hit since last asked."""
        confinement = self.options.confinement
        if confinement is None:
            return ""
        stopped = confinement.stop_reason()  # a disk or output cap it was stopped at
        if stopped:
            return stopped
        kills = confinement.oom_kills()
        seen, self._oom_seen = self._oom_seen, kills
        if kills > seen and confinement.limits.memory_bytes:
            return f"memory limit {describe_bytes(confinement.limits.memory_bytes)} exceeded"
        return ""

    def _memory_note(self, error: str) -> str:
        """Under an rlimit a refused allocation is an exception in the cell, not a kill: name the cap it hit."""
        confinement = self.options.confinement
        if confinement is None or confinement.memory_killed_on_limit or not confinement.limits.memory_bytes:
            return ""
        if not MEMORY_REFUSED.search(error) or CUDA_MEMORY.search(error):
            return ""
        limit = describe_bytes(confinement.limits.memory_bytes)
        return f" (the kernel's memory limit of {limit} was reached: {confinement.memory_mechanism})"

    async def _after(self, index: int, cell: NotebookNode, after_cell: Callable[[int, NotebookNode], str]) -> None:
        code = after_cell(index, cell)
        if code:
            await self.run_code(code, timeout=GRADER_CODE_TIMEOUT)

    def _cells_limit(self) -> str:
        """The cells' time limit in words: the whole limit, or its share when the checks keep the rest."""
        if self.options.deadline is None:
            return f"its {self.options.timeout:g} s limit"
        share = self.options.timeout * (1 - CHECK_SHARE)
        return f"the {share:.0f} s its cells may use of its {self.options.timeout:g} s limit (the rest is kept for checking the answers)"

    async def _replay(self, done: list[tuple[int, NotebookNode]], after_cell: Callable[[int, NotebookNode], str] | None) -> None:
        """In a fresh kernel, run again the cells that ran cleanly before the crash (and their snapshots); stop if it dies too."""
        for index, cell in done:
            replay = nbformat.v4.new_code_cell(cell.source)
            if await self._execute(replay, index) == "dead":
                return
            if after_cell:
                await self._after(index, replay, after_cell)


def _error_of(cell: NotebookNode) -> tuple[str, str] | None:
    """``(ename, 'Ename: evalue')`` of the cell's error output, if it has one."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
            return ename, f"{ename}: {evalue}".strip().rstrip(":")
    return None


def _cell_record(index: int, status: str, seconds: float, detail: str, cut: OutputCut | None, caps: OutputCaps) -> CellRecord:
    """A cell's record; what the grader did not keep of its outputs goes in it where the result's schema has the field.

    The executed notebook always says it (the cell's ``metadata.grader.output_cut`` and a last
    output), and the report shows it from there; ``CellRecord.output_cut`` is for the result itself.
    """
    record = CellRecord(index, cast(CellStatus, status), seconds, detail)
    if cut:
        record.output_cut = cut.describe(caps)
    return record


def run_notebook_sync(notebook: NotebookNode, options: ExecutionOptions) -> ExecutionRecord:
    """Execute ``notebook`` and return its record, shutting the kernel down afterwards."""

    async def go() -> ExecutionRecord:
        async with KernelSession(notebook, options) as session:
            return await session.run_notebook()

    return asyncio.run(go())
