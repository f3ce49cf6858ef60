"""HTML reports, the class summary, the gradebook and a TA's manual grades, rendered from result objects.

No kernel runs here: each test builds the result a grading would produce
(every status, every kind of evidence) and reads what the templates make
of it. The same pages opened in a real browser: tests/test_browser.py.
"""

from __future__ import annotations

import csv
import io
import os
import re
import time

import nbformat
import pytest

from grader import results as r
from grader.kernel.shrink import IMAGE_LIMIT, TEXT_LIMIT, shrink_outputs
from grader.reports.class_summary import render_summary, write_summary
from grader.reports.gradebook import FIXED, gradebook_csv
from grader.reports.html_report import ensure_reports, html_path, notebook_path, render_report, write_report
from grader.reports.manual import ManualGradesError, apply_grades, read_grades

PNG_1PX = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
STUDENT_CELL = "import torch\ndef corr2d(X, K):\n    h, w = K.shape\n    return X[h + 100]"


def q(qid: str, status: str, points: float = 0.0, max_points: float = 2.0, message: str = "", section: str = "7.2", **details):
    return r.QuestionResult(qid, f"Title of `{qid}`", status, points, max_points, message, details, section)


def executed_notebook() -> nbformat.NotebookNode:
    """Cell 0 defines a raising corr2d; cell 1 plots (its PNG) and prints HTML with a script, as a student might."""
    plot = nbformat.v4.new_code_cell("trainer.fit(model, data)")
    plot.outputs = [
        nbformat.v4.new_output("display_data", data={"image/png": PNG_1PX, "text/plain": "<Figure>"}),
        nbformat.v4.new_output("display_data", data={"text/html": "<script>document.title='100/100'</script><b>SCORE 100</b>"}),
    ]
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(STUDENT_CELL), plot])


def every_status() -> r.GradeResult:
    layers = [
        {"layer": 0, "student": {"kind": "Conv2d", "shape": [1, 6, 28, 28]}, "reference": {"kind": "Conv2d", "shape": [1, 6, 28, 28]}},
        {"layer": 1, "student": {"kind": "ReLU", "shape": [1, 6, 28, 28]}, "reference": {"kind": "Sigmoid", "shape": [1, 6, 28, 28]}},
        {
            "layer": 2,
            "student": {"kind": "MaxPool2d", "shape": [1, 6, 13, 13]},
            "reference": {"kind": "AvgPool2d", "shape": [1, 6, 14, 14]},
        },
        {"layer": 3, "student": None, "reference": {"kind": "Flatten", "shape": [1, 1176]}},
    ]
    return r.GradeResult(
        submission="subs/kim.ipynb",
        sha256="0123456789abcdef" * 4,
        assignment="hw2",
        budget="quick",
        device="cpu",
        grader_version="0.1.0",
        graded_at="2026-11-22T10:00:00+00:00",
        grading_seconds=12.5,
        sections={"7.2": "Convolutions for Images", "7.5": "Pooling", "7.6": "LeNet", "7.1": "From FC to Conv"},
        execution=r.ExecutionRecord(
            "ok",
            "",
            9.0,
            [
                r.CellRecord(0, "ok", 0.5),
                r.CellRecord(1, "error", 3.0, "ValueError: bad"),
                r.CellRecord(2, "timeout", 5.0, "cell timed out"),
            ],
            [
                r.NeutralizedLine(0, 1, "!pip install d2l==1.0.3", "shell command"),
                r.NeutralizedLine(0, 2, "drive.mount('/content/drive')", "Google Drive"),
            ],
            isolation="bubblewrap sandbox (read-only system, no network, private /tmp); memory 6 GiB (cgroup)",
        ),
        questions=[
            q("conv2d_layer", "pass", 2.0, message="all good"),
            q(
                "corr2d",
                "fail",
                message="corr2d on the book's example: first difference at [0, 1]",
                expected=[[19.0, 25.0], [37.0, 43.0]],
                got=[[19.0, 26.0], [37.0, 43.0]],
                first_difference=[0, 1],
                tolerance={"rtol": 1e-4, "atol": 1e-4},
            ),
            q(
                "corr2d_multi_in",
                "fail",
                message="large output differs",
                expected="(2, 20, 20) tensor",
                got="(2, 20, 20) tensor",
                difference_map={"slice": [0, ":", ":"], "values": [[0.0, 0.5], [2.0, 0.0]]},
            ),
            q(
                "edge_detect",
                "fail",
                message="corr2d(X, K): expected shape (6, 7), got (6, 8)",
                expected_shape=[6, 7],
                got_shape=[6, 8],
                expected=[[0.0] * 7] * 6,
                got=[[0.0] * 8] * 6,
                example="X = [[0.0]], K = [[0.0]]",
            ),
            q(
                "learn_kernel",
                "error",
                message="corr2d raised IndexError: index 101 is out of bounds (cell 0, line 4)",
                exception="IndexError",
                cell=0,
                line=4,
                code="    return X[h + 100]",
                traceback="Traceback ...\nIndexError: index 101",
            ),
            q("pool2d", "missing", message="`pool2d` is not defined", section="7.5"),
            q(
                "lenet_arch",
                "fail",
                message="LeNet: layer 2 (MaxPool2d) outputs (1, 6, 13, 13), expected (1, 6, 14, 14)",
                section="7.6",
                layers=layers,
                first_diverging_layer=2,
            ),
            q(
                "lenet_train",
                "pass",
                3.0,
                3.0,
                "loss 2.3 -> 0.8",
                section="7.6",
                loss_curves={"reference": [2.3, 1.5, 0.8], "student": [2.3, 1.6, 0.8]},
                notebook_cell=1,
                procedure={"optimizer": "adam", "lr": 0.01},
            ),
            q(
                "resnet_train",
                "manual",
                0.0,
                2.0,
                "61.0% validation accuracy after training on 7,000 images; thresholds exist only for 60,000 images, so a TA decides",
                section="7.6",
                validation_accuracy=0.61,
                images=1200,
                train_images=7000,
            ),
            q(
                "ex_conv_commutative",
                "manual",
                section="7.1",
                answer="## 증명\n\n$f*g = g*f$ 는 **치환** z = x - u 로 보인다. <script>alert('x')</script>",
            ),
        ],
    )


@pytest.fixture()
def page() -> str:
    return render_report(every_status(), executed_notebook())


def visible_text(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


def test_the_report_shows_the_score_and_every_question_id(page):
    result = every_status()
    assert f"{result.score:g} / {result.max_score:g}" in page
    for question in result.questions:
        assert f'id="q-{question.id}"' in page


def test_questions_are_grouped_by_section_in_the_books_order(page):
    headings = re.findall(r"<h2>([\d.]+) ", page)
    assert headings == ["7.1", "7.2", "7.5", "7.6"]


def test_a_small_wrong_tensor_is_shown_beside_the_expected_one_with_the_differing_entry_marked(page):
    card = page.split('id="q-corr2d"')[1].split("</article>")[0]
    assert card.count('class="differs"') == 2  # the entry in "expected" and in "got"
    assert '<td class="differs">26</td>' in card and '<td class="differs">25</td>' in card


def test_a_large_difference_is_drawn_as_a_heatmap_image(page):
    card = page.split('id="q-corr2d_multi_in"')[1].split("</article>")[0]
    assert re.search(r'<img class="figure" alt="heat-map of the difference" src="data:image/png;base64,[A-Za-z0-9+/=]{200,}"', card)


def test_a_shape_mismatch_states_both_shapes_and_the_shrunk_example(page):
    card = page.split('id="q-edge_detect"')[1].split("</article>")[0]
    assert "expected <code>[6, 7]</code>, got <code>[6, 8]</code>" in card
    assert "smallest failing example" in card and "X = [[0.0]], K = [[0.0]]" in card


def test_an_error_shows_the_students_cell_with_the_raising_line_marked(page):
    card = page.split('id="q-learn_kernel"')[1].split("</article>")[0]
    marked = re.findall(r'<div class="marked"><span class="ln">(\d+)</span>([^<]*)</div>', card)
    assert marked == [("4", "    return X[h + 100]")]
    assert "<strong>IndexError</strong> in cell 0, line 4" in card and "<summary>traceback</summary>" in card


def test_the_architecture_table_marks_the_first_diverging_layer(page):
    card = page.split('id="q-lenet_arch"')[1].split("</article>")[0]
    diverging = re.findall(r'<tr class="diverges"[^>]*>\s*<td>(\d+)</td>', card)
    assert diverging == ["2"]
    assert 'class="flag">missing</td>' in card  # the student's net stopped a layer early


def test_training_shows_the_graders_loss_curves_and_the_notebooks_own_plot(page):
    card = page.split('id="q-lenet_train"')[1].split("</article>")[0]
    assert 'alt="loss curves measured by the grader" src="data:image/png;base64,' in card
    assert f'src="data:image/png;base64,{PNG_1PX}"' in card


def test_a_manual_answer_is_rendered_markdown_with_the_students_html_escaped(page):
    card = page.split('id="q-ex_conv_commutative"')[1].split("</article>")[0]
    assert "<h2>증명</h2>" in card and "<strong>치환</strong>" in card
    assert "<script>alert" not in card and "&lt;script&gt;alert" in card
    assert "TA points:" in card and "not graded yet" in card


def test_an_accuracy_left_to_a_ta_shows_the_evidence_and_the_ta_box_but_no_answer(page):
    card = page.split('id="q-resnet_train"')[1].split("</article>")[0]
    assert "61.0% validation accuracy after training on 7,000 images" in card and "a TA decides" in card
    assert "TA points:" in card and "not graded yet" in card
    assert "No answer found" not in card


def test_the_report_says_which_isolation_the_kernel_ran_under(page):
    assert '<p id="isolation"><span class="muted">isolation</span> bubblewrap sandbox' in page


def test_neutralized_lines_and_the_time_of_every_cell_are_listed(page):
    assert "!pip install d2l==1.0.3" in page and "drive.mount(&#39;/content/drive&#39;)" in page
    assert page.count('<div class="bar ') == 3
    assert "cell 1 (error): <code>ValueError: bad</code>" in page and "cell 2 (timeout)" in page


def test_the_page_allows_no_script_and_no_request(page):
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page).group(1)
    assert "default-src 'none'" in policy and "script-src" not in policy
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)


def test_the_notebooks_own_html_is_confined_to_a_sandboxed_iframe(page):
    outside = re.sub(r'<iframe[^>]*srcdoc="[^"]*"', "", page)
    assert "SCORE 100" not in outside and "<script>" not in outside
    iframe = re.search(r'<iframe class="notebook" title="executed notebook" sandbox srcdoc="([^"]*)"', page)
    assert iframe and "SCORE 100" in iframe.group(1)


def test_hidden_questions_are_counted_but_never_shown():
    result = every_status()
    result.hidden_questions_not_run = 2
    page = render_report(result, None)
    assert "2 hidden questions not run" in visible_text(page)


def test_an_invalid_notebook_gets_a_report_that_says_why():
    result = r.GradeResult(
        "subs/broken.ipynb",
        "ff" * 32,
        "hw2",
        "quick",
        "cpu",
        "0.1.0",
        r.ExecutionRecord("invalid", "not valid JSON: Expecting value at line 1"),
        [q("corr2d", "error", message="the notebook could not be read: not valid JSON")],
    )
    text = visible_text(render_report(result, None))
    assert "invalid" in text and "not valid JSON: Expecting value at line 1" in text and "0 / 2" in text


def test_a_crashed_grading_gets_a_report_that_says_so():
    result = r.GradeResult(
        "subs/bomb.ipynb",
        "ee" * 32,
        "hw2",
        "quick",
        "cpu",
        "0.1.0",
        r.ExecutionRecord("crashed", "the grading process exited with status -9"),
        [q("corr2d", "error", message="not graded: the grading process exited with status -9")],
    )
    page = render_report(result, None)
    assert '<span class="badge crashed">crashed</span>' in page and "exited with status -9" in page


# --------------------------------------------------------------------------- files beside the results


def test_a_report_is_rendered_again_only_when_its_result_changed(tmp_path):
    json_path = tmp_path / "kim.json"
    result = every_status()
    r.write_result(result, json_path)
    notebook_path(json_path).parent.mkdir()
    nbformat.write(executed_notebook(), notebook_path(json_path))
    assert ensure_reports([(result, json_path)]) == [html_path(json_path)]
    assert ensure_reports([(result, json_path)]) == []
    later = time.time() + 5
    os.utime(json_path, (later, later))
    assert ensure_reports([(result, json_path)]) == [html_path(json_path)]


def test_a_report_without_its_executed_notebook_still_renders(tmp_path):
    json_path = tmp_path / "kim.json"
    write_report(every_status(), json_path)
    html = html_path(json_path).read_text(encoding="utf-8")
    assert 'id="q-corr2d"' in html and "<iframe" not in html


def test_outputs_are_cut_to_a_size_a_report_can_carry():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('x' * 10**6)")])
    nb.cells[0].outputs = [
        nbformat.v4.new_output("stream", name="stdout", text="x" * 10**6),
        nbformat.v4.new_output("display_data", data={"image/png": "A" * (IMAGE_LIMIT + 10)}),
    ]
    cut = shrink_outputs(nb).cells[0].outputs
    assert len(cut[0].text) < TEXT_LIMIT + 200 and "characters cut by the grader" in cut[0].text
    assert "image/png" not in cut[1].data and "removed by the grader" in cut[1].data["text/plain"]
    assert len(nb.cells[0].outputs[0].text) == 10**6  # the original is left alone


# --------------------------------------------------------------------------- gradebook and class summary


def small(name: str, corr2d: str, status: str = "ok") -> r.GradeResult:
    return r.GradeResult(
        f"subs/{name}.ipynb",
        name * 8,
        "hw2",
        "quick",
        "cpu",
        "0.1.0",
        r.ExecutionRecord(status, ""),
        [
            q("corr2d", corr2d, 3.0 if corr2d == "pass" else 0.0, 3.0),
            q("pool2d", "pass", 2.0),
            q("ex_proof", "manual", 0.0, 2.0, section="7.1"),
        ],
        grading_seconds=10.0,
    )


def test_the_gradebook_has_the_fixed_columns_then_one_per_question():
    rows = list(csv.reader(io.StringIO(gradebook_csv([small("a", "pass"), small("b", "fail", "timeout")]))))
    assert rows[0] == [*FIXED, "corr2d", "pool2d", "ex_proof"]
    assert rows[1] == ["subs/a.ipynb", "a" * 8, "5", "5", "2", "ok", "3", "2", ""]
    assert rows[2][:6] == ["subs/b.ipynb", "b" * 8, "2", "5", "2", "timeout"]


def test_the_class_summary_links_every_report_and_flags_execution_problems(tmp_path):
    results = [(small("a", "pass"), tmp_path / "a.json"), (small("b", "fail", "timeout"), tmp_path / "b.json")]
    page = render_summary(results)
    assert '<a href="a.html" title="subs/a.ipynb">a.ipynb</a>' in page and '<a href="b.html" title="subs/b.ipynb">b.ipynb</a>' in page
    problems = page.split('id="problems"')[1].split("</section>")[0]
    assert "b.ipynb" in problems and "a.ipynb" not in problems
    assert 'id="median-time">10.0 s<' in page
    assert page.count('src="data:image/png;base64,') == 2  # the histogram and the pass rates
    nonce = re.search(r"script-src 'nonce-([^']+)'", page).group(1)
    assert f'<script nonce="{nonce}">' in page


def test_the_class_summary_has_a_filter_box_for_its_table_and_no_script_from_elsewhere(tmp_path):
    results = [(small("a", "pass"), tmp_path / "a.json"), (small("b", "fail", "timeout"), tmp_path / "b.json")]
    page = render_summary(results)
    assert '<input type="search" id="gradebook-filter"' in page and ">2 of 2 shown<" in page
    assert 'getElementById("gradebook-filter")' in page and "row.hidden" in page
    assert page.count("<script") == 1 and "src=" not in page.split("<script", 1)[1].split(">", 1)[0]


# --------------------------------------------------------------------------- a TA's manual grades


def grades_file(tmp_path, *rows: str):
    path = tmp_path / "grades.csv"
    path.write_text("submission,question,points,comment\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_manual_grades_are_merged_into_points_and_totals(tmp_path):
    results = {"a": small("a", "pass")}
    path = grades_file(tmp_path, "a.ipynb,ex_proof,1.5,치환이 빠졌어요")
    assert apply_grades(read_grades(path), results, path) == {"a"}
    proof = results["a"].questions[2]
    assert (proof.ta_points, proof.points, proof.ta_comment) == (1.5, 1.5, "치환이 빠졌어요")
    assert (results["a"].score, results["a"].max_score, results["a"].manual_points_pending) == (6.5, 7.0, 0.0)
    assert apply_grades(read_grades(path), results, path) == set()  # applying it again changes nothing


def test_a_ta_grades_an_accuracy_the_grader_left_undecided_like_a_written_answer(tmp_path):
    result = small("a", "pass")
    result.questions.append(q("lenet_train", "manual", 0.0, 3.0, "thresholds exist only for 60,000 images", validation_accuracy=0.8))
    path = grades_file(tmp_path, "a,lenet_train,3,80% on the subset is fine")
    assert apply_grades(read_grades(path), {"a": result}, path) == {"a"}
    assert (result.questions[3].points, result.manual_points_pending) == (3.0, 2.0)


@pytest.mark.parametrize(
    "row, complaint",
    [
        ("a,ex_nothing,1,", "row 2: a has no question 'ex_nothing'"),
        ("a,ex_proof,3,", "row 2: 3 points for 'ex_proof', whose maximum is 2"),
        ("zed,ex_proof,1,", "row 2: no graded submission 'zed'"),
        ("a,corr2d,1,", "row 2: 'corr2d' is auto-graded"),
        ("a,ex_proof,lots,", "row 2: points 'lots' is not a number"),
        ("a,ex_proof,-1,", "row 2: points '-1' must be a number of at least 0"),
    ],
)
def test_a_bad_manual_grade_is_an_error_naming_the_row_and_changes_nothing(tmp_path, row, complaint):
    results = {"a": small("a", "pass")}
    path = grades_file(tmp_path, "a,ex_proof,1,fine", row)
    with pytest.raises(ManualGradesError) as error:
        apply_grades(read_grades(path), results, path)
    assert complaint.replace("row 2", "row 3") in str(error.value)
    assert results["a"].questions[2].ta_points is None


def test_a_grades_file_without_the_header_says_which_columns_are_missing(tmp_path):
    path = tmp_path / "grades.csv"
    path.write_text("who,what\n", encoding="utf-8")
    with pytest.raises(ManualGradesError, match="missing submission, question, points"):
        read_grades(path)


def test_the_class_summary_is_written_again_only_when_a_result_changed(tmp_path):
    results = [(small("a", "pass"), tmp_path / "a.json"), (small("b", "fail"), tmp_path / "b.json")]
    target = tmp_path / "index.html"
    assert write_summary(results, target) is True
    assert write_summary(results, target) is False
    results[1][0].questions[0].status = "pass"
    assert write_summary(results, target) is True
