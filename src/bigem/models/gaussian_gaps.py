"""Gaussian kernels for rows with gaps: the exact E-step for data missing at random.

A row that observes the coordinates O and misses U has, under component k,

* the marginal log-density log N(x_O | mu_O, Sigma_OO), which with the precision
  Lambda = Sigma^-1 is  log N(x^ | mu, Sigma) + (u/2) log 2pi + (1/2) log det(Sigma_UU|O),
  where x^ completes the row by its conditional mean and Sigma_UU|O = (Lambda_UU)^-1;
* the conditional mean x^_U = x_U - (Lambda_UU)^-1 (Lambda (x - mu))_U for any value the
  gaps were filled with (the minimiser over x_U of the quadratic form);
* the conditional covariance (Lambda_UU)^-1, which the second moments gain.

How it is computed, so that a row with gaps costs a small multiple of a complete row:

* the rows, their gaps filled with the centre, go through the complete-data arithmetic
  in whole-block batched products: Lambda_k (x - mu_k) for every component (one product
  the size of the whitening), then, once each gap holds its conditional mean, the
  whitening, whose squared norms give the log-density and whose Gram matrices give the
  second moments, exactly as for complete rows; the completed rows' first moments and
  counts are one more batched product;
* only the missing coordinates are corrected, by number of gaps: a block's rows are
  read by their number u of missing coordinates (the mixture's E-step reads a chunk's
  rows so ordered: ``GaussianComponent.expect_gaps``, so that most blocks hold one run
  of rows that all miss u coordinates, or no gap at all and take the usual kernels), and
  each run is dense: its gaps' residuals (Lambda (x - mu))_U, (u, rows), and its rows'
  Sigma_UU|O, (u, u, rows), one gather each, then -sum_j (Sigma_UU|O)_ij (Lambda (x -
  mu))_j over the rows, u products, whatever the number of patterns;
* everything per pattern (Lambda_UU's inverse, the conditional covariance, and its
  log-determinant) is a u x u problem, solved once per E-step for every pattern the
  chunk shows (:class:`PatternCache`), batched over the new patterns that miss the same
  number of coordinates (by sweeps, a few whole-batch operations per pivot, up to
  ``_SWEEP_MAX``); the conditional covariances enter the second moments once per
  pattern, weighed by the responsibility mass of its rows, not per row.

The number of operations per block is bounded by a few per number of missing
coordinates in the block (a loop over the numbers of missing coordinates of new
patterns runs only for patterns not met before, and the mixture's E-step factors a
chunk's patterns before its blocks); so is the number of host reads, none of them per
pattern. In a block with gaps, full and diagonal structures send its complete rows the
same way (pattern 0: no correction), one pass.

Diagonal structures need none of this: their coordinates are independent given the
component, so a gap's term of the log-density is 0, its conditional mean is the mean
and its conditional variance the variance. Their gap rows are the expanded form with
one more column per feature, the observed mask ([x, x^2, o, 1]), and their moments are
the observed values' with the mass that missed each feature (``GaussianStats.unseen``).

Per-pattern factors are float64; per-row arithmetic is in the kernel dtype (chosen as
for complete rows); statistics are float64 about the same shifts as complete rows', so
both add.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.workspace import Workspace
from .gaps import distinct, drawn_components, pack, unpack
from .gaussian import LOG_2PI, GaussianStats, Prepared, batched_weighted_sums, gram_sums, weighted_sums

# Bytes of the (K, pairs) products of the gap correction computed at a time: a block
# whose rows miss many coordinates each (sum_n u_n^2 large) is corrected in slices.
_PAIR_BYTES = 8 << 20

# Up to this many features a cache finds patterns in a table of every possible code
# (2^D int64: 512 kB at 16 features) rather than by a search among the sorted codes.
_TABLE_FEATURES = 16

# Missing patterns of at most this many coordinates are inverted by sweeps (:func:`_inverse`).
_SWEEP_MAX = 8

# The name under which a pattern cache holds its workspace's stores (``Workspace.claim``).
_CLAIM = "gap_patterns"


class PatternCache:
    """The factors of every missing pattern met in one E-step on a chunk (one set of
    prepared parameters), flat, so that the kernels read any mix of patterns with one
    gather. Pattern i misses count[i] coordinates and owns entries offset[i] ..
    offset[i] + count[i]^2 - 1 of the entry stores, its conditional covariance
    Sigma_UU|O row-major:

    const (K, P): (u/2) log 2pi - (1/2) log det Lambda_UU, kernel dtype;
    cond (K, E), cond64 (K, E): the conditional covariances' entries, kernel dtype and
    float64; target (E,): each entry's position i * D + j in a (D, D) matrix; owner (E,):
    its pattern; codes (P,): the patterns' packed masks, by which rows find their pattern
    (a table of every code up to ``_TABLE_FEATURES`` features, else a search among the
    sorted codes; beyond ``PACKED_FEATURES`` patterns have no code: the cache serves one
    block and is cleared for the next).

    A pattern new to the cache is factored in one batch with every new pattern that
    misses as many coordinates (:func:`_inverse`: sweeps up to ``_SWEEP_MAX``, Cholesky
    factors beyond). The stores are buffers of the workspace ``ws``, kept from one E-step's
    cache to the next (fresh ones mapped their pages anew each E-step), doubled when they
    grow; a cache whose stores a newer one of its thread took since starts again
    (``Workspace.claim``).
    """

    _PATTERN = ("codes", "count", "offset", "const")
    _ENTRY = ("cond", "cond64", "target", "owner")

    def __init__(self, precision64: Tensor, dtype: torch.dtype, ws: Workspace | None = None) -> None:
        self.precision64, self.dtype = precision64, dtype
        self.ws = Workspace() if ws is None else ws
        D = precision64.shape[1]
        cpu = precision64.device.type == "cpu"
        self.bits = (2.0 ** torch.arange(D, dtype=torch.float32)) if cpu and D <= 24 else None  # see _codes
        self.ones = torch.ones(D, dtype=torch.float32) if cpu and D <= 24 else None  # see _counts
        self.ws.claim(_CLAIM, self)
        self._reset()

    def _reset(self) -> None:
        """Empty, but for pattern 0 (no gap)."""
        self.n_patterns = self.n_entries = 0
        self.store: dict[str, Tensor] = {}
        self.sorted_codes = self.order = None
        self.per_block = False
        self._table: Tensor | None = None
        D, dev = self.precision64.shape[1], self.precision64.device
        self._add(torch.zeros(1, D, dtype=torch.bool, device=dev), torch.zeros(1, dtype=torch.int64, device=dev))

    def _own(self) -> None:
        """The stores are the workspace's, kept from one E-step to the next so that their
        pages are not mapped afresh each time; were they lent to another cache of this
        thread since (a newer E-step's), start again."""
        if not self.ws.claim(_CLAIM, self):
            self._reset()

    def __getattr__(self, name: str) -> Tensor:
        if name in PatternCache._PATTERN or name in PatternCache._ENTRY:
            size = self.n_patterns if name in PatternCache._PATTERN else self.n_entries
            value = self.store[name]
            return value[..., :size]
        raise AttributeError(name)

    def held(self, name: str) -> Tensor:
        """A store whole, capacity included: contiguous, so gathers from it copy nothing
        first (a gather from the (K, size) view of a (K, capacity) store copied it)."""
        return self.store[name]

    @property
    def table(self) -> Tensor | None:
        """Up to ``_TABLE_FEATURES`` features, each possible code's position (-1: not met),
        made when first needed; else None (codes are searched among the sorted ones)."""
        D = self.precision64.shape[1]
        if self._table is None and D <= _TABLE_FEATURES:
            table = self.ws.get("gap_patterns_table", (1 << D,), torch.int64, self.precision64.device)
            self._table = table.fill_(-1)
        return self._table

    def expect(self, mask: Tensor) -> tuple[Tensor, Tensor | None]:
        """Factor, in one batch per number of missing coordinates, every pattern of the
        (n, D) missing mask of a chunk about to be read block by block (with codes only:
        beyond ``PACKED_FEATURES`` a block's patterns are its own). Returns each row's
        number of gaps (n,) and its pattern's code (n,; None beyond ``PACKED_FEATURES``),
        which come together (workspace buffers)."""
        self._own()
        codes, count = pack(mask, counts=True, ws=self.ws)
        if codes is None:
            return count, None
        if self.table is not None and codes.shape[0] >= self.table.shape[0] // 8:  # by counting, no sort
            seen = torch.bincount(codes, minlength=self.table.shape[0])
            seen[0] = 0  # rows with no gap
            new = torch.nonzero((seen > 0) & (self.table < 0)).reshape(-1)
        else:
            met = torch.unique(codes)
            new = met[(met > 0) & ~self._find(met)[1]]
        if new.numel():
            self._add(unpack(new, mask.shape[1]), new)
        return count, codes

    def positions(self, mask: Tensor, codes: Tensor | None) -> Tensor:
        """Each row's pattern's position in the cache (m,), for a block's (m, D) missing
        mask and its rows' packed codes; patterns not met before are factored first."""
        self._own()
        self.per_block = codes is None
        if codes is None:  # no names across blocks: this block's patterns only
            self.n_patterns = self.n_entries = 0
            masks, _, inverse = distinct(mask)
            return self._add(masks, None)[inverse]
        if self.table is not None:  # the common case in two operations: a lookup and its least
            at = torch.index_select(self.table, 0, codes)
            if at.numel() == 0 or int(at.min()) >= 0:  # one host read per block; true once the chunk was expected
                return at
        at, found = self._find(codes)
        if not bool(found.all()):  # one host read per block; false once the chunk was expected
            new = torch.unique(codes[~found])
            self._add(unpack(new, mask.shape[1]), new)
            at, _ = self._find(codes)
        return at

    def _find(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        if self.table is not None:
            at = torch.index_select(self.table, 0, codes)
            return at.clamp(min=0), at >= 0
        if self.n_patterns == 0:
            return torch.zeros_like(codes), torch.zeros_like(codes, dtype=torch.bool)
        at = torch.searchsorted(self.sorted_codes, codes).clamp_(max=self.n_patterns - 1)
        return self.order[at], self.sorted_codes[at] == codes

    def _add(self, masks: Tensor, codes: Tensor | None) -> Tensor:
        """Factor the patterns of ``masks`` (p, D) (codes (p,) or None), appended in
        order of their count; returns their positions (p,). The factors are written
        straight into the stores (no temporary the size of the entries)."""
        K, D, _ = self.precision64.shape
        dev = masks.device
        by_count = torch.argsort(masks.sum(1), stable=True)
        masks = masks[by_count]
        codes = None if codes is None else codes[by_count]
        count = masks.sum(1)
        per_count = torch.bincount(count, minlength=D + 1).tolist()  # one host read
        new = masks.shape[0]
        sizes = count * count
        n, e = self.n_patterns, self.n_entries
        offsets = e + torch.cumsum(sizes, 0) - sizes
        total = sum(u * u * p for u, p in enumerate(per_count))
        if codes is not None:
            self._reserve("codes", codes, n, new)[n : n + new] = codes
        self._reserve("count", count, n, new)[n : n + new] = count
        self._reserve("offset", offsets, n, new)[n : n + new] = offsets
        const = self._reserve("const", torch.empty(K, 0, dtype=self.dtype, device=dev), n, new)[:, n : n + new]
        f64 = torch.empty(K, 0, dtype=torch.float64, device=dev)
        cond64 = self._reserve("cond64", f64, e, total)[:, e : e + total]
        cond = self._reserve("cond", f64.to(self.dtype), e, total)[:, e : e + total]
        i64 = torch.empty(0, dtype=torch.int64, device=dev)
        target = self._reserve("target", i64, e, total)[e : e + total]
        owner = self._reserve("owner", i64, e, total)[e : e + total]
        const[:, : per_count[0]] = 0.0
        start = entry = 0
        for u, p in enumerate(per_count):
            if p == 0 or u == 0:
                start += p
                continue
            coords = torch.nonzero(masks[start : start + p])[:, 1].reshape(p, u)  # row-major: ascending
            at = (coords[:, :, None] * D + coords[:, None, :]).reshape(-1)  # (p, u, u): Lambda_UU's entries
            size = p * u * u
            # a principal block of a positive definite matrix: no failure to check (nor a host sync)
            log_det = _inverse_into(self.precision64, at, cond64[:, entry : entry + size].view(K, p, u, u), self.ws)
            const[:, start : start + p] = 0.5 * u * LOG_2PI - 0.5 * log_det  # Sigma_UU|O, log det Lambda_UU
            cond[:, entry : entry + size] = cond64[:, entry : entry + size]
            target[entry : entry + size] = at
            owner[entry : entry + size].view(p, u * u).copy_(torch.arange(n + start, n + start + p, device=dev)[:, None])
            start, entry = start + p, entry + size
        appended = torch.arange(n, n + new, device=dev)  # in order of count
        positions = torch.empty_like(by_count)
        positions[by_count] = appended
        self.n_patterns += new
        self.n_entries += total
        if codes is not None and self.table is not None:
            self.table[codes] = appended
        elif codes is not None:
            self.sorted_codes, self.order = torch.sort(self.codes)
        return positions

    def _reserve(self, name: str, like: Tensor, n: int, new: int) -> Tensor:
        """The store ``name`` (like's leading shape and dtype, and a last dimension),
        with room for n + new along its last dimension, its first n kept: a workspace
        buffer, whose whole capacity it takes (the previous E-step's cache grew it)."""
        held = self.store.get(name)
        if held is None or held.shape[-1] < n + new:
            lead = tuple(like.shape[:-1])
            rows = math.prod(lead)
            key = "gap_patterns_" + name
            room = self.ws.capacity(key, like.dtype, like.device) // rows
            keep = None if held is None or n == 0 else held[..., :n].clone()  # the buffer may come back reshaped
            held = self.ws.get(key, lead + (max(2 * (n + new), 64, room),), like.dtype, like.device)
            if keep is not None:
                held[..., :n] = keep
            self.store[name] = held
        return held


def _inverse_into(precision64: Tensor, at: Tensor, out: Tensor, ws: Workspace) -> Tensor:
    """out (K, p, u, u) = the inverses of the principal blocks of the precisions (K, D, D)
    at the flat positions ``at`` (p * u * u,), by :func:`_inverse`; returns their log
    determinants (K, p). Up to ``_SWEEP_MAX`` the blocks are gathered and swept in
    workspace buffers (the E-step's largest scratch after the rows')."""
    K, p, u, _ = out.shape
    D = precision64.shape[1]
    flat = precision64.reshape(K, D * D)
    if u > _SWEEP_MAX:
        inverse, log_det = _inverse(torch.index_select(flat, 1, at).view(K, p, u, u))
        out.copy_(inverse)
        return log_det
    lam = torch.index_select(flat, 1, at, out=ws.get("gap_sweep_gather", (K, p * u * u), flat.dtype, flat.device))
    a = ws.get("gap_sweep", (u, u, K, p), flat.dtype, flat.device)
    a.copy_(lam.view(K, p, u, u).movedim((-2, -1), (0, 1)))
    log_det = _sweep(a, ws)
    out.copy_(a.movedim((0, 1), (-2, -1)))
    return log_det


def _inverse(lam: Tensor) -> tuple[Tensor, Tensor]:
    """(inverse, log det) of positive definite (..., u, u) matrices, batched: up to
    ``_SWEEP_MAX`` by sweeping every pivot, each sweep a few whole-batch operations
    (Goodnight 1979; without pivoting, stable on positive definite matrices, whose pivots
    are the successive Schur complements' and give the log-determinant), 3-9x faster than
    a batched Cholesky factorisation and inverse for u <= 6 (LAPACK's per-matrix calls
    dominate small matrices; measured at 14k matrices); beyond, by Cholesky factors."""
    u = lam.shape[-1]
    if u > _SWEEP_MAX:
        chol = torch.linalg.cholesky_ex(lam).L
        return torch.cholesky_inverse(chol), 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    a = lam.movedim((-2, -1), (0, 1)).clone(memory_format=torch.contiguous_format)  # (u, u, ...): whole batches
    log_det = _sweep(a)
    return a.movedim((0, 1), (-2, -1)), log_det


def _sweep(a: Tensor, ws: Workspace | None = None) -> Tensor:
    """a (u, u, ...) positive definite matrices, batched over the trailing dimensions,
    replaced by their inverses (see :func:`_inverse`); returns their log determinants.
    With ``ws`` its scratch (a pivot, a row, a column) is the workspace's."""
    u = a.shape[0]
    batch, like = a.shape[2:], dict(dtype=a.dtype, device=a.device)

    def scratch(name: str, shape: tuple[int, ...]) -> Tensor:
        return torch.empty(shape, **like) if ws is None else ws.get(name, shape, a.dtype, a.device)

    log_det = torch.zeros(batch, **like)
    d, log_d = scratch("gap_sweep_pivot", batch), scratch("gap_sweep_log", batch)
    col, row = scratch("gap_sweep_col", (u,) + batch), scratch("gap_sweep_row", (u,) + batch)
    for k in range(u):
        d.copy_(a[k, k])
        log_det += torch.log(d, out=log_d)
        torch.div(a[:, k], d, out=col)
        row.copy_(a[k])
        a.addcmul_(col[:, None], row[None], value=-1.0)  # a_ij -= a_ik a_kj / d
        a[k] = col  # row and column k: a_kj / d (the matrix stays symmetric), then the pivot
        a[:, k] = col
        torch.reciprocal(d, out=a[k, k]).neg_()  # -1 / d
    a.neg_()
    return log_det


@dataclass(frozen=True, slots=True)
class GapFactors:
    """What the gap kernels read, built once per E-step beside the ``Prepared`` parameters.

    precision64 (K, D, D): the precisions, dense, float64 (diag: diagonal matrices);
    prec_chol64 (K, D, D): their upper factors U (U U^T = Lambda), dense, float64;
    whiten (K, D+1, D), kernel dtype: [U_k; -mc_k U_k], whitens [x - c, 1];
    project (K, D+1, D), kernel dtype: [Lambda_k; -mc_k Lambda_k], gives Lambda (x - mu);
    cache: the per-pattern factors met so far (:class:`PatternCache`);
    diag structures also: quad (K, 3D) [-2 mc prec, prec, mc^2 prec] and const (K, D)
    (-log 2pi / 2 + log of the precision factor) of the masked expanded form, and
    var64 (K, D) the variances (float64), which complete the gaps' second moments.
    """

    precision64: Tensor
    prec_chol64: Tensor
    whiten: Tensor
    project: Tensor
    cache: PatternCache
    quad: Tensor | None = None
    const: Tensor | None = None
    var64: Tensor | None = None


def factors(structure, prec_chol: Tensor, covariances: Tensor, means_c64: Tensor, dtype: torch.dtype,
            ws: Workspace | None = None) -> GapFactors:
    """The gap kernels' factors of one E-step (float64 parameters in, see :class:`GapFactors`);
    the pattern cache keeps its stores in ``ws``, from one E-step to the next."""
    K, D = means_c64.shape
    u = structure.dense(prec_chol, K, D).to(torch.float64)
    precision = u @ u.transpose(1, 2)
    shifted_u = torch.einsum("kd,kde->ke", means_c64, u)[:, None, :]
    shifted_p = torch.einsum("kd,kde->ke", means_c64, precision)[:, None, :]
    whiten = torch.cat([u, -shifted_u], 1).to(dtype)
    project = torch.cat([precision, -shifted_p], 1).to(dtype)
    cache = PatternCache(precision, dtype, ws)
    if structure.kernel != "diag":
        return GapFactors(precision, u, whiten, project, cache)
    prec = structure.precisions(prec_chol, D)
    quad = torch.cat([-2.0 * means_c64 * prec, prec, means_c64.square() * prec], 1).to(dtype)
    const = (-0.5 * LOG_2PI + 0.5 * torch.log(prec)).to(dtype)
    return GapFactors(precision, u, whiten, project, cache, quad, const, structure.variances(covariances, D).clone())


@dataclass(slots=True)
class GapBlock:
    """The rows of a block that have gaps, as the gap kernels read them.

    feats: [x - c (0 in the gaps), 1] (m, D+1), or for diagonal structures
    [x - c, (x - c)^2 (0 in the gaps), observed mask, 1] (m, 3D+1); mask (m, D): True
    in the gaps; both in the block's row order. The rest only for full and tied
    structures, whose kernels read the rows in another order, ``order`` (m,; None where
    the block is already in it): the rows
    with no gap first, then those that miss 1, 2, ... coordinates (``sizes``: how many
    rows miss u coordinates, u = 0..D), so that the rows that miss u coordinates are one
    run and their gaps one dense (u, rows) array. In that order: completed (K, m, D+1)
    the rows [x - c, 1] with each gap set to each component's conditional mean less the
    centre; whitened (K, m, D) those rows whitened, which the log-density reads and the
    moments consume; const (K, m) each row's log-density beyond what |whitened|^2 gives;
    at (m - sizes[0],) the pattern of each row with gaps (its position in the
    :class:`PatternCache`). Per run (:meth:`runs`): coords[i] (u, rows) its gaps'
    coordinates, and its slice of fill (K, G), each missing value's conditional mean less
    the centre, (u, rows) per component.
    """

    feats: Tensor
    mask: Tensor
    completed: Tensor | None = None
    whitened: Tensor | None = None
    const: Tensor | None = None
    order: Tensor | None = None
    sizes: list[int] | None = None
    at: Tensor | None = None
    fill: Tensor | None = None
    coords: list[Tensor] | None = None

    def runs(self):
        """(u, rows, gaps) for u = 1.. with rows: the slice of the reordered rows that
        miss u coordinates and the slice of the flat gaps that are theirs."""
        a, g = self.sizes[0], 0
        for u in range(1, len(self.sizes)):
            n = self.sizes[u]
            if n:
                yield u, slice(a, a + n), slice(g, g + n * u)
            a, g = a + n, g + n * u


def block(p: Prepared, gf: GapFactors, x: Tensor, mask: Tensor, ws: Workspace,
          ahead: tuple[Tensor, Tensor | None] | None = None) -> GapBlock:
    """The gap kernels' view of rows x (m, D) (mask, True where missing): the rows with
    at least one gap, or (diagonal structures, and full ones past ``EXPANDED_MAX_D``
    features) every row of a block that has one, since a row with no gap costs them no
    more than the usual kernels (it has pattern 0: no correction, no constant). ``ahead``:
    the rows' numbers of gaps and pattern codes where the chunk's E-step has them (rows
    read by number of gaps, see :func:`complete`)."""
    m, D = x.shape
    if p.kernel == "diag":
        feats = ws.get("gap_features", (m, 3 * D + 1), p.dtype, x.device)
        xc = torch.sub(x, p.centre, out=feats[:, :D]).masked_fill_(mask, 0.0)
        torch.mul(xc, xc, out=feats[:, D : 2 * D])
        feats[:, 2 * D : 3 * D].copy_(~mask)
        feats[:, 3 * D].fill_(1.0)
        return GapBlock(feats, mask)
    feats = centred_features(p, x, mask, ws)
    return complete(gf, feats, mask, p.dtype, ws, ahead=ahead)


def centred_features(p: Prepared, x: Tensor, mask: Tensor, ws: Workspace) -> Tensor:
    """[x - c, 1] (m, D+1) in the kernel dtype, with 0 (the centre) in every gap."""
    m, D = x.shape
    feats = ws.get("gap_features", (m, D + 1), p.dtype, x.device)
    # a gap (NaN) minus the centre stays NaN: 0 in its place, with no pass over the mask
    # (infinities stay as they are)
    torch.nan_to_num_(torch.sub(x, p.centre, out=feats[:, :D]), nan=0.0, posinf=math.inf, neginf=-math.inf)
    feats[:, D].fill_(1.0)
    return feats


def _counts(mask: Tensor, cache: PatternCache, ws: Workspace) -> tuple[Tensor, Tensor | None]:
    """(each row's number of gaps (m,), the mask as float32 (m, D) or None) for a block's
    (m, D) mask: where the cache packs codes by float32 products (the CPU, up to 24
    features), one conversion into a workspace buffer and one product with ones (exact),
    which the codes then reuse: no fresh memory, where ``mask.sum(1)`` converts the mask
    to a fresh (m, D) int64 array first (1 MB a block at 8192 x 16); about as fast as
    that sum and the codes' own conversion together (measured, on a loaded machine);
    else ``mask.sum(1)``."""
    if cache.bits is None:
        return mask.sum(1), None
    m, D = mask.shape
    floats = ws.get("gap_block_mask", (m, D), torch.float32, mask.device).copy_(mask)
    count = torch.mv(floats, cache.ones, out=ws.get("gap_block_count_products", (m,), torch.float32, mask.device))
    return ws.get("gap_block_count", (m,), torch.uint8, mask.device).copy_(count), floats


def _codes(mask: Tensor, cache: PatternCache, ws: Workspace, floats: Tensor | None = None) -> Tensor | None:
    """``gaps.pack`` of a block's (m, D) mask, in the few operations a block can afford:
    one conversion (none given ``floats``, the mask as float32) and one product with the
    cache's bits (float32, exact up to 24 features, on the CPU), else ``pack``."""
    bits = cache.bits
    if bits is None:
        return pack(mask)
    m, D = mask.shape
    if floats is None:
        floats = ws.get("gap_codes_mask", (m, D), torch.float32, mask.device).copy_(mask)
    products = torch.mv(floats, bits, out=ws.get("gap_codes_products", (m,), torch.float32, mask.device))
    return ws.get("gap_codes", (m,), torch.int64, mask.device).copy_(products)


def complete(gf: GapFactors, feats: Tensor, mask: Tensor, dtype: torch.dtype, ws: Workspace,
             ahead: tuple[Tensor, Tensor | None] | None = None) -> GapBlock:
    """Each row completed by each component's conditional mean, whitened, and its
    log-density's constant. feats: [x - c (0 in the gaps), 1] (m, D+1).

    The rows are reordered by their number of gaps u (one sort of small integers), so
    that the rows that miss u coordinates form one run whose arithmetic is dense (see
    the module docstring): Lambda_k (x - mu_k) of the rows with gaps as filled, one
    batched product; per run, the residuals at its gaps (u, rows) and its rows'
    conditional covariances (u, u, rows), one gather each, the conditional means, one
    product and a sum over the rows, written into a copy of the rows by one scatter;
    then the whitening of the completed rows, one batched product. ``ahead``: the rows'
    numbers of gaps (m,) and pattern codes (m,; None: the patterns have none), rows
    already in order, from the chunk (``GaussianComponent.expect_gaps``), which spares
    the block deriving them.
    """
    m, width = feats.shape
    D = width - 1
    K = gf.whiten.shape[0]
    dev = feats.device
    cache = gf.cache
    if ahead is None:
        count, floats = _counts(mask, cache, ws)
        # no gap first, then by number of gaps (the mixture's E-step reads them so already):
        # how many rows miss u coordinates, and how many rows come before one that misses fewer
        disorder = (count[1:] < count[:-1]).sum().reshape(1)
        tally = torch.cat([torch.bincount(count, minlength=D + 1), disorder]).tolist()  # one host read per block
        sizes, ordered = tally[:-1], tally[-1] == 0
    else:
        count, codes = ahead
        sizes, ordered = torch.bincount(count, minlength=D + 1).tolist(), True  # one host read per block
    order = None if ordered else torch.argsort(count.to(torch.uint8) if D < 256 else count, stable=True)
    m0 = sizes[0]
    mg = m - m0
    rows = feats if ordered else torch.index_select(feats, 0, order, out=ws.get("gap_rows", (m, width), dtype, dev))
    gapped = mask[m0:] if ordered else torch.index_select(mask, 0, order[m0:])
    # (mg,) each row's pattern in the cache
    if ahead is None:
        codes = _codes(gapped, cache, ws, floats[m0:] if ordered and floats is not None else None)
    else:
        codes = None if codes is None else codes[m0:]
    at = cache.positions(gapped, codes)
    G = sum(u * n for u, n in enumerate(sizes))
    fill = ws.get("gap_fill", (K, G), dtype, dev)
    completed = ws.get("gap_completed", (K, m, width), dtype, dev)
    completed.copy_(rows.expand(K, m, width))
    gb = GapBlock(feats, mask, completed, None, None, order, sizes, at, fill, [])
    if mg:
        # Lambda_k (x - mu_k) of the rows as filled: its gap entries give each conditional mean
        projected = torch.bmm(rows[m0:].expand(K, mg, width), gf.project,
                              out=ws.get("gap_projected", (K, mg, D), dtype, dev)).view(K, mg * D)
        offset = torch.index_select(cache.held("offset"), 0, at)  # each row's first entry in the cache
        target, cond = cache.held("target"), cache.held("cond")
        step = max(1, _PAIR_BYTES // (K * fill.element_size()))
        count_up = torch.arange(max(D * D, m) + 1, device=dev)
        for u, run, gaps in gb.runs():
            first = offset[run.start - m0 : run.stop - m0]  # (n,)
            n = first.shape[0]
            # the row's gaps' coordinates: the first row of its conditional covariance's entries
            i64 = dict(dtype=torch.int64, device=dev)
            index = ws.get("gap_run_index", (u, n), **i64)  # scratch for the run's gathers and scatter
            entries = torch.add(first, count_up[:u, None], out=index).view(-1)
            cu = torch.index_select(target, 0, entries, out=ws.get(f"gap_run_coords_{u}", (u * n,), **i64))
            cu = cu.remainder_(D).view(u, n)
            gb.coords.append(cu)
            local = count_up[run.start - m0 : run.stop - m0]
            residual = torch.index_select(projected, 1, torch.add(cu, local, alpha=D, out=index).view(-1),
                                          out=ws.get("gap_run_residual", (K, u * n), dtype, dev)).view(K, u, n)
            out = fill[:, gaps].view(K, u, n)
            pairs = count_up[: u * u, None]
            per = max(1, step // (u * u))  # rows per slice of the (K, u, u, rows) products
            for s in range(0, n, per):
                part = slice(s, s + per)
                size = u * u * first[part].shape[0]
                entries = torch.add(first[part], pairs, out=ws.get("gap_pair_entries", (u * u, size // (u * u)),
                                                                   torch.int64, dev))
                c = torch.index_select(cond, 1, entries.view(-1),
                                       out=ws.get("gap_pair_cond", (K, size), dtype, dev)).view(K, u, u, -1)
                if u == 1:
                    torch.mul(c[:, 0], residual[:, :, part], out=out[:, :, part])
                else:
                    torch.sum(c.mul_(residual[:, None, :, part]), 2, out=out[:, :, part])
            out.neg_()
            # the gaps of the completed rows: their conditional means
            at_gaps = torch.add(cu, count_up[:n], alpha=width, out=index).view(1, -1).expand(K, -1)
            completed[:, run].view(K, n * width).scatter_(1, at_gaps, out.view(K, -1))
    const = ws.get("gap_const", (K, m), dtype, dev)
    const[:, :m0].zero_()
    const[:, m0:] = torch.index_select(cache.held("const"), 1, at, out=ws.get("gap_row_const", (K, mg), dtype, dev))
    gb.const = const
    gb.whitened = torch.bmm(completed, gf.whiten, out=ws.get("gap_whitened", (K, m, D), dtype, dev))
    return gb


def log_joint(p: Prepared, gf: GapFactors, gb: GapBlock, log_w: Tensor) -> Tensor:
    """log w_k + log N(x_O | mu_k, Sigma_k) of every gap row: (K, m), in the block's order."""
    top = (p.const + log_w)[:, None]
    if gb.whitened is None:  # diagonal: the masked expanded form
        D = gf.const.shape[1]
        q = (gf.quad @ gb.feats[:, : 3 * D].T).clamp_(min=0)
        return torch.addmm(log_w[:, None], gf.const, gb.feats[:, 2 * D : 3 * D].T).sub_(q, alpha=0.5)
    out = torch.linalg.vector_norm(gb.whitened, dim=-1).square_().mul_(-0.5).add_(top).add_(gb.const)
    if gb.order is None:
        return out
    back = torch.empty_like(gb.order).scatter_(0, gb.order, torch.arange(out.shape[1], device=out.device))
    return torch.index_select(out, 1, back)


def nearest(p: Prepared, gb: GapBlock) -> tuple[Tensor, Tensor]:
    """Each gap row's nearest mean over its observed coordinates, and minus that squared
    distance (hard assignments of initialisation)."""
    D = p.means_c.shape[1]
    xc = gb.feats[:, :D]
    observed = (~gb.mask).to(xc.dtype)
    mc = p.means_c
    dist = (xc * xc).sum(1, keepdim=True) - 2.0 * xc @ mc.T + observed @ (mc * mc).T
    best, labels = dist.clamp_(min=0).min(1)
    return labels, best.neg_()


class GapMoments:
    """Float64 moments of a chunk's gap rows, about the same shifts as ``Moments``.

    raw (K, W): rw times the block's features (the observed part of the first moments,
    the counts; diagonal: also the squares and the observed mass); full and tied also
    fill (K, D) the conditional means' part of the first moments, second (K, D, D) the
    whitened completed rows' Gram matrices, and mass (K, P) the responsibility mass of
    the rows of each pattern in the cache, which weighs its conditional covariance once,
    in :meth:`result` (cond (K, D * D): those already weighed, where the cache serves
    one block at a time).
    """

    def __init__(self, p: Prepared, gf: GapFactors, ws: Workspace) -> None:
        self.p, self.gf, self.ws = p, gf, ws
        K, D = p.shift_c64.shape
        f64 = dict(dtype=torch.float64, device=p.shift_c64.device)
        self.diag = p.kernel == "diag"
        self.raw = torch.zeros(K, 3 * D + 1 if self.diag else D + 1, **f64)
        if not self.diag:
            self.second = torch.zeros(K, D, D, **f64)
            self.mass = torch.zeros(K, 0, **f64)
            self.cond = torch.zeros(K, D * D, **f64)

    def add(self, gb: GapBlock, rw: Tensor) -> None:
        """One block's gap rows and their weighted responsibilities rw (K, m), in the
        block's order. Consumes the whitened rows."""
        if self.diag:
            self.raw += weighted_sums(rw, gb.feats)
            return
        K = rw.shape[0]
        cache = self.gf.cache
        rw = rw if gb.order is None else torch.index_select(rw, 1, gb.order)  # the kernels' order
        self.raw += batched_weighted_sums(rw, gb.completed)  # the completed rows' first moments, n_k
        P = self.mass.shape[1]
        dev, ws = rw.device, self.ws
        if P < cache.n_patterns:  # workspace buffers: the chunk's first block takes the last chunk's
            keep = self.mass.clone() if P else None
            P = max(2 * cache.n_patterns, 64)
            self.mass = ws.get("gap_mass", (K, P), torch.float64, dev).zero_()
            if keep is not None:
                self.mass[:, : keep.shape[1]] = keep
        # the mass of each pattern's rows: one indexed add along the flat (component,
        # pattern) pairs (several times faster than an indexed add along the (K, P)
        # columns), straight into the chunk's masses: a block's own zeroed (K, P) buffer,
        # added after, cost two more passes over the (K, P) masses per block (P: twice the
        # chunk's patterns, thousands at 16 features), more than the add itself
        mg = gb.at.shape[0]
        pairs = torch.add(gb.at, torch.arange(0, K * P, P, device=dev)[:, None],
                          out=ws.get("gap_mass_pairs", (K, mg), torch.int64, dev))
        weights = ws.get("gap_mass_weights", (K, mg), torch.float64, dev).copy_(rw[:, gb.sizes[0] :])
        self.mass.view(-1).index_add_(0, pairs.view(-1), weights.view(-1))
        if cache.per_block:  # the cache is this block's alone: weigh its covariances now
            self._fold()
        y = gb.whitened.mul_(torch.sqrt(rw, out=self.ws.get("gap_rw_sqrt", rw.shape, rw.dtype, rw.device))[:, :, None])
        self.second += gram_sums(y)

    def _fold(self) -> None:
        """cond += each pattern's conditional covariance times its rows' mass; mass = 0.

        One bincount per component over the entries (faster than an indexed add; each
        bin's sum in the order of the entries, as one bincount over (component, entry)
        pairs gives it), through one workspace buffer the size of the entries."""
        cache = self.gf.cache
        E = cache.n_entries
        if E:
            K, DD = self.cond.shape
            target, owner = cache.target, cache.owner
            weighed = self.ws.get("gap_fold", (E,), torch.float64, self.cond.device)
            for k in range(K):
                torch.index_select(self.mass[k], 0, owner, out=weighed).mul_(cache.cond64[k])
                self.cond[k] += torch.bincount(target, weights=weighed, minlength=DD)
        self.mass.zero_()

    def result(self) -> GaussianStats:
        p = self.p
        shift_c = p.shift_c64
        K, D = shift_c.shape
        n_k = self.raw[:, -1]
        first = self.raw[:, :D]
        if self.diag:  # the observed values' moments, and the mass that missed each feature
            squares, observed = self.raw[:, D : 2 * D], self.raw[:, 2 * D : 3 * D]
            sum_x = first - shift_c * observed
            sum_xx = squares - 2.0 * shift_c * first + shift_c.square() * observed
            unseen = n_k[:, None] - observed  # each gap completed by the mean (0 about the shift) and the variance
            return GaussianStats(n_k, sum_x, sum_xx, p.shift64, p.kernel, unseen=unseen,
                                 gap_x=torch.zeros_like(unseen), gap_xx=self.gf.var64 * unseen)
        sum_x = first - n_k[:, None] * shift_c
        u = self.gf.prec_chol64  # S_k = U_k^-T S^w_k U_k^-1, then the conditional covariances
        left = torch.linalg.solve_triangular(u.transpose(1, 2), self.second, upper=False)
        sum_xx = torch.linalg.solve_triangular(u, left, upper=True, left=False)
        self._fold()
        sum_xx = sum_xx + self.cond.view(K, D, D)
        if p.kernel == "tied":  # each component's scatter about its shift, summed
            sum_xx = sum_xx.sum(0)
        return GaussianStats(n_k, sum_x, sum_xx, p.shift64, p.kernel)


def conditional_rows(gf: GapFactors, feats: Tensor, mask: Tensor, resp: Tensor, dtype: torch.dtype, ws: Workspace,
                     uniforms: Tensor | None = None, normals: Tensor | None = None) -> Tensor:
    """Rows less the centre with every gap imputed: (m, D) float64.

    Without ``uniforms``: the conditional mean given the observed values,
    sum_k r_k E[x_U | x_O, k]. With ``uniforms`` (m,) and ``normals`` (m, D): a draw from
    the conditional distribution, the component by its posterior (the first k whose
    cumulated posterior exceeds the uniform), then x_U ~ N(E[x_U | x_O, k], Sigma_UU|O,k).
    resp (K, m): the posteriors given the observed values.
    """
    gb = complete(gf, feats, mask, dtype, ws)
    fill = gb.fill.double()  # (K, G)
    K = fill.shape[0]
    D = feats.shape[1] - 1
    out = feats[:, :D].double().clone()
    order = torch.arange(feats.shape[0], device=feats.device) if gb.order is None else gb.order
    resp = torch.index_select(resp.double(), 1, order)  # the kernels' order
    if uniforms is not None:
        uniforms = torch.index_select(uniforms.double(), 0, order)
        pick = drawn_components(resp, uniforms)  # (m,)
        offset = gf.cache.offset[gb.at]  # (m - m0,)
    m0 = gb.sizes[0]
    for (u, run, gaps), cu in zip(gb.runs(), gb.coords):
        n = run.stop - run.start
        rows = order[run].expand(u, n)  # (u, n) the block's rows of the run's gaps
        means = fill[:, gaps].view(K, u, n)
        if uniforms is None:  # sum_k r_k E[x_U | x_O, k]
            out[rows, cu] = (resp[:, None, run] * means).sum(0)
            continue
        mine = torch.arange(run.start, run.stop, device=fill.device)
        chosen = means[pick[mine], :, torch.arange(n, device=fill.device)]  # (n, u)
        entries = offset[mine - m0][:, None] + torch.arange(u * u, device=fill.device)  # (n, u^2)
        factor = torch.linalg.cholesky(gf.cache.cond64[pick[mine][:, None], entries].reshape(n, u, u))
        z = normals.double()[rows.T, cu.T]  # (n, u)
        out[rows.T, cu.T] = chosen + (factor @ z[:, :, None])[:, :, 0]
    return out
