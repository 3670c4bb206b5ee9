"""The EM loop, once, for every model and engine: iterations, convergence, restarts, history.

A model is anything with ``e_step(params, chunk) -> stats`` (additive) and
``m_step(stats) -> params``; an engine is anything with ``reduce(fn, source) -> stats``.
Semantics follow scikit-learn: ``lower_bound`` is the mean log-likelihood of the
parameters *entering* the last iteration, the returned parameters are those after
its M-step, and convergence is ``|change of mean log-likelihood| < tol``.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from .._core.errors import ComponentReseededWarning, ConvergenceWarning, LikelihoodDecreaseWarning, NumericalError
from .._core.types import Source


class Model(Protocol):
    def e_step(self, params: Any, chunk: Any) -> Any: ...

    def m_step(self, stats: Any) -> Any: ...

    def decrease_tolerance(self, params: Any, log_likelihood: float) -> float:
        """How far the mean log-likelihood may fall below ``log_likelihood`` by rounding alone."""
        ...


class Engine(Protocol):
    def reduce(self, fn: Callable[[Any], Any], source: Source) -> Any: ...


@dataclass(frozen=True, slots=True)
class IterationInfo:
    """What the callback receives after each iteration."""

    restart: int
    iteration: int
    log_likelihood: float  # mean log-likelihood of the parameters entering this iteration
    change: float
    seconds: float
    params: Any


@dataclass
class EMResult:
    """One run of EM from one initialisation."""

    params: Any
    converged: bool
    n_iter: int
    lower_bound: float
    history: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    restart: int = 0


def run_em(
    model: Model,
    engine: Engine,
    source: Source,
    params: Any,
    *,
    max_iter: int,
    tol: float,
    restart: int = 0,
    callback: Callable[[IterationInfo], None] | None = None,
) -> EMResult:
    """Iterate E and M steps from ``params`` until convergence or ``max_iter``."""
    result = EMResult(params, converged=False, n_iter=0, lower_bound=-math.inf, restart=restart)
    previous = -math.inf
    for iteration in range(1, max_iter + 1):
        started = time.perf_counter()
        stats = engine.reduce(partial(model.e_step, params), source)
        ll = stats.mean_loglik
        if not math.isfinite(ll):
            raise NumericalError(
                f"the mean log-likelihood became {ll} at iteration {iteration} (restart {restart}); "
                "check the data for extreme values, or increase reg_covar"
            )
        falls = previous > -math.inf and ll < previous - model.decrease_tolerance(params, previous)
        if falls and not getattr(params, "reseeded", ()):
            warnings.warn(
                f"EM log-likelihood decreased from {previous:.10g} to {ll:.10g} at iteration {iteration} "
                f"(restart {restart}). EM must never decrease it: this is a bug in bigem; please report it "
                "with the data shape, dtype and parameters.",
                LikelihoodDecreaseWarning,
                stacklevel=2,
            )
        params = model.m_step(stats)
        reseeded = getattr(params, "reseeded", ())
        if reseeded:
            warnings.warn(
                f"components {list(reseeded)} lost their support at iteration {iteration} and were re-seeded "
                "at the worst-explained rows; consider fewer components or a larger reg_covar",
                ComponentReseededWarning,
                stacklevel=2,
            )
        change = ll - previous
        previous = ll
        elapsed = time.perf_counter() - started
        result.params, result.n_iter, result.lower_bound = params, iteration, ll
        result.history.append(ll)
        result.seconds.append(elapsed)
        if callback is not None:
            callback(IterationInfo(restart, iteration, ll, change, elapsed, params))
        if abs(change) < tol:
            result.converged = True
            break
    return result


def fit_em(
    model: Model,
    engine: Engine,
    source: Source,
    initialise: Callable[[int], Any],
    *,
    n_init: int,
    max_iter: int,
    tol: float,
    callback: Callable[[IterationInfo], None] | None = None,
) -> tuple[EMResult, list[EMResult]]:
    """``n_init`` runs from ``initialise(restart)``; the best by lower bound, and all runs.

    Warns with :class:`ConvergenceWarning` when the best run did not converge.
    """
    runs: list[EMResult] = []
    best: EMResult | None = None
    for restart in range(n_init):
        run = run_em(
            model,
            engine,
            source,
            initialise(restart),
            max_iter=max_iter,
            tol=tol,
            restart=restart,
            callback=callback,
        )
        runs.append(run)
        if best is None or run.lower_bound > best.lower_bound:
            best = run
    assert best is not None
    if not best.converged and max_iter > 0:
        warnings.warn(
            f"Best performing initialization did not converge. Try different init parameters, or increase "
            f"max_iter (now {max_iter}), tol (now {tol:g}), or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return best, runs
