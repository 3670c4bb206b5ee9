"""The ``bigem`` script's entry point: light, so that Ctrl-C while the command line's
modules (torch among them) are still importing stops it as Ctrl-C does later, with
status 130 and no traceback."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    try:
        from .cli import main as run
    except KeyboardInterrupt:
        print("bigem: interrupted", file=sys.stderr)
        return 130
    return run(argv)
