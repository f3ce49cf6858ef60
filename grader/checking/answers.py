"""Finding a student's prose answer to a manual exercise, in any language.

:func:`find_answer` is what the grader shows a TA for a ``kind = "manual"`` question. The rule,
in the order it is tried (the first that finds an answer wins):

1. **The configured heading** -- the first markdown cell matching the question's ``answer_after``
   pattern (case-insensitive, multi-line), as before: that cell and the markdown cells right after
   it, up to a code cell, a heading, or another exercise statement.
2. **The exercise statement** -- when the pattern matches nothing (a heading written in Chinese,
   say): a markdown cell *states an exercise* when a heading line names an exercise
   (``Exercise``, ``Problem``, ``Question``, 연습, 문제, 과제, 练习, 習題, 问题, 演習, 問題, ...) or a
   line starts with one, or it names the question's id. Such a cell is the question's when it names
   the question id; or it contains every key term of the question's title (the title's words of
   four letters or more, without "exercise", "proof" and the like; a term also matches its usual
   Korean, Chinese and Japanese rendering, e.g. convolution = 합성곱 = 卷积 = 畳み込み) and, where the
   cell's book section is known, that section is the question's; or it is the only exercise
   statement of the question's section. A cell's section is a number such as ``7.1`` in the cell
   or in the last numbered heading (``## 7.1 ...``) at or above it.
3. **By position** -- still nothing: the first markdown cell with an answer marker (below) in the
   question's section.

The answer is then the found cell and the markdown cells that follow it (as in 1). An **answer
marker** in those cells -- ``Answer:``, ``A:`` / ``Ans:`` at the start of a line, ``답:``, ``답변:``,
``정답:``, ``풀이:``, ``答:``, ``回答:``, ``解答:``, ``解:``, ``答え:`` (ASCII or full-width colon, also
in bold) -- starts the answer: the text after the first marker is the answer. Where those cells say
nothing beyond headings, exercise statements and the template's ``YOUR ANSWER HERE``, the next
markdown cells with a marker before the next heading or exercise (at most five cells on) are the
answer. Code cells are not read: a code comment is not an answer. The template's placeholder is
never an answer: a cell left as the template has it reads "not answered yet".

Every result has ``answer`` (the markdown, ``""`` when none), ``note`` (how it was found, or why
nothing was), and when found ``cell`` (the notebook cell the answer starts in) and ``found_by``
(``"configured heading"``, ``"exercise statement"``, ``"answer marker"`` or ``"position"``).
"""

from __future__ import annotations

import re
from typing import Any

from nbformat import NotebookNode

from grader.course.assignment import Question
from grader.course.template import MARKDOWN_PLACEHOLDER

#: How many cells after the exercise a marked answer may start when the exercise's own cells are empty.
MARKER_LOOKAHEAD = 5

_EXERCISE_WORDS = (
    r"exercises?|ex\.|problems?|questions?|tasks?"
    r"|연습\s*문제|연습|문제|과제|질문"
    r"|练习|練習|习题|習題|问题|問題|题目|題目|演習|設問"
)
_NUMBERED = r"q\d+|第\s*\d+\s*[题題問]|問\s*\d+|문\s*\d+"
#: A line that starts (after list marks, numbering and emphasis) with an exercise word followed by a
#: number, a colon, a full stop or the line's end ("Exercise 2:", "练习：", "**연습 문제**" -- not "문제는").
_STATEMENT_LINE = re.compile(
    rf"^[\s>*_\-+\d.)(【\[]*(?:(?:{_EXERCISE_WORDS})(?=[\s*_]*(?:[:：.．、)）\]】`(（]|\d|$))|(?:{_NUMBERED}))", re.I | re.M
)
_HEADING_LINE = re.compile(r"^\s{0,3}#{1,6}\s.*$|^\s{0,3}#{1,6}$", re.M)
_EXERCISE_WORD = re.compile(f"{_EXERCISE_WORDS}|{_NUMBERED}", re.I)

_COLON = r"\s*(?:\*\*|__|\*|_)?\s*[:：]"
#: Answer markers: CJK ones anywhere after a non-word character, Latin ones at the start of a line.
_MARKER = re.compile(
    r"(?:(?<![\w])(?:\*\*|__)?(?:답변|정답|풀이|답|回答|解答|答え|答|解)" + _COLON + ")"
    r"|(?:^[ \t>*_\-+]*(?:answer|ans|a)" + _COLON + ")",
    re.M | re.I,
)
_COMMENT = re.compile(r"<!--.*?-->", re.S)
_PLACEHOLDER = re.compile(rf"[*_`]*{re.escape(MARKDOWN_PLACEHOLDER)}[*_`]*", re.I)
_SECTION_HEADING = re.compile(r"^\s{0,3}#{1,6}\s*(?:section|§|第)?\s*(\d+(?:\.\d+)+)", re.I | re.M)

#: Title words that say nothing about which exercise it is.
_STOP_WORDS = {
    "exercise",
    "exercises",
    "proof",
    "prove",
    "show",
    "that",
    "this",
    "with",
    "from",
    "into",
    "alone",
    "cannot",
    "does",
    "what",
    "which",
    "when",
    "why",
    "explain",
    "implemented",
    "implement",
    "using",
    "about",
    "there",
}
#: The usual renderings of d2l's terms in Korean, Chinese and Japanese (a term's stem -> alternatives).
_GLOSSARY = {
    "convolut": r"합성곱|컨볼루션|卷积|捲積|卷積|畳み込み|たたみ込み",
    "symmetr": r"대칭|교환|对称|對稱|対称|交换|交換|可換|commutativ",
    "commutativ": r"대칭|교환|对称|對稱|対称|交换|交換|可換|symmetr",
    "max-pool": r"max\s*pool|최대\s*풀링|맥스\s*풀링|最大池化|最大汇聚|最大匯聚|最大プーリング|最大値プーリング",
    "pooling": r"풀링|池化|汇聚|匯聚|プーリング",
    "padding": r"패딩|填充|パディング",
    "stride": r"스트라이드|步幅|ストライド",
    "channel": r"채널|通道|チャネル|チャンネル",
    "kernel": r"커널|卷积核|カーネル",
}


def find_answer(notebook: NotebookNode, question: Question) -> dict[str, Any]:
    """The student's answer to a manual question and how it was found (see the module's docstring)."""
    cells = notebook.cells
    pattern = question.options.get("answer_after")
    tried: list[str] = []
    starts: list[tuple[int, str, str]] = []  # where the answer may start, in the rule's order
    if pattern:
        regex = re.compile(pattern, re.I | re.M)
        matches = [i for i, c in enumerate(cells) if _markdown(c) and regex.search(c.source)]
        # The first match, and a match right below it (a prompt cell, then the exercise's heading).
        chain = matches[:1]
        for index in matches[1:]:
            if index - chain[-1] > MARKER_LOOKAHEAD:
                break
            chain.append(index)
        starts += [(i, "configured heading", "the configured heading (`answer_after`)") for i in chain]
        if not matches:
            tried.append(f"no markdown cell matching {pattern!r}")
    statements = _exercise_statements(cells, question)
    starts += [(i, "exercise statement", how) for i, how in statements]
    if not statements:
        tried.append("no exercise statement naming it")
    marked = _marker_by_position(cells, question)
    if marked is not None:
        starts.append((marked, "position", f"the first answer marker in section {question.section}"))
    elif question.section:
        tried.append(f"no answer marker in section {question.section}")
    unanswered: list[dict[str, Any]] = []  # the exercise was found, but left empty
    for start, found_by, how in starts:
        found = _answer_from(cells, start, found_by, how)
        if found["answer"]:
            return found
        unanswered.append(found)
    if unanswered:  # the template's placeholder says most clearly that it was not answered
        return next((u for u in unanswered if "placeholder" in u["note"]), unanswered[0])
    return {"answer": "", "note": "; ".join(tried) + " was found"}


# -- finding the exercise ---------------------------------------------------------------------


def _markdown(cell: NotebookNode) -> bool:
    return cell.cell_type == "markdown"


def _is_statement(source: str, question: Question | None = None) -> bool:
    """Does a markdown cell state an exercise (a heading or a line naming one, or the question's id)?"""
    if question is not None and question.id in source:
        return True
    if any(_EXERCISE_WORD.search(line) for line in _HEADING_LINE.findall(source)):
        return True
    return bool(_STATEMENT_LINE.search(_COMMENT.sub("", source)))


def _key_terms(title: str) -> list[re.Pattern[str]]:
    """Regexes for the title's key terms, each also matching its CJK renderings."""
    title = re.sub(r"\([^)]*\)", " ", title)
    title = re.sub(r"^[^:]*\b(?:exercise|problem|question)\b[^:]*:", " ", title, flags=re.I)
    terms = []
    for word in re.findall(r"[A-Za-z][A-Za-z\-]{3,}", title):
        word = word.lower().strip("-")
        if word in _STOP_WORDS or len(word) < 4:
            continue
        stem = word[: max(4, len(word) - 3)] if "-" not in word else word[: max(4, len(word) - 4)]
        alternatives = [re.escape(stem).replace(r"\-", r"[-\s]?")]
        alternatives += [v for k, v in _GLOSSARY.items() if stem.startswith(k) or k.startswith(stem)]
        terms.append(re.compile("|".join(alternatives), re.I))
    return terms


def _sections(cells: list[NotebookNode]) -> list[str]:
    """The book section each cell is in: the last numbered heading at or above it ('' before any)."""
    current, out = "", []
    for cell in cells:
        if _markdown(cell):
            numbers = _SECTION_HEADING.findall(cell.source)
            if numbers:
                current = numbers[-1]
        out.append(current)
    return out


def _in_section(source: str, cell_section: str, section: str) -> bool | None:
    """True/False when the cell's section is known (named in it or by a heading above), else None."""
    if not section:
        return None
    if re.search(rf"(?<![\d.]){re.escape(section)}(?![\d])", source):
        return True
    if cell_section:
        return cell_section == section or cell_section.startswith(section + ".")
    return None


def _exercise_statements(cells: list[NotebookNode], question: Question) -> list[tuple[int, str]]:
    """The cells that may state this exercise, most certain first, with how each was recognized."""
    sections = _sections(cells)
    terms = _key_terms(question.title)
    statements = [i for i, c in enumerate(cells) if _markdown(c) and _is_statement(c.source, question)]
    found: dict[int, str] = {}
    for index in statements:
        if question.id in cells[index].source:
            found.setdefault(index, f"the exercise statement naming `{question.id}`")
    for index in statements:
        source = cells[index].source
        section = _in_section(source, sections[index], question.section)
        if terms and all(t.search(source) for t in terms) and section is not False:
            found.setdefault(index, "the exercise statement with the question's key terms")
    in_section = [i for i in statements if _in_section(cells[i].source, sections[i], question.section)]
    if len(in_section) == 1:
        found.setdefault(in_section[0], f"the only exercise statement in section {question.section}")
    return list(found.items())


def _marker_by_position(cells: list[NotebookNode], question: Question) -> int | None:
    sections = _sections(cells)
    for index, cell in enumerate(cells):
        if _markdown(cell) and _MARKER.search(cell.source) and _in_section(cell.source, sections[index], question.section):
            return index
    return None


# -- reading the answer -----------------------------------------------------------------------


def _ends_answer(cell: NotebookNode) -> bool:
    return not _markdown(cell) or cell.source.lstrip().startswith("#") or _is_statement(cell.source)


def written_text(answer: str) -> str:
    """What the student wrote in ``answer``: without headings, exercise statements, comments and the placeholder.

    Why public: similarity across a class (``grader/integrations/answer_similarity.py``) compares this part only, since
    the headings and statements an answer was found under are the same in every student's notebook.
    """
    return _content(answer)


def _content(text: str) -> str:
    """What a student wrote: no headings, exercise statements, comments or placeholder."""
    text = _PLACEHOLDER.sub("", _COMMENT.sub("", text))
    lines = [line for line in text.splitlines() if not _HEADING_LINE.match(line) and not _STATEMENT_LINE.match(line)]
    return "\n".join(lines).strip()


def _answer_from(cells: list[NotebookNode], start: int, found_by: str, how: str) -> dict[str, Any]:
    """The answer in cell ``start`` and the markdown cells right after it."""
    region = [start]
    for index in range(start + 1, len(cells)):
        if _ends_answer(cells[index]):
            break
        region.append(index)
    for index in region:  # a marker starts the answer
        match = _MARKER.search(cells[index].source)
        if match:
            return _marked(cells, index, match, region, found_by, how)
    parts = [cells[i].source for i in region]
    if any(_content(p) for p in parts):
        return {
            "answer": _without_placeholder("\n\n".join(parts)),
            "cell": start,
            "found_by": found_by,
            "note": f"found by {how} (cell {start})",
        }
    # The exercise's own cells are empty: a marked answer a few cells on (after a code cell, say).
    for index in range(region[-1] + 1, min(len(cells), region[-1] + 1 + MARKER_LOOKAHEAD)):
        cell = cells[index]
        if cell.cell_type == "code":
            continue
        if not _markdown(cell) or cell.source.lstrip().startswith("#") or _is_statement(cell.source):
            break
        match = _MARKER.search(cell.source)
        if match:
            return _marked(cells, index, match, [index], "answer marker", f"an answer marker after {how}")
    placeholder = any(_PLACEHOLDER.search(cells[i].source) for i in region)
    why = "the template's placeholder is still there" if placeholder else "nothing is written there"
    return {"answer": "", "cell": start, "note": f"not answered yet: {why} ({how}, cell {start})"}


def _marked(cells, index, match, region, found_by, how) -> dict[str, Any]:
    after = cells[index].source[match.end() :]
    rest = [cells[i].source for i in region if i > index]
    text = "\n\n".join([after.strip(), *rest]).strip()
    if not _content(text):
        return {"answer": "", "cell": index, "note": f"not answered yet: nothing after the answer marker ({how}, cell {index})"}
    if found_by == "position":
        how = f"position: {how}"
    elif found_by != "answer marker":
        how, found_by = f"an answer marker, in {how}", "answer marker"
    return {"answer": _without_placeholder(text), "cell": index, "found_by": found_by, "note": f"found by {how} (cell {index})"}


def _without_placeholder(text: str) -> str:
    """An answer as written, less a placeholder the student left in (the text itself untouched otherwise)."""
    if not _PLACEHOLDER.search(text):
        return text
    return re.sub(r"\n{3,}", "\n\n", _PLACEHOLDER.sub("", text)).strip()
