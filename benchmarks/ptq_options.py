"""What each post-training option buys on all-MiniLM-L6-v2: pooled-embedding cosine, integer vs float.

    INTREF_DATA_DIR=/work/data python benchmarks/ptq_options.py --calib 256 --test 200

One float calibration pass over ``--calib`` VADER movie-review sentences (calibration split), then one
integer graph per option set (``intref.convert.ptq.build_ptq``), each run by ``intref.run`` on ``--test``
held-out sentences (test split: rows 0, 10, 20, ... of the file). Prints a markdown table of the
cosine between the float and the dequantized integer ``pooled`` embeddings (mean, 5th percentile,
minimum) and the time of each stage. A script, not a timed test.

``--exact-shortcuts``: until the load-time execution plan (issue 11) lands, the interpreter's GEMM
runs NumPy's slow stacked matmul and every requantization takes the 95-bit split path. This flag
swaps in two shortcuts for this process only, each exact where it applies (a 2-D sgemm over the
flattened rows; an int64 product when ``|x| * |m| < 2**62``, rounded half to even by integer
shifts) and checks that the first batch's outputs are identical with and without them before
measuring. Figures are the interpreter's integers either way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import intref  # noqa: E402
from intref.convert.minilm import minilm_path, read_sentences  # noqa: E402
from intref.convert.ptq import calibrate as cal  # noqa: E402
from intref.convert.ptq.checkpoint import length_batches, load_checkpoint  # noqa: E402
from intref.convert.ptq.convert import build_ptq, cosine_summary, feeds, integer_embeddings  # noqa: E402

CONFIGS = [  # (label, options); every run also has per-channel int8 weights and tables
    ("min/max, no smoothing, 8-bit output", dict(observer="minmax", smoothquant=None, output_bits=8)),
    ("min/max, no smoothing", dict(observer="minmax", smoothquant=None)),
    ("percentile 99.99, no smoothing", dict(observer="percentile", smoothquant=None)),
    ("MSE, no smoothing", dict(observer="mse", smoothquant=None)),
    ("min/max + SmoothQuant 0.8", dict(observer="minmax", smoothquant=0.8)),
    ("percentile 99.99 + SmoothQuant 0.5", dict(observer="percentile", smoothquant=0.5)),
    ("percentile 99.99 + SmoothQuant 0.8, 8-bit output", dict(observer="percentile", smoothquant=0.8, output_bits=8)),
    ("percentile 99.99 + SmoothQuant 0.8", dict(observer="percentile", smoothquant=0.8)),
    ("percentile 99.999 + SmoothQuant 0.8", dict(observer="percentile", percentile=99.999, smoothquant=0.8)),
    ("MSE + SmoothQuant 0.6", dict(observer="mse", smoothquant=0.6)),
    ("MSE + SmoothQuant 0.7", dict(observer="mse", smoothquant=0.7)),
    ("MSE + SmoothQuant 0.8, 8-bit output", dict(observer="mse", smoothquant=0.8, output_bits=8)),
    ("MSE + SmoothQuant 0.8", dict(observer="mse", smoothquant=0.8)),
    ("MSE + SmoothQuant 0.9 (default)", dict(observer="mse", smoothquant=0.9)),
]


def install_exact_shortcuts():
    """Patch two kernel internals with exact shortcuts (module docstring); returns an undo function."""
    from intref.kernels import gemm, requant
    from intref.kernels.rounding import RoundedProduct
    chunked, split = gemm.matmul_float32_chunked, requant.mul_shift_round

    def chunked_2d(a, b, chunk):
        if b.ndim == 2 and a.ndim > 2:
            return chunked(a.reshape(-1, a.shape[-1]), b, chunk).reshape(a.shape[:-1] + (b.shape[-1],))
        return chunked(a, b, chunk)

    def product_int64(x, m, s, rounding):
        x, m, s = (np.asarray(v, np.int64) for v in (x, m, s))
        if (rounding != "half_even" or x.ndim == 0 or s.min(initial=1) < 1 or s.max(initial=1) > 62
                or int(np.abs(x).max(initial=0)) * int(np.abs(m).max(initial=0)) >= 1 << 62):
            return split(x, m, s, rounding)
        p = x * m                                          # exact: |p| < 2**62
        q = p >> s                                         # floor
        r = p - (q << s)                                   # 0 <= r < 2**s
        half = np.int64(1) << (s - 1)
        v = q + ((r > half) | ((r == half) & ((q & 1) == 1)))
        negative = (x < 0) != (m < 0)
        return RoundedProduct(np.broadcast_to(negative, v.shape), np.abs(v), v)

    gemm.matmul_float32_chunked, requant.mul_shift_round = chunked_2d, product_int64

    def undo():
        gemm.matmul_float32_chunked, requant.mul_shift_round = chunked, split
    return undo


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calib", type=int, default=256)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--only", type=int, nargs="*", help="indices into the option list")
    parser.add_argument("--exact-shortcuts", action="store_true")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(minilm_path())
    calib = read_sentences("movie", n=args.calib, split="calibration")
    test = read_sentences("movie", n=args.test, split="test")
    print(f"# all-MiniLM-L6-v2, {len(calib)} calibration / {len(test)} test sentences; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    stats, seconds = cal.timed(cal.collect, ckpt, calib)
    print(f"# calibration pass: {seconds:.1f} s", flush=True)
    reference, seconds = cal.timed(ckpt.embed, test)
    print(f"# float embeddings of the test sentences: {seconds:.1f} s", flush=True)
    if args.exact_shortcuts:
        graph, _ = build_ptq(ckpt, stats)
        _, ids, mask = next(length_batches(ckpt, test[:16], 16))
        plain = intref.run(graph, feeds(ids, mask))
        undo = install_exact_shortcuts()
        fast = intref.run(graph, feeds(ids, mask))
        for name in plain:
            if not np.array_equal(plain[name], fast[name]):
                undo()
                raise SystemExit(f"the shortcuts changed output {name!r}: not exact, refusing to measure")
        print("# exact shortcuts on: first batch identical with and without them", flush=True)
    print("| options | cosine mean | p5 | min | build s | integer run s |\n|---|---|---|---|---|---|", flush=True)
    for index, (label, options) in enumerate(CONFIGS):
        if args.only and index not in args.only:
            continue
        (graph, _), build_s = cal.timed(build_ptq, ckpt, stats, **options)
        embeddings, run_s = cal.timed(integer_embeddings, graph, ckpt, test)
        c = cosine_summary(reference, embeddings)
        print(f"| {label} | {c['mean']:.5f} | {c['p5']:.5f} | {c['min']:.5f} | {build_s:.1f} | {run_s:.1f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"# total {time.perf_counter() - started:.0f} s")
    raise SystemExit(code)
