"""Similarity across a class: which pairs of students wrote the same code of their own.

What counts is a student's *own* code. Every HW2 notebook holds the given
cells of the template and the book's code, which every student types (the
solution is written in the book's style, so the book's code is in it); code
found in the assignment's solution or template is therefore taken out of every
student's code before any two are compared, and the bare template makes no
two students look alike.

Method: winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003) over Python
tokens, implemented on the standard library alone: steps 1-4 in
``grader/integrations/code_fingerprints.py``, steps 5-6 here.

1. **Code**: the code cells of each submission as handed in (read with the
   tolerant loader, ``grader/source/load.py``), ``!shell`` and ``%magic`` lines left out.
2. **Tokens, normalised**: each cell is tokenized as Python by a small
   regular-expression tokenizer (on the fixtures' and the assignment's 259
   code cells it gives exactly :mod:`tokenize`'s tokens, several times faster,
   and it never raises on a half-written cell). Identifiers become one
   placeholder ``V`` -- variables, functions, classes, parameters, attributes:
   a renamed copy is the same sequence. Keywords, built-in names (``range``,
   ``sum``: a rename cannot change them without changing the program),
   operators and statement structure (newline, indent, dedent) stay; literals
   keep only their kind (number, string). Comments and blank lines are
   dropped, so reformatting and commenting change nothing.
3. **Fingerprints**: every run of ``K`` = 12 tokens *within one cell* is
   hashed (a hash of integers, not salted per process: reruns give the same
   CSV), and winnowing with a window of ``WINDOW`` = 8 hashes keeps the
   smallest of each window. Any shared run of at least K + WINDOW - 1 = 19
   normalised tokens is guaranteed to be found; one under 12 tokens
   (``X = torch.ones((6, 8))``) is noise and never counts. A notebook is the
   *set* of its cells' fingerprints: no k-gram crosses a cell boundary, so
   reordered cells give the same set.
4. **Exclusion**: *every* 12-token hash of the solution and of the template
   (not only the winnowed ones: winnowing picks different hashes at the edges
   of a fragment in different surroundings) is removed from every student's set.
5. **Similarity** of a pair: the fingerprints they share divided by the size
   of the smaller set, that set counted as at least ``MIN_FINGERPRINTS`` --
   how much of the smaller hand-in's own code is also in the other, so
   copying a notebook and adding to it still scores high, while a student
   with hardly any own code (a few lines that match) cannot score 1.0. Sets
   are intersected in C, over the fingerprints at least two notebooks have;
   cells every notebook shares unchanged are read once. 300 notebooks (44,850
   pairs) take a few seconds: ``tests/benchmarks/bench_similarity.py``.
6. **Regions**: for the pairs the class summary shows, the shared
   fingerprints are mapped back to the lines of each student's cells and
   merged into matching fragments, shown side by side.

Why not copydetect 0.5.0 (PyPI; evaluated here): it normalises names (with
pygments: yes to renamed variables), takes boilerplate fingerprints (yes to
template exclusion) and returns character slices (yes to regions), but it
reads files, not cells -- a notebook would be concatenated, with k-grams
across cell boundaries, so reordered cells change the edges -- its k-grams
are characters of the filtered text hashed with Python's salted ``hash()``
(winnowing picks differ from run to run), and it is slow at class scale: on
300 notebooks made from a fixture it took 35 s to fingerprint and an
estimated 76 s to compare all pairs (here, 2 cores); no to "300 notebooks in
seconds". It would also add tqdm and import matplotlib's pyplot at import.

Flag threshold: ``FLAG_THRESHOLD`` = 0.5 -- half of the smaller student's own
code (counted as at least MIN_FINGERPRINTS = 40 fingerprints, about a fifth
of a complete HW2 hand-in's ~210 beyond the template) is shared with the
other in runs of 12+ normalised tokens. Measured: the two independently
written fixture hand-ins score 0.125 (they typed the book, so only 9 and 6
fingerprints are their own, 5 of them shared: the book's
``VGG(...).layer_summary(...)`` where the template has ``vgg11 = VGG(...)``);
a renamed and reordered copy of a hand-in with own code scores 1.0; two
students with different own answers in the template score 0. Half is far
from both; it is what copying half of the work and writing the rest scores,
while a shared snippet or two (the book's code in another spelling) stays
well under it. An assignment may set another in its ``config.toml``::

    [similarity]
    flag_threshold = 0.6

Other reasons (``grader/integrations/answer_similarity.py``): identical files (same sha256) and identical or
near-identical written answers to the manual questions flag a pair too, whatever its code scores --
an exact copy of a hand-in whose own code is mostly the book's scores low here. A pair is flagged for
every reason that applies (``reason`` in ``similarity.csv``, ``"; "``-separated; "similar code" is
this module's); flagged pairs are listed first, then the rest, each most similar first.

A flag is a reason for a TA to look at the side-by-side fragments, never a
verdict: the grader changes no score for it.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from grader.course.assignment import template_path_for
from grader.integrations.answer_similarity import HandIn, Match, given_lines
from grader.integrations.answer_similarity import matches as hand_in_matches
from grader.integrations.code_fingerprints import (
    _BUILTINS,
    WINDOW,
    Fingerprints,
    K,
    Token,
    cell_fingerprints,
    code_cells,
    fingerprint,
    kgram_hashes,
    normalized_tokens,
    reference_hashes,
    strip_magics,
    winnow,
)
from grader.reports.class_summary import shown_count
from grader.reports.text_safety import csv_text
from grader.results import sha256_of, write_atomic

__all__ = [  # this module's names and those of grader/integrations/code_fingerprints.py that callers (tests included) read here
    "_BUILTINS",
    "CODE_REASON",
    "CSV_COLUMNS",
    "FLAG_THRESHOLD",
    "K",
    "MAX_REGIONS",
    "MIN_FINGERPRINTS",
    "WINDOW",
    "Fingerprints",
    "Fragment",
    "Pair",
    "Region",
    "Token",
    "cell_fingerprints",
    "class_similarity",
    "code_cells",
    "compare",
    "fingerprint",
    "kgram_hashes",
    "matching_regions",
    "normalized_tokens",
    "reference_hashes",
    "similarity_csv",
    "strip_magics",
    "threshold_of",
    "winnow",
]

#: The smallest denominator of a pair's similarity: a hand-in with less own code than this cannot reach 1.0.
MIN_FINGERPRINTS = 40
#: A pair at or above this share of the smaller hand-in's own code is flagged for a TA (see the module docstring).
FLAG_THRESHOLD = 0.5
#: Matching fragments shown per pair on the summary page, largest first.
MAX_REGIONS = 8

CSV_COLUMNS = ("submission_a", "submission_b", "similarity", "flagged", "reason")
#: The reason a pair's code gives (the others: ``grader/integrations/answer_similarity.py``).
CODE_REASON = "similar code"


# --------------------------------------------------------------------------- pairs


@dataclass
class Fragment:
    cell: int  # index among the notebook's code cells
    first_line: int
    last_line: int
    code: str


@dataclass
class Region:
    a: Fragment
    b: Fragment
    fingerprints: int


@dataclass
class Pair:
    submission_a: str
    submission_b: str
    similarity: float
    flagged: bool
    shared: int
    threshold: float = FLAG_THRESHOLD
    regions: list[Region] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # why it is flagged, in words: all that apply
    answers: list[Match] = field(default_factory=list)  # its identical or near-identical answers, A's first

    def to_dict(self) -> dict:
        return {
            "submission_a": self.submission_a,
            "submission_b": self.submission_b,
            "similarity": round(self.similarity, 4),
            "flagged": self.flagged,
            "shared": self.shared,
            "threshold": self.threshold,
            "regions": [[r.a.cell, r.a.first_line, r.a.last_line, r.b.cell, r.b.first_line, r.b.last_line] for r in self.regions],
            "reasons": self.reasons,
        }


def compare(
    submissions: Sequence[tuple[str, Sequence[str]]],
    references: Iterable[Sequence[str]] = (),
    threshold: float = FLAG_THRESHOLD,
    regions_for: int | None = None,
    matches: Mapping[frozenset[str], Sequence[Match]] | None = None,
) -> list[Pair]:
    """Every pair of ``(name, code cells)`` submissions, flagged ones first, each part most similar first;
    regions for the pairs shown.

    ``references``: the code cells of the solution and the template, whose code counts for nobody.
    ``regions_for``: how many of the top pairs get their matching fragments (default: those the summary shows).
    ``matches``: other reasons to flag a pair, by its two names (:func:`grader.integrations.answer_similarity.matches`).
    A pair is flagged for every reason that applies: identical files, similar code, identical answers.
    """
    excluded = reference_hashes(references)
    cache: dict[str, set[int]] = {}
    prints = [fingerprint(name, cells, cache) for name, cells in submissions]
    for p in prints:
        p.own = p.hashes - excluded
    # Only fingerprints two or more notebooks have can be shared: intersecting those alone is the same count,
    # and where hand-ins differ (the usual case) the sets to intersect are tiny.
    seen = Counter(h for p in prints for h in p.own)
    candidates = [frozenset(h for h in p.own if seen[h] > 1) for p in prints]
    sizes = [max(len(p.own), MIN_FINGERPRINTS) for p in prints]
    pairs = []
    for i, a in enumerate(prints):
        mine, size = candidates[i], sizes[i]
        for j in range(i + 1, len(prints)):
            shared = len(mine & candidates[j]) if mine else 0
            value = shared / min(size, sizes[j])
            found = (matches or {}).get(frozenset((a.name, prints[j].name)), ())
            reasons = [m.reason for m in found if not m.question] + ([CODE_REASON] if value >= threshold else [])
            reasons += [m.reason for m in found if m.question]
            answers = [m.facing(a.name) for m in found if m.question]
            pairs.append(Pair(a.name, prints[j].name, value, bool(reasons), shared, threshold, reasons=reasons, answers=answers))
    order = {p.name: i for i, p in enumerate(prints)}
    pairs.sort(key=lambda p: (not p.flagged, -p.similarity, order[p.submission_a], order[p.submission_b]))
    by_name = {p.name: p for p in prints}
    for pair in pairs[: shown_count(pairs) if regions_for is None else regions_for]:
        pair.regions = matching_regions(by_name[pair.submission_a], by_name[pair.submission_b])
    return pairs


def matching_regions(a: Fingerprints, b: Fingerprints, limit: int = MAX_REGIONS) -> list[Region]:
    """The shared fingerprints as fragments of both notebooks, largest first.

    Matches are grouped by the pair of cells they join (a's cell, b's cell); within one, a gap of more
    than ``3 * (K + WINDOW)`` tokens in a's cell starts a new fragment, so two copied functions far apart
    in one long cell are two fragments, while fingerprints the template took out of the middle of a
    copied function do not split it.
    """
    matches = sorted((a.where[h][0][0], b.where[h][0][0], a.where[h][0][1], b.where[h][0][1]) for h in a.own & b.own)
    groups: list[list[tuple[int, int, int, int]]] = []
    for match in matches:  # (cell a, cell b, token a, token b)
        last = groups[-1][-1] if groups else None
        if last and match[:2] == last[:2] and match[2] - last[2] <= 3 * (K + WINDOW):
            groups[-1].append(match)
        else:
            groups.append([match])
    regions = []
    for group in groups:
        fa = _fragment(a, group[0][0], min(m[2] for m in group), max(m[2] for m in group) + K - 1)
        fb = _fragment(b, group[0][1], min(m[3] for m in group), max(m[3] for m in group) + K - 1)
        regions.append(Region(fa, fb, len(group)))
    regions.sort(key=lambda r: (-r.fingerprints, r.a.cell, r.a.first_line))
    return regions[:limit]


def _fragment(prints: Fingerprints, cell: int, first_token: int, last_token: int) -> Fragment:
    tokens = prints.tokens[cell]
    first, last = tokens[first_token][1], tokens[min(last_token, len(tokens) - 1)][2]
    lines = prints.cells[cell].split("\n")
    return Fragment(cell, first, last, "\n".join(lines[first - 1 : last]))


# --------------------------------------------------------------------------- files


def threshold_of(config_text: str) -> float:
    """``[similarity] flag_threshold`` of an assignment's config, else FLAG_THRESHOLD."""
    try:
        value = tomllib.loads(config_text).get("similarity", {}).get("flag_threshold", FLAG_THRESHOLD)
        return float(value)
    except (tomllib.TOMLDecodeError, AttributeError, TypeError, ValueError):
        return FLAG_THRESHOLD


def similarity_csv(pairs: Sequence[Pair]) -> str:
    """``submission_a,submission_b,similarity,flagged,reason``, flagged pairs first, then most similar first.

    ``reason``: every reason the pair is flagged for, joined by ``"; "`` (empty when it is not).
    Written by :func:`grader.reports.text_safety.csv_text`: the names (students' file names) are text, a
    formula-like one neutralised; the similarity is a number with 3 decimals.
    """
    rows = (
        [p.submission_a, p.submission_b, Decimal(f"{p.similarity:.3f}"), "yes" if p.flagged else "no", "; ".join(p.reasons)] for p in pairs
    )
    return csv_text([CSV_COLUMNS, *rows])


def class_similarity(jobs: Sequence, target: Path | None = None, results: Mapping | None = None) -> list[Pair]:
    """The pairs of a batch's jobs (``grader.run.batch.Job``), compared within each assignment; writes ``target`` (CSV).

    ``results``: the jobs' results by stem (``grader.results.GradeResult``), for their answers to manual
    questions (without them no answer is compared; identical files are found either way).
    """
    by_assignment: dict[str, list] = {}
    for job in jobs:
        by_assignment.setdefault(job.assignment.name, []).append(job)
    pairs: list[Pair] = []
    for group in by_assignment.values():
        if len(group) < 2:
            continue
        assignment = group[0].assignment
        solution = assignment.folder / "solution.ipynb"
        references = [code_cells(path) for path in (solution, template_path_for(solution)) if path.is_file()]
        found = hand_in_matches([_hand_in(job, (results or {}).get(job.stem)) for job in group], given_lines([template_path_for(solution)]))
        submissions = [(job.stem, code_cells(job.path)) for job in group]
        pairs.extend(compare(submissions, references, threshold_of(assignment.config_text), matches=found))
    if len(by_assignment) > 1:
        pairs.sort(key=lambda p: (not p.flagged, -p.similarity))
    if target is not None:
        write_atomic(Path(target), similarity_csv(pairs))
    return pairs


def _hand_in(job, result) -> HandIn:
    """A job's file hash and, from its result, its answers to manual questions (what ``grader/integrations/answer_similarity.py`` compares).

    The hash is taken of the file here, like the code cells compared beside it, rather than read from the result.
    """
    answers = {}
    for q in getattr(result, "questions", None) or []:
        if q.status == "manual" and isinstance(q.details.get("answer"), str) and q.details["answer"].strip():
            answers[q.id] = q.details["answer"]
    return HandIn(job.stem, sha256_of(job.path), answers)  # the file as it is now, as the code compared is
