"""The grader's wall time against plain nbclient execution of the same budget-prepared notebook.

    python tests/benchmarks/bench_grader.py [NOTEBOOK] [--rounds 2] [--data-dir ../shared/data]

"Budget-prepared" means what the grader's kernel runs: the budget's preamble
and the neutralized cells. The two are run alternately in this one process,
so machine noise hits both. Printed: the median of each; the ratio of the
grader's time to run the notebook (loading, kernel start, preamble, cells,
the snapshots after each cell, teardown: the whole grading minus the time
inside checks) to plain nbclient; and the ratio of the whole grading, whose
checks include training the student's model and the reference for every
training question.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from grader.course.assignment import load_assignment
from grader.course.d2l_budget import Budget
from grader.notebook.pipeline import GradeOptions, grade_notebook
from grader.source.neutralize import neutralize

REPO = Path(__file__).resolve().parents[2]


def plain_nbclient(path: Path, budget: Budget) -> float:
    notebook, _ = neutralize(nbformat.read(path, as_version=4))
    notebook.cells.insert(0, nbformat.v4.new_code_cell(budget.preamble()))
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        NotebookClient(notebook, timeout=600, allow_errors=True, resources={"metadata": {"path": workdir}}).execute()
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default=str(REPO.parent / "shared/fixtures/submissions/solution.ipynb"))
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared/data"))
    args = parser.parse_args()

    path = Path(args.notebook)
    assignment = load_assignment("hw2")
    quick = assignment.budgets["quick"]
    budget = Budget("quick", Path(args.data_dir).resolve(), quick["train_size"], quick["val_size"], quick["max_epochs"])
    plain, grader_run, grader_total = [], [], []
    for round_ in range(args.rounds):
        plain.append(plain_nbclient(path, budget))
        start = time.perf_counter()
        result = grade_notebook(path, assignment, GradeOptions(budget, "cpu"))
        grader_total.append(time.perf_counter() - start)
        checks = sum(q.details.get("seconds", 0.0) for q in result.questions)
        grader_run.append(grader_total[-1] - checks)  # load, kernel, preamble, cells, snapshots, teardown
        print(
            f"round {round_ + 1}: plain nbclient {plain[-1]:.1f} s; grader: running the notebook {grader_run[-1]:.1f} s, "
            f"checks {checks:.1f} s, total {grader_total[-1]:.1f} s (score {result.score:g}/{result.max_score:g})"
        )
    p, e, t = (statistics.median(v) for v in (plain, grader_run, grader_total))
    print(f"median: plain nbclient {p:.1f} s, grader running the notebook {e:.1f} s, grader total {t:.1f} s")
    print(f"running the notebook, grader / plain nbclient: {e / p:.2f}  (target <= 1.3)")
    print(f"whole grading (checks train two models per training question) / plain: {t / p:.2f}")


if __name__ == "__main__":
    main()
