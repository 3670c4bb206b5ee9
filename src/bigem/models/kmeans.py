"""k-means (Lloyd) as an EM-shaped model: hard assignments, additive statistics.

Initialisation runs it through the same engines as the mixture, so it works on
data that does not fit in memory. Seeding (k-means++) lives in em.init.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torch import Tensor

from .._core.stats import lowest_indices, merge_lowest
from .._core.types import Chunk


_BLOCK_ROWS = 1 << 16  # rows per block of the E-step


@dataclass(frozen=True, slots=True)
class KMeansParams:
    """centres (K, D), float64."""

    centres: Tensor


@dataclass(frozen=True, slots=True)
class KMeansStats:
    """counts (K,), sums (K, D) about ``shift`` (the centres used), inertia (weighted
    sum of squared distances), and the farthest rows (candidates for empty clusters)."""

    counts: Tensor
    sums: Tensor
    inertia: Tensor
    rows: int
    shift: Tensor
    far_neg_dist: Tensor
    far_x: Tensor

    def __add__(self, other: "KMeansStats") -> "KMeansStats":
        far_neg, far_x = merge_lowest(
            torch.cat([self.far_neg_dist, other.far_neg_dist]), torch.cat([self.far_x, other.far_x]), self.shift.shape[0]
        )
        return KMeansStats(
            self.counts + other.counts,
            self.sums + other.sums,
            self.inertia + other.inertia,
            self.rows + other.rows,
            self.shift,
            far_neg,
            far_x,
        )

    def scale(self, factor: float) -> "KMeansStats":
        return replace(self, counts=self.counts * factor, sums=self.sums * factor, inertia=self.inertia * factor)

    def to(self, device: torch.device | str) -> "KMeansStats":
        return KMeansStats(
            self.counts.to(device),
            self.sums.to(device),
            self.inertia.to(device),
            self.rows,
            self.shift.to(device),
            self.far_neg_dist.to(device),
            self.far_x.to(device),
        )


def squared_distances(x: Tensor, centres: Tensor) -> Tensor:
    """|x_n - c_k|^2 by one product, clamped at 0.  (n, D), (K, D) -> (n, K)."""
    d = torch.addmm((x * x).sum(1, keepdim=True), x, centres.T, alpha=-2.0)
    return d.add_((centres * centres).sum(1)).clamp_(min=0)


class KMeansModel:
    """Lloyd's algorithm in the e_step / m_step shape."""

    def __init__(self, n_clusters: int, dtype: torch.dtype) -> None:
        self.n_clusters = n_clusters
        self.dtype = dtype

    def e_step(self, params: KMeansParams, chunk: Chunk) -> KMeansStats:
        """Nearest-centre assignment of a chunk and its per-cluster sums, in blocks of
        ``_BLOCK_ROWS`` rows so the float64 offsets stay small whatever the chunk size
        (a whole 1.4M x 16 chunk had taken three 180 MB temporaries)."""
        x, w = chunk.x, chunk.weight
        centres = params.centres.to(x.device)
        centre = centres.mean(0)
        offsets_c = centres - centre
        cc, centre_k = offsets_c.to(self.dtype), centre.to(self.dtype)
        K, D = centres.shape
        f64 = dict(dtype=torch.float64, device=x.device)
        counts, sums, inertia = torch.zeros(K, **f64), torch.zeros(K, D, **f64), torch.zeros((), **f64)
        best = torch.empty(x.shape[0], dtype=self.dtype, device=x.device)
        for s in range(0, x.shape[0], _BLOCK_ROWS):
            xc = x[s : s + _BLOCK_ROWS] - centre_k
            nearest, labels = squared_distances(xc, cc).min(1)
            best[s : s + _BLOCK_ROWS] = nearest
            w64 = torch.ones(xc.shape[0], **f64) if w is None else w[s : s + _BLOCK_ROWS].double()
            counts.index_add_(0, labels, w64)
            sums.index_add_(0, labels, (xc.double() - offsets_c[labels]) * w64[:, None])
            inertia += nearest.double() @ w64
        # the farthest rows (of positive weight): K indices first, then only those rows in float64
        cand = -best if w is None else torch.where(w > 0, -best, torch.inf)
        far = lowest_indices(cand, K)
        return KMeansStats(counts, sums, inertia, chunk.n_rows, centres, cand[far].double(), x[far].double())

    def m_step(self, stats: KMeansStats) -> KMeansParams:
        """Centres = cluster means; an empty cluster moves to the farthest unused row."""
        counts = stats.counts
        centres = stats.shift + stats.sums / counts.clamp(min=torch.finfo(torch.float64).tiny)[:, None]
        empty = torch.nonzero(counts <= 0).reshape(-1).tolist()
        order = torch.argsort(stats.far_neg_dist)
        for j, k in enumerate(empty[: order.numel()]):
            centres[k] = stats.far_x[order[j]]
        return KMeansParams(centres)
