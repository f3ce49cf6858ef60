"""The grader's side of the kernel boundary: the ``Submission`` handle checks are written against.

A check never touches the student's objects. It asks the kernel, through
:class:`Submission`, to run one of the fixed operations of
:mod:`grader.kernel_side` on inputs the grader chose, and gets back plain
data: JSON, with tensors as dtype + shape + raw bytes, decoded here with a
dtype whitelist and a size check. Nothing from the kernel is unpickled or
evaluated, so a notebook that patches ``torch.allclose`` or builtins changes
only its own process, and the comparison happens in this one.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import re
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from grader.execute import KernelSession

from grader.kernel_source import KERNEL_SOURCE  # noqa: E402  (kept importable from here for tests)

_DTYPES = {
    name: getattr(torch, name)
    for name in ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool")
}


class Missing(Exception):
    """The name(s) a question needs are not defined by the notebook."""

    def __init__(self, *names: str):
        listed = ", ".join(f"`{n}`" for n in names)
        super().__init__(f"{listed} {'is' if len(names) == 1 else 'are'} not defined")
        self.names = names


class StateMisfit(Exception):
    """The grader's weights (the book's model's state, in order) do not fit the student's model.

    ``entries``: the student's state as the kernel lists it, (name, shape) -- for the message only.
    """

    def __init__(self, name: str, entries: list[tuple[str, tuple[int, ...]]]):
        super().__init__(name)
        self.name = name
        self.entries = entries


def _entries(value: Any) -> list[tuple[str, tuple[int, ...]]]:
    """The (name, shape) pairs of a misfit reply, kept only where they are plain data."""
    out = []
    for item in value if isinstance(value, list) else []:
        if (isinstance(item, list) and len(item) == 2 and isinstance(item[0], str) and isinstance(item[1], list)
                and all(isinstance(v, int) for v in item[1])):  # fmt: skip
            out.append((item[0][:100], tuple(item[1])))
    return out[:2000]


class NotDefined(Missing):
    """A name the notebook's source never defines with ``def``/``class`` (perhaps bound otherwise)."""

    def __init__(self, name: str, bound: Any = None, asks: str = ""):
        super().__init__(name)
        self.bound = bound
        if bound is not None:
            if bound.kind == "assign" and bound.value:
                how = f"`{bound.name} = {bound.value}(...)`"
            elif bound.kind in ("def", "class"):
                how = f"`{bound.kind} {bound.name}{bound.signature or ''}`"
            else:
                how = f"`{bound.source_line}`"
            if asks.startswith("class "):
                wanted = f"`{asks}`"
            elif name[:1].isupper():
                wanted = f"`class {name}`" + (f" called as `{asks}`" if asks else "")
            else:
                wanted = f"`def {name}`"
            self.args = (f"`{name}` is not defined: the assignment asks for {wanted}; found {how} in cell {bound.cell}",)


@dataclass
class StudentError(Exception):
    """The student's code raised while a check ran it."""

    name: str
    type: str
    message: str
    cell: int | None = None
    line: int | None = None
    code: str = ""
    traceback: str = ""
    #: The call the grader made, as text (``vgg_block(1, 4)``), for a message about arguments.
    call: str = ""

    def __str__(self) -> str:
        where = f" (cell {self.cell}" + (f", line {self.line}: `{self.code.strip()}`" if self.line else "") + ")" if self.cell is not None else ""
        return f"{self.name} raised {self.type}: {self.message}{where}"


class CheckTimeout(Exception):
    """The student's code did not return within the check's time limit."""


class KernelCrashed(Exception):
    """The kernel died while a check ran the student's code."""


class BridgeError(Exception):
    """The kernel sent no usable reply (tampered bridge, garbled output)."""


#: The largest tensor the grader reads from a blob file (a trained model's state is well under it).
MAX_BLOB_BYTES = 1 << 30
#: Everything one reply may carry: its JSON line, the tensor bytes of all its files, its nesting.
#: Inline values are small by construction (tensors of 64 KiB and up travel as files), so a JSON
#: line of 16 MiB is far above any honest reply; a trained VGG-11's state is ~510 MB of files.
MAX_REPLY_CHARS = 16 << 20
MAX_REPLY_TENSOR_BYTES = 1 << 30
MAX_REPLY_DEPTH = 32
_BLOB_NAME = re.compile(r"[0-9a-f]{16}\.bin")


def decode(data: Any, blobs: Path | None = None, _budget: list[int] | None = None, _depth: int = 0) -> Any:
    """Rebuild a value the kernel encoded; only data, never code or pickles.

    ``blobs``: the folder the kernel writes large tensors' raw bytes to (see :func:`read_blob`);
    None refuses any tensor that is not inline. Every reply is written as if by an attacker, so
    nesting is bounded (:data:`MAX_REPLY_DEPTH`) and so is the sum of its tensors' bytes
    (:data:`MAX_REPLY_TENSOR_BYTES`), checked from the declared shapes before a byte is read.
    """
    budget = [MAX_REPLY_TENSOR_BYTES] if _budget is None else _budget
    if _depth > MAX_REPLY_DEPTH:
        raise BridgeError(f"a reply nested deeper than {MAX_REPLY_DEPTH} levels")
    if isinstance(data, list):
        return [decode(v, blobs, budget, _depth + 1) for v in data]
    if isinstance(data, dict):
        if "__tensor__" in data:
            dtype = _DTYPES.get(data["__tensor__"])
            if dtype is None:
                raise BridgeError(f"unsupported tensor dtype {str(data['__tensor__'])[:40]!r}")
            shape = data.get("shape")
            if not isinstance(shape, list) or len(shape) > 8 or not all(isinstance(v, int) and 0 <= v < 1 << 40 for v in shape):
                raise BridgeError("a tensor with an unreadable shape")
            expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            budget[0] -= expected
            if budget[0] < 0:
                raise BridgeError(f"a reply carrying more than {MAX_REPLY_TENSOR_BYTES} bytes of tensors")
            if "blob" in data:
                raw = read_blob(blobs, data["blob"], expected)
            else:
                text = data.get("b64")
                if not isinstance(text, str) or len(text) > 4 * (expected // 3 + 1):
                    raise BridgeError(f"tensor of shape {shape} carries the wrong number of bytes")
                raw = bytearray(base64.b64decode(text, validate=True))
            if len(raw) != expected:
                raise BridgeError(f"tensor of shape {shape} carries {len(raw)} bytes, expected {expected}")
            if not raw:
                return torch.empty(shape, dtype=dtype)
            return torch.frombuffer(raw, dtype=dtype).reshape(shape).clone()
        if "__tuple__" in data:
            return tuple(decode(v, blobs, budget, _depth + 1) for v in _list(data["__tuple__"]))
        if "__dict__" in data:
            items = data["__dict__"]
            if not isinstance(items, dict):
                raise BridgeError("a dictionary that is not one")
            return {str(k): decode(v, blobs, budget, _depth + 1) for k, v in items.items()}
        if "__float__" in data:
            return float(data["__float__"])
        if "__error__" in data:
            e = data["__error__"]
            return SnapshotError(str(e.get("type", "Error")), str(e.get("message", "")))
        if "__object__" in data:
            return RemoteObject(str(data["__object__"]), str(data.get("repr", "")))
        raise BridgeError(f"unexpected object in reply: {sorted(data)[:5]}")
    return data


def render_call(op: str, payload: dict[str, Any]) -> str:
    """The student's function or class as the grader called it, from a request's (encoded) payload."""
    name = str(payload.get("name", ""))
    if not name:
        return ""
    parts = [_shown(v) for v in payload.get("args") or []]
    kwargs = payload.get("kwargs") or {}
    parts += [f"{k}={_shown(v)}" for k, v in (kwargs.get("__dict__", kwargs) if isinstance(kwargs, dict) else {}).items()]
    return f"{name}({', '.join(parts)})"


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        if "__tensor__" in value:
            return "tensor of shape " + "x".join(str(v) for v in value.get("shape", []))
        if "__tuple__" in value:
            items = [_shown(v) for v in value["__tuple__"]]
            return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
        if "__module__" in value:
            return f"nn.{value['__module__']}(...)"
        if "__dict__" in value:
            return "{" + ", ".join(f"{k!r}: {_shown(v)}" for k, v in value["__dict__"].items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return repr(value)


def _list(value: Any) -> list:
    if not isinstance(value, list):
        raise BridgeError("a tuple that is not a list")
    return value


def parse_reply(line: str) -> dict[str, Any]:
    """One reply line as a JSON object, refused before parsing when over :data:`MAX_REPLY_CHARS`;
    nesting that would exhaust the parser's recursion is a refused reply, not a crash."""
    if len(line) > MAX_REPLY_CHARS:
        raise BridgeError(f"a reply of {len(line):,} characters (the limit is {MAX_REPLY_CHARS:,})")
    try:
        reply = json.loads(line)
    except (json.JSONDecodeError, RecursionError, ValueError) as exc:
        raise BridgeError(f"unreadable reply: {str(exc)[:200]}") from None
    if not isinstance(reply, dict):
        raise BridgeError("unreadable reply")
    return reply


def read_blob(folder: Path | None, name: Any, expected: int) -> bytearray:
    """A tensor's raw bytes from a file the kernel wrote, read as data only and removed.

    The kernel controls that folder, so the file is treated as hostile: a
    plain name of the kernel's format (no path), not a link (``O_NOFOLLOW``),
    a regular file (not a FIFO that would block), exactly the size the
    tensor's shape says and at most :data:`MAX_BLOB_BYTES` -- checked before
    a byte is read.
    """
    if folder is None:
        raise BridgeError("a tensor arrived as a file, but this session reads none")
    if not isinstance(name, str) or not _BLOB_NAME.fullmatch(name):
        raise BridgeError(f"a tensor file with an unexpected name: {str(name)[:40]!r}")
    if expected > MAX_BLOB_BYTES:
        raise BridgeError(f"a tensor of {expected} bytes is over the {MAX_BLOB_BYTES} bytes the grader reads")
    path = Path(folder) / name
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as exc:
        raise BridgeError(f"the tensor file {name} cannot be read ({exc.strerror})") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != expected:
            raise BridgeError(f"the tensor file {name} is not a file of {expected} bytes")
        buffer = bytearray(expected)
        view, done = memoryview(buffer), 0
        while done < expected:
            n = os.readv(fd, [view[done:]])
            if n == 0:
                raise BridgeError(f"the tensor file {name} ended after {done} of {expected} bytes")
            done += n
        return buffer
    finally:
        os.close(fd)
        try:
            path.unlink()
        except OSError:
            pass


@dataclass(frozen=True)
class Module:
    """A layer for the kernel to build from its own torch (``Module("LazyConv2d", out_channels=1, ...)``)."""

    kind: str
    kwargs: dict[str, Any]

    def __init__(self, kind: str, **kwargs: Any):
        object.__setattr__(self, "kind", kind)
        object.__setattr__(self, "kwargs", kwargs)


#: Inputs of this size and up go to the kernel as files (a model's state), not inside the request's code.
SEND_BLOB_MIN_BYTES = 1 << 16


def encode(value: Any, blobs: Path | None = None, written: list[Path] | None = None) -> Any:
    """The inverse of :func:`decode`, for inputs the grader sends.

    With ``blobs``, a large tensor is written there as a new file (``O_EXCL``, never through a
    link the kernel planted) and sent by name; ``written`` collects the files to remove afterwards.
    """
    if isinstance(value, Module):
        return {"__module__": value.kind, "kwargs": encode(value.kwargs, blobs, written)}
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        if t.dtype == torch.bfloat16:
            t = t.float()
        head = {"__tensor__": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
        raw = t.numpy().tobytes()
        if blobs is not None and len(raw) >= SEND_BLOB_MIN_BYTES:
            name = secrets.token_hex(8) + ".in"
            path = Path(blobs) / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
            try:
                _write_all(fd, raw)
            finally:
                os.close(fd)
            if written is not None:
                written.append(path)
            return {**head, "blob": name}
        return {**head, "b64": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, blobs, written) for v in value]}
    if isinstance(value, list):
        return [encode(v, blobs, written) for v in value]
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode(v, blobs, written) for k, v in value.items()}}
    return value


def _write_all(fd: int, raw: bytes) -> None:
    view, done = memoryview(raw), 0
    while done < len(raw):
        done += os.write(fd, view[done:])


@dataclass(frozen=True)
class SnapshotError:
    """A snapshot expression that raised in the kernel (e.g. ``conv2d.weight`` when ``conv2d`` is undefined)."""

    type: str
    message: str


@dataclass(frozen=True)
class RemoteObject:
    """A value of a type the bridge does not transfer (shown by type name and repr only)."""

    type: str
    repr: str

    def __str__(self) -> str:
        return f"<{self.type}>"


@dataclass
class Submission:
    """What a check sees of a submission: its notebook and operations on its kernel."""

    session: KernelSession
    loop: asyncio.AbstractEventLoop
    notebook: Any
    nonce: str = field(default_factory=lambda: secrets.token_hex(8))
    question: dict[str, Any] = field(default_factory=dict)
    assignment: Any = None
    call_timeout: float = 30.0
    #: Verdicts of the questions graded so far (a training check looks up its architecture's).
    results: dict[str, Any] = field(default_factory=dict)
    data_dir: Any = None
    budget: str = "quick"
    #: Where the kernel writes large tensors' raw bytes (inside the folder the sandbox shares with the grader).
    blob_dir: Path | None = None
    #: What the notebook's own source defines (``grader.source_index``), read by the grader from the file:
    #: only a name a cell defines is graded, whatever the kernel's table of definitions says.
    source: Any = None

    @property
    def marker(self) -> str:
        return "@@hwgrader:" + self.nonce

    def install_code(self) -> str:
        """Kernel code that installs the bridge module with this session's marker."""
        return (
            "import sys as _s, types as _t\n"
            "_m = _t.ModuleType('_hwgrader')\n"
            f"exec(compile({KERNEL_SOURCE!r}, '<_hwgrader>', 'exec'), _m.__dict__)\n"
            f"_m.MARKER = {self.marker!r}\n"
            f"_m.BLOBS = {str(self.blob_dir) if self.blob_dir is not None else None!r}\n"
            "_s.modules['_hwgrader'] = _m\n"
            "del _s, _t, _m\n"
        )

    # -- the protocol -----------------------------------------------------------------

    def require_defined(self, name: str) -> None:
        """Refuse to grade a name no cell of the notebook defines (``Missing``), whatever the kernel holds."""
        if self.source is None or self.source.defines(name):
            return
        signature = (getattr(self.assignment, "signatures", {}) or {}).get(name, {})
        raise NotDefined(name, self._written_instead(name, signature), signature.get("asks", ""))

    def _written_instead(self, name: str, signature: dict[str, str]) -> Any:
        """What the notebook wrote in place of ``name``, by the source only: the same name bound otherwise,
        a ``def``/``class`` of the same name in lower case (d2l-zh's ``def vgg``), or -- where the config
        says the model is often written so (``sequential = "net"``) -- the first ``net = nn.Sequential(...)``."""
        bound = self.source.bound(name)
        if bound is not None:
            return bound
        lower = [d for key, ds in self.source.definitions.items() if key.lower() == name.lower() for d in ds]
        if lower:
            return lower[-1]
        target = signature.get("sequential", "")
        found = [d for d in self.source.definitions.get(target, []) if d.kind == "assign"
                 and (d.value or "").split(".")[-1] == "Sequential"]  # fmt: skip
        return found[0] if found else None

    def request(self, op: str, timeout: float | None = None, sent: list[Path] | None = None, **payload: Any) -> Any:
        """Run kernel operation ``op`` and return its decoded ``ok`` value.

        ``sent``: input files written for this request (see :func:`encode`), removed once it is answered.
        """
        code = f"__import__('_hwgrader').request({op!r}, {json.dumps(payload)!r})"
        try:
            result = self.loop.run_until_complete(self.session.run_code(code, timeout=timeout or self.call_timeout))
        finally:
            for path in sent or ():
                try:
                    path.unlink()
                except OSError:
                    pass
        if result.status == "timeout":
            raise CheckTimeout(f"no answer within {timeout or self.call_timeout:g} s")
        if result.status == "dead":
            raise KernelCrashed("the kernel died while running the student's code")
        replies = [line[len(self.marker):] for line in result.stdout.splitlines() if line.startswith(self.marker)]
        if not replies:
            detail = result.error or (result.stdout.strip()[-300:] or "no output")
            raise BridgeError(f"the kernel sent no reply ({detail})")
        reply = parse_reply(replies[-1])
        if "missing" in reply:
            raise Missing(str(reply["missing"]))
        if "misfit" in reply:
            raise StateMisfit(str(payload.get("name", op)), _entries(reply["misfit"]))
        if "error" in reply:
            e = reply["error"] if isinstance(reply["error"], dict) else {}
            where, line = e.get("where"), e.get("line")
            raise StudentError(str(payload.get("name", op)), str(e.get("type", "Error"))[:100], str(e.get("message", ""))[:2000],
                               where if isinstance(where, int) else None, line if isinstance(line, int) else None,
                               str(e.get("code", ""))[:500], str(e.get("traceback", ""))[-4000:],
                               render_call(op, payload))  # fmt: skip
        if "ok" not in reply:
            raise BridgeError("reply without a result")
        return decode(reply["ok"], self.blob_dir)

    # -- operations checks use ----------------------------------------------------------

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call the student's own definition of ``name`` with these arguments."""
        self.require_defined(name)
        return self.request("call", timeout=timeout, name=name, args=encode(list(args)), kwargs=encode(kwargs))

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
            taken = self.request("values", key=key)
        except Missing:
            raise Missing(*expressions) from None
        if taken.get("__cell_error__"):
            ename, _, evalue = str(taken["__cell_error__"]).partition(": ")
            subject = "the cell that produces " + ", ".join(f"`{e}`" for e in expressions)
            raise StudentError(subject, ename, evalue, taken.get("__cell__"))
        for name, value in taken.items():
            if isinstance(value, SnapshotError):
                if value.type == "NameError":
                    raise Missing(value.message.split("'")[1] if value.message.count("'") >= 2 else name)
                raise StudentError(name, value.type, value.message, taken.get("__cell__"))
        return taken

    def summary(self, name: str, input_shape, args=(), kwargs=None, seed: int = 0, timeout: float | None = None) -> dict:
        """The model's layers as the kernel describes them: shown to the student, never a reason to pass."""
        self.require_defined(name)
        return self.request("summary", timeout=timeout, name=name, args=encode(list(args)), kwargs=encode(kwargs or {}),
                            input_shape=list(input_shape), seed=seed)  # fmt: skip

    def forward(self, name: str, X: torch.Tensor, args=(), kwargs=None, state=None, seed: int = 0,
                modes=("train", "eval"), timeout: float | None = None) -> dict:  # fmt: skip
        """Build the student's model, load ``state`` (the grader's weights, by order) and run it on ``X``."""
        self.require_defined(name)
        sent: list[Path] = []
        return self.request("forward", timeout=timeout, sent=sent, name=name, args=encode(list(args)),
                            kwargs=encode(kwargs or {}), X=encode(X, self.blob_dir, sent), seed=seed,
                            state=encode(list(state), self.blob_dir, sent) if state is not None else None,
                            modes=list(modes))  # fmt: skip

    def train(self, name: str, X: torch.Tensor, y: torch.Tensor, procedure: dict, args=(), kwargs=None,
              state=None, timeout: float | None = None) -> dict:  # fmt: skip
        """Train the student's model from the grader's initial weights ``state`` by the grader's procedure."""
        self.require_defined(name)
        sent: list[Path] = []
        return self.request("train", timeout=timeout, sent=sent, name=name, args=encode(list(args)),
                            kwargs=encode(kwargs or {}), X=encode(X, self.blob_dir, sent), y=encode(y),
                            procedure=procedure,
                            state=encode(list(state), self.blob_dir, sent) if state is not None else None)  # fmt: skip

    def state_of(self, expression: str, timeout: float | None = None) -> dict:
        return self.request("state_of", timeout=timeout, expression=expression)

    def rebinding(self, names: list[str]) -> dict[str, str]:
        return self.request("rebinding", names=list(names))
