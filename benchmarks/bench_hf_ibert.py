"""RoBERTa-base-size I-BERT: cross-check figures and timings of intref against the HF reference.

Not a test. Builds a random-weight ``IBertModel`` of RoBERTa-base size (12 layers, hidden 768,
12 heads, FFN 3072, vocab 50265, 514 positions, type vocab 1, layer_norm_eps 1e-5, pad 1,
initializer_range 0.02), calibrates it as QAT does (train-mode passes over random padded batches
of 128 tokens), converts it (``convert_hf_ibert``), then prints:

- the cross-check on random padded batches (``crosscheck_hf_ibert``): the worst isolated 8-bit
  point, the isolated artifact classes, the end-to-end cosine and 8-bit match of the last hidden
  state, and the end-to-end 8-bit mismatch fraction by depth;
- a sensitivity control: the reference against itself with ONE 8-bit code of its embedding output
  moved by 1 (how far a single +-1 LSB difference spreads through this network);
- timings in one process: ``intref.run`` against the reference's quant_mode forward and against
  the float (quant_mode=False) forward of the same weights, batch 1 and 8, seq 128. Each figure
  is the median of up to ``--repeat`` runs, fewer once ``--budget`` seconds are spent on it (the
  run count is printed); the torch forwards get one untimed warm-up run, intref none.

    /work/hfenv/bin/python benchmarks/bench_hf_ibert.py [--repeat 3] [--budget 60] [--check-batch 2]
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np


def timed(fn, repeat: int, budget: float):
    """(median seconds, runs): at least one run, at most ``repeat``, stop once ``budget`` is spent."""
    times = []
    while len(times) < repeat and (not times or sum(times) < budget):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), len(times)


def build(args):
    import torch
    import transformers

    from intref.convert.hf_ibert.random_model import ROBERTA_BASE, random_ibert
    start = time.perf_counter()
    model = random_ibert(seed=args.seed, calibration=args.calibration, batch=4, seq=args.seq,
                         **{**ROBERTA_BASE, "initializer_range": 0.02})
    calibrate_s = time.perf_counter() - start
    float_cfg = transformers.IBertConfig(**{**model.config.to_dict(), "quant_mode": False})
    float_model = transformers.IBertModel(float_cfg).eval()
    float_model.load_state_dict(model.state_dict())
    torch.set_grad_enabled(False)
    return model, float_model, calibrate_s


def crosscheck_figures(model, graph, args) -> list:
    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    from intref.convert.hf_ibert.random_model import random_batches
    from intref.convert.hf_ibert.report import END_TO_END, ISOLATED
    batches = random_batches(np.random.default_rng(args.seed + 1), model.config.vocab_size, count=1,
                             batch=args.check_batch, seq=args.seq)
    start = time.perf_counter()
    report = crosscheck_hf_ibert(model, graph, batches)
    seconds = time.perf_counter() - start
    worst = report.worst_isolated()
    int8 = [s for s in report.rows(ISOLATED) if s.type == "int8"]
    lines = [f"cross-check: {report.tokens} real tokens ({args.check_batch} x {args.seq}, padded), {seconds:.0f} s",
             f"  isolated, 8-bit points: {sum(s.mismatches for s in int8)} of {sum(s.elements for s in int8)} "
             f"differ; worst point {worst.point}: {worst.mismatches}/{worst.elements} ({worst.fraction:.2e}), "
             f"max |diff| {max(s.max_abs for s in int8)}",
             f"  isolated, every point: {report.unexplained(ISOLATED)} unexplained; classes: "
             + (", ".join(f"{k} {n}" for k, n in sorted(report.artifact_totals(ISOLATED).items(),
                                                        key=lambda kv: -kv[1])) or "none")]
    depth = [f"layer{i}.out" for i in (0, 1, 2, 5, 8, report.layers - 1) if i < report.layers]
    lines.append("  end to end, 8-bit mismatch by depth: emb.out "
                 f"{report.node('emb.out', END_TO_END).fraction:.2%}, "
                 + ", ".join(f"{p} {report.node(p, END_TO_END).fraction:.2%}" for p in depth))
    lines.append(f"  end to end, last hidden state: cosine {report.cosine:.6f}, 8-bit match {report.hidden_match:.2%}")
    lines += [f"  target [{'ok' if met else 'FAIL'}] {name}: {measured}" for name, measured, met in report.targets()]
    return lines, batches[0]


def sensitivity(model, batch, seed: int) -> str:
    """The reference vs itself with one emb.out code moved by +-1 (at a random real token)."""
    import torch

    from intref.convert.hf_ibert.capture import capture
    ids, mask = batch
    base = capture(model, ids, mask)
    rng = np.random.default_rng(seed)
    b, t = (int(v) for v in rng.choice(np.argwhere(mask == 1)))
    c = int(rng.integers(model.config.hidden_size))

    def nudge(mod, args, output):
        x, s = output
        q = torch.round(x / s)
        q[b, t, c] += -1 if q[b, t, c] >= 127 else 1
        return q * s, s
    handle = model.embeddings.output_activation.register_forward_hook(nudge)
    try:
        moved = capture(model, ids, mask)
    finally:
        handle.remove()
    keep = mask.astype(bool)
    last = f"layer{base.layers - 1}.out"
    match = float(np.mean(base.ints[last][keep] == moved.ints[last][keep]))
    x, y = base.hidden[keep].astype(np.float64).ravel(), moved.hidden[keep].astype(np.float64).ravel()
    cosine = float(x @ y / np.sqrt((x @ x) * (y @ y)))
    return (f"sensitivity control: reference vs reference with one emb.out code +-1: last hidden state "
            f"cosine {cosine:.6f}, 8-bit match {match:.2%}")


def timings(model, float_model, graph, args) -> list:
    import torch

    from intref.convert.hf_ibert.random_model import random_batches
    from intref.interpreter import run
    rows = [f"{'batch x seq':<12} {'intref.run':>14} {'ref quant_mode':>16} {'ref float':>14} "
            f"{'intref/quant':>13} {'intref/float':>13}"]
    for batch in (1, 8):
        ids, mask = random_batches(np.random.default_rng(batch), model.config.vocab_size, count=1, batch=batch,
                                   seq=args.seq, pad=False)[0]
        tids, tmask = torch.from_numpy(ids), torch.from_numpy(mask)
        feeds = {"input_ids": ids, "attention_mask": mask}
        intref_s, n_i = timed(lambda: run(graph, feeds), args.repeat, args.budget)
        model(input_ids=tids, attention_mask=tmask)
        quant_s, n_q = timed(lambda: model(input_ids=tids, attention_mask=tmask), args.repeat, args.budget)
        float_model(input_ids=tids, attention_mask=tmask)
        float_s, n_f = timed(lambda: float_model(input_ids=tids, attention_mask=tmask), args.repeat, args.budget)
        rows.append(f"{f'{batch} x {args.seq}':<12} {f'{intref_s:.2f} s (n={n_i})':>14} "
                    f"{f'{quant_s:.2f} s (n={n_q})':>16} {f'{float_s:.3f} s (n={n_f})':>14} "
                    f"{intref_s / quant_s:>12.1f}x {intref_s / float_s:>12.0f}x")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing at most (median)")
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per timing after which no new run starts")
    parser.add_argument("--check-batch", type=int, default=2, help="sequences in the cross-check batch")
    parser.add_argument("--calibration", type=int, default=2, help="calibration batches (4 x seq each)")
    parser.add_argument("--seq", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fix-scales", action="store_true", help="convert and check the fixed-scales variant")
    args = parser.parse_args()

    import torch
    import transformers

    from intref.convert.hf_ibert import convert_hf_ibert
    model, float_model, calibrate_s = build(args)
    start = time.perf_counter()
    graph, _ = convert_hf_ibert(model, fix_scales=args.fix_scales, max_batch=8, max_seq=args.seq)
    convert_s = time.perf_counter() - start
    print(f"I-BERT RoBERTa-base size, random weights (initializer_range 0.02), {graph.metadata['variant']}")
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), transformers {transformers.__version__}, "
          f"numpy {np.__version__}, {platform.processor() or platform.machine()}")
    print(f"calibration {calibrate_s:.0f} s ({args.calibration} train-mode batches of 4 x {args.seq}), "
          f"conversion {convert_s:.1f} s, {len(graph.nodes)} nodes")
    lines, batch = crosscheck_figures(model, graph, args)
    print("\n".join(lines))
    import contextlib

    from intref.convert.hf_ibert.capture import patched_reference
    with patched_reference(model) if args.fix_scales else contextlib.nullcontext():
        print(sensitivity(model, batch, args.seed))
    print("\n".join(timings(model, float_model, graph, args)))


if __name__ == "__main__":
    main()
