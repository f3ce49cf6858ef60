"""``grade claims``: one line per claim, JSON on request, exit status that CI can use."""

from __future__ import annotations

import json

from grader.cli import main


def test_grade_claims_prints_one_line_per_claim_and_exits_zero(capsys):
    assert main(["claims", "conv1x1_is_matmul", "correlation_is_flipped_convolution"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("holds  conv1x1_is_matmul")
    assert out[1].startswith("holds  correlation_is_flipped_convolution")
    assert out[-1] == "2 passed, 0 failed"


def test_grade_claims_json_is_parseable_and_complete(capsys):
    assert main(["claims", "maxpool_is_not_a_convolution", "--json"]) == 0
    (result,) = json.loads(capsys.readouterr().out)
    assert result["name"] == "maxpool_is_not_a_convolution" and result["holds"] is True
    assert result["method"] == "counterexample" and result["cases"] > 0


def test_grade_claims_rejects_an_unknown_claim_with_status_2(capsys):
    assert main(["claims", "no_such_claim"]) == 2
    assert "no_such_claim" in capsys.readouterr().err


def test_grade_claims_exits_one_when_a_claim_fails(monkeypatch, capsys):
    from reference import claims

    failing = lambda: claims.check_composed_kernel_side("k1 + k2")  # noqa: E731
    failing.__name__ = "composed_kernel_side"
    monkeypatch.setattr(claims, "CLAIMS", (failing,))
    assert main(["claims"]) == 1
    assert "FAILS" in capsys.readouterr().out
