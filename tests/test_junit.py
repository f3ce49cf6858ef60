"""JUnit output parses with the standard library and agrees with the result objects."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from grader import results as r
from grader.reports.junit import junit_xml


def result(name: str) -> r.GradeResult:
    return r.GradeResult(
        submission=name,
        sha256="0" * 64,
        assignment="hw2",
        budget="quick",
        device="cpu",
        grader_version="0.1.0",
        execution=r.ExecutionRecord("crashed", "the kernel died in cell 3", 12.5),
        questions=[
            r.QuestionResult("corr2d", "corr2d", "pass", 3, 3, details={"seconds": 0.5}),
            r.QuestionResult("pool2d", "pool2d", "fail", 0, 3, "avg: expected 2, got 4"),
            r.QuestionResult("residual", "Residual", "error", 0, 3, "Residual raised IndexError"),
            r.QuestionResult("lenet_arch", "LeNet", "missing", 0, 3, "`LeNet` is not defined"),
            r.QuestionResult("ex_conv_commutative", "proof", "manual", 0, 2),
        ],
    )


def test_one_suite_per_submission_and_one_case_per_question():
    root = ET.fromstring(junit_xml([result("a.ipynb"), result("b.ipynb")]))
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["a.ipynb", "b.ipynb"]
    assert [c.get("name") for c in suites[0].findall("testcase")] == ["corr2d", "pool2d", "residual", "lenet_arch", "ex_conv_commutative"]


def test_counts_and_messages_agree_with_the_result():
    suite = ET.fromstring(junit_xml([result("a.ipynb")])).find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == ("5", "2", "1", "1")
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert cases["pool2d"].find("failure").get("message") == "avg: expected 2, got 4"
    assert cases["residual"].find("error").get("message") == "Residual raised IndexError"
    assert cases["corr2d"].find("failure") is None and cases["corr2d"].get("time") == "0.500"
    assert suite.find("properties/property").get("value") == "3/12"
    assert "kernel died" in suite.find("system-err").text
