"""Reference corr2d/pool2d against the book's loops and PyTorch's kernels.

Run by hand (it is not collected by pytest):

    python tests/benchmarks/bench_ops.py [--size 256] [--kernel 5] [--repeat 5]

Every timing is the median of ``--repeat`` runs in this one process, and the
results are printed as ratios against the baselines measured alongside, so
the numbers compare across machines. The issue's targets: reference corr2d
at least 50x faster than the book's loop and within 5x of F.conv2d on a
256x256 input with a 5x5 kernel.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.nn import functional as F

from reference import ops


def book_corr2d(X, K):
    """d2l 7.2's loop version, verbatim."""
    h, w = K.shape
    Y = torch.zeros((X.shape[0] - h + 1, X.shape[1] - w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            Y[i, j] = (X[i : i + h, j : j + w] * K).sum()
    return Y


def book_pool2d(X, pool_size, mode="max"):
    """d2l 7.5's loop version, verbatim."""
    p_h, p_w = pool_size
    Y = torch.zeros((X.shape[0] - p_h + 1, X.shape[1] - p_w + 1))
    for i in range(Y.shape[0]):
        for j in range(Y.shape[1]):
            if mode == "max":
                Y[i, j] = X[i : i + p_h, j : j + p_w].max()
            elif mode == "avg":
                Y[i, j] = X[i : i + p_h, j : j + p_w].mean()
    return Y


def median_seconds(fn, repeat: int) -> float:
    fn()  # warm-up: first calls allocate and pick kernels
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--kernel", type=int, default=5)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--loop-repeat", type=int, default=1, help="repeats for the slow loop versions")
    args = parser.parse_args()

    torch.manual_seed(0)
    n, k = args.size, args.kernel
    X, K = torch.randn(n, n), torch.randn(k, k)
    with torch.no_grad():
        want = F.conv2d(X[None, None], K[None, None])[0, 0]
        torch.testing.assert_close(ops.corr2d(X, K), want, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(book_corr2d(X, K), want, rtol=1e-4, atol=1e-4)
        corr = {
            "reference corr2d": median_seconds(lambda: ops.corr2d(X, K), args.repeat),
            "F.conv2d": median_seconds(lambda: F.conv2d(X[None, None], K[None, None]), args.repeat),
            "book loop corr2d": median_seconds(lambda: book_corr2d(X, K), args.loop_repeat),
        }
        pool = {
            "reference pool2d max": median_seconds(lambda: ops.pool2d(X, (k, k)), args.repeat),
            "F.max_pool2d": median_seconds(lambda: F.max_pool2d(X[None, None], k, stride=1), args.repeat),
            "book loop pool2d max": median_seconds(lambda: book_pool2d(X, (k, k)), args.loop_repeat),
            "reference pool2d avg": median_seconds(lambda: ops.pool2d(X, (k, k), "avg"), args.repeat),
            "F.avg_pool2d": median_seconds(lambda: F.avg_pool2d(X[None, None], k, stride=1), args.repeat),
        }

    print(f"{n}x{n} input, {k}x{k} kernel, torch {torch.__version__}, {torch.get_num_threads()} threads")
    for name, seconds in {**corr, **pool}.items():
        print(f"  {name:<24} {seconds * 1e3:10.3f} ms")
    ref = corr["reference corr2d"]
    speedup = corr["book loop corr2d"] / ref
    vs_conv = ref / corr["F.conv2d"]
    print(f"corr2d: {speedup:,.0f}x faster than the book's loop (target >= 50x)")
    print(f"corr2d: {vs_conv:.2f}x the time of F.conv2d (target <= 5x)")
    print(
        f"pool2d max: {pool['book loop pool2d max'] / pool['reference pool2d max']:,.0f}x faster than the loop, "
        f"{pool['reference pool2d max'] / pool['F.max_pool2d']:.2f}x F.max_pool2d"
    )
    print(f"pool2d avg: {pool['reference pool2d avg'] / pool['F.avg_pool2d']:.2f}x F.avg_pool2d")
    ok = speedup >= 50 and vs_conv <= 5
    print("targets met" if ok else "TARGETS MISSED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
