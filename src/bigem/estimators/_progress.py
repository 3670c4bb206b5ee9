"""Progress of long fits: rows per second, iteration, log-likelihood and ETA (``verbose``).

A tqdm bar over the rows of each pass when tqdm is installed, otherwise nothing beyond
the per-iteration lines that ``verbose`` prints. Silent by default: a library does not
write to the terminal unless asked.
"""

from __future__ import annotations

import sys


class _Counted:
    """A source whose chunks advance the bar as the engine consumes them."""

    def __init__(self, inner, bar, scale: float = 1.0) -> None:
        self._inner, self._bar, self._scale = inner, bar, scale

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def chunks(self, *args, **kwargs):
        for chunk in self._inner.chunks(*args, **kwargs):
            yield chunk
            self._bar.update(chunk.n_rows * self._scale)

    def split(self, count: int) -> list:
        """The inner source's parts, each advancing the bar by its share of the whole (a
        process of a group shows the group's progress as its own part's)."""
        return [_Counted(part, self._bar, self._inner.n_rows / max(part.n_rows, 1))
                for part in self._inner.split(count)]


class Progress:
    """Context manager: ``source`` to fit from, and ``callback`` that updates the text."""

    def __init__(self, source, max_iter: int, verbose: int, online: bool) -> None:
        self.source = source
        self._bar = None
        self._max = max(1, max_iter)
        self._word = "pass" if online else "iteration"
        if verbose:
            try:
                from tqdm.auto import tqdm
            except ImportError:  # the per-iteration lines of `verbose` still print
                return
            self._bar = tqdm(
                total=source.n_rows, unit="rows", unit_scale=True, dynamic_ncols=True, file=sys.stderr,
                desc=f"{self._word} 1/{self._max}", leave=False,
            )
            self.source = _Counted(source, self._bar)

    def callback(self, inner):
        if self._bar is None:
            return inner

        last = [0]

        def report(info) -> None:
            bar = self._bar
            bar.set_postfix(loglik=f"{info.log_likelihood:.6g}", change=f"{info.change:.2g}", refresh=False)
            if info.iteration != last[0]:  # restarts share each pass: one reset per iteration
                last[0] = info.iteration
                bar.reset(total=self.source.n_rows)
                # the next one, if any: after the last, the bar (closed next) keeps "max/max"
                bar.set_description(f"{self._word} {min(info.iteration + 1, self._max)}/{self._max}")
            if inner is not None:
                inner(info)

        return report

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
