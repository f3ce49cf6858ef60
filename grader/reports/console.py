"""The terminal summary of a graded submission (HTML reports are rendered from the same JSON)."""

from __future__ import annotations

import sys
from pathlib import Path

from grader.kernel.device import describe
from grader.results import GradeResult, status_of


def one_line(text: str, limit: int = 110) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def print_summary(result: GradeResult, json_path: Path, file=None) -> None:
    """A per-question table with status, points and a one-line reason, then the total."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from grader.reports.text_safety import terminal_text

    # Student text (file name, messages) is handed to rich as Text, never parsed as markup or emoji codes.
    console = Console(file=file or sys.stdout, highlight=False, soft_wrap=False, emoji=False)
    execution = result.execution
    observed = f"; the kernel had {describe(execution.observed_device)}" if execution.observed_device else ""
    console.print(
        Text.assemble(
            (terminal_text(result.submission), "bold"),
            terminal_text(f"  ({result.assignment}, budget {result.budget}, {result.device}{observed})"),
        )
    )
    if result.environment_problem:
        console.print(
            "[bold red]NOT GRADED: the grader's environment, not the notebook, stopped it; "
            "nothing was charged, grade it again after the change below.[/bold red]"
        )
    if execution.isolation.startswith("self-check on "):  # plain mode (grader/sandbox/platform.py): said first, loudly
        console.print(Text(terminal_text(execution.isolation), style="bold yellow"))
    status = execution.status + (f": {execution.message}" if execution.message else "")
    console.print(Text(terminal_text(f"execution {status} in {execution.seconds:.1f} s; {len(execution.neutralized)} line(s) neutralized")))
    table = Table(show_header=True, header_style="bold")
    for column in ("question", "status", "points", "reason"):
        table.add_column(column, overflow="fold" if column == "reason" else "ellipsis")
    for q in result.questions:
        style = known.style if (known := status_of(q.status)) else ""
        points = f"{q.points:g}/{q.max_points:g}" if q.counted else f"–/{q.max_points:g}"
        reason = one_line(terminal_text(q.message or q.details.get("policy", "") or q.details.get("rebound", "")))
        table.add_row(Text(terminal_text(q.id)), Text(q.status, style=style), points, Text(reason))
    console.print(table)
    pending = f" (+{result.manual_points_pending:g} for a TA to grade)" if result.manual_points_pending else ""
    if result.hidden_questions_not_run:
        n = result.hidden_questions_not_run
        pending += f"; {n} hidden question{'s' if n > 1 else ''} not run"
    console.print(f"[bold]score {result.score:g}/{result.max_score:g}[/bold]{pending}")
    console.print(Text(terminal_text(f"report: {Path(json_path).with_suffix('.html')}   result: {json_path}")))


def summary_line(result: GradeResult, json_path: Path) -> str:
    """One line per notebook of a batch: score, what went wrong, where the report is."""
    problems = [q.id for q in result.questions if q.status in ("fail", "error", "missing")]
    pending = f" (+{result.manual_points_pending:g} TA)" if result.manual_points_pending else ""
    status = "" if result.execution.status == "ok" else f" [{result.execution.status}: {one_line(result.execution.message, 60)}]"
    failing = f"; not passing: {', '.join(problems[:6])}{'…' if len(problems) > 6 else ''}" if problems else ""
    return (
        f"{Path(result.submission).name}: {result.score:g}/{result.max_score:g}{pending}{status}{failing} "
        f"-> {Path(json_path).with_suffix('.html')}"
    )
