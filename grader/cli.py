"""Command line of the grader: ``grade SUBCOMMAND ...``."""

from __future__ import annotations

import argparse
import json
import sys
import os
import time
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from grader import __version__


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


def _collect(paths: Sequence[str]) -> list[Path]:
    """Notebooks named on the command line; folders are searched, checkpoints skipped."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts))
        else:
            found.append(path)
    return found


def _assignment_name(path: Path, default: str) -> str:
    """The assignment named in the notebook's metadata (``metadata.grader.assignment``), else ``default``."""
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        name = meta.get("grader", {}).get("assignment") or meta.get("assignment")
        return name if isinstance(name, str) and name else default
    except (OSError, ValueError, AttributeError):
        return default


def _grade(args: argparse.Namespace) -> int:
    from grader.assignment import load_assignment
    from grader.budget import DEFAULT_DATA_CACHE, Budget, resolve_budget, resolve_device
    from grader.grade import GradeOptions, grade_notebook
    from grader.report import print_summary
    from grader.results import unique_stems, write_result

    paths = _collect(args.paths)
    if not paths:
        print("grade: no notebooks found in " + ", ".join(args.paths), file=sys.stderr)
        return 2
    device = resolve_device(args.device)
    budget_name = resolve_budget(args.budget, device)
    data_dir = Path(args.data_dir or os.environ.get("GRADER_DATA_DIR") or DEFAULT_DATA_CACHE).resolve()
    out = Path(args.out)
    results = []
    assignments: dict[str, object] = {}
    for path, stem in zip(paths, unique_stems(paths)):
        name = args.assignment or _assignment_name(path, "hw2")
        try:
            assignment = assignments.get(name) or load_assignment(name)
        except ValueError as exc:
            print(f"grade: {exc}", file=sys.stderr)
            return 2
        assignments[name] = assignment
        quick = assignment.budgets.get("quick", {})
        budget = Budget(budget_name, data_dir, quick.get("train_size", 1000), quick.get("val_size", 250), quick.get("max_epochs", 1))
        progress = None if args.json or not sys.stderr.isatty() else _progress(path)
        options = GradeOptions(budget, device, args.cell_timeout, args.timeout, on_cell=progress)
        result = grade_notebook(path, assignment, options, shown_path=str(path))
        if progress:
            print(file=sys.stderr)
        write_result(result, out / f"{stem}.json")
        results.append((result, out / f"{stem}.json"))
        if not args.json:
            print_summary(result, out / f"{stem}.json")
    if args.json:
        data = [r.to_dict() for r, _ in results]
        print(json.dumps(data[0] if len(data) == 1 else data, indent=2, ensure_ascii=False))
    if args.fail_under is not None:
        for result, _ in results:
            if result.max_score and 100 * result.score / result.max_score < args.fail_under:
                return 1
    return 0


def _progress(path: Path):
    def show(position: int, total: int) -> None:
        print(f"\r{path.name}: running cell {position + 1}/{total}", end="", file=sys.stderr, flush=True)

    return show


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
    grade.set_defaults(run=_grade)
    claims = sub.add_parser("claims", help="check the exercise claims of reference/claims.py")
    claims.add_argument("only", nargs="*", help="claim names to check (default: all)")
    claims.add_argument("--json", action="store_true", help="print the results as JSON")
    claims.set_defaults(run=_claims)
    return parser


SUBCOMMANDS = {"run", "claims"}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in SUBCOMMANDS and argv[0] not in ("-h", "--help", "--version"):
        argv.insert(0, "run")  # `grade PATH...` is `grade run PATH...`
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
