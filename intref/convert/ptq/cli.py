"""``intref convert ptq CHECKPOINT_DIR --calib TEXT_FILE -o BUNDLE``: the command line of the converter.

Progress goes to stderr: on a terminal one line rewritten in place (sentences calibrated, layers
built), elsewhere one line per stage. The report and ``intref inspect``'s description of the
bundle go to stdout.
"""

from __future__ import annotations

import sys
import time

from ...errors import TextError
from . import schemes
from .convert import BY_SCHEME, DEFAULTS, convert_ptq
from .text import read_text_file

UNITS = {"calibrate": "sentences", "build": "layers"}


class TerminalProgress:
    """``progress(stage, done, total)`` for ``convert_ptq``, written to ``stream``."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        line = f"{stage}: {done}/{total} {UNITS.get(stage, '')} ({time.perf_counter() - self.start:.1f} s)"
        if self.tty:
            self.stream.write("\r" + line + ("\n" if done == total else ""))
        elif done == total:
            self.stream.write(line + "\n")
        self.stream.flush()


def add_arguments(parser) -> None:
    """The ptq-only options of ``intref convert``."""
    parser.add_argument("--calib", metavar="TEXT_FILE", help="ptq: calibration sentences, UTF-8, one a line")
    parser.add_argument("--observer", choices=("minmax", "percentile", "mse"), default=DEFAULTS["observer"],
                        help="ptq: how each int8 activation range is chosen (default %(default)s)")
    parser.add_argument("--percentile", type=float, default=DEFAULTS["percentile"],
                        help="ptq: the percentile observer's percentile of |x| (default %(default)s)")
    parser.add_argument("--smoothquant", type=float, metavar="ALPHA",
                        help=f"ptq: SmoothQuant migration strength in [0, 1] (default {DEFAULTS['smoothquant']}; "
                             f"{schemes.W4_SMOOTHQUANT} with int4 weights)")
    parser.add_argument("--no-smoothquant", action="store_true", help="ptq: no SmoothQuant")
    parser.add_argument("--output-bits", type=int, choices=(8, 16), default=DEFAULTS["output_bits"],
                        help="ptq: width of last_hidden_state and pooled (default %(default)s)")
    schemes.add_arguments(parser)        # ZeroQuant: --weights, --group-size/--groups, --group-axis, --act


def cli_main(args) -> int:
    from ...bundle import save
    from ...inspect import describe
    if not args.calib:
        print("intref convert: error: ptq needs --calib TEXT_FILE (calibration sentences)", file=sys.stderr)
        return 2
    texts = read_text_file(args.calib)
    alpha = BY_SCHEME if args.smoothquant is None else args.smoothquant      # the scheme's default alpha
    try:
        graph, report = convert_ptq(args.model_dir, texts, observer=args.observer, percentile=args.percentile,
                                    smoothquant=None if args.no_smoothquant else alpha,
                                    output_bits=args.output_bits, progress=TerminalProgress(),
                                    **schemes.options_from_args(args))
    except TextError as exc:   # name the calibration file, not just the sentence
        raise TextError(str(exc), path=args.calib, index=exc.index) from None
    except ValueError as exc:
        print(f"intref convert: error: {exc}", file=sys.stderr)
        return 2
    save(graph, args.output)
    print("ptq: " + ", ".join(f"{key} {value}" for key, value in report.items()))
    print(describe(graph, source=args.output))
    return 0
