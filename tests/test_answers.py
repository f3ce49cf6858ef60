"""Finding a manual exercise's prose answer in any language (grader/checking/answers.py).

Each test builds a small notebook with nbformat; the prose is written for these tests. The
questions are the two manual questions of hw2, as its config states them.
"""

from __future__ import annotations

import nbformat
import pytest

from grader.checking.answers import find_answer
from grader.course.assignment import Question, load_assignment
from tests.conftest import FIXTURES

HW2 = load_assignment("hw2")
SYMMETRIC = next(q for q in HW2.questions if q.id == "ex_conv_commutative")
MAXPOOL = next(q for q in HW2.questions if q.id == "ex_maxpool_not_conv")


def notebook(*cells: str) -> nbformat.NotebookNode:
    """Markdown cells, and code cells for sources starting with ``code:``."""
    nb = nbformat.v4.new_notebook()
    for source in cells:
        if source.startswith("code:"):
            nb.cells.append(nbformat.v4.new_code_cell(source[5:]))
        else:
            nb.cells.append(nbformat.v4.new_markdown_cell(source))
    return nb


def without_heading_pattern(question: Question) -> Question:
    """The question with an ``answer_after`` that matches nothing here (or none at all)."""
    options = {k: v for k, v in question.options.items() if k != "answer_after"}
    return Question(question.id, question.title, question.points, question.section, question.kind, options=options)


def test_an_english_answer_below_the_configured_heading_is_found():
    nb = notebook("code:import torch", "### Exercise: convolution is symmetric", "Swap the variables: u = x - z, so both integrals agree.")
    found = find_answer(nb, SYMMETRIC)
    assert "Swap the variables" in found["answer"]
    assert found["cell"] == 1 and found["found_by"] == "configured heading"
    assert "configured heading" in found["note"]


def test_a_korean_answer_below_the_korean_heading_is_found():
    nb = notebook("### 연습: 합성곱의 교환 법칙", "변수를 u = x - z 로 바꾸면 두 적분이 같아진다.")
    found = find_answer(nb, SYMMETRIC)
    assert "변수를" in found["answer"] and found["found_by"] == "configured heading"


def test_a_chinese_answer_under_a_chinese_heading_is_found_by_the_exercise_statement():
    nb = notebook(
        "## 7.1 从全连接层到卷积",
        "code:x = 1",
        "### 练习：证明卷积满足交换律",
        "令 u = x - z，积分变量替换后两边相等，所以卷积是对称的。",
        "## 7.2 图像卷积",
    )
    found = find_answer(nb, SYMMETRIC)
    assert "令 u = x - z" in found["answer"]
    assert found["cell"] == 2 and found["found_by"] == "exercise statement"


def test_a_japanese_answer_under_a_japanese_heading_is_found():
    nb = notebook(
        "## 7.5 プーリング",
        "### 演習：最大プーリングは畳み込みだけでは実現できない",
        "最大値は線形ではないので、畳み込み（線形）の組み合わせでは表せない。",
    )
    found = find_answer(nb, MAXPOOL)
    assert "線形ではない" in found["answer"] and found["found_by"] == "exercise statement"


def test_a_chinese_marker_inside_a_cell_starts_the_answer():
    nb = notebook("## 7.5 汇聚层", "### 练习：最大汇聚层不能只用卷积实现\n\n请给出理由。\n\n答：最大值运算不是线性的，而卷积是线性的。")
    found = find_answer(nb, MAXPOOL)
    assert found["answer"] == "最大值运算不是线性的，而卷积是线性的。"
    assert found["found_by"] == "answer marker" and found["cell"] == 1


def test_a_marker_in_a_japanese_cell_after_a_code_cell_is_the_answer():
    nb = notebook("### 演習 7.5：最大プーリングと畳み込み", "code:print(max(1, 0))", "答え: 最大値は非線形なので、畳み込みでは表せない。")
    found = find_answer(nb, MAXPOOL)
    assert found["answer"] == "最大値は非線形なので、畳み込みでは表せない。"
    assert found["cell"] == 2 and found["found_by"] == "answer marker"


@pytest.mark.parametrize("marker", ["답:", "답변:", "答：", "答:", "回答：", "解答：", "解:", "Answer:", "A:", "**答**：", "答え:"])
def test_every_answer_marker_starts_the_answer(marker):
    nb = notebook("## 7.1 Convolutions", f"### Exercise 7.1\n\nProve it.\n\n{marker} the integrals agree after substitution.")
    found = find_answer(nb, without_heading_pattern(SYMMETRIC))
    assert found["answer"] == "the integrals agree after substitution."


def test_a_marker_by_position_in_the_questions_section_is_found_without_any_exercise_heading():
    nb = notebook("## 7.4 多通道", "答：另一个练习。", "## 7.5 汇聚层", "code:pool = 1", "回答：最大值不是线性运算。")
    found = find_answer(nb, MAXPOOL)
    assert found["answer"] == "最大值不是线性运算。"
    assert found["cell"] == 4 and found["found_by"] == "position"
    assert "section 7.5" in found["note"]


def test_the_question_id_in_a_cell_locates_the_exercise():
    nb = notebook("**Question `ex_maxpool_not_conv`**\n\nMax 不是线性的，卷积是线性的。")
    found = find_answer(nb, without_heading_pattern(MAXPOOL))
    assert "不是线性的" in found["answer"] and found["found_by"] == "exercise statement"


def test_an_exercise_of_another_section_is_not_taken():
    nb = notebook("## 7.1 卷积", "### 练习：卷积与最大汇聚\n\n答：这是 7.1 的答案。", "## 7.5 汇聚层", "没有练习。")
    assert find_answer(nb, MAXPOOL)["answer"] == ""


def test_the_templates_placeholder_is_not_an_answer():
    nb = notebook(
        "**Question `ex_conv_commutative`** Prove it below.",
        "## 7.1 Convolutions\n\n### Exercise: convolution is symmetric, $f * g = g * f$\n\nYOUR ANSWER HERE",
        "## 7.2 Images",
    )
    found = find_answer(nb, SYMMETRIC)
    assert found["answer"] == "" and "found_by" not in found
    assert "not answered yet" in found["note"] and "placeholder" in found["note"]


def test_the_committed_template_reads_not_answered_and_its_solution_gives_the_proof():
    template = nbformat.read(HW2.folder.parent / "hw2.ipynb", as_version=4)
    solution = nbformat.read(HW2.folder / "solution.ipynb", as_version=4)
    for question in (SYMMETRIC, MAXPOOL):
        assert find_answer(template, question)["answer"] == ""
        found = find_answer(solution, question)
        assert "Question `" not in found["answer"] and "affine" in find_answer(solution, MAXPOOL)["answer"]


def test_a_placeholder_left_beside_an_answer_is_dropped_from_it():
    nb = notebook("### Exercise: convolution is symmetric\n\nYOUR ANSWER HERE\n\nSubstituting u = x - z shows it.")
    found = find_answer(nb, SYMMETRIC)
    assert "YOUR ANSWER HERE" not in found["answer"] and "Substituting" in found["answer"]


def test_no_exercise_anywhere_says_what_was_looked_for():
    found = find_answer(notebook("# Notes", "code:x = 1", "卷积很有用。"), MAXPOOL)
    assert found["answer"] == "" and "cell" not in found
    assert "no markdown cell matching" in found["note"] and "section 7.5" in found["note"]


needs_fixtures = pytest.mark.skipif(not FIXTURES.is_dir(), reason=f"no fixtures at {FIXTURES}")
FIXTURE_ANSWERS = [  # what the grader found before answers were looked for in any language
    ("solution", SYMMETRIC, 3, "Substitute $\\mathbf{u}"),
    ("solution", MAXPOOL, 44, "Max-pooling is not affine"),
    ("student_a", SYMMETRIC, 1, "Translation invariance"),
    ("student_a", MAXPOOL, 38, "Exercise: Prove that max-pooling cannot"),
]


@needs_fixtures
@pytest.mark.parametrize(("stem", "question", "cell", "excerpt"), FIXTURE_ANSWERS, ids=lambda v: getattr(v, "id", str(v)))
def test_the_fixtures_answers_are_still_found(stem, question, cell, excerpt):
    found = find_answer(nbformat.read(FIXTURES / f"{stem}.ipynb", as_version=4), question)
    assert found["cell"] == cell and excerpt in found["answer"]
    assert found["found_by"] == "configured heading"


@needs_fixtures
@pytest.mark.parametrize("question", [SYMMETRIC, MAXPOOL], ids=lambda q: q.id)
def test_student_b_who_answered_no_exercise_still_has_no_answer(question):
    assert find_answer(nbformat.read(FIXTURES / "student_b.ipynb", as_version=4), question)["answer"] == ""


def test_a_korean_paragraph_starting_with_the_word_problem_does_not_end_the_answer():
    nb = notebook("### 연습: 합성곱의 교환 법칙", "첫째, 변수를 바꾼다.", "문제는 적분 구간인데, 전체 공간이므로 그대로다.")
    assert "적분 구간" in find_answer(nb, SYMMETRIC)["answer"]
