"""A class of submissions that grades in seconds each: the fixture hand-ins cut before LeNet, their mutations, hostile ones.

Used by the SLURM tests (tests/test_slurm_cluster.py) and the class benchmark (tests/benchmarks/bench_class.py).
Cut before section 7.6, a fixture keeps its corr2d, padding, channels and pooling answers (about half the points)
and loses the training cells, which are most of a whole notebook's time.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import nbformat

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "submissions"

#: Changes to a notebook's code, each graded differently from the fixture it changes.
MUTATIONS: dict[str, Callable[[str], str]] = {
    "exact": lambda source: source,
    "off_by_one": lambda source: source.replace("X.shape[0] - h + 1", "X.shape[0] - h"),
    "avg_is_max": lambda source: source.replace("X[i: i + p_h, j: j + p_w].mean()", "X[i: i + p_h, j: j + p_w].max()"),
    "raises": lambda source: source + "\nraise RuntimeError('a stray cell')" if "def corr2d" in source else source,
}

#: Hostile notebooks: the kernel kills itself mid-notebook; output far past the caps; a look at the home folder and the SLURM job.
HOSTILE = {
    "exits": "import os\nprint('bye')\nos._exit(3)",
    "floods": "import sys\nfor _ in range(200):\n    sys.stdout.write('x' * 100_000)\n",
    "snoops": "import os, glob\nprint(glob.glob(os.path.expanduser('~/*')), os.environ.get('SLURM_JOB_ID'))",
}


def cut(fixture: Path) -> nbformat.NotebookNode:
    """``fixture`` without its LeNet, VGG and ResNet sections (cut at the first code cell that mentions LeNet or init_cnn)."""
    nb = nbformat.read(str(fixture), as_version=4)
    first = (i for i, c in enumerate(nb.cells) if c.cell_type == "code" and ("LeNet" in c.source or "init_cnn" in c.source))
    nb.cells = nb.cells[: next(first, len(nb.cells))]
    return nb


def mutated(fixture: Path, mutation: str, tag: str = "") -> nbformat.NotebookNode:
    """A cut fixture with one mutation; ``tag`` (a comment) makes its bytes, so its cache key, its own."""
    nb = cut(fixture)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = MUTATIONS[mutation](cell.source)
    if tag:
        nb.cells.append(nbformat.v4.new_code_cell(f"# {tag}"))
    return nb


def hostile(kind: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(HOSTILE[kind])])


def write_class(folder: Path, count: int, hostile_every: int = 50) -> list[Path]:
    """``count`` submissions in ``folder``: fixtures x mutations in turn, one hostile notebook every ``hostile_every``."""
    folder.mkdir(parents=True, exist_ok=True)
    fixtures = sorted(FIXTURES.glob("*.ipynb"))
    kinds = sorted(HOSTILE)
    written = []
    for n in range(count):
        if hostile_every and n % hostile_every == hostile_every - 1:
            nb = hostile(kinds[(n // hostile_every) % len(kinds)])
        else:
            names = list(MUTATIONS)
            nb = mutated(fixtures[n % len(fixtures)], names[(n // len(fixtures)) % len(names)], tag=f"student {n:04d}")
        path = folder / f"s{n:04d}.ipynb"
        nbformat.write(nb, str(path))
        written.append(path)
    return written
