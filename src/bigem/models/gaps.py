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
the prior), and the statistics stay additive. On the CPU, blocks without a gap never
reach this module: the components take their usual kernels, bit for bit. Where reads
are deferred (a GPU), the independent families and the diagonal Gaussian take the gap
kernels whatever the block holds, rather than ask the device (see :func:`missing`).

The Gaussian factors each missing pattern once, named by its mask packed into an
integer code (:func:`pack`; :func:`distinct` finds the patterns where they must be
factored), and reads rows by their number of gaps, so that its kernels are a few
whole-block operations per number of gaps whatever the number of patterns (every row its
own pattern included). :func:`patterns` lists a block's missing values flat, one entry
each (row, coordinate).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core import numerics
from .._core.workspace import Workspace

# Missing masks of at most this many features are packed into one int64 per row (a
# pattern's code, which names it across blocks), so that finding a pattern is a search
# among sorted integers; wider ones sort mask rows, block by block.
PACKED_FEATURES = 62
_PACK_ROWS = 1 << 16


def missing(x: Tensor, ws: Workspace | None = None, defer: bool = True) -> Tensor | None:
    """The (n, D) mask of x's missing entries, or None when there is none (one reduction
    answers the common case, as ``sources.validate.check_finite`` does). With ``ws``, the
    mask is its buffer (a chunk's: fresh, its pages would be mapped anew each pass).

    Where reads are deferred (a GPU's rows, ``numerics.defers_reads``) the mask is always
    returned, read by no one: "is there a gap?" would wait on the device once a block,
    and a kernel that takes a mask gives a mask without a True the gap-free answer (to
    rounding: the gap kernels' sums are not the usual ones'). ``defer=False`` for a
    caller whose own bookkeeping reads the mask anyway (the correlated Gaussian's
    missing patterns), which keeps its gap-free blocks on the usual kernels."""
    if x.numel() == 0:
        return None
    deferred = defer and numerics.defers_reads(x.device)
    if not deferred and not bool(torch.isnan(x.sum())):
        return None
    mask = torch.isnan(x) if ws is None else torch.ne(x, x, out=ws.get("missing", x.shape, torch.bool, x.device))
    return mask if deferred or any_set(mask) else None


def any_set(mask: Tensor) -> bool:
    """Whether a boolean mask has a True: the largest of its bytes (on the CPU, 50x faster
    than ``Tensor.any``, measured on 8192 x 16 masks: 3 against 150 us)."""
    return mask.numel() > 0 and bool(mask.view(torch.uint8).max())


def empty_rows(mask: Tensor) -> Tensor:
    """(n,) whether each row of a (n, D) mask is all True: the least of its bytes (on the
    CPU, 4.7x faster than ``Tensor.all(1)``, measured on 1e6 x 16 masks: 9 against 43 ms)."""
    return mask.view(torch.uint8).amin(1).bool()


def observed_distances(x: Tensor, centres: Tensor, mask: Tensor | None = None) -> Tensor:
    """(n, K) squared distances from rows x (n, D) to ``centres`` (K, D) over each row's
    observed coordinates (k-POD's, Chi, Chi & Baraniuk 2016): a gap (NaN in x, or True in
    ``mask`` when given) adds nothing, whatever x holds there."""
    mask = torch.isnan(x) if mask is None else mask
    filled = x.masked_fill(mask, 0.0)
    seen = (~mask).to(x.dtype)
    c = centres.to(x.dtype)
    return ((filled * filled).sum(1, keepdim=True) - 2.0 * filled @ c.T + seen @ (c * c).T).clamp_(min=0)


def drawn_components(resp: Tensor, uniforms: Tensor) -> Tensor:
    """(n,) the component of each row's draw: the first k whose cumulated posterior
    (``resp`` (K, n)) exceeds the row's uniform (n,). One rule for every family, so the
    blocks of a mixed-type row draw from the same component."""
    cumulated = torch.cumsum(resp.double(), 0)
    return (cumulated < uniforms.double()[None, :] * cumulated[-1:]).sum(0).clamp_(max=resp.shape[0] - 1)


def coordinate_uniforms(normals: Tensor) -> Tensor:
    """Uniforms (n, D) from a row's standard normal draws: Phi(z), so the discrete families
    draw each gap by its inverse distribution function from the same per-row draws
    (``_core.draws.row_draws``) the Gaussian ones take."""
    return torch.special.ndtr(normals.double())


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
class Patterns:
    """The gaps of a block of rows, flat: one entry per missing value.

    rows, coords (G,) int64: each gap's row and coordinate, row by row, coordinates
    ascending within a row (the row-major order of the mask); first (m,) int64: each
    row's first entry (its entries are first .. first + u - 1); count (m,) int64: the
    number u of coordinates each row misses; codes (m,) int64: each row's mask packed in
    bits, which names its pattern across blocks (None beyond ``PACKED_FEATURES``).
    """

    rows: Tensor
    coords: Tensor
    first: Tensor
    count: Tensor
    codes: Tensor | None


def patterns(mask: Tensor) -> Patterns:
    """The gaps of a (m, D) missing mask, flat: one ``nonzero`` and a few operations the
    size of the gaps, whatever the number of patterns (no sort: :func:`distinct` finds
    them where they are needed)."""
    count = mask.sum(1)
    rows, coords = torch.nonzero(mask).unbind(1)
    first = torch.cumsum(count, 0) - count
    codes = None
    if mask.shape[1] <= PACKED_FEATURES:  # sum_j 2^j over the row's gaps
        codes = torch.zeros_like(count).index_add_(0, rows, torch.ones_like(coords) << coords)
    return Patterns(rows, coords, first, count, codes)


def pack(mask: Tensor, counts: bool = False, ws: Workspace | None = None):
    """Each row of a (m, D) mask packed into one int64 (None beyond ``PACKED_FEATURES``);
    with ``counts``, (codes, each row's number of True (m,) int64) (codes None beyond).
    With ``ws``, on the CPU up to 24 features, the results and the scratch are its
    buffers (a chunk's mask is large: fresh ones cost their pages' faults every pass).

    On the CPU, up to 24 features, float32 products with 2^j (and 1) (exact below 2^24:
    a third of the cost of integer products), in slices of ``_PACK_ROWS`` rows
    through a reused buffer whose conversion stays in cache (3.4x faster than converting a
    chunk of 1e6 rows at once, measured); the counts come with the codes from the same
    product. Elsewhere integer products, in one pass (a GPU's float products may round
    through TF32)."""
    m, D = mask.shape
    if D > PACKED_FEATURES:
        return (None, mask.sum(1)) if counts else None
    dev = mask.device
    bits = torch.ones(D, dtype=torch.int64, device=dev) << torch.arange(D, device=dev)
    exact = D <= 24 and dev.type == "cpu"
    if not exact:
        out = (mask.to(torch.int64) * bits).sum(1)
        return (out, mask.sum(1)) if counts else out
    bits, ones = bits.to(torch.float32), torch.ones(D, dtype=torch.float32, device=dev)
    rows = 2 if counts else 1
    step = _PACK_ROWS
    if ws is None:
        out = torch.empty(rows, m, dtype=torch.float32, device=dev)
        buffer = torch.empty(min(step, m), D, dtype=torch.float32, device=dev)
    else:
        out = ws.get("pack_products", (rows, m), torch.float32, dev)
        buffer = ws.get("pack_rows", (min(step, m), D), torch.float32, dev)
    for s in range(0, m, step):
        part = buffer[: min(step, m - s)]
        part.copy_(mask[s : s + step])
        torch.mv(part, bits, out=out[0, s : s + step])  # two products: 3x faster than one (m, D) @ (D, 2), measured
        if counts:
            torch.mv(part, ones, out=out[1, s : s + step])
    out = out.to(torch.int64) if ws is None else ws.get("pack_codes", (rows, m), torch.int64, dev).copy_(out)
    return (out[0], out[1]) if counts else out[0]


def unpack(codes: Tensor, D: int) -> Tensor:
    """The (P, D) masks of packed codes (P,)."""
    bits = torch.ones(D, dtype=torch.int64, device=codes.device) << torch.arange(D, device=codes.device)
    return (codes[:, None] & bits) != 0


def distinct(mask: Tensor) -> tuple[Tensor, Tensor | None, Tensor]:
    """(masks (P, D), codes (P,) or None, inverse (m,)): the distinct rows of a (m, D)
    mask and each row's among them, by one sort (of the packed codes up to
    ``PACKED_FEATURES`` features, else of the mask rows)."""
    codes = pack(mask)
    if codes is None:
        masks, inverse = torch.unique(mask, dim=0, return_inverse=True)
        return masks, None, inverse
    codes, inverse = torch.unique(codes, return_inverse=True)
    return unpack(codes, mask.shape[1]), codes, inverse
