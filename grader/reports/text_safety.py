"""Student text made inert for every place it is written: the terminal, JUnit XML, CSV and links.

A student chooses a notebook's file name, its cells, what they print and the messages of the
exceptions they raise; all of that reaches what the grader writes. Each output has its own way of
turning text into something else -- a terminal obeys escape sequences, an XML parser rejects
control characters, a spreadsheet runs a cell starting with ``=``, a browser follows
``javascript:`` -- so each output has one function here, and every writer of that output uses it:

* :func:`terminal_text` -- what ``grade`` prints;
* :func:`xml_text` -- every attribute and text of the JUnit file;
* :func:`csv_cell` / :func:`csv_text` -- every CSV the grader writes;
* :func:`relative_href` -- every link the class summary makes to a report.

HTML itself is escaped by Jinja's autoescaping (``grader/reports/html_report.py``); nothing here replaces it.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Sequence
from decimal import Decimal
from urllib.parse import quote

# --------------------------------------------------------------------------- terminal

#: Escape sequences a terminal acts on, removed whole so no ``[31m`` residue is left. In order:
#: string controls (OSC -- hyperlinks and window titles --, DCS, SOS, PM, APC, 7- or 8-bit) up to
#: their terminator (BEL or ST); CSI (colours, cursor moves, screen clearing), 7- or 8-bit; and any
#: other escape (``ESC`` + intermediates + a final byte).
_ESCAPE_SEQUENCE = re.compile(
    r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)"
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
    r"|\x1b[ -/]*[0-~]"
)
#: Unicode's explicit direction controls (embeddings, overrides, isolates: U+202A-U+202E,
#: U+2066-U+2069) and the invisible direction marks (U+200E, U+200F, U+061C): they make a terminal,
#: an editor or a CI page show text in another order than it is (CVE-2021-42574, "Trojan Source").
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c")
#: C0 controls, DEL and C1 controls (the 8-bit CSI ``U+009B`` among them).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
#: What ends a line, for a terminal and a reader: newline, carriage return, the Unicode separators.
_LINE_BREAK = re.compile(r"\r\n|[\n\r\u2028\u2029\x0b\x0c\x85]")


def terminal_text(text: object, limit: int | None = None, *, newlines: bool = False) -> str:
    """``text`` as plain characters a terminal only shows: nothing it can obey, nothing reordered.

    Escape sequences are removed whole (colours, cursor moves, screen clearing, window titles,
    OSC 8 hyperlinks), then every remaining C0/C1 control and the bidi controls. A tab becomes a
    space. Line breaks (``\\n``, ``\\r``, ``\\r\\n``, U+2028/2029) become ``\\n`` where ``newlines``
    says a newline means something (a multi-line message), else a space -- a bare ``\\r`` would
    otherwise let the text overwrite the line it is on. ``limit``: at most that many characters,
    the last one ``…`` when cut.

    The result is plain text: where it goes through a markup engine (rich) it must be handed over
    as text, not markup (``rich.text.Text``, or ``markup=False``) -- see ``grader/reports/console.py``.
    """
    value = _ESCAPE_SEQUENCE.sub("", str(text))
    value = _LINE_BREAK.sub("\n" if newlines else " ", value).replace("\t", " ")
    value = _CONTROL.sub(lambda m: "\n" if m.group() == "\n" else "", value)
    value = "".join(c for c in value if c not in BIDI_CONTROLS)
    if limit is not None and len(value) > limit:
        value = value[: max(0, limit - 1)] + "…"
    return value


def json_for_terminal(document: str) -> str:
    """A JSON document (``json.dumps(..., ensure_ascii=False)``) with the characters a terminal would obey escaped.

    ``json.dumps`` escapes C0 controls but writes C1 controls (U+0080-U+009F, the 8-bit CSI
    among them), the bidi controls and U+2028/2029 as they are. Such a character can only stand inside
    a JSON string, where ``\\uXXXX`` means the same character: the document still parses to the same
    value, and Korean or accented text stays readable.
    """
    return re.sub(r"[\x7f-\x9f\u2028\u2029" + "".join(BIDI_CONTROLS) + "]", lambda m: f"\\u{ord(m.group()):04x}", document)


# --------------------------------------------------------------------------- XML (JUnit)

#: Everything outside XML 1.0's ``Char`` production (https://www.w3.org/TR/xml/#charsets): C0
#: controls but tab, newline and carriage return; lone surrogates; U+FFFE and U+FFFF.
_XML_FORBIDDEN = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(text: object) -> str:
    """``text`` as characters an XML 1.0 document may hold, shown as they read.

    Escape sequences go first (whole, as for the terminal, so a CI page shows ``boom`` and not
    ``[1mboom``); then what XML forbids (a parser rejects the whole file over one ``\\x00``),
    the C1 controls XML only discourages, and the bidi controls (a CI page shows the text in
    another order). Newlines and tabs stay: a traceback keeps its lines.
    """
    value = _ESCAPE_SEQUENCE.sub("", str(text))
    value = _XML_FORBIDDEN.sub("", value)
    return "".join(c for c in value if not ("\x7f" <= c <= "\x9f" or c in BIDI_CONTROLS))


# --------------------------------------------------------------------------- CSV

#: A cell starting with one of these is a formula to Excel, LibreOffice Calc and Google Sheets
#: (OWASP, "CSV Injection": https://owasp.org/www-community/attacks/CSV_Injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> str:
    """One CSV cell: text a spreadsheet shows as text, or a number it reads as a number.

    How a number is told from a student's string: by its Python type, never by how it looks.
    An ``int``, ``float`` or ``Decimal`` is something the grader computed (a score, points, a
    similarity) and is written as a number -- ``-1.5`` stays ``-1.5``, an integral float is
    written without ``.0``, a ``Decimal`` with the digits it has (``Decimal("0.900")``: a writer
    that wants fixed decimals). Every ``str`` is text, whoever wrote it (file names, roster names, feedback, and our own
    headers, which never start with a formula character): starting with ``=``, ``+``, ``-``, ``@``,
    tab or carriage return it gets a leading ``'`` (OWASP's advice; a spreadsheet hides the quote
    and shows the text), so ``-2`` *as a string* becomes ``'-2``. Writers therefore pass numbers
    as numbers, rounded as they want them shown. ``None`` is an empty cell; a ``bool`` is text.
    """
    if value is None:
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            return str(int(value))
        return repr(value) if isinstance(value, float) else str(value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def csv_text(rows: Iterable[Sequence[object]]) -> str:
    """A CSV document of ``rows``, every cell through :func:`csv_cell`; the one way the grader writes CSV."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue()


# --------------------------------------------------------------------------- links


def relative_href(name: str) -> str:
    """A link to the file ``name`` in the same folder as the page, whatever the name holds.

    Every character but letters, digits and ``_.-~`` is percent-encoded (``urllib.parse.quote``
    with nothing safe), so the link is one path segment of a relative URL: ``:`` cannot start a
    scheme (``javascript:alert(1).html`` -> ``javascript%3Aalert%281%29.html``), ``/`` cannot
    leave the folder, ``%``, ``#``, ``?``, spaces, newlines and bidi controls are literal
    characters of the file name. A name of only dots (``.``, ``..``) would address a folder, not a
    file: it is refused (the grader's report names always end in ``.html``).
    """
    if not name or set(name) == {"."} or "/" in name or "\0" in name:
        raise ValueError(f"{name!r} is not the name of a file in the page's folder")
    return quote(name, safe="")
