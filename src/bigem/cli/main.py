"""``bigem`` entry point: argument parsing and error reporting for every subcommand.

A user error (bad option, missing or damaged file, unknown column, ...) prints one line
``bigem CMD: error: ...`` on stderr and exits with status 2; ``--debug`` adds the
traceback. Warnings print as one line each (``bigem CMD: warning: ...``).
"""

from __future__ import annotations

import argparse
import sys
import traceback
import warnings

from .._core.errors import BigemError
from . import commands, demo


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (plus where to find help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="bigem", description="Expectation-Maximization on data of any size.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parsers(sub)
    demo.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed on one line
        return int(stop.code or 0)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"bigem {args.command}: warning: {message}", file=sys.stderr)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("default")
            warnings.showwarning = one_line_warning
            return int(args.run(args) or 0)
    except (BigemError, ValueError, OSError, ImportError) as exc:
        if args.debug:
            traceback.print_exc()
        print(f"bigem {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"bigem {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
