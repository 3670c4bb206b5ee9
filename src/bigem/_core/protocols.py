"""The contracts between layers, typed: what the EM driver asks of a model, what an
engine asks of a task, and what a model reports beside its new parameters.

The driver knows models only through :class:`Model` and engines only through
:class:`Engine`; a model knows neither. Everything a model tells the driver travels
in return values (:class:`Step`, :class:`Objective`), never in side attributes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from torch import Tensor

from .stats import Stats
from .types import Chunk

P = TypeVar("P")
S = TypeVar("S", bound=Stats)


@dataclass(frozen=True, slots=True)
class Note:
    """A warning the model asks the driver to raise after a step. ``text`` may hold
    ``{when}``, replaced by where the fit stands ("at iteration 3", "at mini-batch 12");
    ``once``: raise it at most once per fit."""

    category: type[Warning]
    text: str
    once: bool = False


@dataclass(frozen=True, slots=True)
class Report:
    """What an M-step tells the driver beside the parameters.

    ``exact``: the step is a plain EM step, so the next objective must not fall
    (False when the model re-seeded a component: a jump, not an ascent). ``smooth``:
    a step that is not exact but no jump either (a Newton step for a covariate
    model): the parameters still move as a smooth map of the previous ones, so an
    extrapolation (SQUAREM) may build on it; a jump starts its cycle afresh.
    ``notes``: warnings to raise. ``total``: the objective of the statistics the step
    read, unnormalised (hmmlearn's monitor reports totals). ``prior_gain``: how much
    the step raised the log-density of a prior, per unit of the objective's weight: a
    MAP step maximises likelihood plus prior, so the next objective (the likelihood)
    may fall by up to this much without any error.
    """

    exact: bool = True
    smooth: bool = False
    notes: tuple[Note, ...] = ()
    total: float = math.nan
    prior_gain: float = 0.0


@dataclass(frozen=True, slots=True)
class Step(Generic[P]):
    """An M-step's result: the new parameters and its :class:`Report`."""

    params: P
    report: Report = field(default_factory=Report)


@dataclass(frozen=True, slots=True)
class Objective:
    """The quantity EM increases, from the statistics of one pass: ``total`` over
    ``weight`` (the rows, or their summed sample weights). The log-likelihood for the
    models we ship; an evidence lower bound for variational ones."""

    total: float
    weight: float

    @property
    def mean(self) -> float:
        return self.total / self.weight if self.weight > 0 else -math.inf


class Model(Protocol[P, S]):
    """What the EM driver needs of a model: math only, no I/O, no loops over chunks."""

    advice: str  # what a user can change when the arithmetic breaks down ("increase reg_covar (now 1e-06)")

    def e_step(self, params: P, chunk: Any) -> S:
        """Additive statistics of one chunk under ``params``."""
        ...

    def m_step(self, stats: S, params: P) -> Step[P]:
        """New parameters from the statistics alone (``params``: the E-step's, for what it keeps)."""
        ...

    def objective(self, stats: S) -> Objective:
        """The objective of the parameters the statistics were gathered under."""
        ...

    def decrease_tolerance(self, params: P, value: float) -> float:
        """How far the mean objective may fall below ``value`` by rounding alone."""
        ...


class Parametrised(Protocol[P]):
    """A model whose parameters map to tensors (files, checkpoints) and to one
    unconstrained vector (extrapolation, as SQUAREM does): every vector maps back to
    valid parameters (logits for weights, log-diagonal Cholesky factors for covariances)."""

    def to_tensors(self, params: P) -> dict[str, Tensor]: ...

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> P: ...

    def flatten(self, params: P) -> Tensor: ...

    def unflatten(self, vector: Tensor, like: P) -> P: ...


class OnlineStats(Protocol):
    """Statistics online EM can average: ``blend`` is (1 - gamma) self + gamma new,
    re-expressed about new's reference point where moments need it."""

    def blend(self, new: Any, gamma: float) -> Any: ...


@dataclass(frozen=True)
class Task:
    """One method of a model applied to each chunk: ``getattr(model, method)(*args,
    chunk, **kwargs)``. Engines map it over chunks and sum the results. Naming the
    model apart from the arguments lets a distributed engine ship the model (and its
    scratch buffers) once per fit, and only the arguments (the parameters) per call."""

    model: Any
    method: str
    args: tuple = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __call__(self, chunk: Chunk) -> Any:
        return getattr(self.model, self.method)(*self.args, chunk, **self.kwargs)


class Engine(Protocol):
    """Execution only: where the chunks are folded. Knows no model.

    An engine may run as one of a group of processes (torch.distributed): each folds its
    own rows, and :meth:`reduce` returns the group's sum on every process. The members
    below that speak of "processes" are trivial in one process.
    """

    primary: bool  # whether this process writes files and prints (the group's rank 0)

    def reduce(self, task: Task, source: Any) -> Any:
        """The sum over every chunk of the source of ``task(chunk)``."""
        ...

    def stream(self, source: Any) -> Iterator[Chunk]:
        """The chunks in row order through this process (online EM)."""
        ...

    def sharing_cores(self, source: Any) -> AbstractContextManager:
        """A context for loops over :meth:`stream` beside a decoding source."""
        ...

    def batches(self, source: Any, rows: int) -> Iterator[Chunk]:
        """Online EM's mini-batches of ``rows`` rows, in row order: this process's part of
        each (every process of a group yields as many parts; :meth:`combine` sums their
        statistics)."""
        ...

    def combine(self, stats: Any) -> Any:
        """The sum over the processes of statistics each computed on its own rows (the
        statistics themselves in one process)."""
        ...

    def share(self, make: Callable[[], Any]) -> Any:
        """``make()`` evaluated by the primary process alone, its value (or its exception)
        on every process: what one process reads (a checkpoint) all act on alike."""
        ...

    def opened(self, make: Callable[[], Any], settings: dict | None = None) -> Any:
        """``make()`` (opening this process's data: a source) on every process, checked
        together before any exchange: an error in one process is raised by every process,
        and processes that opened different data, or were given different ``settings``
        (name -> (digest, text)), are refused."""
        ...

