"""Where a ZeroQuant bundle's bytes are, on all-MiniLM-L6-v2: each zip member's size (layers summed),
``graph.json``'s sections, and the same bundle deflated (the format allows deflated members), checked
to load and run identically.

    INTREF_DATA_DIR=/work/data python benchmarks/zq_bytes.py [--calib 32]

Sizes do not depend on the calibration sentences (only the constants do). A script.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import intref  # noqa: E402
from intref.convert.minilm import minilm_path, read_sentences  # noqa: E402
from intref.convert.ptq import calibrate as cal  # noqa: E402
from intref.convert.ptq.checkpoint import load_checkpoint  # noqa: E402
from intref.convert.ptq.convert import build_ptq, feeds  # noqa: E402

BUNDLES = [("W8A8 static", dict()),
           ("W4/8-A8 token, in-groups of 64, int4 word table", dict(weights="w4/8", group_size=64, table_bits=4)),
           ("W4/8-A8 token, in-groups of 128, int4 word table", dict(weights="w4/8", group_size=128, table_bits=4)),
           ("W4-A8 token, in-groups of 64, int4 word table", dict(weights="w4", group_size=64, act="token", table_bits=4))]


def deflated_copy(path: str, out: str) -> int:
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    return os.path.getsize(out)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calib", type=int, default=32)
    args = parser.parse_args(argv)
    ckpt = load_checkpoint(minilm_path())
    stats = cal.collect(ckpt, read_sentences("movie", n=args.calib, split="calibration"), grams=True)
    ids, mask = ckpt.encode(["a gripping, beautifully acted film"])
    reference = None
    for label, options in BUNDLES:
        graph = build_ptq(ckpt, stats, **options)[0]
        with tempfile.TemporaryDirectory() as folder:
            path, small = os.path.join(folder, "b.zip"), os.path.join(folder, "deflated.zip")
            intref.save(graph, path)
            stored, deflated = os.path.getsize(path), deflated_copy(path, small)
            same = np.array_equal(intref.run(intref.load(small), feeds(ids, mask))["pooled"],
                                  intref.run(graph, feeds(ids, mask))["pooled"])
            members = collections.Counter()
            with zipfile.ZipFile(path) as z:
                document = json.loads(z.read("graph.json"))
                for info in z.infolist():
                    members[re.sub(r"layer\d+\.", "layer*.", info.filename)] += info.file_size
        reference = reference or (stored, deflated)
        print(f"## {label}: {stored:,} bytes stored ({stored / reference[0]:.3f} of W8A8), {deflated:,} deflated "
              f"({deflated / reference[1]:.3f} of W8A8 deflated; loads and runs identically: {same})")
        sections = {key: len(json.dumps(value)) for key, value in document.items()}
        sections["metadata.tokenizer"] = len(json.dumps(document["metadata"].get("tokenizer")))
        print("   graph.json sections: " + ", ".join(f"{k} {v:,}" for k, v in sections.items() if v > 10000))
        for name, size in members.most_common(14):
            print(f"   {size:>12,}  {name}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
