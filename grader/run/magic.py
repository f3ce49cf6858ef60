"""``%grade`` in a running notebook: the student's self-check, graded from the saved file, in a separate process.

``%load_ext grader`` then ``%grade`` (or ``%grade QUESTION...``, or ``%grade path/to/notebook.ipynb``) in JupyterLab,
Jupyter Notebook, VS Code or Colab. Why a separate process: the student's kernel holds whatever their cells left
(a patched ``torch.allclose``, a stale definition, a cell run out of order); a verdict taken from that state would be
neither the TA's nor reproducible. So the magic only finds the notebook's *file*, and grades it as ``grade`` does --
a fresh grading process, its own kernel (sandboxed where the system has one: ``grader/sandbox/platform.py``), the
quick budget, the visible checks only (``checks.py``; the hidden questions are reported as not run).

Which file: the one named on the line; else Jupyter Server 2+'s ``JPY_SESSION_NAME`` (``__session__`` in the user's
namespace), VS Code's ``__vsc_ipynb_file__``, or in Colab the notebook as the editor holds it
(``google.colab._message.blocking_request("get_ipynb")``), written to a temporary file; otherwise the magic says why it
cannot tell and asks for a path. A file saved before the last cell the magic saw run may not hold the latest changes:
it says so first (Jupyter autosaves every two minutes; Colab's copy comes from the editor and is always current).

While the grading process runs, its per-cell progress is streamed into the cell's output; then the per-question
table, the full HTML report (its own page, with its Content-Security-Policy, in a sandboxed iframe's ``srcdoc``) and
the report's path are shown. The results go to a folder under the system's temporary folder, never beside the
notebook (where a TA collecting a class's folder would take them for submissions).
"""

from __future__ import annotations

import html
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grader.errors import ConfigError
from grader.results import GradeResult

#: How a student asks for a path when the notebook cannot be found (said in every such message).
ASK_FOR_PATH = "run `%grade path/to/your_notebook.ipynb` instead"
#: The progress lines of the grading process (``grader/run/progress.py``'s ``cell_progress``).
PROGRESS_LINE = re.compile(r": running cell \d+/\d+$")
#: Seconds an interrupted grading process has to shut its kernels down before its process group is killed.
STOP_GRACE = 15
#: Seconds Colab's frontend has to hand over the notebook.
COLAB_TIMEOUT = 30


class NotebookNotFound(ConfigError):
    """The magic cannot tell which notebook it runs in; the message says why and asks for a path."""


@dataclass(frozen=True)
class Found:
    """The notebook file to grade, and how it was found (said to the student)."""

    path: Path
    how: str
    #: A copy the magic wrote (Colab): always current, never checked for unsaved changes.
    copy: bool = False


@dataclass
class Executions:
    """When the student's cells started running, as seen since ``%load_ext grader`` (IPython's ``pre_run_cell``)."""

    started: list[float] = field(default_factory=list)

    def pre_run_cell(self, *args: Any) -> None:
        self.started.append(time.time())
        del self.started[:-2]

    def last_before_this(self) -> float | None:
        """When the cell before the one running ``%grade`` started (None: none seen)."""
        return self.started[-2] if len(self.started) >= 2 else None


def parse_line(line: str) -> tuple[Path | None, list[str]]:
    """``%grade``'s arguments: a ``.ipynb`` path (at most one) and question ids."""
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise ConfigError(f"%grade: cannot read the line ({exc})") from None
    paths = [w for w in words if w.endswith(".ipynb")]
    if len(paths) > 1:
        raise ConfigError("%grade: name one notebook at most")
    return (Path(paths[0]).expanduser() if paths else None), [w for w in words if not w.endswith(".ipynb")]


def find_notebook(user_ns: dict[str, Any], given: Path | None, environ: dict[str, str] | None = None) -> Found:
    """The notebook file being edited (see the module's docstring for where each editor says it)."""
    environ = dict(os.environ if environ is None else environ)
    if given is not None:
        if not given.is_file():
            raise NotebookNotFound(f"%grade: there is no file {given}")
        return Found(given.resolve(), "named on the %grade line")
    session = user_ns.get("__session__") or environ.get("JPY_SESSION_NAME")
    if isinstance(session, str) and session.endswith(".ipynb"):
        for candidate in (Path(session), Path.cwd() / session, Path.cwd() / Path(session).name):
            if candidate.is_file():
                return Found(candidate.resolve(), "the Jupyter session's notebook")
    vscode = user_ns.get("__vsc_ipynb_file__")
    if isinstance(vscode, str) and Path(vscode).is_file():
        return Found(Path(vscode).resolve(), "the notebook VS Code runs")
    if "google.colab" in sys.modules:
        return _from_colab()
    said = f" (the session names {session!r}, which is not a file here)" if isinstance(session, str) and session else ""
    raise NotebookNotFound(
        "%grade: this kernel does not say which notebook it runs" + said + ": Jupyter Server 2 or later, VS Code and Colab "
        f"do; elsewhere {ASK_FOR_PATH}"
    )


def _from_colab() -> Found:
    """Colab keeps the notebook in the browser (and Drive): its frontend hands the JSON over; it is written to a temporary file."""
    import importlib

    # Colab's own module, present only in Colab's runtime (no distribution installs it): looked up by name, at run time.
    message = importlib.import_module("google.colab._message")
    reply = message.blocking_request("get_ipynb", request="", timeout_sec=COLAB_TIMEOUT)
    notebook = reply.get("ipynb") if isinstance(reply, dict) else None
    if not isinstance(notebook, dict):
        raise NotebookNotFound(f"%grade: Colab did not hand over the notebook; save a copy (File > Download .ipynb) and {ASK_FOR_PATH}")
    folder = Path(tempfile.mkdtemp(prefix="grader-colab-"))
    path = folder / "colab_notebook.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")
    return Found(path, "the notebook open in Colab (a copy of what the editor holds)", copy=True)


def unsaved_warning(found: Found, executions: Executions) -> str:
    """A sentence when the file looks older than the student's work (saved before the last cell that ran); '' otherwise."""
    last = executions.last_before_this()
    if found.copy or last is None:
        return ""
    if found.path.stat().st_mtime < last:
        return (
            f"{found.path.name} was last saved before the last cell you ran: it may not hold your latest changes. "
            "%grade grades the saved file -- save it (Ctrl+S / Cmd+S) and run %grade again to include them."
        )
    return ""


def results_folder(notebook: Path) -> Path:
    """Where a self-check's result and report go: the system's temporary folder, one folder per notebook."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", notebook.stem)[:80] or "notebook"
    return Path(tempfile.gettempdir()) / "grader-self-check" / safe


def child_command(notebook: Path, out: Path) -> list[str]:
    """The grading process: ``grade`` itself, on the saved file, quick budget, visible checks only."""
    return [sys.executable, "-m", "grader.run.magic", str(notebook), str(out)]


def grade_saved(notebook: Path, out: Path, on_line: Any) -> tuple[int, list[str]]:
    """Run the grading process; ``on_line(text, progress)`` for each line of its stderr as it comes. Its exit status and
    the stderr lines that were not progress (kept for a failure's message)."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    kept: list[str] = []
    process = subprocess.Popen(
        child_command(notebook, out), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=sys.platform != "win32"
    )
    assert process.stderr is not None  # asked for above
    try:
        pending = b""
        while chunk := os.read(process.stderr.fileno(), 4096):
            pending += chunk
            *lines, pending = re.split(rb"[\r\n]", pending)
            for raw in lines:
                text = raw.decode("utf-8", "replace").strip()
                if text:
                    progress = bool(PROGRESS_LINE.search(text))
                    if not progress:
                        kept.append(text)
                    on_line(text, progress)
        return process.wait(), kept
    except BaseException:  # the student interrupted the cell: the grading process and its kernels go too
        stop(process)
        raise


def stop(process: subprocess.Popen[bytes]) -> None:
    """End the grading process: first as Ctrl-C would (it shuts its kernels down), then its whole process group."""
    if sys.platform == "win32":
        process.terminate()
        process.wait()
        return
    try:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=STOP_GRACE)
    except subprocess.TimeoutExpired:
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)  # started in a session of its own: what it started goes too
    except OSError:
        pass
    process.wait()


def question_rows(result: GradeResult, only: list[str]) -> list[tuple[str, str, str, str]]:
    """(question, status, points, message) for the table; only the questions asked for, when some were."""
    return [
        (q.id, q.status, f"{q.points:g}/{q.max_points:g}" if q.counted else f"-/{q.max_points:g}", q.message)
        for q in result.questions
        if not only or q.id in only
    ]


def table_text(result: GradeResult, only: list[str]) -> str:
    rows = question_rows(result, only)
    lines = [f"{question:24} {status:12} {points:8} {message}" for question, status, points, message in rows]
    hidden = (
        f"{result.hidden_questions_not_run} hidden question(s) not run (your TA's grading runs them)"
        if result.hidden_questions_not_run
        else ""
    )
    return "\n".join([f"score {result.score:g}/{result.max_score:g}", *lines, *([hidden] if hidden else [])])


def table_html(result: GradeResult, only: list[str]) -> str:
    cells = "".join(
        f"<tr><td><code>{html.escape(q)}</code></td><td>{html.escape(s)}</td><td>{html.escape(p)}</td><td>{html.escape(m)}</td></tr>"
        for q, s, p, m in question_rows(result, only)
    )
    hidden = result.hidden_questions_not_run
    return (
        f"<p><strong>score {result.score:g}/{result.max_score:g}</strong>"
        + (f" &middot; {hidden} hidden question(s) not run (your TA's grading runs them)" if hidden else "")
        + "</p>"
        f"<table><thead><tr><th>question</th><th>status</th><th>points</th><th>reason</th></tr></thead><tbody>{cells}</tbody></table>"
    )


def report_iframe(report: str) -> str:
    """The report's own page in an iframe: ``srcdoc`` keeps its Content-Security-Policy; ``sandbox`` gives it nothing more."""
    return f'<iframe sandbox="" style="width:100%;height:600px;border:1px solid #ccc" srcdoc="{html.escape(report, quote=True)}"></iframe>'


def grade_magic(line: str, user_ns: dict[str, Any], executions: Executions) -> GradeResult | None:
    """``%grade``: find, warn, grade the saved file in a separate process while showing its progress, then show the verdicts."""
    from IPython.display import display

    given, only = parse_line(line)
    try:
        found = find_notebook(user_ns, given)
    except NotebookNotFound as exc:
        print(exc, file=sys.stderr)
        return None
    warning = unsaved_warning(found, executions)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"grading {found.path} ({found.how}): the saved file, in a separate process, quick budget, visible checks only")
    out = results_folder(found.path)
    progress = display({"text/plain": "starting the grading process..."}, raw=True, display_id=True)

    def on_line(text: str, is_progress: bool) -> None:
        if is_progress and progress is not None:
            progress.update({"text/plain": text}, raw=True)
        elif not is_progress:
            print(text, file=sys.stderr)

    status, kept = grade_saved(found.path, out, on_line)
    target = out / f"{found.path.stem}.json"
    if status != 0 or not target.is_file():
        print(f"%grade: the grading process ended with status {status} and no result: {' | '.join(kept[-5:])}", file=sys.stderr)
        return None
    result = GradeResult.from_dict(json.loads(target.read_text(encoding="utf-8")))
    unknown = [q for q in only if q not in {r.id for r in result.questions}]
    if unknown:
        print(f"%grade: no question {', '.join(unknown)} in {result.assignment} (showing all)", file=sys.stderr)
        only = []
    display({"text/plain": table_text(result, only), "text/html": table_html(result, only)}, raw=True)
    report = target.with_suffix(".html")
    if report.is_file():
        page = report.read_text(encoding="utf-8")
        display({"text/plain": f"report: {report}", "text/html": report_iframe(page)}, raw=True, metadata={"report": str(report)})
    print(f"report: {report}\nresult: {target}")
    return result


def register(ipython: Any) -> None:
    """Called by ``%load_ext grader`` (``grader.load_ipython_extension``): the ``%grade`` magic, and the executions it watches."""
    executions = Executions([time.time()])  # the cell loading the extension is running now: the hook starts with the next
    ipython.events.register("pre_run_cell", executions.pre_run_cell)

    def grade(line: str) -> None:
        grade_magic(line, ipython.user_ns, executions)

    ipython.register_magic_function(grade, "line", "grade")


def main(argv: list[str] | None = None) -> int:
    """The grading process ``%grade`` starts: ``python -m grader.run.magic NOTEBOOK OUT`` (progress on stderr, line by line)."""
    from grader.run.api import grade_paths

    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m grader.run.magic NOTEBOOK OUT (started by %grade)", file=sys.stderr)
        return 2
    from grader.course.seeds import batch_seed

    batch_seed()
    try:
        grade_paths([args[0]], out=Path(args[1]), budget="quick", visible_only=True, force=True, progress=True)
    except ConfigError as exc:
        print(f"grade: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
