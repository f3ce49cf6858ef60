"""Grading one submission: load -> neutralize -> execute -> check -> result.

Each step hands plain data to the next. The notebook's code only ever runs
in the kernel; the checks run here and see the kernel through
:class:`grader.bridge.Submission`.
"""

from __future__ import annotations

import ast
import asyncio
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

from grader import __version__
from grader.assignment import Assignment, Question
from grader.bridge import BridgeError, CheckTimeout, KernelCrashed, Missing, StateMisfit, StudentError, Submission
from grader.d2l_budget import Budget
from grader.assertions import Fail, ForTA, NotGraded
from grader.data_view import kernel_data_view
from grader.device import PEAK_CODE, PROBE_CODE, is_cuda_environment_error, lost_cuda_message, memory_fraction_code, parse_probe, unusable_cuda_message
from grader.execute import ExecutionOptions, KernelSession
from grader.cleanup import remove_tree
from grader.load import load_notebook, max_notebook_bytes
from grader.neutralize import neutralize
from grader.results import ExecutionRecord, GradeResult, QuestionResult, write_atomic
from grader.sandbox import Confinement, Limits
from grader.shrink import shrink_outputs
from grader.messages import edition_hint, is_argument_mismatch, locate_in_notebook, signature_message
from grader.source_index import SourceIndex, index_notebook


@dataclass
class GradeOptions:
    budget: Budget
    device: str = "cpu"
    cell_timeout: float | None = None
    timeout: float | None = None
    check_timeout: float = 60.0
    on_cell: Callable[[int, int], None] | None = None
    #: CPU threads for the kernel's and the checks' torch (parallel jobs share the cores).
    threads: int | None = None
    #: Run the kernel in a bubblewrap sandbox where one can be built (see grader/sandbox.py).
    sandbox: bool = True
    #: Memory, process and disk limits per kernel (default: a share of the machine).
    limits: Limits | None = None
    #: Kernels sharing this kernel's GPU (``--jobs-per-gpu``): each is held to its share of the GPU's memory.
    jobs_per_gpu: int = 1
    #: A notebook file over this many MB is refused unparsed (``--max-notebook-mb``; None: the assignment's ``[limits]``, else 5).
    max_notebook_mb: float | None = None


def _after_cell_code(assignment: Assignment, source: SourceIndex) -> Callable[[int, NotebookNode], str]:
    """Grader code to run after each cell: snapshot the student's own definitions and values.

    An ``after`` snapshot runs after a cell whose source matches its regex; the ``every_cell``
    ones scan the namespace after every cell (what the values are decides, not how a line is
    spelled), their ``after`` regex only marking the candidates of matching cells as hinted.
    """
    wanted = set(assignment.defined_names)
    scans = {s.key: s.match for s in assignment.snapshots if s.every_cell}
    by_cell: dict[int, list[str]] = {}
    for name in wanted:
        for definition in source.definitions.get(name, []):
            if definition.kind in ("def", "class"):
                by_cell.setdefault(definition.cell, []).append(name)

    def code(index: int, cell: NotebookNode) -> str:
        lines = []
        names = sorted(set(by_cell.get(index, [])))
        again = _rebound_in_cell(cell.source, names)
        if names and set(names) - set(again):
            lines.append(f"__import__('_hwgrader').snap_defs({sorted(set(names) - set(again))!r}, {index})")
        for name, statement in again.items():
            lines.append(f"__import__('_hwgrader').snap_def_source({name!r}, {statement!r}, {index})")
        failed = next((f"{o.get('ename', 'Error')}: {o.get('evalue', '')}" for o in cell.get("outputs", [])
                       if o.get("output_type") == "error"), None)  # fmt: skip
        for snap in assignment.snapshots:
            if not snap.every_cell and snap.after.search(cell.source):
                lines.append(f"__import__('_hwgrader').snap_values({snap.key!r}, {snap.values!r}, {index}, {failed!r})")
        if scans:
            hints = [s.key for s in assignment.snapshots if s.every_cell and s.after is not None and s.after.search(cell.source)]
            lines.append(f"__import__('_hwgrader').snap_scan({scans!r}, {index}, {failed!r}, {hints!r})")
        return "\n".join(lines)

    return code


def _rebound_in_cell(source: str, names: list[str]) -> dict[str, str]:
    """Graded names whose ``def``/``class`` the same cell rebinds after it, each with that statement's text
    (other lines blanked, so line numbers stay the cell's): the kernel keeps the definition, not the rebinding."""
    if not names:
        return {}
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return {}
    lines = source.split("\n")
    found: dict[str, str] = {}
    for position, node in enumerate(body):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) or node.name not in names:
            continue
        later = body[position + 1 :]
        if any(isinstance(t, ast.Name) and t.id == node.name and isinstance(t.ctx, ast.Store)
               for stmt in later for t in ast.walk(stmt)):  # fmt: skip
            first = min([node.lineno] + [d.lineno for d in node.decorator_list])
            kept = [text if first <= number <= node.end_lineno else "" for number, text in enumerate(lines, 1)]
            found[node.name] = "\n".join(kept)
    return found


def _manual_answer(notebook: NotebookNode, question: Question) -> dict[str, Any]:
    """The student's prose answer to a manual exercise, for the TA (see grader/answers.py)."""
    from grader.answers import find_answer

    return find_answer(notebook, question)


def _question_result(question: Question, status: str, message: str = "", details: dict | None = None) -> QuestionResult:
    points = question.points if status == "pass" else 0.0
    return QuestionResult(question.id, question.title, status, points, question.points, message, details or {}, question.section)


def run_check(submission: Submission, question: Question, check: Callable) -> QuestionResult:
    """One question's verdict; every way a check can end maps to a status and a message."""
    start = time.monotonic()
    submission.question = dict(question.options)
    verdict = _verdict(submission, question, check)
    verdict.details.setdefault("seconds", round(time.monotonic() - start, 3))
    return verdict


def _verdict(submission: Submission, question: Question, check: Callable) -> QuestionResult:
    try:
        outcome = check(submission)
    except Fail as fail:
        return _question_result(question, "fail", fail.message, fail.details)
    except ForTA as undecided:
        return _question_result(question, "manual", undecided.message, undecided.details)
    except NotGraded as skipped:
        return _question_result(question, skipped.status, skipped.message)
    except Missing as missing:
        return _question_result(question, "missing", str(missing))
    except StateMisfit as misfit:  # a check that did not turn it into a sentence of its own
        return _question_result(question, "fail", f"`{misfit.name}`: the book's weights do not fit its parameters")
    except StudentError as error:
        error = locate_in_notebook(error, submission.notebook)
        message = str(error)
        if error.type == "NotImplementedError":  # the generated template's placeholder, not a grader stub
            where = f" (cell {error.cell})" if error.cell is not None else ""
            subject = f"`{error.name}`" if error.name.isidentifier() else error.name
            message = f"{subject} is not implemented yet: it raises NotImplementedError{where}"
        elif is_argument_mismatch(error):
            message = signature_message(error, submission.source, getattr(submission.assignment, "signatures", {}))
        elif edition_hint(error):
            message = f"{message} — {edition_hint(error)}"
        return _question_result(question, "error", message, {"exception": error.type, "cell": error.cell, "line": error.line,
                                                              "code": error.code, "traceback": error.traceback})  # fmt: skip
    except CheckTimeout as exc:
        return _question_result(question, "fail", f"your code did not finish: {exc}")
    except KernelCrashed as exc:
        return _question_result(question, "error", str(exc))
    except BridgeError as exc:
        return _question_result(question, "error", f"the grader could not read your kernel's answer: {exc}")
    except Exception as exc:  # a bug in a check must not cost the rest of the batch
        return _question_result(question, "error", f"the check itself failed ({type(exc).__name__}: {exc}); tell your TA",
                                {"grader_traceback": traceback.format_exc()[-4000:]})  # fmt: skip
    details = dict(outcome) if isinstance(outcome, dict) else {}
    message = details.pop("message", "")
    return _question_result(question, "pass", message, details)


def grade_notebook(
    path: Path, assignment: Assignment, options: GradeOptions, shown_path: str | None = None, executed_to: Path | None = None
) -> GradeResult:
    """Grade the notebook at ``path`` completely; never raises for anything the notebook does.

    ``executed_to``: where to keep the notebook as it ran (outputs included,
    cut to a readable size), which the HTML report shows and plots come from.
    """
    started = time.monotonic()
    result = _grade(path, assignment, options, shown_path, executed_to)
    result.grading_seconds = round(time.monotonic() - started, 3)
    result.graded_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    result.sections = dict(assignment.sections)
    return result


def _grade(path: Path, assignment: Assignment, options: GradeOptions, shown_path: str | None, executed_to: Path | None) -> GradeResult:
    loaded = load_notebook(path, max_notebook_bytes(assignment.limits, options.max_notebook_mb))
    result = GradeResult(
        submission=shown_path or str(path), sha256=loaded.sha256, assignment=assignment.name,
        budget=options.budget.name, device=options.device, grader_version=__version__,
        execution=ExecutionRecord("invalid", loaded.reason),
    )  # fmt: skip
    if not loaded.valid:
        result.questions = [
            _question_result(q, "error", f"the notebook could not be read: {loaded.reason}")
            if q.kind == "auto" else _question_result(q, "manual", "", {"answer": "", "note": loaded.reason})
            for q in assignment.questions if assignment.runnable(q)
        ]  # fmt: skip
        result.hidden_questions_not_run = _hidden_not_run(assignment)
        return result
    notebook, neutralized = neutralize(loaded.notebook)
    source = index_notebook(notebook)  # what the notebook defines, read here from the file: the kernel is not asked
    budget_config = assignment.budgets.get(options.budget.name, {})
    workdir = Path(tempfile.mkdtemp(prefix="hwgrader-"))
    # The kernel is given a view of the data folder: the data set's files only, half of its test split (grader/data_view.py).
    data_view = kernel_data_view(options.budget.data_dir, workdir)
    confinement = Confinement.create(
        workdir, options.limits or Limits.default(), readonly=[], hidden=_grader_folders(), sandbox=options.sandbox, data=data_view.path
    )  # fmt: skip
    loop = asyncio.new_event_loop()
    try:
        blob_dir = confinement.blob_dir  # the grader's way to the kernel's tensor files, in the kernel's capped tmpfs
        submission = Submission(None, loop, notebook, assignment=assignment, call_timeout=options.check_timeout,
                                data_dir=options.budget.data_dir, budget=options.budget.name, blob_dir=blob_dir,
                                source=source)  # fmt: skip
        exec_options = ExecutionOptions(
            workdir=workdir / "work",
            cell_timeout=options.cell_timeout or budget_config.get("cell_timeout", 600),
            timeout=options.timeout or budget_config.get("timeout", 3600),
            env=_kernel_env(options),
            preamble=submission.install_code() + confinement.kernel_preamble() + _thread_preamble(options)
            + options.budget.preamble(confinement.kernel_data_dir) + _gpu_share_preamble(options),
            confinement=confinement,
        )  # fmt: skip
        session = KernelSession(notebook, exec_options)
        submission.session = session
        loop.run_until_complete(session.__aenter__())
        try:
            observed = loop.run_until_complete(_probe(session, PROBE_CODE))
            if options.device == "cuda" and not observed.get("cuda"):  # never a silent move to the CPU
                result.execution = ExecutionRecord("environment_error", unusable_cuda_message(observed),
                                                   isolation=confinement.isolation, observed_device=observed)  # fmt: skip
                result.questions = _not_graded(assignment, result.execution.message)
                result.hidden_questions_not_run = _hidden_not_run(assignment)
                return result
            record = loop.run_until_complete(session.run_notebook(options.on_cell, _after_cell_code(assignment, source)))
            record.neutralized = neutralized
            record.isolation = confinement.isolation
            record.observed_device = observed
            if observed.get("cuda"):
                record.gpu_memory_peak = int(loop.run_until_complete(_probe(session, PEAK_CODE)).get("gpu_memory_peak", 0) or 0)
            result.execution = record
            if executed_to is not None:
                write_atomic(executed_to, nbformat.writes(shrink_outputs(session.notebook)))
            lost = _cuda_lost(record, options) if options.device == "cuda" else ""
            if lost:
                record.status, record.message = "environment_error", lost
                result.questions = _not_graded(assignment, lost)
                result.hidden_questions_not_run = _hidden_not_run(assignment)
                return result
            for question in assignment.questions:
                if not assignment.runnable(question):
                    result.hidden_questions_not_run += 1
                    continue
                verdict = _grade_question(submission, notebook, question, assignment)
                _note_notebook_cell(verdict, question, assignment, notebook)
                _note_policy(verdict, question, source)
                if question.hidden:
                    verdict.details.pop("grader_traceback", None)  # never show a hidden check's source
                submission.results[question.id] = verdict
                result.questions.append(verdict)
            _note_rebinding(submission, result, assignment)
        finally:
            _cancel_pending(loop)  # e.g. a cell still running when Ctrl-C arrived
            loop.run_until_complete(session.close())
    finally:
        loop.close()
        confinement.close()  # whatever the notebook started is killed here
        remove_tree(workdir)  # iterative and bounded, never follows a link, never raises: the kernel wrote in it
    return result


async def _probe(session: KernelSession, code: str) -> dict[str, Any]:
    """Ask the kernel about its device (before the first cell) or its GPU memory peak (after the last)."""
    reply = await session.run_code(code, timeout=120)
    observed = parse_probe(reply.stdout)
    if not observed and reply.status != "ok":
        observed = {"cuda": False, "error": f"the probe failed: {reply.error or reply.status}"}
    return observed


def _cuda_lost(record: ExecutionRecord, options: GradeOptions) -> str:
    """The message for the first cell in which CUDA itself failed (the environment's doing), or ''."""
    for cell in record.cells:
        if cell.status == "error" and is_cuda_environment_error(cell.error):
            return lost_cuda_message(cell.index, cell.error, options.jobs_per_gpu)
    return ""


def _hidden_not_run(assignment: Assignment) -> int:
    """Hidden questions whose checks are absent here (a student's self-check): counted, never graded."""
    return sum(1 for q in assignment.questions if not assignment.runnable(q))


def _not_graded(assignment: Assignment, why: str) -> list[QuestionResult]:
    """Every runnable question as not graded because of the environment: nothing is charged, the reason is loud."""
    return [_question_result(q, "environment", f"not graded: {why}") for q in assignment.questions if assignment.runnable(q)]


def _kernel_env(options: GradeOptions) -> dict[str, str]:
    env = {"CUDA_VISIBLE_DEVICES": ""} if options.device == "cpu" else {}
    if options.threads:
        env.update({name: str(options.threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")})
    return env


def _thread_preamble(options: GradeOptions) -> str:
    if not options.threads:
        return ""
    import torch

    torch.set_num_threads(options.threads)  # the checks' own training, in this process
    return f"import torch\ntorch.set_num_threads({options.threads})\n"


def _gpu_share_preamble(options: GradeOptions) -> str:
    """Packed kernels (``--jobs-per-gpu N``, N > 1) each get 1/N of the GPU's memory, less a margin for CUDA's contexts."""
    if options.device != "cuda" or options.jobs_per_gpu <= 1:
        return ""
    return memory_fraction_code(0.95 / options.jobs_per_gpu)


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


def _grade_question(submission: Submission, notebook: NotebookNode, question: Question, assignment: Assignment) -> QuestionResult:
    if question.kind == "manual":
        return _question_result(question, "manual", "", _manual_answer(notebook, question))
    return run_check(submission, question, assignment.check_for(question))


def _note_rebinding(submission: Submission, result: GradeResult, assignment: Assignment) -> None:
    """Say where the notebook later rebound a graded name (``pool2d = nn.MaxPool2d(3)``)."""
    try:
        rebound = submission.rebinding(assignment.defined_names)
    except (BridgeError, StudentError, Missing, CheckTimeout, KernelCrashed):
        return
    defines = {q.id: q.defines for q in assignment.questions}  # only questions that ran are in the result
    for question in result.questions:
        for name in defines[question.id]:
            if name in rebound:
                question.details["rebound"] = (
                    f"`{name}` was later rebound to a {rebound[name]}; your own definition of `{name}` was graded"
                )


def _note_notebook_cell(verdict: QuestionResult, question: Question, assignment: Assignment, notebook: NotebookNode) -> None:
    """Name the cell where the notebook does a question's work itself (its own training), for the report's plots."""
    key = question.options.get("full_snapshot") or question.options.get("notebook_cell_after")
    snapshot = next((s for s in assignment.snapshots if s.key == key), None)
    if snapshot is None:
        return
    if isinstance(verdict.details.get("snapshot_cell"), int):  # the cell the check graded, found by its values
        verdict.details.setdefault("notebook_cell", verdict.details["snapshot_cell"])
        return
    if snapshot.after is None:
        return
    cells = [i for i, c in enumerate(notebook.cells) if c.cell_type == "code" and snapshot.after.search(c.source)]
    if cells:
        verdict.details.setdefault("notebook_cell", cells[-1])


def _grader_folders() -> list[Path]:
    """The grader's code, checks, reference and stored values: hidden from the kernel should they sit under a folder it sees."""
    import reference
    from grader.assignment import ASSIGNMENTS_DIR
    from grader.reference_cache import cache_dir

    return [Path(__file__).resolve().parent, Path(reference.__file__).resolve().parent, ASSIGNMENTS_DIR, cache_dir()]


def _note_policy(verdict: QuestionResult, question: Question, source: SourceIndex) -> None:
    """Flag a library shortcut (``F.conv2d`` inside ``corr2d``, or in a helper it calls) for the TA.

    Read from the notebook's source, not asked of the kernel; a policy question, not a wrong answer.
    """
    flagged = set(question.options.get("flag_calls", ()))
    if not flagged or not question.defines:
        return
    calls = source.library_calls(question.defines, flagged)
    if calls:
        shown = ", ".join(f"`{call}`" + (f" ({via})" if via else "") for call, via in calls)
        verdict.details["policy"] = f"uses {shown} (allowed to pass; your TA decides)"
