"""Missing values in a block of rows: NaN means "not observed". Math only.

With ``gaps=True`` a component's kernels accept rows with gaps, for the exact EM for
data missing at random (full-information maximum likelihood). What a gap does is the
family's to say, entry by entry:

* a family whose features are independent given the component (Poisson counts,
  categorical symbols, Bernoulli bits, diagonal Gaussians) leaves a missing entry out:
  its term of the log-density is 0 (multiply by :attr:`Gaps.observed`), and its
  statistics skip it (multiply by the mask, and where the M-step divides a sum by the
  responsibility mass, divide by the mass of the rows that observe that feature);
* a Gaussian with correlated coordinates completes a gap by its conditional mean given
  the row's observed values and adds the conditional covariance to the second moments
  (``gaussian_gaps``): the exact E-step of Dempster, Laird and Rubin (1977).

Either way the marginal density of what a row observed is what the E-step evaluates,
a row with nothing observed has log-density 0 under every component (its posterior is
the prior), and the statistics stay additive. Blocks without a gap never reach this
module: the components take their usual kernels, bit for bit.

The Gaussian batches its per-pattern factorisations: :func:`patterns` groups a block's
rows by their set of missing coordinates, and :class:`Group` holds the rows that miss
the same number of them, so one batched factorisation serves every pattern of a group
whatever their number (every row its own pattern included).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

# Missing masks of at most this many features are packed into one int64 per row, so
# that grouping the rows by pattern is a sort of integers; wider ones sort mask rows.
_PACKED_FEATURES = 62


def missing(x: Tensor) -> Tensor | None:
    """The (n, D) mask of x's missing entries, or None when there is none (one reduction
    answers the common case, as ``sources.validate.check_finite`` does)."""
    if x.numel() == 0 or not bool(torch.isnan(x.sum())):
        return None
    mask = torch.isnan(x)
    return mask if bool(mask.any()) else None


@dataclass(frozen=True, slots=True)
class Gaps:
    """The gaps of a block of rows, for families that leave a missing entry out.

    observed (n, D) in the kernel dtype: 1 where a value was observed, 0 in a gap;
    filled (n, D): the rows with every gap set to ``fill`` (a value whose terms the
    kernels can compute, to be multiplied by ``observed``)."""

    observed: Tensor
    filled: Tensor

    @classmethod
    def of(cls, x: Tensor, fill: float = 0.0, dtype: torch.dtype | None = None) -> Gaps:
        mask = torch.isnan(x)
        dt = dtype or x.dtype
        return cls((~mask).to(dt), torch.where(mask, torch.full_like(x, fill), x).to(dt))


@dataclass(frozen=True, slots=True)
class Group:
    """The rows of a block that miss the same number ``u`` of coordinates.

    rows (m,) int64: their positions among the block's gap rows; where (m, u) int64: the
    coordinates each misses, ascending; pattern (m,) int64: each row's pattern among the
    group's; coords (p, u) int64: the coordinates each of the group's p patterns misses;
    codes (p,) int64: its missing mask packed in bits (None beyond 62 features), which
    names a pattern across blocks.
    """

    u: int
    rows: Tensor
    where: Tensor
    pattern: Tensor
    coords: Tensor
    codes: Tensor | None = None  # (p,) int64: each pattern's missing mask packed in bits (None past 62 features)


def patterns(mask: Tensor) -> list[Group]:
    """The rows of a (m, D) missing mask (every row with at least one gap) grouped by the
    number of coordinates they miss, each group with its distinct patterns.

    Distinct patterns come from one sort (of packed integer codes up to
    ``_PACKED_FEATURES`` features, else of the mask rows); Python loops over the distinct
    numbers of missing coordinates only (at most D), never over patterns or rows.
    """
    m, D = mask.shape
    device = mask.device
    if D <= _PACKED_FEATURES:
        weights = torch.ones(D, dtype=torch.int64, device=device) << torch.arange(D, device=device)
        unique_codes, inverse = torch.unique((mask.to(torch.int64) * weights).sum(1), return_inverse=True)
    else:
        unique_codes = None
        _, inverse = torch.unique(mask, dim=0, return_inverse=True)
    n_patterns = int(inverse.max()) + 1 if m else 0
    # one row of each pattern stands for it
    rep = torch.empty(n_patterns, dtype=torch.int64, device=device)
    rep.scatter_(0, inverse, torch.arange(m, device=device))
    pattern_mask = mask[rep]  # (P, D)
    pattern_u = pattern_mask.sum(1)
    row_u = pattern_u[inverse]
    groups = []
    for u in torch.unique(pattern_u).tolist():
        members = torch.nonzero(pattern_u == u).reshape(-1)  # global pattern ids
        local = torch.full((n_patterns,), -1, dtype=torch.int64, device=device)
        local[members] = torch.arange(members.shape[0], device=device)
        coords = torch.nonzero(pattern_mask[members])[:, 1].reshape(-1, u)  # nonzero is row-major: ascending
        rows = torch.nonzero(row_u == u).reshape(-1)
        pattern = local[inverse[rows]]
        codes = None if unique_codes is None else unique_codes[members]
        groups.append(Group(int(u), rows, coords[pattern], pattern, coords, codes))
    return groups
