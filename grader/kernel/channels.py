"""The grader's connection to a kernel: sockets that refuse oversized messages, channels that never raise.

Why: the grader's memory must not follow what the notebook sends. Every
message from the kernel is refused above :data:`MAX_MESSAGE_BYTES` by the
socket itself (ZMQ's ``MAXMSGSIZE``; at most :data:`RECEIVE_QUEUE` wait on a
channel), and a message that cannot be read is counted and dropped instead
of ending the grading (:class:`BoundedChannel`). What a cell's outputs may
keep once received is :mod:`grader.kernel.output_caps`' business.

:class:`ConfinedKernelManager` launches the kernel through the submission's
confinement (:mod:`grader.sandbox.confinement`) and hands out clients of :class:`BoundedKernelClient`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from jupyter_client.provisioning import LocalProvisioner
from jupyter_core.utils import ensure_async
from traitlets import Type

from grader.sandbox.confinement import Confinement

#: The error a cell ends with when the kernel's reply to it was over MAX_MESSAGE_BYTES (and so refused).
REFUSED_ENAME = "GraderRefusedReply"

#: The largest message the grader takes from a kernel. A larger one ends its connection at the socket
#: (ZMQ's MAXMSGSIZE), before it is in memory; the channel is then connected afresh and the cell told so.
#: The kernel's printed text arrives in pieces of STREAM_CHUNK (grader/kernel/session.py), so only a single
#: display this large (an image the executed notebook would drop anyway: it keeps images up to 1.5 MB) is ever refused.
MAX_MESSAGE_BYTES = 8 << 20
#: Messages a channel holds before the kernel has to wait (ZMQ's receive high-water mark): with
#: MAX_MESSAGE_BYTES, what a kernel can queue in the grader's memory is at most 128 MiB a channel.
RECEIVE_QUEUE = 16

#: Seconds between two looks at a channel's monitor while a reply is awaited (how soon a refused reply is noticed).
POLL_STEP = 0.5
#: Seconds to wait, once a connection ended, before asking whether the kernel lives: a dying kernel's
#: sockets close before its process is gone, and a dead kernel's lost reply is a crash, not a refusal.
DEATH_GRACE = 1.0
#: Seconds a freshly connected iopub channel is given to start receiving (see BoundedKernelClient.resubscribe).
RESUBSCRIBE_TIMEOUT = 3.0


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
            return {
                "header": {"msg_type": "grader_unreadable", "msg_id": ""},
                "msg_id": "",
                "msg_type": "grader_unreadable",
                "parent_header": {},
                "metadata": {},
                "content": {},
                "buffers": [],
            }

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        if self.alive is None:
            return await super().get_msg(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            if self._poll_monitor() and self._awaiting:
                await asyncio.sleep(DEATH_GRACE)  # a dying kernel's sockets close before its process is gone
                if await ensure_async(self.alive()):
                    return self._refused_reply()
            step = POLL_STEP if deadline is None else max(0.0, min(POLL_STEP, deadline - time.monotonic()))
            try:
                return await super().get_msg(step)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    def _refused_reply(self) -> dict[str, Any]:
        parent, self._awaiting = self._awaiting, ""
        content = {
            "status": "error",
            "ename": REFUSED_ENAME,
            "traceback": [],
            "evalue": f"the kernel's reply was over {MAX_MESSAGE_BYTES >> 20} MiB (an error or output this large is "
            "refused); what the cell raised or showed is lost",
        }
        return {
            "header": {"msg_type": "execute_reply", "msg_id": ""},
            "msg_id": "",
            "msg_type": "execute_reply",
            "parent_header": {"msg_id": parent},
            "metadata": {},
            "content": content,
            "buffers": [],
        }

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

    async def resubscribe(self, timeout: float = RESUBSCRIBE_TIMEOUT) -> None:
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


class ConfinedKernelManager(AsyncKernelManager):
    """A kernel manager whose launch command goes through the submission's confinement.

    In a sandbox the kernel binds its sockets in its own capped tmpfs, under the path its
    connection file names (``Confinement.kernel_ip``); once it has bound them, this manager (and
    the clients it makes) reach the same sockets through descriptors the grader took of them
    (``Confinement.pin_sockets``), never through a path the kernel could redirect.
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
            provisioner = self.provisioner
            # The kernel spec (ExecutionOptions.kernel_name) names no other provisioner; the launch above started the process.
            assert isinstance(provisioner, LocalProvisioner) and provisioner.process is not None
            process = provisioner.process
            if await confinement.attach(lambda: process.poll() is None):
                ports = [self.shell_port, self.iopub_port, self.stdin_port, self.hb_port, self.control_port]
                pinned = await confinement.pin_sockets(Path(self.ip).name, ports, lambda: process.poll() is None)
                # Never through the kernel's own folder: if its sockets never appeared the kernel did not start,
                # and the client's wait for it fails as for any kernel that died at start.
                self.ip = pinned if pinned is not None else str(confinement.launch_dir / "no-sockets")


def take_refused(kc: Any) -> tuple[int, int]:
    """(unreadable messages, connections ended by an oversized one) since last asked; ended channels are connected afresh."""
    return kc.take_refused() if isinstance(kc, BoundedKernelClient) else (0, 0)


async def resubscribe(kc: Any) -> None:
    """Wait until a freshly connected iopub channel receives (see :meth:`BoundedKernelClient.resubscribe`)."""
    if isinstance(kc, BoundedKernelClient):
        await kc.resubscribe()
