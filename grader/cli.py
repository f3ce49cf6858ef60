"""Command line of the grader: ``grade SUBCOMMAND ...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from grader import __version__, batch
from grader.d2l_budget import DEFAULT_DATA_CACHE, Budget, resolve_budget, resolve_device
from grader.gradebook import gradebook_csv
from grader.html_report import ensure_reports, notebook_path, write_report
from grader.progress import BatchProgress, cell_progress, wanted
from grader.console import print_summary, summary_line
from grader.results import GradeResult, cached_result, write_atomic, write_result
from grader.sandbox import GiB, Limits
from grader.text_safety import json_for_terminal, terminal_text


def _claims(args: argparse.Namespace) -> int:
    """Check every exercise claim; one line each; non-zero exit if one fails."""
    from reference import claims

    selected = [c for c in claims.CLAIMS if not args.only or c.__name__ in args.only]
    unknown = set(args.only or ()) - {c.__name__ for c in claims.CLAIMS}
    if unknown:
        print(f"grade claims: unknown claim(s): {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    results = []
    for claim in selected:
        start = time.perf_counter()
        result = claim()
        results.append(result)
        if not args.json:
            print(f"{result.line()}  ({time.perf_counter() - start:.1f}s)", flush=True)
    failed = [r for r in results if not r.holds]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2, default=str))
    else:
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _gradescope(args: argparse.Namespace) -> int:
    """``grade gradescope ASSIGNMENT -o autograder.zip``: Gradescope's autograder bundle (grader/gradescope.py)."""
    from grader.gradescope import DEFAULT_TIMEOUT, BundleError, build_bundle

    timeout = DEFAULT_TIMEOUT if args.timeout is None else (args.timeout or None)
    try:
        bundle = build_bundle(args.assignment, Path(args.output), Path(args.data_dir) if args.data_dir else None,
                              cuda=args.cuda, budget=args.budget, timeout=timeout)  # fmt: skip
    except (BundleError, OSError) as exc:
        print(f"grade gradescope: {exc}", file=sys.stderr)
        return 2
    data = "Fashion-MNIST inside" if bundle.data else "setup.sh downloads Fashion-MNIST"
    print(f"wrote {bundle.path} ({bundle.assignment}, {len(bundle.files)} files, {data}): upload it on the assignment's Configure Autograder page")
    return 0


def _collect(paths: Sequence[str], out: Path | None = None) -> list[Path]:
    """Notebooks named on the command line; folders are searched, checkpoints and our own output skipped."""
    found: list[Path] = []
    skip = out.resolve() if out is not None else None
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts
                                and not (skip and p.resolve().is_relative_to(skip))))  # fmt: skip
        else:
            found.append(path)
    return found


#: A notebook larger than this is not parsed for its assignment's name (it is refused as too large when graded).
METADATA_READ_LIMIT = 64_000_000


def _assignment_name(path: Path, default: str) -> str:
    """The assignment named in the notebook's metadata (``metadata.grader.assignment``), else ``default``."""
    try:
        if path.stat().st_size > METADATA_READ_LIMIT:  # too large to be graded anyway (grader/load.py): not parsed here either
            return default
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        name = meta.get("grader", {}).get("assignment") or meta.get("assignment")
        return name if isinstance(name, str) and name else default
    except (OSError, ValueError, AttributeError):
        return default


class _UsageError(Exception):
    """A mistake on the command line or in a file it names: exit status 2, nothing graded."""


@dataclass
class _Run:
    """What one ``grade`` invocation settled before grading anything: where, how, how many at once."""

    args: argparse.Namespace
    out: Path
    device: str
    budget: str
    data_dir: Path
    parallel: int = 1
    threads: int = 1
    memory_bytes: int = 0
    #: Kernels sharing one GPU (``--jobs-per-gpu``, after admission by GPU memory); 1 off CUDA.
    jobs_per_gpu: int = 1
    #: DataLoader workers per data module under ``full`` (None: the notebook's own); see ``Budget``.
    loader_workers: int | None = None

    def budget_for(self, job: batch.Job) -> Budget:
        return Budget.of(self.budget, self.data_dir, job.assignment.budgets, self.loader_workers)

    def child_args(self, job: batch.Job, alone: bool = False) -> list[str]:
        """The options a batch's grading process (local or on a Dask worker) is started with.

        ``alone``: the retry of a notebook whose CUDA failed under packing -- the whole GPU, the
        machine's cores and a one-job memory share, nothing else running beside it.
        """
        args = self.args
        extra = [f"--cell-timeout={args.cell_timeout}"] if args.cell_timeout else []
        extra += [f"--timeout={args.timeout}"] if args.timeout else []
        extra += ["--no-sandbox"] if args.no_sandbox else []
        extra += [f"--max-notebook-mb={args.max_notebook_mb:g}"] if args.max_notebook_mb else []
        threads = batch.threads_per_job(1) if alone else self.threads
        memory = max(self.memory_bytes, Limits.default(1).memory_bytes or 0) if alone else self.memory_bytes
        if self.device == "cuda":
            extra += ["--jobs-per-gpu", "1" if alone else str(self.jobs_per_gpu)]
        return ["--budget", self.budget, "--device", self.device, "--data-dir", str(self.data_dir), "--threads", str(threads),
                "--memory-limit", str(memory / GiB), "--assignment", job.assignment.name, *extra]  # fmt: skip


def _grade(args: argparse.Namespace) -> int:
    """``grade PATH...``: plan, reuse what is up to date, grade the rest, write the class-wide files."""
    out = Path(args.out)
    paths = _collect(args.paths, out)
    if not paths:
        print("grade: no notebooks found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    if args.gradescope and len(paths) != 1:  # one results.json is one submission
        print(f"grade: --gradescope writes the results of one notebook; {len(paths)} were given", file=sys.stderr)
        return 2
    try:
        grades = _read_manual(args)  # before grading: a bad file should not wait for the batch to say so
        run, jobs = _plan(args, out, paths)
        results, todo = _reuse(run, jobs)
        if args.scheduler or len(todo) > 1:  # a batch: every notebook in its own grading process, none can take others down
            try:
                results.update(_grade_batch(run, todo))
            except (_UsageError, KeyboardInterrupt):
                raise
            except Exception as exc:  # noqa: BLE001 -- the class-wide files are still written, from what was graded
                print(f"grade: the batch stopped early: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
                _fill_missing(run, jobs, results, _grader_failure(exc))
        elif todo:  # grading here imports torch: a cached rerun must not
            results.update(_grade_here(run, todo))
        if grades is not None:
            _apply_manual(args, grades, jobs, results)
    except _UsageError as exc:
        print(terminal_text(f"grade: {exc}", newlines=True), file=sys.stderr)  # may quote a notebook's metadata or a grades file
        return 2
    _fill_missing(run, jobs, results, "the grading process left no result")  # never a KeyError: every job has a result
    ordered = [results[job.stem] for job in jobs]
    _write_outputs(run, jobs, results)
    if args.json:
        data = [r.to_dict() for r in ordered]
        print(json_for_terminal(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False)))
    blocked = [r for r in ordered if r.environment_problem]
    if blocked:  # not the students' doing, and not graded: never an exit status that reads as "all done"
        if not args.json:
            print(terminal_text(f"grade: {len(blocked)} notebook(s) not graded because of the grader's environment "
                                f"(execution environment_error): {blocked[0].execution.message}"), file=sys.stderr)  # fmt: skip
        return 3
    if args.fail_under is not None and any(r.max_score and 100 * r.score / r.max_score < args.fail_under for r in ordered):
        return 1
    return 0


def _read_manual(args: argparse.Namespace):
    if not args.manual:
        return None
    from grader.manual import ManualGradesError, read_grades

    try:
        return read_grades(Path(args.manual))
    except ManualGradesError as exc:
        raise _UsageError(exc) from None


def _plan(args: argparse.Namespace, out: Path, paths: list[Path]) -> tuple[_Run, list[batch.Job]]:
    """One job per notebook, and the device, budget, parallelism and limits they are graded with."""
    device = resolve_device(args.device)
    # A cluster's coordinator may have no GPU (its workers' kernels report theirs); a batch's child was checked by its coordinator.
    if args.device == "cuda" and not args.scheduler and not args.stem:
        _require_cuda()
    run = _Run(args, out, device, resolve_budget(args.budget, device),
               Path(args.data_dir or os.environ.get("GRADER_DATA_DIR") or DEFAULT_DATA_CACHE).resolve())  # fmt: skip
    try:
        jobs = batch.plan(paths, out, lambda p: args.assignment or _assignment_name(p, "hw2"), run.budget, device,
                          max_notebook_mb=args.max_notebook_mb)  # fmt: skip
    except ValueError as exc:
        raise _UsageError(exc) from None
    if args.stem:  # a child of a parallel batch: the coordinator chose the result's name
        jobs[0].stem, jobs[0].target = args.stem, out / f"{args.stem}.json"
    elif not args.json:  # said once here: a batch's children write their stderr to their logs
        from grader.data_view import warn_once

        warn_once(run.data_dir)
    run.parallel = args.jobs or batch.default_jobs()
    if device == "cuda" and args.jobs_per_gpu:
        run.jobs_per_gpu = _admitted_per_gpu(args.jobs_per_gpu, jobs, quiet=args.json or bool(args.stem))
        if not args.jobs:
            run.parallel = max(1, len(batch.visible_gpus())) * run.jobs_per_gpu
    run.threads = args.threads or batch.threads_per_job(min(run.parallel, len(jobs)))
    if args.threads or min(run.parallel, len(jobs)) > 1:  # kernels share the cores: loader workers too
        run.loader_workers = max(0, run.threads - 1)
    run.memory_bytes = int(args.memory_limit * GiB) if args.memory_limit else Limits.default(min(run.parallel, len(jobs))).memory_bytes
    return run, jobs


#: What each kernel's CUDA context takes beside torch's allocator (not in a measured peak).
CUDA_CONTEXT_GIB = 0.5


def _require_cuda() -> None:
    """``--device cuda`` where torch sees no usable GPU is a usage error, before any kernel starts."""
    import torch

    if not torch.cuda.is_available():
        build = f"built for CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise _UsageError(f"--device cuda, but torch {torch.__version__} ({build}) sees no usable CUDA device here; "
                          "grade with --device cpu (the quick budget) or on a machine with a GPU")  # fmt: skip


def _admitted_per_gpu(requested: int, jobs: list[batch.Job], quiet: bool) -> int:
    """``--jobs-per-gpu N``, lowered where N kernels at the assignment's measured GPU peak would not fit the GPU.

    The peak is ``gpu_memory_peak_gib`` under ``[budgets.full]`` (``grade calibrate`` records it from the
    solution's full runs); without one N is taken as asked, each kernel still held to 1/N of the memory.
    """
    peaks = [float(j.assignment.budgets.get("full", {}).get("gpu_memory_peak_gib", 0) or 0) for j in jobs]
    peak = max(peaks, default=0.0)
    if requested <= 1 or peak <= 0:
        return max(1, requested)
    import torch

    total = min(torch.cuda.get_device_properties(i).total_memory for i in range(torch.cuda.device_count())) / GiB
    need = peak + CUDA_CONTEXT_GIB
    fits = max(1, int(0.95 * total // need))
    if fits < requested and not quiet:
        print(f"grade: --jobs-per-gpu {requested} would oversubscribe the GPU ({requested} x ({peak:.1f} GiB measured peak "
              f"+ {CUDA_CONTEXT_GIB} GiB CUDA context) > 95% of {total:.0f} GiB); packing {fits} per GPU", file=sys.stderr)  # fmt: skip
    return min(requested, fits)


def _reuse(run: _Run, jobs: list[batch.Job]) -> tuple[dict[str, GradeResult], list[batch.Job]]:
    """Results still up to date (same notebook bytes, checks, budget, grader), and the jobs left to grade."""
    results: dict[str, GradeResult] = {}
    todo = []
    for job in jobs:
        cached = None if run.args.force else cached_result(job.target, job.key)
        if cached is None:
            todo.append(job)
            continue
        results[job.stem] = cached
        if not run.args.json:
            print(terminal_text(f"{job.path}: unchanged since it was graded; reusing {job.target} (--force regrades)"))
    return results, todo


def _grade_batch(run: _Run, todo: list[batch.Job]) -> dict[str, GradeResult]:
    """Each notebook in a grading process of its own: local child processes, or tasks on a Dask cluster."""
    args = run.args

    def crashed(job: batch.Job, message: str) -> GradeResult:
        return batch.crashed_result(job, run.budget, run.device, message)

    with BatchProgress(len(todo), wanted(args.json)) as progress:

        def on_done(job: batch.Job, result: GradeResult) -> None:
            progress.done(result)
            if not args.json:
                progress.line(summary_line(result, job.target))

        if args.scheduler:
            from grader.cluster import run_on_cluster

            return run_on_cluster(todo, args.scheduler, run.child_args, crashed, on_done)
        slots = batch.gpu_slots(batch.visible_gpus(), args.jobs_per_gpu) if run.device == "cuda" and args.jobs_per_gpu else None

        def local_args(job: batch.Job, alone: bool = False) -> list[str]:
            return [str(job.path), "--out", str(run.out), "--stem", job.stem, "--json", "--force", "--jobs", "1",
                    *run.child_args(job, alone)]  # fmt: skip

        return batch.run_in_subprocesses(todo, run.parallel, local_args, run.budget, run.device, on_done, slots)


def _grade_here(run: _Run, todo: list[batch.Job]) -> dict[str, GradeResult]:
    """One notebook (a student's self-check, or a batch's child) graded in this process, its kernel sandboxed."""
    from grader.grade import GradeOptions, grade_notebook  # imports torch: only when something is graded

    results = {}
    for job in todo:
        progress = cell_progress(job.path, wanted(run.args.json))
        options = GradeOptions(run.budget_for(job), run.device, run.args.cell_timeout, run.args.timeout, on_cell=progress,
                               threads=run.threads, limits=Limits(memory_bytes=run.memory_bytes), sandbox=not run.args.no_sandbox,
                               jobs_per_gpu=run.jobs_per_gpu)  # fmt: skip
        options.max_notebook_mb = run.args.max_notebook_mb
        shown = run.args.shown_as or str(job.path)
        try:
            result = grade_notebook(job.path, job.assignment, options, shown_path=shown, executed_to=notebook_path(job.target))
            result.cache_key = job.key
        except Exception as exc:  # noqa: BLE001 -- whatever the kernel did, a result and a report say what happened
            result = batch.crashed_result(job, run.budget, run.device, _grader_failure(exc))
        if progress:
            print(file=sys.stderr)
        write_result(result, job.target)
        try:
            write_report(result, job.target)
        except Exception as exc:  # noqa: BLE001 -- the result is written; the report's failure is said
            print(f"grade: could not write the report for {job.target.name}: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        results[job.stem] = result
        if not run.args.json:
            print_summary(result, job.target)
    return results


def _grader_failure(exc: BaseException) -> str:
    """The message of a ``crashed`` result whose grading process raised (never the student's verdict)."""
    text = " ".join(str(exc).split())[:300]
    return (f"the grader failed while grading this notebook ({type(exc).__name__}{': ' + text if text else ''}); "
            "nothing was charged: it has to be graded again -- tell your TA")  # fmt: skip


def _fill_missing(run: _Run, jobs: list[batch.Job], results: dict[str, GradeResult], why: str) -> None:
    """A result for every job: the one on disk if a grading process wrote it, else a ``crashed`` one saying ``why``."""
    for job in jobs:
        if job.stem not in results:
            found = cached_result(job.target, job.key)
            results[job.stem] = found or batch.crashed_result(job, run.budget, run.device, why)
            if found is None:
                try:
                    write_result(results[job.stem], job.target)
                except OSError as exc:
                    print(f"grade: could not write {job.target}: {exc}", file=sys.stderr)


def _apply_manual(args: argparse.Namespace, grades, jobs: list[batch.Job], results: dict[str, GradeResult]) -> None:
    from grader.manual import ManualGradesError, apply_grades

    try:
        changed = apply_grades(grades, results, Path(args.manual))
    except ManualGradesError as exc:
        raise _UsageError(exc) from None
    for job in jobs:
        if job.stem in changed:
            write_result(results[job.stem], job.target)


def _write_outputs(run: _Run, jobs: list[batch.Job], results: dict[str, GradeResult]) -> None:
    """Reports that are out of date, then the class-wide files: gradebook, summary, JUnit."""
    args, out = run.args, run.out
    ordered = [results[job.stem] for job in jobs]
    ensure_reports((results[job.stem], job.target) for job in jobs)
    if not args.stem:  # a batch's child leaves the class-wide files to its coordinator
        write_atomic(out / "gradebook.csv", gradebook_csv(ordered))
    similar = _similarity(jobs, out) if not args.stem and len(jobs) > 1 else None
    if not args.stem and (len(jobs) > 1 or args.summary):
        from grader.class_summary import write_summary

        try:
            write_summary([(results[job.stem], job.target) for job in jobs], out / "index.html", similarity=similar)
        except Exception as exc:  # noqa: BLE001 -- the gradebook is written; JUnit and the rest still are
            print(f"grade: could not write the class summary: {type(exc).__name__}: {exc}"[:500], file=sys.stderr)
        if not args.json:
            flagged = f"; similarity: {out / 'similarity.csv'} ({sum(p.flagged for p in similar)} flagged)" if similar is not None else ""
            print(f"class summary: {out / 'index.html'}; gradebook: {out / 'gradebook.csv'}{flagged}")
    if args.junit:
        from grader.junit import write_junit

        write_junit(ordered, Path(args.junit))
    if args.gradescope:  # one notebook (checked before grading): Gradescope's results.json
        from grader.gradescope import write_results_json
        from grader.html_report import notebook_path

        job = jobs[0]
        write_results_json(results[job.stem], Path(args.gradescope), [q.id for q in job.assignment.questions if q.hidden],
                           notebook_path(job.target), note=args.gradescope_note or "")  # fmt: skip


def _similarity(jobs: list[batch.Job], out: Path) -> list | None:
    """``similarity.csv`` and the ranked pairs for the summary; a failure here never fails the batch."""
    try:
        from grader.similarity import class_similarity

        return class_similarity(jobs, out / "similarity.csv")
    except Exception as exc:  # noqa: BLE001 -- a side product: warn in one line and go on
        reason = (str(exc).strip().splitlines() or [""])[0]
        print(terminal_text(f"grade: warning: similarity across the class not computed ({type(exc).__name__}: {reason})"), file=sys.stderr)
        return None


def template_path_for(solution: Path) -> Path:
    """``assignments/hw2/solution.ipynb`` -> ``assignments/hw2.ipynb`` (the student template)."""
    return solution.parent.parent / f"{solution.parent.name}.ipynb"


def _assign(args: argparse.Namespace) -> int:
    """Generate the student template from a solution notebook."""
    from grader.template import SolutionMarkupError, write_template

    solution = Path(args.solution)
    template = Path(args.out) if args.out else template_path_for(solution)
    try:
        write_template(solution, template)
    except (OSError, SolutionMarkupError) as exc:
        print(f"grade assign: {solution}: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {template}")
    return 0


def _check_assignment(args: argparse.Namespace) -> int:
    """The course's CI: template current, solution full marks, template zero, claims hold."""
    from grader.template import template_differences
    from grader.assignment import load_assignment
    from grader.grade import GradeOptions, grade_notebook

    try:
        assignment = load_assignment(args.name)
    except ValueError as exc:
        print(f"grade check-assignment: {exc}", file=sys.stderr)
        return 2
    solution = assignment.folder / "solution.ipynb"
    template = template_path_for(solution)
    facts: list[tuple[bool, str]] = []

    def fact(ok: bool, text: str) -> None:
        facts.append((ok, text))
        print(f"{'ok  ' if ok else 'FAIL'}  {text}", flush=True)

    problems = template_differences(solution, template)
    fact(not problems, f"{template} is generated from {solution}" + ("" if not problems else ": " + "; ".join(problems)))
    data_dir = Path(args.data_dir or os.environ.get("GRADER_DATA_DIR") or DEFAULT_DATA_CACHE).resolve()
    budget = Budget.of("quick", data_dir, assignment.budgets)
    options = GradeOptions(budget, resolve_device(args.device))
    graded = grade_notebook(solution, assignment, options)
    wrong = [f"{q.id} ({q.status}: {q.message})" for q in graded.questions if q.status not in ("pass", "manual")]
    fact(not wrong and graded.score == graded.max_score,
         f"the solution earns {graded.score:g}/{graded.max_score:g}" + ("" if not wrong else "; not passing: " + ", ".join(wrong)))  # fmt: skip
    graded = grade_notebook(template, assignment, options)
    passing = [q.id for q in graded.questions if q.status in ("pass", "fail")]
    fact(graded.score == 0 and not passing,
         f"the template earns {graded.score:g}, every question missing or error"
         + ("" if not passing else "; graded as pass/fail: " + ", ".join(passing)))  # fmt: skip
    if assignment.run_claims:
        from reference import claims

        for result in claims.check_all():
            fact(result.holds, f"claim {result.name}: {result.statement} [{result.method}]")
    failed = sum(1 for ok, _ in facts if not ok)
    print(f"{len(facts) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _calibrate(args: argparse.Namespace) -> int:
    """Propose full thresholds from full runs of the solution (``--write``: into the config); 1 if a run measured nothing."""
    from grader.assignment import load_assignment
    from grader.calibrate import device_of, gpu_memory_peak_gib, propose, render, write

    try:
        assignment = load_assignment(args.name)
        results = [GradeResult.from_dict(json.loads(Path(path).read_text(encoding="utf-8"))) for path in args.results]
        proposals = propose(results, assignment, args.margin)
    except (OSError, ValueError, KeyError, TypeError) as exc:  # json's errors are ValueErrors
        print(f"grade calibrate: {exc}", file=sys.stderr)
        return 2
    for result in results:
        print(f"from {result.submission} (budget {result.budget}, device {device_of(result)}, graded {result.graded_at})")
    print(render(proposals))
    peak = gpu_memory_peak_gib(results)
    if peak is not None:
        print(f"GPU memory: the runs peaked at {peak:g} GiB (--jobs-per-gpu packs at most 95% of a GPU / (peak + 0.5 GiB))")
        print(f"    [budgets.full] gpu_memory_peak_gib = {peak:g}")
    if args.write:
        try:
            print(f"wrote {write(assignment, proposals, peak)}")
        except (OSError, ValueError) as exc:
            print(f"grade calibrate: nothing written: {exc}", file=sys.stderr)
            return 2
    return 1 if any(p.unmeasured for p in proposals) else 0


def _export(args: argparse.Namespace) -> int:
    """Gradebook CSV for Canvas or Moodle from a results folder and the LMS's roster; 2 and nothing written on a problem."""
    from grader.lms_export import ExportError, ExportOptions, export

    options = ExportOptions(args.format, args.column, args.match_column, args.assignment, args.missing,
                            args.allow_pending, args.points_possible, args.feedback)  # fmt: skip
    try:
        made = export(Path(args.results), Path(args.roster), Path(args.output), options)
    except ExportError as exc:
        print(terminal_text(f"grade export: nothing written:\n{exc}", newlines=True), file=sys.stderr)
        return 2
    for warning in made.warnings:
        print(terminal_text(f"grade export: warning: {warning}"), file=sys.stderr)
    print(terminal_text(made.summary))
    return 3 if made.not_graded else 0  # like `grade`: written, but some notebooks still need grading


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grade", description="Grade d2l CNN homework notebooks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    grade = sub.add_parser("run", help="grade notebooks (the default: `grade PATH...`)")
    grade.add_argument("paths", nargs="+", metavar="PATH", help="notebooks or folders of notebooks")
    grade.add_argument("--out", default="reports", help="folder for results (default: reports/)")
    grade.add_argument("--assignment", help="assignment name (default: the notebook's metadata, else hw2)")
    grade.add_argument("--budget", choices=["quick", "full", "auto"], default="auto")
    grade.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    grade.add_argument("--data-dir", help="Fashion-MNIST in torchvision's layout (or $GRADER_DATA_DIR)")
    grade.add_argument("--timeout", type=float, help="whole-notebook time limit in seconds")
    grade.add_argument("--cell-timeout", type=float, help="per-cell time limit in seconds")
    grade.add_argument("--json", action="store_true", help="print the result object(s) on stdout, nothing else")
    grade.add_argument("--fail-under", type=float, metavar="PERCENT", help="exit 1 if a score is below PERCENT")
    grade.add_argument("--force", action="store_true", help="regrade even where an up-to-date result exists")
    grade.add_argument("--jobs", type=int, help="notebooks graded in parallel (default: what the machine can hold)")
    grade.add_argument("--threads", type=int, help="CPU threads per kernel (default: cores / jobs)")
    grade.add_argument("--jobs-per-gpu", type=int, metavar="K",
                       help="with CUDA: K kernels on each visible GPU, each held to 1/K of its memory (sets --jobs; lowered "
                            "where K x the assignment's measured GPU peak does not fit)")  # fmt: skip
    grade.add_argument("--scheduler", metavar="ADDRESS", help="grade on a Dask cluster: tcp://host:8786, or local:N for a LocalCluster")
    grade.add_argument("--memory-limit", type=float, metavar="GIB", help="memory per kernel (default: a share of the machine, at least 6)")
    grade.add_argument("--no-sandbox", action="store_true", help="run kernels without bubblewrap (limits still apply)")
    grade.add_argument("--max-notebook-mb", type=float, metavar="MB",
                       help="refuse a notebook file larger than this, unparsed (default: the assignment's [limits], else 5)")  # fmt: skip
    grade.add_argument("--stem", help=argparse.SUPPRESS)  # set by a parallel batch for its children
    grade.add_argument("--shown-as", help=argparse.SUPPRESS)  # a Dask worker's copy: the path the coordinator knows it by
    grade.add_argument("--junit", metavar="FILE", help="also write JUnit XML (a testsuite per notebook, a testcase per question)")
    grade.add_argument("--manual", metavar="CSV", help="merge a TA's points for manual questions (submission,question,points,comment)")
    grade.add_argument("--summary", action="store_true", help="write the class summary index.html even for one notebook")
    grade.add_argument("--gradescope", metavar="FILE", help="also write Gradescope's results.json for the (one) notebook")
    grade.add_argument("--gradescope-note", help=argparse.SUPPRESS)  # run_autograder: a line first in results.json's output
    grade.set_defaults(run=_grade)
    assign = sub.add_parser("assign", help="generate the student template from a solution notebook")
    assign.add_argument("solution", help="assignments/NAME/solution.ipynb")
    assign.add_argument("--out", help="template path (default: assignments/NAME.ipynb)")
    assign.set_defaults(run=_assign)
    check = sub.add_parser("check-assignment", help="prove an assignment sound (for the course's CI)")
    check.add_argument("name", help="assignment name (a folder under assignments/)")
    check.add_argument("--data-dir", help="Fashion-MNIST in torchvision's layout (or $GRADER_DATA_DIR)")
    check.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    check.set_defaults(run=_check_assignment)
    calibrate = sub.add_parser("calibrate", help="propose full-budget thresholds from full runs of the solution")
    calibrate.add_argument("name", help="assignment name (a folder under assignments/)")
    calibrate.add_argument("results", nargs="+", metavar="RESULT",
                           help="JSON results of `grade assignments/NAME/solution.ipynb --budget full` (runs, seeds, machines)")  # fmt: skip
    calibrate.add_argument("--margin", type=float, default=0.1,
                           help="the least distance below the worst run of the solution (default 0.1)")  # fmt: skip
    calibrate.add_argument("--write", action="store_true",
                           help="merge the runs into assignments/NAME/config.toml (full_threshold, full_calibration)")  # fmt: skip
    calibrate.set_defaults(run=_calibrate)
    claims = sub.add_parser("claims", help="check the exercise claims of reference/claims.py")
    claims.add_argument("only", nargs="*", help="claim names to check (default: all)")
    claims.add_argument("--json", action="store_true", help="print the results as JSON")
    claims.set_defaults(run=_claims)
    gradescope = sub.add_parser("gradescope", help="build a Gradescope autograder bundle (setup.sh, run_autograder, grader, assignment)")
    gradescope.add_argument("assignment", metavar="ASSIGNMENT", help="assignment name (a folder under assignments/) or folder")
    gradescope.add_argument("-o", "--output", default="autograder.zip", metavar="ZIP", help="the zip to write (default: autograder.zip)")
    gradescope.add_argument("--data-dir", help="ship this Fashion-MNIST (torchvision's layout) in the bundle "
                            "(default: setup.sh downloads it when Gradescope builds the image)")  # fmt: skip
    gradescope.add_argument("--cuda", action="store_true", help="install PyPI's CUDA torch and grade with --device auto (default: CPU wheels, --device cpu)")
    gradescope.add_argument("--budget", choices=["quick", "full", "auto"], help="the budget submissions are graded with (default: quick; auto with --cuda)")
    gradescope.add_argument("--timeout", type=float, help="whole-notebook limit in seconds, 0 for none (default: 420, for Gradescope's default 10 minutes)")
    gradescope.set_defaults(run=_gradescope)
    export = sub.add_parser("export", help="gradebook CSV for Canvas or Moodle from a results folder and the LMS's roster")
    export.add_argument("results", metavar="RESULTS_DIR", help="the --out folder of `grade` (its <stem>.json results)")
    export.add_argument("--format", choices=["canvas", "moodle"], required=True)
    export.add_argument("--roster", required=True, metavar="CSV",
                        help="the LMS's own export: Canvas's gradebook CSV, or Moodle's gradebook export or grading worksheet")  # fmt: skip
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="the CSV to write (atomically)")
    export.add_argument("--column", help='the grade column\'s header, e.g. "HW2 (12345)" for a Canvas assignment '
                        "(default: the roster's column of the assignment, else its name; Moodle worksheet: Grade)")  # fmt: skip
    export.add_argument("--match-column", metavar="COLUMN",
                        help="a roster column naming each student's notebook (stem, file name or path), instead of "
                             "the LMS's download file names")  # fmt: skip
    export.add_argument("--assignment", help="export the results of this assignment only")
    export.add_argument("--missing", choices=["blank", "zero", "omit"], default="blank",
                        help="a student without a submission: empty cell (default), 0, or no row")  # fmt: skip
    export.add_argument("--allow-pending", action="store_true",
                        help="export the points so far where manual questions are not graded yet (default: an error)")  # fmt: skip
    export.add_argument("--points-possible", type=float, metavar="N", help="scale each score to N points (the LMS's points)")
    export.add_argument("--feedback", action="store_true", help="Moodle: add a feedback column (score, questions not passed)")
    export.set_defaults(run=_export)
    return parser


SUBCOMMANDS = {"run", "claims", "assign", "check-assignment", "calibrate", "export", "gradescope"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "run")  # `grade PATH...` is `grade run PATH...`
    args = build_parser().parse_args(argv)
    from grader.seeds import batch_seed

    batch_seed()  # drawn here, once per run, so that every grading process of a batch shares it
    try:
        return args.run(args)
    except KeyboardInterrupt:
        print("\ngrade: interrupted; every finished result is saved, and a rerun grades only the rest",
              file=sys.stderr)  # fmt: skip
        return 130


if __name__ == "__main__":
    sys.exit(main())
