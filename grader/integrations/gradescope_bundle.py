"""Gradescope's autograder bundle: ``grade gradescope NAME -o autograder.zip``.

Gradescope's autograder specification (gradescope-autograders.readthedocs.io, "Autograder
Specifications"): a zip with ``setup.sh`` and ``run_autograder`` at its root; the zip is unpacked into
``/autograder/source``, ``setup.sh`` runs once, as root, when Gradescope builds the image (Ubuntu), and
``run_autograder`` runs for every submission with the student's files in ``/autograder/submission``
and must leave ``/autograder/results/results.json`` -- written by the bundle's own grader
(``grade ... --gradescope``, ``grader/integrations/gradescope_results.py``).

The zip carries the grader's whole source tree (every file under ``grader/`` and ``reference/``, found
by walking the folders, not by a list), so a module added to the package ships without a change here.
"""

from __future__ import annotations

import re
import shlex
import zipfile
from dataclasses import dataclass
from pathlib import Path

from grader import __version__
from grader.errors import ConfigError

#: What the bundle installs: the releases the README pins, on the Python the project requires.
PYTHON = "3.11"
TORCH = "torch==2.14.1"
TORCHVISION = "torchvision==0.29.1"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"
#: Whole-notebook limit (seconds) a bundle passes to ``grade --timeout`` unless told otherwise: Gradescope
#: stops a run at 10 minutes by default, and a run it stops leaves no results.json at all.
DEFAULT_TIMEOUT = 420
#: Fashion-MNIST files torchvision reads (``<data>/FashionMNIST/raw``).
RAW_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


@dataclass
class Bundle:
    """What :func:`build_bundle` wrote: the command line reports it in one line."""

    path: Path
    assignment: str
    files: list[str]
    data: bool


class BundleError(ConfigError):
    """The bundle cannot be built as asked (no such assignment, a data folder without the raw files...).

    A :class:`ConfigError`: the assignment or the data folder named on the command line is wrong.
    """


def build_bundle(
    assignment: str,
    output: Path,
    data_dir: Path | None = None,
    cuda: bool = False,
    budget: str | None = None,
    timeout: float | None = DEFAULT_TIMEOUT,
) -> Bundle:
    """Write Gradescope's autograder zip for ``assignment`` (a name under ``assignments/`` or a folder).

    The zip holds ``setup.sh`` and ``run_autograder`` at its root, the grader's source (``grader/``,
    ``reference/``, ``pyproject.toml``, ``README.md``), the assignment's folder without its
    ``solution.ipynb`` (``checks_hidden.py`` included: this is the instructor's copy, hidden questions
    run), and with ``data_dir`` Fashion-MNIST's raw files under ``data/`` (else ``setup.sh`` downloads
    them when Gradescope builds the image).
    """
    from grader.course.assignment import load_assignment

    try:
        loaded = load_assignment(assignment)
    except ValueError as exc:
        raise BundleError(str(exc)) from None
    name = loaded.folder.name
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
        raise BundleError(f"assignment folder name {name!r}: use letters, digits, '.', '_' or '-'")
    root = Path(__file__).resolve().parents[2]
    for needed in ("pyproject.toml", "README.md", "reference"):
        if not (root / needed).exists():
            raise BundleError(f"{root / needed} is missing: build the bundle from a checkout of hw-grader (pip install -e .)")
    raw = None
    if data_dir is not None:
        raw = Path(data_dir) / "FashionMNIST" / "raw"
        missing = [f for f in RAW_FILES if not (raw / f).is_file()]
        if missing:
            raise BundleError(
                f"{raw}: missing {', '.join(missing)} (Fashion-MNIST in torchvision's layout: <dir>/FashionMNIST/raw/*-ubyte)"
            )
    device = "auto" if cuda else "cpu"
    budget = budget or ("auto" if cuda else "quick")
    entries: list[tuple[str, Path | str, int]] = [
        ("setup.sh", setup_script(cuda), 0o755),
        ("run_autograder", run_script(name, budget, device, timeout), 0o755),
        ("pyproject.toml", root / "pyproject.toml", 0o644),
        ("README.md", root / "README.md", 0o644),
    ]
    for package in ("grader", "reference"):
        entries += [(f"{package}/{p.relative_to(root / package).as_posix()}", p, 0o644) for p in source_files(root / package)]
    entries += [
        (f"assignments/{name}/{p.relative_to(loaded.folder).as_posix()}", p, 0o644)
        for p in source_files(loaded.folder)
        if p.relative_to(loaded.folder).as_posix() != "solution.ipynb"
    ]
    if raw is not None:
        entries += [(f"data/FashionMNIST/raw/{f}", raw / f, 0o644) for f in RAW_FILES]
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for arcname, source, mode in entries:
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))  # same inputs, same zip
            info.external_attr = (0o100000 | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, source if isinstance(source, str) else source.read_bytes())
    tmp.replace(output)
    return Bundle(output, name, [e[0] for e in entries], raw is not None)


def source_files(folder: Path) -> list[Path]:
    """Files under ``folder`` worth shipping: no caches, no checkpoints, no hidden files."""
    skip = {"__pycache__", ".ipynb_checkpoints", ".pytest_cache", ".hypothesis"}
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not (skip & set(p.relative_to(folder).parts))
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
        and p.suffix not in (".pyc", ".pyo")
    )


def setup_script(cuda: bool = False) -> str:
    """``setup.sh``: Gradescope runs it once, as root, when it builds the image (Ubuntu; apt available)."""
    index = "" if cuda else CPU_INDEX
    torch_note = (
        "# PyPI's Linux wheels of this release (CUDA builds): `grade gradescope --cuda`"
        if cuda
        else "# CPU wheels from PyTorch's CPU index: Gradescope's machines have no GPU"
    )
    return f"""#!/usr/bin/env bash
# Gradescope runs this once, as root, when it builds the autograder's image (Ubuntu).
# Written by `grade gradescope` (hw-grader {__version__}). AUTOGRADER_ROOT moves /autograder elsewhere.
set -euo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
VENV="$ROOT/venv"
PYTHON=python{PYTHON}
{torch_note}
TORCH_INDEX="{index}"
export DEBIAN_FRONTEND=noninteractive PIP_ROOT_USER_ACTION=ignore PIP_NO_CACHE_DIR=1

apt-get update
# Python {PYTHON} (the project's requirement): Ubuntu's package where it has one, else the deadsnakes PPA.
if ! apt-get install -y --no-install-recommends "$PYTHON" "$PYTHON-venv"; then
    apt-get install -y --no-install-recommends software-properties-common gpg-agent
    add-apt-repository -y ppa:deadsnakes/ppa
    apt-get update
    apt-get install -y --no-install-recommends "$PYTHON" "$PYTHON-venv"
fi
# The sandbox every kernel runs in, where the container allows one (the result says which isolation was in force).
apt-get install -y --no-install-recommends bubblewrap || echo "setup.sh: bubblewrap not installed; kernels run without the sandbox"

"$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install --upgrade pip
if [ -n "$TORCH_INDEX" ]; then
    "$VENV/bin/python" -m pip install --index-url "$TORCH_INDEX" {TORCH} {TORCHVISION}
else
    "$VENV/bin/python" -m pip install {TORCH} {TORCHVISION}
fi
# The grader, editable: it finds its assignments beside its source (the torch installed above satisfies its range).
"$VENV/bin/python" -m pip install -e "$SOURCE"

# Fashion-MNIST: the bundle's copy (grade gradescope --data-dir), else torchvision's ordinary download, now,
# so that no submission waits for it.
if [ ! -d "$SOURCE/data/FashionMNIST/raw" ]; then
    "$VENV/bin/python" -c 'import sys; from torchvision import datasets; [datasets.FashionMNIST(sys.argv[1], train=t, download=True)
        for t in (True, False)]' "$SOURCE/data"
fi
"$VENV/bin/python" -m grader.run.cli --version
"""


def run_script(assignment: str, budget: str = "quick", device: str = "cpu", timeout: float | None = DEFAULT_TIMEOUT) -> str:
    """``run_autograder``: grades the submission's notebook and writes ``results/results.json``."""
    limit = f"{timeout:g}" if timeout else ""
    return f"""#!/usr/bin/env bash
# Gradescope runs this for every submission (working directory /autograder): it grades the notebook in
# submission/ and writes results/results.json. Written by `grade gradescope` (hw-grader {__version__}).
# Every path is under AUTOGRADER_ROOT (default /autograder); GRADER_PYTHON is the Python that runs the
# grader (default: the venv setup.sh made); GRADER_BUDGET, GRADER_DEVICE, GRADER_TIMEOUT and
# GRADER_DATA_DIR override what the bundle was built with.
set -uo pipefail
ROOT="${{AUTOGRADER_ROOT:-/autograder}}"
SOURCE="$ROOT/source"
SUBMISSION="$ROOT/submission"
RESULTS="$ROOT/results"
REPORTS="${{GRADER_REPORTS:-$ROOT/reports}}"  # the grader's JSON, HTML report and executed notebook (not sent to Gradescope)
PY="${{GRADER_PYTHON:-$ROOT/venv/bin/python}}"
ASSIGNMENT={shlex.quote(assignment)}
BUDGET="${{GRADER_BUDGET:-{budget}}}"
DEVICE="${{GRADER_DEVICE:-{device}}}"
TIMEOUT="${{GRADER_TIMEOUT:-{limit}}}"
export GRADER_DATA_DIR="${{GRADER_DATA_DIR:-$SOURCE/data}}"
mkdir -p "$RESULTS"
rm -f "$RESULTS/results.json"

fallback() {{  # Gradescope shows nothing at all without results.json: always leave one
    if ! "$PY" -c 'import json, sys; json.dump({{"score": 0, "output": sys.argv[2], "output_format": "text", "tests": []}},
            open(sys.argv[1], "w"))' "$RESULTS/results.json" "$1"; then
        printf '%s\\n' \\
            '{{"score": 0, "output": "The autograder could not run; tell your instructor.", "output_format": "text", "tests": []}}' \\
            > "$RESULTS/results.json"
    fi
}}

# The notebook: every *.ipynb below submission/ (checkpoints, hidden files and macOS zip debris skipped);
# the first in name order (of their paths) is graded, and results.json names the others.
mapfile -d '' NOTEBOOKS < <(find "$SUBMISSION" -type f -name '*.ipynb' -not -name '.*' -not -path '*/.ipynb_checkpoints/*' \\
    -not -path '*/__MACOSX/*' -print0 2>/dev/null | LC_ALL=C sort -z)
if [ "${{#NOTEBOOKS[@]}}" -eq 0 ]; then
    echo "run_autograder: no .ipynb in $SUBMISSION"
    fallback "No notebook (.ipynb) was found in your submission. \\
Submit your homework notebook itself (in Jupyter or Colab: File > Download > .ipynb)."
    exit 0
fi
NOTEBOOK="${{NOTEBOOKS[0]}}"
NOTE=()
if [ "${{#NOTEBOOKS[@]}}" -gt 1 ]; then
    IGNORED=$(for nb in "${{NOTEBOOKS[@]:1}}"; do printf '%s, ' "${{nb#"$SUBMISSION"/}}"; done)
    NOTE=(--gradescope-note "Your submission holds ${{#NOTEBOOKS[@]}} notebooks; only the first by name, \\
${{NOTEBOOK#"$SUBMISSION"/}}, was graded (not graded: ${{IGNORED%, }}). Submit only your homework notebook.")
fi
LIMIT=()
[ -n "$TIMEOUT" ] && LIMIT=(--timeout "$TIMEOUT")

# The bundle's own grader: `python -m` and `-c` put the current folder first on Python's path.
cd "$SOURCE" || {{ fallback "The autograder's files are missing; tell your instructor."; exit 0; }}
"$PY" -c 'import sys, grader; print("run_autograder: hw-grader", grader.__version__, "from", grader.__file__,
    "on Python", sys.version.split()[0])'
echo "run_autograder: grading ${{NOTEBOOK#"$SUBMISSION"/}} \\
($ASSIGNMENT, budget $BUDGET, device $DEVICE, data $GRADER_DATA_DIR)"
"$PY" -m grader.run.cli run "$NOTEBOOK" --assignment "$ASSIGNMENT" \\
    --budget "$BUDGET" --device "$DEVICE" "${{LIMIT[@]}}" --out "$REPORTS" --force \\
    --gradescope "$RESULTS/results.json" "${{NOTE[@]}}"
STATUS=$?
echo "run_autograder: grade exited with status $STATUS"
if [ ! -s "$RESULTS/results.json" ]; then
    fallback "The autograder failed before it could grade your notebook (grade exited with status $STATUS). \\
This is not a verdict on your work; tell your instructor."
fi
exit 0
"""
