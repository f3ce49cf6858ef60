#!/usr/bin/env bash
# Packing on a lent GPU machine (issue 28, item 3), measured in one device call.
#
#   1. Here, on the CPU machine, once (it needs the network and ../shared beside the checkout):
#          tests/benchmarks/gpu_session.sh prepare
#      It fills .gpu/ (ignored by .gitignore; about 20 MB): wheels for Python 3.12 of what the H200's
#      image lacks (the Jupyter stack, d2l, tomlkit, latex2mathml, mistune: computed from this venv's
#      own versions), bubblewrap's Debian package and a copy of ../shared/data. Then check the script
#      on the CPU if you like: SKIP_INSTALL=1 PACKINGS=2 COPIES=2 ASSIGNMENTS=hw3 tests/benchmarks/gpu_session.sh run
#   2. There, in one call of the device tool: command "bash tests/benchmarks/gpu_session.sh run",
#      carry [".gpu"], timeout_s 600. It installs what .gpu holds, then for hw2 (and hw3 while time is
#      left) grades the solution alone and 8 copies packed with --jobs-per-gpu 8 (tests/benchmarks/bench_gpu.py,
#      full budget, the bare nbclient run skipped), and leaves in $OUT:
#          session.log         the machine, the install, bench_gpu's lines (phases alone and packed, the
#                              multiple of the solo throughput, GPU utilisation, load, verdicts as alone)
#          hw2-figures.json    bench_gpu's figures (hw3-figures.json likewise)
#          results.tar.gz      every result file (its phase_seconds, cells and verdicts) for a closer look
#
# Issue 28's target: >= 6x the solo throughput for hw2 at --jobs-per-gpu 8 (it was 4.6x: 159 s for 8
# against 91 s alone, on 2026-12-04), verdicts as alone. The phases say where a packed notebook waits:
# compare "phases alone" with "phases of one packed notebook".
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
GPU_DIR=$REPO/.gpu

prepare() {
    # The grader's own environment (its installed versions are the ones carried): $PYTHON, else the checkout's .venv.
    local python=${PYTHON:-$REPO/.venv/bin/python}
    mkdir -p "$GPU_DIR/wheels"
    # What the image has (KINDS.md's package list for nvidia-h200): never carried, its torch above all.
    local image="absl-py accelerate aiofiles anyio attrs certifi charset-normalizer click cloudpickle contourpy cycler
        filelock fonttools fsspec h11 httpx hypothesis idna iniconfig jinja2 joblib kiwisolver markdown markdown-it-py
        markupsafe matplotlib mdurl mpmath networkx numpy packaging pandas pillow pip pluggy protobuf psutil pygments
        pyparsing pytest python-dateutil pyyaml regex requests rich scipy setuptools six sortedcontainers sympy torch
        torchvision tqdm triton typing-extensions urllib3 wheel zipp"
    "$python" - "$image" >"$GPU_DIR/requirements.txt" <<'EOF'
"""The grader's runtime requirements, transitively, at this environment's versions, less what the image has."""
import re
import sys
from importlib import metadata

from packaging.markers import Marker

image = set(sys.argv[1].split())
where = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux", "platform_system": "Linux",
         "os_name": "posix", "implementation_name": "cpython", "platform_python_implementation": "CPython",
         "platform_machine": "x86_64", "extra": ""}
todo = list(metadata.distribution("hw-grader").requires or [])
found = {}
while todo:
    requirement = todo.pop()
    name = re.sub(r"[-_.]+", "-", re.split(r"[ ;<>=!~\[(]", requirement.strip(), maxsplit=1)[0]).lower()
    if ";" in requirement and not Marker(requirement.split(";", 1)[1]).evaluate(where):
        continue
    if name in found or name in image:
        continue
    found[name] = metadata.distribution(name).version
    if name != "d2l":  # its pins (numpy 1.23, pandas, the jupyter metapackage) stay out: the image has its own
        todo += metadata.distribution(name).requires or []
print("\n".join(f"{n}=={v}" for n, v in sorted(found.items())))
EOF
    echo "carrying $(wc -l <"$GPU_DIR/requirements.txt") packages: $(tr '\n' ' ' <"$GPU_DIR/requirements.txt")"
    local platforms=()
    for n in 28 27 24 17; do platforms+=(--platform "manylinux_2_${n}_x86_64"); done
    "$python" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        "${platforms[@]}" --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
        -d "$GPU_DIR/wheels" -r "$GPU_DIR/requirements.txt"
    (cd "$GPU_DIR" && rm -f bubblewrap_*.deb && apt-get download bubblewrap)
    rm -rf "$GPU_DIR/data" && cp -r "$REPO/../shared/data" "$GPU_DIR/data"
    du -sh "$GPU_DIR"
}

OUT_DIR=${OUT:-$REPO/reports/gpu-session}

run() {
    local out=$OUT_DIR started=$SECONDS
    local limit=${LIMIT_S:-570} packings=${PACKINGS:-8} copies=${COPIES:-8}
    export PYTHONUNBUFFERED=1
    local python=${PYTHON:-python3}
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "no nvidia-smi"
    echo "cores $(nproc); $("$python" -c 'import sys, torch; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.cuda.is_available())')"
    if [[ -z ${SKIP_INSTALL:-} ]]; then
        "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir "$GPU_DIR"/wheels/*.whl
        "$python" -m pip install -q --no-index --no-deps --no-build-isolation -e "$REPO"
        rm -rf "$GPU_DIR/bwrap" && dpkg -x "$GPU_DIR"/bubblewrap_*.deb "$GPU_DIR/bwrap"
        export PATH=$GPU_DIR/bwrap/usr/bin:$PATH
    else  # a check of this script where the grader's environment is already there (not installed: found from here)
        export PYTHONPATH=$REPO${PYTHONPATH:+:$PYTHONPATH}
    fi
    command -v bwrap >/dev/null && echo "bubblewrap: $(bwrap --version)" || echo "no bubblewrap: kernels run unsandboxed"
    echo "installed after $((SECONDS - started)) s"
    local data=${DATA_DIR:-$GPU_DIR/data}
    for assignment in ${ASSIGNMENTS:-hw2 hw3}; do
        local left=$((limit - (SECONDS - started)))
        if ((left < 120)); then
            echo "$assignment: skipped, $left s left"
            continue
        fi
        echo "== $assignment: alone, then $copies copies at ${packings} per GPU ($left s left)"
        timeout "$left" "$python" tests/benchmarks/bench_gpu.py "assignments/$assignment/solution.ipynb" --assignment "$assignment" \
            --packings "$packings" --copies "$copies" --skip-bare --data-dir "$data" --out "/tmp/bench-$assignment" ||
            echo "$assignment: bench_gpu ended with status $?"
        cp "/tmp/bench-$assignment/figures.json" "$out/$assignment-figures.json" 2>/dev/null || true
    done
    (cd /tmp && find bench-hw* -name '*.json' -not -path '*/copies/*' -print0 | tar czf "$out/results.tar.gz" --null -T -) || true
    echo "done after $((SECONDS - started)) s; in $out: $(ls "$out" | tr '\n' ' ')"
}

case ${1:-} in
    prepare) prepare ;;
    run)
        mkdir -p "$OUT_DIR"
        run 2>&1 | tee -a "$OUT_DIR/session.log"
        ;;
    *)
        echo "usage: $0 prepare|run   (see the comment at the top)" >&2
        exit 2
        ;;
esac
