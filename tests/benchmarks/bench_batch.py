"""A batch of 20 quick-budget submissions: --jobs 1 vs --jobs 2, Dask local:2 vs --jobs 2, cached regrade, memory.

    python tests/benchmarks/bench_batch.py [--data-dir ../shared/data] [--count 20] [--whole]

The 20 notebooks are copies and variants of the fixture submissions cut
at their first VGG code cell, so a CPU batch takes minutes, not hours (the
notebooks' own VGG and ResNet training is most of a whole notebook's time;
``--whole`` keeps them). The three fixtures as they are, then variants with
an off-by-one ``corr2d``, an average pooling that takes the maximum, or a
cell that raises. Each mode grades the same folder into its own output
folder with ``--force`` and its own empty cache of stored reference runs
(so every mode starts cold, as a TA's first batch does); verdicts must be
identical across modes. Peak memory per job is the
largest resident set of a grading process and of a kernel, sampled.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO.parent / "shared" / "fixtures" / "submissions"

MUTATIONS = [
    ("exact", lambda source: source),
    ("off_by_one", lambda source: source.replace("X.shape[0] - h + 1", "X.shape[0] - h")),
    ("avg_is_max", lambda source: source.replace("X[i: i + p_h, j: j + p_w].mean()", "X[i: i + p_h, j: j + p_w].max()")),
    ("raises", lambda source: source + "\nraise RuntimeError('a stray cell')" if "def corr2d" in source else source),
]


def variants(folder: Path, count: int, whole: bool = False) -> None:
    fixtures = sorted(FIXTURES.glob("*.ipynb"))
    made = 0
    while made < count:
        for mutation, change in MUTATIONS:
            for fixture in fixtures:
                if made == count:
                    return
                nb = nbformat.read(str(fixture), as_version=4)
                if not whole:
                    vgg = (i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "vgg_block" in c.source)
                    nb.cells = nb.cells[: next(vgg, len(nb.cells))]
                for cell in nb.cells:
                    if cell.cell_type == "code":
                        cell.source = change(cell.source)
                nbformat.write(nb, folder / f"{made:02d}-{fixture.stem}-{mutation}.ipynb")
                made += 1


class PeakMemory:
    """Samples the resident memory of grading processes and kernels (from /proc) while a run lasts."""

    def __init__(self):
        self.grader = self.kernel = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for proc in Path("/proc").iterdir():
                try:
                    cmdline = (proc / "cmdline").read_bytes()
                    rss = int((proc / "statm").read_text().split()[1]) * 4096
                except (OSError, ValueError, IndexError):
                    continue
                if b"ipykernel_launcher" in cmdline:
                    self.kernel = max(self.kernel, rss)
                elif b"grader.run.worker" in cmdline:
                    self.grader = max(self.grader, rss)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def run(folder: Path, out: Path, data_dir: str, *extra: str) -> tuple[float, dict]:
    command = [
        sys.executable,
        "-m",
        "grader.run.cli",
        str(folder),
        "--out",
        str(out),
        "--budget",
        "quick",
        "--device",
        "cpu",
        "--data-dir",
        data_dir,
        "--json",
        *extra,
    ]
    env = {**os.environ, "GRADER_CACHE_DIR": str(out.parent / f"cache-{out.name}")}
    start = time.perf_counter()
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=True, env=env)
    seconds = time.perf_counter() - start
    verdicts = {Path(r["submission"]).name: [(q["id"], q["status"]) for q in r["questions"]] for r in json.loads(done.stdout)}
    return seconds, verdicts


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--whole", action="store_true", help="whole notebooks (VGG and ResNet training too): about 3 min each")
    parser.add_argument("--no-jobs-1", action="store_true", help="skip the --jobs 1 run (compare Dask with --jobs 2 only)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "subs"
        folder.mkdir()
        variants(folder, args.count, args.whole)
        print(
            f"{args.count} {'whole' if args.whole else 'cut'} notebooks, quick budget, {len(list(folder.glob('*.ipynb')))} files",
            flush=True,
        )
        one, v1 = (float("nan"), None) if args.no_jobs_1 else run(folder, Path(tmp) / "one", args.data_dir, "--jobs", "1", "--force")
        print(f"--jobs 1: {one:.1f} s", flush=True)
        with PeakMemory() as memory:
            two, v2 = run(folder, Path(tmp) / "two", args.data_dir, "--jobs", "2", "--force")
        print(f"--jobs 2: {two:.1f} s  -> speed-up {one / two:.2f}x over --jobs 1 (target >= 1.6x)", flush=True)
        try:
            dask, v3 = run(folder, Path(tmp) / "dask", args.data_dir, "--scheduler", "local:2", "--force")
            print(f"Dask local:2: {dask:.1f} s  -> {dask / two:.2f}x the time of --jobs 2 (target <= 1.15x)", flush=True)
        except subprocess.CalledProcessError:
            dask, v3 = float("nan"), v2
            print("Dask local:2: not run (install the [cluster] extra)")
        cached, v4 = run(folder, Path(tmp) / "two", args.data_dir, "--jobs", "2")
        print(f"cached regrade of {args.count} graded notebooks: {cached:.2f} s (target < 2 s)")
        print(f"identical verdicts in every mode: {(v1 or v2) == v2 == v3 == v4}")
        print(f"peak memory per job: grading process {memory.grader / 2**20:.0f} MiB, kernel {memory.kernel / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
