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

# Missing masks of at most this many features are packed into one int64 per row (a
# pattern's code, which names it across blocks); with the count of missing coordinates in
# the bits above, up to _KEYED_FEATURES, sorting the rows by pattern is one sort of
# integers; wider masks are ranked by a sort of their distinct rows first.
_PACKED_FEATURES = 62
_KEYED_FEATURES = 56


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
    """The rows of a block that miss the same number ``u`` of coordinates: positions
    ``start:stop`` of the block's rows sorted by pattern (see :func:`patterns`), so that
    the kernels read and write a group's rows as a slice, never through an index.

    where (m, u) int64: the coordinates each of its m rows misses, ascending; pattern (m,)
    int64: each row's pattern among the group's, non-decreasing; coords (p, u) int64: the
    coordinates each of the group's p patterns misses; codes (p,) int64: its missing mask
    packed in bits (None beyond 62 features), which names a pattern across blocks.
    """

    u: int
    start: int
    stop: int
    where: Tensor
    pattern: Tensor
    coords: Tensor
    codes: Tensor | None = None


def patterns(mask: Tensor) -> tuple[Tensor, list[Group]]:
    """(order, groups): the permutation that sorts the rows of a (m, D) missing mask by
    (number of missing coordinates, pattern), and the groups of rows, one per number of
    missing coordinates, as ranges of that order. Rows with no gap, if any, come first
    and belong to no group.

    One sort of an integer key per row (the count in the high bits above the packed mask
    up to ``_KEYED_FEATURES`` features; past that the pattern's rank among the distinct
    mask rows), then runs of equal keys are the patterns. One host read per block (the
    rows and patterns per count); Python loops over the distinct counts only (at most D),
    never over patterns or rows.
    """
    m, D = mask.shape
    device = mask.device
    counts_u = mask.sum(1)
    if D <= _KEYED_FEATURES:
        key = (mask.to(torch.int64) * _bits(D, device)).sum(1) + (counts_u << _KEYED_FEATURES)
    else:
        distinct, inverse = torch.unique(mask, dim=0, return_inverse=True)
        key = distinct.sum(1)[inverse] * distinct.shape[0] + inverse
    sorted_key, order = torch.sort(key, stable=True)
    _, pattern, per_pattern = torch.unique_consecutive(sorted_key, return_inverse=True, return_counts=True)
    first = torch.cumsum(per_pattern, 0) - per_pattern  # each pattern's first row in the order
    pattern_mask = mask[order[first]]  # (P, D)
    pattern_u = counts_u[order[first]]  # non-decreasing
    codes = (pattern_mask.to(torch.int64) * _bits(D, device)).sum(1) if D <= _PACKED_FEATURES else None
    tally = torch.zeros(2, D + 1, dtype=torch.int64, device=device)
    tally[0].index_add_(0, pattern_u, per_pattern)
    tally[1].index_add_(0, pattern_u, torch.ones_like(pattern_u))
    rows_per_u, patterns_per_u = tally.tolist()  # the block's one host read
    groups, row, pat = [], rows_per_u[0], patterns_per_u[0]
    for u in range(1, D + 1):
        rows, pats = rows_per_u[u], patterns_per_u[u]
        if not rows:
            continue
        coords = torch.nonzero(pattern_mask[pat : pat + pats])[:, 1].reshape(pats, u)  # row-major: ascending
        local = pattern[row : row + rows] - pat
        groups.append(Group(u, row, row + rows, coords[local], local, coords,
                            None if codes is None else codes[pat : pat + pats]))
        row, pat = row + rows, pat + pats
    return order, groups


def _bits(D: int, device: torch.device) -> Tensor:
    """1, 2, 4, ... 2^(D-1): a mask row times these, summed, packs it into one int64."""
    return torch.ones(D, dtype=torch.int64, device=device) << torch.arange(D, device=device)
