"""Time every ``intref.kernels.gemm`` path against a naive int64 ``np.matmul`` in the same process.

Not a test: it prints, per shape and operand dtypes, the best-of-N time of the baseline
(``np.matmul(a.astype(int64), b.astype(int64))``) and of each path, each path's speed-up over the
baseline and its GOP/s (2*M*N*K multiply-adds per matrix). Every result is also checked equal to
the baseline, so a fast wrong path cannot go unnoticed. A path the data's bound does not prove is
shown as "refused".

    .venv/bin/python benchmarks/bench_matmul.py [--repeat 5] [--threads N]

``--threads`` sets OPENBLAS_NUM_THREADS / OMP_NUM_THREADS before NumPy is imported (BLAS threads
spin and contend when other processes share the cores, which makes multi-threaded timings noisy).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

SHAPES = (
    ("attn proj  (128,768)@(768,768)", (128, 768), (768, 768)),
    ("ffn up     (128,768)@(768,3072)", (128, 768), (768, 3072)),
    ("ffn down   (128,3072)@(3072,768)", (128, 3072), (3072, 768)),
    ("scores  (12,128,64)@(12,64,128)", (12, 128, 64), (12, 64, 128)),
    ("context (12,128,128)@(12,128,64)", (12, 128, 128), (12, 128, 64)),
)
# (label, a dtype and range, b dtype and range): int8 activations x I-BERT int8 weights [-127, 126];
# uint8 softmax probabilities x int8 values; int16 x int8, where float32 chunks get small.
OPERANDS = (
    ("int8 x int8", ("int8", -128, 127), ("int8", -127, 126)),
    ("uint8 x int8", ("uint8", 0, 255), ("int8", -128, 127)),
    ("int16 x int8", ("int16", -(1 << 15), (1 << 15) - 1), ("int8", -128, 127)),
)


def best_time(fn, repeat: int) -> float:
    fn()                                            # warm-up (page faults, BLAS thread start)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def bench_case(np, matmul, shape_a, shape_b, operands, repeat, rng):
    (dtype_a, lo_a, hi_a), (dtype_b, lo_b, hi_b) = operands
    a = rng.integers(lo_a, hi_a + 1, size=shape_a).astype(dtype_a)
    b = rng.integers(lo_b, hi_b + 1, size=shape_b).astype(dtype_b)
    ops = 2 * a.shape[-2] * a.shape[-1] * b.shape[-1] * (a.size // (a.shape[-2] * a.shape[-1]))
    expected = np.matmul(a.astype(np.int64), b.astype(np.int64))
    base = best_time(lambda: np.matmul(a.astype(np.int64), b.astype(np.int64)), max(1, repeat // 2))
    cells = [f"int64-naive {base * 1e3:8.2f} ms {ops / base / 1e9:6.2f} GOP/s"]
    for path in ("auto", "float32", "float64", "int64"):
        try:
            got = matmul(a, b, path=path)
        except ValueError:
            cells.append(f"{path} refused")
            continue
        if not np.array_equal(got, expected):
            raise SystemExit(f"MISMATCH: path={path} shapes {shape_a}@{shape_b}")
        t = best_time(lambda p=path: matmul(a, b, path=p), repeat if path != "int64" else max(1, repeat // 2))
        cells.append(f"{path} {t * 1e3:7.2f} ms x{base / t:6.1f} {ops / t / 1e9:6.1f} GOP/s")
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import numpy as np

    from intref.kernels.gemm import matmul

    print(f"numpy {np.__version__}, python {platform.python_version()}, {os.cpu_count()} CPUs, "
          f"BLAS threads: {args.threads if args.threads is not None else 'default'}; best of {args.repeat}")
    rng = np.random.default_rng(0)
    for label, operands_a, operands_b in OPERANDS:
        print(f"\n{label}")
        for name, shape_a, shape_b in SHAPES:
            cells = bench_case(np, matmul, shape_a, shape_b, (operands_a, operands_b), args.repeat, rng)
            print(f"  {name:34s} " + " | ".join(cells))


if __name__ == "__main__":
    main()
