"""``grade claims``: one line per claim, JSON on request, exit status that CI can use."""

from __future__ import annotations

import json

from grader.run.cli import main


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


def test_no_sandbox_turns_off_only_this_run_and_the_result_says_so(tmp_path, data_dir):
    """--no-sandbox must not leak into the calling process: a later in-process run is sandboxed again."""
    import os

    import nbformat

    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), tmp_path / "a.ipynb")
    args = [
        str(tmp_path / "a.ipynb"),
        "--out",
        str(tmp_path / "out"),
        "--budget",
        "quick",
        "--device",
        "cpu",
        "--data-dir",
        str(data_dir),
        "--no-sandbox",
    ]
    assert main(args) == 0
    assert "GRADER_NO_SANDBOX" not in os.environ
    isolation = json.loads((tmp_path / "out" / "a.json").read_text())["execution"]["isolation"]
    assert isolation.startswith("no sandbox (turned off)")


def test_grade_claims_where_the_claims_are_not_installed_says_why_and_exits_2(capsys, monkeypatch):
    """A student kit leaves reference/claims.py out (it states the answers): a clear error, not a traceback."""
    import sys

    monkeypatch.setitem(sys.modules, "reference.claims", None)  # what an installed kit looks like to an import
    assert main(["claims"]) == 2
    err = capsys.readouterr().err
    assert "reference.claims is not installed here" in err and "student kit leaves the exercise claims out" in err


def test_a_claims_module_that_fails_to_import_is_not_mistaken_for_a_missing_one(tmp_path, monkeypatch):
    import pytest

    from grader.run.api import check_claims

    (tmp_path / "broken_claims.py").write_text("import no_such_dependency_of_the_claims\nCLAIMS = []\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="no_such_dependency_of_the_claims"):
        check_claims(module="broken_claims")


def test_kill_raises_terminated_once_and_a_second_kill_does_not_cut_the_clean_up_short():
    import os
    import signal

    import pytest

    from grader.run.cli import Terminated, sigterm_as_interrupt

    cleaned_up = False
    with pytest.raises(Terminated), sigterm_as_interrupt():
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            pytest.fail("SIGTERM did not raise")  # Python runs the handler before os.kill returns
        finally:
            os.kill(os.getpid(), signal.SIGTERM)  # during the clean-up: ignored
            cleaned_up = True
    assert cleaned_up and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
