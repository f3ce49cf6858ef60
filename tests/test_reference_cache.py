"""Values the grader computes itself are computed once per batch, not once per grading process."""

import json
import subprocess
import sys
import time

import pytest

from grader.checking import reference_cache as stored_module
from grader.checking.reference_cache import key_of, source_hash, stored


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(stored_module, "_MEMORY", {})
    return tmp_path / "cache"


def test_a_value_is_computed_once_and_then_read_back(cache):
    calls = []
    compute = lambda: calls.append(1) or (1.5, 0.5, [2.0, 1.0])  # noqa: E731
    first = stored("runs", {"model": "LeNet"}, compute)
    stored_module._MEMORY.clear()  # as a fresh grading process would start
    second = stored("runs", {"model": "LeNet"}, compute)
    assert calls == [1]
    assert first == second == [1.5, 0.5, [2.0, 1.0]]


def test_another_process_reads_what_this_one_stored(cache):
    stored("runs", {"model": "VGG"}, lambda: [3.0])
    code = "from grader.checking.reference_cache import stored; print(stored('runs', {'model': 'VGG'}, lambda: 1 / 0))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env={"GRADER_CACHE_DIR": str(cache)})
    assert out.stdout.strip() == "[3.0]"


def test_a_process_that_misses_while_another_computes_waits_and_reads_its_value(cache, tmp_path):
    started = tmp_path / "started"
    code = (
        "import pathlib, time; from grader.checking.reference_cache import stored\n"
        f"def compute():\n    pathlib.Path({str(started)!r}).write_text('')\n    time.sleep(1.5)\n    return [4.0]\n"
        "print(stored('runs', {'model': 'DenseNet'}, compute))"
    )
    other = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env={"GRADER_CACHE_DIR": str(cache)})
    deadline = time.monotonic() + 60
    while not started.exists() and time.monotonic() < deadline and other.poll() is None:
        time.sleep(0.02)
    assert started.exists(), "the other process never began computing"
    assert stored("runs", {"model": "DenseNet"}, lambda: 1 / 0) == [4.0]  # waited: computing here would divide by zero
    assert other.communicate(timeout=60)[0].strip() == "[4.0]"


def test_a_stored_null_is_read_back_not_computed_again(cache):
    stored("runs", {"model": "none"}, lambda: None)
    stored_module._MEMORY.clear()
    assert stored("runs", {"model": "none"}, lambda: 1 / 0) is None


def test_different_parts_are_computed_separately(cache):
    assert stored("runs", {"lr": 0.1}, lambda: 1) == 1
    assert stored("runs", {"lr": 0.2}, lambda: 2) == 2


def test_a_corrupt_stored_file_is_computed_again(cache):
    stored("runs", {"model": "ResNet"}, lambda: 1)
    (cache / "runs" / f"{key_of({'model': 'ResNet'})}.json").write_text("{not json")
    stored_module._MEMORY.clear()
    assert stored("runs", {"model": "ResNet"}, lambda: 2) == 2
    assert json.loads((cache / "runs" / f"{key_of({'model': 'ResNet'})}.json").read_text())["value"] == 2


def test_an_unwritable_cache_still_gives_the_value(tmp_path, monkeypatch):
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("GRADER_CACHE_DIR", str(tmp_path / "file" / "cache"))  # a folder below a file cannot exist
    monkeypatch.setattr(stored_module, "_MEMORY", {})
    assert stored("runs", {"x": 1}, lambda: 7) == 7


def test_the_source_hash_changes_when_the_code_does(tmp_path):
    (tmp_path / "models.py").write_text("A = 1\n")
    before = source_hash(tmp_path)
    (tmp_path / "models.py").write_text("A = 2\n")
    assert source_hash(tmp_path) != before
