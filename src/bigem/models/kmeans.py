"""k-means (Lloyd) as an EM-shaped model: hard assignments, additive statistics.

Initialisation runs it through the same engines as the mixtures, so it works on
data that does not fit in memory. Seeding (k-means++) and the loop live in em.init.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.numerics import squared_distances
from .._core.stats import Lowest, additive, counted, shared
from .._core.types import Chunk
from .gaps import missing, observed_distances

_BLOCK_ROWS = 1 << 16  # rows per block of the E-step


@dataclass(frozen=True, slots=True)
class KMeansParams:
    """centres (K, D), float64."""

    centres: Tensor


@additive
@dataclass(frozen=True, slots=True)
class KMeansStats:
    """counts (K,), sums (K, D) about ``shift`` (the centres used), inertia (weighted
    sum of squared distances), and the farthest rows (candidates for empty clusters)."""

    counts: Tensor
    sums: Tensor
    inertia: Tensor
    far: Lowest
    rows: int = counted()
    shift: Tensor = shared()


class KMeansModel:
    """Lloyd's algorithm in the e_step / m_step shape; with ``gaps``, k-POD: distances
    over each row's observed coordinates, and a gap counts as its cluster's centre."""

    def __init__(self, n_clusters: int, dtype: torch.dtype, gaps: bool = False) -> None:
        self.n_clusters = n_clusters
        self.dtype = dtype
        self.gaps = gaps  # rows may have gaps (NaN): distances over the observed coordinates

    def params(self, centres: Tensor) -> KMeansParams:
        return KMeansParams(centres.to(torch.float64))

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
            mask = missing(xc) if self.gaps else None
            if mask is None:
                nearest, labels = squared_distances(xc, cc).min(1)
            else:  # k-POD (Chi, Chi & Baraniuk 2016): a gap sits at the centre it is assigned to
                nearest, labels = observed_distances(xc, cc, mask).min(1)
                xc = xc.masked_fill(mask, 0.0)
            best[s : s + _BLOCK_ROWS] = nearest
            w64 = torch.ones(xc.shape[0], **f64) if w is None else w[s : s + _BLOCK_ROWS].double()
            counts.index_add_(0, labels, w64)
            offsets = xc.double() - offsets_c[labels]
            if mask is not None:
                offsets.masked_fill_(mask, 0.0)
            sums.index_add_(0, labels, offsets * w64[:, None])
            inertia += nearest.double() @ w64
        # the farthest rows (of positive weight): K indices first, then only those rows in float64
        cand = -best if w is None else torch.where(w > 0, -best, torch.inf)
        return KMeansStats(counts, sums, inertia, Lowest.of(cand, x, K, chunk.row_start), chunk.n_rows, centres)

    def m_step(self, stats: KMeansStats) -> KMeansParams:
        """Centres = cluster means; an empty cluster moves to the farthest unused row."""
        counts = stats.counts
        centres = stats.shift + stats.sums / counts.clamp(min=torch.finfo(torch.float64).tiny)[:, None]
        empty = torch.nonzero(counts <= 0).reshape(-1).tolist()
        far = stats.far.ordered()
        far = torch.where(torch.isnan(far), stats.shift.mean(0), far)  # a far row's gaps: the centres' mean
        for j, k in enumerate(empty[: far.shape[0]]):
            centres[k] = far[j]
        return KMeansParams(centres)


class EmbeddedKMeans:
    """k-means of rows mapped by ``embed`` (a component's k-means embedding: categories
    one-hot, ...): Lloyd's iterations in that space, on data that stays as it is stored."""

    def __init__(self, kmeans: KMeansModel, embed) -> None:
        self.kmeans, self.embed = kmeans, embed

    @property
    def gaps(self) -> bool:
        return self.kmeans.gaps

    def params(self, centres: Tensor) -> KMeansParams:
        return self.kmeans.params(centres)

    def e_step(self, params: KMeansParams, chunk: Chunk) -> KMeansStats:
        """Lloyd's step on the embedded rows, a block of rows at a time: the embedding is
        wider than the rows (a column of M categories takes M), and a whole chunk
        embedded had taken several times the memory the chunk was sized for."""
        x, w, total = chunk.x, chunk.weight, None
        for s in range(0, max(x.shape[0], 1), _BLOCK_ROWS):
            block = Chunk(self.embed(x[s : s + _BLOCK_ROWS]).to(self.kmeans.dtype),
                          None if w is None else w[s : s + _BLOCK_ROWS], chunk.row_start + s)
            stats = self.kmeans.e_step(params, block)
            total = stats if total is None else total + stats
        return total

    def m_step(self, stats: KMeansStats) -> KMeansParams:
        return self.kmeans.m_step(stats)
