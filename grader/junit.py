"""JUnit XML for CI systems: one ``<testsuite>`` per submission, one ``<testcase>`` per question.

GitHub and GitLab render this format natively, so a course's CI shows each
question of a pull request's notebook as a test.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence

from grader.results import GradeResult

#: A question the grader's environment kept from being graded (``environment``) is an error, never a
#: silent skip: the course's CI must not go green on a notebook nobody graded.
_FAILURE_KIND = {"fail": "failure", "missing": "failure", "error": "error", "environment": "error"}


def junit_xml(results: Sequence[GradeResult]) -> str:
    suites = ET.Element("testsuites", name="grade")
    for result in results:
        questions = result.questions
        suite = ET.SubElement(
            suites, "testsuite", name=result.submission, tests=str(len(questions)),
            failures=str(sum(q.status in ("fail", "missing") for q in questions)),
            errors=str(sum(q.status in ("error", "environment") for q in questions)),
            skipped=str(sum(q.pending_ta for q in questions)),
            time=f"{result.execution.seconds:.3f}",
        )  # fmt: skip
        ET.SubElement(ET.SubElement(suite, "properties"), "property", name="score", value=f"{result.score:g}/{result.max_score:g}")
        for q in questions:
            case = ET.SubElement(suite, "testcase", classname=f"{result.assignment}.{result.submission}", name=q.id,
                                 time=f"{float(q.details.get('seconds', 0.0)):.3f}")  # fmt: skip
            if q.status in _FAILURE_KIND:
                node = ET.SubElement(case, _FAILURE_KIND[q.status], message=q.message, type=q.status)
                node.text = q.message
            elif q.pending_ta:
                ET.SubElement(case, "skipped", message="graded by a TA (not graded yet)")
            elif q.status == "manual":
                ET.SubElement(case, "system-out").text = f"TA: {q.points:g}/{q.max_points:g}" + (f" -- {q.ta_comment}" if q.ta_comment else "")
        if result.execution.status != "ok":
            ET.SubElement(suite, "system-err").text = f"execution {result.execution.status}: {result.execution.message}"
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"
