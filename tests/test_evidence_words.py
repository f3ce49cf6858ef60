"""A question's evidence in a TA's words (grader/reports/evidence_words.py), in the HTML report and in Gradescope's text.

No kernel runs here: the details are those the hw2 fixtures' grading wrote (seeds and losses as one
run gave them), set into hand-made results.
"""

from __future__ import annotations

import json
import re

from grader import results as r
from grader.integrations.gradescope import results_json
from grader.reports.evidence_words import evidence_in_words
from grader.reports.html_report import render_report, write_report
from grader.results import write_result

LENET_LAYERS = [
    {"layer": 0, "student": {"kind": "Conv2d", "shape": [1, 6, 28, 28]}, "reference": {"kind": "Conv2d", "shape": [1, 6, 28, 28]}},
    {"layer": 1, "student": {"kind": "Sigmoid", "shape": [1, 6, 28, 28]}, "reference": {"kind": "Sigmoid", "shape": [1, 6, 28, 28]}},
]
ARCHITECTURE = {
    "layers": LENET_LAYERS,
    "book_parameters": 61706,
    "seed": 951998005,
    "parameters": 61706,
    "compared_modes": ["train", "eval"],
    "seconds": 0.408,
}
FUNCTION = {
    "nin_block(8, 3, 2, 1)": {"seed": 427712884, "parameters": 368, "compared_modes": ["train", "eval"]},
    "nin_block(4, 5, 1, 2)": {"seed": 1834231719, "parameters": 120, "compared_modes": ["train", "eval"]},
    "seconds": 0.151,
}
TRAINING = {
    "procedure": {"optimizer": "adam", "lr": 0.01, "steps": 50, "loss_mode": "train", "seed": 1867764479},
    "student_loss": [2.3678, 1.3809],
    "reference_loss": [2.3678, 1.3809],
    "required_fraction": 0.7,
    "validation_accuracy": 0.332,
    "reference_validation_accuracy": 0.332,
    "validation_images": 500,
    "seed": 1867764479,
    "loss_curves": {"reference": [2.37, 1.9, 1.38], "student": [2.37, 1.9, 1.38]},
    "seconds": 7.371,
}
MESSAGE = "loss 2.368 -> 1.381 (book's model 1.381); validation accuracy 33.2% (book's model 33.2%)"


def passing() -> r.GradeResult:
    question = r.QuestionResult
    return r.GradeResult(
        submission="subs/kim.ipynb",
        sha256="0123456789abcdef" * 4,
        assignment="hw3",
        budget="quick",
        device="cpu",
        grader_version="0.2.0",
        execution=r.ExecutionRecord("ok", ""),
        questions=[
            question("nin_arch", "NiN architecture", "pass", 2.0, 2.0, "", dict(ARCHITECTURE), "8.3"),
            question("nin_block", "NiN block", "pass", 2.0, 2.0, "", dict(FUNCTION), "8.3"),
            question("nin_train", "NiN learns", "pass", 3.0, 3.0, MESSAGE, dict(TRAINING), "8.3"),
            question("mystery", "A check's own key", "pass", 1.0, 1.0, "", {"learned": [1.0215, -0.9591]}, "8.3"),
        ],
    )


def card(page: str, qid: str) -> str:
    return page.split(f'id="q-{qid}"')[1].split("</article>")[0]


def visible(html: str) -> str:
    """What a reader sees without opening anything: the card less its collapsed parts, tags dropped."""
    return re.sub(r"<[^>]+>", " ", re.sub(r"<details[^>]*>.*?</details>", "", html, flags=re.S))


def numbers(html: str) -> str:
    found = re.search(r'<details class="numbers"><summary>the numbers behind this</summary>(.*?)</details>', html, re.S)
    assert found, "no collapsed numbers"
    return found.group(1)


# --------------------------------------------------------------------------- the HTML report


def test_a_passing_architecture_question_says_it_computes_the_books_function_in_a_sentence():
    shown = card(render_report(passing(), None), "nin_arch")
    assert (
        "Same outputs as the book&#39;s model on random weights and inputs, in training and evaluation mode; 61,706 parameters."
        in visible(shown)
    )


def test_a_passing_architecture_question_keeps_its_seed_and_modes_only_in_the_collapsed_numbers():
    shown = card(render_report(passing(), None), "nin_arch")
    assert "compared_modes" not in visible(shown) and "951998005" not in visible(shown)
    assert "compared_modes" in numbers(shown) and "951998005" in numbers(shown) and "61706" in numbers(shown)


def test_a_passing_function_question_names_each_configuration_the_book_was_compared_on():
    shown = card(render_report(passing(), None), "nin_block")
    assert (
        "Same outputs as the book&#39;s <code>nin_block(8, 3, 2, 1)</code> (368 parameters) and "
        "<code>nin_block(4, 5, 1, 2)</code> (120 parameters) on random weights and inputs, in training and evaluation mode."
    ) in shown
    assert "compared_modes" not in visible(shown) and "427712884" not in visible(shown)
    assert "427712884" in numbers(shown) and "compared_modes" in numbers(shown)


def test_a_passing_training_question_says_how_far_the_loss_fell_and_what_accuracy_it_reached():
    shown = card(render_report(passing(), None), "nin_train")
    text = " ".join(visible(shown).split())
    assert "by a fixed procedure (Adam, learning rate 0.01, 50 steps): its loss fell from 2.368 to 1.381" in text
    assert "It reaches 33.2% accuracy on 500 validation images it never saw; the book&#39;s model, trained the same way, 33.2%." in text
    assert "student_loss" not in text and "required_fraction" not in text
    assert "student_loss" in numbers(shown) and "1867764479" in numbers(shown)


def test_a_key_no_sentence_knows_is_still_listed_where_it_was():
    shown = card(render_report(passing(), None), "mystery")
    assert "<dt>learned</dt>" in shown and 'class="numbers"' not in shown and 'class="evidence-words"' not in shown


def test_rendering_the_report_and_gradescope_text_leaves_the_result_file_byte_identical(tmp_path):
    result = passing()
    target = tmp_path / "kim.json"
    write_result(result, target)
    before = target.read_bytes()
    write_report(result, target)
    results_json(result)
    write_result(result, target)
    assert target.read_bytes() == before
    assert json.loads(before)["questions"][0]["details"] == {**ARCHITECTURE}


# --------------------------------------------------------------------------- Gradescope


def test_gradescope_shows_the_same_sentence_with_the_numbers_after_it():
    tests = {t["extra_data"]["id"]: t["output"] for t in results_json(passing())["tests"]}
    output = tests["nin_block"]
    sentence = evidence_in_words("pass", FUNCTION).sentence
    assert sentence in output
    assert output.index(sentence) < output.index("the numbers behind this:") < output.index("427712884")


# --------------------------------------------------------------------------- the sentences


def test_a_model_compared_at_a_smaller_size_says_so_with_the_books_full_size():
    details = {**ARCHITECTURE, "parameters": 22121802, "book_parameters": 128806154}
    assert evidence_in_words("pass", details).sentence.endswith(
        "; compared at a smaller size (22,121,802 parameters), where the book's full model has 128,806,154."
    )


def test_configurations_compared_in_different_modes_say_each_mode():
    details = {
        "Conv2D((1, 2))": {"seed": 1, "parameters": 3, "compared_modes": ["eval"]},
        "Conv2D((2, 3))": {"seed": 1, "parameters": 7, "compared_modes": ["train", "eval"]},
    }
    assert evidence_in_words("pass", details).sentence == (
        "Same outputs as the book's `Conv2D((1, 2))` (3 parameters), in evaluation mode; "
        "`Conv2D((2, 3))` (7 parameters), in training and evaluation mode; each on random weights and inputs."
    )


def test_a_failing_comparison_claims_no_sameness_but_keeps_its_numbers_aside():
    evidence = evidence_in_words("fail", {"seed": 427712884, "parameters": 368, "compared_modes": ["train", "eval"]})
    assert evidence.sentence == ""
    assert evidence.numbers == {"seed": 427712884, "parameters": 368, "compared_modes": ["train", "eval"]} and evidence.other == {}


def test_a_failing_training_question_still_states_the_losses_measured():
    details = {**TRAINING, "student_loss": [2.3678, 2.2]}
    assert "its loss fell from 2.368 to 2.200, the book's model's from 2.368 to 1.381" in evidence_in_words("fail", details).sentence


def test_a_full_budget_accuracy_is_said_with_the_cell_the_images_and_the_threshold():
    details = {
        "validation_accuracy": 0.8912,
        "images": 5000,
        "split": "held-out",
        "train_images": 60000,
        "trained_in_cell": 48,
        "threshold": 0.85,
        "threshold_calibrated_for": 60000,
    }
    assert evidence_in_words("pass", details).sentence == (
        "The model the notebook trained (cell 48, on 60,000 training images) reaches 89.1% accuracy on 5,000 held-out "
        "validation images it never saw. The threshold is 85%, set for 60,000 training images."
    )


def test_a_formula_that_passed_is_said_with_how_it_was_judged():
    evidence = evidence_in_words("pass", {"formula": "k1 + k2 - 1", "method": "symbolic"})
    assert evidence.sentence == "Your formula, read as `k1 + k2 - 1`, simplifies to the book's."


def test_which_cell_was_graded_is_said_unless_the_message_says_it_already():
    details = {"snapshot_cell": 15, "snapshot_reason": "where `conv2d` was trained", "candidate_cells": [10, 15]}
    said = evidence_in_words("pass", details).sentence
    assert said == "Graded the values the notebook had after cell 15 (where `conv2d` was trained); cell 10 could have been graded too."
    assert evidence_in_words("pass", details, message="Graded `conv2d`'s weight after cell 15").sentence == ""


def test_a_known_key_with_a_value_of_another_type_is_listed_as_it_is():
    evidence = evidence_in_words("pass", {"compared_modes": "[3 items not shown]", "seed": "x"})
    assert evidence.sentence == "" and evidence.other == {"compared_modes": "[3 items not shown]", "seed": "x"}
