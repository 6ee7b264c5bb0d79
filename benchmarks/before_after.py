"""Two intref source trees on one bundle, interleaved: load time, run time, and the outputs' hash.

A script, not a timed test. For each of ``--rounds`` rounds, each tree in turn runs in a fresh
process of its own (PYTHONPATH = the tree, one BLAS thread): the process's first ``intref.load``
of the bundle, ``--loads - 1`` more loads, one warm-up run at batch x seq, then ``--runs`` timed
runs. Interleaving puts both trees under the same machine load; the outputs' sha256 shows whether
they computed the same bits.

    /tmp/ci/.venv/bin/python benchmarks/before_after.py BUNDLE /work/main /work/wt-speed2 \\
        [--shape 1x128] [--rounds 3] [--loads 5] [--runs 5]

The bundle must admit the shape (``speed.py`` builds one for its largest shape).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import hashlib, json, sys, time
import numpy as np
from intref.bundle import load
from intref.interpreter import run
bundle, batch, seq, loads, runs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
load_s = []
for _ in range(loads):
    start = time.perf_counter(); graph = load(bundle); load_s.append(time.perf_counter() - start)
rng = np.random.default_rng(batch * 1000 + seq)
feeds = {"input_ids": rng.integers(3, 50265, size=(batch, seq)).astype(np.int32),
         "attention_mask": np.ones((batch, seq), dtype=np.int8)}
out = run(graph, feeds)
run_s = []
for _ in range(runs):
    start = time.perf_counter(); run(graph, feeds); run_s.append(time.perf_counter() - start)
digest = hashlib.sha256(b"".join(np.ascontiguousarray(out[k]).tobytes() for k in sorted(out))).hexdigest()[:16]
import intref
print(json.dumps({"load": load_s, "run": run_s, "out": digest, "intref": intref.__file__}))
"""


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("trees", nargs=2, help="two source trees (the 'before' first)")
    parser.add_argument("--shape", default="1x128")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    batch, seq = (int(v) for v in args.shape.split("x"))
    results = {tree: {"first": [], "load": [], "run": [], "out": set()} for tree in args.trees}
    for _ in range(args.rounds):
        for tree in args.trees:
            env = {**os.environ, "PYTHONPATH": tree, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
            out = subprocess.run([sys.executable, "-c", CHILD, args.bundle, str(batch), str(seq), str(args.loads),
                                  str(args.runs)], env=env, cwd=tree, check=True, capture_output=True, text=True).stdout
            figures = json.loads(out.strip().splitlines()[-1])     # cwd: "-c" puts it first on sys.path
            if not os.path.realpath(figures["intref"]).startswith(os.path.realpath(tree) + os.sep):
                raise SystemExit(f"{tree}: the child imported {figures['intref']}, not this tree's intref")
            results[tree]["first"].append(figures["load"][0])
            results[tree]["load"] += figures["load"][1:]
            results[tree]["run"] += figures["run"]
            results[tree]["out"].add(figures["out"])
    print(f"load average {os.getloadavg()[0]:.1f}; {args.rounds} rounds interleaved, shape {args.shape}")
    for tree, r in results.items():
        print(f"{tree}: first load median {statistics.median(r['first']):.3f} s (min {min(r['first']):.3f} s, "
              f"{len(r['first'])} processes); later loads median {statistics.median(r['load']):.3f} s (min "
              f"{min(r['load']):.3f} s); run median {statistics.median(r['run']):.3f} s "
              f"(min {min(r['run']):.3f} s, {len(r['run'])} runs); outputs sha256 {sorted(r['out'])}")


if __name__ == "__main__":
    main()
