"""LaTeX in reports: converted to MathML when the report is built (no script), never an injection."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from markupsafe import Markup

from grader import results as r
from grader.reports.html_report import inline_code, render_markdown, render_report
from grader.reports.mathml import text_html, to_mathml

POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; frame-src 'self' data:"


def parsed(html: str) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """Every element a browser's tokenizer finds in ``html``, with its attributes."""
    found = []

    class Collect(HTMLParser):
        def handle_starttag(self, tag, attrs):
            found.append((tag, attrs))

    Collect().feed(html)
    return found


def test_a_fraction_and_a_subscript_in_an_answer_become_mathml():
    html = render_markdown(r"The output is $\frac{n-k+p+s}{s}$ wide, indexed by $x_{i}$.")
    assert html.count("<math ") == 2 and 'display="inline"' in html
    fraction = re.search(r"<mfrac>.*?</mfrac>", html).group(0)
    assert "<mi>n</mi><mo>−</mo><mi>k</mi>" in fraction and "<mi>s</mi>" in fraction
    assert re.search(r"<msub><mi>x</mi><mrow><mi>i</mi></mrow></msub>", html)
    assert "$" not in html and "\\frac" not in html


def test_display_math_in_both_notations_and_inside_a_list():
    for source in ("$$\n\\sum_{i=1}^n i\n$$", "\\[\n\\sum_{i=1}^n i\n\\]", "- one:\n  $$\\sum_{i=1}^n i$$"):
        html = render_markdown(source)
        assert '<math xmlns="http://www.w3.org/1998/Math/MathML" display="block">' in html, source
        assert "<munderover><mo>∑</mo>" in html, source
    assert "<msup><mi>a</mi><mn>2</mn></msup>" in render_markdown(r"so \(a^2\) grows")


def test_currency_stays_text():
    for source in ("It costs $5 and $10 in total.", "between $5, or $ 6", "a GPU hour is $2.50", r"an escaped \$x\$ stays"):
        html = render_markdown(source)
        assert "<math" not in html and "$" in html, source
    assert "<math" not in text_html("set $GRADER_DATA_DIR or $HOME, costs $5 and $6")


def test_dollars_in_code_spans_and_code_blocks_stay_code():
    html = render_markdown("Run `echo $x$` then\n\n```python\ncost = '$a$'\n```\n\n    indented $b$\n")
    assert "<math" not in html
    assert "<code>echo $x$</code>" in html and "cost = '$a$'" in html and "indented $b$" in html
    message = inline_code("got `$x$` where $\\frac{1}{2}$ was expected")
    assert "<code>$x$</code>" in message and message.count("<math") == 1 and "<mfrac>" in message


@pytest.mark.parametrize("formula", [r"\frac{a", r"\frac{a}", r"x_", r"\notacommand{x}", "{", "$ $"])
def test_a_formula_the_converter_cannot_draw_stays_as_escaped_text(formula):
    assert to_mathml(formula.strip("$")) is None
    html = render_markdown(f"see ${formula.strip('$')}$ <b>here</b>")
    assert "<math" not in html and "&lt;b&gt;here&lt;/b&gt;" in html
    assert "$" in html


@pytest.mark.parametrize(
    "source",
    [
        r"$\text{<script>alert(1)</script>}$",
        r"$\mathrm{<img src=x onerror=alert(1)>}$",
        r"$a <b> c \lt d$",
        r"$\text{&lt;script&gt;}$",
        r"$$\text{</math><script>alert(1)</script>}$$",
        r"$\href{javascript:alert(1)}{x}$",
        r"$\color{red\" onmouseover=\"alert(1)}{x}$",
        r"$\operatorname{<iframe>}$",
        r"\(\text{<style>*{display:none}</style>}\)",
    ],
)
def test_injection_attempts_stay_escaped(source):
    for html in (render_markdown(source), str(text_html(source))):
        elements = parsed(html)
        assert {tag for tag, _ in elements} <= {"p", "math", "mrow", "mi", "mo", "mn", "mtext", "mstyle", "mspace", "mpadded"}, html
        for tag, attributes in elements:
            for name, value in attributes:
                assert name in {
                    "xmlns",
                    "display",
                    "mathcolor",
                    "mathvariant",
                    "width",
                    "stretchy",
                    "fence",
                    "separator",
                    "lspace",
                    "rspace",
                    "form",
                    "movablelimits",
                }, (tag, name, html)
                assert "javascript" not in (value or ""), html
        assert "<script" not in html and "<img" not in html and "<style" not in html and "<iframe" not in html


def test_latex2mathml_copies_text_unescaped_so_its_string_output_is_not_used():
    """Why grader/reports/mathml.py serializes the converter's tree itself: its own string output injects."""
    from latex2mathml.converter import convert

    assert "<script>" in convert(r"\text{<script>}")  # if this ever fails, the converter started escaping
    assert "<mtext>&lt;script&gt;</mtext>" in to_mathml(r"\text{<script>}")


def test_raw_html_in_an_answer_is_still_escaped():
    html = render_markdown("<script>alert(1)</script>\n\n<b>bold</b> $x^2$")
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;" in html and "<msup>" in html


def test_grader_messages_keep_their_code_and_escape_the_rest():
    html = inline_code("`corr2d` returned <b> for $x_{i}$")
    assert isinstance(html, Markup)
    assert html.startswith("<code>corr2d</code> returned &lt;b&gt; for <math ")
    assert "<msub>" in html


def test_the_report_draws_math_and_keeps_its_policy():
    question = r.QuestionResult(
        "ex_output_shape",
        "Output shape of a convolution",
        "manual",
        0.0,
        2.0,
        "the answer should simplify to $\\lfloor\\frac{n-k+p+s}{s}\\rfloor$",
        {"answer": "It is $\\frac{n-k+p+s}{s}$ for $x_{i}$, costing $5 of GPU time."},
        "7.3",
    )
    result = r.GradeResult(
        submission="kim.ipynb",
        sha256="ab" * 32,
        assignment="hw2",
        budget="quick",
        device="cpu",
        grader_version="0.1.0",
        execution=r.ExecutionRecord("ok", "", 1.0, [], []),
        questions=[question],
        sections={"7.3": "Padding and Stride"},
    )
    page = render_report(result, None)
    assert re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1) == POLICY
    card = page.split('id="q-ex_output_shape"')[1].split("</article>")[0]
    assert card.count("<mfrac>") == 2 and "<msub>" in card and "costing $5 of GPU time" in card
    assert "<script" not in page
