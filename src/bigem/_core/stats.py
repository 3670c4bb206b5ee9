"""The seam of the whole design: additive sufficient statistics.

Every model's ``e_step`` returns an object that satisfies :class:`Stats`: the
statistics of A ∪ B are ``stats(A) + stats(B)`` in any order and grouping.
Streaming is a fold, distributed EM a tree-reduce, online EM a weighted average.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, TypeVar

import torch

S = TypeVar("S", bound="Stats")


class Stats(Protocol):
    """Additive statistics: ``+`` merges two disjoint parts, ``scale`` weights them
    (online EM), ``to`` moves them between devices (the reduce may run elsewhere)."""

    def __add__(self: S, other: S) -> S: ...

    def scale(self: S, factor: float) -> S: ...

    def to(self: S, device: torch.device | str) -> S: ...


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


def merge_lowest(values: "torch.Tensor", rows: "torch.Tensor", m: int) -> tuple["torch.Tensor", "torch.Tensor"]:
    """The m smallest ``values`` and their ``rows``: a min-monoid, so it merges like a sum.

    Models use it to carry re-seeding candidates (the worst-explained points) in
    their statistics without a second pass over the data.
    """
    if values.shape[0] <= m:
        return values, rows
    idx = torch.topk(values, m, largest=False, sorted=False).indices
    return values[idx], rows[idx]
