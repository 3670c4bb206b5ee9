"""A one-line progress display on stderr, fed by the estimators' per-iteration callback."""

from __future__ import annotations

import sys


class Progress:
    """``callback(info)`` for GaussianMixture.fit: redraws one line per iteration on a
    terminal (``\\r``), or prints a line per iteration when stderr is not one.
    A context manager: the line is closed (newline) on exit."""

    def __init__(self, label: str, n_init: int, max_iter: int, *, enabled: bool, stream=None) -> None:
        self.label, self.n_init, self.max_iter = label, n_init, max_iter
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._open = False
        self._fits = 0
        self._last_restart = None

    def __call__(self, info) -> None:
        if not self.enabled:
            return
        if info.iteration == 1 and info.restart == 0:
            self._fits += 1
        width = 20
        done = min(width, round(width * info.iteration / max(self.max_iter, 1)))
        bar = "#" * done + "." * (width - done)
        fit = f" fit {self._fits}" if self.label == "select" else ""
        line = (
            f"{self.label}{fit}: restart {info.restart + 1}/{self.n_init} [{bar}] iteration {info.iteration}/"
            f"{self.max_iter}  log-lik/row {info.log_likelihood:.6f}  change {info.change:.2e}"
        )
        if self.tty:
            self.stream.write("\r" + line + " " * 4)
            self._open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
