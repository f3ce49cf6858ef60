"""Command line of the grader: ``grade SUBCOMMAND ...``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="grade", description="Grade d2l CNN homework notebooks.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    claims = sub.add_parser("claims", help="check the exercise claims of reference/claims.py")
    claims.add_argument("only", nargs="*", help="claim names to check (default: all)")
    claims.add_argument("--json", action="store_true", help="print the results as JSON")
    claims.set_defaults(run=_claims)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
