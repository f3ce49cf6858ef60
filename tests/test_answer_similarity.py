"""Pairs flagged for other reasons than code (grader/integrations/answer_similarity.py): identical files, alike written answers.

No notebook is graded here: the fixtures are copied and read, and the answers a grading would have
found are set into hand-made results.
"""

from __future__ import annotations

import csv
import shutil

import nbformat
import pytest

from grader import results as r
from grader.course.assignment import load_assignment
from grader.integrations import answer_similarity as ans
from grader.integrations import similarity as sim
from grader.reports.class_summary import shown_count, write_summary
from grader.run.batch import Job
from tests.conftest import FIXTURES

KOREAN = "합성곱은 교환 법칙이 성립한다. 변수를 z = x - u 로 치환하면 적분 범위는 그대로이고, 두 함수의 순서만 바뀐다."
KOREAN_RESPACED = "합성곱은  교환법칙이 성립한다!  변수를 z=x-u로 치환하면, 적분 범위는 그대로이고 두 함수의 순서만 바뀐다"
CHINESE = "卷积满足交换律：令 z = x − u，积分区间不变，只是两个函数交换了位置。"
CHINESE_FULL_WIDTH = "卷积满足交换律:令ｚ＝ｘ−ｕ, 积分区间不变, 只是两个函数交换了位置!"
ENGLISH = (
    "Max-pooling is not linear: for the window (1, 0) and (0, 1) the maxima add to 2, while the maximum of the sum "
    "is 1, so no convolution, which is linear, can compute it."
)


def hand_ins(*answers: dict[str, str]) -> list[ans.HandIn]:
    return [ans.HandIn(f"s{i}", f"{i:064x}", a) for i, a in enumerate(answers)]


def reasons(found: dict, a: str = "s0", b: str = "s1") -> list[str]:
    return [m.reason for m in found.get(frozenset((a, b)), [])]


# --------------------------------------------------------------------------- the rules


def test_the_same_korean_answer_with_other_spacing_and_punctuation_is_identical():
    found = ans.matches(hand_ins({"ex_conv_commutative": KOREAN}, {"ex_conv_commutative": KOREAN_RESPACED}))
    assert reasons(found) == ["identical answer to ex_conv_commutative"]


def test_the_same_chinese_answer_in_full_width_characters_is_identical():
    found = ans.matches(hand_ins({"ex_conv_commutative": CHINESE}, {"ex_conv_commutative": CHINESE_FULL_WIDTH}))
    assert reasons(found) == ["identical answer to ex_conv_commutative"]


@pytest.mark.parametrize("short", ["yes", "2", "네, 그렇다.", "k1 + k2 - 1", "Max-pooling is not linear."])
def test_short_identical_answers_are_never_a_reason(short):
    assert ans.matches(hand_ins({"ex": short}, {"ex": short})) == {}


def test_an_answer_with_a_few_words_changed_is_near_identical_with_its_ratio():
    edited = ENGLISH.replace("no convolution", "not one convolution").replace("can compute it", "computes it")
    (match,) = ans.matches(hand_ins({"ex_maxpool_not_conv": ENGLISH}, {"ex_maxpool_not_conv": edited}))[frozenset(("s0", "s1"))]
    assert match.kind == "near-identical answer" and ans.NEAR_RATIO <= match.ratio < 1.0
    assert match.reason == f"near-identical answer to ex_maxpool_not_conv ({match.ratio:.0%} alike)"


def test_two_answers_written_independently_are_not_alike():
    other = (
        "Pooling takes the largest entry of each window; a convolution only adds weighted entries, and a sum of "
        "weighted entries cannot pick the largest of them for every input."
    )
    assert ans.matches(hand_ins({"ex_maxpool_not_conv": ENGLISH}, {"ex_maxpool_not_conv": other})) == {}


def test_the_same_text_answering_two_different_questions_is_not_a_reason():
    assert ans.matches(hand_ins({"ex_a": ENGLISH}, {"ex_b": ENGLISH})) == {}


def test_lines_of_the_template_and_the_exercise_heading_count_for_nobody():
    statement = "### Exercise: convolution is symmetric\n\nShow that the convolution of f and g equals that of g and f, for all functions."
    given = {ans.normalized("Show that the convolution of f and g equals that of g and f, for all functions.")}
    found = ans.matches(hand_ins({"ex": statement + "\n\nYes."}, {"ex": statement + "\n\nYes."}), given)
    assert found == {}


def test_identical_files_are_a_reason_and_an_unread_file_matches_nothing():
    same = [ans.HandIn("s0", "ab" * 32), ans.HandIn("s1", "ab" * 32), ans.HandIn("s2", ""), ans.HandIn("s3", "")]
    found = ans.matches(same)
    assert reasons(found) == ["identical files"] and frozenset(("s2", "s3")) not in found


# --------------------------------------------------------------------------- a batch's files


def manual_result(stem: str, answer: str) -> r.GradeResult:
    return r.GradeResult(
        submission=f"subs/{stem}.ipynb",
        sha256="",
        assignment="hw2",
        budget="quick",
        device="cpu",
        grader_version="0.2.0",
        execution=r.ExecutionRecord("ok", ""),
        questions=[r.QuestionResult("ex_conv_commutative", "Exercise", "manual", 0.0, 2.0, "", {"answer": answer, "cell": 3}, "7.1")],
    )


def jobs_of(tmp_path, notebooks: dict[str, object]) -> list[Job]:
    """Jobs of hw2 for ``notebooks`` (stem -> a fixture's path to copy, or a notebook to write)."""
    hw2 = load_assignment("hw2")
    jobs = []
    for stem, source in notebooks.items():
        path = tmp_path / "subs" / f"{stem}.ipynb"
        path.parent.mkdir(exist_ok=True)
        if isinstance(source, nbformat.NotebookNode):
            nbformat.write(source, path)
        else:
            shutil.copyfile(source, path)
        jobs.append(Job(path, stem, hw2, "", tmp_path / f"{stem}.json"))
    return jobs


def test_an_exact_copy_of_a_fixture_is_flagged_for_identical_files_though_its_own_code_is_the_books(tmp_path):
    jobs = jobs_of(tmp_path, {"student_a": FIXTURES / "student_a.ipynb", "copy": FIXTURES / "student_a.ipynb"})
    (pair,) = sim.class_similarity(jobs, tmp_path / "similarity.csv")
    assert pair.similarity < sim.FLAG_THRESHOLD  # the code alone would not flag it
    assert pair.flagged and pair.reasons == ["identical files"]


def test_the_csv_has_a_reason_column_with_every_reason_of_a_pair(tmp_path):
    jobs = jobs_of(tmp_path, {"student_a": FIXTURES / "student_a.ipynb", "copy": FIXTURES / "student_a.ipynb"})
    results = {"student_a": manual_result("student_a", KOREAN), "copy": manual_result("copy", KOREAN)}
    sim.class_similarity(jobs, tmp_path / "similarity.csv", results)
    rows = list(csv.DictReader((tmp_path / "similarity.csv").open(encoding="utf-8")))
    assert rows[0]["flagged"] == "yes"
    assert rows[0]["reason"] == "identical files; identical answer to ex_conv_commutative"


def test_two_notebooks_with_the_same_korean_answer_are_flagged_in_the_csv(tmp_path):
    jobs = jobs_of(tmp_path, {"student_a": FIXTURES / "student_a.ipynb", "student_b": FIXTURES / "student_b.ipynb"})
    results = {"student_a": manual_result("student_a", KOREAN), "student_b": manual_result("student_b", KOREAN_RESPACED)}
    sim.class_similarity(jobs, tmp_path / "similarity.csv", results)
    (row,) = csv.DictReader((tmp_path / "similarity.csv").open(encoding="utf-8"))
    assert (row["flagged"], row["reason"]) == ("yes", "identical answer to ex_conv_commutative")


def test_a_pair_flagged_only_for_its_answers_is_listed_first_even_without_shared_code(tmp_path):
    bare = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("y = 2")])
    jobs = jobs_of(tmp_path, {"one": bare, "two": other, "three": FIXTURES / "student_a.ipynb"})
    results = {"one": manual_result("one", KOREAN), "two": manual_result("two", KOREAN), "three": manual_result("three", ENGLISH)}
    pairs = sim.class_similarity(jobs, None, results)
    assert (pairs[0].submission_a, pairs[0].submission_b, pairs[0].shared, pairs[0].flagged) == ("one", "two", 0, True)
    assert shown_count(pairs) == 1


def test_the_class_summary_shows_the_reason_and_both_answers_side_by_side(tmp_path):
    jobs = jobs_of(tmp_path, {"student_a": FIXTURES / "student_a.ipynb", "student_b": FIXTURES / "student_b.ipynb"})
    results = {"student_a": manual_result("student_a", KOREAN), "student_b": manual_result("student_b", KOREAN_RESPACED)}
    pairs = sim.class_similarity(jobs, None, results)
    write_summary([(results[j.stem], j.target) for j in jobs], tmp_path / "index.html", similarity=pairs)
    page = (tmp_path / "index.html").read_text(encoding="utf-8")
    table = page[page.index('<table id="similar-pairs">') :].split("</table>")[0]
    assert '<td class="left reasons">identical answer to ex_conv_commutative</td>' in table
    assert f'<pre class="answer-a">{KOREAN}</pre>' in page and f'<pre class="answer-b">{KOREAN_RESPACED}</pre>' in page
