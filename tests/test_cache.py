"""A rerun grades only what changed: results carry a key of everything a verdict depends on."""

from __future__ import annotations

import json
import subprocess
import sys

import nbformat

from grader.run.cli import main


def write_notebook(path, source: str) -> None:
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)]), path)


def grade(folder, out, data_dir, *extra) -> int:
    return main([str(folder), "--out", str(out), "--budget", "quick", "--device", "cpu", "--data-dir", str(data_dir), *extra])


def test_a_rerun_reuses_unchanged_results_and_regrades_changed_ones(tmp_path, data_dir, capsys):
    subs, out = tmp_path / "subs", tmp_path / "reports"
    subs.mkdir()
    write_notebook(subs / "a.ipynb", "x = 1")
    write_notebook(subs / "b.ipynb", "y = 2")
    assert grade(subs, out, data_dir) == 0
    first = {name: (out / f"{name}.json").read_text() for name in ("a", "b")}
    capsys.readouterr()

    write_notebook(subs / "b.ipynb", "y = 3")
    assert grade(subs, out, data_dir) == 0
    printed = capsys.readouterr().out
    assert "a.ipynb: unchanged since it was graded" in printed
    assert "b.ipynb: unchanged" not in printed
    assert (out / "a.json").read_text() == first["a"]
    assert json.loads((out / "b.json").read_text())["cache_key"] != json.loads(first["b"])["cache_key"]


def test_force_regrades_everything(tmp_path, data_dir, capsys):
    subs, out = tmp_path / "subs", tmp_path / "reports"
    subs.mkdir()
    write_notebook(subs / "a.ipynb", "x = 1")
    assert grade(subs, out, data_dir) == 0
    capsys.readouterr()
    assert grade(subs, out, data_dir, "--force") == 0
    assert "unchanged" not in capsys.readouterr().out


def test_a_half_written_or_foreign_result_file_is_regraded(tmp_path, data_dir, capsys):
    subs, out = tmp_path / "subs", tmp_path / "reports"
    subs.mkdir()
    out.mkdir()
    write_notebook(subs / "a.ipynb", "x = 1")
    (out / "a.json").write_text('{"schema_version": 1, "subm', encoding="utf-8")
    assert grade(subs, out, data_dir) == 0
    assert "unchanged" not in capsys.readouterr().out
    assert json.loads((out / "a.json").read_text())["schema_version"] == 1


def test_a_rerun_with_nothing_to_grade_does_not_import_torch(tmp_path, data_dir):
    """What keeps a cached regrade of a class under two seconds (tests/benchmarks/bench_batch.py measures it)."""
    subs, out = tmp_path / "subs", tmp_path / "reports"
    subs.mkdir()
    write_notebook(subs / "a.ipynb", "x = 1")
    assert grade(subs, out, data_dir) == 0
    code = (
        "import sys; from grader.run.cli import main; "
        f"main({[str(subs), '--out', str(out), '--budget', 'quick', '--device', 'cpu', '--data-dir', str(data_dir), '--json']!r}); "
        "print('torch' in sys.modules, 'rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is not None, file=sys.stderr)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stderr.split()[-2:] == ["False", "False"]
