"""``bigem`` entry point: argument parsing and error reporting for every subcommand.

A user error (bad option, missing or damaged file, unknown column, ...) prints one line
``bigem CMD: error: ...`` on stderr and exits with status 2; ``--debug`` adds the
traceback. Warnings print as one line each (``bigem CMD: warning: ...``). Ctrl-C
(status 130) and SIGTERM (status 143) stop a command cleanly: an output being written
is removed, and an existing file at its path is left as it was. A reader of stdout that
goes away (``bigem info MODEL --json | head -1``) stops it quietly, with status 141 as
SIGPIPE gives other Unix tools.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import select
import signal
import stat
import sys
import threading
import traceback
import warnings

from .._core.errors import BigemError, Terminated
from . import commands, demo
from ._flags import in_flags


class _Parser(argparse.ArgumentParser):
    """argparse, with its usage errors on one line (plus where to find help)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="bigem", description="Expectation-Maximization on data of any size.")
    parser.add_argument("--version", action="version", version=f"bigem {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    commands.add_parsers(sub)
    demo.add_parser(sub)
    for command in sub.choices.values():  # --debug after the command works too (bigem fit ... --debug)
        command.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                             help="show tracebacks for errors")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # --help, or a usage error already printed on one line
        return int(stop.code or 0)

    def one_line_warning(message, category, filename, lineno, file=None, line=None):
        print(f"bigem {args.command}: warning: {in_flags(str(message), args.command)}", file=sys.stderr)

    try:
        with warnings.catch_warnings(), _sigterm_unwinds():
            warnings.simplefilter("default")
            warnings.showwarning = one_line_warning
            status = int(args.run(args) or 0)
            sys.stdout.flush()  # a reader that is gone (bigem info --json | head -1) shows here, not at exit
            return status
    except (BigemError, ValueError, OSError, ImportError) as exc:
        if isinstance(exc, BrokenPipeError) and _reader_gone():
            return _closed_quietly()
        if args.debug:
            traceback.print_exc()
        print(f"bigem {args.command}: error: {in_flags(_one_line(exc), args.command)}", file=sys.stderr)
        return 2
    except Terminated:
        print(f"bigem {args.command}: terminated", file=sys.stderr)
        return 128 + signal.SIGTERM
    except KeyboardInterrupt:
        print(f"bigem {args.command}: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def _sigterm_unwinds():
    """While a command runs, SIGTERM raises :class:`Terminated` in the main thread, so the
    command unwinds as on Ctrl-C (outputs being written are removed). Further SIGTERMs are
    ignored while it unwinds; the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():  # signal handlers belong to the main thread
        yield
        return

    def terminate(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated("terminated (SIGTERM)")

    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _reader_gone() -> bool:
    """Whether stdout is a pipe (or socket) whose reader has gone: polling it reports an
    error then (a broken pipe elsewhere, say a remote store's, is an error to report)."""
    try:
        fd = sys.stdout.fileno()
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)):
            return False
        poll = select.poll()
        poll.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poll.poll(0))
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):  # no file (captured), no poll (Windows)
        return False


def _closed_quietly() -> int:
    """Stop as Unix tools stop when their reader goes (``| head``): no message, the status
    of SIGPIPE. stdout then points at the null device, so that Python's last flush at
    exit does not complain about the output it still holds."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError, io.UnsupportedOperation):  # stdout is no file (captured): nothing to flush at exit
        pass
    return 128 + getattr(signal, "SIGPIPE", 13)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror and exc.filename:
        return f"{exc.filename}: {exc.strerror}"
    return " ".join(str(exc).split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
