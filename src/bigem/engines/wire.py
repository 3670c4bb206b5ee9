"""Statistics as float64 vectors, for engines that sum them across processes with one
all-reduce.

A statistics object is a tree: ``@additive`` dataclasses (each field tagged with how it
combines), :class:`~bigem._core.stats.Together` (runs in lockstep),
:class:`~bigem._core.stats.Lowest` (the worst-explained rows), tuples of statistics
(combined element by element), tensors and numbers.
:func:`encode` splits its leaves in three:

* summed leaves (``summed`` and ``counted`` fields): one float64 vector, added
  element-wise by the all-reduce;
* gathered leaves (``least`` and ``largest`` fields, ``Lowest``): a fixed-size float64
  vector per process, which each process writes into its own slot of the same buffer
  (the others write zeros there, and x + 0 is x exactly), so the one all-reduce also
  brings every process's copy;
* shared leaves (the E-step's shift, a kernel's name): not sent; every process holds
  its own, and a checksum of them tells whether the processes agree.

:meth:`Encoded.decode` rebuilds the sum: the summed leaves as reduced, and the gathered
ones combined by the statistics' own ``+`` over every process's copy, in process order.
Anything else (a statistics class without tags) is opaque: the engine then gathers the
objects themselves.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._core.stats import Lowest, Together, tree_sum

_SUM, _LEAST, _MAX = "sum", "least", "max"


class Opaque(Exception):
    """The statistics hold something :func:`encode` does not know how to ship."""


@dataclass
class _Leaf:
    """How one leaf goes on the wire and comes back: its shape, dtype and device (a
    tensor), or its Python type (a number)."""

    kind: type | None  # int or float for a Python number, None for a tensor
    shape: tuple[int, ...] = ()
    dtype: torch.dtype | None = None
    device: torch.device | None = None

    @property
    def size(self) -> int:
        n = 1
        for s in self.shape:
            n *= s
        return n

    def flat(self, value: Any, wire: torch.device) -> Tensor:
        if self.kind is None:
            return value.detach().reshape(-1).to(device=wire, dtype=torch.float64)
        return torch.tensor([float(value)], dtype=torch.float64, device=wire)

    def back(self, flat: Tensor, host: Tensor | None) -> Any:
        """The leaf from its stretch of the vector (``host``: the same stretch on the host)."""
        if self.kind is None:
            return flat.reshape(self.shape).to(device=self.device, dtype=self.dtype)
        value = float(host[0])
        return int(value) if self.kind is int else value

    def zero(self) -> Any:
        """An additive zero for this leaf (a scalar tensor broadcasts in ``+``)."""
        if self.kind is None:
            return torch.zeros((), dtype=self.dtype, device=self.device)
        return self.kind(0)

    def describe(self) -> str:
        return f"{self.kind.__name__}" if self.kind is not None else f"{tuple(self.shape)}:{self.dtype}"


def _leaf(value: Any) -> _Leaf:
    if isinstance(value, Tensor):
        return _Leaf(None, tuple(value.shape), value.dtype, value.device)
    if isinstance(value, bool):
        raise Opaque("a bool")
    if isinstance(value, int):
        return _Leaf(int)
    if isinstance(value, float):
        return _Leaf(float)
    raise Opaque(type(value).__name__)


@dataclass
class _LowestSlot:
    """A :class:`Lowest` in a fixed-size slot: [count, values (+inf padded), places (0
    padded), rows (0 padded)]."""

    m: int
    width: int
    values: _Leaf
    rows: _Leaf

    @property
    def size(self) -> int:
        return 1 + 2 * self.m + self.m * self.width

    def flat(self, low: Lowest, wire: torch.device) -> Tensor:
        out = torch.zeros(self.size, dtype=torch.float64, device=wire)
        n, m = int(low.values.shape[0]), self.m
        out[0] = n
        out[1 : 1 + m] = torch.inf
        out[1 : 1 + n] = low.values.to(device=wire, dtype=torch.float64)
        out[1 + m : 1 + m + n] = low.places.to(device=wire, dtype=torch.float64)
        out[1 + 2 * m : 1 + 2 * m + n * self.width] = low.rows.reshape(-1).to(device=wire, dtype=torch.float64)
        return out

    def back(self, flat: Tensor, host: Tensor | None) -> Lowest:
        n, m = int(host[0]), self.m
        values = flat[1 : 1 + n].to(device=self.values.device, dtype=self.values.dtype)
        places = flat[1 + m : 1 + m + n].to(device=self.values.device, dtype=torch.float64)
        rows = flat[1 + 2 * m : 1 + 2 * m + n * self.width].reshape(n, self.width)
        return Lowest(values, rows.to(device=self.rows.device, dtype=self.rows.dtype), m, places)


@dataclass
class Encoded:
    """One process's statistics, split for the wire (see the module docstring)."""

    summed: Tensor  # float64, on the wire device
    gathered: Tensor  # float64, on the wire device: this process's slot
    signature: int  # the layout's checksum: equal on every process, or the slots do not line up
    shared: int  # a checksum of the shared leaves: equal on every process, or the parameters differ
    _rebuild: Callable[[Iterator[Any], Iterator[Any]], Any]
    _summed_leaves: list[_Leaf]
    _gathered_leaves: list[Any]

    def decode(self, summed: Tensor, slots: list[Tensor]) -> Any:
        """The sum: ``summed`` the reduced summed vector, ``slots`` every process's
        gathered vector in process order."""
        totals = list(_split(summed, self._summed_leaves))
        if not self._gathered_leaves:
            return self._rebuild(iter(totals), iter(()))
        zeros = [leaf.zero() for leaf in self._summed_leaves]
        copies = [self._rebuild(iter(zeros), iter(_split(slot, self._gathered_leaves))) for slot in slots]
        folded = tree_sum(copies)
        gathered = _Walk()
        gathered.visit(folded, _SUM)
        return self._rebuild(iter(totals), iter(gathered.gathered_values))


def _split(flat: Tensor, leaves: list) -> Iterator[Any]:
    """The leaves from their vector; the numbers (and Lowest's counts) come from one copy
    of it on the host, not one read each."""
    host = flat.cpu() if any(not isinstance(leaf, _Leaf) or leaf.kind is not None for leaf in leaves) else None
    at = 0
    for leaf in leaves:
        yield leaf.back(flat[at : at + leaf.size], None if host is None else host[at : at + leaf.size])
        at += leaf.size


class _Walk:
    """One pass over a statistics tree: its leaves by kind and a function rebuilding it."""

    def __init__(self) -> None:
        self.summed_values: list[Any] = []
        self.summed: list[_Leaf] = []
        self.gathered_values: list[Any] = []
        self.gathered: list[Any] = []
        self.shared: list[Any] = []
        self.layout: list[str] = []

    def visit(self, obj: Any, how: str) -> Callable[[Iterator[Any], Iterator[Any]], Any]:
        if isinstance(obj, Lowest):
            slot = _LowestSlot(obj.m, int(obj.rows.shape[1]), _leaf(obj.values), _leaf(obj.rows))
            self.gathered_values.append(obj)
            self.gathered.append(slot)
            self.layout.append(f"lowest{obj.m}x{slot.width}")
            return lambda s, g: next(g)
        if isinstance(obj, Together):
            parts = [self.visit(p, _SUM) for p in obj.parts]
            seconds = [self.visit(v, _SUM) for v in obj.seconds]
            self.layout.append(f"together{len(parts)}")
            return lambda s, g: Together([f(s, g) for f in parts], [f(s, g) for f in seconds])
        if isinstance(obj, tuple):  # statistics part by part (a product component's blocks)
            items = [self.visit(p, how) for p in obj]
            self.layout.append(f"tuple{len(items)}")
            return lambda s, g: tuple(f(s, g) for f in items)
        kinds = getattr(type(obj), "combining", None)
        if kinds is not None:
            cls = type(obj)
            fields = []
            for name, kind in kinds:
                value = getattr(obj, name)
                if kind == "shared":
                    self.shared.append(value)
                    fields.append((name, lambda s, g, v=value: v))
                else:
                    fields.append((name, self.visit(value, {"least": _LEAST, "max": _MAX}.get(kind, _SUM))))
            self.layout.append(cls.__qualname__)
            return lambda s, g: cls(**{name: f(s, g) for name, f in fields})
        leaf = _leaf(obj)
        self.layout.append(f"{how}:{leaf.describe()}")
        if how == _SUM:
            self.summed_values.append(obj)
            self.summed.append(leaf)
            return lambda s, g: next(s)
        self.gathered_values.append(obj)
        self.gathered.append(leaf)
        return lambda s, g: next(g)


def encode(stats: Any, wire: torch.device) -> Encoded:
    """``stats`` split for the wire (raises :class:`Opaque` for what it cannot ship)."""
    walk = _Walk()
    rebuild = walk.visit(stats, _SUM)
    empty = torch.zeros(0, dtype=torch.float64, device=wire)
    summed = torch.cat([leaf.flat(v, wire) for leaf, v in zip(walk.summed, walk.summed_values)]) if walk.summed else empty
    gathered = (torch.cat([leaf.flat(v, wire) for leaf, v in zip(walk.gathered, walk.gathered_values)])
                if walk.gathered else empty)
    signature = zlib.crc32(repr((walk.layout, summed.numel(), gathered.numel())).encode()) & 0x7FFFFFFF
    return Encoded(summed, gathered, signature, checksum(walk.shared), rebuild, walk.summed, walk.gathered)


def checksum(values: list[Any]) -> int:
    """A checksum of the shared leaves' exact values (the bits of tensors, the text of
    the rest), equal on processes that hold equal values. The tensors' bytes come to the
    host in one copy: once per reduction, not per chunk."""
    tensors: list[Tensor] = []
    text: list[str] = []

    def collect(v: Any) -> None:
        if isinstance(v, Tensor):
            tensors.append(v.detach().contiguous().reshape(-1).view(torch.uint8))
            text.append(f"{tuple(v.shape)}:{v.dtype}")
        elif hasattr(v, "__dataclass_fields__"):
            for name in v.__dataclass_fields__:
                collect(getattr(v, name))
        else:
            text.append(repr(v))

    for v in values:
        collect(v)
    crc = zlib.crc32("|".join(text).encode())
    if tensors:
        device = tensors[0].device
        data = torch.cat([t.to(device) for t in tensors]).cpu().numpy().tobytes()
        crc = zlib.crc32(data, crc)
    return crc & 0x7FFFFFFF
