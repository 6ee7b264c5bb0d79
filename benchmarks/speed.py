"""intref against the reference I-BERT and the float model on a RoBERTa-base-shaped bundle.

A script, not a timed test. Builds a random-weight RoBERTa-base-size I-BERT (12 layers, hidden
768, 12 heads, FFN 3072, vocabulary 50265), converts it, saves the bundle, then reports:

- bundle load time, directory and zip (``intref.load``: parse, validate, range analysis, plan,
  sha256 of every tensor file), the median of ``--loads`` loads in a child process of its own, and
  the first load of a fresh process;
- in another child process: one load and one run at batch 1 x seq 128, peak RSS;
- per (batch, seq): intref.run, the reference (transformers IBertModel, quant_mode=True, torch CPU)
  and the float model (quant_mode=False, same weights), interleaved in one process (one warm-up
  round, then ``--repeat`` rounds of intref / quant / float), medians and the ratios; then two
  controls: the model's GEMMs alone in NumPy and in torch against ``reference / 4`` (where it is below
  the float model's time or NumPy's GEMMs, no NumPy implementation meets 4x), and the time each
  spends beside its GEMMs (``beside_the_gemms``);
- golden dump throughput (MB written per second) and verify throughput (MB compared per second:
  the comparison alone, and the whole ``verify`` with its re-run of the bundle);
- the planned GEMM path's GOP/s on the FFN shape next to raw float32 and float64 BLAS rates.

Every BLAS (NumPy's OpenBLAS and torch) runs with ``--threads`` threads. The default shapes take
about six minutes on a loaded 2-core machine (the reference I-BERT dominates: about 25 s a run
at 1 x 128 there); ``--long`` adds 8 x 128, 1 x 512 and 8 x 512 (an hour or more there), or name
shapes with ``--shapes`` (``--models-only`` skips the load, I/O and GEMM rows).

    /tmp/ci/.venv/bin/python benchmarks/speed.py [--threads 2] [--repeat 5] [--loads 7] [--long]
        [--shapes 8x128,1x512 --repeat 1 --models-only] [--io-batch 8] [--unfused]

``--io-batch 8`` dumps and verifies a batch 8 x 128 set (2.3 GB) instead of 1 x 128 (0.57 GB):
verify's fixed setup (about 1 s: the bundle's load, the graph's sha256) then weighs less.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=5, help="timed rounds after one warm-up round (median)")
    parser.add_argument("--shapes", default=None, help="batch x seq, comma-separated (default 1x128; with "
                                                         "--long also 8x128,1x512,8x512)")
    parser.add_argument("--long", action="store_true", help="add the batch 8 and seq 512 rows")
    parser.add_argument("--models-only", action="store_true", help="only the intref / reference / float rows")
    parser.add_argument("--unfused", action="store_true", help="also time intref with fuse=False (every node on "
                        "its own, intref.fusion) in the same rounds, and check both give the same outputs")
    parser.add_argument("--loads", type=int, default=7, help="bundle loads timed (median)")
    parser.add_argument("--io-batch", type=int, default=1, help="batch of the golden dump and verify set (x 128)")
    parser.add_argument("--calibration", type=int, default=1, help="calibration batches of 4 x 128")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--child", metavar="BUNDLE", help=argparse.SUPPRESS)       # the RSS process
    parser.add_argument("--child-loads", metavar="BUNDLE", nargs="+", help=argparse.SUPPRESS)   # load times
    args = parser.parse_args(argv)
    if args.shapes is None:
        args.shapes = "1x128" + (",8x128,1x512,8x512" if args.long else "")
    return args


ARGS = parse_args()
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)        # before NumPy loads its BLAS

import numpy as np  # noqa: E402


def feeds_for(batch: int, seq: int, vocab: int = 50265) -> dict:
    rng = np.random.default_rng(batch * 1000 + seq)
    ids = rng.integers(3, vocab, size=(batch, seq)).astype(np.int32)
    return {"input_ids": ids, "attention_mask": np.ones((batch, seq), dtype=np.int8)}


def peak_rss_mb() -> float:
    """This process's resident high-water mark (VmHWM: unlike ru_maxrss, it restarts at exec, so a
    child does not inherit its parent's peak)."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def child_loads(bundles, loads: int) -> None:
    """Print JSON: per bundle, the seconds of ``loads`` loads in a row (the first is a fresh
    process's: its memory is not yet the allocator's to reuse)."""
    from intref.bundle import load
    times = {}
    for bundle in bundles:
        times[bundle] = []
        for _ in range(loads):
            start = time.perf_counter()
            graph = load(bundle)
            times[bundle].append(time.perf_counter() - start)
            del graph                          # freed before the next load, outside the timed span
    print(json.dumps(times))


def size_mb(path: str) -> float:
    if os.path.isfile(path):
        return os.path.getsize(path) / 1e6
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files) / 1e6


def load_rows(bundles, args) -> list:
    out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--loads", str(args.loads),
                          "--child-loads", *bundles], check=True, capture_output=True, text=True).stdout
    rows = []
    for bundle, seconds in json.loads(out.strip().splitlines()[-1]).items():
        kind = "zip" if bundle.endswith(".zip") else "directory"
        rows.append(f"bundle load ({kind}, {size_mb(bundle):.0f} MB, own process): median "
                    f"{statistics.median(seconds):.3f} s of {len(seconds)} loads (min {min(seconds):.3f} s; "
                    f"the process's first {seconds[0]:.3f} s)")
    return rows


def child(bundle: str) -> None:
    """Load and run once in a fresh process; print JSON: load seconds, run seconds, peak RSS."""
    from intref.bundle import load
    from intref.interpreter import run
    start = time.perf_counter()
    graph = load(bundle)
    load_s = time.perf_counter() - start
    feeds = feeds_for(1, 128)
    start = time.perf_counter()
    run(graph, feeds)
    run_s = time.perf_counter() - start
    rss_mb = peak_rss_mb()
    print(json.dumps({"load_s": load_s, "run_s": run_s, "peak_rss_mb": rss_mb}))


def build(args):
    import torch
    import transformers

    from intref.convert.hf_ibert import convert_hf_ibert
    from intref.convert.hf_ibert.random_model import ROBERTA_BASE, random_ibert
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    model = random_ibert(seed=args.seed, calibration=args.calibration, batch=4, seq=128,
                         **{**ROBERTA_BASE, "initializer_range": 0.02})
    float_model = transformers.IBertModel(transformers.IBertConfig(**{**model.config.to_dict(),
                                                                       "quant_mode": False})).eval()
    float_model.load_state_dict(model.state_dict())
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    graph, _ = convert_hf_ibert(model, max_batch=max([b for b, _ in shapes] + [args.io_batch]),
                                max_seq=max([s for _, s in shapes] + [128]))
    return model.eval(), float_model, graph, shapes


def interleaved(fns: dict, repeat: int) -> dict:
    """One warm-up round, then ``repeat`` rounds calling each function in turn: name -> times."""
    times = {name: [] for name in fns}
    for round_ in range(repeat + 1):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            if round_:
                times[name].append(time.perf_counter() - start)
    return times


def model_rows(model, float_model, graph, shapes, repeat: int, unfused: bool = False) -> list:
    import torch

    from intref.interpreter import run
    rows = [f"{'batch x seq':<12} {'intref':>9} {'ref quant':>10} {'ref float':>10} {'ref/intref':>11} "
            f"{'intref/float':>13}   (medians of {repeat}, interleaved; ratios: median of per-round ratios)"]
    print(rows[0], flush=True)
    for batch, seq in shapes:
        feeds = feeds_for(batch, seq)
        ids, mask = torch.from_numpy(feeds["input_ids"].astype(np.int64)), torch.from_numpy(feeds["attention_mask"].astype(np.int64))
        fns = {"intref": lambda: run(graph, feeds),
               "quant": lambda: model(input_ids=ids, attention_mask=mask),
               "float": lambda: float_model(input_ids=ids, attention_mask=mask)}
        if unfused:
            fns["unfused"] = lambda: run(graph, feeds, fuse=False)
        times = interleaved(fns, repeat)
        med = {k: statistics.median(v) for k, v in times.items()}
        speedup = statistics.median(q / i for q, i in zip(times["quant"], times["intref"]))
        slowdown = statistics.median(i / f for i, f in zip(times["intref"], times["float"]))
        rows.append(f"{f'{batch} x {seq}':<12} {med['intref']:>8.3f}s {med['quant']:>9.3f}s {med['float']:>9.3f}s "
                    f"{speedup:>10.2f}x {slowdown:>12.2f}x")
        print(rows[-1], flush=True)
        if unfused:
            fused_out, plain_out = run(graph, feeds), run(graph, feeds, fuse=False)
            same = all(np.array_equal(fused_out[k], plain_out[k]) for k in fused_out)
            rows.append(f"{'':<12} unfused (fuse=False) {med['unfused']:.3f} s: fused {med['unfused'] / med['intref']:.2f}x "
                        f"faster, outputs {'identical' if same else 'DIFFERENT'}")
            print(rows[-1], flush=True)
        floors = gemm_floor(batch, seq, repeat)
        quarter = med["quant"] / 4
        rows.append(f"{'':<12} the targets: intref <= reference / 4 = {quarter:.3f} s and <= 2 x float = "
                    f"{2 * med['float']:.3f} s; the model's GEMMs alone (float32, no conversion, no epilogue): "
                    f"NumPy sgemm {floors['numpy']:.3f} s, torch {floors['torch']:.3f} s; reference / float "
                    f"{med['quant'] / med['float']:.2f}x" + (
                        "  -> reference / 4 is below the float model's own time" if quarter < med["float"] else "") + (
                        "  -> and below NumPy's GEMMs alone" if quarter < floors["numpy"] else ""))
        print(rows[-1], flush=True)
        rows.append(beside_the_gemms(quarter, med, floors))
        print(rows[-1], flush=True)
    return rows


def beside_the_gemms(quarter: float, med: dict, floors: dict) -> str:
    """The second control: the time ``reference / 4`` leaves beside NumPy's GEMMs for everything else
    (requantization, softmax, GELU, LayerNorm, conversions), against what the float model spends beside
    torch's GEMMs on the same work in float32, in torch's compiled kernels. Where the first is the
    smaller, meeting 4x needs NumPy's exact integer steps to beat torch's float ones."""
    budget, float_rest, intref_rest = quarter - floors["numpy"], med["float"] - floors["torch"], med["intref"] - floors["numpy"]
    line = (f"{'':<12} beside the GEMMs: reference / 4 leaves {budget:.3f} s (beside NumPy's); the float model "
            f"spends {float_rest:.3f} s (beside torch's); intref {intref_rest:.3f} s")
    if budget < float_rest:
        line += "  -> reference / 4 leaves less than the float model's own float32 steps take"
    return line


def gemm_shapes(batch: int, seq: int, hidden: int = 768, ffn: int = 3072, heads: int = 12, layers: int = 12):
    """Every GEMM of one forward of the RoBERTa-base shape as ``(count, batch dims, m, k, n)``: the
    four attention projections, the two feed-forward ones, and per head scores and context."""
    tokens = batch * seq
    head = hidden // heads
    return [(4 * layers, (), tokens, hidden, hidden), (layers, (), tokens, hidden, ffn), (layers, (), tokens, ffn, hidden),
            (layers, (batch, heads), seq, head, seq), (layers, (batch, heads), seq, seq, head)]


def gemm_floor(batch: int, seq: int, repeat: int) -> dict:
    """Seconds for the model's GEMMs alone in float32, NumPy (OpenBLAS sgemm) and torch, each the
    median of ``repeat`` rounds after one warm-up: what any NumPy implementation spends at least,
    next to what the float model's library spends on the same products."""
    import torch
    rng = np.random.default_rng(0)
    operands = [(count, rng.standard_normal((*lead, m, k), dtype=np.float32), rng.standard_normal((*lead, k, n), dtype=np.float32))
                for count, lead, m, k, n in gemm_shapes(batch, seq)]
    torch_operands = [(count, torch.from_numpy(a), torch.from_numpy(b)) for count, a, b in operands]

    def numpy_pass():
        for count, a, b in operands:
            for _ in range(count):
                np.matmul(a, b)

    def torch_pass():
        with torch.no_grad():
            for count, a, b in torch_operands:
                for _ in range(count):
                    torch.matmul(a, b)
    times = interleaved({"numpy": numpy_pass, "torch": torch_pass}, repeat)
    return {k: statistics.median(v) for k, v in times.items()}


def io_rows(graph, bundle: str, workdir: str, batch: int = 1) -> list:
    """Golden dump of every node at batch ``batch`` x 128, then verify of that set against itself: the
    comparison alone (``rederive=False``: golden values trusted by their sha256) and the whole
    ``verify`` (which also loads the bundle and re-runs it on the feeds)."""
    from intref.golden.write import write_golden
    from intref.verify import verify
    golden = os.path.join(workdir, "golden")
    start = time.perf_counter()
    write_golden(graph, feeds_for(batch, 128), golden, formats=("npy", "bin"))
    dump_s = time.perf_counter() - start
    written = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(golden) for f in files)
    npy = sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(golden) for f in files
              if f.endswith(".npy"))
    rows = [f"golden dump (npy + bin, batch {batch} x 128, every node): {written / 1e6:.0f} MB in {dump_s:.2f} s = "
            f"{written / 1e6 / dump_s:.0f} MB/s"]
    hardware = os.path.join(workdir, "hardware")     # the "hardware's" dump: the golden .npy files, hard-linked
    for folder, _, files in os.walk(golden):
        for name in (f for f in files if f.endswith(".npy")):
            target = os.path.join(hardware, os.path.relpath(folder, golden), name)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            os.link(os.path.join(folder, name), target)
    for what, rederive in (("golden trusted by sha256", False), ("with the re-run of the bundle", True)):
        clock = PhaseClock()
        start = time.perf_counter()
        report = verify(golden, hardware, formats=("npy",), bundle=bundle, rederive=rederive, progress=clock)
        verify_s = time.perf_counter() - start
        compare_s = clock.finished - clock.started
        rows.append(f"verify npy ({what}: {report.counts['compared']} tensors, {report.verdict}): "
                    f"{npy / 1e6:.0f} MB in {verify_s:.2f} s = {npy / 1e6 / verify_s:.0f} MB/s overall; "
                    f"setup {clock.started - start:.2f} s (bundle load, graph sha256, manifest"
                    f"{', re-run' if rederive else ''}), then the node-by-node comparison (reading both "
                    f"sides, golden sha256, compare) {compare_s:.2f} s = {npy / 1e6 / compare_s:.0f} MB/s")
    return rows


class PhaseClock:
    """A ``verify`` progress sink (``intref.progress``'s call protocol) that notes when the node-by-node
    comparison starts (its first ``compare`` call, after the first node; the setup before it is
    what ``started`` measures, give or take one node) and when its last node is done."""

    def __init__(self):
        self.started = self.finished = None

    def __call__(self, phase: str, done: int, total: int, what: str = "", *, nbytes: int = 0) -> None:
        if phase != "compare":
            return
        now = time.perf_counter()
        if self.started is None:
            self.started = now
        if done == total:
            self.finished = now

    def close(self) -> None:
        pass


def gemm_rows(repeat: int) -> list:
    from intref.kernels.gemm_plan import matmul_planned, plan_gemm
    rng = np.random.default_rng(0)
    m, k, n = 1024, 768, 3072
    x = rng.integers(-128, 128, size=(m, k), dtype=np.int8)
    w = rng.integers(-127, 128, size=(n, k), dtype=np.int8)
    plan = plan_gemm(128 * 127, 128 * int(np.abs(w.astype(np.int64)).sum(axis=1).max()), k, 1 << 30)
    w_t = plan.operand(w).T
    a32, b32 = x.astype(np.float32), w.astype(np.float32).T
    a64, b64 = x.astype(np.float64), w.astype(np.float64).T

    def best(fn):
        return min(interleaved({"f": fn}, repeat)["f"])
    ops = 2 * m * k * n / 1e9
    planned = best(lambda: matmul_planned(plan.operand(x), w_t, plan))
    s = best(lambda: a32 @ b32)
    d = best(lambda: a64 @ b64)
    return [f"GEMM {m}x{k} @ {k}x{n} (int8): planned path {plan.describe(k)} {ops / planned:.1f} GOP/s "
            f"(with the operand conversion and the int32 result); raw sgemm {ops / s:.1f} GFLOP/s, "
            f"dgemm {ops / d:.1f} GFLOP/s"]


def main(args) -> None:
    if args.child:
        child(args.child)
        return
    if args.child_loads:
        child_loads(args.child_loads, args.loads)
        return
    import platform

    import torch
    import transformers

    from intref.bundle import save
    start = time.perf_counter()
    model, float_model, graph, shapes = build(args)
    print(f"RoBERTa-base-shaped I-BERT, random weights: {len(graph.nodes)} nodes, built and converted in "
          f"{time.perf_counter() - start:.0f} s; numpy {np.__version__}, torch {torch.__version__}, transformers "
          f"{transformers.__version__}, {args.threads} threads, {os.cpu_count()} CPUs, {platform.machine()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    if args.models_only:
        model_rows(model, float_model, graph, shapes, args.repeat, args.unfused)
        return
    with tempfile.TemporaryDirectory() as workdir:
        bundle = os.path.join(workdir, "bundle")
        save(graph, bundle)
        save(graph, bundle + ".zip")
        print("\n".join(load_rows([bundle, bundle + ".zip"], args)), flush=True)
        out = subprocess.run([sys.executable, __file__, "--threads", str(args.threads), "--child", bundle],
                             check=True, capture_output=True, text=True).stdout
        figures = json.loads(out.strip().splitlines()[-1])
        print(f"intref alone (own process): bundle load {figures['load_s']:.2f} s, one run 1 x 128 "
              f"{figures['run_s']:.2f} s, peak RSS {figures['peak_rss_mb']:.0f} MB", flush=True)
        print("\n".join(io_rows(graph, bundle, workdir, args.io_batch)), flush=True)
    print("\n".join(gemm_rows(args.repeat)), flush=True)
    model_rows(model, float_model, graph, shapes, args.repeat, args.unfused)
    print(f"load average at the end {os.getloadavg()[0]:.1f}")
    print("all-MiniLM-L6-v2 per sentence: not measured here (benchmarks/bench_minilm.py times intref, the reference "
          "and the float model on real sentences)")


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main(ARGS)
