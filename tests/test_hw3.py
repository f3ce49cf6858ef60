"""HW3 ("Modern CNNs", issue 20): an assignment written only through the public check-author API.

Fast tests: the config loads with the questions and options the course relies on, the checks import nothing
of the grader but ``grader.checks``, the template is what ``grade assign`` makes, and the exercise claims
hold while a mutated twin of each is rejected. Slow (the ``hw3_graded`` fixture, listed in conftest.py): the
notebooks of ``tests/hw3/build.py``, each the solution with one realistic mistake, graded as one batch; each
fails exactly the questions its mistake breaks (and those that ``require`` them) and passes every other one.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import pytest

from grader.course.assignment import load_assignment
from grader.course.template import template_differences
from reference import densenet_claims
from reference.formulas import equivalent
from tests.hw3 import build

HW3 = Path(__file__).resolve().parents[1] / "assignments" / "hw3"
QUESTIONS = (
    "nin_block",
    "nin_arch",
    "inception",
    "inception_unusual",
    "batch_norm_forward",
    "batch_norm_running",
    "batch_norm_grad",
    "batchnorm_layer",
    "bn_lenet_arch",
    "bn_lenet_train",
    "ex_bn_modes",
    "conv_block",
    "dense_block",
    "transition_block",
    "densenet_arch",
    "densenet_train",
    "ex_dense_block_params",
    "ex_densenet_side",
)


# --------------------------------------------------------------------------- the assignment as written


def test_hw3_loads_with_its_stable_question_ids_three_hidden_and_one_manual():
    hw3 = load_assignment("hw3")
    assert tuple(q.id for q in hw3.questions) == QUESTIONS
    assert [q.id for q in hw3.questions if q.hidden] == ["inception_unusual", "ex_dense_block_params", "ex_densenet_side"]
    assert [q.id for q in hw3.questions if q.kind == "manual"] == ["ex_bn_modes"]
    assert hw3.claims_module == "reference.densenet_claims"


def test_training_questions_require_their_architecture_and_carry_a_quick_procedure_and_a_calibrated_threshold():
    questions = {q.id: q for q in load_assignment("hw3").questions}
    for train, arch in (("bn_lenet_train", "bn_lenet_arch"), ("densenet_train", "densenet_arch")):
        options = questions[train].options
        assert options["requires"] == arch
        assert {"input_size", "optimizer", "lr", "steps", "loss_mode", "full_snapshot", "full_input_size"} <= set(options)
        # Only where runs of the solution were recorded (the H200's, tests/test_calibrate.py checks them): no invented bar.
        assert set(options["full_threshold"]) == set(options["full_calibration"]) == {"7000"}


def test_the_running_statistics_option_is_declared_by_the_checks_themselves():
    tree = ast.parse((HW3 / "checks.py").read_text(encoding="utf-8"))
    declared = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign) and ast.unparse(n.targets[0]) == "OPTIONS")
    assert declared == {"running_steps": "int"}
    assert next(q for q in load_assignment("hw3").questions if q.id == "batch_norm_running").options["running_steps"] == 4


@pytest.mark.parametrize("name", ["checks.py", "checks_hidden.py"])
def test_the_checks_import_only_the_public_api_reference_torch_and_hypothesis(name):
    tree = ast.parse((HW3 / name).read_text(encoding="utf-8"))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    grader = {m for m in imported if m == "grader" or m.startswith("grader.")}
    assert grader == {"grader.checks"}
    assert {m.split(".")[0] for m in imported} <= {"__future__", "grader", "reference", "torch", "hypothesis"}


def test_every_auto_graded_question_has_a_check_and_an_instruction_cell_in_the_solution():
    hw3 = load_assignment("hw3")
    solution = json.loads((HW3 / "solution.ipynb").read_text(encoding="utf-8"))
    markdown = "\n".join("".join(c["source"]) for c in solution["cells"] if c["cell_type"] == "markdown")
    for q in hw3.questions:
        assert f"**Question `{q.id}`" in markdown or q.hidden, q.id
    assert solution["metadata"]["grader"]["assignment"] == "hw3"


def test_the_committed_template_is_what_grade_assign_generates():
    assert template_differences(HW3 / "solution.ipynb", HW3.parent / "hw3.ipynb") == []


# --------------------------------------------------------------------------- the exercise claims


def test_every_hw3_claim_holds():
    results = densenet_claims.check_all()
    assert [r.name for r in results if not r.holds] == []
    assert len(results) == len(densenet_claims.CLAIMS) == 4


@pytest.mark.parametrize(
    "check, mutated",
    [
        (densenet_claims.check_dense_block_params, "9*g * (m*c + g*m*(m - 1)/2) + m*g"),  # no BatchNorm gamma, beta
        (densenet_claims.check_dense_block_params_sum, "(9*g + 2) * (m*c + g*m*(m - 1)/2)"),  # no conv biases
        (densenet_claims.check_densenet_side, "floor(n / 32)"),  # the stem's rounding up forgotten
        (densenet_claims.check_densenet_side_nested, "floor(n / 4) // 8"),
    ],
)
def test_a_mutated_claim_is_rejected_with_a_counterexample(check, mutated):
    result = check(mutated)
    assert not result.holds
    assert result.counterexample


@pytest.mark.parametrize("answer", ["ceil(n/4)//8", "(n + 3) // 32", "floor((n+3)/32)"])
def test_the_ways_a_student_writes_the_side_are_all_accepted(answer):
    assert equivalent(answer, densenet_claims.DENSENET_SIDE_FORMULA, ("n",), densenet_claims.DENSENET_SIDE_DOMAIN)


def test_a_differently_arranged_dense_block_count_is_accepted_and_one_off_by_the_biases_is_not():
    truth, domain = densenet_claims.DENSE_BLOCK_PARAMS_FORMULA, densenet_claims.DENSE_BLOCK_PARAMS_DOMAIN
    assert equivalent("m*(2*c + 9*c*g + g) + g*(9*g + 2)*m*(m-1)/2", truth, ("c", "g", "m"), domain)
    assert not equivalent("m*(2*c + 9*c*g) + g*(9*g + 2)*m*(m-1)/2", truth, ("c", "g", "m"), domain)


# --------------------------------------------------------------------------- the wrong notebooks


def test_every_defect_applies_to_the_solution_exactly_once_and_there_are_at_least_six():
    assert len(build.DEFECTS) >= 6
    assert len({d.stem for d in build.DEFECTS}) == len(build.DEFECTS)
    for defect in build.DEFECTS:
        assert defect.fails | defect.may_fail <= set(QUESTIONS) - {"ex_bn_modes"}
        assert not defect.fails & defect.may_fail
        build.build(defect)  # raises when an edit no longer matches the solution


@pytest.fixture(scope="module")
def hw3_graded(tmp_path_factory, data_dir) -> dict[str, dict[str, Any]]:
    """Every wrong notebook graded once, as one batch (quick budget, CPU); the results by stem."""
    from grader.run.cli import main

    folder = tmp_path_factory.mktemp("hw3_wrong")
    out = tmp_path_factory.mktemp("hw3_out")
    build.write_all(folder)
    code = main([str(folder), "--out", str(out), "--jobs", "2", "--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir)])
    assert code == 0
    return {d.stem: json.loads((out / f"{d.stem}.json").read_text(encoding="utf-8")) for d in build.DEFECTS}


@pytest.mark.parametrize("defect", build.DEFECTS, ids=lambda d: d.stem)
def test_a_wrong_notebook_fails_exactly_the_questions_its_mistake_breaks(hw3_graded, defect):
    statuses = {q["id"]: q["status"] for q in hw3_graded[defect.stem]["questions"]}
    assert set(statuses) == set(QUESTIONS)
    assert statuses.pop("ex_bn_modes") == "manual"
    failing = {qid for qid, status in statuses.items() if status != "pass"}
    assert failing - defect.may_fail == defect.fails


@pytest.mark.parametrize("defect", build.DEFECTS, ids=lambda d: d.stem)
def test_a_wrong_notebooks_message_names_what_to_change(hw3_graded, defect):
    messages = {q["id"]: q.get("message", "") for q in hw3_graded[defect.stem]["questions"]}
    for qid, word in defect.says:
        assert word.lower() in messages[qid].lower(), (qid, messages[qid])


@pytest.mark.parametrize("defect", [d for d in build.DEFECTS if "bn_lenet_train" in d.fails], ids=lambda d: d.stem)
def test_a_training_question_whose_architecture_failed_says_so_instead_of_training(hw3_graded, defect):
    train = next(q for q in hw3_graded[defect.stem]["questions"] if q["id"] == "bn_lenet_train")
    assert "bn_lenet_arch" in train["message"]
