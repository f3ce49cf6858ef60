"""Grading the three fixture submissions together: reports, index, gradebook, JUnit and TA grades agree.

Everything here reads the session's ``fixture_batch`` folder (see
conftest.py), graded once by ``grade FOLDER --jobs 2 --junit --manual``.
"""

from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET

from grader.reports.gradebook import FIXED
from grader.run.cli import main
from tests.conftest import FIXTURES

STEMS = ["solution", "student_a", "student_b"]


def results(out) -> dict[str, dict]:
    return {stem: json.loads((out / f"{stem}.json").read_text(encoding="utf-8")) for stem in STEMS}


def test_the_batch_writes_a_report_and_a_result_per_notebook_and_the_class_files(fixture_batch):
    for stem in STEMS:
        assert (fixture_batch / f"{stem}.json").is_file() and (fixture_batch / f"{stem}.html").is_file()
        assert (fixture_batch / "notebooks" / f"{stem}.ipynb").is_file()
    assert {p.name for p in fixture_batch.glob("*.csv")} == {"gradebook.csv", "similarity.csv"}
    assert (fixture_batch / "index.html").is_file() and (fixture_batch / "junit.xml").is_file()
    assert not list(fixture_batch.glob(".*.tmp"))  # nothing half-written left behind


def test_each_report_shows_the_score_of_its_result(fixture_batch):
    for stem, data in results(fixture_batch).items():
        html = (fixture_batch / f"{stem}.html").read_text(encoding="utf-8")
        assert f'<div class="score" id="score">{data["score"]:g} / {data["max_score"]:g}' in html
        assert all(f'id="q-{q["id"]}"' in html for q in data["questions"])


def test_the_gradebook_agrees_with_the_results(fixture_batch):
    with open(fixture_batch / "gradebook.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    data = results(fixture_batch)
    assert [row["submission"] for row in rows] == [data[s]["submission"] for s in STEMS]
    for row, stem in zip(rows, STEMS, strict=True):
        result = data[stem]
        assert (row["sha256"], float(row["score"]), float(row["max_score"])) == (result["sha256"], result["score"], result["max_score"])
        assert float(row["manual_points_pending"]) == result["manual_points_pending"]
        assert row["execution_status"] == result["execution"]["status"]
        for q in result["questions"]:
            counted = q["status"] != "manual" or q["ta_points"] is not None
            assert row[q["id"]] == (f"{q['points']:g}" if counted else "")
    assert list(rows[0])[: len(FIXED)] == list(FIXED)


def test_the_junit_file_agrees_with_the_results(fixture_batch):
    suites = ET.parse(fixture_batch / "junit.xml").getroot().findall("testsuite")
    data = results(fixture_batch)
    assert [s.get("name") for s in suites] == [data[stem]["submission"] for stem in STEMS]
    for suite, stem in zip(suites, STEMS, strict=True):
        questions = data[stem]["questions"]
        assert int(suite.get("tests")) == len(questions)
        failing = {c.get("name") for c in suite.findall("testcase") if c.find("failure") is not None or c.find("error") is not None}
        assert failing == {q["id"] for q in questions if q["status"] in ("fail", "missing", "error")}


def test_the_class_summary_links_each_report(fixture_batch):
    index = (fixture_batch / "index.html").read_text(encoding="utf-8")
    assert sorted(re.findall(r'<a href="([^"]+\.html)"', index)) == sorted({f"{stem}.html" for stem in STEMS})
    assert "3 submissions" in index


def test_the_tas_points_reach_the_result_the_report_and_the_gradebook(fixture_batch):
    student_b = results(fixture_batch)["student_b"]
    proof = next(q for q in student_b["questions"] if q["id"] == "ex_conv_commutative")
    assert (proof["ta_points"], proof["points"], proof["ta_comment"]) == (1.5, 1.5, "치환 z = x - u 를 명시하세요")
    assert (student_b["score"], student_b["max_score"], student_b["manual_points_pending"]) == (39.5, 44, 2)
    html = (fixture_batch / "student_b.html").read_text(encoding="utf-8")
    assert "<strong>1.5</strong> / 2" in html and "치환 z = x - u 를 명시하세요" in html
    gradebook = (fixture_batch / "gradebook.csv").read_text(encoding="utf-8")
    assert "39.5,44,2,ok" in gradebook


def test_a_grades_file_naming_an_unknown_question_is_an_error_naming_the_row(fixture_batch, tmp_path, data_dir, capsys):
    grades = tmp_path / "grades.csv"
    grades.write_text("submission,question,points,comment\nstudent_a,ex_conv_commutative,2,\nstudent_a,ex_typo,1,\n", encoding="utf-8")
    before = (fixture_batch / "student_a.json").read_bytes()
    code = main(
        [
            str(FIXTURES),
            "--out",
            str(fixture_batch),
            "--budget",
            "quick",
            "--device",
            "cpu",
            "--data-dir",
            str(data_dir),
            "--manual",
            str(grades),
        ]
    )  # every result is cached: nothing is regraded
    assert code == 2
    assert f"{grades}, row 3: student_a has no question 'ex_typo'" in capsys.readouterr().err
    assert (fixture_batch / "student_a.json").read_bytes() == before
