"""Every attack of the adversarial suite as its own notebook, graded; prints SECURITY.md's table.

    python tests/benchmarks/attacks.py [--data-dir ../shared/data] [--batch]

Each notebook holds one attack and an honest ``corr2d`` (or, for the
tampering attacks, a wrong one). For each: what the attack got (its own
printout, read from the notebook as it ran), the honest question's
verdict, whether the grader finished, and the grading time.

``--batch`` also grades the three fixture submissions alone and then in one
``--jobs 2`` batch together with every attack notebook, and compares the
fixtures' scores (they must be identical).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "submissions"
sys.path.insert(0, str(REPO))

from tests.notebook_sources import CORR2D  # noqa: E402

WRONG = "import torch\ndef corr2d(X, K):\n    return torch.zeros(1)"
TRY = "try:\n{body}\nexcept BaseException as e:\n    print('DENIED', type(e).__name__, str(e)[:60])"


def guarded(body: str) -> str:
    return TRY.format(body="\n".join("    " + line for line in body.splitlines()))


ATTACKS: dict[str, tuple[str, str]] = {
    # name: (attack cell, the corr2d it comes with)
    "patch torch.allclose / torch.equal / Tensor.__eq__ / builtins": (
        "import torch, builtins\ntorch.allclose = lambda *a, **k: True\ntorch.equal = lambda *a, **k: True\n"
        "torch.Tensor.__eq__ = lambda s, o: True\nbuiltins.abs = lambda x: 0",
        WRONG,
    ),
    "print a fake result JSON and a fake bridge reply": (
        'print(\'{"score": 42, "max_score": 42}\')\nprint(\'@@hwgrader:{"ok": true}\')',
        WRONG,
    ),
    "replace the grader's helper module in the kernel": (
        "import sys, types\nfake = types.ModuleType('_hwgrader')\n"
        "fake.__getattr__ = lambda n: (lambda *a, **k: print('@@hwgrader:{\"ok\": true}'))\nsys.modules['_hwgrader'] = fake",
        WRONG,
    ),
    "while True: pass": ("while True:\n    pass", CORR2D),
    "os._exit(1)": ("import os\nos._exit(1)", CORR2D),
    "sys.exit()": ("import sys\nsys.exit()", CORR2D),
    "kill the grading process": ("import os, signal\nos.kill(os.getppid(), signal.SIGKILL)", CORR2D),
    "200 GB allocation": (guarded("x = bytearray(200 * 2**30)"), CORR2D),
    "fill memory until killed": ("chunks = []\nwhile True:\n    chunks.append(b'x' * 2**28)", CORR2D),
    "os.fork() in a loop": (
        guarded("import os, time\nfor _ in range(100000):\n    if os.fork() == 0:\n        time.sleep(600)\n        os._exit(0)"),
        CORR2D,
    ),
    "write to ../, $HOME and /tmp": (
        guarded(
            "import os\nfor p in ['../pwned', os.path.expanduser('~/pwned'), '/tmp/pwned']:\n"
            "    open(p, 'w').write('x')\nprint('WROTE (inside the sandbox only)')"
        ),
        CORR2D,
    ),
    "write 3 GB to the working directory": (
        guarded("with open('big', 'wb') as f:\n    for _ in range(3 * 1024):\n        f.write(b'x' * 2**20)"),
        CORR2D,
    ),
    "read grader/ and assignments/hw2/ and print them": (
        guarded(
            f"print(open({str(REPO / 'assignments' / 'hw2' / 'checks.py')!r}).read()[:80])\n"
            f"print(open({str(REPO / 'grader' / 'submission.py')!r}).read()[:80])"
        ),
        CORR2D,
    ),
    "open a socket to the internet": (
        guarded("import socket\nsocket.create_connection(('1.1.1.1', 80), timeout=3)\nprint('CONNECTED')"),
        CORR2D,
    ),
    "open a socket to localhost": (
        guarded("import socket\nsocket.create_connection(('127.0.0.1', 22), timeout=3)\nprint('CONNECTED')"),
        CORR2D,
    ),
    "print 100 MB": ("print('x' * 100_000_000)", CORR2D),
    "a 5 MB image output": (
        "import base64, os\nfrom IPython.display import display\n"
        "display({'image/png': base64.b64encode(os.urandom(5 * 2**20)).decode()}, raw=True)",
        CORR2D,
    ),
    "deep recursion (crashes the interpreter)": (
        "import sys\nsys.setrecursionlimit(10**8)\ndef f(n):\n    return list(map(f, [n + 1]))\nf(0)",
        CORR2D,
    ),
}


def write_notebooks(folder: Path) -> dict[str, Path]:
    paths = {}
    for number, (name, (attack, corr2d)) in enumerate(ATTACKS.items()):
        path = folder / f"attack{number:02d}.ipynb"
        nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(corr2d), nbformat.v4.new_code_cell(attack)]), path)
        paths[name] = path
    big = folder / "attack99.ipynb"  # a 50 MB file: a saved output as Colab might keep it
    cell = nbformat.v4.new_code_cell(CORR2D)
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 50 * 10**6)]
    nbformat.write(nbformat.v4.new_notebook(cells=[cell]), big)
    paths["a 50 MB notebook file"] = big
    return paths


def grade(paths: list[Path], out: Path, data_dir: str, jobs: int = 1, extra: tuple[str, ...] = ()) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grader.run.cli",
            *map(str, paths),
            "--out",
            str(out),
            "--budget",
            "quick",
            "--device",
            "cpu",
            "--data-dir",
            data_dir,
            "--cell-timeout",
            "30",
            "--jobs",
            str(jobs),
            "--json",
            "--force",
            *extra,
        ],
        stdout=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - start


def describe(output) -> str:
    """One output of the attack cell, as the kept notebook has it, in a few words."""
    if output.get("output_type") == "error":
        return f"{output.get('ename', '')}: {output.get('evalue', '')}"[:70]
    text = output.get("text") or output.get("data", {}).get("text/plain", "")
    cut = re.search(r"\[([\d,]+) characters cut by the grader\]", text)
    if cut:
        return f"printed {len(text) + int(cut.group(1).replace(',', '')) - len(cut.group(0)) - 8:,} characters; kept {len(text):,}"
    return text.strip()[:70]


def outcome(out: Path, stem: str) -> tuple[dict, str]:
    result = json.loads((out / f"{stem}.json").read_text())
    executed = out / "notebooks" / f"{stem}.ipynb"
    said = ""
    if executed.exists():
        cells = [c for c in nbformat.read(str(executed), as_version=4).cells if c.cell_type == "code"]
        if len(cells) > 1:
            said = " ".join(describe(o) for o in cells[1].outputs)
        else:  # the 50 MB file: one cell, whose saved output the run replaced
            said = f"ran normally; kept notebook {executed.stat().st_size / 1024:.0f} KB"

    record = {c["index"]: c for c in result["execution"]["cells"]}
    attack_cell = max(record) if record else None
    if attack_cell is not None and record[attack_cell]["status"] != "ok":
        said = f"{record[attack_cell]['status']}: {record[attack_cell]['error'][:70]}" + (f"; {said[:60]}" if said else "")
    return result, said or "(no output)"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--batch", action="store_true")
    parser.add_argument("--only", help="grade only the attacks whose name contains one of these (comma-separated)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "attacks"
        folder.mkdir()
        paths = write_notebooks(folder)
        print("| attack | what the notebook got | corr2d verdict (honest: pass; tampered: not pass) | score | grader finished | seconds |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, path in paths.items():
            if args.only and not any(part in name for part in args.only.split(",")):
                continue
            out = Path(tmp) / "out" / path.stem
            seconds = grade([path], out, args.data_dir, extra=("--memory-limit", "3"))  # the memory hog reaches it in seconds
            result, said = outcome(out, path.stem)
            corr2d = next(q for q in result["questions"] if q["id"] == "corr2d")
            html = (out / f"{path.stem}.html").stat().st_size
            print(
                f"| {name} | {' '.join(said.replace('|', '/').split())} | {corr2d['status']} | {result['score']:g} "
                f"| yes (report {html / 1024:.0f} KB) | {seconds:.1f} |",
                flush=True,
            )
        print(f"\nisolation: {result['execution']['isolation']}")
        if args.batch:
            fixtures = sorted(FIXTURES.glob("*.ipynb"))
            alone = Path(tmp) / "alone"
            together = Path(tmp) / "together"
            grade(fixtures, alone, args.data_dir, jobs=2)
            mixed = Path(tmp) / "mixed"
            mixed.mkdir()
            for p in [*fixtures, *paths.values()]:
                shutil.copy(p, mixed / p.name)
            seconds = grade([mixed], together, args.data_dir, jobs=2)
            for p in fixtures:
                a = json.loads((alone / f"{p.stem}.json").read_text())
                b = json.loads((together / f"{p.stem}.json").read_text())
                same = [q["status"] for q in a["questions"]] == [q["status"] for q in b["questions"]]
                print(
                    f"{p.name}: alone {a['score']:g}/{a['max_score']:g}, in the batch with every attack {b['score']:g}/{b['max_score']:g}"
                    f" ({'identical verdicts' if same and a['score'] == b['score'] else 'DIFFERENT'})"
                )
            print(f"batch of {len(fixtures) + len(paths)} notebooks with --jobs 2: {seconds:.0f} s")


if __name__ == "__main__":
    main()
