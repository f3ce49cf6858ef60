"""``%grade``'s time from the magic to the table, against plain ``grade`` on the same notebook, in one process.

    python tests/benchmarks/bench_magic.py [NOTEBOOK] [--data-dir ../shared/data] [--rounds 1]

``%grade`` runs as a student runs it: a kernel (started here with jupyter_client, as Jupyter starts one) loads the
extension, and ``%grade NOTEBOOK`` is timed from the execute request to the kernel's display of the per-question
table (the grading process's start, its quick-budget grading with the visible checks, reading the result). Plain
``grade`` is :func:`grader.run.api.grade_paths` called here, quick budget, ``--force``. The two alternate, so machine
noise hits both; the machine's load (``os.getloadavg``, what ``uptime`` prints) is printed before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

from grader.run.api import grade_paths

REPO = Path(__file__).resolve().parents[2]
DEFAULT = REPO.parent / "shared" / "fixtures" / "submissions" / "solution.ipynb"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def magic_seconds(notebook: Path, env: dict[str, str]) -> tuple[float, str]:
    """Seconds from ``%grade`` to the table's display, and the table's first line."""
    manager, client = start_new_kernel(kernel_name="python3", env=env)
    try:
        client.execute_interactive("%load_ext grader", timeout=60)
        start = time.perf_counter()
        msg_id = client.execute(f"%grade {notebook}")
        while True:
            msg = client.get_iopub_msg(timeout=600)
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            data = msg["content"].get("data", {}) if msg["msg_type"] == "display_data" else {}
            if data.get("text/plain", "").startswith("score"):
                return time.perf_counter() - start, data["text/plain"].splitlines()[0]
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                raise RuntimeError("%grade ended without a table")
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)


def plain_seconds(notebook: Path, out: Path) -> tuple[float, str]:
    start = time.perf_counter()
    outcome = grade_paths([notebook], out=out, budget="quick", force=True, json_output=True)
    result = outcome.results[0]
    return time.perf_counter() - start, f"score {result.score:g}/{result.max_score:g}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("notebook", nargs="?", default=str(DEFAULT))
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    notebook = Path(args.notebook).resolve()
    os.environ["GRADER_DATA_DIR"] = str(Path(args.data_dir).resolve())
    env = dict(os.environ)
    print(f"load average before: {load()} ({os.cpu_count()} cores)")
    magic, plain = [], []
    with tempfile.TemporaryDirectory() as out:
        for _ in range(args.rounds):
            seconds, line = magic_seconds(notebook, env)
            magic.append(seconds)
            print(f"%grade -> table: {seconds:.1f} s ({line}; visible checks)")
            seconds, line = plain_seconds(notebook, Path(out))
            plain.append(seconds)
            print(f"grade (same process, quick, --force): {seconds:.1f} s ({line}; every check)")
    print(f"load average after: {load()}")
    print(f"median: %grade {statistics.median(magic):.1f} s, grade {statistics.median(plain):.1f} s")


if __name__ == "__main__":
    main()
