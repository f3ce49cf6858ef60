"""LaTeX in reports drawn as MathML, converted when the report is built: no script runs in the page.

``$...$`` / ``\\(...\\)`` are inline math, ``$$...$$`` / ``\\[...\\]`` display math, in students'
markdown answers (a mistune plugin) and in the grader's own messages (:func:`text_html`).
Dollars follow Pandoc's rule, so currency stays text: the opening ``$`` is not followed by a
space, the closing one is not preceded by a space nor followed by a digit (``$5 and $10``).
Code spans and code blocks are never searched for math.

latex2mathml does not escape what it copies from the source into text nodes
(``\\text{<b>}`` comes out as ``<mtext><b></mtext>``), so its string output is never used:
its element tree is serialized here, every text node and attribute value escaped, only
MathML elements and presentation attributes kept (``\\href`` is dropped). A formula it cannot
convert -- it raises, leaves an unknown ``\\command`` in the output, or builds a fraction or
script with a missing part -- stays as its escaped source text.
"""

from __future__ import annotations

import html
import re
from typing import Any
from xml.etree.ElementTree import Element

from markupsafe import Markup, escape

from grader.errors import GraderError

#: Longer sources are left as text (the converter is recursive and not written for hostile input).
MAX_LATEX = 2000
ELEMENTS = frozenset(
    "math mrow mi mn mo ms mtext mspace msub msup msubsup munder mover munderover mfrac msqrt mroot mstyle"
    " merror mpadded mphantom mtable mtr mtd mlabeledtr mmultiscripts mprescripts none menclose semantics annotation".split()
)
ATTRIBUTES = frozenset(
    "display xmlns mathvariant mathsize mathcolor mathbackground dir stretchy fence separator form lspace rspace"
    " movablelimits largeop symmetric minsize maxsize accent accentunder linethickness width height depth voffset"
    " columnalign rowalign columnlines rowlines columnspacing rowspacing columnspan rowspan frame framespacing"
    " equalrows equalcolumns displaystyle scriptlevel notation bevelled denomalign numalign linebreak".split()
)
#: Elements that need exactly this many children (the converter leaves one out for ``\frac{a}`` or ``x_``).
ARITY = {"mfrac": 2, "msub": 2, "msup": 2, "msubsup": 3, "munder": 2, "mover": 2, "munderover": 3, "mroot": 2}
UNKNOWN_COMMAND = re.compile(r"\\[A-Za-z]+")

DISPLAY = r"\$\$(?P<dd>(?:[^$\\]|\\.)+?)\$\$|\\\[(?P<bd>[\s\S]+?)\\\]"
INLINE = r"\\\((?P<bi>[\s\S]+?)\\\)|\$(?![$\s])(?P<di>(?:[^$\\\n]|\\.)+?)(?<![\s\\])\$(?!\d)"
#: Math in plain text (the grader's messages); an escaped ``\$`` never opens one.
PLAIN_MATH = re.compile(rf"(?<!\\)(?:{DISPLAY}|{INLINE})")
CODE_SPAN = re.compile(r"`([^`]+)`")


class _NotMath(GraderError):
    """The converter's tree is not one this module draws."""


def _text(value: str | None) -> str:
    # The converter writes symbols as character references ("&#x02212;") inside its text nodes and
    # copies the source's characters as they are: decode the one, then escape everything.
    return str(escape(html.unescape(value))) if value else ""


def _serialize(element: Element, out: list[str]) -> None:
    tag = element.tag
    if not isinstance(tag, str) or tag not in ELEMENTS:
        raise _NotMath(f"element {tag!r}")
    if tag in ARITY and len(element) != ARITY[tag]:
        raise _NotMath(f"{tag} with {len(element)} parts")
    if len(element) == 0 and element.text and UNKNOWN_COMMAND.search(element.text):
        raise _NotMath(f"unknown command {element.text!r}")
    out.append(f"<{tag}")
    for name, value in element.attrib.items():
        if name in ATTRIBUTES:
            out.append(f' {name}="{escape(html.unescape(str(value)))}"')
    out.append(">")
    out.append(_text(element.text))
    for child in element:
        _serialize(child, out)
        out.append(_text(child.tail))
    out.append(f"</{tag}>")


def to_mathml(latex: str, display: bool = False) -> Markup | None:
    """``latex`` (without delimiters) as a ``<math>`` element, or None when it cannot be drawn."""
    source = latex.strip()
    if not source or len(source) > MAX_LATEX:
        return None
    try:
        from latex2mathml.converter import convert_to_element

        tree = convert_to_element(source, display="block" if display else "inline")
        out: list[str] = []
        _serialize(tree, out)
    except Exception:  # anything the converter or the checks above refuse: the formula stays text
        return None
    return Markup("".join(out))


def formula_html(latex: str, display: bool, source: str) -> Markup:
    """The formula as MathML, else ``source`` (the formula with its delimiters) as escaped text."""
    drawn = to_mathml(latex, display)
    return drawn if drawn is not None else Markup(escape(source))


def _group(match: re.Match[str]) -> tuple[str, bool]:
    for name, display in (("dd", True), ("bd", True), ("bi", False), ("di", False)):
        if match.group(name) is not None:
            return match.group(name), display
    raise AssertionError("no formula group matched")


def _plain(text: str) -> str:
    out, position = [], 0
    for match in PLAIN_MATH.finditer(text):
        latex, display = _group(match)
        out += [str(escape(text[position : match.start()])), str(formula_html(latex, display, match.group(0)))]
        position = match.end()
    out.append(str(escape(text[position:])))
    return "".join(out)


def text_html(text: Any) -> Markup:
    """A grader message as HTML: escaped, `backticked` parts as code, formulas outside them as math."""
    text = str(text)
    out, position = [], 0
    for match in CODE_SPAN.finditer(text):
        out += [_plain(text[position : match.start()]), f"<code>{escape(match.group(1))}</code>"]
        position = match.end()
    out.append(_plain(text[position:]))
    return Markup("".join(out))


# --------------------------------------------------------------------------- mistune


BLOCK_MATH = (
    r"^ {0,3}\$\$(?P<math_single>[^\n]+?)\$\$[ \t]*(?:\n|$)|"
    r"^ {0,3}\$\$[ \t]*\n(?P<math_multi>[\s\S]+?)\n {0,3}\$\$[ \t]*(?:\n|$)|"
    r"^ {0,3}\\\[[ \t]*\n?(?P<math_bracket>[\s\S]+?)\n? {0,3}\\\][ \t]*(?:\n|$)"
)


def _parse_block(block: Any, match: re.Match[str], state: Any) -> int:
    text = next(t for t in match.group("math_single", "math_multi", "math_bracket") if t is not None)
    state.append_token({"type": "block_math", "raw": text, "attrs": {"source": match.group(0).strip()}})
    return match.end()


def _parse_inline(inline: Any, match: re.Match[str], state: Any) -> int:
    latex, display = _group(match)
    state.append_token({"type": "inline_math", "raw": latex, "attrs": {"source": match.group(0), "display": display}})
    return match.end()


def _render_block(renderer: Any, text: str, source: str = "") -> str:
    drawn = to_mathml(text, display=True)
    return f"{drawn}\n" if drawn is not None else f"<p>{escape(source or text)}</p>\n"


def _render_inline(renderer: Any, text: str, source: str = "", display: bool = False) -> str:
    return str(formula_html(text, display, source or text))  # `$$x$$` inside a paragraph: a block <math> in it


def math_plugin(md: Any) -> None:
    """mistune: ``$$``/``\\[`` blocks (also in lists and quotes) and inline ``$``/``\\(`` formulas as MathML."""
    md.block.register("block_math", BLOCK_MATH, _parse_block, before="list")
    for rules in (md.block.block_quote_rules, md.block.list_rules):
        md.block.insert_rule(rules, "block_math", before="list")
    # Before `escape`, so `\(` opens a formula rather than being an escaped parenthesis; a code span
    # that starts first still wins (the earliest match is taken), so `$x$` in backticks stays code.
    md.inline.register("inline_math", rf"{DISPLAY}|{INLINE}", _parse_inline, before="escape")
    if md.renderer and md.renderer.NAME == "html":
        md.renderer.register("block_math", _render_block)
        md.renderer.register("inline_math", _render_inline)
