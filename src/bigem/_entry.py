"""The ``bigem`` script's entry point: light, so that Ctrl-C while the command line's
modules (torch among them) are still importing stops it as Ctrl-C does later, with
status 130 and no traceback."""

from __future__ import annotations

import signal
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    heard: list[int] = []

    def interrupt(signum, frame):  # Python's own handler, remembering that it ran
        heard.append(signum)
        raise KeyboardInterrupt

    here = threading.current_thread() is threading.main_thread()  # handlers belong to the main thread
    previous = signal.signal(signal.SIGINT, interrupt) if here else None
    try:
        from .cli import main as run
    except BaseException:
        # a library may turn the interrupt into another error (numpy's C extensions, cut
        # off mid-import, raise ImportError): it was Ctrl-C all the same
        if not heard:
            raise
        print("bigem: interrupted", file=sys.stderr)
        return 130
    finally:
        if here:
            signal.signal(signal.SIGINT, previous)
    return run(argv)
