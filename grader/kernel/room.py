"""Kernel side, part 4 of 4 (after ops.py): the clean room, in the second kernel of a submission.

Sent as text with the other parts, as one module (see side.py). In the clean room's kernel no cell ever runs:
:func:`room_load` is handed the statements ``grader/source/clean_room.py`` took from the notebook's file, and each request
that names the statements it needs is answered by :func:`room_request` in a *fork* of this kernel. The fork runs
those statements in a fresh namespace (the student's code runs only there, and only what the source defines), then
the operation, and writes its reply to a pipe; this process prints it and the fork is gone. So no call can change
what the next one finds, the student's code never sees this module by name (it is dropped from ``sys.modules``
before their first statement runs), and a crash, a hang or a flood of output costs one reply, never the kernel.

This process itself only imports libraries and never computes with torch, so a fork starts with no thread pool
to inherit half-alive (OpenMP's is not fork-safe once used).
"""

# One module with side.py in the kernel: the names defined there are undefined to a linter here.
# ruff: noqa
import json
import os
import sys

#: The statements and the cells' text (for tracebacks), set once by room_load. ``fork``: False where the system has no
#: safe fork (Windows, macOS: grader/sandbox/platform.py sets it); each request then runs here, in a fresh namespace.
ROOM = {"statements": [], "cells": {}, "fork": True}
#: A reply past this many bytes is refused (the grader keeps the last 32 MiB of what a request prints).
ROOM_REPLY_LIMIT = 30 << 20


def room_load(data_json):
    """Keep the notebook's statements; import the libraries every fork will use (none of the student's code runs)."""
    data = json.loads(data_json)
    ROOM["statements"] = data["statements"]
    ROOM["cells"] = data["cells"]
    for module in data.get("preload", []):
        try:
            __import__(module)
        except Exception:
            pass  # a library that is not installed: the statement importing it fails in the fork, and says so


def room_filename(cell):
    """The file name a statement of ``cell`` is compiled under (here and in ``snap_def_source``): a cell file to ``_error``,
    which reads the cell back from it."""
    return f"/hwgrader/ipykernel_0/{9000000 + int(cell)}.py"


class _Sink:
    """The fork's stdout and stderr: what the student's code prints goes nowhere (never into the reply's pipe)."""

    def write(self, text):
        return len(text)

    def flush(self):
        pass

    def isatty(self):
        return False


def room_request(op, payload, room):
    """Answer ``op`` in a fork that first runs the statements ``room["run"]``; the reply as one line of JSON."""
    import select
    import signal

    if not ROOM["fork"]:
        return _room_inline(op, payload, room)

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the fork: never returns
        try:
            os.close(read_end)
            data = _room_answer(op, payload, room)
        except BaseException as exc:
            data = json.dumps(_error(exc))
        try:
            view = memoryview(data.encode("utf-8", "replace"))
            while view:
                view = view[os.write(write_end, view) :]
        finally:
            os._exit(0)
    os.close(write_end)
    chunks, size, status = [], 0, None
    try:
        while True:
            ready, _, _ = select.select([read_end], [], [], 0.2)
            if ready:
                chunk = os.read(read_end, 1 << 20)
                if not chunk:
                    break
                size += len(chunk)
                if size > ROOM_REPLY_LIMIT:
                    return json.dumps({"crashed": f"its reply was over {ROOM_REPLY_LIMIT >> 20} MiB"})
                chunks.append(chunk)
            elif status is None:
                done, waited = os.waitpid(pid, os.WNOHANG)
                if done:
                    status = waited
            else:
                break  # it ended, and whatever it left running holds the pipe without writing
    finally:
        os.close(read_end)
        if status is None:
            try:
                os.kill(pid, signal.SIGKILL)  # a request interrupted, or a fork that closed its pipe and ran on
            except ProcessLookupError:
                pass
            _, status = os.waitpid(pid, 0)
    text = b"".join(chunks).decode("utf-8", "replace")
    if not text:
        if os.WIFSIGNALED(status):
            why = f"it was killed by signal {os.WTERMSIG(status)}"
            if os.WTERMSIG(status) == signal.SIGKILL:
                why += " (out of memory, most likely)"
        else:
            why = f"it exited with status {os.WEXITSTATUS(status)} before answering"
        return json.dumps({"crashed": why})
    if "\n" in text:
        return json.dumps({"crashed": "it sent a garbled reply"})
    return text


def _room_inline(op, payload, room):
    """Without a fork (a self-check on Windows or macOS): the request answered in this process, in a fresh namespace.

    What the student's statements change outside that namespace (a module patched, a global of torch set) is seen by
    the next request: the result's isolation line says the requests shared one process. Output still goes nowhere."""
    dumps = json.dumps
    saved = sys.stdout, sys.stderr, sys.modules.get("_hwgrader")
    try:
        return _room_answer(op, payload, room, inline=True)
    except BaseException as exc:  # an interrupt (time limit) or the student's SystemExit: a reply, never the kernel's end
        return dumps(_error(exc))
    finally:
        sys.stdout, sys.stderr = saved[0], saved[1]
        if saved[2] is not None:
            sys.modules["_hwgrader"] = saved[2]


def _room_answer(op, payload, room, inline=False):
    """In the fork: the student's statements in a fresh namespace, then the operation; the reply as JSON text."""
    import builtins
    import linecache

    dumps = json.dumps  # taken before the student's code can replace it
    if not inline:  # a fork's own descriptors: the process is gone after the reply
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
    sys.stdout = sys.stderr = _Sink()
    sys.modules.pop("_hwgrader", None)  # not reachable by name from the student's code
    recorder = _recorder() if op in RECORDED_OPS else None  # made before their code can change the dispatch machinery
    anchors = {int(index): name for name, index in room.get("anchor", {}).items()}
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    failed = {}
    defs.clear()
    for index in room.get("run", []):
        statement = ROOM["statements"][index]
        cell = int(statement["cell"])
        filename = room_filename(cell)
        if filename not in linecache.cache:
            text = ROOM["cells"].get(str(cell), "")
            linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)
        try:
            exec(compile(statement["text"], filename, "exec"), namespace)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
            failed[index] = _error(exc, cell)
            continue
        if index in anchors and anchors[index] in namespace:
            defs[anchors[index]] = (namespace[anchors[index]], cell)  # what this statement made, even if rebound later
    for index, name in anchors.items():
        if name not in defs and index in failed:
            return dumps(failed[index])  # the definition itself raised: its own error, at its own line
    return dumps(_run(op, payload, recorder))


def op_replay(name, cells, match):
    """In a fork of the clean room: rerun the cells ``cells`` (the training cell last, with the cells it needs before it,
    as ``RoomPlan.replay`` chose them from the file) in a fresh namespace, and tell how ``name``'s weight came out of the
    last one: the weight, and whether it was trained there by the same rule the notebook's scan uses (``_scan_type``:
    changed, and a gradient reached it or an optimizer stepped it). Nothing the notebook's kernel kept is read."""
    import builtins
    import linecache

    _watch_optimizers()  # before any of their code runs: a step is noted however the optimizer was reached
    namespace = {"__name__": "__main__", "__builtins__": builtins}
    limit = int(match.get("max_elements", SCAN_MAX_ELEMENTS))
    state = {}
    for position, entry in enumerate(cells):
        cell, last = int(entry["cell"]), position == len(cells) - 1
        if last:
            _scan_type(match, state, limit, namespace)  # the weights before it, each watched for gradients from here on
            stepped.clear()
            accumulated.clear()
        filename = room_filename(cell)
        linecache.cache[filename] = (len(entry["text"]), None, entry["text"].splitlines(True), filename)
        try:
            exec(compile(entry["text"], filename, "exec"), namespace)
        except BaseException as exc:  # SystemExit and KeyboardInterrupt from student code too
            if last:
                return _error(exc, cell)
            # an earlier cell that raises here raised in the notebook too (its own report says so): go on, as the notebook did
    events = [e for e in _scan_type(match, state, limit, namespace) if e["name"] == name]
    if events:
        event = events[0]
        return {"ok": {"weight": event["values"]["weight"], "trained": event["trained"], "reason": event["reason"]}}
    weight = _conv_like(namespace.get(name), match, limit)
    if weight is None:
        return {"ok": {"weight": None, "trained": False, "reason": "the rerun left no such layer under that name"}}
    reason = "its weight did not change when the grader reran the cell"
    return {"ok": {"weight": weight.detach().to("cpu").clone(), "trained": False, "reason": reason}}


OPS["replay"] = op_replay
