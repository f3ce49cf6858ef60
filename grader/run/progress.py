"""Progress on the terminal: a bar for a batch, the current cell for one notebook.

Shown only on an interactive terminal (stderr is a TTY) and never with
``--json``; otherwise every function here is silent, so logs and pipes get
only the results. Every line shown holds student text (file names, messages)
and passes through :func:`grader.reports.text_safety.terminal_text` first: a file
name must not be able to move the cursor, recolour or clear the terminal.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from grader.reports.text_safety import terminal_text
from grader.results import GradeResult

if TYPE_CHECKING:  # rich is imported only when a bar is shown
    from rich.progress import Progress, TaskID


def wanted(json_output: bool) -> bool:
    return not json_output and sys.stderr.isatty()


class BatchProgress:
    """done/total, full marks, problems (execution not ok) and the ETA of a batch, on one line.

    Use as a context manager; ``done(result)`` after each submission.
    """

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled and total > 0
        self.full = self.problems = 0
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> BatchProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self._progress = Progress(
                TextColumn("grading"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[tally]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task("grading", total=self.total, tally=self.tally())
        return self

    def tally(self) -> str:
        return f"full marks {self.full} · problems {self.problems}"

    def done(self, result: GradeResult) -> None:
        if result.max_score and result.score == result.max_score:
            self.full += 1
        if result.execution.status != "ok":
            self.problems += 1
        if self._progress is not None and self._task is not None:  # both set in __enter__, or neither
            self._progress.update(self._task, advance=1, tally=self.tally())

    def line(self, text: str) -> None:
        """A line of output above the bar (or plainly on stdout without one); never markup, never escapes."""
        text = terminal_text(text)
        if self._progress is not None:
            self._progress.console.print(text, markup=False, highlight=False, emoji=False)
        else:
            print(text, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


def cell_progress(path: Path, enabled: bool) -> Callable[[int, int], None] | None:
    """For one notebook: ``name: running cell k/n`` rewritten in place."""
    if not enabled:
        return None
    name = terminal_text(path.name, limit=80)

    def show(position: int, total: int) -> None:
        print(f"\r{name}: running cell {position + 1}/{total}", end="", file=sys.stderr, flush=True)

    return show
