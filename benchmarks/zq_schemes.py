"""ZeroQuant schemes on all-MiniLM-L6-v2: pooled-embedding cosine to float and bundle size per scheme.

    INTREF_DATA_DIR=/work/data python benchmarks/zq_schemes.py --calib 256 --test 200 [--exact-shortcuts]

One float calibration pass (``--calib`` VADER movie-review sentences, calibration split), then one
integer graph per scheme (``intref.convert.ptq.build_ptq`` with ``weights`` / ``group_size`` /
``groups`` / ``group_axis`` / ``act`` / ``weight_quant`` / ``table_bits``, and ``smoothquant`` where a row names it;
the PTQ defaults otherwise), each run by ``intref.run`` on
``--test`` held-out sentences. Prints a markdown table: cosine between the float and the
dequantized integer ``pooled`` embeddings (mean, 5th percentile, minimum), the bundle's size on
disk (a zip, stored) and its ratio to the W8A8 bundle. ``--exact-shortcuts`` as in
``benchmarks/ptq_options.py`` (checked identical on a first batch before measuring). A script.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from intref.convert.minilm import minilm_path, read_sentences  # noqa: E402
from intref.convert.ptq import calibrate as cal  # noqa: E402
from intref.convert.ptq.checkpoint import load_checkpoint  # noqa: E402
from intref.convert.ptq.convert import build_ptq, cosine_summary, integer_embeddings  # noqa: E402
from intref.eval.harness import bundle_bytes  # noqa: E402

G64 = dict(weights="w4/8", group_size=64, group_axis="in", act="token", smoothquant=0.9)   # 0.9: the W8 default
# w4/8 rows keep the attention (int8) Linears per channel, the w4/8 default, unless a row sets group_int8=True
SCHEMES = [  # (label, build_ptq options)
    ("W8A8 static (per-channel weights)", dict()),
    ("W8A8 token-wise", dict(weights="w8", act="token")),
    ("W4/8-A8 token-wise, input groups of 64, max-abs scales", dict(G64, weight_quant="max")),         # 2
    ("W4/8-A8 token-wise, input groups of 64, MSE clip", dict(G64, weight_quant="mse")),
    ("W4/8-A8 token-wise, input groups of 64, activation-weighted clip", dict(G64, weight_quant="act")),
    ("W4/8-A8 token-wise, input groups of 64, GPTQ", dict(G64, weight_quant="gptq")),                 # 5
    ("W4/8-A8 token-wise, input groups of 32, GPTQ", dict(G64, group_size=32, weight_quant="gptq")),
    ("W4/8-A8 token-wise, input groups of 128, GPTQ", dict(G64, group_size=128, weight_quant="gptq")),
    ("W4/8-A8 token-wise, one group per row (per-channel W4), GPTQ", dict(G64, group_size=1536, weight_quant="gptq")),
    ("W4/8-A8 token-wise, 48 output-row groups, GPTQ",
     dict(G64, group_size=None, groups=48, group_axis="out", weight_quant="gptq")),
    ("W4/8-A8 static, input groups of 64, GPTQ", dict(G64, act="static", weight_quant="gptq")),          # 10
    ("W4/8-A8 token-wise, input groups of 64, GPTQ, SmoothQuant 0.5", dict(G64, weight_quant="gptq", smoothquant=0.5)),
    ("W4/8-A8 token-wise, input groups of 64, GPTQ, SmoothQuant 0.7", dict(G64, weight_quant="gptq", smoothquant=0.7)),
    ("W4/8-A8 token-wise, input groups of 64, GPTQ, no SmoothQuant", dict(G64, weight_quant="gptq", smoothquant=None)),
    ("W4/8-A8 token-wise, input groups of 64, GPTQ, int4 word table", dict(G64, weight_quant="gptq", table_bits=4)),
    ("W4/8-A8 token-wise, input groups of 128, GPTQ, int4 word table",                                  # 15
     dict(G64, group_size=128, weight_quant="gptq", table_bits=4)),
    ("W8A8 token-wise, int4 word table", dict(weights="w8", act="token", table_bits=4)),
    ("W4-A8 token-wise (attention int4 too), input groups of 64, GPTQ, int4 word table",                # 17
     dict(G64, weights="w4", weight_quant="gptq", table_bits=4)),
    ("W4/8 defaults: input groups of 32, GPTQ, token-wise, SmoothQuant 0.5", dict(weights="w4/8")),
    ("W4/8-A8 token-wise, input groups of 64, GPTQ, SmoothQuant 0.5, int4 word table",                  # 19
     dict(G64, weight_quant="gptq", smoothquant=0.5, table_bits=4)),
    ("W4-A8 token-wise, input groups of 64, GPTQ, SmoothQuant 0.5, int4 word table",
     dict(G64, weights="w4", weight_quant="gptq", smoothquant=0.5, table_bits=4)),
    ("W4/8-A8 token-wise, input groups of 64, GPTQ, SmoothQuant 0.3", dict(G64, weight_quant="gptq", smoothquant=0.3)),
    ("W8A8 token-wise, SmoothQuant 0.5", dict(weights="w8", act="token", smoothquant=0.5)),
    ("W4/8-A8 token-wise, input groups of 64 on attention too, GPTQ, SmoothQuant 0.5, int4 word table",     # 23
     dict(G64, weight_quant="gptq", smoothquant=0.5, table_bits=4, group_int8=True)),
    ("W4/8-A8 token-wise, input groups of 64 on attention too, GPTQ, SmoothQuant 0.5",
     dict(G64, weight_quant="gptq", smoothquant=0.5, group_int8=True)),
    ("W4/8-A8 token-wise, input groups of 32 on attention too, GPTQ, SmoothQuant 0.5",
     dict(weights="w4/8", group_int8=True)),]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calib", type=int, default=256)
    parser.add_argument("--test", type=int, default=200)
    parser.add_argument("--only", type=int, nargs="*", help="indices into the scheme list")
    parser.add_argument("--exact-shortcuts", action="store_true")
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(minilm_path())
    calib = read_sentences("movie", n=args.calib, split="calibration")
    test = read_sentences("movie", n=args.test, split="test")
    print(f"# all-MiniLM-L6-v2, {len(calib)} calibration / {len(test)} test sentences; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    stats, seconds = cal.timed(cal.collect, ckpt, calib, grams=True)        # grams: for GPTQ
    print(f"# calibration pass: {seconds:.1f} s", flush=True)
    reference, seconds = cal.timed(ckpt.embed, test)
    print(f"# float embeddings of the test sentences: {seconds:.1f} s", flush=True)
    if args.exact_shortcuts:
        from ptq_options import install_exact_shortcuts
        install_exact_shortcuts()
        print("# exact shortcuts on (benchmarks/ptq_options.py; they touch only the plain GEMM and Requantize)")
    print("| scheme | cosine mean | p5 | min | bundle bytes | / W8A8 | build s | run s |\n"
          "|---|---|---|---|---|---|---|---|", flush=True)
    w8_bytes = bundle_bytes(build_ptq(ckpt, stats)[0])       # the W8A8 bundle, the size reference
    for index, (label, options) in enumerate(SCHEMES):
        if args.only and index not in args.only:
            continue
        (graph, report), build_s = cal.timed(build_ptq, ckpt, stats, **options)
        size = bundle_bytes(graph)
        embeddings, run_s = cal.timed(integer_embeddings, graph, ckpt, test)
        c = cosine_summary(reference, embeddings)
        ratio = f"{size / w8_bytes:.2f}"
        print(f"| {label} ({report['scheme']}) | {c['mean']:.5f} | {c['p5']:.5f} | {c['min']:.5f} | {size:,} | "
              f"{ratio} | {build_s:.1f} | {run_s:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"# total {time.perf_counter() - started:.0f} s")
    raise SystemExit(code)
