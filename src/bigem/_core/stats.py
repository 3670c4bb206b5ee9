"""The seam of the whole design: additive sufficient statistics.

Every model's ``e_step`` returns an object that satisfies :class:`Stats`: the
statistics of A ∪ B are ``stats(A) + stats(B)`` in any order and grouping.
Streaming is a fold, distributed EM a tree-reduce, online EM a weighted average.

Most statistics are frozen dataclasses whose fields combine in one of three ways;
:func:`additive` writes their ``+``, ``scale`` and ``to`` from a tag on each field:

* ``summed()`` (the default): tensors, floats or nested statistics, added and scaled;
* ``counted()``: integers (rows, sequences), added but never scaled;
* ``shared()``: the same on both sides (the shift moments are taken about, the
  parameters of the E-step): kept, and checked, so statistics gathered under
  different parameters are never added by mistake;
* ``least()``: the smallest of both sides (the first row of a kind, -1 for none), an
  int or a 0-d tensor (kept on its device: a GPU pass reads it back once, not per chunk);
* ``largest()``: the element-wise largest of both sides (tensors).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import torch
from torch import Tensor

from . import numerics
from .sparse import SparseRows, cat_rows

S = TypeVar("S", bound="Stats")


class Stats(Protocol):
    """Additive statistics: ``+`` merges two disjoint parts, ``scale`` weights them
    (online EM), ``to`` moves them between devices (the reduce may run elsewhere)."""

    def __add__(self: S, other: S) -> S: ...

    def scale(self: S, factor: float) -> S: ...

    def to(self: S, device: torch.device | str) -> S: ...


_HOW = "combine"


def summed(**kw: Any) -> Any:
    """A field that adds and scales (tensors, floats, nested statistics)."""
    return field(metadata={_HOW: "sum"}, **kw)


def counted(**kw: Any) -> Any:
    """An integer field that adds but does not scale (rows, sequences)."""
    return field(metadata={_HOW: "count"}, **kw)


def shared(**kw: Any) -> Any:
    """A field both sides must share (a shift, the E-step's parameters): kept, checked."""
    return field(metadata={_HOW: "shared"}, **kw)


def least(**kw: Any) -> Any:
    """An integer field (an int or a 0-d int64 tensor) combined by min over the values
    >= 0 (-1 means none)."""
    return field(metadata={_HOW: "least"}, **kw)


def largest(**kw: Any) -> Any:
    """A tensor field combined by element-wise max."""
    return field(metadata={_HOW: "max"}, **kw)


def same(a: object, b: object) -> bool:
    """Whether two shared values are equal: identical, equal tensors, or equal
    dataclasses of them (statistics from two workers carry equal, not identical, copies)."""
    if a is b:
        return True
    if isinstance(a, Tensor) and isinstance(b, Tensor):
        return a.shape == b.shape and a.device == b.device and bool(torch.equal(a, b))
    if dataclasses.is_dataclass(a) and type(a) is type(b):
        return all(same(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a))
    if isinstance(a, (tuple, list)) and type(a) is type(b) and len(a) == len(b):
        return all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def least_of(a: int | Tensor, b: int | Tensor) -> int | Tensor:
    """The smaller of two indices that are >= 0, or -1 when neither is; tensors stay
    tensors (no read-back)."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        like = a if isinstance(a, Tensor) else b
        # an int is filled in, not uploaded: torch.as_tensor(int, device=cuda) waits
        a, b = (v if isinstance(v, Tensor) else torch.full((), v, dtype=like.dtype, device=like.device) for v in (a, b))
        return torch.where(a < 0, b, torch.where(b < 0, a, torch.minimum(a, b)))
    present = [v for v in (a, b) if v >= 0]
    return min(present) if present else -1


def _moved(value: object, device: torch.device | str) -> object:
    if isinstance(value, Tensor) or hasattr(value, "to") and not isinstance(value, (int, float, str)):
        return value.to(device)
    return value


def additive(cls: type) -> type:
    """Give a frozen dataclass of statistics ``+``, ``scale`` and ``to`` from its field tags,
    and ``combining``: each field's name and how it combines ("sum", "count", "shared",
    "least", "max")."""
    kinds = [(f.name, f.metadata.get(_HOW, "sum")) for f in dataclasses.fields(cls)]

    def __add__(self, other):
        values = {}
        for name, how in kinds:
            a, b = getattr(self, name), getattr(other, name)
            if how == "shared":
                if not same(a, b):
                    raise ValueError(
                        f"cannot add {cls.__name__} gathered under different {name!r} (different parameters); "
                        "statistics add only within one E-step"
                    )
                values[name] = a
            elif how == "least":
                values[name] = least_of(a, b)
            elif how == "max":
                values[name] = torch.maximum(a, b.to(a.device))
            else:
                values[name] = a + b
        return cls(**values)

    def scale(self, factor: float):
        changes = {}
        for name, how in kinds:
            if how == "sum":
                value = getattr(self, name)
                changes[name] = value.scale(factor) if hasattr(value, "scale") else value * factor
        return dataclasses.replace(self, **changes)

    def to(self, device: torch.device | str):
        return dataclasses.replace(self, **{name: _moved(getattr(self, name), device) for name, _ in kinds})

    cls.__add__ = __add__
    cls.scale = scale
    cls.to = to
    cls.combining = tuple(kinds)  # (field, how it combines): engines that ship statistics read it
    return cls


def tree_sum(parts: Iterable[S]) -> S:
    """Pairwise sum of statistics: depth log2(n), the rounding of a balanced tree."""
    level = list(parts)
    if not level:
        raise ValueError("tree_sum needs at least one statistics object")
    while len(level) > 1:
        paired = [level[i] + level[i + 1] for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


class Together:
    """The statistics of several runs from the same rows, and the seconds each run's
    E-steps took: adds run by run, so it is as additive as each run's statistics (any
    engine can reduce it)."""

    __slots__ = ("parts", "seconds")

    def __init__(self, parts: list, seconds: list[float]) -> None:
        self.parts = parts
        self.seconds = seconds

    def __add__(self, other: "Together") -> "Together":
        return Together([a + b for a, b in zip(self.parts, other.parts)],
                        [a + b for a, b in zip(self.seconds, other.seconds)])

    def scale(self, factor: float) -> "Together":
        return Together([p.scale(factor) for p in self.parts], self.seconds)

    def to(self, device: torch.device | str) -> "Together":
        return Together([p.to(device) for p in self.parts], self.seconds)


# Up to this many values one stable sort is cheaper than :func:`lowest_first`'s two
# top-m passes (CPU, one thread: 16 against 60 us at 150 values, 41 against 68 at 1000;
# at 1e4 the sort takes 728 us): a small fit's every E-step pays it.
_SORTED = 1024
# Values per group of :func:`lowest_first`'s first, vectorised pass.
_GROUP = 64
# Below this many values one top-m is cheaper than the group pass's fixed cost (k=8,
# one thread: 29 against 87 us at 1e4 values, 59 against 88 at 2e4, 228 against 117
# at 1e5; online EM's mini-batches are this small).
_DIRECT = 32768


def lowest_first(values: Tensor, m: int) -> Tensor:
    """Indices of the m smallest of a 1-D tensor, a tie going to the first places: the
    set depends on the values and their order alone, so that the data cut into other
    chunks, partitions or ranks gives the same one (:class:`Lowest`).

    The m smallest (value, place) pairs lie in the m groups of ``_GROUP`` consecutive
    values whose (minimum, group) pairs are smallest: a group outside them has m groups
    before it, each with a smaller pair. So one vectorised min per group, a selection
    over the n/64 minima and one over the m*64 candidates replace one over all n, which
    on CPU cost 9 ns a value (9% of a K=8 diag E-step, profiled)."""
    n = values.shape[0]
    if n <= m:
        return torch.arange(n, device=values.device)
    if n <= _SORTED:  # one stable sort: (value, place) order at once
        return torch.sort(values, stable=True).indices[:m]
    whole = n - n % _GROUP
    if n <= _DIRECT or whole <= m * _GROUP:
        return _first_m(values, m)
    groups = _first_m(values[:whole].view(-1, _GROUP).amin(1), m)
    offsets = torch.arange(_GROUP, device=values.device)
    cand = (groups[:, None] * _GROUP + offsets).reshape(-1)
    if whole < n:
        cand = torch.cat([cand, torch.arange(whole, n, device=values.device)])
    return cand[_first_m(values[cand], m, cand)]


def _first_m(values: Tensor, m: int, places: Tensor | None = None) -> Tensor:
    """Indices of the m smallest values (n > m), ties at the cut to the smallest
    ``places`` (default: their indices): one top-m finds the cut, a second runs over a
    key that puts the rows below the cut first (fewer than m) and the tied ones by
    place. Nothing is read back (asking whether a tie crosses the cut would be a read a
    chunk; the second top-m costs less, on n/64 minima or m*64 candidates)."""
    cut = torch.topk(values, m, largest=False, sorted=False).values.max()
    place = torch.arange(values.shape[0], device=values.device) if places is None else places
    key = torch.where(values < cut, -1.0, torch.where(values == cut, place.double(), torch.inf))
    return torch.topk(key, m, largest=False, sorted=False).indices


def _by_score_then_place(values: Tensor, places: Tensor) -> Tensor:
    """The order of (value, place) pairs, ascending (two stable sorts)."""
    order = torch.argsort(places, stable=True)
    return order[torch.argsort(values[order], stable=True)]


@dataclass(frozen=True, slots=True)
class Lowest:
    """The ``m`` rows with the lowest scores seen so far: a min-monoid, so it merges
    like a sum and rides along with the statistics. Models carry re-seeding candidates
    (the worst-explained rows) in it without a second pass over the data.

    values (<= m,) float64 scores; rows (<= m, D) float64 the rows themselves (a dense
    tensor, or :class:`~bigem._core.sparse.SparseRows` for sparse data); places (<= m,)
    float64 their rows' places in the data set. Ties go to the first places, so the
    rows kept, and their order, are the same however the data are cut (chunks,
    partitions, ranks): discrete data tie often, and a re-seeded component would
    otherwise depend on the cut.
    """

    values: Tensor
    rows: Tensor
    m: int
    places: Tensor

    @classmethod
    def of(cls, scores: Tensor, x: Tensor, m: int, first_row: int = 0) -> "Lowest":
        """The m lowest of one chunk's per-row ``scores`` (+inf never wins) and their rows;
        the chunk's first row is row ``first_row`` of the data set."""
        low = lowest_first(scores, m)
        places = low.double() + float(first_row)
        if isinstance(x, SparseRows) and numerics.defers_reads(x.device):  # dense: a sparse gather reads its size
            return cls(scores[low].double(), x.dense_rows(low).double(), m, places)
        return cls(scores[low].double(), x[low].double(), m, places)

    def __add__(self, other: "Lowest") -> "Lowest":
        values = torch.cat([self.values, other.values.to(self.values.device)])
        rows = cat_rows([self.rows, other.rows.to(self.rows.device)])
        places = torch.cat([self.places, other.places.to(self.places.device)])
        if values.shape[0] > self.m:
            idx = _by_score_then_place(values, places)[: self.m]
            values, rows, places = values[idx], rows[idx], places[idx]
        return Lowest(values, rows, self.m, places)

    def scale(self, factor: float) -> "Lowest":
        return self

    def to(self, device: torch.device | str) -> "Lowest":
        return Lowest(self.values.to(device), self.rows.to(device), self.m, self.places.to(device))

    def ordered(self) -> Tensor:
        """The rows, lowest score first (ties: the first place first)."""
        return self.rows[_by_score_then_place(self.values, self.places)]
