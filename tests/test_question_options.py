"""Question options are a typed vocabulary checked when an assignment loads, and a check sees only what it requires."""

from __future__ import annotations

import shutil
from types import SimpleNamespace

import pytest

from grader.checking.question_context import context_for
from grader.course.assignment import ASSIGNMENTS_DIR, load_assignment
from grader.errors import ConfigError
from grader.run.cli import main

CONFIG = """
name = "tiny"
title = "Tiny"

[[snapshots]]
key = "trained"
after = "fit"
values = {{ state = "1" }}

[[questions]]
id = "arch"
points = 1
defines = ["Net"]

[[questions]]
id = "train"
points = 1
defines = ["Net"]
{extra}
"""

CHECKS = """
OPTIONS = {{"growth": "int"}}{declared}

def check_arch(sub):
    return None


def check_train(sub, ctx):
    return None
"""


def assignment_folder(tmp_path, extra: str, declared: str = ""):
    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.toml").write_text(CONFIG.format(extra=extra), encoding="utf-8")
    (folder / "checks.py").write_text(CHECKS.format(declared=declared), encoding="utf-8")
    return folder


def test_the_grader_s_own_options_and_those_checks_py_declares_load(tmp_path):
    folder = assignment_folder(tmp_path, 'requires = "arch"\nlr = 0.01\nsteps = 5\ngrowth = 32\nfull_snapshot = "trained"')
    question = load_assignment(folder).questions[1]
    assert dict(question.options) == {"requires": "arch", "lr": 0.01, "steps": 5, "growth": 32, "full_snapshot": "trained"}


def test_an_unknown_option_is_an_error_naming_the_file_the_question_and_the_key(tmp_path):
    folder = assignment_folder(tmp_path, "refrence = 'LeNet'")
    with pytest.raises(ConfigError, match=r"config\.toml: question 'train': unknown option 'refrence'"):
        load_assignment(folder)


def test_an_option_of_the_wrong_type_is_an_error(tmp_path):
    folder = assignment_folder(tmp_path, 'steps = "five"')
    with pytest.raises(ConfigError, match=r"question 'train': option 'steps' must be of type int, not 'five'"):
        load_assignment(folder)


def test_a_bool_is_not_an_int(tmp_path):
    with pytest.raises(ConfigError, match="option 'growth' must be of type int"):
        load_assignment(assignment_folder(tmp_path, "growth = true"))


def test_requires_may_name_only_an_earlier_question(tmp_path):
    folder = assignment_folder(tmp_path, "")
    config = folder / "config.toml"
    config.write_text(config.read_text().replace('id = "arch"\npoints = 1', 'id = "arch"\npoints = 1\nrequires = "train"'))
    with pytest.raises(ConfigError, match="question 'arch': requires 'train', which is not a question listed before it"):
        load_assignment(folder)


def test_a_snapshot_option_must_name_a_snapshot(tmp_path):
    with pytest.raises(ConfigError, match="full_snapshot 'trainde' names no \\[\\[snapshots\\]\\] key"):
        load_assignment(assignment_folder(tmp_path, 'full_snapshot = "trainde"'))


def test_checks_py_may_not_redeclare_an_option_the_grader_defines(tmp_path):
    with pytest.raises(ConfigError, match="OPTIONS declares 'lr', which the grader already defines"):
        load_assignment(assignment_folder(tmp_path, "", declared='\nOPTIONS = {"lr": "float"}'))


def test_check_assignment_exits_2_and_names_the_key(tmp_path, capsys):
    folder = assignment_folder(tmp_path, "lrr = 0.1")
    assert main(["check-assignment", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("grade check-assignment: ") and "unknown option 'lrr'" in err


def test_hw2_loads_with_every_option_known():
    hw2 = load_assignment("hw2")
    train = next(q for q in hw2.questions if q.id == "vgg_train")
    assert train.options["requires"] == "vgg_arch" and "reference" not in train.options


def test_a_check_sees_the_verdict_of_a_question_it_requires():
    ctx = context_for("train", {"requires": "arch"}, "quick", {}, "/data", {"arch": SimpleNamespace(status="pass")})
    assert ctx.verdict("arch").status == "pass"


def test_reading_a_verdict_not_required_is_an_error_of_the_checks():
    ctx = context_for("train", {}, "quick", {}, "/data", {"arch": SimpleNamespace(status="pass")})
    with pytest.raises(ConfigError, match="add requires = 'arch'"):
        ctx.verdict("arch")


def test_a_context_is_read_only():
    ctx = context_for("train", {"lr": 0.1}, "quick", {"quick": {"train_size": 10}}, "/data", {})
    with pytest.raises(TypeError):
        ctx.options["lr"] = 1.0  # type: ignore[index]
    assert ctx.budget_settings["train_size"] == 10


def test_a_copied_real_assignment_still_loads(tmp_path):
    shutil.copytree(ASSIGNMENTS_DIR / "hw2", tmp_path / "hw2copy")
    assert len(load_assignment(tmp_path / "hw2copy").questions) == len(load_assignment("hw2").questions)


def test_a_visible_question_s_check_must_be_in_checks_py_not_only_in_the_hidden_file(tmp_path):
    folder = assignment_folder(tmp_path, "")
    checks = (folder / "checks.py").read_text().replace("def check_train(sub, ctx):", "def _unused(sub, ctx):")
    (folder / "checks.py").write_text(checks)
    (folder / "checks_hidden.py").write_text("def check_train(sub, ctx):\n    return None\n")
    with pytest.raises(ConfigError, match=r"checks\.py has no check_<id> for: train"):
        load_assignment(folder)


def test_a_config_that_is_not_toml_is_exit_2_with_the_file_named(tmp_path, capsys):
    folder = assignment_folder(tmp_path, "")
    (folder / "config.toml").write_text("name = \n", encoding="utf-8")
    assert main(["check-assignment", str(folder)]) == 2
    assert "config.toml: not valid TOML" in capsys.readouterr().err


def test_a_question_without_points_is_a_config_error(tmp_path):
    folder = assignment_folder(tmp_path, "")
    config = folder / "config.toml"
    config.write_text(config.read_text().replace('id = "arch"\npoints = 1', 'id = "arch"'), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"question 1: needs an `id` and numeric `points`"):
        load_assignment(folder)
