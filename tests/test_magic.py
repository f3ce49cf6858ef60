"""``%grade`` (issue 30, item 1): which notebook it finds, what it warns of, and what it shows.

The slow test starts a real Jupyter Server (``python -m jupyter_server``) on a free loopback port, opens a session for a
notebook through its REST API (as JupyterLab does when a notebook is opened), and runs ``%load_ext grader`` and
``%grade`` in that session's kernel through jupyter_client, reading the table, the report and the progress off the
kernel's messages. The Colab branch runs with a **stand-in** ``google.colab._message`` module: Colab's own exists only
inside Colab's runtime (no distribution installs it), so the stand-in answers ``blocking_request("get_ipynb")`` the way
Colab's frontend does, with the notebook's JSON under ``"ipynb"``.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import types
import urllib.request
from pathlib import Path

import pytest

from grader.results import ExecutionRecord, GradeResult, QuestionResult, QuestionStatus
from grader.run import magic
from tests.processes import still_running

DEMO = Path(__file__).resolve().parent.parent / "assignments" / "demo" / "solution.ipynb"


def test_the_line_names_at_most_one_notebook_and_any_questions():
    assert magic.parse_line("") == (None, [])
    assert magic.parse_line("relu softmax") == (None, ["relu", "softmax"])
    assert magic.parse_line("'my hw.ipynb' relu") == (Path("my hw.ipynb"), ["relu"])
    with pytest.raises(magic.ConfigError, match="one notebook at most"):
        magic.parse_line("a.ipynb b.ipynb")


def test_a_named_notebook_wins_and_a_missing_one_is_said(tmp_path):
    shutil.copy(DEMO, tmp_path / "mine.ipynb")
    found = magic.find_notebook({"__session__": "/elsewhere/other.ipynb"}, tmp_path / "mine.ipynb", environ={})
    assert (found.path, found.copy) == ((tmp_path / "mine.ipynb").resolve(), False)
    with pytest.raises(magic.NotebookNotFound, match="there is no file"):
        magic.find_notebook({}, tmp_path / "gone.ipynb", environ={})


def test_the_jupyter_session_and_vscode_name_the_file(tmp_path, monkeypatch):
    shutil.copy(DEMO, tmp_path / "mine.ipynb")
    assert magic.find_notebook({"__session__": str(tmp_path / "mine.ipynb")}, None, environ={}).how == "the Jupyter session's notebook"
    monkeypatch.chdir(tmp_path)  # Jupyter Server without a name gives the path from its root; the kernel runs beside the file
    assert magic.find_notebook({}, None, environ={"JPY_SESSION_NAME": "course/mine.ipynb"}).path == (tmp_path / "mine.ipynb").resolve()
    found = magic.find_notebook({"__vsc_ipynb_file__": str(tmp_path / "mine.ipynb")}, None, environ={})
    assert found.how == "the notebook VS Code runs"


def test_without_any_editor_the_magic_asks_for_a_path_and_says_why(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    with pytest.raises(magic.NotebookNotFound) as caught:
        magic.find_notebook({"__session__": "gone.ipynb"}, None, environ={})
    assert magic.ASK_FOR_PATH in str(caught.value) and "'gone.ipynb', which is not a file here" in str(caught.value)


def test_in_colab_the_editors_copy_is_written_to_a_temporary_file(monkeypatch):
    """``google.colab._message`` here is a stand-in: Colab's own exists only in Colab's runtime."""
    notebook = json.loads(DEMO.read_text())
    asked = []

    def blocking_request(kind, request="", timeout_sec=None):
        asked.append(kind)
        return {"ipynb": notebook}

    stand_in = types.ModuleType("google.colab._message")
    stand_in.blocking_request = blocking_request  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "google.colab._message", stand_in)
    found = magic.find_notebook({}, None, environ={})
    assert asked == ["get_ipynb"] and found.copy
    assert json.loads(found.path.read_text()) == notebook
    assert magic.unsaved_warning(found, magic.Executions([0.0, time.time() + 60])) == ""  # the editor's copy is current
    shutil.rmtree(found.path.parent)


def test_in_colab_a_frontend_that_hands_nothing_over_is_said(monkeypatch):
    """A stand-in again (see above): this one answers without the notebook, as a Colab tab being closed would."""
    stand_in = types.ModuleType("google.colab._message")
    stand_in.blocking_request = lambda kind, request="", timeout_sec=None: {}  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "google", types.ModuleType("google"))
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setitem(sys.modules, "google.colab._message", stand_in)
    with pytest.raises(magic.NotebookNotFound, match="Colab did not hand over the notebook"):
        magic.find_notebook({}, None, environ={})


def test_a_file_saved_before_the_last_cell_ran_is_said_to_be_maybe_unsaved(tmp_path):
    path = tmp_path / "mine.ipynb"
    shutil.copy(DEMO, path)
    found = magic.find_notebook({}, path, environ={})
    os.utime(path, (time.time() - 3600, time.time() - 3600))
    executions = magic.Executions()
    executions.pre_run_cell()  # a cell run after the save
    executions.pre_run_cell()  # the cell running %grade
    assert "was last saved before the last cell you ran" in magic.unsaved_warning(found, executions)
    os.utime(path, None)  # saved now
    assert magic.unsaved_warning(found, executions) == ""
    assert magic.unsaved_warning(found, magic.Executions()) == ""  # nothing seen run: nothing to compare


def test_the_table_escapes_messages_and_the_report_keeps_its_own_page_in_a_sandboxed_srcdoc():
    result = GradeResult("x.ipynb", "", "demo", "quick", "cpu", "0", execution=ExecutionRecord("ok"), hidden_questions_not_run=1)
    result.questions = [
        QuestionResult("relu", "", QuestionStatus.PASS, 1, 1),
        QuestionResult("softmax", "", QuestionStatus.FAIL, 0, 2, "<b>rows</b> & sums"),
    ]
    table = magic.table_html(result, [])
    assert "&lt;b&gt;rows&lt;/b&gt; &amp; sums" in table and "<b>" not in table and "1 hidden question(s) not run" in table
    assert magic.table_text(result, ["softmax"]).splitlines()[1].startswith("softmax")
    assert "relu" not in magic.table_text(result, ["softmax"])
    page = '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'"><p title="a&quot;b">x</p>'
    frame = magic.report_iframe(page)
    assert frame.startswith('<iframe sandbox=""') and 'srcdoc="&lt;meta http-equiv=&quot;Content-Security-Policy&quot;' in frame
    assert "&amp;quot;" in frame  # the page's own escapes survive: the browser unescapes the attribute once


# --------------------------------------------------------------------------- a real Jupyter Server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _api(base: str, token: str, path: str, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": f"token {token}", "Content-Type": "application/json"},
        method="GET" if body is None else "POST",
    )
    with urllib.request.urlopen(request, timeout=10) as reply:
        return json.loads(reply.read())


@pytest.fixture
def jupyter_session(tmp_path, data_dir):
    """A Jupyter Server rooted at a folder holding ``mine.ipynb``, a session for it, and a client of its kernel."""
    from jupyter_client import BlockingKernelClient

    root, runtime = tmp_path / "root", tmp_path / "runtime"
    root.mkdir()
    shutil.copy(DEMO, root / "mine.ipynb")
    port, token = _free_port(), "self-check-test-token"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "GRADER_DATA_DIR": str(data_dir)}
    env["TMPDIR"] = str(tmp_path / "tmp")  # the self-check's results folder, inside the test's own
    (tmp_path / "tmp").mkdir()
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", f"--port={port}", "--ip=127.0.0.1", f"--ServerApp.root_dir={root}"]
        + [f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", "--allow-root"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "server.log", "wb"),  # noqa: SIM115 -- the server keeps it until killed
    )
    base = f"http://127.0.0.1:{port}"
    client = None
    try:
        for _ in range(300):
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            try:
                _api(base, token, "/api/status")
                break
            except OSError:
                time.sleep(0.2)
        session = _api(
            base, token, "/api/sessions", {"path": "mine.ipynb", "name": "mine.ipynb", "type": "notebook", "kernel": {"name": "python3"}}
        )
        client = BlockingKernelClient()
        client.load_connection_file(str(runtime / f"kernel-{session['kernel']['id']}.json"))
        client.start_channels()
        client.wait_for_ready(timeout=60)
        yield client, root / "mine.ipynb", tmp_path / "tmp"
    finally:
        if client is not None:
            client.stop_channels()
        server.terminate()  # shuts its kernels down
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _run(client, code: str, timeout: float = 240) -> list[dict]:
    """Run ``code`` in the kernel; every iopub message it caused, until the kernel is idle again."""
    msg_id = client.execute(code)
    messages, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        msg = client.get_iopub_msg(timeout=max(1, deadline - time.monotonic()))
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages
    raise AssertionError(f"{code!r} did not finish in {timeout} s")


@pytest.mark.slow
def test_grade_in_a_jupyter_servers_session_shows_progress_the_table_and_the_report_of_the_saved_file(jupyter_session):
    client, notebook, tmp = jupyter_session
    loaded = _run(client, "%load_ext grader")
    assert not [m for m in loaded if m["msg_type"] == "error"]
    os.utime(notebook, (time.time() - 3600, time.time() - 3600))  # saved an hour before the cell above ran
    messages = _run(client, "%grade")
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert not errors
    stderr = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream" and m["content"]["name"] == "stderr")
    stdout = "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")
    assert "mine.ipynb was last saved before the last cell you ran" in stderr
    assert f"grading {notebook.resolve()} (the Jupyter session's notebook)" in stdout
    progress = [m["content"]["data"]["text/plain"] for m in messages if m["msg_type"] == "update_display_data"]
    assert any(line.endswith(f"running cell {n}/{n}") for line in progress for n in range(1, 20)), progress
    shown = [m["content"]["data"] for m in messages if m["msg_type"] == "display_data"]
    table = next(d for d in shown if "text/html" in d and d["text/plain"].startswith("score"))
    assert table["text/plain"].splitlines()[0] == "score 3/3"  # the visible questions only: the hidden one is not run here
    assert "1 hidden question(s) not run" in table["text/plain"]
    assert [line.split()[:2] for line in table["text/plain"].splitlines()[1:3]] == [["relu", "pass"], ["softmax", "pass"]]
    report = next(d for d in shown if d.get("text/html", "").startswith("<iframe"))
    assert "Content-Security-Policy" in report["text/html"] and 'sandbox=""' in report["text/html"]
    path = Path(report["text/plain"].removeprefix("report: "))
    assert path.is_file() and path.is_relative_to(tmp) and f"report: {path}" in stdout
    result = json.loads(path.with_suffix(".json").read_text())
    assert result["cache_key"].endswith(":visible-only") and result["hidden_questions_not_run"] == 1
    # Only the question asked for is shown; the student's kernel state never decides: a broken relu defined here is not graded.
    _run(client, "def relu(x):\n    return x * 0")
    os.utime(notebook, None)
    again = _run(client, "%grade relu")
    table = next(
        m["content"]["data"] for m in again if m["msg_type"] == "display_data" and m["content"]["data"]["text/plain"].startswith("score")
    )
    assert [line.split()[:2] for line in table["text/plain"].splitlines()[1:]] == [["relu", "pass"], ["1", "hidden"]]


@pytest.mark.skipif(sys.platform == "win32", reason="process groups are POSIX's; Windows terminates the process")
def test_an_interrupted_grade_ends_the_grading_process_and_what_it_started():
    code = (
        "import subprocess, sys, time\n"
        "stubborn = 'import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)'\n"
        "p = subprocess.Popen([sys.executable, '-c', stubborn])\n"
        "print(p.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, start_new_session=True)
    assert process.stdout is not None
    started = int(process.stdout.readline())
    magic.stop(process)
    assert process.returncode is not None
    assert still_running([started], within=10) == []  # a zombie counts as ended: dead, waiting to be reaped
