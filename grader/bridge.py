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

KERNEL_SOURCE = (Path(__file__).with_name("kernel_side.py")).read_text(encoding="utf-8")

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
_BLOB_NAME = re.compile(r"[0-9a-f]{16}\.bin")


def decode(data: Any, blobs: Path | None = None) -> Any:
    """Rebuild a value the kernel encoded; only data, never code or pickles.

    ``blobs``: the folder the kernel writes large tensors' raw bytes to (see :func:`read_blob`);
    None refuses any tensor that is not inline.
    """
    if isinstance(data, list):
        return [decode(v, blobs) for v in data]
    if isinstance(data, dict):
        if "__tensor__" in data:
            dtype = _DTYPES.get(data["__tensor__"])
            if dtype is None:
                raise BridgeError(f"unsupported tensor dtype {data['__tensor__']!r}")
            shape = [int(s) for s in data["shape"]]
            expected = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
            if "blob" in data:
                raw = read_blob(blobs, data["blob"], expected)
            else:
                raw = bytearray(base64.b64decode(data["b64"], validate=True))
            if len(raw) != expected:
                raise BridgeError(f"tensor of shape {shape} carries {len(raw)} bytes, expected {expected}")
            if not raw:
                return torch.empty(shape, dtype=dtype)
            return torch.frombuffer(raw, dtype=dtype).reshape(shape).clone()
        if "__tuple__" in data:
            return tuple(decode(v, blobs) for v in data["__tuple__"])
        if "__dict__" in data:
            return {str(k): decode(v, blobs) for k, v in data["__dict__"].items()}
        if "__float__" in data:
            return float(data["__float__"])
        if "__error__" in data:
            e = data["__error__"]
            return SnapshotError(str(e.get("type", "Error")), str(e.get("message", "")))
        if "__object__" in data:
            return RemoteObject(str(data["__object__"]), str(data.get("repr", "")))
        raise BridgeError(f"unexpected object in reply: {sorted(data)[:5]}")
    return data


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


def encode(value: Any) -> Any:
    """The inverse of :func:`decode`, for inputs the grader sends."""
    if isinstance(value, Module):
        return {"__module__": value.kind, "kwargs": encode(value.kwargs)}
    if isinstance(value, torch.Tensor):
        t = value.detach().to("cpu").contiguous()
        return {"__tensor__": str(t.dtype).replace("torch.", ""), "shape": list(t.shape),
                "b64": base64.b64encode(t.numpy().tobytes()).decode("ascii")}  # fmt: skip
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v) for v in value]}
    if isinstance(value, list):
        return [encode(v) for v in value]
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode(v) for k, v in value.items()}}
    return value


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

    def request(self, op: str, timeout: float | None = None, **payload: Any) -> Any:
        """Run kernel operation ``op`` and return its decoded ``ok`` value."""
        code = f"__import__('_hwgrader').request({op!r}, {json.dumps(payload)!r})"
        result = self.loop.run_until_complete(self.session.run_code(code, timeout=timeout or self.call_timeout))
        if result.status == "timeout":
            raise CheckTimeout(f"no answer within {timeout or self.call_timeout:g} s")
        if result.status == "dead":
            raise KernelCrashed("the kernel died while running the student's code")
        replies = [line[len(self.marker):] for line in result.stdout.splitlines() if line.startswith(self.marker)]
        if not replies:
            detail = result.error or (result.stdout.strip()[-300:] or "no output")
            raise BridgeError(f"the kernel sent no reply ({detail})")
        try:
            reply = json.loads(replies[-1])
        except json.JSONDecodeError as exc:
            raise BridgeError(f"unreadable reply: {exc}") from None
        if not isinstance(reply, dict):
            raise BridgeError("unreadable reply")
        if "missing" in reply:
            raise Missing(str(reply["missing"]))
        if "error" in reply:
            e = reply["error"]
            raise StudentError(payload.get("name", op), e.get("type", "Error"), e.get("message", ""),
                               e.get("where"), e.get("line"), e.get("code", ""), e.get("traceback", ""))  # fmt: skip
        if "ok" not in reply:
            raise BridgeError("reply without a result")
        return decode(reply["ok"], self.blob_dir)

    # -- operations checks use ----------------------------------------------------------

    def call(self, name: str, *args: Any, timeout: float | None = None, **kwargs: Any) -> Any:
        """Call the student's own definition of ``name`` with these arguments."""
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
        return self.request("summary", timeout=timeout, name=name, args=encode(list(args)), kwargs=encode(kwargs or {}),
                            input_shape=list(input_shape), seed=seed)  # fmt: skip

    def forward(self, name: str, X: torch.Tensor, args=(), kwargs=None, state=None, seed: int = 0,
                modes=("train", "eval"), timeout: float | None = None) -> dict:  # fmt: skip
        return self.request("forward", timeout=timeout, name=name, args=encode(list(args)), kwargs=encode(kwargs or {}),
                            X=encode(X), seed=seed, state=encode(state) if state is not None else None,
                            modes=list(modes))  # fmt: skip

    def train(self, name: str, X: torch.Tensor, y: torch.Tensor, procedure: dict, args=(), kwargs=None,
              timeout: float | None = None) -> dict:  # fmt: skip
        return self.request("train", timeout=timeout, name=name, args=encode(list(args)), kwargs=encode(kwargs or {}),
                            X=encode(X), y=encode(y), procedure=procedure)  # fmt: skip

    def state_of(self, expression: str, timeout: float | None = None) -> dict:
        return self.request("state_of", timeout=timeout, expression=expression)

    def rebinding(self, names: list[str]) -> dict[str, str]:
        return self.request("rebinding", names=list(names))
