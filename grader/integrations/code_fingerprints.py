"""Winnowing fingerprints of notebook code: what ``grader/integrations/similarity.py`` compares across a class.

Steps 1-4 of the method in ``grader/integrations/similarity.py``'s docstring: a notebook's code cells (``!``/``%``
lines blanked), each cell's normalised tokens (identifiers one placeholder, literals their kind,
comments and layout gone), a hash of every ``K``-token run within a cell, and the hashes winnowing
keeps. Kept apart from the pairing because it is the part that must stay exact and deterministic:
the tokenizer never raises on a half-written cell, and the hashes are the same in every process (no
salted ``hash()`` of a string), so reruns give the same ``similarity.csv``.
"""

from __future__ import annotations

import builtins
import keyword
import re
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: Tokens per k-gram: shared runs shorter than this are noise (one book line, an import).
K = 12
#: Winnowing window (in hashes): every shared run of K + WINDOW - 1 tokens is found.
WINDOW = 8

_BUILTINS = frozenset(name for name in dir(builtins) if not name.startswith("_"))
_MAGIC = re.compile(r"^\s*[!%]")


# --------------------------------------------------------------------------- code and tokens


def code_cells(path: Path) -> list[str]:
    """The code cells of a notebook, ``!``/``%`` lines blanked (line numbers kept); ``[]`` for an unreadable file."""
    from grader.source.load import load_notebook

    loaded = load_notebook(Path(path))
    if loaded.notebook is None:  # not loaded.valid
        return []
    return [strip_magics(cell.source) for cell in loaded.notebook.cells if cell.cell_type == "code"]


def strip_magics(source: str) -> str:
    return "\n".join("" if _MAGIC.match(line) else line for line in str(source).split("\n"))


#: A normalised token and the first and last (1-based) line of its cell that it spans.
Token = tuple[str, int, int]

_STRING = (
    r"[rRbBuUfF]{0,2}(?:"
    r"'''(?:\\.|'(?!'')|[^'\\])*(?:'''|\Z)"
    r'|"""(?:\\.|"(?!"")|[^"\\])*(?:"""|\Z)'
    r"|'(?:\\.|[^'\\\n])*'?"
    r'|"(?:\\.|[^"\\\n])*"?)'
)
_NUMBER = r"0[xX][0-9a-fA-F_]+|0[bB][01_]+|0[oO][0-7_]+|(?:\d[\d_]*(?:\.[\d_]*)?|\.\d[\d_]*)(?:[eE][+-]?\d[\d_]*)?[jJ]?"
_OPERATOR = r"\*\*=|//=|>>=|<<=|\.\.\.|->|:=|[-+*/%@&|^<>=!]=|\*\*|//|<<|>>|[-+*/%@&|^~<>=.,:;]"
_TOKENS = re.compile(
    rf"[ \t\f]*(?:(?P<comment>#[^\r\n]*)|(?P<string>{_STRING})|(?P<number>{_NUMBER})|(?P<name>[^\W\d]\w*)"
    rf"|(?P<newline>\r\n|\n|\r)|(?P<continuation>\\\r?\n)|(?P<open>[(\[{{])|(?P<close>[)\]}}])|(?P<op>{_OPERATOR})|(?P<other>\S))"
)
_KEPT_NAMES = frozenset(keyword.kwlist) | _BUILTINS  # soft keywords (match, case, _) are mostly names


def normalized_tokens(source: str) -> list[Token]:
    """The cell's tokens: identifiers ``V``, numbers ``N``, strings ``S``, statement ends ``;``, indents ``{``/``}``.

    A small regular-expression tokenizer for Python: several times faster than :mod:`tokenize` (pure Python
    in 3.11), and it never raises -- an unfinished string or bracket in a student's cell is read as far as it
    goes. Keywords, builtins and operators stay; comments, blank lines and ``!``/``%`` lines are dropped.
    """
    source = strip_magics(source)
    tokens: list[Token] = []
    append = tokens.append
    kept = _KEPT_NAMES
    line, depth, line_start, at_start, indents = 1, 0, 0, True, [0]
    for match in _TOKENS.finditer(source):
        kind = match.lastgroup
        assert kind is not None  # every alternative of _TOKENS is a named group
        if kind == "newline":
            if depth == 0 and not at_start:
                append((";", line, line))
                at_start = True
            line += 1
            line_start = match.end()
            continue
        if kind == "comment":
            continue
        if kind == "continuation":
            line += 1
            line_start = match.end()
            continue
        if at_start:  # the first token of a logical line: its indentation opens or closes blocks
            at_start = False
            width = len(source[line_start : match.start(kind)].expandtabs(8))
            if width > indents[-1]:
                indents.append(width)
                append(("{", line, line))
            while width < indents[-1]:
                indents.pop()
                append(("}", line, line))
        text = match.group(kind)
        first = line
        if kind == "name":
            symbol = text if text in kept else "V"
        elif kind == "string":
            symbol = "S"
            if "\n" in text:
                line += text.count("\n")
                line_start = match.start(kind) + text.rindex("\n") + 1
        elif kind == "number":
            symbol = "N"
        elif kind == "open":
            symbol, depth = text, depth + 1
        elif kind == "close":
            symbol, depth = text, max(0, depth - 1)
        else:
            symbol = text
        append((symbol, first, line))
    if not at_start:
        append((";", line, line))
    tokens.extend(("}", line, line) for _ in indents[1:])
    return tokens


_SYMBOL_CODES: dict[str, int] = {}


def _code(symbol: str) -> int:
    value = _SYMBOL_CODES.get(symbol)
    if value is None:
        value = _SYMBOL_CODES[symbol] = zlib.crc32(symbol.encode())
    return value


def kgram_hashes(symbols: Sequence[str], k: int = K) -> list[int]:
    """A hash of every run of ``k`` symbols: Python's tuple hash of the symbols' CRC-32 codes.

    Tuples of integers hash the same in every process (only str and bytes hashes are salted), so
    fingerprints -- and the CSV -- are the same from run to run; the tuples are made and hashed in C.
    """
    if len(symbols) < k:
        return []
    codes = [_SYMBOL_CODES.get(s) or _code(s) for s in symbols]
    # strict=False: the slices shift by one, so the shortest ends the runs -- one per window of k.
    return list(map(hash, zip(*(codes[j:] for j in range(k)), strict=False)))


def winnow(hashes: Sequence[int], window: int = WINDOW) -> set[int]:
    """The hashes winnowing selects: the smallest of every ``window`` consecutive ones.

    As a set of values this is exactly robust winnowing's selection (which only breaks ties between
    equal hashes by position); where a selected hash occurs is looked up again for the pairs shown.
    """
    if len(hashes) <= window:
        return {min(hashes)} if hashes else set()
    # strict=False: the slices shift by one, so the shortest ends the windows.
    return set(map(min, zip(*(hashes[j:] for j in range(window)), strict=False)))


# --------------------------------------------------------------------------- fingerprints


@dataclass
class Fingerprints:
    """A notebook's winnowed fingerprints (``own``: those not in the references); positions on demand."""

    name: str
    cells: list[str]
    hashes: frozenset[int]
    own: frozenset[int] = field(default_factory=frozenset)
    _tokens: list[list[Token]] | None = field(default=None, repr=False)
    _where: dict[int, list[tuple[int, int]]] | None = field(default=None, repr=False)

    @property
    def tokens(self) -> list[list[Token]]:
        if self._tokens is None:
            self._tokens = [normalized_tokens(cell) for cell in self.cells]
        return self._tokens

    @property
    def where(self) -> dict[int, list[tuple[int, int]]]:
        """Each fingerprint -> where its k-gram starts: (code cell, token), in notebook order."""
        if self._where is None:
            self._where = {}
            for index, cell_tokens in enumerate(self.tokens):
                for position, h in enumerate(kgram_hashes([t[0] for t in cell_tokens])):
                    if h in self.hashes:
                        self._where.setdefault(h, []).append((index, position))
        return self._where


def cell_fingerprints(cell: str) -> set[int]:
    return winnow(kgram_hashes([t[0] for t in normalized_tokens(cell)]))


def fingerprint(name: str, cells: Sequence[str], cache: dict[str, set[int]] | None = None) -> Fingerprints:
    """The set of the cells' fingerprints (k-grams never cross cells: reordered cells give the same set).

    ``cache``: fingerprints by cell source, shared across a class -- the template's untouched cells,
    which every notebook has, are read once.
    """
    cache = {} if cache is None else cache
    hashes: set[int] = set()
    for cell in cells:
        found = cache.get(cell)
        if found is None:
            found = cache[cell] = cell_fingerprints(cell)
        hashes |= found
    return Fingerprints(name, list(cells), frozenset(hashes), frozenset(hashes))


def reference_hashes(cells_of_references: Iterable[Sequence[str]]) -> set[int]:
    """Every k-gram hash (not only the winnowed ones) of the solution's and the template's code."""
    excluded: set[int] = set()
    for cells in cells_of_references:
        for cell in cells:
            excluded.update(kgram_hashes([t[0] for t in normalized_tokens(cell)]))
    return excluded
