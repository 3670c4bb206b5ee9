"""The EM loop, once, for every model and engine: iterations, convergence, restarts, history.

A model is anything with ``e_step(params, chunk) -> stats`` (additive) and
``m_step(stats) -> params``; an engine is anything with ``reduce(fn, source) -> stats``.
Semantics follow scikit-learn: ``lower_bound`` is the mean log-likelihood of the
parameters *entering* the last iteration, the returned parameters are those after
its M-step, and convergence is ``|change of mean log-likelihood| < tol``.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Protocol

from torch import Tensor

from .._core.errors import (
    ComponentReseededWarning,
    ConvergenceWarning,
    LikelihoodDecreaseWarning,
    NumericalError,
    ParameterError,
)
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


@dataclass
class Checkpoint:
    """Save every run's state to ``path`` every ``every`` iterations, atomically (io.safetensors).

    A fit given a checkpoint whose file exists resumes from it and reaches the same
    result as an uninterrupted run; the file is removed when the fit completes.
    ``fingerprint`` (JSON) must match to resume: the model, the data shape, the settings.
    Parameters must be a dataclass (``params_type``) of tensors and JSON values.
    """

    path: str
    every: int
    params_type: type
    fingerprint: dict

    def save(self, results: list[EMResult], iteration: int) -> None:
        from ..io import write_model_file

        tensors: dict[str, Tensor] = {}
        runs = []
        for i, r in enumerate(results):
            fields: dict[str, Any] = {}
            for f in dataclasses.fields(r.params):
                value = getattr(r.params, f.name)
                if isinstance(value, Tensor):
                    tensors[f"run{i}.{f.name}"] = value
                else:
                    fields[f.name] = list(value) if isinstance(value, tuple) else value
            runs.append(dict(converged=r.converged, n_iter=r.n_iter, lower_bound=r.lower_bound,
                             history=list(r.history), seconds=list(r.seconds), restart=r.restart, fields=fields))
        meta = {"format": "bigem-checkpoint", "fingerprint": self.fingerprint, "iteration": iteration, "runs": runs}
        write_model_file(self.path, tensors, meta)

    def load(self) -> tuple[list[EMResult], int]:
        """Every run as saved, and the iteration it was saved after."""
        from ..io import read_model_file

        tensors, meta = read_model_file(self.path)
        if meta.get("format") != "bigem-checkpoint":
            raise ParameterError(f"{self.path}: not a bigem checkpoint (a model file?); pass another checkpoint path")
        if meta.get("fingerprint") != self.fingerprint:
            raise ParameterError(
                f"{self.path}: the checkpoint was written by a different fit ({meta.get('fingerprint')}), not "
                f"this one ({self.fingerprint}); delete it or pass another checkpoint path"
            )
        results = []
        for i, r in enumerate(meta["runs"]):
            values = {k[len(f"run{i}."):]: v for k, v in tensors.items() if k.startswith(f"run{i}.")}
            values.update({k: tuple(v) if isinstance(v, list) else v for k, v in r["fields"].items()})
            results.append(EMResult(self.params_type(**values), r["converged"], r["n_iter"], r["lower_bound"],
                                    r["history"], r["seconds"], r["restart"]))
        return results, int(meta["iteration"])


class _Run:
    """One run's state between iterations; :meth:`step` is one iteration after its E-step."""

    def __init__(self, params: Any, restart: int) -> None:
        self.result = EMResult(params, converged=False, n_iter=0, lower_bound=-math.inf, restart=restart)
        self.previous = -math.inf

    @classmethod
    def resumed(cls, result: EMResult) -> "_Run":
        run = cls(result.params, result.restart)
        run.result = result
        run.previous = result.history[-1] if result.history else -math.inf
        return run

    @property
    def params(self) -> Any:
        return self.result.params

    def step(self, model: Model, stats: Any, iteration: int, tol: float, e_seconds: float, callback) -> bool:
        """Checks, M-step, history and callback; True when this run has converged."""
        started = time.perf_counter()
        restart, params, previous = self.result.restart, self.result.params, self.previous
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
                stacklevel=3,
            )
        params = model.m_step(stats)
        reseeded = getattr(params, "reseeded", ())
        if reseeded:
            warnings.warn(
                f"components {list(reseeded)} lost their support at iteration {iteration} and were re-seeded "
                "at the worst-explained rows; consider fewer components or a larger reg_covar",
                ComponentReseededWarning,
                stacklevel=3,
            )
        change = ll - previous
        self.previous = ll
        elapsed = e_seconds + time.perf_counter() - started
        result = self.result
        result.params, result.n_iter, result.lower_bound = params, iteration, ll
        result.history.append(ll)
        result.seconds.append(elapsed)
        if callback is not None:
            callback(IterationInfo(restart, iteration, ll, change, elapsed, params))
        if abs(change) < tol:
            result.converged = True
        return result.converged


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
    run = _Run(params, restart)
    for iteration in range(1, max_iter + 1):
        started = time.perf_counter()
        stats = engine.reduce(partial(model.e_step, run.params), source)
        if run.step(model, stats, iteration, tol, time.perf_counter() - started, callback):
            break
    return run.result


class _Together:
    """The statistics of several runs from the same rows: adds run by run, so it is as
    additive as each run's statistics (any engine can reduce it)."""

    __slots__ = ("parts",)

    def __init__(self, parts: list) -> None:
        self.parts = parts

    def __add__(self, other: "_Together") -> "_Together":
        return _Together([a + b for a, b in zip(self.parts, other.parts)])


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
    checkpoint: Checkpoint | None = None,
) -> tuple[EMResult, list[EMResult]]:
    """``n_init`` runs from ``initialise(restart)``; the best by lower bound, and all runs.

    The runs advance in lockstep: every iteration reads the data once, and each chunk
    feeds the E-step of every run still iterating, so ``n_init`` restarts cost one pass
    per iteration instead of ``n_init`` (what matters when the data streams from
    disk). Each run sees the same chunks in the same order as it would alone, so its
    result is the same bit for bit; a run's ``seconds`` are its own E- and M-step time
    plus an equal share of the reading. The callback sees iteration i of every active
    run (in restart order) before iteration i + 1 of any.

    Warns with :class:`ConvergenceWarning` when the best run did not converge. With a
    ``checkpoint`` whose file exists, continues the fit saved there (no initialisation).
    """
    first = 1
    if checkpoint is not None and os.path.exists(checkpoint.path):
        saved, done = checkpoint.load()
        runs, first = [_Run.resumed(r) for r in saved], done + 1
    else:
        runs = [_Run(initialise(restart), restart) for restart in range(n_init)]
    for iteration in range(first, max_iter + 1):
        active = [run for run in runs if not run.result.converged]
        if not active:
            break
        compute = [0.0] * len(active)

        def e_steps(chunk, active=active, compute=compute) -> _Together:
            parts = []
            for i, run in enumerate(active):
                started = time.perf_counter()
                parts.append(model.e_step(run.params, chunk))
                compute[i] += time.perf_counter() - started
            return _Together(parts)

        started = time.perf_counter()
        together = engine.reduce(e_steps, source)
        shared = max(0.0, time.perf_counter() - started - sum(compute)) / len(active)
        for i, (run, stats) in enumerate(zip(active, together.parts)):
            run.step(model, stats, iteration, tol, compute[i] + shared, callback)
        if checkpoint is not None and iteration % checkpoint.every == 0:
            checkpoint.save([run.result for run in runs], iteration)
    if checkpoint is not None and os.path.exists(checkpoint.path):
        os.unlink(checkpoint.path)  # the fit completed: nothing to resume
    results = [run.result for run in runs]
    best = results[0]
    for result in results[1:]:
        if result.lower_bound > best.lower_bound:
            best = result
    if not best.converged and max_iter > 0:
        warnings.warn(
            f"Best performing initialization did not converge. Try different init parameters, or increase "
            f"max_iter (now {max_iter}), tol (now {tol:g}), or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return best, results
