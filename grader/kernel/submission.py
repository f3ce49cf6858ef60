"""The ``Submission`` handle checks are written against: a notebook's source and its kernel.

A check never touches the student's objects. It asks the kernel, through :class:`Submission`, to run one
of the fixed operations of ``grader/kernel/side.py`` on inputs the grader chose, and gets back plain data
(see ``grader/kernel/protocol.py`` for the wire format and its bounds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from grader.errors import BridgeError
from grader.kernel.deadlines import Deadline
from grader.kernel.execute import KernelSession
from grader.kernel.failures import (
    CheckTimeout,
    KernelCrashed,
    Missing,
    NotDefined,
    OutOfTime,
    StateMisfit,
    StudentError,
    _entries,
)
from grader.kernel.protocol import SnapshotFailure, decode, encode, parse_reply, render_call
from grader.kernel.side_text import KERNEL_SOURCE
from grader.sandbox.files import BlobFolder
from grader.source.clean_room import RoomPlan


def install_code(nonce: str, kernel_blob_dir: str | None) -> str:
    """Kernel code that installs the kernel-side module ``_hwgrader`` with this session's reply marker.

    Run as the kernel's preamble, before the notebook's first cell; the :class:`Submission` built once the
    kernel is up is given the same ``nonce`` and reads only reply lines that carry it.
    """
    return (
        "import sys as _s, types as _t\n"
        "_m = _t.ModuleType('_hwgrader')\n"
        f"exec(compile({KERNEL_SOURCE!r}, '<_hwgrader>', 'exec'), _m.__dict__)\n"
        f"_m.MARKER = {MARKER_PREFIX + nonce!r}\n"
        f"_m.BLOBS = {kernel_blob_dir!r}\n"
        "_s.modules['_hwgrader'] = _m\n"
        "del _s, _t, _m\n"
    )


def new_nonce() -> str:
    """A fresh reply marker's secret part: a notebook cannot print a reply it does not know the marker of."""
    return secrets.token_hex(8)


MARKER_PREFIX = "@@hwgrader:"
#: At most this many operation names are kept from one reply.
MAX_OPS = 500


#: The operations answered in the clean room: every one that runs the student's functions or builds their models.
#: Values taken after a cell, a model the notebook trained and the names it rebound are the notebook's kernel's.
ROOM_OPS = frozenset({"call", "gradient", "summary", "forward", "train", "replay"})


@dataclass
class CleanRoom:
    """The second kernel of a submission: it never runs a cell, only forks that run the statements a request needs."""

    session: KernelSession
    plan: RoomPlan
    nonce: str
    #: Opens the clean room's own tensor folder (``Confinement.open_blob_folder``); None: tensors travel inline.
    blobs: Callable[[], BlobFolder] | None = None

    @property
    def marker(self) -> str:
        return MARKER_PREFIX + self.nonce


@dataclass
class Submission:
    """What a check sees of a submission: its notebook, what its source defines, and operations on its kernel.

    Complete when constructed (the kernel is running): what a check needs of its *question* comes in the
    :class:`~grader.checking.question_context.QuestionContext` passed beside it.
    """

    session: KernelSession
    loop: asyncio.AbstractEventLoop
    notebook: Any
    nonce: str = field(default_factory=new_nonce)
    #: The assignment being graded (its snapshots and ``[signatures]``).
    assignment: Any = None
    call_timeout: float = 60.0
    #: Opens the folder the kernel writes large tensors' raw bytes to, for one request (``Confinement.open_blob_folder``:
    #: a descriptor reached without following a link). None: every tensor travels inline.
    blobs: Callable[[], BlobFolder] | None = None
    #: What the notebook's own source defines (``grader.source.source_index``), read by the grader from the file:
    #: only a name a cell defines is graded, whatever the kernel's table of definitions says.
    source: Any = None
    #: The notebook's time limit (``grader/kernel/deadlines.py``): each call gets at most the time left to its question.
    deadline: Deadline | None = None
    #: The aten operations each graded name ran when the checks called it, as the kernel reported them.
    ran_ops: dict[str, set[str]] = field(default_factory=dict)
    #: The clean room (``grader/source/clean_room.py``): where the student's functions and models are built from the source
    #: and run for :data:`ROOM_OPS`. None: those run in the notebook's own kernel, on what the snapshots kept.
    room: CleanRoom | None = None

    @property
    def marker(self) -> str:
        return MARKER_PREFIX + self.nonce

    # -- the protocol -----------------------------------------------------------------

    def require_defined(self, name: str) -> None:
        """Refuse to grade a name no cell of the notebook defines (``Missing``), whatever the kernel holds."""
        if self.source is None or self.source.defines(name):
            return
        signature = (getattr(self.assignment, "signatures", {}) or {}).get(name, {})
        instead = self._written_instead(name, signature)
        arguments = self.source.call_names(instead) if instead is not None and instead.kind == "assign" else ()
        raise NotDefined(name, instead, signature.get("asks", ""), arguments)

    def _written_instead(self, name: str, signature: dict[str, str]) -> Any:
        """What the notebook wrote in place of ``name``, by the source only: the same name bound otherwise,
        a ``def``/``class`` of the same name in lower case (d2l-zh's ``def vgg``), or -- where the config
        says the model is often written so (``sequential = "net"``) -- the first ``net = nn.Sequential(...)``;
        with ``sequential_of = "b1"``, the first whose call passes ``b1`` (d2l-zh's ResNet of stages ``b1``..``b5``)."""
        bound = self.source.bound(name)
        if bound is not None:
            return bound
        lower = [d for key, ds in self.source.definitions.items() if key.lower() == name.lower() for d in ds]
        if lower:
            return lower[-1]
        target, stage = signature.get("sequential", ""), signature.get("sequential_of", "")
        found = [
            d
            for d in self.source.definitions.get(target, [])
            if d.kind == "assign" and (d.value or "").split(".")[-1] == "Sequential" and (not stage or stage in self.source.call_names(d))
        ]
        return found[0] if found else None

    def request(self, op: str, timeout: float | None = None, **payload: Any) -> Any:
        """Run kernel operation ``op`` and return its decoded ``ok`` value."""
        with self._blob_folder(op) as folder:
            return self._request(op, timeout, folder, [], payload)

    def _in_room(self, op: str) -> bool:
        return self.room is not None and op in ROOM_OPS

    def _blob_folder(self, op: str) -> contextlib.AbstractContextManager[BlobFolder | None]:
        blobs = self.room.blobs if self.room is not None and self._in_room(op) else self.blobs
        return blobs() if blobs is not None else contextlib.nullcontext()

    def _request(self, op: str, timeout: float | None, folder: BlobFolder | None, sent: list[str], payload: dict[str, Any]) -> Any:
        """``request`` with the tensor folder held open; ``sent``: input files written in it for this request, removed once answered."""
        session, marker = self.session, self.marker
        if self.room is not None and self._in_room(op):
            session, marker = self.room.session, self.room.marker
            # a replay runs whole cells it names itself; every other operation runs the statements its name needs
            needs = {"run": [], "anchor": {}} if op == "replay" else self.room.plan.needs(str(payload.get("name", "")))
            payload = {**payload, "room": needs}
        code = f"__import__('_hwgrader').request({op!r}, {json.dumps(payload)!r})"
        limit, cut = timeout or self.call_timeout, False
        if self.deadline is not None:
            left = self.deadline.left()
            if left <= 0:
                raise OutOfTime("no time was left to run your code")
            limit, cut = min(limit, left), left < limit
        started = time.monotonic()
        try:
            result = self.loop.run_until_complete(session.run_code(code, timeout=limit))
        finally:
            if self.deadline is not None:
                self.deadline.spent_calling(time.monotonic() - started)
            for name in sent:
                if folder is not None:
                    folder.remove(name)
        if result.status == "timeout":
            raise (OutOfTime if cut else CheckTimeout)(f"no answer within {limit:.3g} s")
        if result.status == "dead":
            raise KernelCrashed("the kernel died while running the student's code")
        replies = [line[len(marker) :] for line in result.stdout.splitlines() if line.startswith(marker)]
        if not replies:
            detail = result.error or (result.stdout.strip()[-300:] or "no output")
            raise BridgeError(f"the kernel sent no reply ({detail})")
        reply = parse_reply(replies[-1])
        self._note_ops(str(payload.get("name", op)), reply.get("ops"))
        if "crashed" in reply:  # the clean room's fork ended without answering: the process running their code died
            raise KernelCrashed(f"the process running the student's code ended: {str(reply['crashed'])[:200]}")
        if "missing" in reply:
            raise Missing(str(reply["missing"]))
        if "misfit" in reply:
            raise StateMisfit(str(payload.get("name", op)), _entries(reply["misfit"]))
        if "error" in reply:
            e = reply["error"] if isinstance(reply["error"], dict) else {}
            where, line = e.get("where"), e.get("line")
            raise StudentError(
                str(payload.get("name", op)),
                str(e.get("type", "Error"))[:100],
                str(e.get("message", ""))[:2000],
                where if isinstance(where, int) else None,
                line if isinstance(line, int) else None,
                str(e.get("code", ""))[:500],
                str(e.get("traceback", ""))[-4000:],
                render_call(op, payload),
            )
        if "ok" not in reply:
            raise BridgeError("reply without a result")
        return decode(reply["ok"], folder)

    def _note_ops(self, name: str, ops: Any) -> None:
        """Keep the aten operations the kernel says ``name`` ran (evidence for the TA's policy note, never a verdict:
        the kernel is the student's, so a note may be missing -- never one the student did not earn)."""
        if isinstance(ops, list):
            names = self.ran_ops.setdefault(name, set())
            names.update(o[:80] for o in ops[:MAX_OPS] if isinstance(o, str))

    # -- operations checks use ----------------------------------------------------------

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call the student's own definition of ``name`` with these arguments."""
        self.require_defined(name)
        return self.request("call", timeout=timeout, name=name, args=encode(list(args)), kwargs=encode(kwargs))

    def gradient(
        self,
        name: str,
        *args: Any,
        wrt: Sequence[int],
        output: int | None = None,
        cotangent: torch.Tensor | None = None,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Backpropagate through the student's ``name(*args, **kwargs)`` in the kernel.

        Returns ``{"output": Y, "grads": [...]}``: the gradients of ``(Y * cotangent).sum()`` (``cotangent``
        default ones) with respect to ``args[i]`` for each ``i`` in ``wrt`` (an entry None where the argument
        was not used; ``grads`` None when ``Y`` has no graph at all). ``output`` picks one entry of a tuple
        result. Only the gradients cross back, as data; the grader compares them with the reference's here --
        a defect only autograd sees (statistics taken from ``X.detach()``) shows nowhere else.
        """
        self.require_defined(name)
        return self._mapping_request(
            "gradient",
            timeout=timeout,
            name=name,
            args=encode(list(args)),
            kwargs=encode(kwargs),
            wrt=[int(i) for i in wrt],
            output=output,
            cotangent=encode(cotangent) if cotangent is not None else None,
        )

    def replay(self, name: str, cell: int, match: dict[str, Any], timeout: float | None = None) -> dict[str, Any] | None:
        """Rerun ``cell`` in the clean room, after the cells it needs (``RoomPlan.replay``, chosen from the file), and
        return ``{"weight", "trained", "reason"}`` for the layer bound to ``name`` there, by the scan's own rule.

        For a value graded *after a cell* (``learn_kernel``'s weight): the notebook's kernel, and every table in it, is
        the student's, so the value graded is the one the source computes in a process their later cells never reach.
        None where there is no clean room (the value the notebook's kernel kept is then all there is)."""
        if self.room is None:
            return None
        cells = self.room.plan.replay(cell)
        if not cells:
            return None
        return self._mapping_request("replay", timeout=timeout, name=name, cells=cells, match=match)

    def function(self, name: str, timeout: float | None = None):
        """A local stand-in for the student's function: calls cross into the kernel."""

        def remote(*args: Any, **kwargs: Any) -> Any:
            return self.call(name, *args, timeout=timeout, **kwargs)

        remote.__name__ = name
        return remote

    def values(self, key: str) -> dict[str, Any]:
        """The values snapshotted right after the cell that produced them (``key`` from the config)."""
        snapshot = next((s for s in getattr(self.assignment, "snapshots", []) if s.key == key), None)
        expressions = list(snapshot.values.values()) if snapshot else [key]
        try:
            taken = mapping(self.request("values", key=key), "values")
        except Missing:
            raise Missing(*expressions) from None
        cell = taken.get("__cell__") if isinstance(taken.get("__cell__"), int) else None
        if taken.get("__cell_error__"):
            ename, _, evalue = str(taken["__cell_error__"]).partition(": ")
            subject = "the cell that produces " + ", ".join(f"`{e}`" for e in expressions)
            raise StudentError(subject, ename, evalue, cell)
        for name, value in taken.items():
            if isinstance(value, SnapshotFailure):
                if value.type == "NameError":
                    raise Missing(value.message.split("'")[1] if value.message.count("'") >= 2 else name)
                raise StudentError(name, value.type, value.message, cell)
        return taken

    def summary(self, name: str, input_shape, args=(), kwargs=None, seed: int = 0, timeout: float | None = None) -> dict:
        """The model's layers as the kernel describes them: shown to the student, never a reason to pass."""
        self.require_defined(name)
        return self._mapping_request(
            "summary",
            timeout=timeout,
            name=name,
            args=encode(list(args)),
            kwargs=encode(kwargs or {}),
            input_shape=list(input_shape),
            seed=seed,
        )

    def forward(
        self,
        name: str,
        X: torch.Tensor,
        args=(),
        kwargs=None,
        state=None,
        seed: int = 0,
        modes=("train", "eval"),
        timeout: float | None = None,
    ) -> dict:
        """Build the student's model, load ``state`` (the grader's weights, by order) and run it on ``X``."""
        return self._model_request("forward", name, X, args, kwargs, state, timeout, seed=seed, modes=list(modes))

    def train(
        self, name: str, X: torch.Tensor, y: torch.Tensor, procedure: dict, args=(), kwargs=None, state=None, timeout: float | None = None
    ) -> dict:
        """Train the student's model from the grader's initial weights ``state`` by the grader's procedure."""
        return self._model_request("train", name, X, args, kwargs, state, timeout, y=encode(y), procedure=procedure)

    def _model_request(
        self, op: str, name: str, X: torch.Tensor, args: Any, kwargs: Any, state: Any, timeout: float | None, **extra: Any
    ) -> dict:
        """A request that builds the student's model: ``X`` and ``state`` (large) travel as files, removed once answered."""
        self.require_defined(name)
        sent: list[str] = []
        with self._blob_folder(op) as folder:
            try:
                payload = {
                    "name": name,
                    "args": encode(list(args)),
                    "kwargs": encode(kwargs or {}),
                    "X": encode(X, folder, sent),
                    "state": encode(list(state), folder, sent) if state is not None else None,
                    **extra,
                }
            except BaseException:
                for written in sent:
                    folder.remove(written)  # type: ignore[union-attr]  # only written with a folder
                raise
            return mapping(self._request(op, timeout, folder, sent, payload), op)

    def state_of(self, expression: str, timeout: float | None = None) -> dict:
        return self._mapping_request("state_of", timeout=timeout, expression=expression)

    def rebinding(self, names: list[str]) -> dict[str, str]:
        """Graded names the notebook later rebound, each with what it holds now (a type's name, for a sentence)."""
        return {name: str(kind)[:200] for name, kind in self._mapping_request("rebinding", names=list(names)).items()}

    def _mapping_request(self, op: str, timeout: float | None = None, **payload: Any) -> dict[str, Any]:
        return mapping(self.request(op, timeout, **payload), op)


def mapping(value: Any, op: str) -> dict[str, Any]:
    """The answer of an operation that answers with a mapping, or a :class:`BridgeError`: a kernel that sends a list,
    a number or a string in its place costs the question asking, never the grader's reading of the others."""
    if not isinstance(value, dict):
        raise BridgeError(f"the kernel answered `{op}` with a {type(value).__name__} where a mapping belongs")
    return value
