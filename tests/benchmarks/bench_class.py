"""A class of N submissions graded three ways: --jobs 2, Dask local:2, and a one-node SLURM (issue 31).

    python tests/benchmarks/bench_class.py [--count 300] [--data-dir ../shared/data] [--modes jobs,dask,slurm]

The class (tests/class_notebooks.py) is the fixture hand-ins cut before LeNet, in four mutations each, with a
hostile notebook every 50th (a kernel that kills itself, a flood of output, a look at the home folder), so one
grades in seconds. Each mode grades the same folder cold (``--force``, its own output folder and cache of
reference runs) with ``grade`` in a child process, and this prints per mode: wall time, notebooks per hour,
the coordinator's peak resident memory (VmHWM), the seconds spent writing the class-wide files (gradebook,
similarity, summary: ``write_outputs``), the summary page's size -- and each mode's ratios to the ``--jobs 2``
run of the same process. Verdicts must be identical in every mode. ``slurm`` starts a one-node SLURM
(tests/slurm_node.py: root and Debian's slurmctld/slurmd/munge) unless ``SLURM_CONF`` names one.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.browser import Browser  # noqa: E402 -- after the path that finds tests/
from tests.class_notebooks import write_class  # noqa: E402
from tests.processes import start_stoppable  # noqa: E402

#: Runs ``grade`` with its class-wide files timed: the one function that writes them, wrapped.
TIMED_GRADE = """
import sys, time
import grader.run.grading_run as run
from grader.run.cli import main
write = run.write_outputs
def timed(*args, **kwargs):
    start = time.perf_counter()
    write(*args, **kwargs)
    print(f"BENCH class_files_s={time.perf_counter() - start:.3f}", file=sys.stderr, flush=True)
run.write_outputs = timed
sys.exit(main(sys.argv[1:]))
"""


@dataclass
class Measured:
    mode: str
    seconds: float
    peak_rss: int
    class_files: float
    summary_bytes: int
    verdicts: dict[str, list[tuple[str, str]]]
    page: Path  # its summary page
    resumed: str = ""  # with --kill-at: what the interrupted leg wrote and what the rerun regraded

    def line(self, count: int, base: Measured | None) -> str:
        ratio = f"  ({self.seconds / base.seconds:.2f}x the time of --jobs 2)" if base and base is not self else ""
        return (
            f"{self.mode:>14}: {self.seconds:7.1f} s{ratio}, {count / self.seconds * 3600:6.0f} notebooks/h, "
            f"coordinator peak RSS {self.peak_rss / 2**20:.0f} MiB, class-wide files {self.class_files:.2f} s "
            f"({100 * self.class_files / self.seconds:.1f} % of the wall time), summary page {self.summary_bytes / 1024:.0f} KiB"
            + (f"\n{'':>16}{self.resumed}" if self.resumed else "")
        )


def peak_rss(pid: int, until: threading.Event, seen: list[int]) -> None:
    """The process's VmHWM (its peak resident set), read until it exits."""
    while not until.wait(0.25):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        found = re.search(r"VmHWM:\s+(\d+) kB", status)
        if found:
            seen.append(int(found.group(1)) * 1024)


def run_grade(command: list[str], env: dict[str, str], out: Path, kill_at: int = 0) -> tuple[subprocess.CompletedProcess[str], int]:
    """Runs ``grade`` (its peak resident memory sampled); with ``kill_at``, a SIGINT once that many results exist."""
    # Ctrl-C must reach it even when this bench runs in the background (`bench_class.py ... &` ignores SIGINT).
    child = start_stoppable(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
    done, seen = threading.Event(), [0]
    sampler = threading.Thread(target=peak_rss, args=(child.pid, done, seen), daemon=True)
    sampler.start()
    if kill_at:
        while child.poll() is None and len(list(out.glob("*.json"))) < kill_at:
            time.sleep(0.5)
        child.send_signal(signal.SIGINT)
    stdout, stderr = child.communicate()
    done.set()
    sampler.join()
    return subprocess.CompletedProcess(command, child.returncode, stdout, stderr), max(seen)


def grade(mode: str, folder: Path, out: Path, data_dir: str, *extra: str, env: dict[str, str] | None = None, kill_at: int = 0) -> Measured:
    command = [sys.executable, "-c", TIMED_GRADE, str(folder), "--out", str(out), "--budget", "quick", "--device", "cpu"]
    command += ["--data-dir", data_dir, "--json", *extra]
    env = {**(env or os.environ), "GRADER_CACHE_DIR": str(out.parent / f"cache-{out.name}")}
    start = time.perf_counter()
    resumed = ""
    if kill_at:
        first, first_rss = run_grade([*command, "--force"], env, out, kill_at)
        if first.returncode != 130:
            raise SystemExit(f"{mode}: the interrupted grade exited {first.returncode}, not 130:\n{first.stderr[-3000:]}")
        kept = {p.name: p.stat().st_mtime_ns for p in out.glob("*.json")}
        interrupted = time.perf_counter() - start
        finished, rss = run_grade(command, env, out)  # the same command, without --force: a TA's rerun
        rss = max(rss, first_rss)
        touched = [name for name, mtime in kept.items() if (out / name).stat().st_mtime_ns != mtime]
        rerun = time.perf_counter() - start - interrupted
        resumed = (
            f"interrupted after {interrupted:.0f} s with {len(kept)} results; the rerun took {rerun:.0f} s, "
            f"rewrote {len(touched)} of those {len(kept)} and graded the other {len(list(out.glob('*.json'))) - len(kept)}"
        )
        if touched:
            raise SystemExit(f"{mode}: the rerun regraded results it already had: {touched[:5]}")
    else:
        finished, rss = run_grade([*command, "--force"], env, out)
    seconds = time.perf_counter() - start
    if finished.returncode not in (0, 3):
        raise SystemExit(f"{mode}: grade exited {finished.returncode}:\n{finished.stderr[-3000:]}")
    timed = re.findall(r"BENCH class_files_s=([\d.]+)", finished.stderr)
    results = json.loads(finished.stdout)
    verdicts = {Path(r["submission"]).name: [(q["id"], q["status"]) for q in r["questions"]] for r in results}
    page = out / "index.html"
    return Measured(mode, seconds, rss, float(timed[-1]) if timed else float("nan"), page.stat().st_size, verdicts, page, resumed)


#: Run in the page after it loaded: milliseconds for a sort by score, by name (twice: reversed), and a filter.
PAGE_ACTIONS = """(() => {
  const headers = Array.from(document.querySelectorAll('#gradebook th[data-sort]'));
  const time = (act) => { const t = performance.now(); act(); document.body.offsetHeight; return performance.now() - t; };
  const filter = document.getElementById('gradebook-filter');
  const typed = (text) => () => { filter.value = text; filter.dispatchEvent(new Event('input')); };
  const nav = performance.getEntriesByType('navigation')[0];
  return {
    rows: document.querySelectorAll('#gradebook tbody tr').length,
    load: nav.loadEventEnd - nav.startTime,
    sort_score: time(() => headers[1].click()),
    sort_name: time(() => headers[0].click()),
    sort_name_reversed: time(() => headers[0].click()),
    first_after_sort: document.querySelector('#gradebook tbody tr td').textContent.trim(),
    filter: time(typed('crashed')),
    shown: document.querySelectorAll('#gradebook tbody tr:not([hidden])').length,
    unfilter: time(typed('')),
  };
})()"""


def page_timings(page: Path) -> str:
    """The summary page in headless Chromium: load and interaction times, against a one-row page in the same browser."""
    with tempfile.TemporaryDirectory(prefix="bench-page-") as tmp:
        small = Path(tmp) / "one_row.html"
        html = page.read_text()
        head, body = html.split("<tbody>", 1)
        rows, tail = body.split("</tbody>", 1)
        small.write_text(head + "<tbody>" + rows.split("</tr>", 1)[0] + "</tr></tbody>" + tail)
        with Browser() as browser:
            measured = {}
            for name, path in (("one row", small), ("page", page), ("page again", page)):
                start = time.perf_counter()
                visit = browser.visit(path)
                wall = time.perf_counter() - start
                measured[name] = (wall, browser.evaluate(PAGE_ACTIONS), visit.console_errors)
    wall, got, errors = measured["page again"]
    base_wall, base, _ = measured["one row"]
    return (
        f"summary page in headless Chromium: {got['rows']} rows, load {got['load']:.0f} ms (one row: {base['load']:.0f} ms, "
        f"{got['load'] / max(base['load'], 1e-3):.1f}x; first visit {measured['page'][0] * 1000:.0f} ms wall), "
        f"sort by score {got['sort_score']:.0f} ms, by name {got['sort_name']:.0f} ms, reversed {got['sort_name_reversed']:.0f} ms "
        f"(first row then {got['first_after_sort']!r}), filter 'crashed' {got['filter']:.0f} ms -> {got['shown']} rows, "
        f"cleared {got['unfilter']:.0f} ms; console errors: {len(errors)}"
    )


def slurm_env(tmp: Path) -> tuple[dict[str, str], object | None]:
    """An environment that finds a SLURM: the one ``SLURM_CONF`` names, else a one-node cluster started here."""
    if os.environ.get("SLURM_CONF"):
        return dict(os.environ), None
    from tests.slurm_node import SlurmNode, why_not_here

    reason = why_not_here()
    if reason:
        raise SystemExit(f"slurm: {reason}")
    node = SlurmNode(Path(tempfile.mkdtemp(prefix="hwgrader-slurm-", dir=tmp)))
    node.write_configs()
    node.start()
    return node.env, node


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data"))
    parser.add_argument("--modes", default="jobs,dask,slurm", help="comma-separated: jobs (--jobs 2), dask (local:2), slurm")
    parser.add_argument("--hostile-every", type=int, default=50, help="one hostile notebook every N (default 50)")
    parser.add_argument("--slurm-jobs", type=int, default=2, help="SLURM jobs (one notebook at a time each)")
    parser.add_argument("--kill-at", type=int, default=0, help="Ctrl-C each coordinator after K results, then rerun (0: no)")
    parser.add_argument("--work", type=Path, help="keep the class, outputs and verdicts.json here (default: a temporary folder)")
    parser.add_argument("--page", type=Path, help="only time this summary page in Chromium")
    args = parser.parse_args()
    if args.page:
        print(page_timings(args.page))
        return
    modes = args.modes.split(",")
    with contextlib.ExitStack() as stack:
        tmp = args.work or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-class-")))
        folder = tmp / "class"
        write_class(folder, args.count, args.hostile_every)
        print(f"{args.count} notebooks (cut fixtures x mutations, a hostile one every {args.hostile_every}), quick budget, CPU", flush=True)
        measured: list[Measured] = []
        base = None
        if "jobs" in modes:
            base = grade("--jobs 2", folder, tmp / "jobs", args.data_dir, "--jobs", "2", kill_at=args.kill_at)
            measured.append(base)
            print(base.line(args.count, base), flush=True)
        if "dask" in modes:
            measured.append(grade("local:2", folder, tmp / "dask", args.data_dir, "--scheduler", "local:2", kill_at=args.kill_at))
            print(measured[-1].line(args.count, base), flush=True)
        if "slurm" in modes:
            env, node = slurm_env(tmp)
            config = tmp / "cluster.toml"
            config.write_text(f'[slurm]\npartition = "debug"\njobs = {args.slurm_jobs}\nmemory = "5GB"\nwalltime = "04:00:00"\n')
            try:
                measured.append(
                    grade(
                        "slurm",
                        folder,
                        tmp / "slurm",
                        args.data_dir,
                        "--scheduler",
                        "slurm",
                        "--cluster-config",
                        str(config),
                        env=env,
                        kill_at=args.kill_at,
                    )
                )
            finally:
                if node is not None:
                    node.stop()  # type: ignore[attr-defined]
            print(measured[-1].line(args.count, base), flush=True)
        for m in measured:
            (m.page.parent / "verdicts.json").write_text(json.dumps(m.verdicts, indent=1))
        same = all(m.verdicts == measured[0].verdicts for m in measured)
        print(f"identical verdicts in every mode: {same}")
        print(page_timings(measured[-1].page))


if __name__ == "__main__":
    main()
