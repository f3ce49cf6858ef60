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
"""

from __future__ import annotations

import asyncio
import os
import re
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any, cast

import nbformat
import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import DeadKernelError
from nbformat import NotebookNode
from traitlets import Type

from grader.cleanup import read_tail
from grader.results import CellRecord, CellStatus, ExecutionRecord
from grader.sandbox import Confinement

TIMEOUT_ENAME = "GraderCellTimeout"
#: The error a cell ends with when the kernel's reply to it was over MAX_MESSAGE_BYTES (and so refused).
REFUSED_ENAME = "GraderRefusedReply"
#: How a refused host allocation reads: Python's MemoryError, torch's CPU allocator, numpy.
MEMORY_REFUSED = re.compile(r"^MemoryError|can't allocate memory|Unable to allocate|std::bad_alloc", re.M)
CUDA_MEMORY = re.compile(r"CUDA", re.I)
MAX_RESTARTS = 3

#: The largest message the grader takes from a kernel. A larger one ends its connection at the socket
#: (ZMQ's MAXMSGSIZE), before it is in memory; the channel is then connected afresh and the cell told so.
#: The kernel's printed text arrives in pieces of STREAM_CHUNK, so only a single display this large (an
#: image the executed notebook would drop anyway: it keeps images up to 1.5 MB) is ever refused.
MAX_MESSAGE_BYTES = 8 << 20
#: Messages a channel holds before the kernel has to wait (ZMQ's receive high-water mark): with
#: MAX_MESSAGE_BYTES, what a kernel can queue in the grader's memory is at most 128 MiB a channel.
RECEIVE_QUEUE = 16
#: The kernel's stdout/stderr are sent in messages of at most this many characters.
STREAM_CHUNK = 1 << 20
#: Printed output of grader code (:meth:`KernelSession.run_code`): the first STDOUT_HEAD and the last
#: STDOUT_TAIL characters are kept. The tail is twice the bridge's largest reply (16 MiB), so a reply
#: printed last is kept whole even when it is over the bridge's own limit, which then says so.
STDOUT_HEAD = 64 << 10
STDOUT_TAIL = 32 << 20
#: An error's name, message and traceback as kept (a student may raise an exception with a 500 MB message).
ERROR_NAME_CHARS, ERROR_VALUE_CHARS, TRACEBACK_LINES, TRACEBACK_LINE_CHARS = 200, 2000, 30, 4000
#: JSON nesting an output may have (an ``application/json`` display; deeper is refused, never recursed into).
MAX_OUTPUT_DEPTH = 32

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


@dataclass
class OutputCaps:
    """What the grader keeps of a notebook's outputs while it runs (characters; the rest is counted, not stored).

    Generous next to what the executed notebook keeps (grader/shrink.py: 20,000 characters per text
    output, 10 MB in all), and small next to the grader's memory: a notebook's kept outputs stay under
    ``per_notebook`` whatever it prints.
    """

    #: One output: a stream keeps its first and last half of this; a display or image over it is dropped.
    per_output: int = 1 << 20
    per_cell: int = 4 << 20
    per_notebook: int = 16 << 20


@dataclass
class OutputCut:
    """What the grader did not keep of one cell's outputs."""

    #: Characters (and the lines among them) of printed text not kept (the middle of a stream).
    chars: int = 0
    lines: int = 0
    #: Whole outputs (displays, images) not kept, and their characters.
    outputs: int = 0
    output_chars: int = 0
    #: Messages from the kernel refused: unreadable, or over MAX_MESSAGE_BYTES (their size is unknown).
    refused: int = 0

    def __bool__(self) -> bool:
        return bool(self.chars or self.outputs or self.refused)

    def describe(self, caps: OutputCaps | None = None) -> str:
        """One line for the result and the report."""
        parts = []
        if self.chars:
            parts.append(f"{self.chars:,} characters ({self.lines:,} lines) of printed output, from the middle of a stream")
        if self.outputs:
            parts.append(f"{self.outputs:,} output{'s' if self.outputs > 1 else ''} ({self.output_chars:,} characters)")
        if self.refused:
            parts.append(f"{self.refused:,} message{'s' if self.refused > 1 else ''} from the kernel that could not be "
                         f"read or {'were' if self.refused > 1 else 'was'} over {MAX_MESSAGE_BYTES >> 20} MiB")  # fmt: skip
        caps = caps or OutputCaps()
        limits = (f"the grader keeps {caps.per_output >> 20} MiB per output, {caps.per_cell >> 20} MiB per cell and "
                  f"{caps.per_notebook >> 20} MiB per notebook")  # fmt: skip
        return "not kept: " + "; ".join(parts) + f" ({limits})"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class _Stream:
    """A stream output being received: the first and last part of its text kept, the middle counted."""

    def __init__(self, node: NotebookNode, head_cap: int, tail_cap: int):
        self.node = node
        self.head: list[str] = []
        self.head_len = 0
        self.tail: deque[str] = deque()
        self.tail_len = 0
        self.head_cap, self.tail_cap = head_cap, tail_cap
        self.dropped = 0
        self.dropped_lines = 0

    def add(self, text: str, allowance: int) -> tuple[int, int, int]:
        """Take ``text`` keeping at most ``allowance`` more characters; return (kept more, dropped, dropped lines)."""
        before, dropped, lines = self.head_len + self.tail_len, self.dropped, self.dropped_lines
        if not self.tail and self.head_len < self.head_cap:
            take = max(0, min(len(text), self.head_cap - self.head_len, allowance))
            if take:
                self.head.append(text[:take])
                self.head_len += take
                allowance -= take
                text = text[take:] if take < len(text) else ""
        if text:
            capacity = self.tail_len + max(0, min(self.tail_cap - self.tail_len, allowance))
            self.tail.append(text)
            self.tail_len += len(text)
            excess = self.tail_len - capacity
            while excess > 0:  # the oldest text falls off the front: counted, not kept
                first = self.tail[0]
                if len(first) <= excess:
                    self.tail.popleft()
                    self.tail_len -= len(first)
                    excess -= len(first)
                    self.dropped += len(first)
                    self.dropped_lines += first.count("\n")
                else:
                    self.dropped += excess
                    self.dropped_lines += first.count("\n", 0, excess)
                    self.tail[0] = first[excess:]
                    self.tail_len -= excess
                    excess = 0
        return self.head_len + self.tail_len - before, self.dropped - dropped, self.dropped_lines - lines

    def text(self, note: str = "of this output") -> str:
        middle = ""
        if self.dropped:
            middle = f"\n[… the grader did not keep {self.dropped:,} characters ({self.dropped_lines:,} lines) {note} …]\n"
        return "".join(self.head) + middle + "".join(self.tail)


def _measure(value: Any, max_depth: int = MAX_OUTPUT_DEPTH) -> tuple[int, bool]:
    """Characters in a JSON value (strings, keys, a few per item) and whether it nests deeper than ``max_depth``; iterative."""
    size, stack = 0, [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            return size, True
        if isinstance(item, str):
            size += len(item) + 2
        elif isinstance(item, dict):
            for key, inner in item.items():
                size += len(str(key)) + 4
                stack.append((inner, depth + 1))
        elif isinstance(item, list):
            size += len(item)
            stack.extend((inner, depth + 1) for inner in item)
        else:
            size += 8
    return size, False


def _clip(value: Any, limit: int) -> str:
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} characters cut by the grader]"


def _error_output(content: dict[str, Any]) -> NotebookNode:
    """An error output with its name, message and traceback cut to what a report shows."""
    traceback = content.get("traceback")
    lines = [_clip(line, TRACEBACK_LINE_CHARS) for line in traceback[-TRACEBACK_LINES:]] if isinstance(traceback, list) else []
    return nbformat.v4.new_output("error", ename=_clip(content.get("ename"), ERROR_NAME_CHARS) or "Error",
                                  evalue=_clip(content.get("evalue"), ERROR_VALUE_CHARS), traceback=lines)  # fmt: skip


class BoundedNotebookClient(NotebookClient):
    """nbclient's cell runner with the outputs capped as they arrive (see :class:`OutputCaps`).

    Stream messages of one name in a row are merged into one output (as a
    notebook front end shows them), so a print loop of a million lines is one
    output, not a million. Widgets' messages are ignored: nothing in grading
    reads them, and their state would be kept without bound.
    """

    def __init__(self, nb: NotebookNode, caps: OutputCaps | None = None, **kw: Any):
        super().__init__(nb, **kw)
        self.caps = caps or OutputCaps()
        #: What was not kept, per cell index (of the cell's last run).
        self.cuts: dict[int, OutputCut] = {}
        self._kept: dict[int, int] = {}  # characters kept per cell index
        self._total = 0
        self._sizes: dict[int, int] = {}  # id(output) -> characters charged for it
        self._streams: dict[int, _Stream] = {}  # id(stream output) -> its buffer, for the cell running now

    # -- accounting

    def _allowance(self, cell_index: int) -> int:
        return max(0, min(self.caps.per_cell - self._kept.get(cell_index, 0), self.caps.per_notebook - self._total))

    def _charge(self, cell_index: int, node: NotebookNode, size: int) -> None:
        self._kept[cell_index] = self._kept.get(cell_index, 0) + size
        self._total += size
        self._sizes[id(node)] = self._sizes.get(id(node), 0) + size

    def _release(self, cell_index: int, outputs: list[NotebookNode]) -> None:
        for node in outputs:
            size = self._sizes.pop(id(node), 0)
            self._kept[cell_index] = self._kept.get(cell_index, 0) - size
            self._total -= size
            self._streams.pop(id(node), None)

    def cut(self, cell_index: int) -> OutputCut:
        return self.cuts.setdefault(cell_index, OutputCut())

    # -- a cell

    async def async_execute_cell(self, cell: NotebookNode, cell_index: int, execution_count: int | None = None,
                                 store_history: bool = True) -> NotebookNode:  # fmt: skip
        # The cell's outputs are replaced (nbclient empties them before the first message): release their share.
        self._release(cell_index, list(cell.get("outputs", [])))
        self._forget_displays(cell_index)
        self.cuts[cell_index] = OutputCut()
        self._streams = {}
        alive = True
        try:
            return await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            alive = False  # its connections ended with it: nothing was refused
            raise
        finally:
            if alive:
                unreadable, ended = _take_refused(self.kc)
                if unreadable or ended:
                    self.cut(cell_index).refused += unreadable + ended
                if ended:
                    await _resubscribe(self.kc)
            self._finish(cell, cell_index)

    async def _check_raise_for_error(self, cell: NotebookNode, cell_index: int, exec_reply: dict[str, Any] | None) -> None:
        """A reply the grader stood in for (the real one was refused) is an error in the cell, saying why."""
        content = (exec_reply or {}).get("content") or {}
        if content.get("ename") == REFUSED_ENAME:
            cell.setdefault("outputs", []).append(_error_output(content))
        await super()._check_raise_for_error(cell, cell_index, exec_reply)

    def _finish(self, cell: NotebookNode, cell_index: int) -> None:
        """Streams get their text (head, a note, tail); a cell that lost output says what, in its metadata and a last output."""
        for output in cell.get("outputs", []):
            stream = self._streams.get(id(output))
            if stream is not None:
                output["text"] = stream.text()
        self._streams = {}
        count = cell.get("execution_count")
        if not isinstance(count, int) or isinstance(count, bool):
            cell["execution_count"] = None
        cut = self.cuts.get(cell_index)
        if cut:
            note = cut.describe(self.caps)
            cell.setdefault("metadata", {}).setdefault("grader", {})["output_cut"] = {**cut.to_dict(), "note": note}
            cell.setdefault("outputs", []).append(nbformat.v4.new_output("stream", name="stderr", text=f"[grader: {note}]\n"))

    # -- messages (nbclient calls these for every output message of the running cell)

    def output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        try:
            return self._output(outs, msg, display_id, cell_index)
        except Exception:  # noqa: BLE001 -- a malformed message costs itself, never the cell or the grader
            self.cut(cell_index).refused += 1
            return None

    def _output(self, outs: list[NotebookNode], msg: dict[str, Any], display_id: str | None, cell_index: int) -> NotebookNode | None:
        kind = msg.get("msg_type")
        content = msg.get("content")
        if kind not in ("stream", "display_data", "execute_result", "error"):
            return None  # not an output (nbclient would log it and go on)
        if not isinstance(content, dict):
            self.cut(cell_index).refused += 1
            return None
        if self.clear_before_next_output:
            self._clear(outs, cell_index)
            self.clear_before_next_output = False
        if kind == "stream":
            return self._stream(outs, content, cell_index)
        if kind == "error":  # always kept (the cell's record comes from it), cut to what a report shows
            node = _error_output(content)
            size, _ = _measure(dict(node))
            if size > self._allowance(cell_index):  # past the budget an error keeps its name and the start of its message
                node["traceback"] = []
                node["evalue"] = _clip(node["evalue"], 200)
                size, _ = _measure(dict(node))
        else:
            size, deep = _measure(content)
            if deep or size > min(self.caps.per_output, self._allowance(cell_index)):
                cut = self.cut(cell_index)
                cut.outputs += 1
                cut.output_chars += size
                return None
            node = nbformat.v4.output_from_msg(msg)
        if display_id:
            self._display_id_map.setdefault(display_id, {}).setdefault(cell_index, []).append(len(outs))
        outs.append(node)
        self._charge(cell_index, node, size)
        return node

    def _stream(self, outs: list[NotebookNode], content: dict[str, Any], cell_index: int) -> NotebookNode | None:
        name, text = content.get("name"), content.get("text")
        if name not in ("stdout", "stderr") or not isinstance(text, str):
            self.cut(cell_index).refused += 1
            return None
        last = outs[-1] if outs else None
        stream = self._streams.get(id(last)) if last is not None else None
        if stream is None or stream.node.get("name") != name:
            node = nbformat.v4.new_output("stream", name=name, text="")
            half = self.caps.per_output // 2
            stream = _Stream(node, half, self.caps.per_output - half)
            outs.append(node)
            self._streams[id(node)] = stream
        kept, dropped, lines = stream.add(text, self._allowance(cell_index))
        self._charge(cell_index, stream.node, kept)
        if dropped:
            cut = self.cut(cell_index)
            cut.chars += dropped
            cut.lines += lines
        return stream.node

    def clear_output(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        content = msg.get("content")
        if isinstance(content, dict) and content.get("wait"):
            self.clear_before_next_output = True
        else:
            self._clear(outs, cell_index)

    def _clear(self, outs: list[NotebookNode], cell_index: int) -> None:
        self._release(cell_index, list(outs))
        outs[:] = []
        self._forget_displays(cell_index)

    def _forget_displays(self, cell_index: int) -> None:
        """The cell's outputs are gone: so are its display ids, and every id no output carries any more.

        Without the second part a loop of displays with new ids, each cleared, would grow the map without bound.
        """
        self.clear_display_id_mapping(cell_index)
        for display_id in [d for d, cells in self._display_id_map.items() if not any(cells.values())]:
            del self._display_id_map[display_id]

    def _update_display_id(self, display_id: str, msg: dict[str, Any]) -> None:
        """``update_display_data`` (and a display reusing an id): replace a shown output's data, charging the change in size."""
        content = msg.get("content")
        targets = self._display_id_map.get(display_id)
        if not targets or not isinstance(content, dict):
            return
        data, metadata = content.get("data"), content.get("metadata", {})
        size, deep = _measure({"data": data, "metadata": metadata})
        if deep or not isinstance(data, dict) or not isinstance(metadata, dict):
            return
        for cell_index, indices in targets.items():
            outputs = self.nb.cells[cell_index].get("outputs", []) if 0 <= cell_index < len(self.nb.cells) else []
            for index in indices:
                if not 0 <= index < len(outputs) or "data" not in outputs[index]:
                    continue
                node = outputs[index]
                old = self._sizes.get(id(node), 0)
                if size > min(self.caps.per_output, old + self._allowance(cell_index)):
                    cut = self.cut(cell_index)
                    cut.outputs += 1
                    cut.output_chars += size
                    continue
                node["data"] = nbformat.from_dict(data)
                node["metadata"] = nbformat.from_dict(metadata)
                self._charge(cell_index, node, size - old)

    def handle_comm_msg(self, outs: list[NotebookNode], msg: dict[str, Any], cell_index: int) -> None:
        return None  # widgets: not graded, not drawn in reports, and their state would be kept without bound


class BoundedChannel(AsyncZMQSocketChannel):
    """A channel that never raises for what the kernel sends, and notices when ZMQ ended its connection.

    jupyter_client raises out of ``get_msg`` for a message it cannot decode
    (JSON nested past the recursion limit, a replayed or bad signature, a
    header without a type), which would end the cell's polling and the
    grading with it. Here such a message becomes a placeholder that no
    request matches, and is counted. A monitor sees ZMQ end the connection
    (a message over MAXMSGSIZE), which ZMQ never reconnects by itself; on the
    shell channel, the reply to the last execute request is then lost, so
    while the kernel is alive a reply saying so stands in for it
    (:data:`REFUSED_ENAME`) instead of a wait until the cell's time limit.
    """

    def __init__(self, socket: zmq.asyncio.Socket, session: Any, loop: Any = None):
        super().__init__(socket, session, loop)
        self.unreadable = 0
        self._ended = 0
        self._awaiting = ""  # the last execute request sent here, whose reply may be lost with the connection
        #: ``async () -> bool``: whether the kernel still runs (set by the client; None: never stand in for a reply).
        self.alive: Callable[[], Any] | None = None
        self._monitor = None
        try:
            self._monitor = socket.get_monitor_socket(zmq.EVENT_DISCONNECTED)
            self._monitor_view: zmq.Socket = zmq.Socket.shadow(self._monitor.underlying)  # read without an event loop
        except zmq.ZMQError:
            self._monitor = None

    def send(self, msg: dict[str, Any]) -> None:
        if msg.get("header", {}).get("msg_type") == "execute_request":
            self._awaiting = msg["header"].get("msg_id", "")
        super().send(msg)

    async def _recv(self, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        try:
            return await super()._recv(**kwargs)
        except zmq.ZMQError:
            raise
        except Exception:  # noqa: BLE001 -- RecursionError, ValueError, KeyError, TypeError while decoding
            self.unreadable += 1
            return {"header": {"msg_type": "grader_unreadable", "msg_id": ""}, "msg_id": "", "msg_type": "grader_unreadable",
                    "parent_header": {}, "metadata": {}, "content": {}, "buffers": []}  # fmt: skip

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        if self.alive is None:
            return await super().get_msg(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._poll_monitor() and self._awaiting:
                await asyncio.sleep(1.0)  # a dying kernel's sockets close before its process is gone
                if await ensure_async(self.alive()):
                    return self._refused_reply()
            step = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            try:
                return await super().get_msg(step)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def _refused_reply(self) -> dict[str, Any]:
        parent, self._awaiting = self._awaiting, ""
        content = {"status": "error", "ename": REFUSED_ENAME, "traceback": [],
                   "evalue": f"the kernel's reply was over {MAX_MESSAGE_BYTES >> 20} MiB (an error or output this large is "
                             "refused); what the cell raised or showed is lost"}  # fmt: skip
        return {"header": {"msg_type": "execute_reply", "msg_id": ""}, "msg_id": "", "msg_type": "execute_reply",
                "parent_header": {"msg_id": parent}, "metadata": {}, "content": content, "buffers": []}  # fmt: skip

    def _poll_monitor(self) -> int:
        """Read the monitor's events; the connections ended so far and not yet taken (see :meth:`disconnects`)."""
        while self._monitor is not None:
            try:
                frames = self._monitor_view.recv_multipart(zmq.NOBLOCK)
            except zmq.ZMQError:  # zmq.Again: nothing more
                break
            if frames and len(frames[0]) >= 2 and int.from_bytes(frames[0][:2], "little") == zmq.EVENT_DISCONNECTED:
                self._ended += 1
        return self._ended

    def disconnects(self) -> int:
        """Connections ZMQ ended since last asked (each: a message over MAX_MESSAGE_BYTES, or the kernel gone)."""
        ended, self._ended = self._poll_monitor(), 0
        return ended

    def close(self) -> None:
        if self._monitor is not None:
            try:
                self.socket.disable_monitor()
            except zmq.ZMQError:
                pass
            self._monitor.close(linger=0)
            self._monitor = None
        super().close()


class BoundedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse oversized messages and queue few, and whose channels never raise on one."""

    shell_channel_class = Type(BoundedChannel)
    iopub_channel_class = Type(BoundedChannel)
    stdin_channel_class = Type(BoundedChannel)
    control_channel_class = Type(BoundedChannel)

    @property
    def shell_channel(self) -> Any:
        channel = super().shell_channel
        if isinstance(channel, BoundedChannel) and channel.alive is None:
            channel.alive = self._async_is_alive  # a reply lost with its connection is stood in for only while the kernel lives
        return channel

    def _context_default(self) -> zmq.asyncio.Context:
        context = super()._context_default()
        context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)  # the default of every socket this client makes
        context.setsockopt(zmq.RCVHWM, RECEIVE_QUEUE)
        return context

    def take_refused(self) -> tuple[int, int]:
        """(unreadable messages, connections ZMQ ended) since last asked; an ended channel is connected afresh.

        ZMQ ends a connection that carries a message over MAXMSGSIZE and, for
        that reason, never reconnects it: without a new socket every later
        output and every idle status of the kernel would be lost.
        """
        unreadable = ended = 0
        for name in ("iopub", "shell", "control", "stdin"):
            channel = getattr(self, f"_{name}_channel", None)
            if not isinstance(channel, BoundedChannel):
                continue
            lost = channel.disconnects()
            unreadable += channel.unreadable
            channel.unreadable = 0
            if lost:
                ended += lost
                channel.close()
                setattr(self, f"_{name}_channel", None)
                getattr(self, f"{name}_channel").start()  # the property connects a new socket
                self.resubscribing |= name == "iopub"
        return unreadable, ended

    #: The iopub channel was connected afresh and may not receive yet (see :meth:`resubscribe`).
    resubscribing = False

    async def resubscribe(self, timeout: float = 3.0) -> None:
        """Wait until a new iopub connection receives: a subscription takes effect a moment after the connection.

        Asks for the kernel's info until a status message of that request arrives on iopub; what the
        kernel published before then is lost (it already was: the old connection had ended).
        """
        if not self.resubscribing:
            return
        self.resubscribing = False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            asked = self.kernel_info()
            until = min(deadline, time.monotonic() + 0.3)
            while time.monotonic() < until:
                try:
                    msg = await self.iopub_channel.get_msg(timeout=max(0.0, until - time.monotonic()))
                except Empty:
                    break
                if msg["parent_header"].get("msg_id") == asked:
                    return


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
    #: What is kept of the notebook's outputs while it runs.
    output_caps: OutputCaps = field(default_factory=OutputCaps)


@dataclass
class CodeResult:
    """What a piece of grader code printed in the kernel, or how it failed."""

    status: str  # "ok" | "error" | "timeout" | "dead"
    #: What the code printed, bounded: see :meth:`KernelSession.run_code` for what is always kept.
    stdout: str = ""
    error: str = ""
    seconds: float = 0.0
    #: Characters of stdout not kept (between the first STDOUT_HEAD and the last STDOUT_TAIL).
    dropped: int = 0


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
    #: Clients whose sockets refuse oversized messages and whose channels never raise on one (see BoundedKernelClient).
    client_factory = Type(BoundedKernelClient, klass=AsyncKernelClient)

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
            tail = read_tail(log_path, 16 << 10).strip().splitlines()[-5:]
            raise RuntimeError(f"{exc}; the kernel printed: {' | '.join(tail) or 'nothing'}") from None
        chunked = await self.run_code(STREAM_CHUNK_CODE, timeout=60)  # first: the bridge's replies go through it too
        if chunked.status != "ok":
            raise RuntimeError(f"the grader's set-up failed in the kernel: {chunked.error or chunked.status}")
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
            if outcome == "error" and error is not None:  # an allocation the memory cap refused: say so
                error = (error[0], error[1] + self._memory_note(error[1]))
                detail = error[1]
            records.append(_cell_record(index, outcome, seconds, detail, self.client.cuts.get(index), self.client.caps))
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

        limit = describe_bytes(confinement.limits.memory_bytes)
        return f" (the kernel's memory limit of {limit} was reached: {confinement.memory_mechanism})"

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
        msg_id = kc.execute(code, silent=False, store_history=False, allow_stdin=False, stop_on_error=False)
        stdout = _Stream(nbformat.v4.new_output("stream", name="stdout", text=""), STDOUT_HEAD, STDOUT_TAIL)
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
                await ensure_async(self.client.km.interrupt_kernel())
                interrupted, deadline = True, time.monotonic() + 5
                continue
            try:
                msg = await ensure_async(kc.iopub_channel.get_msg(timeout=min(remaining, 1.0)))
            except Empty:
                if not await ensure_async(kc.is_alive()):
                    await self._restart()
                    return result("dead", "the kernel died")
                if _take_refused(kc)[1]:  # the connection was ended by an oversized message: this reply is lost
                    await _resubscribe(kc)
                    return result("error", f"the kernel sent a message over {MAX_MESSAGE_BYTES >> 20} MiB; the grader refused it")
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            kind, content = msg["msg_type"], msg["content"]
            if kind == "stream" and content.get("name") == "stdout" and isinstance(content.get("text"), str):
                stdout.add(content["text"], STDOUT_HEAD + STDOUT_TAIL)
            elif kind == "error":
                error = f"{_clip(content.get('ename'), ERROR_NAME_CHARS) or 'Error'}: {_clip(content.get('evalue'), ERROR_VALUE_CHARS)}"
                error = error.strip().rstrip(":")
            elif kind == "status" and content.get("execution_state") == "idle":
                break
        unreadable, ended = _take_refused(kc)
        if ended:
            await _resubscribe(kc)
        if unreadable or ended:
            refused = f"the kernel sent {unreadable + ended} message(s) the grader could not read or over {MAX_MESSAGE_BYTES >> 20} MiB"
            error = error or refused
        if interrupted:
            return result("timeout", f"interrupted after {timeout:g} s")
        return result("error" if error else "ok", error)


def _take_refused(kc: Any) -> tuple[int, int]:
    """(unreadable messages, connections ended by an oversized one) since last asked; ended channels are connected afresh."""
    return kc.take_refused() if isinstance(kc, BoundedKernelClient) else (0, 0)


async def _resubscribe(kc: Any) -> None:
    if isinstance(kc, BoundedKernelClient):
        await kc.resubscribe()


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
