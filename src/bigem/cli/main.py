"""``bigem`` entry point: argument parsing and error reporting for every subcommand."""

from __future__ import annotations

import argparse
import sys
import traceback

from .._core.errors import BigemError
from . import demo


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bigem", description="Expectation-Maximization on data of any size.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True)
    demo.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except (BigemError, ValueError, OSError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"bigem {args.command}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
