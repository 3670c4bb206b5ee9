"""One pass of plain row statistics: counts, moments, column maxima. Initialisers that
need the data's spread or range (an HMM's covariances, rates, alphabet) read it in
the fit's first pass, which also checks the values and fills a file source's cache."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core import numerics
from .._core.stats import additive, counted, largest, shared
from .._core.types import Chunk


@additive
@dataclass(frozen=True, slots=True)
class RowSummary:
    """rows; sum_x (D,) and scatter (D, D) about ``probe`` (float64; scatter empty when
    not asked for); top (D,) the largest value of each column; totals (2,) the largest
    row total and the smallest one negated (a multinomial's trials: whether every row
    drew as many)."""

    sum_x: Tensor
    scatter: Tensor
    seen: Tensor  # (D,) the values each column observed (the rows, without gaps)
    top: Tensor = largest()
    totals: Tensor = largest()
    rows: int = counted()
    probe: Tensor = shared()

    @property
    def row_totals(self) -> tuple[float, float]:
        """The smallest and the largest row total (gaps count 0; -inf, inf with no row)."""
        return -float(self.totals[1]), float(self.totals[0])

    @property
    def mean(self) -> Tensor:
        """Each column's mean over the rows that observe it."""
        if bool((self.seen == self.rows).all()):
            return self.probe + self.sum_x / max(self.rows, 1)
        return self.probe + self.sum_x / self.seen.clamp(min=1)

    @property
    def covariance(self) -> Tensor:
        """The sample covariance (n - 1 in the denominator). With gaps (which count as the
        probe in the sums): the correlations of those sums, scaled to each column's
        variance over the rows that observe it, so the matrix stays positive semi-definite."""
        mean = self.sum_x / max(self.rows, 1)
        cov = (self.scatter - self.rows * torch.outer(mean, mean)) / max(self.rows - 1, 1)
        if bool((self.seen == self.rows).all()):
            return cov
        seen = self.seen.clamp(min=2)
        observed = (torch.diagonal(self.scatter) - self.sum_x.square() / seen) / (seen - 1)
        scale = torch.sqrt(observed.clamp(min=0) / torch.diagonal(cov).clamp(min=torch.finfo(torch.float64).tiny))
        return scale[:, None] * cov * scale[None, :]


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
        gap = torch.isnan(xc)
        has_gaps = numerics.defers_reads(x.device) or bool(gap.any())  # a GPU asks nothing: no gap, same sums
        if has_gaps:  # a gap counts as the probe in the sums, and is not seen
            xc = xc.masked_fill(gap, 0.0)
            x = x.masked_fill(gap, -torch.inf)
        seen = (~gap).sum(0).double() if has_gaps else torch.full((D,), float(chunk.n_rows), dtype=torch.float64,
                                                                    device=x.device)
        scatter = xc.T @ xc if self.second_moments else xc.new_zeros(0)
        if x.shape[0]:
            top = x.amax(0).double()
            sums = (x.masked_fill(gap, 0.0) if has_gaps else x).double().sum(1)
            totals = torch.stack((sums.amax(), -sums.amin()))
        else:
            top = torch.full((D,), -torch.inf, dtype=torch.float64, device=x.device)
            totals = torch.full((2,), -torch.inf, dtype=torch.float64, device=x.device)
        return RowSummary(xc.sum(0), scatter, seen, top, totals, chunk.n_rows, self.probe)
