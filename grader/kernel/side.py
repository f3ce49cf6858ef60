"""Code that runs *inside the student's kernel*, sent there as text: the protocol and the encoding.

It is never imported by the grader's own process: this file and the ones after it in
``grader.kernel.side_text.KERNEL_FILES`` (``snapshots.py``, ``ops.py``) are
concatenated and executed in the kernel as one module named ``_hwgrader`` before the first
cell. It gives the grader a small fixed set of operations -- snapshot the student's
definitions and values, call a function, summarise, materialise, run and train a model --
whose inputs and outputs cross the process boundary as JSON with tensors as raw bytes
(dtype, shape, base64). Nothing is ever unpickled on either side.

This file holds what every operation shares: the reply marker, the state the snapshots fill
(``defs``, ``values``), :func:`encode`/:func:`decode`, the error reply, and :func:`request`,
the grader's one entry point.

A notebook can tamper with this module; that only garbles its own answers,
because the grader chooses the inputs and computes every verdict itself.
"""

# ruff: noqa
import base64
import json
import re
import sys
import traceback
import types

MARKER = "@@hwgrader:"  # replaced per session by the grader, with a random nonce appended
MAX_ELEMENTS = 50_000_000
#: A folder the grader reads raw tensor bytes from (set by the grader; None: every tensor inline as base64).
#: A trained VGG's state is ~170 MB: as base64 inside a JSON line on stdout it cost seconds each way.
BLOBS = None
BLOB_MIN_BYTES = 1 << 16

defs = {}  # name -> (object, cell index): the student's own def/class
values = {}  # snapshot key -> {name: value} right after the producing cell


def _ns():
    from IPython import get_ipython

    return get_ipython().user_ns


class SnapshotFailure:
    """A snapshot expression that raised; sent to the grader as ``__error__``."""

    def __init__(self, info):
        self.info = info


def encode(obj, depth=0):
    import torch

    if isinstance(obj, SnapshotFailure):
        return {"__error__": obj.info}
    if depth > 20:
        return {"__object__": "too deeply nested"}
    if isinstance(obj, torch.nn.Parameter):
        obj = obj.data
    if isinstance(obj, torch.Tensor):
        t = obj.detach().to("cpu").contiguous()
        if t.numel() > MAX_ELEMENTS:
            return {"__object__": f"tensor with {t.numel()} elements (too large)"}
        if t.dtype == torch.bfloat16:
            t = t.float()
        array = t.numpy()
        if BLOBS is not None and array.nbytes >= BLOB_MIN_BYTES:
            import os
            import secrets

            name = secrets.token_hex(8) + ".bin"
            array.tofile(os.path.join(BLOBS, name))
            return {"__tensor__": str(t.dtype).replace("torch.", ""), "shape": list(t.shape), "blob": name}
        return {
            "__tensor__": str(t.dtype).replace("torch.", ""),
            "shape": list(t.shape),
            "b64": base64.b64encode(t.numpy().tobytes()).decode("ascii"),
        }
    if isinstance(obj, torch.Size):
        return [int(v) for v in obj]
    if obj is None or isinstance(obj, (bool, int, float, str)):
        if isinstance(obj, float) and obj != obj:
            return {"__float__": "nan"}
        if isinstance(obj, float) and obj in (float("inf"), float("-inf")):
            return {"__float__": "inf" if obj > 0 else "-inf"}
        return obj
    if isinstance(obj, (list, tuple)):
        items = [encode(v, depth + 1) for v in obj]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if isinstance(obj, dict) and all(isinstance(k, str) for k in obj):
        return {"__dict__": {k: encode(v, depth + 1) for k, v in obj.items()}}
    return {"__object__": type(obj).__module__ + "." + type(obj).__qualname__, "repr": repr(obj)[:300]}


def decode(data):
    import torch

    if isinstance(data, list):
        return [decode(v) for v in data]
    if isinstance(data, dict):
        if "__tensor__" in data:
            dtype = getattr(torch, data["__tensor__"])
            if "blob" in data:  # a large input the grader wrote as a file (a model's state)
                import os

                path = os.path.join(BLOBS, os.path.basename(data["blob"]))
                with open(path, "rb") as handle:
                    raw = bytearray(handle.read())
            else:
                raw = bytearray(base64.b64decode(data["b64"]))
            flat = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
            return flat.reshape(data["shape"]).clone()
        if "__tuple__" in data:
            return tuple(decode(v) for v in data["__tuple__"])
        if "__dict__" in data:
            return {k: decode(v) for k, v in data["__dict__"].items()}
        if "__module__" in data:
            allowed = {
                "LazyConv2d": torch.nn.LazyConv2d,
                "Conv2d": torch.nn.Conv2d,
                "MaxPool2d": torch.nn.MaxPool2d,
                "AvgPool2d": torch.nn.AvgPool2d,
            }
            return allowed[data["__module__"]](**decode(data["kwargs"]))
    return data


def emit(payload):
    sys.stdout.write(MARKER + json.dumps(payload) + "\n")
    sys.stdout.flush()


def _is_cell_file(filename):
    """A frame of code the notebook's cells defined (IPython names each cell's code so), not a library's or ours."""
    import re

    return bool(re.search(r"ipykernel_\d+[/\\]\d+\.py$|^<ipython-input-", filename or ""))


def _error(exc, where=None):
    # The deepest frame of the student's own cells: never a line of this module or of a library
    # (an argument mismatch raised at our call site has no student line at all).
    frames = traceback.extract_tb(exc.__traceback__)
    student = [f for f in frames if _is_cell_file(f.filename)]
    last = student[-1] if student else None
    room_cell = re.search(r"/hwgrader/ipykernel_0/9(\d{6})\.py$", last.filename) if last else None
    if room_cell:  # the clean room compiles each statement under its own cell's number: the line's own cell
        where = int(room_cell.group(1))
    return {
        "error": {
            "type": type(exc).__name__,
            "message": str(exc)[:2000],
            "line": last.lineno if last else None,
            "code": (last.line or "") if last else "",
            "where": where,
            "traceback": "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:],
        }
    }


#: Operations that run the student's code on the grader's inputs: the aten operations they reach are recorded
#: and sent with the reply, so a built-in convolution, pooling or batch norm inside a from-scratch question is
#: flagged for the TA however the code reached it (``getattr(F, "conv" + "2d")``, ``eval``, a subclass).
RECORDED_OPS = ("call", "forward", "gradient")
#: At most this many distinct operation names are recorded per request.
RECORDED_LIMIT = 500


def _recorder():
    """A dispatch mode that notes the name of every aten operation run under it (None where torch has none)."""
    try:
        from torch.utils._python_dispatch import TorchDispatchMode
    except Exception:
        return None

    class _Ran(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = set()

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if len(self.names) < RECORDED_LIMIT:
                self.names.add(str(func.overloadpacket.__name__))
            return func(*args, **(kwargs or {}))

    return _Ran()


def request(op, payload_json):
    """Entry point for the grader: run ``op`` on JSON arguments and emit a JSON reply (``OPS``: ops.py).

    A payload that names the clean room's statements (``room``) is answered by a fork that runs them first
    (``room_request``, room.py); any other runs here, on what the snapshots kept."""
    try:
        payload = json.loads(payload_json)
        room = payload.pop("room", None)
        if room is not None:
            sys.stdout.write(MARKER + room_request(op, payload, room) + "\n")
            sys.stdout.flush()
            return
        emit(_run(op, payload))
    except BaseException as exc:
        emit(_error(exc))


def _run(op, payload, recorder=None):
    """The reply to ``op``: the operation's own, its ``ok`` value encoded, and the aten operations it ran where recorded."""
    if recorder is None and op in RECORDED_OPS:
        recorder = _recorder()
    if recorder is None:
        reply = OPS[op](**payload)
    else:
        with recorder:
            reply = OPS[op](**payload)
        reply["ops"] = sorted(recorder.names)
    if "ok" in reply:
        reply["ok"] = encode(reply["ok"])
    return reply
