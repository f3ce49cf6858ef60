"""What the student's kernel did, as the grader sees it while a check runs: each a :class:`KernelError`.

Checks let these propagate; ``grader/checking/verdicts.py`` turns each into a status and a sentence for the student.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grader.errors import KernelError


class Missing(KernelError):
    """The name(s) a question needs are not defined by the notebook."""

    def __init__(self, *names: str):
        listed = ", ".join(f"`{n}`" for n in names)
        super().__init__(f"{listed} {'is' if len(names) == 1 else 'are'} not defined")
        self.names = names


class StateMisfit(KernelError):
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
        if (
            isinstance(item, list)
            and len(item) == 2
            and isinstance(item[0], str)
            and isinstance(item[1], list)
            and all(isinstance(v, int) for v in item[1])
        ):
            out.append((item[0][:100], tuple(item[1])))
    return out[:2000]


class NotDefined(Missing):
    """A name the notebook's source never defines with ``def``/``class`` (perhaps bound otherwise)."""

    def __init__(self, name: str, bound: Any = None, asks: str = "", arguments: tuple[str, ...] = ()):
        """``arguments``: the plain names ``bound``'s call starts with (shown, the first two: ``nn.Sequential(b1, b2, …)``)."""
        super().__init__(name)
        self.bound = bound
        if bound is not None:
            if bound.kind == "assign" and bound.value:
                shown = ", ".join(arguments[:2]) + ", …" if arguments else "..."
                how = f"`{bound.name} = {bound.value}({shown})`"
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
class StudentError(KernelError):
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
        where = (
            f" (cell {self.cell}" + (f", line {self.line}: `{self.code.strip()}`" if self.line else "") + ")"
            if self.cell is not None
            else ""
        )
        return f"{self.name} raised {self.type}: {self.message}{where}"


class CheckTimeout(KernelError):
    """The student's code did not return within the check's time limit."""


class OutOfTime(CheckTimeout):
    """The notebook's time limit, or its question's share of it, ran out (``grader/kernel/deadlines.py``): who used
    the time -- the student's code or the grader's work -- decides whether the student is charged."""


class KernelCrashed(KernelError):
    """The kernel died while a check ran the student's code."""
