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
  so checks can call the student's functions with their own inputs.
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import nbformat
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode

from grader.results import CellRecord, ExecutionRecord
from grader.sandbox import Confinement

TIMEOUT_ENAME = "GraderCellTimeout"
#: How a refused host allocation reads: Python's MemoryError, torch's CPU allocator, numpy.
MEMORY_REFUSED = re.compile(r"^MemoryError|can't allocate memory|Unable to allocate|std::bad_alloc", re.M)
CUDA_MEMORY = re.compile(r"CUDA", re.I)
MAX_RESTARTS = 3


@dataclass
class ExecutionOptions:
    """Limits and environment for one submission's kernel."""

    workdir: Path
    cell_timeout: float = 300.0
    timeout: float = 3600.0
    kernel_name: str = "python3"
    env: dict[str, str] = field(default_factory=dict)
    #: Code run in the kernel before the first cell (the budget's patches).
    preamble: str = ""
    #: Sandbox and limits for the kernel (``None``: a plain kernel, as in the execution tests).
    confinement: Confinement | None = None


@dataclass
class CodeResult:
    """What a piece of grader code printed in the kernel, or how it failed."""

    status: str  # "ok" | "error" | "timeout" | "dead"
    stdout: str = ""
    error: str = ""
    seconds: float = 0.0


def _error_of(cell: NotebookNode) -> tuple[str, str] | None:
    """``(ename, 'Ename: evalue')`` of the cell's error output, if it has one."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            ename, evalue = output.get("ename", "Error"), output.get("evalue", "")
            return ename, f"{ename}: {evalue}".strip().rstrip(":")
    return None


def _stdout_of(cell: NotebookNode) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", []) if o.get("output_type") == "stream" and o.get("name") == "stdout")


class ConfinedKernelManager(AsyncKernelManager):
    """A kernel manager whose launch command goes through the submission's confinement.

    In a sandbox the kernel binds its sockets in its own capped tmpfs, under the path its
    connection file names (``Confinement.kernel_ip``); once it is launched, this manager (and
    the clients it makes) reach the same sockets through ``Confinement.kernel_dir``, the
    grader's link into that sandbox.
    """

    confinement: Confinement | None = None

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        command = super().format_kernel_cmd(extra_arguments)
        return self.confinement.wrap(command, self.connection_file) if self.confinement is not None else command

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw) -> None:
        await super()._async_launch_kernel(kernel_cmd, **kw)
        confinement = self.confinement
        if confinement is not None and confinement.bwrap:
            process = self.provisioner.process
            if await confinement.attach(lambda: process.poll() is None):
                self.ip = str(confinement.kernel_dir / Path(self.ip).name)


#: Environment variables a confined kernel keeps (no tokens or credentials of the grader's user).
KEPT_ENV = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "PYTHONHASHSEED")


class KernelSession:
    """One submission's kernel: run the notebook, then answer the checks' requests.

    Use as ``async with KernelSession(notebook, options) as session:``; the
    kernel is shut down (and its process group killed) on exit.
    """

    def __init__(self, notebook: NotebookNode, options: ExecutionOptions):
        self.notebook = notebook
        self.options = options
        self.restarts = 0
        options.workdir.mkdir(parents=True, exist_ok=True)
        self.client = NotebookClient(
            notebook,
            timeout=max(1, int(options.cell_timeout)),
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": f"cell exceeded {options.cell_timeout:g} s", "traceback": []},
            allow_errors=True,
            kernel_name=options.kernel_name,
            kernel_manager_class=ConfinedKernelManager,
            resources={"metadata": {"path": str(options.workdir)}},
            shutdown_kernel="immediate",
            iopub_timeout=5,
        )

    async def __aenter__(self) -> KernelSession:
        await self._start_kernel()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _start_kernel(self) -> None:
        client = self.client
        client.km = km = client.create_kernel_manager()
        # IPC sockets in the private working folder: no TCP port is opened, and
        # the kernel stays reachable where a sandbox cuts the network.
        km.transport = "ipc"
        km.ip = str(self.options.workdir / f".kernel-{id(self)}-{self.restarts}")
        cwd = self.options.workdir
        confinement = self.options.confinement
        if confinement is not None:
            km.confinement = confinement
            # The grader's connection file where the kernel cannot write; the sockets where the kernel's files go.
            km.connection_file = str(confinement.connection_file(self.restarts))
            km.ip = confinement.kernel_ip(self.restarts)
            # A signal would reach the sandbox's launcher, not the kernel: interrupt by message.
            km.kernel_spec.interrupt_mode = "message"
            cwd = confinement.home
        # The kernel's own stdout/stderr (C-level messages, ipykernel's banner) go to a log, not the grader's terminal;
        # confined, through the launcher, which keeps its first megabyte and stops the kernel past the output cap.
        log_path = confinement.log_file(self.restarts) if confinement is not None else self.options.workdir / f".kernel-{self.restarts}.log"
        with open(log_path, "ab") as log:  # the kernel keeps its own copy of the descriptor
            await client.async_start_new_kernel(cwd=str(cwd), env=self._kernel_env(), stdout=log, stderr=log)
        try:
            await client.async_start_new_kernel_client()
        except RuntimeError as exc:  # the kernel died at start: say why, from its own output
            tail = log_path.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-5:]
            raise RuntimeError(f"{exc}; the kernel printed: {' | '.join(tail) or 'nothing'}") from None
        if self.options.preamble:
            result = await self.run_code(self.options.preamble, timeout=120)
            if result.status != "ok":
                raise RuntimeError(f"the grader's preamble failed in the kernel: {result.error}")

    def _kernel_env(self) -> dict[str, str]:
        # JPY_PARENT_PID would make a kernel in another PID namespace think its parent died.
        env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}
        confinement = self.options.confinement
        if confinement is not None:
            env = {k: v for k, v in env.items() if k in KEPT_ENV or k.startswith("LC_")}
            env["HOME"] = str(confinement.home)
        env.update(self.options.env)
        return env

    async def _restart(self) -> None:
        self.restarts += 1
        await self._shutdown_kernel()
        await self._start_kernel()

    async def _shutdown_kernel(self) -> None:
        client = self.client
        kc, km = client.kc, client.km
        client.kc, client.km = None, None  # a second, concurrent shutdown finds nothing to do
        if kc is not None:
            kc.stop_channels()
        if km is not None:
            try:
                await km.shutdown_kernel(now=True)
            except Exception:  # a dead kernel may refuse a polite shutdown
                await km.kill_kernel()

    async def close(self) -> None:
        await self._shutdown_kernel()

    async def _execute(self, cell: NotebookNode, index: int) -> str:
        """Run one notebook cell; return 'ok', 'error', 'timeout' or 'dead'."""
        limit = max(1, int(self.options.cell_timeout))
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
        code_cells = [(i, c) for i, c in enumerate(self.notebook.cells) if c.cell_type == "code" and c.source.strip()]
        records: list[CellRecord] = []
        done: list[tuple[int, NotebookNode]] = []  # cells that ran cleanly, for a replay after a crash
        status, message = "ok", ""
        for position, (index, cell) in enumerate(code_cells):
            if on_cell:
                on_cell(position, len(code_cells))
            if time.monotonic() - start > self.options.timeout:
                records.append(CellRecord(index, "skipped", 0.0, "whole-notebook time limit reached"))
                status, message = "timeout", f"the notebook exceeded its {self.options.timeout:g} s limit at cell {index}"
                continue
            cell_start = time.monotonic()
            outcome = await self._execute(cell, index)
            seconds = round(time.monotonic() - cell_start, 3)
            if outcome == "dead":
                why = self._why_dead()
                records.append(CellRecord(index, "error", seconds, why or "the kernel died while running this cell"))
                status, message = "crashed", f"{why or 'the kernel died'} in cell {index}"
                if self.restarts >= MAX_RESTARTS:
                    records.extend(CellRecord(i, "skipped", 0.0, "too many kernel crashes") for i, _ in code_cells[position + 1 :])
                    message += f"; gave up after {MAX_RESTARTS} restarts"
                    break
                await self._restart()
                await self._replay(done, after_cell)
                continue
            error = _error_of(cell)
            detail = f"interrupted after {self.options.cell_timeout:g} s" if outcome == "timeout" else (error[1] if error else "")
            if outcome == "error" and error is not None:  # an allocation the memory cap refused: say so
                error = (error[0], error[1] + self._memory_note(error[1]))
                detail = error[1]
            records.append(CellRecord(index, outcome, seconds, detail))
            if outcome == "timeout" and status == "ok":
                status, message = "timeout", f"cell {index} exceeded {self.options.cell_timeout:g} s and was interrupted"
            elif outcome == "error" and status == "ok":
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
        seen, self._oom_seen = getattr(self, "_oom_seen", 0), kills
        if kills > seen and confinement.limits.memory_bytes:
            from grader.sandbox import describe_bytes

            return f"memory limit {describe_bytes(confinement.limits.memory_bytes)} exceeded"
        return ""

    def _memory_note(self, error: str) -> str:
        """Under an rlimit a refused allocation is an exception in the cell, not a kill: name the cap it hit."""
        confinement = self.options.confinement
        if confinement is None or confinement.memory_killed_on_limit or not confinement.limits.memory_bytes:
            return ""
        if not MEMORY_REFUSED.search(error) or CUDA_MEMORY.search(error):
            return ""
        from grader.sandbox import describe_bytes

        return f" (the kernel's memory limit of {describe_bytes(confinement.limits.memory_bytes)} was reached: {confinement.memory_mechanism})"

    async def _after(self, index: int, cell: NotebookNode, after_cell: Callable[[int, NotebookNode], str]) -> None:
        code = after_cell(index, cell)
        if code:
            await self.run_code(code, timeout=60)

    async def _replay(self, done: list[tuple[int, NotebookNode]], after_cell) -> None:
        for index, cell in done:
            replay = nbformat.v4.new_code_cell(cell.source)
            if await self._execute(replay, index) == "dead":
                return
            if after_cell:
                await self._after(index, replay, after_cell)

    async def run_code(self, code: str, timeout: float = 60) -> CodeResult:
        """Run grader code in the kernel, outside the notebook and its history; collect stdout.

        Messages are read straight off the kernel's channels (not through
        nbclient's cell machinery, which would file the outputs under a
        notebook cell). A hang is interrupted at ``timeout``; a kernel that
        does not come back from the interrupt, or dies, is restarted
        *without* replaying the notebook, so later checks report it.
        """
        kc = self.client.kc
        start = time.monotonic()
        msg_id = kc.execute(code, silent=False, store_history=False, allow_stdin=False, stop_on_error=False)
        stdout: list[str] = []
        error = ""
        deadline = start + timeout
        interrupted = False
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if interrupted:  # the interrupt did not end it: the kernel is stuck
                    await self._restart()
                    return CodeResult("timeout", "".join(stdout), f"interrupted after {timeout:g} s; kernel restarted", round(time.monotonic() - start, 3))
                await ensure_async(self.client.km.interrupt_kernel())
                interrupted, deadline = True, time.monotonic() + 5
                continue
            try:
                msg = await ensure_async(kc.iopub_channel.get_msg(timeout=min(remaining, 1.0)))
            except Empty:
                if not await ensure_async(kc.is_alive()):
                    await self._restart()
                    return CodeResult("dead", "".join(stdout), "the kernel died", round(time.monotonic() - start, 3))
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout":
                stdout.append(content.get("text", ""))
            elif kind == "error":
                error = f"{content.get('ename', 'Error')}: {content.get('evalue', '')}".strip().rstrip(":")
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        seconds = round(time.monotonic() - start, 3)
        if interrupted:
            return CodeResult("timeout", "".join(stdout), f"interrupted after {timeout:g} s", seconds)
        return CodeResult("error" if error else "ok", "".join(stdout), error, seconds)


def run_notebook_sync(notebook: NotebookNode, options: ExecutionOptions) -> ExecutionRecord:
    """Execute ``notebook`` and return its record, shutting the kernel down afterwards."""

    async def go() -> ExecutionRecord:
        async with KernelSession(notebook, options) as session:
            return await session.run_notebook()

    return asyncio.run(go())
