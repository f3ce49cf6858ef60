"""Pairs a TA should look at besides shared code: identical files, and identical or near-identical prose answers.

Why apart from the code's winnowing (``grader/integrations/similarity.py``): a copied notebook whose code is mostly
the book's has little code of its own, so its code similarity stays low (an exact copy of the fixture
``student_a`` scores 0.225) although the copy is plain; and the written answers of the manual
questions, where copying shows best, are prose, not Python tokens. Each finding is a reason of its own
beside the code's, in ``similarity.csv`` and in the class summary.

* **Identical files**: the same sha256 of the file as handed in (an empty hash, a file that could not be
  read, matches nothing).
* **Answers**: the answer found for a manual question (``details["answer"]``, ``grader/checking/answers.py``),
  less what every student's notebook holds -- headings, exercise statements, the placeholder
  (:func:`grader.checking.answers.written_text`) and any line of the assignment's template -- then normalised:
  Unicode NFKC, casefolded, and every whitespace and punctuation character (Unicode categories ``P*``
  and ``Z*``) dropped, so ``합성곱은 교환 법칙이 성립한다.`` and ``합성곱은  교환법칙이 성립한다!`` are one
  answer, in any language and script. Two answers are

  - *identical* when their normalised texts are equal and at least :data:`MIN_IDENTICAL` (30)
    characters long;
  - *near-identical* when both are at least :data:`MIN_NEAR` (60) characters and
    ``difflib.SequenceMatcher`` (no auto-junk) rates them :data:`NEAR_RATIO` (0.9) or more alike.

  Why those lengths: 30 normalised characters are about six English words or one Korean or Chinese
  sentence, so "yes", "2", ``a + b`` or a one-line definition two students may well write alike
  never flag; a ratio is only meaningful on longer texts (on 30 characters, three changed ones still
  rate 0.9), hence twice that for a near-identical answer.

Comparing every pair of long answers with difflib would take minutes at 300 students, so a pair's
ratio is computed only when its lengths allow 0.9 and its answers share at least
:data:`CANDIDATE_SHARE` of the smaller one's uncommon runs of :data:`SHINGLE` characters (runs in
more than :data:`COMMON_AT` answers, or a tenth of the class, are common phrases): answers 0.9 alike
by difflib share far more than that unless their differences are spread evenly every few characters.
Identical answers are found by their normalised text alone, however common.

A reason is for a TA to read both texts, never a verdict: no score changes for it.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from itertools import combinations
from pathlib import Path

from grader.checking.answers import written_text

#: Normalised characters an answer needs before an identical one in another notebook is a reason.
MIN_IDENTICAL = 30
#: Normalised characters both answers need before a near-identical pair is a reason.
MIN_NEAR = 60
#: ``SequenceMatcher.ratio()`` at or above which two answers are near-identical.
NEAR_RATIO = 0.9
#: Characters per run (of the normalised text) in the pre-filter for near-identical answers.
SHINGLE = 5
#: Share of the smaller answer's uncommon runs the other must have before difflib compares them.
CANDIDATE_SHARE = 0.3
#: A run in more answers than this (or a tenth of the class, if more) is a common phrase, not a sign of copying.
COMMON_AT = 5


@dataclass(frozen=True)
class Match:
    """One reason two hand-ins are alike: identical files, or one question's answers (as written, for the page)."""

    kind: str  # "identical files", "identical answer" or "near-identical answer"
    question: str = ""  # the question's id, for an answer
    ratio: float = 1.0
    a: str = ""  # the answer of the hand-in named ``first``
    b: str = ""  # the other's
    first: str = ""

    def facing(self, name: str) -> Match:
        """The same match with ``a`` the answer of hand-in ``name`` (the pair's first, as a page lists it)."""
        return self if self.first in ("", name) else Match(self.kind, self.question, self.ratio, self.b, self.a, name)

    @property
    def reason(self) -> str:
        """The reason in words, as ``similarity.csv`` and the summary say it."""
        if not self.question:
            return self.kind
        alike = f" ({self.ratio:.0%} alike)" if self.kind == "near-identical answer" else ""
        return f"{self.kind} to {self.question}{alike}"


@dataclass
class HandIn:
    """What this module compares of one notebook: its file's hash and its answers to manual questions."""

    name: str
    sha256: str = ""
    answers: dict[str, str] = field(default_factory=dict)  # question id -> the answer as found


def normalized(text: str) -> str:
    """``text`` in NFKC, casefolded, without whitespace and punctuation (Unicode categories P* and Z*)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    return "".join(c for c in folded if not c.isspace() and unicodedata.category(c)[0] not in "PZ")


def given_lines(notebooks: Iterable[Path]) -> set[str]:
    """The normalised lines of the markdown cells of ``notebooks`` (the template): text no student wrote."""
    import nbformat

    lines: set[str] = set()
    for path in notebooks:
        try:
            notebook = nbformat.read(str(path), as_version=4)
        except Exception:  # noqa: BLE001 -- an unreadable template only costs the exclusion of its lines
            continue
        for cell in notebook.cells:
            if cell.cell_type == "markdown":
                lines.update(line for line in map(normalized, cell.source.splitlines()) if line)
    return lines


def comparable(answer: str, given: set[str] | frozenset[str] = frozenset()) -> str:
    """The part of ``answer`` that is compared: what the student wrote, less ``given`` lines, normalised."""
    kept = (normalized(line) for line in written_text(answer).splitlines())
    return "".join(line for line in kept if line not in given)


def matches(hand_ins: Sequence[HandIn], given: set[str] | frozenset[str] = frozenset()) -> dict[frozenset[str], list[Match]]:
    """Every pair of ``hand_ins`` alike for a reason of this module, keyed by the pair's two names.

    A pair's matches come in this order: identical files, then each question's answers in the order the
    hand-ins list their questions. ``given``: normalised lines no student wrote (:func:`given_lines`).
    """
    found: dict[frozenset[str], list[Match]] = {}
    by_hash: dict[str, list[str]] = {}
    for hand_in in hand_ins:
        if hand_in.sha256:
            by_hash.setdefault(hand_in.sha256, []).append(hand_in.name)
    for names in by_hash.values():
        for a, b in combinations(names, 2):
            found.setdefault(frozenset((a, b)), []).append(Match("identical files"))
    questions = list(dict.fromkeys(q for hand_in in hand_ins for q in hand_in.answers))
    for question in questions:
        for a, b, match in _answer_matches(hand_ins, question, given):
            found.setdefault(frozenset((a, b)), []).append(match)
    return found


def _answer_matches(hand_ins: Sequence[HandIn], question: str, given: set[str] | frozenset[str]) -> list[tuple[str, str, Match]]:
    """The identical and near-identical answers to one question, as (name, name, match)."""
    texts = [(h, comparable(h.answers[question], given)) for h in hand_ins if h.answers.get(question)]
    texts = [(h, text) for h, text in texts if len(text) >= MIN_IDENTICAL]
    found: list[tuple[str, str, Match]] = []
    same: dict[str, list[HandIn]] = {}
    for hand_in, text in texts:
        same.setdefault(text, []).append(hand_in)
    for group in same.values():
        for a, b in combinations(group, 2):
            found.append((a.name, b.name, Match("identical answer", question, 1.0, a.answers[question], b.answers[question], a.name)))
    long = [(h, text) for h, text in texts if len(text) >= MIN_NEAR]
    runs = [{text[i : i + SHINGLE] for i in range(len(text) - SHINGLE + 1)} for _, text in long]
    seen = Counter(run for r in runs for run in r)
    common = max(COMMON_AT, len(long) // 10)
    rare = [frozenset(run for run in r if 1 < seen[run] <= common) for r in runs]  # shared, but not by much of the class
    for i, j in combinations(range(len(long)), 2):
        (a, text_a), (b, text_b) = long[i], long[j]
        if text_a == text_b or 2 * min(len(text_a), len(text_b)) / (len(text_a) + len(text_b)) < NEAR_RATIO:
            continue  # identical (said above), or lengths that bound the ratio below NEAR_RATIO
        if len(rare[i] & rare[j]) < CANDIDATE_SHARE * min(len(rare[i]), len(rare[j])) or not rare[i] & rare[j]:
            continue
        ratio = SequenceMatcher(None, text_a, text_b, autojunk=False).ratio()
        if ratio >= NEAR_RATIO:
            match = Match("near-identical answer", question, ratio, a.answers[question], b.answers[question], a.name)
            found.append((a.name, b.name, match))
    return found
