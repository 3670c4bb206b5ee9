"""Online (stepwise) EM: one M-step per mini-batch, over a running average of statistics.

Cappé & Moulines (2009), Liang & Klein (2009). After mini-batch t (its statistics
normalised to unit weight, s_t),

    S <- (1 - gamma_t) S + gamma_t s_t,   gamma_t = (t + offset) ** -decay,  decay in (0.5, 1],
    params <- M-step(N S),

N the weight S stands for: a pass's, once one is complete, else all rows seen so far
(the M-step of an unregularised model is the same for any N; a prior's pseudo-counts
need it).

A batch lighter than a full one (the last of a pass, a small ``partial_fit``) takes the
step in proportion to its weight, gamma_t * w / W: its average is that much noisier,
and one row taking a full batch's step would move the fit as much as a thousand did (a
1-row last batch moved the weights by 0.1). W is the heaviest batch so far, since
``batch_size`` last changed, so batches of the same size (the rows ``partial_fit`` is
given each time included) all take the schedule's step. Weight, not rows: zero-weight
rows add nothing to a batch, and a row of weight 100 counts as 100 rows, as sample
weights are frequencies.

The first batch replaces S outright (there is nothing to average yet). With decay in
(0.5, 1] the steps satisfy sum gamma = inf and sum gamma^2 < inf, so the parameters
converge to a stationary point of the likelihood; ``offset`` damps the first steps.

When to prefer it: when one pass (or a few) over the data is all the budget allows.
Each row is read about once per pass, like an exact EM iteration, but the parameters
move after every batch instead of once per pass, so one pass gets close to where exact
EM gets after many. Exact EM is still the answer when several passes are affordable:
it is deterministic, monotone, and converges to the same fixed point as scikit-learn.

A model's statistics need ``scale``, ``+`` and ``blend(new, gamma)`` (the running
average, re-expressing moments as needed); the model's ``objective`` gives each
batch's weight and mean log-likelihood.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .._core.batches import minibatches
from .._core.protocols import Model
from .._core.types import Chunk
from .driver import EMResult, IterationInfo, emit

__all__ = ["OnlineState", "continued", "minibatches", "online_step", "run_online", "step_size"]


@dataclass
class OnlineState:
    """Where an online fit stands: resumable by partial_fit."""

    params: Any
    running: Any = None  # the averaged statistics S, None before the first batch
    steps: int = 0  # mini-batches seen (t)
    shift: Any = None  # the sources' rows are the data less this: the state's coordinates
    seen: set[str] = field(default_factory=set)  # once-only notes already raised
    seen_weight: float = 0.0  # the rows' weight read so far, over every batch
    data_weight: float | None = None  # one pass's weight, once a pass is complete (fit); None: partial_fit
    batch_weight: float = 0.0  # W: a full step's batch weight (see the module's docstring)
    batch_size: int = 0  # the batch_size W was found under (0: none yet, or an older model file's)


def continued(model: Model, result: EMResult, shift: Any, batch_size: int) -> OnlineState | None:
    """The online state of an exact fit, for ``partial_fit`` to continue it: its last
    pass's statistics as the running average, and the steps an online pass over its rows
    in mini-batches of ``batch_size`` would have taken (so a new batch moves the fit by
    the step the schedule gives next, not by 1: it does not replace the fit). None when
    the fit kept no statistics (resumed from a checkpoint)."""
    stats = result.stats
    weight = model.objective(stats).weight if stats is not None else 0.0
    if not weight > 0:
        return None
    rows = int(getattr(stats, "rows", 0)) or math.ceil(weight)
    return OnlineState(result.params, running=stats.scale(1.0 / weight), steps=math.ceil(rows / batch_size),
                       shift=shift, seen_weight=weight, batch_weight=weight * min(rows, batch_size) / rows,
                       batch_size=batch_size)


def step_size(t: int, decay: float, offset: float) -> float:
    """gamma_t = (t + offset)^-decay for the t-th batch (t >= 1); 1 for the very first."""
    return 1.0 if t <= 1 else float((t + offset) ** -decay)


def online_step(model: Model, state: OnlineState, chunk: Chunk, decay: float, offset: float,
                combine: Callable[[Any], Any] | None = None, batch_size: int | None = None) -> tuple[float, float]:
    """One mini-batch: E-step at the current params, blend, M-step. Returns the batch's
    mean log-likelihood under the parameters it was evaluated at, and its weight.
    ``combine``: the engine's sum over its processes, when each holds its own part of
    the mini-batch (an engine's ``combine``); every process then takes the same step.
    ``chunk`` None: this process has no rows in the mini-batch (the others' make it).
    ``batch_size``: the rows of a full batch at most (see the module's docstring)."""
    stats = None if chunk is None else model.e_step(state.params, chunk)
    if combine is not None:
        stats = combine(stats)
    if stats is None:  # no process had a row of it
        return math.nan, 0.0
    objective = model.objective(stats)
    if objective.weight <= 0:  # a batch of zero-weight rows carries no information
        return math.nan, 0.0
    stats = stats.scale(1.0 / objective.weight)
    state.steps += 1
    gamma = step_size(state.steps, decay, offset)
    if batch_size and batch_size != state.batch_size:  # batches of another size from now on
        state.batch_weight = state.batch_weight if not state.batch_size else 0.0  # 0: a file that did not say
        state.batch_size = batch_size
    state.batch_weight = max(state.batch_weight, objective.weight)
    gamma *= objective.weight / state.batch_weight
    state.running = stats if state.running is None else state.running.blend(stats, gamma)
    state.seen_weight += objective.weight
    # The running average is per unit weight; the M-step reads it as the data it stands
    # for (a pass's weight, or all seen so far), so that a prior's pseudo-counts weigh
    # against the data as in exact EM, not against a single row.
    mass = state.data_weight if state.data_weight is not None else state.seen_weight
    step = model.m_step(state.running.scale(mass), state.params)
    emit(step.report, f"at mini-batch {state.steps}", state.seen)
    state.params = step.params
    return objective.mean, objective.weight


def run_online(
    model: Model,
    batches: Callable[[], Iterable[Chunk]],
    state: OnlineState,
    *,
    decay: float,
    offset: float,
    max_passes: int,
    tol: float,
    restart: int = 0,
    callback: Callable[[IterationInfo], None] | None = None,
    combine: Callable[[Any], Any] | None = None,
    batch_size: int | None = None,
) -> EMResult:
    """Passes over ``batches()`` (an iterable of chunks) until the mean log-likelihood of
    a pass changes by less than ``tol``, or ``max_passes``.

    The pass mean is of each batch's log-likelihood under the parameters entering that
    batch, so it costs nothing extra; it trails the final parameters' likelihood
    slightly. The result's ``lower_bound`` is the last pass's mean. ``combine`` and
    ``batch_size``: see :func:`online_step`.

    Under a prior (a model with ``prior_gain``) the change is judged with the prior's
    log-density per unit of weight, from the parameters ending one pass to those ending
    the next, as exact EM judges its penalised objective (see ``driver._Run``): the
    likelihood alone stalls while the prior rises.
    """
    result = EMResult(state.params, False, 0, -math.inf, restart=restart)
    previous = -math.inf
    weighs_prior = callable(getattr(model, "prior_gain", None))
    ended = None  # the parameters that ended the previous pass
    for p in range(1, max_passes + 1):
        started = time.perf_counter()
        total = weight = 0.0
        for chunk in batches():
            ll, w = online_step(model, state, chunk, decay, offset, combine, batch_size)
            if w > 0:
                total, weight = total + ll * w, weight + w
        mean = total / weight if weight else -math.inf
        if weight > 0:
            state.data_weight = weight
        elapsed = time.perf_counter() - started
        result.history.append(mean)
        result.accepted.append(True)
        result.seconds.append(elapsed)
        change = mean - previous
        if callback is not None:
            callback(IterationInfo(restart, p, mean, change, elapsed, state.params))
        previous = mean
        gain = (model.prior_gain(state.params, ended) / weight
                if weighs_prior and ended is not None and weight > 0 else 0.0)
        ended = state.params
        result.params, result.n_iter, result.lower_bound = state.params, p, mean
        if abs(change + gain) < tol:
            result.converged = True
            break
    return result
