"""The ``intref`` command line.

Exit codes: 0 success (or a match), 1 a mismatch or failed check, 2 bad input (an ``IntrefError``
or a usage error; the message names the file, field or node, never a traceback).
"""

from __future__ import annotations

import argparse
import sys

from .errors import IntrefError


def _selfcheck(args) -> int:
    from .selfcheck import main
    return main(seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="intref", description="Bit-exact integer-only transformer golden model.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser("selfcheck", help="verify every kernel against its scalar spec on this machine")
    p.add_argument("--seed", type=int, default=2021)
    p.set_defaults(func=_selfcheck)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except IntrefError as exc:
        print(f"intref {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
