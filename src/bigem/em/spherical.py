"""Spherical k-means seeds for count data (documents): k-means++ and Lloyd's iterations on
a sample of rows scaled to unit length, where distance is 2 - 2 cos(x, c).

Documents of very different lengths share a topic when their word frequencies point the
same way, which the cosine measures and the Euclidean distance of raw counts does not
(a long document is far from every short one). The sample is sparse
(:class:`~bigem._core.sparse.SparseRows`); the K centres are dense (K, D) float64 rows.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.sparse import SparseRows

LLOYD_MAX_ITER = 10
LLOYD_TOL = 1e-4  # relative change of the summed similarity that stops Lloyd early


def unit_rows(rows: SparseRows) -> SparseRows:
    """The non-empty rows, each scaled to unit Euclidean length (float64, CPU)."""
    rows = rows.to("cpu", torch.float64)
    norms = torch.sqrt(torch.zeros(rows.shape[0], dtype=torch.float64).index_add_(0, rows.row_ids(),
                                                                                  rows.values.square()))
    keep = torch.nonzero(norms > 0).reshape(-1)
    rows, norms = rows[keep], norms[keep]
    return SparseRows(rows.indptr, rows.indices, rows.values / norms[rows.row_ids()], rows.n_features)


def _similarities(x: SparseRows, centres: Tensor) -> Tensor:
    """cos(x_n, c_k) for unit rows and unit centres: (n, K) float64."""
    if x.nnz == 0:
        return torch.zeros(x.shape[0], centres.shape[0], dtype=torch.float64)
    return torch.mm(x.csr(), centres.T.contiguous())


def _dense(x: SparseRows, picks: Tensor) -> Tensor:
    return x[picks].to_dense()


def kmeans_plusplus(x: SparseRows, k: int, generator: torch.Generator) -> Tensor:
    """Greedy k-means++ on unit rows (Arthur & Vassilvitskii 2007; 2 + log k trials per
    seed), with the squared distance 2 - 2 cos: K dense centres (K, D) float64."""
    n = x.shape[0]
    trials = 2 + int(math.log(k))
    first = int(torch.randint(n, (1,), generator=generator))
    centres = [_dense(x, torch.tensor([first]))[0]]
    closest = (2.0 - 2.0 * _similarities(x, centres[0][None, :])[:, 0]).clamp_(min=0)
    for _ in range(1, k):
        total = float(closest.sum())
        if total <= 0:  # fewer distinct directions than seeds: repeat rows
            cand = torch.randint(n, (trials,), generator=generator)
        else:
            cand = torch.multinomial(closest, trials, replacement=True, generator=generator)
        rows = _dense(x, cand)
        dist = torch.minimum(closest[None, :], (2.0 - 2.0 * _similarities(x, rows).T).clamp_(min=0))
        best = int(torch.argmin(dist.sum(1)))
        closest = dist[best]
        centres.append(rows[best])
    return torch.stack(centres)


def lloyd(x: SparseRows, centres: Tensor) -> Tensor:
    """Spherical Lloyd iterations on unit rows: each row to its most similar centre, each
    centre the normalised sum of its rows (a centre left without rows stays), until the
    summed similarity settles."""
    D = x.shape[1]
    rows, cols = x.row_ids(), x.indices.long()
    previous = -math.inf
    for _ in range(LLOYD_MAX_ITER):
        sims = _similarities(x, centres)
        best, labels = sims.max(1)
        total = float(best.sum())
        sums = torch.zeros(centres.shape[0] * D, dtype=torch.float64)
        sums.index_add_(0, labels[rows] * D + cols, x.values)
        sums = sums.view(centres.shape[0], D)
        norms = sums.norm(dim=1, keepdim=True)
        centres = torch.where(norms > 0, sums / norms.clamp(min=1e-300), centres)
        if total - previous <= LLOYD_TOL * abs(total):
            break
        previous = total
    return centres


def seeds(method: str, sample: SparseRows, k: int, generator: torch.Generator) -> Tensor:
    """K unit centres (K, D) float64 from a sample of count rows: 'kmeans' (k-means++
    then spherical Lloyd), 'k-means++', or 'random_from_data' (distinct documents)."""
    x = unit_rows(sample)
    if x.shape[0] < k:
        raise DataError(
            f"the sample of {sample.shape[0]} documents drawn to initialise holds {x.shape[0]} that are not empty, "
            f"fewer than n_components={k}; lower n_components or pass more (non-empty) documents"
        )
    if method == "random_from_data":
        pick = torch.randperm(x.shape[0], generator=generator)[:k]
        return _dense(x, pick)
    centres = kmeans_plusplus(x, k, generator)
    return lloyd(x, centres) if method == "kmeans" else centres
