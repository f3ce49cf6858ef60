"""What the clean room costs: the checks answered by forks of the clean room's kernel, against the same checks
answered by the notebook's own kernel (the grader before the clean room), in this one process.

Run by hand (it is not collected by pytest):

    python tests/benchmarks/bench_clean_room.py [--notebook ../shared/fixtures/submissions/solution.ipynb]
                                                [--data-dir ../shared/data] [--repeat 2]

Each variant grades the notebook ``--repeat`` times under the quick budget and keeps the median of each phase.
The baseline sends every request to the notebook's kernel (``grader.kernel.submission.ROOM_OPS`` emptied for the run;
its clean room's kernel is still started, so the start phase is the same in both). Verdicts must not differ.
Printed: the seconds of each phase and the ratio clean room / baseline for the checks and the whole grading.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import grader.kernel.submission as submission  # noqa: E402
from grader.course.assignment import load_assignment  # noqa: E402
from grader.course.d2l_budget import Budget  # noqa: E402
from grader.notebook.pipeline import GradeOptions, grade_notebook  # noqa: E402


def grade(path: Path, data_dir: Path, repeat: int) -> tuple[dict[str, float], dict[str, str]]:
    """Median seconds per phase over ``repeat`` gradings, and the verdicts of the last."""
    assignment = load_assignment("hw2")
    options = GradeOptions(Budget.of("quick", data_dir, assignment.budgets), "cpu")
    phases: dict[str, list[float]] = {}
    verdicts: dict[str, str] = {}
    for _ in range(repeat):
        result = grade_notebook(path, assignment, options)
        for phase, seconds in {**result.phase_seconds, "total": result.grading_seconds}.items():
            phases.setdefault(phase, []).append(seconds)
        verdicts = {q.id: str(q.status) for q in result.questions}
    return {phase: statistics.median(values) for phase, values in phases.items()}, verdicts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notebook", type=Path, default=REPO.parent / "shared" / "fixtures" / "submissions" / "solution.ipynb")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    room, room_verdicts = grade(args.notebook, args.data_dir, args.repeat)
    kept = submission.ROOM_OPS
    submission.ROOM_OPS = frozenset()  # every request to the notebook's kernel: the grader before the clean room
    try:
        base, base_verdicts = grade(args.notebook, args.data_dir, args.repeat)
    finally:
        submission.ROOM_OPS = kept

    print(f"{'phase':<14}{'notebook kernel':>17}{'clean room':>12}")
    for phase in base:
        print(f"{phase:<14}{base[phase]:>16.2f}s{room.get(phase, 0.0):>11.2f}s")
    print(f"checks: clean room / notebook kernel = {room['checks'] / base['checks']:.2f}")
    print(f"whole grading: clean room / notebook kernel = {room['total'] / base['total']:.2f}")
    differing = sorted(q for q in base_verdicts if base_verdicts[q] != room_verdicts.get(q))
    print("verdicts: identical" if not differing else f"verdicts differ: {differing}")


if __name__ == "__main__":
    main()
