"""The wire format between the grader and the kernel: only data crosses, never code or pickles.

The kernel (``grader/kernel/side.py``, sent as text) replies with one JSON line after a marker. Values are
JSON with a few tagged objects, the same table on both sides (``side.py`` writes, :func:`decode`
reads; :func:`encode` writes what the grader sends):

=====================================  =============================================================
``{"__tensor__": dtype, "shape", "b64"}``   a tensor's raw bytes inline (dtype from a whitelist)
``{"__tensor__": dtype, "shape", "blob"}``  the same bytes in a file of the IPC folder (64 KiB and up)
``{"__tuple__": [...]}``                    a tuple
``{"__dict__": {...}}``                     a dict with string keys
``{"__module__": kind, "kwargs"}``          (grader -> kernel) a layer for the kernel to build
``{"__object__": type, "repr"}``            a value that is not transferred (:class:`RemoteObject`)
``{"__error__": {"type", "message"}}``       a snapshot expression that raised (:class:`SnapshotFailure`)
``{"__float__": "nan" | "inf" | "-inf"}``   a float JSON cannot spell
=====================================  =============================================================

Decoding checks every size before reading a byte: a reply line is at most 16 MiB, nesting at most 32
levels, the tensors of one reply at most 1 GiB in all; blob files are reached through a descriptor of their
folder (``grader/sandbox/files.py``: no link on the way is followed) and must be regular files of exactly the
declared size, read straight into the tensor's memory. Nothing is unpickled or evaluated, so a notebook that
patches ``torch.allclose`` or builtins changes only its own process; the comparison happens in the grader's.
"""

from __future__ import annotations

import base64
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import torch

from grader.errors import BridgeError
from grader.sandbox.files import BlobFolder

_DTYPES = {
    name: getattr(torch, name) for name in ("float16", "float32", "float64", "bfloat16", "int8", "int16", "int32", "int64", "uint8", "bool")
}


#: The largest tensor the grader reads from a blob file (a trained model's state is well under it).
MAX_BLOB_BYTES = 1 << 30
#: Everything one reply may carry: its JSON line, the tensor bytes of all its files, its nesting.
#: Inline values are small by construction (tensors of 64 KiB and up travel as files), so a JSON
#: line of 16 MiB is far above any honest reply; a trained VGG-11's state is ~510 MB of files.
MAX_REPLY_CHARS = 16 << 20
MAX_REPLY_TENSOR_BYTES = 1 << 30
MAX_REPLY_DEPTH = 32
_BLOB_NAME = re.compile(r"[0-9a-f]{16}\.bin")
_SPECIAL_FLOATS = ("nan", "inf", "-inf")


def decode(data: Any, blobs: BlobFolder | None = None, _budget: list[int] | None = None, _depth: int = 0) -> Any:
    """Rebuild a value the kernel encoded; only data, never code or pickles.

    ``blobs``: the folder the kernel writes large tensors' raw bytes to, held by a descriptor (see :func:`read_blob`);
    None refuses any tensor that is not inline. Every reply is written as if by an attacker, so
    nesting is bounded (:data:`MAX_REPLY_DEPTH`) and so is the sum of its tensors' bytes
    (:data:`MAX_REPLY_TENSOR_BYTES`), checked from the declared shapes before a byte is read. Any JSON
    value decodes to a value or raises :class:`BridgeError`, never another exception.
    """
    budget = [MAX_REPLY_TENSOR_BYTES] if _budget is None else _budget
    if _depth > MAX_REPLY_DEPTH:
        raise BridgeError(f"a reply nested deeper than {MAX_REPLY_DEPTH} levels")
    if isinstance(data, list):
        return [decode(v, blobs, budget, _depth + 1) for v in data]
    if isinstance(data, dict):
        if "__tensor__" in data:
            dtype = _DTYPES.get(data["__tensor__"]) if isinstance(data["__tensor__"], str) else None
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
                return read_blob(blobs, data["blob"], dtype, shape, expected)
            text = data.get("b64")
            if not isinstance(text, str) or len(text) > 4 * (expected // 3 + 1):
                raise BridgeError(f"tensor of shape {shape} carries the wrong number of bytes")
            try:
                raw = bytearray(base64.b64decode(text, validate=True))
            except ValueError:  # binascii.Error: not base64
                raise BridgeError(f"tensor of shape {shape} carries bytes that are not base64") from None
            if len(raw) != expected:
                raise BridgeError(f"tensor of shape {shape} carries {len(raw)} bytes, expected {expected}")
            if not raw:
                return torch.empty(shape, dtype=dtype)
            return torch.frombuffer(raw, dtype=dtype).reshape(shape)  # owns ``raw`` now: no second copy
        if "__tuple__" in data:
            return tuple(decode(v, blobs, budget, _depth + 1) for v in _list(data["__tuple__"]))
        if "__dict__" in data:
            items = data["__dict__"]
            if not isinstance(items, dict):
                raise BridgeError("a dictionary that is not one")
            return {str(k): decode(v, blobs, budget, _depth + 1) for k, v in items.items()}
        if "__float__" in data:
            if data["__float__"] not in _SPECIAL_FLOATS:
                raise BridgeError(f"a float that is not nan or an infinity: {str(data['__float__'])[:40]!r}")
            return float(data["__float__"])
        if "__error__" in data:
            e = data["__error__"]
            if not isinstance(e, dict):
                raise BridgeError("a snapshot error that is not a mapping")
            return SnapshotFailure(str(e.get("type", "Error"))[:200], str(e.get("message", ""))[:2000])
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


def read_blob(folder: BlobFolder | None, name: Any, dtype: torch.dtype, shape: list[int], expected: int) -> torch.Tensor:
    """A tensor whose raw bytes the kernel wrote to a file: read as data only, straight into the tensor, and removed.

    The name must be of the kernel's format (no path); the file is reached through the folder's
    descriptor (:class:`grader.sandbox.files.BlobFolder`), never through a link, and must be a regular
    file of exactly ``expected`` bytes, at most :data:`MAX_BLOB_BYTES` -- checked before a byte is read.
    The bytes land in the tensor's own memory: a 1 GiB reply is held once, not read and then copied.
    """
    if folder is None:
        raise BridgeError("a tensor arrived as a file, but this session reads none")
    if not isinstance(name, str) or not _BLOB_NAME.fullmatch(name):
        raise BridgeError(f"a tensor file with an unexpected name: {str(name)[:40]!r}")
    if expected > MAX_BLOB_BYTES:
        raise BridgeError(f"a tensor of {expected} bytes is over the {MAX_BLOB_BYTES} bytes the grader reads")
    tensor = torch.empty(shape, dtype=dtype)
    target = tensor.view(-1).view(torch.uint8).numpy().data if expected else memoryview(bytearray())
    folder.read_into(name, target)
    return tensor


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


def encode(value: Any, blobs: BlobFolder | None = None, written: list[str] | None = None) -> Any:
    """The inverse of :func:`decode`, for inputs the grader sends.

    With ``blobs``, a large tensor is written there as a new file (``O_EXCL``, through the folder's
    descriptor: never through a link the kernel planted) and sent by name; ``written`` collects the
    names to remove afterwards.
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
            name = blobs.write(raw)
            if written is not None:
                written.append(name)
            return {**head, "blob": name}
        return {**head, "b64": base64.b64encode(raw).decode("ascii")}
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, blobs, written) for v in value]}
    if isinstance(value, list):
        return [encode(v, blobs, written) for v in value]
    if isinstance(value, dict):
        return {"__dict__": {str(k): encode(v, blobs, written) for k, v in value.items()}}
    return value


@dataclass(frozen=True)
class SnapshotFailure:
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
