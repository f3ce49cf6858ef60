"""What the grader keeps of a notebook's outputs while it runs: caps, and what was cut.

Why: what a cell displays or prints is capped *as it arrives* (per output,
per cell, per notebook: :class:`OutputCaps`); the rest is counted, not
stored, and the cell says what was cut (:class:`OutputCut`). Ten 512 MiB
prints in one cell took the grader to 6.7 GiB before this. The caps are
applied by :class:`grader.kernel.bounded_client.BoundedNotebookClient`; the pieces
here (a stream's kept head and tail, a JSON value's measured size, an error
cut to what a report shows) are shared with ``KernelSession.run_code``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader.kernel.channels import MAX_MESSAGE_BYTES

#: An error's name, message and traceback as kept (a student may raise an exception with a 500 MB message).
ERROR_NAME_CHARS, ERROR_VALUE_CHARS, TRACEBACK_LINES, TRACEBACK_LINE_CHARS = 200, 2000, 30, 4000
#: JSON nesting an output may have (an ``application/json`` display; deeper is refused, never recursed into).
MAX_OUTPUT_DEPTH = 32


@dataclass
class OutputCaps:
    """What the grader keeps of a notebook's outputs while it runs (characters; the rest is counted, not stored).

    Generous next to what the executed notebook keeps (grader/kernel/shrink.py: 20,000 characters per text
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
            parts.append(
                f"{self.refused:,} message{'s' if self.refused > 1 else ''} from the kernel that could not be "
                f"read or {'were' if self.refused > 1 else 'was'} over {MAX_MESSAGE_BYTES >> 20} MiB"
            )
        caps = caps or OutputCaps()
        limits = (
            f"the grader keeps {caps.per_output >> 20} MiB per output, {caps.per_cell >> 20} MiB per cell and "
            f"{caps.per_notebook >> 20} MiB per notebook"
        )
        return "not kept: " + "; ".join(parts) + f" ({limits})"

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


class StreamBuffer:
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


def measure(value: Any, max_depth: int = MAX_OUTPUT_DEPTH) -> tuple[int, bool]:
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


def clip(value: Any, limit: int) -> str:
    """``value`` if it is a string of at most ``limit`` characters, else its start and how much was cut ("" for a non-string)."""
    text = value if isinstance(value, str) else ""
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit:,} characters cut by the grader]"


def error_output(content: dict[str, Any]) -> NotebookNode:
    """An error output with its name, message and traceback cut to what a report shows."""
    traceback = content.get("traceback")
    lines = [clip(line, TRACEBACK_LINE_CHARS) for line in traceback[-TRACEBACK_LINES:]] if isinstance(traceback, list) else []
    return nbformat.v4.new_output(
        "error",
        ename=clip(content.get("ename"), ERROR_NAME_CHARS) or "Error",
        evalue=clip(content.get("evalue"), ERROR_VALUE_CHARS),
        traceback=lines,
    )
