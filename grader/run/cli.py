"""Command line of the grader: ``grade SUBCOMMAND ...``.

Only arguments are parsed here: each subcommand calls a keyword-only function of ``grader/run/api.py``, and
the errors a user can fix (:class:`~grader.errors.ConfigError`) become exit status 2 in one place,
:func:`main`. Exit statuses: 0 done; 1 a check failed (``--fail-under``, a claim, ``check-assignment``);
2 a usage or configuration error, nothing done; 3 written, but some notebooks are not graded because of
the grader's environment (or, for ``export``, not graded yet); 130 interrupted (Ctrl-C); 143 terminated
(``kill``, or the time limit of a SLURM job the coordinator runs in).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

from grader import __version__
from grader.errors import ConfigError
from grader.reports.text_safety import json_for_terminal, terminal_text
from grader.run import api


def _grade(args: argparse.Namespace) -> int:
    """``grade PATH...``: every notebook graded (or reused), results and class-wide files written."""
    outcome = api.grade_paths(
        args.paths,
        out=Path(args.out),
        assignment=args.assignment,
        budget=args.budget,
        device=args.device,
        data_dir=args.data_dir,
        timeout=args.timeout,
        cell_timeout=args.cell_timeout,
        json_output=args.json,
        force=args.force,
        jobs=args.jobs,
        threads=args.threads,
        jobs_per_gpu=args.jobs_per_gpu,
        scheduler=args.scheduler,
        cluster_config=Path(args.cluster_config) if args.cluster_config else None,
        memory_limit_gib=args.memory_limit,
        sandbox=not args.no_sandbox,
        max_notebook_mb=args.max_notebook_mb,
        junit=Path(args.junit) if args.junit else None,
        manual=Path(args.manual) if args.manual else None,
        summary=args.summary,
        gradescope=Path(args.gradescope) if args.gradescope else None,
        gradescope_note=args.gradescope_note or "",
    )
    ordered = outcome.results
    if args.json:
        data = [r.to_dict() for r in ordered]
        print(json_for_terminal(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False)))
    blocked = [r for r in ordered if r.environment_problem]
    if blocked:  # not the students' doing, and not graded: never an exit status that reads as "all done"
        if not args.json:
            print(
                terminal_text(
                    f"grade: {len(blocked)} notebook(s) not graded because of the grader's environment "
                    f"(execution environment_error): {blocked[0].environment_reason}"
                ),
                file=sys.stderr,
            )
        return 3
    if args.fail_under is not None and any(r.max_score and 100 * r.score / r.max_score < args.fail_under for r in ordered):
        return 1
    return 0


def _claims(args: argparse.Namespace) -> int:
    """Check every exercise claim; one line each, as it is checked; non-zero exit if one fails."""
    shown = None if args.json else (lambda result, seconds: print(f"{result.line()}  ({seconds:.1f}s)", flush=True))
    results = api.check_claims(only=args.only, on_result=shown)
    failed = [r for r in results if not r.holds]
    if args.json:
        print(json.dumps([asdict(r) for r in results], indent=2, default=str))
    else:
        print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


def _assign(args: argparse.Namespace) -> int:
    """Generate the student template from a solution notebook."""
    print(f"wrote {api.make_template(solution=Path(args.solution), out=Path(args.out) if args.out else None)}")
    return 0


def _check_assignment(args: argparse.Namespace) -> int:
    """The course's CI: template current, solution full marks, template zero, claims hold."""
    facts = api.check_assignment(
        name=args.name,
        data_dir=args.data_dir,
        device=args.device,
        on_fact=lambda f: print(f"{'ok  ' if f.ok else 'FAIL'}  {f.text}", flush=True),
    )
    failed = sum(1 for f in facts if not f.ok)
    print(f"{len(facts) - failed} passed, {failed} failed")
    return 1 if failed else 0


def _calibrate(args: argparse.Namespace) -> int:
    """Propose full thresholds from full runs of the solution (``--write``: into the config); 1 if a run measured nothing."""
    from grader.course.calibrate import render
    from grader.course.measured_runs import device_of

    proposals, done = api.calibrate(name=args.name, results=args.results, margin=args.margin, write=args.write)
    for result in done.results:
        print(f"from {result.submission} (budget {result.budget}, device {device_of(result)}, graded {result.graded_at})")
    print(render(proposals))
    if done.gpu_memory_peak_gib is not None:
        peak = done.gpu_memory_peak_gib
        print(f"GPU memory: the runs peaked at {peak:g} GiB (--jobs-per-gpu packs at most 95% of a GPU / (peak + 0.5 GiB))")
        print(f"    [budgets.full] gpu_memory_peak_gib = {peak:g}")
    if done.write_error:
        print(f"grade calibrate: {done.write_error}", file=sys.stderr)
        return 2
    if done.written is not None:
        print(f"wrote {done.written}")
    return 1 if any(p.unmeasured for p in proposals) else 0


def _gradescope(args: argparse.Namespace) -> int:
    """``grade gradescope ASSIGNMENT -o autograder.zip``: Gradescope's autograder bundle (grader/integrations/gradescope.py)."""
    bundle = api.build_gradescope(
        assignment=args.assignment,
        output=Path(args.output),
        data_dir=args.data_dir,
        cuda=args.cuda,
        budget=args.budget,
        timeout=args.timeout,
    )
    data = "Fashion-MNIST inside" if bundle.data else "setup.sh downloads Fashion-MNIST"
    print(
        f"wrote {bundle.path} ({bundle.assignment}, {len(bundle.files)} files, {data}): "
        "upload it on the assignment's Configure Autograder page"
    )
    return 0


def _kit(args: argparse.Namespace) -> int:
    """``grade kit ASSIGNMENT -o PATH``: the student kit (grader/integrations/student_kit.py), and what it carries and leaves out."""
    kit = api.build_kit(assignment=args.assignment, output=Path(args.output))
    print(kit.manifest(), end="")
    print(
        f"\nwrote {kit.path} ({kit.size_bytes / 1e6:.2f} MB, {kit.seconds:.1f} s) and its manifest {kit.manifest_path.name}: "
        f"students run `pip install {kit.path.name}`, then `grade {kit.assignment}.ipynb` or the template's self-check cell"
    )
    return 0


def _export(args: argparse.Namespace) -> int:
    """Gradebook CSV for Canvas or Moodle from a results folder and the LMS's roster; 2 and nothing written on a problem."""
    made = api.export_gradebook(
        results=Path(args.results),
        roster=Path(args.roster),
        output=Path(args.output),
        format=args.format,
        column=args.column,
        match_column=args.match_column,
        assignment=args.assignment,
        missing=args.missing,
        allow_pending=args.allow_pending,
        points_possible=args.points_possible,
        feedback=args.feedback,
    )
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
    grade.add_argument(
        "--jobs-per-gpu",
        type=int,
        metavar="K",
        help="with CUDA: K kernels on each visible GPU, each held to 1/K of its memory (sets --jobs; lowered "
        "where K x the assignment's measured GPU peak does not fit)",
    )
    grade.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="grade on a Dask cluster: tcp://host:8786, local:N for a LocalCluster, or slurm (workers as SLURM jobs, see --cluster-config)",
    )
    grade.add_argument(
        "--cluster-config", metavar="TOML", help="with --scheduler slurm: the [slurm] table (partition, cores, memory, walltime, jobs, ...)"
    )
    grade.add_argument("--memory-limit", type=float, metavar="GIB", help="memory per kernel (default: a share of the machine, at least 6)")
    grade.add_argument("--no-sandbox", action="store_true", help="run kernels without bubblewrap (limits still apply)")
    grade.add_argument(
        "--max-notebook-mb",
        type=float,
        metavar="MB",
        help="refuse a notebook whose code and markdown (outputs not counted) exceed this (default: the assignment's [limits], else 5)",
    )
    grade.add_argument("--junit", metavar="FILE", help="also write JUnit XML (a testsuite per notebook, a testcase per question)")
    grade.add_argument("--manual", metavar="CSV", help="merge a TA's points for manual questions (submission,question,points,comment)")
    grade.add_argument("--summary", action="store_true", help="write the class summary index.html even for one notebook")
    grade.add_argument("--gradescope", metavar="FILE", help="also write Gradescope's results.json for the (one) notebook")
    grade.add_argument("--gradescope-note", metavar="TEXT", help="with --gradescope: a line shown first in results.json's output")
    grade.set_defaults(run=_grade)
    assign = sub.add_parser("assign", help="generate the student template from a solution notebook")
    assign.add_argument("solution", help="assignments/NAME/solution.ipynb")
    assign.add_argument("--out", help="template path (default: assignments/NAME.ipynb)")
    assign.set_defaults(run=_assign)
    check = sub.add_parser("check-assignment", help="prove an assignment sound (for the course's CI)")
    check.add_argument("name", help="assignment name (a folder under assignments/) or an assignment folder's path")
    check.add_argument("--data-dir", help="Fashion-MNIST in torchvision's layout (or $GRADER_DATA_DIR)")
    check.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    check.set_defaults(run=_check_assignment)
    calibrate = sub.add_parser("calibrate", help="propose full-budget thresholds from full runs of the solution")
    calibrate.add_argument("name", help="assignment name (a folder under assignments/)")
    calibrate.add_argument(
        "results",
        nargs="+",
        metavar="RESULT",
        help="JSON results of `grade assignments/NAME/solution.ipynb --budget full` (runs, seeds, machines)",
    )
    calibrate.add_argument("--margin", type=float, default=0.1, help="the least distance below the worst run of the solution (default 0.1)")
    calibrate.add_argument(
        "--write", action="store_true", help="merge the runs into assignments/NAME/config.toml (full_threshold, full_calibration)"
    )
    calibrate.set_defaults(run=_calibrate)
    claims = sub.add_parser("claims", help="check the exercise claims of reference/claims.py")
    claims.add_argument("only", nargs="*", help="claim names to check (default: all)")
    claims.add_argument("--json", action="store_true", help="print the results as JSON")
    claims.set_defaults(run=_claims)
    gradescope = sub.add_parser("gradescope", help="build a Gradescope autograder bundle (setup.sh, run_autograder, grader, assignment)")
    gradescope.add_argument("assignment", metavar="ASSIGNMENT", help="assignment name (a folder under assignments/) or folder")
    gradescope.add_argument("-o", "--output", default="autograder.zip", metavar="ZIP", help="the zip to write (default: autograder.zip)")
    gradescope.add_argument(
        "--data-dir",
        help="ship this Fashion-MNIST (torchvision's layout) in the bundle "
        "(default: setup.sh downloads it when Gradescope builds the image)",
    )
    gradescope.add_argument(
        "--cuda", action="store_true", help="install PyPI's CUDA torch and grade with --device auto (default: CPU wheels, --device cpu)"
    )
    gradescope.add_argument(
        "--budget", choices=["quick", "full", "auto"], help="the budget submissions are graded with (default: quick; auto with --cuda)"
    )
    gradescope.add_argument(
        "--timeout", type=float, help="whole-notebook limit in seconds, 0 for none (default: 420, for Gradescope's default 10 minutes)"
    )
    gradescope.set_defaults(run=_gradescope)
    kit = sub.add_parser("kit", help="build the student kit: one wheel, the grader and the visible checks (no hidden checks or solution)")
    kit.add_argument("assignment", metavar="ASSIGNMENT", help="assignment name (a folder under assignments/) or folder")
    kit.add_argument(
        "-o", "--output", default=".", metavar="PATH", help="folder for the wheel, or a path in it (the wheel takes the name pip requires)"
    )
    kit.set_defaults(run=_kit)
    export = sub.add_parser("export", help="gradebook CSV for Canvas or Moodle from a results folder and the LMS's roster")
    export.add_argument("results", metavar="RESULTS_DIR", help="the --out folder of `grade` (its <stem>.json results)")
    export.add_argument("--format", choices=["canvas", "moodle"], required=True)
    export.add_argument(
        "--roster",
        required=True,
        metavar="CSV",
        help="the LMS's own export: Canvas's gradebook CSV, or Moodle's gradebook export or grading worksheet",
    )
    export.add_argument("-o", "--output", required=True, metavar="FILE", help="the CSV to write (atomically)")
    export.add_argument(
        "--column",
        help='the grade column\'s header, e.g. "HW2 (12345)" for a Canvas assignment '
        "(default: the roster's column of the assignment, else its name; Moodle worksheet: Grade)",
    )
    export.add_argument(
        "--match-column",
        metavar="COLUMN",
        help="a roster column naming each student's notebook (stem, file name or path), instead of the LMS's download file names",
    )
    export.add_argument("--assignment", help="export the results of this assignment only")
    export.add_argument(
        "--missing",
        choices=["blank", "zero", "omit"],
        default="blank",
        help="a student without a submission: empty cell (default), 0, or no row",
    )
    export.add_argument(
        "--allow-pending",
        action="store_true",
        help="export the points so far where manual questions are not graded yet (default: an error)",
    )
    export.add_argument("--points-possible", type=float, metavar="N", help="scale each score to N points (the LMS's points)")
    export.add_argument("--feedback", action="store_true", help="Moodle: add a feedback column (score, questions not passed)")
    export.set_defaults(run=_export)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so that it ends as Ctrl-C does.

    Python's default for SIGTERM is to die on the spot: grading processes, a Dask cluster's workers or SLURM
    jobs would outlive the coordinator. As a KeyboardInterrupt every backend's ``finally`` runs: children
    stopped, workers closed, jobs cancelled; finished results are already on disk.
    """


def _terminated(signum: int, frame: object) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one (SLURM repeats it) must not cut the clean-up short
    raise Terminated(signum)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block (main thread only, and only where it would kill)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


SUBCOMMANDS = {"run", "claims", "assign", "check-assignment", "calibrate", "export", "gradescope", "kit"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "run")  # `grade PATH...` is `grade run PATH...`
    args = build_parser().parse_args(argv)
    from grader.course.seeds import batch_seed

    batch_seed()  # drawn here, once per run, so that every grading process of a batch shares it
    try:
        with sigterm_as_interrupt():
            return args.run(args)
    except ConfigError as exc:  # the one place a user's mistake becomes exit status 2
        prefix = "grade" if args.command == "run" else f"grade {args.command}"
        print(terminal_text(f"{prefix}: {exc}", newlines=True), file=sys.stderr)  # may quote a notebook's metadata or a file
        return 2
    except KeyboardInterrupt as exc:
        how = "terminated" if isinstance(exc, Terminated) else "interrupted"
        print(f"\ngrade: {how}; every finished result is saved, and a rerun grades only the rest", file=sys.stderr)
        return 128 + (signal.SIGTERM if isinstance(exc, Terminated) else signal.SIGINT)


if __name__ == "__main__":
    sys.exit(main())
