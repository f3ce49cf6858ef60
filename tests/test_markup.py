"""Nothing a student writes is markup anywhere (issue 17, item 5).

A student controls a notebook's file name, what its cells print and the messages of the exceptions
they raise. None of it may act on what the grader writes: a terminal must not obey it, an XML
parser must not reject the JUnit file over it, a spreadsheet must not run it as a formula, and a
link in the class summary must stay inside the output folder. Unit tests of
``grader/reports/text_safety.py`` and of each writer first; then one batch of two hostile notebooks
graded through the command line.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import re
import xml.etree.ElementTree as ET
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest

from grader import results as r
from grader.integrations import similarity as sim
from grader.reports import junit
from grader.reports.class_summary import render_summary
from grader.reports.console import print_summary
from grader.reports.gradebook import gradebook_csv
from grader.reports.text_safety import BIDI_CONTROLS, csv_cell, csv_text, json_for_terminal, relative_href, terminal_text, xml_text
from grader.run.progress import BatchProgress, cell_progress

REPO = Path(__file__).resolve().parents[1]
#: What a terminal acts on: ESC, the other C0 controls but newline, DEL and the C1 controls, and the bidi controls.
OBEYED = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f" + "".join(BIDI_CONTROLS) + "]")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def result(submission: str = "a.ipynb", message: str = "", execution: str = "", status: str = "error") -> r.GradeResult:
    """A graded notebook whose name, execution message and one question's message are ``submission``, ``execution``, ``message``."""
    return r.GradeResult(
        submission,
        "0" * 64,
        "hw2",
        "quick",
        "cpu",
        "0.1.0",
        r.ExecutionRecord("error" if execution else "ok", execution, 3.0),
        [r.QuestionResult("corr2d", "corr2d", status, 0.0, 3.0, message), r.QuestionResult("pool2d", "pool2d", "pass", 2.0, 2.0)],
        grading_seconds=3.0,
    )


@pytest.fixture
def plain_terminal(monkeypatch):
    """What rich decides from the environment: no forced colour, so captured output has only the text."""
    for variable in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS"):
        monkeypatch.delenv(variable, raising=False)


# --------------------------------------------------------------------------- terminal


def test_terminal_text_removes_colour_cursor_and_screen_sequences_whole():
    assert terminal_text("\x1b[31mred\x1b[0m \x1b[2J\x1b[1;1Hhome \x1b[?25lhidden \x1b(Bcharset") == "red home hidden charset"


def test_terminal_text_removes_osc_hyperlinks_and_window_titles_keeping_the_visible_text():
    hyperlink = "\x1b]8;;http://evil.example/\x07click\x1b]8;;\x07"
    title = "\x1b]0;you are hacked\x1b\\"
    assert terminal_text(f"{hyperlink} {title}done") == "click done"


def test_terminal_text_removes_c0_and_c1_controls_including_the_8_bit_csi():
    assert terminal_text("a\x00b\x07c\x08d\x7fe\x80f\x9fg") == "abcdefg"
    assert terminal_text("\x9b2J\x9b31mred \x90q\x9cdone") == "red done"


def test_terminal_text_removes_bidi_overrides_isolates_and_marks():
    controls = "".join(chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C])
    assert terminal_text(f"\u202egpj.exe{controls}!") == "gpj.exe!"


def test_terminal_text_makes_a_carriage_return_a_line_break_so_nothing_is_overwritten():
    assert terminal_text("grade: 0/42\rgrade: 42/42") == "grade: 0/42 grade: 42/42"
    assert terminal_text("grade: 0/42\rgrade: 42/42", newlines=True) == "grade: 0/42\ngrade: 42/42"


def test_terminal_text_keeps_newlines_only_where_a_newline_means_something():
    assert terminal_text("row 2: bad\r\nrow 3: bad\u2028row 4\tbad") == "row 2: bad row 3: bad row 4 bad"
    assert terminal_text("row 2: bad\r\nrow 3: bad\u2028row 4\tbad", newlines=True) == "row 2: bad\nrow 3: bad\nrow 4 bad"


def test_terminal_text_cuts_at_the_limit_with_an_ellipsis():
    assert terminal_text("\x1b[31m" + "x" * 20, limit=10) == "x" * 9 + "…"
    assert terminal_text("short", limit=10) == "short"


def test_terminal_text_leaves_ordinary_unicode_alone():
    text = "치환 z = x - u 를 명시하세요 — café, 答：, 😀, [bold] :warning:"
    assert terminal_text(text) == text


def test_the_terminal_summary_shows_rich_markup_and_emoji_codes_in_a_name_literally(plain_terminal):
    printed = io.StringIO()
    print_summary(result("[bold]x[/] [/red] :warning:.ipynb", "[link=http://e.example]y[/link]"), Path("out/x.json"), file=printed)
    text = printed.getvalue()
    assert "[bold]x[/] [/red] :warning:.ipynb" in text and "[link=http://e.example]y[/link]" in text


def test_the_terminal_summary_of_a_hostile_result_has_nothing_a_terminal_obeys(plain_terminal):
    printed = io.StringIO()
    hostile = result("\u202egpj\x1b[2J.ipynb", "bad\x1b]0;title\x07\x9b2J", execution="cell 2 raised \x1b[1mboom\r\x00")
    print_summary(hostile, Path("out/\u202egpj\x1b[2J.json"), file=printed)
    text = printed.getvalue()
    assert not OBEYED.search(text)
    assert "gpj.ipynb" in text and "bad" in text and "boom" in text


def test_a_batch_line_has_nothing_a_terminal_obeys(capsys):
    with BatchProgress(1, enabled=False) as progress:
        progress.line("\u202egpj\x1b[31m.ipynb: 0/42 [error: \x1b]8;;http://e.example\x07x\x1b]8;;\x07\r]")
    assert capsys.readouterr().out == "gpj.ipynb: 0/42 [error: x ]\n"


def test_the_cell_progress_line_shows_the_file_name_without_escapes(capsys):
    show = cell_progress(Path("subs/\x1b[2J\u202egpj.ipynb"), enabled=True)
    show(0, 3)
    assert capsys.readouterr().err == "\rgpj.ipynb: running cell 1/3"


def test_json_for_the_terminal_escapes_c1_and_bidi_controls_and_parses_to_the_same_value():
    value = {"submission": "\u202egpj\x9b2J\u2028.ipynb", "message": "치환 \x85"}
    document = json_for_terminal(json.dumps(value, ensure_ascii=False))
    assert not OBEYED.search(document) and "\u2028" not in document
    assert json.loads(document) == value and "치환" in document


# --------------------------------------------------------------------------- JUnit


@pytest.mark.parametrize("forbidden", ["\x00", "\x08", "\x0b", "\x0c", "\x1f", "\ud800", "\udfff", "\ufffe", "\uffff"])
def test_xml_text_strips_every_character_xml_1_0_forbids(forbidden):
    assert xml_text(f"a{forbidden}b") == "ab"


def test_xml_text_keeps_tabs_newlines_and_characters_beyond_the_bmp():
    assert xml_text("line 1\n\tline 2\r\n😀 치환") == "line 1\n\tline 2\r\n😀 치환"


def test_xml_text_removes_escape_sequences_whole_and_c1_and_bidi_controls():
    assert xml_text("\x1b[1mboom\x1b[0m \x85\x9b\u202e!") == "boom !"


def test_junit_of_hostile_names_and_messages_parses_and_keeps_the_readable_text():
    hostile = result("\x00=evil\ud800\u202e.ipynb", "bad\x00\x0b\ufffe\uffff\ud800 <x>&", execution="boom\x1b[2J\x07")
    suite = ET.fromstring(junit.junit_xml([hostile]).encode("utf-8")).find("testsuite")
    assert suite.get("name") == "=evil.ipynb"
    assert suite.find("testcase/error").get("message") == "bad <x>&"
    assert suite.find("system-err").text == "execution error: boom"


def test_write_junit_refuses_a_document_that_does_not_parse_and_leaves_the_old_file(monkeypatch, tmp_path):
    target = tmp_path / "junit.xml"
    target.write_text("<testsuites/>\n", encoding="utf-8")
    monkeypatch.setattr(junit, "junit_xml", lambda results: "<testsuites><testsuite name='a\x00'></testsuites>")
    with pytest.raises(junit.JUnitError, match="grader bug.*was not written"):
        junit.write_junit([result()], target)
    assert target.read_text(encoding="utf-8") == "<testsuites/>\n"
    assert [p.name for p in tmp_path.iterdir()] == ["junit.xml"]


def test_write_junit_writes_the_document_it_built(tmp_path):
    junit.write_junit([result("a.ipynb", "bad\x00")], tmp_path / "junit.xml")
    assert ET.parse(tmp_path / "junit.xml").getroot().find("testsuite").get("name") == "a.ipynb"


# --------------------------------------------------------------------------- CSV


@pytest.mark.parametrize("start", FORMULA_START)
def test_csv_cell_neutralises_text_starting_with_a_formula_character(start):
    assert csv_cell(f'{start}HYPERLINK("http://evil.example")') == f'\'{start}HYPERLINK("http://evil.example")'


def test_csv_cell_writes_numbers_as_numbers_and_a_negative_number_is_not_neutralised():
    numbers = (-2, -1.5, 38.0, 38.64, 0, 1e20, Decimal("-0.500"))
    assert [csv_cell(v) for v in numbers] == ["-2", "-1.5", "38", "38.64", "0", "100000000000000000000", "-0.500"]


def test_csv_cell_treats_every_string_as_text_even_one_that_looks_like_a_negative_number():
    assert csv_cell("-2") == "'-2"


def test_csv_cell_leaves_text_with_a_formula_character_later_alone_and_none_empty():
    assert (csv_cell("a=b+c"), csv_cell(""), csv_cell(None)) == ("a=b+c", "", "")


def test_csv_text_round_trips_through_the_csv_module():
    rows = list(csv.reader(io.StringIO(csv_text([["=x", 1.5, 'a,"b"\nc']]), newline="")))
    assert rows == [["'=x", "1.5", 'a,"b"\nc']]


def test_the_gradebook_neutralises_a_formula_like_submission_and_keeps_points_numbers():
    rows = list(csv.reader(io.StringIO(gradebook_csv([result('=HYPERLINK("http://evil.example").ipynb', status="fail")]))))
    assert rows[1][0] == '\'=HYPERLINK("http://evil.example").ipynb'
    assert rows[1][2:5] == ["2", "5", "0"] and rows[1][-2:] == ["0", "2"]


def test_similarity_csv_neutralises_formula_like_names_and_writes_the_similarity_as_a_number():
    pair = sim.Pair("=cmd|' /C calc'!A0", "-2", 0.8571, True, 50, reasons=[sim.CODE_REASON])
    rows = list(csv.reader(io.StringIO(sim.similarity_csv([pair]))))
    assert rows[1] == ["'=cmd|' /C calc'!A0", "'-2", "0.857", "yes", "similar code"]


def test_no_module_writes_csv_except_through_csv_text():
    writers = [
        path.name
        for path in sorted((REPO / "grader").rglob("*.py"))
        if re.search(r"csv\.(writer|DictWriter)\(", path.read_text(encoding="utf-8"))
    ]
    assert writers == ["text_safety.py"]


# --------------------------------------------------------------------------- links

HOSTILE_PATHS = [
    "javascript:alert(1).ipynb",
    "../../etc/passwd.ipynb",
    "%2e%2e/x.ipynb",
    "a b#c?.ipynb",
    "new\nline.ipynb",
    "\u202egpj.ipynb",
    "..ipynb",
    "data:text,x.ipynb",
]


def resolves_inside(href: str, folder: Path) -> Path:
    """The file ``href`` opens when the page is in ``folder``; fails if it has a scheme or host or leaves the folder."""
    parts = urlsplit(href)
    assert (parts.scheme, parts.netloc) == ("", ""), href
    target = (folder / unquote(parts.path)).resolve()
    assert target.is_relative_to(folder.resolve()), href
    return target


def test_relative_href_percent_encodes_a_name_into_one_relative_path_segment():
    assert relative_href("javascript:alert(1).html") == "javascript%3Aalert%281%29.html"
    assert relative_href("a b#c?\n\u202e.html") == "a%20b%23c%3F%0A%E2%80%AE.html"
    assert relative_href("%2e%2e.html") == "%252e%252e.html"
    assert relative_href("student_a.html") == "student_a.html"


@pytest.mark.parametrize("name", ["", ".", "..", "a/b.html", "a\0.html"])
def test_relative_href_refuses_what_is_not_a_file_name_in_the_folder(name):
    with pytest.raises(ValueError):
        relative_href(name)


class Links(HTMLParser):
    """Every ``href`` and ``src`` of a page (the executed notebook's own page inside ``srcdoc`` is not parsed)."""

    def __init__(self):
        super().__init__()
        self.hrefs: list[str] = []
        self.srcs: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name == "href":
                self.hrefs.append(value or "")
            elif name == "src":
                self.srcs.append(value or "")


def links(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


def test_the_class_summary_links_each_hostile_name_to_its_own_report_inside_the_folder(tmp_path):
    stems = r.unique_stems([Path(p) for p in HOSTILE_PATHS])
    page = render_summary([(result(p), tmp_path / f"{stem}.json") for p, stem in zip(HOSTILE_PATHS, stems, strict=True)])
    hrefs = links(page).hrefs
    assert len(hrefs) == len(HOSTILE_PATHS)
    assert [resolves_inside(h, tmp_path) for h in hrefs] == [(tmp_path / f"{stem}.html").resolve() for stem in stems]


# --------------------------------------------------------------------------- one hostile batch, end to end

#: Two notebooks a Linux folder can hold (any character but ``/`` and NUL): a formula with an
#: escape sequence, and a right-to-left override with a newline, percent signs, ``#``, ``?`` and markup.
HOSTILE_NAMES = ['=HYPERLINK("evil.example")-\x1b[31m.ipynb', "\u202egpj %2e%2e#?\n[red].ipynb"]
PRINTS_ESCAPES = (
    'print("\\x1b[31mred\\x1b[0m \\x1b]8;;http://evil.example/\\x07link\\x1b]8;;\\x07 '
    '\\u202egpj.exe \\x9b2J [bold]b[/bold] :warning: \\rXX")'
)
#: corr2d raises with characters XML 1.0 forbids: its question is an error whose message carries them.
RAISES_FORBIDDEN = 'def corr2d(X, K):\n    raise ValueError("bad\\x00\\x01\\x0b\\x1b[2J\\ufffe\\uffff \\u202e [red]r[/red] =1+1 </x>&")'
RAISES_ESCAPES = 'raise RuntimeError("\\x1b[1mboom\\x07\\x08\\x0c\\x7f\\x85\\u2066]]>")'


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory, data_dir):
    """The two notebooks graded as a TA would, with everything printed captured: (out folder, output)."""
    from grader.run.cli import main

    folder = tmp_path_factory.mktemp("hostile")
    subs, out = folder / "subs", folder / "out"
    subs.mkdir()
    for name, cells in zip(
        HOSTILE_NAMES, [[PRINTS_ESCAPES, RAISES_FORBIDDEN, RAISES_ESCAPES], [PRINTS_ESCAPES, RAISES_FORBIDDEN]], strict=True
    ):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(notebook, str(subs / name))
    printed = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
        for variable in ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE"):
            patch.delenv(variable, raising=False)
        code = main(
            [
                str(subs),
                "--out",
                str(out),
                "--junit",
                str(out / "junit.xml"),
                "--jobs",
                "2",
                "--budget",
                "quick",
                "--device",
                "cpu",
                "--data-dir",
                str(data_dir),
            ]
        )
    assert code == 0, printed.getvalue()
    graded = [json.loads(p.read_text(encoding="utf-8")) for p in out.glob("*.json")]
    assert len(graded) == 2 and all(g["execution"]["status"] != "crashed" for g in graded), printed.getvalue()
    return out, printed.getvalue()


def test_a_hostile_batch_prints_nothing_a_terminal_obeys(hostile_batch):
    _, printed = hostile_batch
    assert not OBEYED.search(printed), repr(OBEYED.search(printed))
    assert '=HYPERLINK("evil.example")-.ipynb: 0/' in printed and "gpj %2e%2e#? [red].ipynb: 0/" in printed


def test_a_hostile_batchs_junit_parses_and_carries_the_students_message(hostile_batch):
    out, _ = hostile_batch
    suites = ET.parse(out / "junit.xml").getroot().findall("testsuite")
    assert sorted(Path(s.get("name")).name for s in suites) == sorted(xml_text(n) for n in HOSTILE_NAMES)
    errors = [c.find("error") for s in suites for c in s.findall("testcase") if c.get("name") == "corr2d"]
    assert len(errors) == 2 and all(e is not None and "bad  [red]r[/red] =1+1 </x>&" in e.get("message") for e in errors)


def test_a_hostile_batchs_csv_files_start_no_cell_with_a_formula_character(hostile_batch):
    out, _ = hostile_batch
    written = sorted(out.glob("*.csv"))
    assert [p.name for p in written] == ["gradebook.csv", "similarity.csv"]
    cells = [cell for p in written for row in csv.reader(io.StringIO(p.read_text(encoding="utf-8"), newline="")) for cell in row]
    assert not [c for c in cells if c.startswith(FORMULA_START)]
    assert "'" + HOSTILE_NAMES[0].removesuffix(".ipynb") in cells  # the similarity.csv names the stem: neutralised


def test_a_hostile_batchs_pages_link_only_inside_the_output_folder(hostile_batch):
    out, _ = hostile_batch
    pages = sorted(out.glob("*.html"))
    assert len(pages) == 3  # two reports and the class summary
    for page in pages:
        found = links(page.read_text(encoding="utf-8"))
        for href in found.hrefs:
            resolves_inside(href, out)
        assert all(src.startswith("data:image/") for src in found.srcs)
    index = links((out / "index.html").read_text(encoding="utf-8")).hrefs
    assert {resolves_inside(h, out) for h in index} == {p.resolve() for p in pages if p.name != "index.html"}
