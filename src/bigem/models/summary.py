"""One pass of plain row statistics: counts, moments, column maxima. Initialisers that
need the data's spread or range (an HMM's covariances, rates, alphabet) read it in
the fit's first pass, which also checks the values and fills a file source's cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.stats import additive, counted, largest, shared
from .._core.types import Chunk


@additive
@dataclass(frozen=True, slots=True)
class RowSummary:
    """rows; sum_x (D,) and scatter (D, D) about ``probe`` (float64; scatter empty when
    not asked for); top (D,) the largest value of each column."""

    sum_x: Tensor
    scatter: Tensor
    top: Tensor = largest()
    rows: int = counted()
    probe: Tensor = shared()

    @property
    def mean(self) -> Tensor:
        return self.probe + self.sum_x / max(self.rows, 1)

    @property
    def covariance(self) -> Tensor:
        """The sample covariance (n - 1 in the denominator)."""
        mean = self.sum_x / max(self.rows, 1)
        return (self.scatter - self.rows * torch.outer(mean, mean)) / max(self.rows - 1, 1)


@dataclass(frozen=True)
class Summariser:
    """The :class:`RowSummary` of a chunk: a task for an engine. ``probe``: the point
    moments are taken about (any row-like point near the data; float64, CPU)."""

    probe: Tensor
    second_moments: bool = True

    def summarise(self, chunk: Chunk) -> RowSummary:
        x = chunk.x
        xc = x.double() - self.probe.to(x.device)
        D = x.shape[1]
        scatter = xc.T @ xc if self.second_moments else xc.new_zeros(0)
        top = x.amax(0).double() if x.shape[0] else torch.full((D,), -torch.inf, dtype=torch.float64, device=x.device)
        return RowSummary(xc.sum(0), scatter, top, chunk.n_rows, self.probe)
