"""One submission's kernel process and the grader's way into it: started, restarted, shut down; runs grader code.

Why apart from the notebook run (:mod:`grader.kernel.execute`): the checks use the
same kernel after the last cell, through :meth:`KernelProcess.run_code`, and
a kernel that crashed is started again here whatever was running. What this
module guarantees of grader code is written at :meth:`KernelProcess.run_code`.

The defaults of a run's time limits are written once, here
(:data:`DEFAULT_CELL_TIMEOUT`, :data:`DEFAULT_NOTEBOOK_TIMEOUT`).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Self

import nbformat
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_core.utils import ensure_async
from nbformat import NotebookNode

from grader.errors import EnvironmentProblem
from grader.kernel.bounded_client import BoundedNotebookClient
from grader.kernel.channels import MAX_MESSAGE_BYTES, ConfinedKernelManager, resubscribe, take_refused
from grader.kernel.output_caps import ERROR_NAME_CHARS, ERROR_VALUE_CHARS, OutputCaps, StreamBuffer, clip
from grader.results import NeutralizedLine
from grader.sandbox.cleanup import read_tail
from grader.sandbox.confinement import Confinement

#: Seconds one notebook cell may run before it is interrupted, where neither the command line nor the
#: assignment's budget (``cell_timeout`` in its config.toml) says.
DEFAULT_CELL_TIMEOUT = 600.0
#: Seconds the whole notebook may run (the cells left when it is reached are ``skipped``), where neither
#: the command line nor the budget (``timeout``) says.
DEFAULT_NOTEBOOK_TIMEOUT = 3600.0
#: Seconds grader code may run by default (set-up, snapshots after a cell, a check's call): a minute is a hang.
GRADER_CODE_TIMEOUT = 60.0
#: Seconds the budget's preamble (:attr:`ExecutionOptions.preamble`) may run: unlike the rest of the
#: set-up it imports the course's libraries (torchvision, d2l) to patch them.
PREAMBLE_TIMEOUT = 120.0
#: Seconds an interrupted piece of grader code has to come back before its kernel is restarted.
INTERRUPT_GRACE = 5.0
#: Seconds nbclient waits for a cell's last outputs once its reply arrived (its ``iopub_timeout``).
IOPUB_TIMEOUT = 5

#: The error a cell ends with when it ran past its time limit (nbclient's ``error_on_timeout``).
TIMEOUT_ENAME = "GraderCellTimeout"

#: The kernel's stdout/stderr are sent in messages of at most this many characters (see STREAM_CHUNK_CODE).
STREAM_CHUNK = 1 << 20
#: Printed output of grader code (:meth:`KernelProcess.run_code`): the first STDOUT_HEAD and the last
#: STDOUT_TAIL characters are kept. The tail is twice the bridge's largest reply (16 MiB), so a reply
#: printed last is kept whole even when it is over the bridge's own limit, which then says so.
STDOUT_HEAD = 64 << 10
STDOUT_TAIL = 32 << 20

#: Run in the kernel before anything else: ipykernel sends what was printed since its last flush as one
#: message, so ``print("x" * 2**29)`` would be one 512 MiB message; cut into STREAM_CHUNK pieces, each is
#: received, counted and (past the caps) dropped. A kernel that undoes this only gets its messages refused.
STREAM_CHUNK_CODE = f"""
def _hwgrader_chunk_streams(size={STREAM_CHUNK}):
    try:
        from ipykernel.iostream import OutStream
    except Exception:
        return
    flush_buffers = getattr(OutStream, "_flush_buffers", None)
    if flush_buffers is None or getattr(flush_buffers, "_hwgrader_chunked", False):
        return
    def _flush_buffers(self):
        for parent, data in flush_buffers(self):
            for start in range(0, len(data), size):
                yield parent, data[start:start + size]
    _flush_buffers._hwgrader_chunked = True
    OutStream._flush_buffers = _flush_buffers
_hwgrader_chunk_streams()
del _hwgrader_chunk_streams
"""

#: Environment variables a confined kernel keeps (no tokens or credentials of the grader's user).
KEPT_ENV = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "CUDA_VISIBLE_DEVICES", "NVIDIA_VISIBLE_DEVICES", "PYTHONHASHSEED")


@dataclass
class ExecutionOptions:
    """Limits and environment for one submission's kernel."""

    workdir: Path
    cell_timeout: float = DEFAULT_CELL_TIMEOUT
    timeout: float = DEFAULT_NOTEBOOK_TIMEOUT
    #: When (``time.monotonic()``) the cells must have ended: the cells' share of the notebook's deadline
    #: (``grader/kernel/deadlines.py``). None: ``timeout`` seconds from the first cell.
    deadline: float | None = None
    kernel_name: str = "python3"
    env: dict[str, str] = field(default_factory=dict)
    #: Code run in the kernel before the first cell (the budget's patches).
    preamble: str = ""
    #: Sandbox and limits for the kernel (``None``: a plain kernel, as in the execution tests).
    confinement: Confinement | None = None
    #: What is kept of the notebook's outputs while it runs.
    output_caps: OutputCaps = field(default_factory=OutputCaps)
    #: The lines the grader replaced in the cells (``grader.source.neutralize``): an error raised on one is the grader's.
    neutralized: list[NeutralizedLine] = field(default_factory=list)


@dataclass
class CodeResult:
    """What a piece of grader code printed in the kernel, or how it failed."""

    status: str  # "ok" | "error" | "timeout" | "dead"
    #: What the code printed, bounded: see :meth:`KernelProcess.run_code` for what is always kept.
    stdout: str = ""
    error: str = ""
    seconds: float = 0.0
    #: Characters of stdout not kept (between the first STDOUT_HEAD and the last STDOUT_TAIL).
    dropped: int = 0


class KernelProcess:
    """One submission's kernel and the nbclient client that drives it; :class:`grader.kernel.execute.KernelSession` runs the notebook in it.

    Use as ``async with`` (through ``KernelSession``); the kernel is shut down
    (and its process group killed) on exit.
    """

    def __init__(self, notebook: NotebookNode, options: ExecutionOptions):
        self.notebook = notebook
        self.options = options
        self.restarts = 0
        options.workdir.mkdir(parents=True, exist_ok=True)
        self.client = BoundedNotebookClient(
            notebook,
            caps=options.output_caps,
            store_widget_state=False,
            timeout=max(1, int(options.cell_timeout)),
            interrupt_on_timeout=True,
            error_on_timeout={"ename": TIMEOUT_ENAME, "evalue": f"cell exceeded {options.cell_timeout:g} s", "traceback": []},
            allow_errors=True,
            kernel_name=options.kernel_name,
            kernel_manager_class=ConfinedKernelManager,
            resources={"metadata": {"path": str(options.workdir)}},
            shutdown_kernel="immediate",
            iopub_timeout=IOPUB_TIMEOUT,
        )

    async def __aenter__(self) -> Self:
        await self._start_kernel()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def _start_kernel(self) -> None:
        client = self.client
        client.km = km = client.create_kernel_manager()
        assert isinstance(km, ConfinedKernelManager)  # the client's kernel_manager_class (nbclient types it as the base class)
        # IPC sockets in the private working folder: no TCP port is opened, and
        # the kernel stays reachable where a sandbox cuts the network.
        km.transport = "ipc"
        km.ip = str(self.options.workdir / f".kernel-{id(self)}-{self.restarts}")
        cwd = self.options.workdir
        confinement = self.options.confinement
        if confinement is not None:
            km.confinement = confinement
            km.transport = confinement.transport  # TCP on 127.0.0.1 where the system has no IPC sockets (grader/sandbox/platform.py)
            # The grader's connection file where the kernel cannot write; the sockets where the kernel's files go.
            km.connection_file = str(confinement.connection_file(self.restarts))
            km.ip = confinement.kernel_ip(self.restarts)
            # A signal would reach the sandbox's launcher, not the kernel: interrupt by message.
            spec = km.kernel_spec
            assert spec is not None  # None only for an empty kernel name; ExecutionOptions.kernel_name always names one
            spec.interrupt_mode = "message"
            cwd = confinement.home
        # The kernel's own stdout/stderr (C-level messages, ipykernel's banner) go to a log, not the grader's terminal;
        # confined, through the launcher, which keeps its first megabyte and stops the kernel past the output cap.
        log_path = confinement.log_file(self.restarts) if confinement is not None else self.options.workdir / f".kernel-{self.restarts}.log"
        with open(log_path, "ab") as log:  # the kernel keeps its own copy of the descriptor
            await client.async_start_new_kernel(cwd=str(cwd), env=self._kernel_env(), stdout=log, stderr=log)
        try:
            await client.async_start_new_kernel_client()
        except RuntimeError as exc:  # the kernel died at start: say why, from its own output
            tail = read_tail(log_path, 16 << 10).strip().splitlines()[-5:]
            raise EnvironmentProblem(f"{exc}; the kernel printed: {' | '.join(tail) or 'nothing'}") from None
        chunked = await self.run_code(STREAM_CHUNK_CODE, timeout=GRADER_CODE_TIMEOUT)  # first: the bridge's replies go through it too
        if chunked.status != "ok":
            raise EnvironmentProblem(f"the grader's set-up failed in the kernel: {chunked.error or chunked.status}")
        if self.options.preamble:
            result = await self.run_code(self.options.preamble, timeout=PREAMBLE_TIMEOUT)
            if result.status != "ok":
                raise EnvironmentProblem(f"the grader's preamble failed in the kernel: {result.error}")

    def _kernel_env(self) -> dict[str, str]:
        # JPY_PARENT_PID would make a kernel in another PID namespace think its parent died.
        env = {k: v for k, v in os.environ.items() if k != "JPY_PARENT_PID"}
        confinement = self.options.confinement
        if confinement is not None and confinement.plain is None:  # plainly (a self-check), the student's own environment is kept
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
            assert isinstance(km, ConfinedKernelManager)  # only _start_kernel sets it
            try:
                await km.shutdown_kernel(now=True)
            except Exception:  # a dead kernel may refuse a polite shutdown
                # jupyter_client's own kill (private; there is no public kill_kernel, which this line called before
                # and so raised AttributeError): the provisioner kills the process and waits for it.
                await km._async_kill_kernel()

    async def close(self) -> None:
        await self._shutdown_kernel()

    async def run_code(self, code: str, timeout: float = GRADER_CODE_TIMEOUT) -> CodeResult:
        """Run grader code in the kernel, outside the notebook and its history; collect stdout.

        Messages are read straight off the kernel's channels (not through
        nbclient's cell machinery, which would file the outputs under a
        notebook cell). A hang is interrupted at ``timeout``; a kernel that
        does not come back from the interrupt, or dies, is restarted
        *without* replaying the notebook, so later checks report it.

        What a caller (the bridge, finding its reply line) can rely on:
        ``stdout`` holds at most the first :data:`STDOUT_HEAD` and the last
        :data:`STDOUT_TAIL` (32 MiB) characters printed, with one note line
        between them when anything was cut (``dropped`` counts it). So a reply
        printed last, on a line of at most STDOUT_TAIL characters -- twice the
        bridge's own limit -- is always there whole; a longer one is cut at its
        start and no longer reads as a reply. Nothing printed is accumulated
        beyond that, whatever the code prints. A message the kernel sends that
        the grader refuses (unreadable, or over :data:`MAX_MESSAGE_BYTES`,
        which ends the connection) makes the result an ``error`` saying so.
        """
        kc = self.client.kc
        start = time.monotonic()
        if kc is None:  # a kernel that could not be started again
            return CodeResult("dead", "", "the kernel is not running")
        assert isinstance(kc, AsyncKernelClient)  # ConfinedKernelManager's client_factory (nbclient types it as the base class)
        msg_id = kc.execute(code, silent=False, store_history=False, allow_stdin=False, stop_on_error=False)
        stdout = StreamBuffer(nbformat.v4.new_output("stream", name="stdout", text=""), STDOUT_HEAD, STDOUT_TAIL)
        error = ""
        deadline = start + timeout
        interrupted = False

        def result(status: str, why: str = "") -> CodeResult:
            return CodeResult(status, stdout.text("of this output"), why, round(time.monotonic() - start, 3), stdout.dropped)

        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                if interrupted:  # the interrupt did not end it: the kernel is stuck
                    await self._restart()
                    return result("timeout", f"interrupted after {timeout:g} s; kernel restarted")
                km = self.client.km
                assert isinstance(km, ConfinedKernelManager)  # set with kc, which is running
                await ensure_async(km.interrupt_kernel())
                interrupted, deadline = True, time.monotonic() + INTERRUPT_GRACE
                continue
            try:
                msg = await ensure_async(kc.iopub_channel.get_msg(timeout=min(remaining, 1.0)))
            except Empty:
                if not await kc.is_alive():  # a coroutine: kc is an AsyncKernelClient
                    await self._restart()
                    return result("dead", "the kernel died")
                if take_refused(kc)[1]:  # the connection was ended by an oversized message: this reply is lost
                    await resubscribe(kc)
                    return result("error", f"the kernel sent a message over {MAX_MESSAGE_BYTES >> 20} MiB; the grader refused it")
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout" and isinstance(content.get("text"), str):
                stdout.add(content["text"], STDOUT_HEAD + STDOUT_TAIL)
            elif kind == "error":
                error = f"{clip(content.get('ename'), ERROR_NAME_CHARS) or 'Error'}: {clip(content.get('evalue'), ERROR_VALUE_CHARS)}"
                error = error.strip().rstrip(":")
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        unreadable, ended = take_refused(kc)
        if ended:
            await resubscribe(kc)
        if unreadable or ended:
            refused = f"the kernel sent {unreadable + ended} message(s) the grader could not read or over {MAX_MESSAGE_BYTES >> 20} MiB"
            error = error or refused
        if interrupted:
            return result("timeout", f"interrupted after {timeout:g} s")
        return result("error" if error else "ok", error)
