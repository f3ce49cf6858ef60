"""Grading overhead and packed throughput: grader / bare for one notebook, notebooks per hour at K per GPU.

    python tests/benchmarks/bench_gpu.py [NOTEBOOK] [--assignment hw2] [--packings 1,4,8] [--copies 8] [--out bench-gpu/] [--skip-bare]

Two measurements, in this one process, so the machine is the same for both:

1. **Overhead.** The notebook graded by ``grade`` exactly as a TA runs it
   (a child process, sandboxed, every check) against plain nbclient running
   the same *budget-prepared* notebook (the budget's preamble and the
   neutralized cells) with nothing else: printed as grader / bare, which
   issue 15 wants at most 1.2 under the full budget on a GPU (``--skip-bare``:
   the grader's run alone, without the bare one, where device time is short).
2. **Packing.** ``--copies`` copies of the notebook graded as one batch with
   ``--jobs-per-gpu K`` for each K of ``--packings`` (on a machine without
   CUDA: ``--jobs K``, quick budget), each from a cold output folder: wall
   time, notebooks per hour, GPU utilisation and memory sampled once a second
   through ``nvidia-smi`` (n/a without it), the load average, and whether every
   copy got the same verdicts as the one graded alone (a packed batch that
   changes a verdict is a failure, whatever its speed).

For the notebook graded alone and for each packing, the seconds of each phase of
one notebook's grading (``GradeResult.phase_seconds``: kernel start with its
sandbox, cells, checks, report...; the median over the packed copies) and what
lay outside them (the grading process's start and imports, the coordinator): where
a packed notebook waits is the phase that grows most from alone to packed.

The budget is ``full`` with CUDA and ``quick`` without (``--budget`` to force).
Figures go to ``OUT/figures.json`` as well as the terminal.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def bare_run(path: Path, budget, device: str) -> float:
    """Plain nbclient on the budget-prepared notebook: no sandbox, no snapshots, no checks."""
    from grader.source.neutralize import neutralize

    notebook, _ = neutralize(nbformat.read(path, as_version=4))
    hide = "import os\nos.environ['CUDA_VISIBLE_DEVICES'] = ''\n" if device == "cpu" else ""
    notebook.cells.insert(0, nbformat.v4.new_code_cell(hide + budget.preamble()))
    with tempfile.TemporaryDirectory() as workdir:
        start = time.perf_counter()
        NotebookClient(notebook, timeout=7200, allow_errors=True, resources={"metadata": {"path": workdir}}).execute()
        return time.perf_counter() - start


class Sampler:
    """GPU utilisation and memory (``nvidia-smi``), and the 1-minute load average, once a second."""

    def __init__(self) -> None:
        self.gpu: list[float] = []
        self.memory: list[float] = []
        self.load: list[float] = []
        self._stop = threading.Event()
        self._smi = shutil.which("nvidia-smi")
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            self.load.append(os.getloadavg()[0])
            if self._smi is None:
                continue
            try:
                out = subprocess.run(
                    [self._smi, "--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits"],
                    capture_output=True,
                    text=True,
                    timeout=5,
                ).stdout
            except (OSError, subprocess.TimeoutExpired):
                continue
            rows = [line.split(",") for line in out.strip().splitlines() if "," in line]
            if rows:
                self.gpu.append(statistics.fmean(float(r[0]) for r in rows))
                self.memory.append(sum(float(r[1]) for r in rows) / 1024)

    def summary(self) -> dict:
        return {
            "gpu_utilisation_mean_percent": round(statistics.fmean(self.gpu), 1) if self.gpu else None,
            "gpu_memory_peak_gib": round(max(self.memory), 1) if self.memory else None,
            "load_average_max": round(max(self.load), 1) if self.load else None,
        }


def grade(paths: list[Path], out: Path, common: list[str], extra: list[str]) -> tuple[float, int]:
    """``grade`` as a TA types it, in a child process; wall seconds and exit status."""
    start = time.perf_counter()
    code = subprocess.run(
        [sys.executable, "-m", "grader.run.cli", "run", *map(str, paths), "--out", str(out), "--force", "--json", *common, *extra],
        stdout=subprocess.DEVNULL,
    ).returncode
    return time.perf_counter() - start, code


def verdicts(out: Path) -> dict[str, tuple]:
    found = {}
    for path in sorted(out.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        found[path.stem] = (data["execution"]["status"], data["score"], tuple((q["id"], q["status"]) for q in data["questions"]))
    return found


def phases(out: Path) -> dict[str, float]:
    """Median seconds of each grading phase over the result files in ``out`` (``grading_seconds`` as ``grading``)."""
    from grader.results import PHASES

    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(out.glob("*.json"))]
    found: dict[str, float] = {}
    for name in (*PHASES, "grading"):
        values = [float(r["grading_seconds"] if name == "grading" else r.get("phase_seconds", {}).get(name, 0.0)) for r in rows]
        if values and any(values):
            found[name] = round(statistics.median(values), 2)
    return found


def outside(found: dict[str, float], wall: float, rounds: int = 1) -> float:
    """What the wall time held besides ``rounds`` notebooks' grading and report one after another (process start, imports, coordinator)."""
    return round(wall - rounds * (found.get("grading", 0.0) + found.get("report", 0.0)), 1)


def phase_line(found: dict[str, float], wall: float, rounds: int = 1) -> str:
    """``kernel_start 1.2 s, cells 40.1 s, ...``, and what the wall time held besides the notebooks' grading and report."""
    parts = [f"{name} {seconds:.1f} s" for name, seconds in found.items() if name not in ("grading", "outside")]
    per = f" ({rounds} rounds of the median notebook)" if rounds > 1 else ""
    return ", ".join(parts) + f"; outside the grading (process start, imports, coordinator){per} {outside(found, wall, rounds):.1f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("notebook", nargs="?", default=str(SHARED / "fixtures/submissions/solution.ipynb"))
    parser.add_argument("--data-dir", default=str(SHARED / "data"))
    parser.add_argument("--assignment", default="hw2", help="the notebook's assignment (default hw2)")
    parser.add_argument("--skip-bare", action="store_true", help="grade the notebook alone without the bare nbclient run")
    parser.add_argument("--budget", choices=["quick", "full"], help="default: full with CUDA, quick without")
    parser.add_argument("--packings", default="1,4,8", help="K values: --jobs-per-gpu K (with CUDA) or --jobs K")
    parser.add_argument("--copies", type=int, default=8, help="notebooks in each packed batch")
    parser.add_argument("--out", default="bench-gpu", help="folder for the graded outputs and figures.json")
    parser.add_argument("--memory-limit", type=float, help="passed to grade (GiB per kernel)")
    args = parser.parse_args()

    from grader.course.assignment import load_assignment
    from grader.course.d2l_budget import Budget

    cuda = cuda_available()
    device = "cuda" if cuda else "cpu"
    budget_name = args.budget or ("full" if cuda else "quick")
    path = Path(args.notebook).resolve()
    out = Path(args.out).resolve()
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    data_dir = Path(args.data_dir).resolve()
    assignment = load_assignment(args.assignment)
    budget = Budget.of(budget_name, data_dir, assignment.budgets)
    common = ["--budget", budget_name, "--device", device, "--data-dir", str(data_dir), "--assignment", args.assignment]
    common += ["--memory-limit", str(args.memory_limit)] if args.memory_limit else []
    figures: dict = {"device": device, "budget": budget_name, "notebook": str(path), "assignment": args.assignment, "cores": os.cpu_count()}
    print(f"device {device}, budget {budget_name}, {os.cpu_count()} cores; notebook {path.name}", flush=True)

    # 1. overhead: one notebook, grader vs bare, alternately (the first run of each warms caches).
    bare = None if args.skip_bare else bare_run(path, budget, device)
    alone, code = grade([path], out / "alone", common, [])
    figures.update(grader_seconds=round(alone, 1), grader_exit=code)
    reference = next(iter(verdicts(out / "alone").values()), None)
    figures["alone_phases"] = phases(out / "alone")
    figures["alone_phases"]["outside"] = outside(figures["alone_phases"], alone)
    if bare is None:
        print(f"one notebook: grade {alone:.1f} s (exit {code}); the bare run skipped", flush=True)
    else:
        figures.update(bare_seconds=round(bare, 1), overhead_ratio=round(alone / bare, 3))
        print(
            f"one notebook: bare nbclient {bare:.1f} s, grade {alone:.1f} s (exit {code}): grader / bare = {alone / bare:.2f}"
            f"{'  (target <= 1.2 under full on a GPU)' if budget_name == 'full' else ''}",
            flush=True,
        )
    print(f"  phases alone: {phase_line(figures['alone_phases'], alone)}", flush=True)

    # 2. packing: K kernels per GPU (or K jobs on the CPU), the same copies each time.
    copies = out / "copies"
    copies.mkdir()
    paths = []
    for i in range(args.copies):
        paths.append(copies / f"copy-{i:02d}.ipynb")
        shutil.copyfile(path, paths[-1])
    figures["packings"] = []
    for k in (int(v) for v in args.packings.split(",") if v.strip()):
        option = ["--jobs-per-gpu", str(k)] if cuda else ["--jobs", str(k)]
        with Sampler() as sampler:
            seconds, code = grade(paths, out / f"packed-{k}", common, option)
        graded = verdicts(out / f"packed-{k}")
        same = reference is not None and len(graded) == len(paths) and all(v == reference for v in graded.values())
        row = {
            "k": k,
            "seconds": round(seconds, 1),
            "exit": code,
            "notebooks_per_hour": round(3600 * len(paths) / seconds, 1),
            "verdicts_as_alone": same,
            **sampler.summary(),
            "phases_median": phases(out / f"packed-{k}"),
        }
        rounds = -(-len(paths) // k)  # K at a time: the copies go in this many rounds
        row["phases_median"]["outside"] = outside(row["phases_median"], seconds, rounds)
        figures["packings"].append(row)
        util = "n/a" if row["gpu_utilisation_mean_percent"] is None else f"{row['gpu_utilisation_mean_percent']}%"
        print(
            f"{'--jobs-per-gpu' if cuda else '--jobs'} {k}: {len(paths)} notebooks in {seconds:.1f} s (exit {code}), "
            f"{row['notebooks_per_hour']} notebooks/hour, GPU utilisation {util}, GPU memory peak "
            f"{row['gpu_memory_peak_gib'] or 'n/a'} GiB, load {row['load_average_max']}; "
            f"verdicts as alone: {'yes' if same else 'NO'}",
            flush=True,
        )
        print(f"  phases of one packed notebook (median of {len(paths)}): {phase_line(row['phases_median'], seconds, rounds)}", flush=True)
    first = figures["packings"][0]["seconds"] if figures["packings"] else None
    for row in figures["packings"]:
        row["speedup_vs_first"] = round(first / row["seconds"], 2) if first else None
        # Throughput against the notebook graded alone (issue 28's measure: 6x at --jobs-per-gpu 8 is the target).
        row["times_solo_throughput"] = round(len(paths) * alone / row["seconds"], 2) if alone else None
        solo = f"{len(paths)} x {alone:.1f} s / {row['seconds']} s"
        print(f"{row['k']} at once: {row['times_solo_throughput']}x the solo throughput ({solo})")
    (out / "figures.json").write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    print(f"figures: {out / 'figures.json'}")


if __name__ == "__main__":
    main()
