"""The EM loop, once, for every model and engine: iterations, convergence, restarts,
history, checkpoints.

A model is anything with the :class:`~bigem._core.protocols.Model` contract
(``e_step`` -> additive statistics, ``m_step`` -> :class:`Step`, ``objective``); an
engine anything with ``reduce(task, source)``. Semantics follow scikit-learn:
``lower_bound`` is the mean objective of the parameters *entering* the last
iteration, the returned parameters are those after its M-step, and convergence is
``|change of the mean objective| < tol``. Nothing here names a model family: what a
step means for the user travels in the model's :class:`Report` (its notes become
warnings, ``exact`` says whether the monotonicity check applies) and its ``advice``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .._core import parallel, workspace
from .._core.errors import (ComponentLostError, LikelihoodDecreaseWarning, NumericalError, ParameterError,
                             convergence_warning)
from .._core.protocols import Engine, Model, Report, Task
from .._core.stats import Together
from .accelerate import Squarem, aitken_converged


# A fall of the objective within this many float64 ulps (relative) is rounding, not a
# decrease: one objective summed in another order, or a fixed point evaluated twice.
LAST_BITS = 64 * 2.0**-52

# StepMix's rel_tol: the gain rule of every run begun within ``relative_tolerance`` also
# stops where |change| < rel_tol |objective|. A context, not an argument: StepMix applies
# it to each EM its fit runs (the measurement model's, the structural model's, a
# bootstrap's), through estimators that take scikit-learn's parameters alone.
_RELATIVE_TOL: contextvars.ContextVar[float] = contextvars.ContextVar("relative_tol", default=0.0)


@contextlib.contextmanager
def relative_tolerance(rel_tol: float):
    """Every EM run begun in the block stops on the gain rule where the change of the mean
    objective is below ``tol`` or below ``rel_tol`` times the objective (StepMix's rule)."""
    token = _RELATIVE_TOL.set(float(rel_tol))
    try:
        yield
    finally:
        _RELATIVE_TOL.reset(token)


@dataclass(frozen=True, slots=True)
class IterationInfo:
    """What the callback receives after each iteration (online EM: after each pass)."""

    restart: int
    iteration: int
    log_likelihood: float  # mean objective of the parameters entering this iteration
    change: float
    seconds: float
    params: Any  # after this iteration's M-step (a rejected extrapolation: the point evaluated next)
    report: Report = field(default_factory=Report)
    accepted: bool = True  # False: an extrapolated point whose objective fell short, set aside


@dataclass
class EMResult:
    """One run of EM from one initialisation."""

    params: Any
    converged: bool
    n_iter: int
    lower_bound: float
    history: list[float] = field(default_factory=list)  # the objective of every pass
    seconds: list[float] = field(default_factory=list)
    restart: int = 0
    accepted: list[bool] = field(default_factory=list)  # per pass: False for a rejected extrapolation
    # the last accepted pass's statistics, whose M-step gave params (None after a resume
    # from a checkpoint): online EM (partial_fit) continues the fit from them
    stats: Any = None


def emit(report: Report, when: str, seen: set[str]) -> None:
    """Raise a step's notes as warnings; ``seen`` holds the categories of the once-only
    notes raised (a count in the text may differ from pass to pass)."""
    for note in report.notes:
        if note.once and note.category.__name__ in seen:
            continue
        if note.once:
            seen.add(note.category.__name__)
        warnings.warn(note.text.replace("{when}", when), note.category, stacklevel=4)


@dataclass
class Checkpoint:
    """Save every run's state to ``path`` every ``every`` iterations, atomically (io).

    A fit given a checkpoint whose file exists resumes from it and reaches the same
    result as an uninterrupted run; the file is removed when the fit completes.
    ``fingerprint`` (JSON) must match to resume: the model, the settings, and the data
    (its shape, feature names, and what identifies its rows: the files' sizes and
    times, or a digest of the first and last rows in memory). In a group of processes
    (torch.distributed) the primary one writes, reads and removes the file, and every
    process resumes from what it read.
    Parameters travel through the model's ``to_tensors`` / ``from_tensors``.
    """

    path: str
    every: int
    fingerprint: dict

    def save(self, model: Any, runs: list[_Run], iteration: int) -> None:
        from ..io import write_model_file

        tensors: dict[str, Tensor] = {}
        saved = []
        for i, run in enumerate(runs):
            r = run.result
            tensors.update({f"run{i}.{k}": v for k, v in model.to_tensors(r.params).items()})
            tensors.update({f"run{i}.point.{k}": v for k, v in model.to_tensors(run.point).items()})
            entry = dict(converged=r.converged, n_iter=r.n_iter, lower_bound=r.lower_bound, history=list(r.history),
                         seconds=list(r.seconds), restart=r.restart, accepted=list(r.accepted), exact=run.exact,
                         penalised=list(run.penalised))
            if run.evaluated is not None:
                tensors.update({f"run{i}.evaluated.{k}": v for k, v in model.to_tensors(run.evaluated).items()})
            if run.squarem is not None:
                state, entry["squarem"] = run.squarem.state(model)
                tensors.update({f"run{i}.squarem.{k}": v for k, v in state.items()})
            saved.append(entry)
        meta = {"format": "bigem-checkpoint", "fingerprint": self.fingerprint, "iteration": iteration, "runs": saved}
        write_model_file(self.path, tensors, meta)

    def opened(self) -> tuple[dict[str, Tensor], dict[str, Any]] | None:
        """What the file holds to resume from, or None: a fit starts afresh, once the path
        is known to take the file (its folder exists, it is no folder), before any work
        that the first save would otherwise lose."""
        if os.path.exists(self.path):
            return self.read()
        from ..io import check_model_path

        check_model_path(self.path, what="checkpoint")
        return None

    def load(self, model: Any) -> tuple[list[dict[str, Any]], int]:
        """Every run as saved (its EMResult ``result``, the ``point`` its next E-step
        evaluates, ``exact``, and its ``squarem`` state), and the iteration it was saved after."""
        return self.restore(model, *self.read())

    def read(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The file's tensors and metadata, checked to be a checkpoint of this fit."""
        from .._core.errors import ModelFileError
        from ..io import read_model_file

        try:
            tensors, meta = read_model_file(self.path)
        except ModelFileError as exc:  # a model file's advice ("save the model again") is not a checkpoint's
            text = str(exc).removeprefix(f"{os.fspath(self.path)}: ")  # (a path may hold parentheses too)
            invalid = "not a valid bigem model file ("
            reason = text[len(invalid):-1] if text.startswith(invalid) and text.endswith(")") else text
            reason = reason.replace("; save the model again", "")
            raise ModelFileError(f"{self.path}: not a checkpoint bigem can resume from ({reason}); delete it to start "
                                 "the fit afresh, or pass another checkpoint path") from None
        if meta.get("format") != "bigem-checkpoint":
            raise ParameterError(f"{self.path}: not a bigem checkpoint (a model file?); pass another checkpoint path")
        saved = meta.get("fingerprint")
        if saved != self.fingerprint:
            saved = saved if isinstance(saved, dict) else {}
            differ = sorted(k for k in set(saved) | set(self.fingerprint) if saved.get(k) != self.fingerprint.get(k))
            # a data fingerprint is the engine's (a Dask collection's partitions, a file's or an
            # array's rows): the same rows read by another engine differ there too
            data, ours = saved.get("data"), self.fingerprint.get("data")
            engines = " (or the same data read by another engine: resume on the engine that wrote it)" if (
                "data" in differ and not (isinstance(data, dict) and isinstance(ours, dict) and set(data) == set(ours))
            ) else ""  # fingerprints of one form: the same reader, other rows
            raise ParameterError(
                f"{self.path}: the checkpoint was written by a different fit, of other data or settings (they "
                f"differ in: {', '.join(differ)}){engines}; to start fresh, delete it or pass another checkpoint path"
            )
        return tensors, meta

    def restore(self, model: Any, tensors: dict[str, Tensor], meta: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
        """:meth:`load` from what :meth:`read` returned."""
        runs = []
        for i, r in enumerate(meta["runs"]):
            def under(prefix: str) -> dict[str, Tensor]:
                return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

            own = {k: v for k, v in under(f"run{i}.").items() if not k.startswith(("point.", "squarem.", "evaluated."))}
            params = model.from_tensors(own)
            result = EMResult(params, r["converged"], r["n_iter"], r["lower_bound"], r["history"], r["seconds"],
                              r["restart"], r.get("accepted", [True] * len(r["history"])))
            point, evaluated = under(f"run{i}.point."), under(f"run{i}.evaluated.")
            runs.append(dict(result=result, point=model.from_tensors(point) if point else params,
                             exact=bool(r.get("exact", True)), penalised=r.get("penalised"),
                             evaluated=model.from_tensors(evaluated) if evaluated else None,
                             squarem=(under(f"run{i}.squarem."), r["squarem"]) if "squarem" in r else None))
        return runs, int(meta["iteration"])


class _Run:
    """One run's state between passes: the point the next E-step evaluates, and
    :meth:`step`, what follows that E-step (checks, M-step, history, convergence)."""

    def __init__(self, result: EMResult, model: Model, accelerate: str | None, stopping: str | Callable[[], bool],
                 saved: dict[str, Any] | None = None, start: float = -math.inf) -> None:
        self.result = result
        self.accepted = [v for v, ok in zip(result.history, result.accepted or [True] * len(result.history)) if ok]
        self.previous = self.accepted[-1] if self.accepted else start  # the last accepted objective
        self.point = result.params  # where the next E-step evaluates
        # whether the parameters came from a plain EM step on these data; a warm start's
        # came from another fit, maybe of other data, so its first step is not checked
        self.exact = start == -math.inf
        self.prior_gain = 0.0  # how far the likelihood may fall for the prior's sake (MAP)
        # Under a prior EM increases the penalised objective, the log-likelihood plus the
        # prior's log-density per unit of weight, and the likelihood alone may fall and
        # turn: stopping on its change stopped such fits short of the optimum, converged.
        # A model that says its prior's change between two points (``prior_gain``) is
        # judged on the penalised objective: ``penalised`` holds it at the accepted points
        # (less the start's prior; the accepted objectives themselves without a prior), and
        # ``evaluated`` the last accepted point, against which the next one's prior counts.
        # (an HMM keeps hmmlearn's monitor, on the likelihood: its prior_gain judges SQUAREM's
        # extrapolations alone, ``likelihood_rule``)
        self.weighs_prior = callable(getattr(model, "prior_gain", None)) and not getattr(model, "likelihood_rule", False)
        penalised = saved.get("penalised") if saved is not None else None  # (a checkpoint from before: none)
        self.penalised = list(self.accepted if penalised is None else penalised)
        self.evaluated = saved.get("evaluated") if saved is not None else None
        self.stepped: tuple[Any, float] | None = None  # the last M-step's parameters and its report's prior gain
        self.seen: set[str] = set()
        self.squarem = Squarem(model) if accelerate == "squarem" else None
        self.stopping = stopping
        self.rel_tol = _RELATIVE_TOL.get()  # StepMix's relative tolerance (``relative_tolerance``), 0: none
        self.fixed: Any = None  # the statistics, where they do not depend on the parameters
        if saved is not None:  # resumed from a checkpoint: continue exactly where it stood
            self.point, self.exact = saved["point"], saved["exact"]
            if self.squarem is not None and saved["squarem"] is not None:
                self.squarem.restore(model, *saved["squarem"])

    def step(self, model: Model, stats: Any, iteration: int, tol: float, e_seconds: float, callback) -> bool:
        """One pass's statistics at :attr:`point`; True when this run has converged."""
        started = time.perf_counter()
        restart, params, previous = self.result.restart, self.point, self.previous
        objective = model.objective(stats)
        ll = objective.mean
        gain = self._prior_change(model, params, objective.weight) if math.isfinite(ll) else 0.0
        extrapolated = self.squarem is not None and self.squarem.pending
        if extrapolated:
            # strictly: no slack for rounding (a rejection costs one pass only), and on the
            # penalised objective, as the extrapolation is judged against a MAP step (a
            # model judged on its likelihood too: an extrapolation is no step of its rule)
            judged = gain if self.weighs_prior or not math.isfinite(ll) else self._prior_change(
                model, params, objective.weight, always=True)
            if not math.isfinite(ll) or ll + judged < previous:  # the extrapolation fell short
                self.point = self.squarem.reject()
                self._record(ll, False, iteration, e_seconds + time.perf_counter() - started)
                if callback is not None:
                    callback(IterationInfo(restart, iteration, ll, ll - previous, self.result.seconds[-1], self.point,
                                           Report(exact=False, total=objective.total), accepted=False))
                return False
        if not math.isfinite(ll):
            raise NumericalError(
                f"the mean log-likelihood became {ll} at iteration {iteration} (restart {restart}); "
                f"check the data for extreme values, or {model.advice}"
            )
        # last-bit rounding is never a decrease, whatever the model's own bound says
        rounding = LAST_BITS * max(abs(previous), abs(ll)) if previous > -math.inf else 0.0
        # the last M-step's prior gain as slack, whether or not the fall is judged with the
        # prior: mclust's M-steps for some models (EEI keeps the plain means) are not the
        # MAP of its prior, and from an extrapolated point may lower the penalised objective
        with _parameter_threads(model, params):  # a step's tensors are the parameters' size (not the callback's)
            # the model's bound (eigenvalues of every covariance) is asked only of a fall
            # past the slack it adds to: most passes rise, and the bound cost small fits a
            # tenth of their time
            falls = previous > -math.inf and ll + gain < previous - (rounding + self.prior_gain)  # grouped as below
            if falls:
                allowed = max(model.decrease_tolerance(params, previous), rounding) + self.prior_gain
                falls = ll + gain < previous - allowed
            if falls and self.exact:
                warnings.warn(_decrease_message(previous, ll, gain, iteration, restart), LikelihoodDecreaseWarning,
                              stacklevel=3)
            # the 'floor' rule (accelerated HMMs): a plain EM step whose penalised objective
            # (a MAP step's, which never falls) fell within the rounding of the model's
            # dtype stops the run, as hmmlearn's monitor stops plain EM at its first fall;
            # a float32 HMM went on, on rounding noise, to n_iter (a fall of the likelihood
            # alone may be the prior's trade, which goes on)
            floor = False
            if self.stopping == "floor" and not extrapolated and self.exact and previous > -math.inf \
                    and ll + gain < previous:
                judged = ll + (gain if self.weighs_prior else self._prior_change(model, params, objective.weight,
                                                                                  always=True))
                floor = previous - dtype_rounding(model, previous) <= judged < previous
            step = model.m_step(stats, params)
        if self.stopping == "mclust" and not (step.report.exact or step.report.smooth):
            # mclust's EM has no re-seeding: a component that lost its support or turned
            # singular ends the fit (mclust's missing BIC), which select and the
            # classifiers leave out; re-seeding, such a candidate ran all its iterations
            raise ComponentLostError(
                f"a component lost its support or its covariance turned singular at iteration {iteration} "
                f"(restart {restart}), which ends a fit under mclust's stopping rule as it ends mclust's EM; "
                f"{model.advice}, or pass stopping='gain' to re-seed the component and go on"
            )
        self.result.stats = stats
        emit(step.report, f"at iteration {iteration}", self.seen)
        self.exact = step.report.exact
        self.prior_gain = max(0.0, step.report.prior_gain)
        # a plain step's report holds the prior's change to its parameters (a jump's does not)
        self.stepped = (step.params, step.report.prior_gain) if step.report.exact or step.report.smooth else None
        change = ll - previous
        penalised_change = change + gain  # what the stopping rules judge (the change itself without a prior)
        # a warm start under a prior (its M-step moved the prior's density): the point its
        # lower bound was measured at is not known here, nor so the prior's change from it;
        # the first change settles nothing (without a prior it does, as scikit-learn's)
        unknown = (self.weighs_prior and self.evaluated is None and previous > -math.inf
                   and step.report.prior_gain != 0.0)
        self.penalised.append(ll if not self.penalised else self.penalised[-1] + penalised_change)
        self.previous, self.evaluated = ll, params
        self.accepted.append(ll)
        result = self.result
        result.params, result.lower_bound = step.params, ll
        if self.squarem is not None:
            self.point = self.squarem.advance(params, step.params, step.report.exact or step.report.smooth)
        else:
            self.point = step.params
        self._record(ll, True, iteration, e_seconds + time.perf_counter() - started)
        if callback is not None:
            callback(IterationInfo(restart, iteration, ll, change, result.seconds[-1], step.params, step.report))
        if callable(self.stopping):  # the caller's rule, asked after the callback saw this iteration
            result.converged = bool(self.stopping())
        elif not (step.report.exact or step.report.smooth):
            # a jump (a re-seeded component): its parameters' likelihood is yet unknown,
            # so the run cannot end on it as converged; should it end here (max_iter), it
            # returns the parameters it evaluated, whose likelihood it reports (the next
            # pass goes on from the jump)
            result.converged = False
            result.params = params
        elif self.stopping == "aitken":
            result.converged = aitken_converged(self.penalised, tol) and not unknown
        elif self.stopping == "mclust":
            # mclust's rule on the total: |change| <= tol (1 + |total|); it returns the
            # parameters it evaluated, whose log-likelihood it reports
            total, before = objective.total, previous * objective.weight
            result.converged = bool(math.isfinite(before) and abs(total - before) <= tol * (1.0 + abs(total)))
            if result.converged:
                result.params = params
        elif self.stopping == "rise":  # hmmlearn's monitor: a fall stops the run as well
            result.converged = bool(change < tol)
        else:
            small = abs(penalised_change) < tol or abs(penalised_change) < self.rel_tol * abs(ll)
            result.converged = bool(small) and not unknown or floor
        return result.converged

    def _prior_change(self, model: Model, params: Any, weight: float, always: bool = False) -> float:
        """The prior's log-density at ``params`` less at the last accepted point, per unit of
        weight (0 without a prior or such a point, or unless the run weighs it or
        ``always``): the last M-step's report says it where ``params`` are that step's,
        else the model computes it (an extrapolated point)."""
        if not (self.weighs_prior or always) or self.evaluated is None:
            return 0.0
        if self.stepped is not None and params is self.stepped[0]:
            return self.stepped[1]
        return model.prior_gain(params, self.evaluated) / max(weight, 1e-300)

    def _record(self, ll: float, accepted: bool, iteration: int, seconds: float) -> None:
        result = self.result
        result.n_iter = iteration
        result.history.append(ll)
        result.accepted.append(accepted)
        result.seconds.append(seconds)


def dtype_rounding(model: Model, value: float) -> float:
    """How far a mean objective near ``value`` may move by the rounding of the model's
    dtype alone: a float32 model's sums carry about 1e-6 of it (its E-step's terms),
    a float64 one's its last bits."""
    if getattr(model, "dtype", torch.float64) == torch.float32:
        return 1e-6 * (abs(value) + 1.0)
    return LAST_BITS * abs(value)


class Lockstep:
    """Several runs' E-steps from one read of each chunk. Made once per fit, so that an
    engine that caches the model per fit (Dask) ships it once."""

    def __init__(self, model: Model) -> None:
        self.model = model

    def e_steps(self, params: list, chunk: Any, links: list | None = None) -> Together:
        return self._each("e_step", params, chunk, links)

    def each(self, method: str, params: list, chunk: Any) -> Together:
        """The model's ``method`` for each of ``params`` (the first pass over a source whose
        chunks are linked: see :func:`linked`)."""
        return self._each(method, params, chunk)

    def _each(self, method: str, params: list, chunk: Any, links: list | None = None) -> Together:
        parts, seconds = [], []
        fn = getattr(self.model, method)
        with workspace.in_turn(len(params)):  # each run's prepared parameters, kept chunk after chunk
            for i, p in enumerate(params):
                started = time.perf_counter()
                parts.append(fn(p, chunk) if links is None else fn(p, chunk, links=links[i]))
                seconds.append(time.perf_counter() - started)
        return Together(parts, seconds)


def linked(model: Model, engine: Engine, source: Any, params: list, transfers: str = "transfers",
           link: str = "link") -> list | None:
    """Where a source cuts its sequences into pieces (``source.pieces``, see
    :mod:`bigem.models.hmm_pieces`), each piece's E-step needs what the pieces around it
    give: one pass of the model's ``transfers`` and its ``link`` make that, for each of
    ``params``; None where the chunks stand alone. (Viterbi names its own pair.)"""
    pieces = getattr(source, "pieces", None)
    if pieces is None:
        return None
    found = engine.reduce(Task(Lockstep(model), "each", (transfers, params)), source)
    return [getattr(model, link)(t, pieces.first) for t in found.parts]


def fit_em(
    model: Model,
    engine: Engine,
    source: Any,
    initialise: Callable[[int], Any],
    *,
    n_init: int,
    max_iter: int,
    tol: float,
    callback: Callable[[IterationInfo], None] | None = None,
    checkpoint: Checkpoint | None = None,
    warn_unconverged: bool = True,
    first_restart: int = 0,
    accelerate: str | None = None,
    stopping: str | Callable[[], bool] = "gain",
    start: float = -math.inf,
) -> tuple[EMResult, list[EMResult]]:
    """``n_init`` runs from ``initialise(restart)``; the best by lower bound, and all runs.

    The runs advance in lockstep: every iteration reads the data once, and each chunk
    feeds the E-step of every run still iterating, so ``n_init`` restarts cost one pass
    per iteration instead of ``n_init`` (what matters when the data streams from
    disk). Each run sees the same chunks in the same order as it would alone, so its
    result is the same bit for bit; a run's ``seconds`` are its own E- and M-step time
    plus an equal share of the reading. The callback sees iteration i of every active
    run (in restart order) before iteration i + 1 of any.

    Warns with :class:`ConvergenceWarning` when the best run did not converge (unless
    ``warn_unconverged`` is False, as hmmlearn's models do not). With a ``checkpoint``
    whose file exists, continues the fit saved there (no initialisation), extrapolation
    state included.

    ``accelerate="squarem"`` extrapolates the EM map (``em.accelerate``): an iteration is
    then a pass over the data, accepted or not, and ``max_iter`` counts passes.
    ``stopping``: "gain" (|change of the mean objective| < tol), "rise" (change < tol,
    hmmlearn's rule, which a fall under a prior ends too), "floor" (the gain rule, and
    a plain EM step whose objective fell within the rounding of the model's dtype ends
    the run: hmmlearn's first fall, for accelerated HMMs), a callable (asked, with no
    arguments, after ``callback`` has seen the iteration: hmmlearn's custom monitors), "aitken" (the
    extrapolated limit of the objective within tol of its value) or "mclust" (mclust's
    |change of the total| <= tol (1 + |total|), and the run ends on the parameters that
    were evaluated last, whose objective it reports, not on one more M-step).

    ``start``: the objective the runs continue from (a warm start's ``lower_bound_``, as
    scikit-learn does): the first iteration's change is measured from it, so a warm
    start that has already converged stops after one iteration.
    """
    first = 1
    # the primary process reads the checkpoint, every process resumes from what it read
    found = None if checkpoint is None else engine.share(checkpoint.opened)
    if found is not None:
        saved, done = checkpoint.restore(model, *found)
        runs, first = [_Run(r["result"], model, accelerate, stopping, r) for r in saved], done + 1
    else:
        restarts = range(first_restart, first_restart + n_init)
        runs = [_Run(EMResult(initialise(r), False, 0, -math.inf, restart=r), model, accelerate, stopping,
                     start=start) for r in restarts]
    seen: set[str] = set()  # once-only notes are raised once a fit, not once a restart
    for run in runs:
        run.seen = seen
    lockstep = Lockstep(model)
    # where the E-step's statistics do not depend on the parameters (every row's
    # responsibilities fixed by its label), one pass gathers them and the model restates
    # them at each later point: the rest of the fit reads no data
    restate = getattr(model, "restate", None) if getattr(model, "fixed_statistics", False) else None
    for iteration in range(first, max_iter + 1):
        active = [run for run in runs if not run.result.converged]
        if not active:
            break
        started = time.perf_counter()
        if restate is not None and all(run.fixed is not None for run in active):
            parts = [restate(run.fixed, run.point) for run in active]
            seconds = [0.0] * len(active)
        else:
            points = [run.point for run in active]
            links = linked(model, engine, source, points)
            together = engine.reduce(Task(lockstep, "e_steps", (points,), {} if links is None else {"links": links}),
                                     source)
            parts, seconds = together.parts, together.seconds
            if restate is not None:
                for run, stats in zip(active, parts):
                    run.fixed = stats
        with workspace.in_turn(len(active)):  # each run's M-step asks for its old and new parameters in turn
            for run, stats, own in zip(active, parts, _shares(time.perf_counter() - started, seconds)):
                run.step(model, stats, iteration, tol, own, callback)
        if checkpoint is not None and iteration % checkpoint.every == 0 and engine.primary:
            checkpoint.save(model, runs, iteration)  # the primary process alone writes
    if checkpoint is not None and engine.primary and os.path.exists(checkpoint.path):
        os.unlink(checkpoint.path)  # the fit completed: nothing to resume
    results = [run.result for run in runs]
    best = results[0]
    for result in results[1:]:
        # restarts that reach one optimum (labelled differently) differ in their last
        # bits, which the rows' split into chunks and processes decides: within rounding
        # the earlier restart is kept, so the answer does not depend on the split
        if result.lower_bound > best.lower_bound + LAST_BITS * max(abs(best.lower_bound), abs(result.lower_bound)):
            best = result
    if warn_unconverged and not best.converged and max_iter > 0:
        warnings.warn(  # scikit-learn's words, to the letter: filters and tests match them
            "Best performing initialization did not converge. Try different init parameters, or increase "
            "max_iter, tol, or check for degenerate data.",
            convergence_warning(),
            stacklevel=2,
        )
    return best, results


def _parameter_threads(model: Model, params: Any):
    """Context for the M-steps: on one torch thread where the parameters are small (see
    :func:`~bigem._core.parallel.one_thread_when_small`): a step's many small operations
    gain nothing from threads, and on a busy machine each waits for them."""
    to_tensors = getattr(model, "to_tensors", None)  # a model without checkpoints keeps the caller's threads
    if to_tensors is None:
        return contextlib.nullcontext()
    tensors = [t for t in to_tensors(params).values() if isinstance(t, Tensor)]
    elements = sum(t.numel() for t in tensors)
    return parallel.one_thread_when_small(elements, tensors[0].device if tensors else "cpu")


def _shares(wall: float, compute: list[float]) -> list[float]:
    """Each run's share of a pass's wall time: its own E-step time plus an equal share of
    the rest (reading); or, when the E-steps ran in parallel on a cluster's workers and
    their times add up to more than the wall time, the wall time in proportion."""
    total = sum(compute)
    if total > wall > 0:
        return [wall * c / total for c in compute]
    rest = max(0.0, wall - total) / len(compute)
    return [c + rest for c in compute]


def run_em(
    model: Model,
    engine: Engine,
    source: Any,
    params: Any,
    *,
    max_iter: int,
    tol: float,
    restart: int = 0,
    callback: Callable[[IterationInfo], None] | None = None,
    accelerate: str | None = None,
    stopping: str | Callable[[], bool] = "gain",
    checkpoint: Checkpoint | None = None,
) -> EMResult:
    """One run of :func:`fit_em` from ``params`` (no convergence warning); with a
    ``checkpoint`` whose file exists, the run saved there continues instead."""
    best, _ = fit_em(model, engine, source, lambda r: params, n_init=1, max_iter=max_iter, tol=tol,
                     callback=callback, warn_unconverged=False, first_restart=restart, accelerate=accelerate,
                     stopping=stopping, checkpoint=checkpoint)
    return best


def _decrease_message(previous: float, ll: float, gain: float, iteration: int, restart: int) -> str:
    """What fell: the log-likelihood, or under a prior (``gain``, its log-density's change
    per unit of weight) the objective EM raises, the two together, though the
    log-likelihood alone may have risen."""
    if gain == 0.0:
        what = f"EM log-likelihood decreased from {previous:.10g} to {ll:.10g}"
    else:
        moved = "rose" if ll >= previous else "fell"
        what = (f"EM's objective (the mean log-likelihood plus the prior's log-density per unit of weight) decreased "
                f"by {previous - ll - gain:.4g}: the log-likelihood {moved} from {previous:.10g} to {ll:.10g} and the "
                f"prior's log-density changed by {gain:.4g}")
    return (f"{what} at iteration {iteration} (restart {restart}). EM must never decrease it: this is a bug in bigem; "
            "please report it with the data shape, dtype and parameters.")
