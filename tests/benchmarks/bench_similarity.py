"""Similarity across a class: seconds for 300 notebooks, and what the fixtures score.

    python tests/benchmarks/bench_similarity.py [--count 300] [--repeat 3]

The class is tests/test_similarity.py's synthetic one: the HW2 template with
randomly generated own code in every notebook (no two alike, so nothing is
read once for all), plus five renamed and reordered copies. Printed: the
notebooks' size, the seconds of the whole comparison (fingerprints, every
pair, the regions of the pairs the summary shows; best of ``--repeat``), and
for reference the similarity of the two independent fixture hand-ins and of
a renamed, reordered copy of student A.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from grader.integrations import similarity as sim  # noqa: E402
from tests.test_similarity import fixture, references, renamed_and_reordered, synthetic_class  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    notebooks = synthetic_class(args.count)
    refs = references()
    chars = sum(len(cell) for _, cells in notebooks for cell in cells) / len(notebooks)
    tokens = sum(len(sim.normalized_tokens(cell)) for cell in notebooks[0][1])
    print(
        f"{len(notebooks)} notebooks, {chars:,.0f} characters of code each ({tokens:,} tokens in the first), "
        f"{len(notebooks) * (len(notebooks) - 1) // 2:,} pairs"
    )
    best = float("inf")
    for _ in range(args.repeat):
        start = time.perf_counter()
        pairs = sim.compare(notebooks, refs)
        best = min(best, time.perf_counter() - start)
    flagged = sum(p.flagged for p in pairs)
    print(f"compare: {best:.2f} s (best of {args.repeat}); {flagged} flagged, top similarity {pairs[0].similarity:.3f}")

    a, b = fixture("student_a"), fixture("student_b")
    (pair,) = sim.compare([("student_a", a), ("student_b", b)], refs)
    (copy,) = sim.compare([("student_a", a), ("renamed", renamed_and_reordered(a))], refs)
    print(
        f"fixtures: student_a ~ student_b {pair.similarity:.3f} ({pair.shared} shared fingerprints); "
        f"student_a ~ its renamed, reordered copy {copy.similarity:.3f} ({copy.shared}); flag threshold {sim.FLAG_THRESHOLD}"
    )


if __name__ == "__main__":
    main()
