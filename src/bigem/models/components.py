"""The component protocol: what a mixture's components and an HMM's emissions share.

A component is K distributions of one family (Gaussian, categorical, Poisson, ...)
with parameters P and additive statistics CS. The mixture (``mixture.MixtureModel``)
and the hidden Markov model (``hmm.HMMModel``) are written once over this protocol:
the mixture adds weights, responsibilities and re-seeding, the HMM adds transitions.
So a new family is one module with one component class, and both get it.

The E-step is organised in blocks of rows so that the scratch of one block stays in
cache: ``prepare`` once per chunk, then per block ``block`` (the rows as the kernels
read them), ``log_joint`` (component-major (K, n) log-densities plus log weights)
and the accumulator's ``add`` (responsibility-weighted sums). :func:`log_prob` and
:func:`statistics` run the same kernels over all rows, for callers that need every
row's log-density before any responsibility (the HMM's forward-backward).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor

P = TypeVar("P")
CS = TypeVar("CS")


class Prepared(Protocol):
    """A component's parameters cast for its kernels (once per chunk)."""

    @property
    def dtype(self) -> torch.dtype:
        """The kernels' arithmetic dtype."""
        ...

    @property
    def n_components(self) -> int: ...


class Accumulator(Protocol[CS]):
    """A chunk's running sums: ``add`` one block, ``result`` the component statistics."""

    def add(self, block: Any, rw: Tensor, w: Tensor | None) -> None:
        """rw (K, n): each row's responsibility times its weight; w (n,): the rows'
        weights (sum_k rw_nk), None when all are one."""
        ...

    def result(self) -> CS: ...


class ComponentStats(Protocol):
    """Additive statistics of a component (see ``_core.stats``), plus ``n_k`` (K,), the
    responsibility mass of each component, and ``rebase``: the same statistics
    re-expressed the way ``like`` is (about its reference point, if moments have one)."""

    n_k: Tensor

    def rebase(self, like: Any) -> Any: ...


class Component(Protocol[P, CS]):
    """K distributions of one family: kernels, M-step, sampling, parameter maps."""

    letters: str  # the parameter groups its M-step updates (hmmlearn's ``params`` letters)
    advice: str  # what a user can change when its arithmetic fails
    failure: str  # what it means for the fit when every component is invalid
    # whether it models rows up to a translation (Gaussians): its rows may then arrive
    # minus a shift (float32 keeps its digits on data far from the origin), and its
    # parameters move by the same vector (``translate``)
    translatable: bool
    # the dtype its rows arrive in: the compute dtype, or float64 where float32 would
    # round the data itself (counts from 2**24 up)
    row_dtype: torch.dtype

    def translate(self, params: P, offset: Tensor) -> P:
        """The parameters of the same model for rows moved by ``offset`` (D,)."""
        ...

    def location(self, params: P) -> Tensor | None:
        """A point the K distributions sit around, (D,) float64 (the mean of the means);
        None when translatable is False."""
        ...

    def prepare(self, params: P, device: torch.device) -> Prepared:
        """The parameters cast for the kernels, once per chunk."""
        ...

    def block_rows(self, K: int, D: int, device: torch.device) -> int: ...

    def block(self, prepared: Prepared, x: Tensor) -> Any: ...

    def log_joint(self, prepared: Prepared, block: Any, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        """log w_k + log p_k(x) for a block: (K, n); with ``into``, written there
        row-major (n, K) instead and returned (an HMM's emissions)."""
        ...

    def accumulator(self, prepared: Prepared) -> Accumulator[CS]: ...

    # Optional: ``expect(prepared, block, log_w, barred, w, log_norm, acc, floor) -> bool``
    # does a block's log_joint, normalise_log and ``acc.add`` in one go (a compiled kernel,
    # say) and returns True, or returns False, having done nothing, to leave them to the
    # mixture. barred: (K, n) bool or None, the components a labelled row may not belong
    # to; w: (n,) the rows' weights or None; log_norm: (n,) each row's log-likelihood,
    # written; floor: the floor of exp's argument (normalise_log's).

    def at(self, centres: Tensor) -> P:
        """Components located at ``centres`` (K, D), of unit spread: the reference point
        of initial passes."""
        ...

    def nearest(self, prepared: Prepared, block: Any) -> tuple[Tensor, Tensor]:
        """Each row's nearest component (n,) and a score (n,), higher for rows it explains
        better: the hard assignments of initialisation from centres."""
        ...

    def m_step(self, stats: CS, old: P, update: str) -> tuple[P, Tensor]:
        """New parameters for the letters in ``update`` (the rest kept from ``old``), and
        a (K,) mask of the components whose parameters are valid."""
        ...

    def reseed(self, params: P, dead: list[int], rows: Tensor, weights: Tensor) -> P:
        """Dead components moved onto ``rows`` (one each, the worst-explained first)."""
        ...

    def decrease_tolerance(self, params: P, weights: Tensor, value: float) -> float: ...

    def prior_gain(self, new: P, old: P) -> float:
        """How much a step from ``old`` to ``new`` raised the log-density of the M-step's
        prior (0 without one): a MAP step may lower the likelihood by as much."""
        ...

    def sample(self, params: P, labels: Tensor, generator: torch.Generator) -> Tensor: ...

    def n_free_parameters(self, K: int, D: int) -> int: ...

    def to_tensors(self, params: P) -> dict[str, Tensor]: ...

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> P: ...

    def flatten(self, params: P) -> Tensor: ...

    def unflatten(self, vector: Tensor, like: P) -> P: ...


def blocks(n: int, step: int) -> Iterator[slice]:
    for s in range(0, n, step):
        yield slice(s, min(s + step, n))


def log_prob(component: Component, params: Any, x: Tensor, prep: Any = None) -> Tensor:
    """log p_k(x) of every row and component: (n, K), row-major, in the kernels' dtype.
    ``prep``: the parameters already prepared for x's device (else prepared here)."""
    prep = component.prepare(params, x.device) if prep is None else prep
    K = prep.n_components
    zeros = torch.zeros(K, dtype=prep.dtype, device=x.device)
    out = torch.empty(x.shape[0], K, dtype=prep.dtype, device=x.device)
    for rows in blocks(x.shape[0], component.block_rows(K, x.shape[1], x.device)):
        component.log_joint(prep, component.block(prep, x[rows]), zeros, into=out[rows])
    return out


def statistics(component: Component, params: Any, x: Tensor, resp: Tensor, w: Tensor | None = None,
               prep: Any = None) -> Any:
    """The component statistics of rows x with responsibilities resp (n, K) (already
    weighted) and row weights w (n,) (None: all ones); ``prep`` as in :func:`log_prob`."""
    prep = component.prepare(params, x.device) if prep is None else prep
    acc = component.accumulator(prep)
    for rows in blocks(x.shape[0], component.block_rows(prep.n_components, x.shape[1], x.device)):
        blk = component.block(prep, x[rows])
        acc.add(blk, resp[rows].T.to(prep.dtype), None if w is None else w[rows].to(prep.dtype))
    return acc.result()


def weighted_median(points: Tensor, weights: Tensor) -> Tensor:
    """Per coordinate, the point value (one of the points') at which the weights, in that
    coordinate's order, pass half their total: (K, D) points, (K,) weights -> (D,)
    float64. Where rows sit for a float32 cast: a mean of the means moves with one far
    component (a state that took a few outliers), a weighted median stays with the bulk."""
    points, weights = points.to(torch.float64), weights.to(points.device, torch.float64)
    order = torch.argsort(points, 0)
    mass = torch.cumsum(weights[order], 0)
    half = mass[-1:] / 2
    first = torch.searchsorted(mass.T.contiguous(), half.T.contiguous()).clamp(max=points.shape[0] - 1)  # (D, 1)
    picked = torch.gather(order, 0, first.T)  # (1, D): which point, per coordinate
    return torch.gather(points, 0, picked)[0]
