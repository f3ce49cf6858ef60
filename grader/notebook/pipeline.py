"""Grading one submission: load -> neutralize -> execute -> check -> result.

Each step hands plain data to the next. The notebook's code only ever runs in the kernel; the checks run
here and see the kernel through :class:`grader.kernel.submission.Submission`, each with its question's
:class:`grader.checking.question_context.QuestionContext`. How a check's ending becomes a verdict is
``grader/checking/verdicts.py``; what runs in the kernel after each cell is ``grader/notebook/snapshot_code.py``.
"""

from __future__ import annotations

import asyncio
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nbformat

from grader import __version__
from grader.checking.question_context import context_for
from grader.checking.verdicts import judge_question, note_rebinding, out_of_time, question_result
from grader.course.assignment import Assignment
from grader.course.d2l_budget import Budget
from grader.course.data_view import kernel_data_view
from grader.course.seeds import batch_seed, kernel_seed, kernel_seed_code
from grader.errors import EnvironmentProblem
from grader.kernel.deadlines import Deadline
from grader.kernel.device import (
    PEAK_CODE,
    PROBE_CODE,
    is_cuda_environment_error,
    lost_cuda_message,
    memory_fraction_code,
    parse_probe,
    unusable_cuda_message,
)
from grader.kernel.execute import DEFAULT_CELL_TIMEOUT, DEFAULT_NOTEBOOK_TIMEOUT, ExecutionOptions, KernelSession
from grader.kernel.shrink import shrink_outputs
from grader.kernel.submission import CleanRoom, Submission, install_code, new_nonce
from grader.notebook.snapshot_code import after_cell_code
from grader.results import ExecutionRecord, GradeResult, PhaseClock, QuestionResult, QuestionStatus, write_atomic
from grader.sandbox.cleanup import remove_tree
from grader.sandbox.confinement import Confinement, Limits
from grader.sandbox.platform import scratch_root
from grader.source.clean_room import plan_room
from grader.source.load import load_notebook, max_notebook_bytes
from grader.source.neutralize import neutralize
from grader.source.source_index import index_notebook

#: Seconds a check's single call into the kernel may take (``Submission.call_timeout``) unless the check says otherwise.
DEFAULT_CHECK_TIMEOUT = 60.0


@dataclass
class GradeOptions:
    budget: Budget
    device: str = "cpu"
    cell_timeout: float | None = None
    timeout: float | None = None
    check_timeout: float = DEFAULT_CHECK_TIMEOUT
    on_cell: Callable[[int, int], None] | None = None
    #: CPU threads for the kernel's and the checks' torch (parallel jobs share the cores).
    threads: int | None = None
    #: Run the kernel in a bubblewrap sandbox where one can be built (see grader/sandbox/confinement.py).
    sandbox: bool = True
    #: Memory, process and disk limits per kernel (default: a share of the machine).
    limits: Limits | None = None
    #: Kernels sharing this kernel's GPU (``--jobs-per-gpu``): each is held to its share of the GPU's memory.
    jobs_per_gpu: int = 1
    #: A notebook whose code and markdown exceed this many MB is refused (``--max-notebook-mb``; None: the ``[limits]``, else 5).
    max_notebook_mb: float | None = None


def grade_notebook(
    path: Path, assignment: Assignment, options: GradeOptions, shown_path: str | None = None, executed_to: Path | None = None
) -> GradeResult:
    """Grade the notebook at ``path`` completely; never raises for anything the notebook does.

    ``executed_to``: where to keep the notebook as it ran (outputs included,
    cut to a readable size), which the HTML report shows and plots come from.
    """
    started = time.monotonic()
    clock = PhaseClock(started)
    result = _grade_loaded(path, assignment, options, shown_path, executed_to, clock)
    result.grading_seconds = round(time.monotonic() - started, 3)
    result.phase_seconds = clock.phases
    result.graded_at = datetime.now(UTC).isoformat(timespec="seconds")
    result.sections = dict(assignment.sections)
    return result


def _grade_loaded(
    path: Path, assignment: Assignment, options: GradeOptions, shown_path: str | None, executed_to: Path | None, clock: PhaseClock
) -> GradeResult:
    loaded = load_notebook(path, max_notebook_bytes(assignment.limits, options.max_notebook_mb))
    result = GradeResult(
        submission=shown_path or str(path),
        sha256=loaded.sha256,
        assignment=assignment.name,
        budget=options.budget.name,
        device=options.device,
        grader_version=__version__,
        execution=ExecutionRecord("invalid", loaded.reason),
    )
    if loaded.notebook is None:  # not loaded.valid
        result.questions = [
            question_result(q, QuestionStatus.ERROR, f"the notebook could not be read: {loaded.reason}")
            if q.kind == "auto"
            else question_result(q, QuestionStatus.MANUAL, "", {"answer": "", "note": loaded.reason})
            for q in assignment.questions
            if assignment.runnable(q)
        ]
        result.hidden_questions_not_run = _hidden_not_run(assignment)
        return result
    notebook, neutralized = neutralize(loaded.notebook)
    source = index_notebook(notebook)  # what the notebook defines, read here from the file: the kernel is not asked
    clock.lap("load")
    budget_config = assignment.budgets.get(options.budget.name, {})
    workdir = Path(tempfile.mkdtemp(prefix="hwgrader-", dir=scratch_root()))  # short enough for the kernel's sockets
    # The kernel is given a view of the data folder: the data set's files only, half of its test split (grader/course/data_view.py).
    data_view = kernel_data_view(options.budget.data_dir, workdir)
    try:
        confinement = Confinement.create(
            workdir, options.limits or Limits.default(), readonly=[], hidden=_grader_folders(), sandbox=options.sandbox, data=data_view.path
        )
    except EnvironmentProblem as exc:  # GRADER_REQUIRE_SANDBOX=1 on a system without one: not graded, and not the student's doing
        remove_tree(workdir)
        result.execution = ExecutionRecord("environment_error", str(exc))
        result.questions = _not_graded(assignment, str(exc))
        result.hidden_questions_not_run = _hidden_not_run(assignment)
        return result
    loop = asyncio.new_event_loop()
    room_confinement: Confinement | None = None
    try:
        nonce = new_nonce()  # the reply marker: the preamble installs it, the Submission reads it
        seed = kernel_seed(batch_seed(), loaded.sha256)  # the same file in the same run: the same outputs
        # One clock for the whole notebook: its cells, then its checks (grader/kernel/deadlines.py).
        deadline = Deadline(float(options.timeout or budget_config.get("timeout", DEFAULT_NOTEBOOK_TIMEOUT)))
        exec_options = ExecutionOptions(
            workdir=workdir / "work",
            cell_timeout=options.cell_timeout or budget_config.get("cell_timeout", DEFAULT_CELL_TIMEOUT),
            timeout=deadline.seconds,
            deadline=deadline.cells_end,
            env={**_kernel_env(options), "PYTHONHASHSEED": str(seed)},
            preamble=install_code(nonce, confinement.kernel_blob_dir)
            + confinement.kernel_preamble()
            + _thread_preamble(options)
            + options.budget.preamble(confinement.kernel_data_dir)
            + _gpu_share_preamble(options)
            + kernel_seed_code(seed),
            confinement=confinement,
            neutralized=neutralized,
        )
        session = KernelSession(notebook, exec_options)
        room_confinement = Confinement.create(
            workdir / "room", options.limits or Limits.default(), readonly=[], hidden=_grader_folders(), sandbox=options.sandbox
        )
        room = _clean_room(notebook, options, room_confinement, seed)
        # Both kernels start together: the clean room is ready by the time the cells have run.
        loop.run_until_complete(_start(session, room.session))
        submission = Submission(
            session,
            loop,
            notebook,
            nonce=nonce,
            assignment=assignment,
            call_timeout=options.check_timeout,
            blobs=confinement.open_blob_folder,  # the kernel's tensor files, reached by descriptor, never through a link
            source=source,
            deadline=deadline,
            room=room,
        )
        try:
            observed = loop.run_until_complete(_probe(session, PROBE_CODE))
            clock.lap("kernel_start")
            if options.device == "cuda" and not observed.get("cuda"):  # never a silent move to the CPU
                result.execution = ExecutionRecord(
                    "environment_error",
                    unusable_cuda_message(observed),
                    isolation=confinement.isolation,
                    observed_device=observed,
                    seed=seed,
                )
                result.questions = _not_graded(assignment, result.execution.message)
                result.hidden_questions_not_run = _hidden_not_run(assignment)
                return result
            record = loop.run_until_complete(session.run_notebook(options.on_cell, after_cell_code(assignment, source)))
            record.neutralized = neutralized
            record.isolation = confinement.isolation
            record.observed_device = observed
            record.seed = seed
            if observed.get("cuda"):
                record.gpu_memory_peak = _peak(loop.run_until_complete(_probe(session, PEAK_CODE)))
            result.execution = record
            deadline.cell_seconds = sum(cell.seconds for cell in record.cells)
            if executed_to is not None:
                write_atomic(executed_to, nbformat.writes(shrink_outputs(session.notebook)))
            clock.lap("cells")
            lost = _cuda_lost(record, options) if options.device == "cuda" else ""
            if lost:
                record.status, record.message = "environment_error", lost
                result.questions = _not_graded(assignment, lost)
                result.hidden_questions_not_run = _hidden_not_run(assignment)
                return result
            verdicts: dict[str, QuestionResult] = {}  # a check sees only those its question `requires`
            checked = [q for q in assignment.questions if assignment.runnable(q) and q.kind == "auto"]
            for question in assignment.questions:
                if not assignment.runnable(question):
                    result.hidden_questions_not_run += 1
                    continue
                context = context_for(
                    question.id, question.options, options.budget.name, assignment.budgets, str(options.budget.data_dir), verdicts
                )
                if question.kind == "auto":
                    deadline.begin_question(len(checked) - checked.index(question) - 1)
                if question.kind == "auto" and deadline.left() <= 0:
                    verdict = question_result(question, *out_of_time(submission, before_start=True))
                else:
                    verdict = judge_question(submission, notebook, question, assignment, context)  # costs this question only
                if question.hidden:
                    verdict.details.pop("grader_traceback", None)  # never show a hidden check's source
                verdicts[question.id] = verdict
                result.questions.append(verdict)
            note_rebinding(submission, result, assignment)
            clock.lap("checks")
        finally:
            _cancel_pending(loop)  # e.g. a cell still running when Ctrl-C arrived
            loop.run_until_complete(session.close())
            loop.run_until_complete(room.session.close())
    finally:
        loop.close()
        confinement.close()  # whatever the notebook started is killed here
        if room_confinement is not None:
            room_confinement.close()
        remove_tree(workdir)  # iterative and bounded, never follows a link, never raises: the kernel wrote in it
        clock.lap("close")
    return result


def _clean_room(notebook: Any, options: GradeOptions, confinement: Confinement, seed: int) -> CleanRoom:
    """The submission's second kernel (``grader/source/clean_room.py``): handed the statements the source defines, it runs
    no cell; the checks' calls are answered there, each in a fork of it. Not started yet."""
    plan = plan_room(notebook)
    nonce = new_nonce()
    room_options = ExecutionOptions(
        workdir=confinement.workdir / "work",
        env={**_kernel_env(options), "PYTHONHASHSEED": str(seed)},
        # No budget patch (no cell trains here) and no GPU share: CUDA must not start before a fork, each fork starts its own.
        preamble=install_code(nonce, confinement.kernel_blob_dir)
        + confinement.kernel_preamble()
        + _thread_preamble(options)
        + kernel_seed_code(seed)
        + plan.preamble()
        + ("" if confinement.plain is None or confinement.plain.fork else "__import__('_hwgrader').ROOM['fork'] = False\n"),
        confinement=confinement,
    )
    return CleanRoom(KernelSession(nbformat.v4.new_notebook(), room_options), plan, nonce, blobs=confinement.open_blob_folder)


async def _start(*sessions: KernelSession) -> None:
    """Start the kernels side by side; the first failure is raised once all have settled (each is closed by the caller)."""
    outcomes = await asyncio.gather(*(session.__aenter__() for session in sessions), return_exceptions=True)
    failed = next((o for o in outcomes if isinstance(o, BaseException)), None)
    if failed is not None:
        raise failed


async def _probe(session: KernelSession, code: str) -> dict[str, Any]:
    """Ask the kernel about its device (before the first cell) or its GPU memory peak (after the last)."""
    reply = await session.run_code(code, timeout=120)
    observed = parse_probe(reply.stdout)
    if not observed and reply.status != "ok":
        observed = {"cuda": False, "error": f"the probe failed: {reply.error or reply.status}"}
    return observed


def _peak(observed: dict[str, Any]) -> int:
    """The GPU memory peak the kernel reported after the notebook's cells ran: a count of bytes, or 0 for anything else."""
    peak = observed.get("gpu_memory_peak")
    return peak if isinstance(peak, int) and not isinstance(peak, bool) and 0 <= peak < 1 << 50 else 0


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
    return [question_result(q, QuestionStatus.ENVIRONMENT, f"not graded: {why}") for q in assignment.questions if assignment.runnable(q)]


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


def _grader_folders() -> list[Path]:
    """The grader's code, checks, reference and stored values: hidden from the kernel should they sit under a folder it sees."""
    import reference
    from grader.checking.reference_cache import cache_dir
    from grader.course.assignment import ASSIGNMENTS_DIR
    from grader.course.installed import installed_assignments

    kits = list(installed_assignments().values())  # a student kit's checks, installed beside the grader
    return [Path(__file__).resolve().parents[1], Path(reference.__file__).resolve().parent, ASSIGNMENTS_DIR, cache_dir(), *kits]
