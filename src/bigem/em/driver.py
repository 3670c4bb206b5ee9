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
    """Save the fit's state to ``path`` every ``every`` iterations (and after each restart).

    A fit given a checkpoint whose file exists resumes from it and reaches the same
    result as an uninterrupted run; the file is removed when the fit completes.
    ``fingerprint`` (JSON) must match to resume: the model, the data shape, the settings.
    ``get_state``/``set_state`` carry the caller's extra state (e.g. the random generator
    that later restarts initialise from). Parameters must be a dataclass of tensors and
    JSON values (``params_type``). Writes are atomic (io.safetensors).
    """

    path: str
    every: int
    params_type: type
    fingerprint: dict
    get_state: Callable[[], dict[str, Tensor]] | None = None
    set_state: Callable[[dict[str, Tensor]], None] | None = None

    def save(self, runs: list[EMResult], best: int | None, current: EMResult | None) -> None:
        from ..io import write_model_file

        tensors: dict[str, Tensor] = {}
        meta: dict[str, Any] = {"format": "bigem-checkpoint", "fingerprint": self.fingerprint}
        meta["runs"] = [_run_meta(r, tensors, None) for r in runs]
        meta["best"] = best
        if best is not None:
            _params_to(runs[best].params, tensors, "best.", meta.setdefault("best_fields", {}))
        meta["current"] = None if current is None else _run_meta(current, tensors, "current.")
        if self.get_state is not None:
            tensors.update({f"state.{k}": v for k, v in self.get_state().items()})
        write_model_file(self.path, tensors, meta)

    def load(self) -> tuple[list[EMResult], int | None, EMResult | None]:
        """(completed runs, index of the best, the run in progress); only the best keeps its params."""
        from ..io import read_model_file

        tensors, meta = read_model_file(self.path)
        if meta.get("format") != "bigem-checkpoint":
            raise ParameterError(f"{self.path}: not a bigem checkpoint (a model file?); pass another checkpoint path")
        if meta.get("fingerprint") != self.fingerprint:
            raise ParameterError(
                f"{self.path}: the checkpoint was written by a different fit ({meta.get('fingerprint')}), not "
                f"this one ({self.fingerprint}); delete it or pass another checkpoint path"
            )
        runs = [EMResult(None, r["converged"], r["n_iter"], r["lower_bound"], r["history"], r["seconds"], r["restart"])
                for r in meta["runs"]]
        best = meta["best"]
        if best is not None:
            runs[best].params = self._params_from(tensors, "best.", meta["best_fields"])
        current = None
        c = meta["current"]
        if c is not None:
            params = self._params_from(tensors, "current.", c["fields"])
            current = EMResult(params, c["converged"], c["n_iter"], c["lower_bound"], c["history"], c["seconds"], c["restart"])
        if self.set_state is not None:
            self.set_state({k[len("state."):]: v for k, v in tensors.items() if k.startswith("state.")})
        return runs, best, current

    def _params_from(self, tensors: dict[str, Tensor], prefix: str, fields: dict) -> Any:
        values = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
        values.update({k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()})
        return self.params_type(**values)


def _params_to(params: Any, tensors: dict[str, Tensor], prefix: str, fields: dict) -> None:
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        if isinstance(value, Tensor):
            tensors[prefix + f.name] = value
        else:
            fields[f.name] = list(value) if isinstance(value, tuple) else value


def _run_meta(run: EMResult, tensors: dict[str, Tensor], prefix: str | None) -> dict:
    meta = {
        "converged": run.converged,
        "n_iter": run.n_iter,
        "lower_bound": run.lower_bound,
        "history": list(run.history),
        "seconds": list(run.seconds),
        "restart": run.restart,
    }
    if prefix is not None:
        _params_to(run.params, tensors, prefix, meta.setdefault("fields", {}))
    return meta


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
    resume: EMResult | None = None,
    save: Callable[[EMResult], None] | None = None,
) -> EMResult:
    """Iterate E and M steps from ``params`` until convergence or ``max_iter``.

    ``resume`` continues a run saved after its ``n_iter``-th iteration (its params are
    those after that M-step); ``save(result)`` is offered the state after every iteration.
    """
    result = resume or EMResult(params, converged=False, n_iter=0, lower_bound=-math.inf, restart=restart)
    params = result.params
    previous = result.history[-1] if result.history else -math.inf
    for iteration in range(result.n_iter + 1, max_iter + 1):
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
        if save is not None:
            save(result)
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
    checkpoint: Checkpoint | None = None,
) -> tuple[EMResult, list[EMResult]]:
    """``n_init`` runs from ``initialise(restart)``; the best by lower bound, and all runs.

    Warns with :class:`ConvergenceWarning` when the best run did not converge. With a
    ``checkpoint`` whose file exists, continues the fit saved there.
    """
    runs: list[EMResult] = []
    best_index: int | None = None
    current: EMResult | None = None
    if checkpoint is not None and os.path.exists(checkpoint.path):
        runs, best_index, current = checkpoint.load()
    save = None
    if checkpoint is not None:
        every = checkpoint.every

        def save(run: EMResult) -> None:
            if run.n_iter % every == 0:
                checkpoint.save(runs, best_index, run)

    for restart in range(len(runs), n_init):
        resume = current if current is not None and current.restart == restart else None
        run = run_em(
            model,
            engine,
            source,
            resume.params if resume is not None else initialise(restart),
            max_iter=max_iter,
            tol=tol,
            restart=restart,
            callback=callback,
            resume=resume,
            save=save,
        )
        runs.append(run)
        if best_index is None or run.lower_bound > runs[best_index].lower_bound:
            best_index = len(runs) - 1
        if checkpoint is not None and restart + 1 < n_init:
            checkpoint.save(runs, best_index, None)
    assert best_index is not None
    best = runs[best_index]
    if checkpoint is not None and os.path.exists(checkpoint.path):
        os.unlink(checkpoint.path)
    if not best.converged and max_iter > 0:
        warnings.warn(
            f"Best performing initialization did not converge. Try different init parameters, or increase "
            f"max_iter (now {max_iter}), tol (now {tol:g}), or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return best, runs
