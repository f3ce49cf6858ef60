"""JUnit XML for CI systems: one ``<testsuite>`` per submission, one ``<testcase>`` per question.

GitHub and GitLab render this format natively, so a course's CI shows each
question of a pull request's notebook as a test.

Most of what the file says is a student's: the notebook's file name, and the
messages of the exceptions their code raised. XML 1.0 forbids some characters
outright (``\\x00``, most C0 controls, U+FFFE, U+FFFF, lone surrogates), and a
CI system that cannot parse the file shows no test at all -- so every attribute
and text goes through :func:`grader.reports.text_safety.xml_text`, and the document is
parsed back before it is written (:func:`write_junit`).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

from grader.errors import GraderError
from grader.reports.text_safety import xml_text
from grader.results import GradeResult, write_atomic

#: A question the grader's environment kept from being graded (``environment``) is an error, never a
#: silent skip: the course's CI must not go green on a notebook nobody graded.
_FAILURE_KIND = {"fail": "failure", "missing": "failure", "error": "error", "environment": "error"}


class JUnitError(GraderError, RuntimeError):
    """The JUnit document the grader built does not parse: a bug in the grader, and nothing was written."""


def _node(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    """A child element whose attributes and text hold only characters XML allows."""
    node = ET.SubElement(parent, tag, {name: xml_text(value) for name, value in attributes.items()})
    if text is not None:
        node.text = xml_text(text)
    return node


def junit_xml(results: Sequence[GradeResult]) -> str:
    suites = ET.Element("testsuites", name="grade")
    for result in results:
        questions = result.questions
        suite = _node(
            suites,
            "testsuite",
            name=result.submission,
            tests=str(len(questions)),
            failures=str(sum(q.status in ("fail", "missing") for q in questions)),
            errors=str(sum(q.status in ("error", "environment") for q in questions)),
            skipped=str(sum(q.pending_ta for q in questions)),
            time=f"{result.execution.seconds:.3f}",
        )
        _node(_node(suite, "properties"), "property", name="score", value=f"{result.score:g}/{result.max_score:g}")
        for q in questions:
            case = _node(
                suite,
                "testcase",
                classname=f"{result.assignment}.{result.submission}",
                name=q.id,
                time=f"{float(q.details.get('seconds', 0.0)):.3f}",
            )
            if q.status in _FAILURE_KIND:
                _node(case, _FAILURE_KIND[q.status], q.message, message=q.message, type=q.status)
            elif q.pending_ta:
                _node(case, "skipped", message="graded by a TA (not graded yet)")
            elif q.status == "manual":
                _node(case, "system-out", f"TA: {q.points:g}/{q.max_points:g}" + (f" -- {q.ta_comment}" if q.ta_comment else ""))
        if result.execution.status != "ok":
            _node(suite, "system-err", f"execution {result.execution.status}: {result.execution.message}")
    return ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def write_junit(results: Sequence[GradeResult], target: Path) -> None:
    """Write the JUnit file of ``results`` to ``target`` atomically, after proving that it parses.

    A document that does not parse is the grader's bug, not the students': :class:`JUnitError` says
    so loudly and ``target`` is left as it was -- a CI system never reads half a file, or a file its
    parser rejects. (``ET.fromstring`` checks what every JUnit consumer needs: well-formed XML 1.0.)
    """
    document = junit_xml(results)
    try:
        ET.fromstring(document.encode("utf-8"))
    except (ET.ParseError, UnicodeEncodeError) as exc:
        raise JUnitError(
            f"grader bug: the JUnit XML built for {len(results)} result(s) does not parse ({exc}); "
            f"{target} was not written -- please report this with the results folder"
        ) from exc
    write_atomic(Path(target), document)
