"""The ``intref`` command line.

Exit codes: 0 success (or a match), 1 a mismatch or failed check, 2 bad input (an ``IntrefError``
or a usage error; the message names the file, field or node, never a traceback).
"""

from __future__ import annotations

import argparse
import sys

from ._version import __version__
from .errors import IntrefError

HF_INSTALL_HINT = "install the hf extra: pip install '.[hf]' from a checkout of intref"


def _selfcheck(args) -> int:
    from .selfcheck import main
    return main(seed=args.seed)


def _inspect(args) -> int:
    from .bundle.load import load
    from .inspect import describe
    graph = load(args.bundle)
    print(describe(graph, source=args.bundle))
    if args.plan:
        from .plan import format_plan
        print("\n".join(format_plan(graph)))
    return 0


def parse_feeds(items) -> dict:
    """``NAME=FILE.npy`` pairs to read-only, memory-mapped integer arrays (``bundle.npy.map_npy``: the
    header and the file size are checked before anything is mapped; nothing is unpickled or copied).
    Errors name the feed and its file."""
    from .bundle.npy import map_npy
    from .errors import BundleError, FeedError
    feeds = {}
    for item in items or ():
        name, sep, path = item.partition("=")
        if not sep or not name or not path:
            raise FeedError(f"--feed {item!r}: expected NAME=FILE.npy")
        if name in feeds:
            raise FeedError(f"--feed {name!r} given twice")
        try:
            feeds[name] = map_npy(path)
        except BundleError as exc:
            raise FeedError(f"--feed {name}={exc}") from None
    return feeds


def output_directory(path: str, force: bool, option: str = "--out") -> str:
    """``path`` as a new or empty directory (created here); a non-empty one only with ``force``."""
    import os

    from .errors import IntrefError
    if os.path.exists(path) and not os.path.isdir(path):
        raise IntrefError(f"{option} {path}: exists and is not a directory")
    if os.path.isdir(path) and os.listdir(path) and not force:
        raise IntrefError(f"{option} {path}: the directory is not empty (use --force to write into it)")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as exc:
        raise IntrefError(f"{option} {path}: cannot create the directory: {exc.strerror or exc}") from None
    return path


def _run(args) -> int:
    import os

    import numpy as np

    from .bundle.load import load
    from .errors import FeedError, IntrefError
    from .interpreter import run
    out = output_directory(args.out, args.force)   # refused before a long run, not after it
    graph = load(args.bundle)
    timings = [] if args.profile else None
    if args.text or args.text_file:
        from .convert.ptq.text import read_text_file, run_texts
        if args.feed or args.trace or args.verbose or args.profile:
            raise FeedError("--text/--text-file take the place of --feed and run without --trace/--verbose/--profile")
        texts = list(args.text or []) + [t for f in args.text_file or [] for t in read_text_file(f)]
        results = run_texts(graph, texts, overflow=args.overflow)
    else:
        results = run(graph, parse_feeds(args.feed), overflow=args.overflow, trace=args.trace, verbose=args.verbose,
                      profile=timings, fuse=not args.no_fuse)
    if timings is not None:
        from .plan import format_profile
        print("\n".join(format_profile(timings)))
    for name, array in results.items():
        path = os.path.join(out, f"{name}.npy")
        try:
            np.save(path, array, allow_pickle=False)
        except OSError as exc:
            raise IntrefError(f"{path}: cannot write: {exc.strerror or exc}") from None
    print(f"wrote {len(results)} array(s) to {out}: {', '.join(sorted(results)) if len(results) <= 8 else ''}".rstrip(": "))
    return 0


def _layout(args):
    from .golden.write import GoldenError
    from .golden.vectors import Layout
    tile = None
    if args.tile:
        try:
            tm, tn = (int(v) for v in args.tile.lower().split("x"))
        except ValueError:
            raise GoldenError(f"--tile {args.tile!r}: expected MxN, e.g. 16x16") from None
        tile = (tm, tn)
    return Layout(lanes=args.lanes, lane_order=args.lane_order, tile=tile, int4_packed=args.int4_packed)


def _golden(args) -> int:
    import os

    from .bundle.load import load
    from .golden.write import write_golden
    from .progress import Progress
    graph = load(args.bundle)
    formats = [f.strip() for f in args.format.split(",") if f.strip()]
    bundle_path = os.path.relpath(os.path.abspath(args.bundle), os.path.abspath(args.out))
    progress = Progress("golden", enabled=False if args.quiet else None)
    try:
        manifest = write_golden(graph, parse_feeds(args.feed), args.out, formats=formats, layout=_layout(args),
                                nodes=args.nodes, overflow=args.overflow, bundle_path=bundle_path,
                                constants=args.constants, progress=progress)
    finally:
        progress.close()
    entries = manifest["tensors"].values()
    written = sum(1 for entry in entries if entry["files"])
    print(f"wrote {written} of {len(manifest['tensors'])} tensors of {len(manifest['nodes'])} nodes "
          f"({', '.join(formats)}; constants: {args.constants}) to {args.out}")
    for note in _selected_nothing(args, [entry for entry in entries if entry["files"]]):
        print(f"intref golden: note: {note}", file=sys.stderr)
    return 0


def _selected_nothing(args, written) -> list:
    """Notes for layout options that applied to no written tensor (they were accepted, and did nothing)."""
    notes = []
    if args.tile and not any(entry["layout"]["tile"] for entry in written):
        notes.append(f"--tile {args.tile} divides the last two axes of no written tensor: every tensor is row-major")
    if args.int4_packed and not any(entry["layout"]["int4_packed"] for entry in written):
        notes.append("--int4-packed: no written tensor has at most 4 bits: nothing is packed")
    if args.lanes > 1 and not any(f in args.format for f in ("hex", "mem")):
        notes.append(f"--lanes {args.lanes}: only .hex and .mem files have lanes, and none was asked for")
    return notes


def _verify(args) -> int:
    from .progress import Progress
    from .verify.session import verify
    report = verify(args.golden_dir, args.hw_dir, formats=args.format.split(","), tolerance=args.tolerance,
                    isolate=args.isolate, bundle=args.bundle, only=args.only, rederive=not args.no_rederive,
                    stream=sys.stdout, progress=Progress("verify", enabled=False if args.quiet else None))
    if args.junit:
        report.to_junit(args.junit)
    return report.exit_code


def _convert(args) -> int:
    if args.source == "ptq":
        from .convert.ptq.cli import cli_main
        return cli_main(args)
    from .bundle.load import save
    from .inspect import describe
    try:
        from .convert.hf_ibert.convert import convert_hf_ibert, load_hf_model
        model = load_hf_model(args.model_dir)
    except ImportError as exc:
        print(f"intref convert: error: {exc}; {HF_INSTALL_HINT}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:
        print(f"intref convert: error: {args.model_dir}: {exc}", file=sys.stderr)
        return 2
    try:
        graph, report = convert_hf_ibert(model, fix_scales=args.fix_scales, max_batch=args.max_batch,
                                         max_seq=args.max_seq)
    except ValueError as exc:
        print(f"intref convert: error: {args.model_dir}: {exc}", file=sys.stderr)
        return 2
    save(graph, args.output)
    print(report.to_text())
    print(describe(graph, source=args.output))
    return 0


def _crosscheck(args) -> int:
    try:
        from .convert.hf_ibert.crosscheck import cli_main
        return cli_main(args.model_dir, args.text, fix_scales=args.fix_scales, batch=args.batch, max_seq=args.max_seq)
    except ImportError as exc:
        print(f"intref crosscheck: error: {exc}; {HF_INSTALL_HINT}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"intref crosscheck: error: {exc}", file=sys.stderr)
    return 2


def _demo(args) -> int:
    from .models.demo_golden import write_demo
    try:
        print("\n".join(write_demo(args.out, args.golden, replace=args.replace)))
    except OSError as exc:
        print(f"intref demo: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _notebooks(args) -> int:
    from .notebooks import run
    return run(args)


BUNDLE_HELP = "a bundle: a directory or a .zip holding graph.json and tensors/*.npy"
FEED_HELP = "a graph input's values as an integer .npy file; one per graph input"
OVERFLOW_HELP = "a value outside its declared type: raise (check, the default), clamp (saturate) or keep the low bits (wrap)"


def build_parser() -> argparse.ArgumentParser:
    from .convert.ptq.cli import add_arguments as ptq_arguments
    from .golden.vectors import MAX_LANES
    parser = argparse.ArgumentParser(prog="intref", description="Bit-exact integer-only transformer golden model.")
    parser.add_argument("--version", action="version", version=f"intref {__version__}",
                        help="print intref's version and exit")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("selfcheck", help="verify every kernel against its scalar spec on this machine")
    p.add_argument("--seed", type=int, default=2021, help="seed of the random inputs (default 2021)")
    p.set_defaults(func=_selfcheck)

    p = sub.add_parser("inspect", help="describe a bundle: inputs, outputs, ops, parameters, bit widths, variant")
    p.add_argument("bundle", help=BUNDLE_HELP)
    p.add_argument("--plan", action="store_true", help="also list every node's kernel path (the load-time plan)")
    p.set_defaults(func=_inspect)

    p = sub.add_parser("run", help="run a bundle on .npy feeds (or text) and write its outputs as .npy")
    p.add_argument("bundle", help=BUNDLE_HELP)
    p.add_argument("--feed", action="append", metavar="NAME=FILE.npy", help=FEED_HELP)
    p.add_argument("--text", action="append", metavar="SENTENCE",
                   help="a sentence, tokenized by the bundle's own tokenizer (repeatable; instead of --feed)")
    p.add_argument("--text-file", action="append", metavar="FILE", help="UTF-8 sentences, one a line")
    p.add_argument("--out", required=True, metavar="DIR", help="where to write NAME.npy per output (a new or "
                                                               "empty directory)")
    p.add_argument("--force", action="store_true", help="write into --out even if it is not empty")
    p.add_argument("--trace", action="store_true", help="write every intermediate value, not only the outputs")
    p.add_argument("--overflow", choices=("check", "saturate", "wrap"), default="check", help=OVERFLOW_HELP)
    p.add_argument("--verbose", action="store_true", help="one line per node: name, op, type, shape, [min, max]")
    p.add_argument("--profile", action="store_true", help="time per op type and per node, with each node's path")
    p.add_argument("--no-fuse", action="store_true", help="run every node on its own, not the plan's fused "
                                                          "chains (the same values: a fused chain is timed as one)")
    p.set_defaults(func=_run)

    p = sub.add_parser("golden", help="write every node's inputs and outputs as golden vectors + manifest.json")
    p.add_argument("bundle", help=BUNDLE_HELP)
    p.add_argument("--feed", action="append", metavar="NAME=FILE.npy", help=FEED_HELP)
    p.add_argument("--out", required=True, metavar="DIR", help="a new or empty directory")
    p.add_argument("--format", default="npy,hex,mem,bin", help="comma-separated: npy, hex, mem, bin")
    p.add_argument("--nodes", nargs="+", metavar="NAME", help="only these nodes (glob patterns allowed)")
    p.add_argument("--lanes", type=int, default=1,
                   help=f"elements per hex/mem line, 1 to {MAX_LANES} (16 int8 = a 128-bit word)")
    p.add_argument("--lane-order", choices=("lsb_first", "msb_first"), default="lsb_first",
                   help="lane 0 in the least (lsb_first) or most significant digits of a line")
    p.add_argument("--tile", metavar="MxN", help="write the last two axes in MxN tiles (tensors whose last two axes it divides)")
    p.add_argument("--int4-packed", action="store_true", help=".bin: two int4 values per byte, low nibble first")
    p.add_argument("--overflow", choices=("check", "saturate", "wrap"), default="check", help=OVERFLOW_HELP)
    p.add_argument("--constants", choices=("include", "exclude", "only"), default="include",
                   help="stored tensors: write them (include), list them without files (exclude), or write only "
                        "them, without a run or feeds (only)")
    p.add_argument("--quiet", action="store_true", help="no progress line (shown only on a terminal anyway)")
    p.set_defaults(func=_golden)

    p = sub.add_parser("verify", help="compare a hardware dump with a golden set, node by node (exit 0/1/2)")
    p.add_argument("golden_dir", metavar="GOLDEN_DIR", help="a golden set written by `intref golden`")
    p.add_argument("hw_dir", metavar="HW_DIR", help="the hardware's dump, laid out by the manifest's file names")
    p.add_argument("--format", default="npy,bin,hex,mem", help="dump formats to look for, in order (comma-separated)")
    p.add_argument("--tolerance", type=int, default=0, metavar="N", help="accept differences of at most ±N")
    p.add_argument("--isolate", action="store_true", help="re-run each node on the hardware's own inputs")
    p.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report (one testcase per node)")
    p.add_argument("--bundle", metavar="PATH", help="the bundle, when not the manifest's own")
    p.add_argument("--only", action="append", metavar="GLOB",
                   help="verify only the tensors matching GLOB (repeatable); else every tensor of the set must be dumped")
    p.add_argument("--no-rederive", action="store_true",
                   help="trust the golden values by their manifest sha256 instead of re-running the bundle on the feeds")
    p.add_argument("--quiet", action="store_true", help="no progress line on the terminal")
    p.set_defaults(func=_verify)

    p = sub.add_parser("convert", help="import a model into a bundle (hf-ibert: a transformers I-BERT checkpoint; "
                                       "ptq: post-training quantization of a float BERT/RoBERTa checkpoint)")
    p.add_argument("source", choices=("hf-ibert", "ptq"),
                   help="the kind of model: hf-ibert (a transformers I-BERT) or ptq (a float BERT/RoBERTa)")
    p.add_argument("model_dir", help="a directory holding config.json and the weights (no hub access)")
    p.add_argument("-o", "--output", required=True, metavar="BUNDLE", help=".zip for a zip bundle, else a directory")
    p.add_argument("--fix-scales", action="store_true",
                   help="the intended per-layer scales instead of the reference's stale hidden-state scale")
    p.add_argument("--max-batch", type=int, default=64, help="largest batch the bundle accepts (default 64)")
    p.add_argument("--max-seq", type=int, default=None, help="default: the model's longest position")
    ptq_arguments(p)
    p.set_defaults(func=_convert)

    p = sub.add_parser("crosscheck", help="compare an imported model with its reference point by point and "
                                          "explain every difference (hf-ibert; exit 0/1/2)")
    p.add_argument("source", choices=("hf-ibert",), help="the kind of model: hf-ibert (transformers I-BERT)")
    p.add_argument("model_dir", help="a directory holding config.json, the weights and a tokenizer (no hub access)")
    p.add_argument("--text", required=True, metavar="FILE", help="input texts, one per line")
    p.add_argument("--fix-scales", action="store_true",
                   help="convert with the intended per-layer scales and check against the patched reference")
    p.add_argument("--batch", type=int, default=8, help="lines per batch")
    p.add_argument("--max-seq", type=int, default=128, help="tokens per line at most (truncated)")
    p.set_defaults(func=_crosscheck)

    p = sub.add_parser("demo", help="build the demo I-BERT bundle (seeded, the same bytes on every machine) "
                                    "and, with --golden, its golden sets")
    p.add_argument("--out", required=True, metavar="BUNDLE", help=".zip for a zip bundle, else a directory")
    p.add_argument("--golden", metavar="DIR", help="also write the golden sets into DIR (new or empty)")
    p.add_argument("--replace", action="store_true", help="regenerate an existing demo golden set in DIR")
    p.set_defaults(func=_demo)

    from .notebooks import add_arguments as notebook_arguments
    p = sub.add_parser("notebooks", help="execute the study notebooks and render them to HTML with their plots "
                                         "(render --out DIR), or strip / check their outputs")
    notebook_arguments(p)
    p.set_defaults(func=_notebooks)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except IntrefError as exc:
        print(f"intref {args.command}: error: {exc}", file=sys.stderr)
    except OSError as exc:   # the file system refused (a full disk, a permission): the path, not a traceback
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"intref {args.command}: error: {where}{exc.strerror or exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
