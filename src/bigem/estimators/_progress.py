"""What a fit shows with ``verbose``: a progress bar over the rows of each pass, and
scikit-learn's lines.

- ``verbose=1``: ``Initialization k`` per restart, scikit-learn's ``  Iteration i``
  every ``verbose_interval`` iterations, a tqdm bar over the rows of the pass being
  computed (rows/s, pass, log-likelihood; when tqdm is installed and the fit runs in
  this process), and at the end a line per restart (scikit-learn's
  ``Initialization converged.``; with several restarts, which run in lockstep, each
  line names its restart) and one summary line;
- ``verbose=2``: the iteration lines carry scikit-learn's time lapse and change of
  log-likelihood.

The bar counts a chunk's rows once its statistics are computed, not when the
read-ahead fetches it, and restarts at 0 with every pass. Lines are written through
tqdm, so they land above the bar, never inside it. Silent by default: a library does
not write to the terminal unless asked.
"""

from __future__ import annotations

import sys
import time

from ..engines import LocalEngine


class _Counted:
    """A task that advances the bar by a chunk's rows once it has computed them."""

    def __init__(self, task, progress: Progress) -> None:
        self._task, self._progress = task, progress
        self.__wrapped__ = task  # what an engine measures runs the task itself, not the count

    def __call__(self, chunk):
        out = self._task(chunk)
        self._progress.advance(chunk.n_rows)
        return out


class _CountingEngine:
    """A local engine whose passes move the bar: each :meth:`reduce` or :meth:`stream` is
    one pass over the source (an initialisation step or an EM iteration)."""

    def __init__(self, inner: LocalEngine, progress: Progress) -> None:
        self._inner, self._progress = inner, progress

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def reduce(self, task, source):
        self._progress.new_pass()
        return self._inner.reduce(_Counted(task, self._progress), source)

    def stream(self, source):
        self._progress.new_pass()
        for chunk in self._inner.stream(source):
            yield chunk  # the caller computes on it before asking for the next
            self._progress.advance(chunk.n_rows)


class Progress:
    """Context manager around one fit: :attr:`engine` to run it on, :meth:`callback` for
    the driver, :meth:`initialised` after each initialisation, :meth:`finish` at the end."""

    def __init__(self, engine, n_rows: int, s, online: bool, owner: str,
                 bound: str = "mean log-likelihood") -> None:
        self.engine, self.n_rows = engine, n_rows
        self.bound = bound  # what lower_bound_ is, in the summary line
        self.verbose, self.interval = int(s.verbose), max(1, int(s.verbose_interval))
        self.n_init, self._max = s.n_init, max(1, s.max_iter)
        self.owner = owner
        self._word = "pass" if online else "iteration"
        self._bar = None
        self._iteration = 0  # the last iteration reported
        self._phase: str | None = "initialising"  # what the passes are doing before the iterations
        self._started = time.perf_counter()
        self._lapse: dict[int, float] = {}  # restart -> when its last iteration line (or initialisation) ended
        if not self.verbose or not isinstance(engine, LocalEngine):
            return
        try:
            from tqdm.auto import tqdm
        except ImportError:  # the lines still print
            return
        self._bar = tqdm(total=n_rows, unit="rows", unit_scale=True, dynamic_ncols=True, file=sys.stderr,
                         desc="initialising", leave=False)
        self.engine = _CountingEngine(engine, self)

    # ------------------------------------------------------------------ the bar
    def new_pass(self) -> None:
        if self._bar is not None:
            self._bar.reset(total=self.n_rows)
            self._bar.set_description(self._phase or f"{self._word} {min(self._iteration + 1, self._max)}/{self._max}",
                                      refresh=False)

    def advance(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.update(rows)

    def say(self, text: str) -> None:
        """A line on stdout (scikit-learn's verbose output), above the bar if one is shown."""
        if self._bar is not None:
            self._bar.write(text, file=sys.stdout)
        else:
            print(text)

    # ------------------------------------------------------------------ the fit's events
    def initialising(self, restart: int) -> None:
        self._phase = f"initialising {restart + 1}/{self.n_init}" if self.n_init > 1 else "initialising"

    def initialised(self, restart: int, seconds: float) -> None:
        self._phase = None
        if self.verbose:
            self.say(f"Initialization {restart}")
        self._lapse[restart] = time.perf_counter()

    def callback(self, inner):
        if not self.verbose:
            return inner

        def report(info) -> None:
            if info.iteration != self._iteration:  # restarts share each pass: once per iteration
                self._iteration = info.iteration
                if self._bar is not None:
                    self._bar.set_description(f"{self._word} {info.iteration}/{self._max}", refresh=False)
            if self._bar is not None:
                self._bar.set_postfix(loglik=f"{info.log_likelihood:.6g}", change=f"{info.change:.2g}")
            if info.iteration % self.interval == 0:  # scikit-learn's lines, every verbose_interval iterations
                who = f" (restart {info.restart})" if self.n_init > 1 else ""
                if self.verbose == 1:
                    self.say(f"  Iteration {info.iteration}{who}")
                else:
                    now = time.perf_counter()
                    lapse = now - self._lapse.get(info.restart, self._started)
                    self.say(f"  Iteration {info.iteration}{who}\t time lapse {lapse:.5f}s\t ll change "
                             f"{info.change:.5f}")
                    self._lapse[info.restart] = now
            if inner is not None:
                inner(info)

        return report

    def finish(self, runs, best) -> None:
        """One line per restart, as scikit-learn's, then a summary that stays on screen."""
        if not self.verbose:
            return
        self.close()
        for r in runs:
            if r.n_iter == 0:  # max_iter=0 only initialises: scikit-learn says no more than "Initialization 0"
                continue
            state = "converged" if r.converged else "did not converge"
            # scikit-learn's words; restarts run in lockstep here, so with several the
            # lines come together at the end, each naming its restart
            line = f"Initialization {state}." if len(runs) == 1 else f"Initialization {r.restart} {state}."
            if self.verbose >= 2:
                line += f" time lapse {sum(r.seconds):.5f}s\t lower bound {r.lower_bound:.5f}."
            self.say(line)
        seconds = time.perf_counter() - self._started
        passes = sum(r.n_iter for r in runs) if self._word == "pass" else best.n_iter
        rate = self.n_rows * max(passes, 1) / seconds if seconds > 0 else float("inf")
        self.say(
            f"{self.owner}: {'converged' if best.converged else 'not converged'} after {best.n_iter} "
            f"{self._word}{'es' if self._word == 'pass' and best.n_iter != 1 else 's' if best.n_iter != 1 else ''} "
            f"over {self.n_rows:,} rows in {seconds:.2f}s ({rate:,.0f} rows/s per pass); lower bound "
            f"{best.lower_bound:.6f} ({self.bound} entering the last {self._word})"
        )

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
