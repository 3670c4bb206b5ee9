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
  second moments, exactly as for complete rows;
* only the missing coordinates are corrected, flat, one entry per missing value
  (``gaps.patterns``): each gets -sum_j (Sigma_UU|O)_ij (Lambda (x - mu))_j over the
  row's u gaps, one gather, one product and one indexed sum over the block's
  sum_n u_n^2 pairs, whatever the number of patterns;
* everything per pattern (the Cholesky factor of Lambda_UU, its log-determinant, the
  conditional covariance) is a u x u problem, factored once per E-step for every
  pattern the chunk shows (:class:`PatternCache`), batched over the new patterns that
  miss the same number of coordinates; the conditional covariances enter the second
  moments once per pattern, weighed by the responsibility mass of its rows, not per row.

The number of operations per block is fixed (a loop over the numbers of missing
coordinates runs only for patterns not met before, and the mixture's E-step factors a
chunk's patterns before its blocks: ``GaussianComponent.expect_gaps``); so is the number
of host reads, none of them per pattern. In a block with gaps, full and diagonal
structures send its complete rows the same way (pattern 0: no correction), one pass.

Diagonal structures need none of this: their coordinates are independent given the
component, so a gap's term of the log-density is 0, its conditional mean is the mean
and its conditional variance the variance. Their gap rows are the expanded form with
one more column per feature, the observed mask ([x, x^2, o, 1]).

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
from .gaps import Patterns, distinct, pack, patterns, unpack
from .gaussian import LOG_2PI, GaussianStats, Prepared, gram_sums, weighted_sums

# Bytes of the (K, pairs) products of the gap correction computed at a time: a block
# whose rows miss many coordinates each (sum_n u_n^2 large) is corrected in slices.
_PAIR_BYTES = 8 << 20

# Up to this many features a cache finds patterns in a table of every possible code
# (2^D int64: 512 kB at 16 features) rather than by a search among the sorted codes.
_TABLE_FEATURES = 16


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

    A pattern new to the cache is factored by one batched Cholesky factorisation of the
    Lambda_UU of every new pattern that misses as many coordinates. Storage doubles as it
    grows.
    """

    _PATTERN = ("codes", "count", "offset", "const")
    _ENTRY = ("cond", "cond64", "target", "owner")

    def __init__(self, precision64: Tensor, dtype: torch.dtype) -> None:
        self.precision64, self.dtype = precision64, dtype
        self.n_patterns = self.n_entries = 0
        self.store: dict[str, Tensor] = {}
        self.sorted_codes = self.order = None
        self._table: Tensor | None = None
        D = precision64.shape[1]
        self._add(torch.zeros(1, D, dtype=torch.bool, device=precision64.device),
                  torch.zeros(1, dtype=torch.int64, device=precision64.device))  # pattern 0: no gap

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
            self._table = torch.full((1 << D,), -1, dtype=torch.int64, device=self.precision64.device)
        return self._table

    def expect(self, mask: Tensor) -> None:
        """Factor, in one batch per number of missing coordinates, every pattern of the
        (n, D) missing mask of a chunk about to be read block by block (with codes only:
        beyond ``PACKED_FEATURES`` a block's patterns are its own)."""
        codes = pack(mask)
        if codes is None:
            return
        if self.table is not None and codes.shape[0] >= self.table.shape[0] // 8:  # by counting, no sort
            seen = torch.bincount(codes, minlength=self.table.shape[0])
            seen[0] = 0  # rows with no gap
            new = torch.nonzero((seen > 0) & (self.table < 0)).reshape(-1)
        else:
            codes = torch.unique(codes)
            new = codes[(codes > 0) & ~self._find(codes)[1]]
        if new.numel():
            self._add(unpack(new, mask.shape[1]), new)

    def positions(self, mask: Tensor, codes: Tensor | None) -> Tensor:
        """Each row's pattern's position in the cache (m,), for a block's (m, D) missing
        mask and its rows' packed codes; patterns not met before are factored first."""
        if codes is None:  # no names across blocks: this block's patterns only
            self.n_patterns = self.n_entries = 0
            masks, _, inverse = distinct(mask)
            return self._add(masks, None)[inverse]
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
        order of their count; returns their positions (p,)."""
        K, D, _ = self.precision64.shape
        dev = masks.device
        by_count = torch.argsort(masks.sum(1), stable=True)
        masks = masks[by_count]
        codes = None if codes is None else codes[by_count]
        count = masks.sum(1)
        per_count = torch.bincount(count, minlength=D + 1).tolist()  # one host read
        new = masks.shape[0]
        sizes = count * count
        offsets = self.n_entries + torch.cumsum(sizes, 0) - sizes
        total = sum(u * u * p for u, p in enumerate(per_count))
        const = torch.zeros(K, new, dtype=torch.float64, device=dev)
        cond64 = torch.empty(K, total, dtype=torch.float64, device=dev)
        target = torch.empty(total, dtype=torch.int64, device=dev)
        owner = torch.empty(total, dtype=torch.int64, device=dev)
        start = entry = 0
        for u, p in enumerate(per_count):
            if p == 0 or u == 0:
                start += p
                continue
            coords = torch.nonzero(masks[start : start + p])[:, 1].reshape(p, u)  # row-major: ascending
            lam = self.precision64[:, coords[:, :, None], coords[:, None, :]]  # (K, p, u, u): Lambda_UU
            # a principal block of a positive definite matrix: no failure to check (nor a host sync)
            chol = torch.linalg.cholesky_ex(lam).L
            log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # log det Lambda_UU
            const[:, start : start + p] = 0.5 * u * LOG_2PI - 0.5 * log_det
            size = p * u * u
            cond64[:, entry : entry + size] = torch.cholesky_inverse(chol).reshape(K, size)  # Sigma_UU|O
            target[entry : entry + size] = (coords[:, :, None] * D + coords[:, None, :]).reshape(-1)
            mine = torch.arange(self.n_patterns + start, self.n_patterns + start + p, device=dev)
            owner[entry : entry + size] = mine.repeat_interleave(u * u)
            start, entry = start + p, entry + size
        self._append(self._PATTERN, dict(codes=codes, count=count, offset=offsets, const=const.to(self.dtype)),
                     self.n_patterns, new)
        self._append(self._ENTRY, dict(cond=cond64.to(self.dtype), cond64=cond64, target=target, owner=owner),
                     self.n_entries, total)
        appended = torch.arange(self.n_patterns, self.n_patterns + new, device=dev)  # in order of count
        positions = torch.empty_like(by_count)
        positions[by_count] = appended
        self.n_patterns += new
        self.n_entries += total
        if codes is not None and self.table is not None:
            self.table[codes] = appended
        elif codes is not None:
            self.sorted_codes, self.order = torch.sort(self.codes)
        return positions

    def _append(self, names: tuple[str, ...], parts: dict[str, Tensor | None], n: int, new: int) -> None:
        for name in names:
            value = parts[name]
            if value is None:
                continue
            held = self.store.get(name)
            if held is None or held.shape[-1] < n + new:
                grown = value.new_empty(value.shape[:-1] + (max(2 * (n + new), 64),))
                if held is not None:
                    grown[..., :n] = held[..., :n]
                self.store[name] = held = grown
            held[..., n : n + new] = value


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
    var64 (K, D) the variances (float64).
    """

    precision64: Tensor
    prec_chol64: Tensor
    whiten: Tensor
    project: Tensor
    cache: PatternCache
    quad: Tensor | None = None
    const: Tensor | None = None
    var64: Tensor | None = None


def factors(structure, prec_chol: Tensor, covariances: Tensor, means_c64: Tensor, dtype: torch.dtype) -> GapFactors:
    """The gap kernels' factors of one E-step (float64 parameters in, see :class:`GapFactors`)."""
    K, D = means_c64.shape
    u = structure.dense(prec_chol, K, D).to(torch.float64)
    precision = u @ u.transpose(1, 2)
    shifted_u = torch.einsum("kd,kde->ke", means_c64, u)[:, None, :]
    shifted_p = torch.einsum("kd,kde->ke", means_c64, precision)[:, None, :]
    whiten = torch.cat([u, -shifted_u], 1).to(dtype)
    project = torch.cat([precision, -shifted_p], 1).to(dtype)
    cache = PatternCache(precision, dtype)
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
    in the gaps; the rest only for full and tied structures: whitened (K, m, D) the rows
    completed by each component's conditional mean and whitened, which the log-density
    reads and the moments consume; const (K, m) each row's log-density beyond what
    |whitened|^2 gives; gaps (``gaps.Patterns``) the missing values, flat; fill (K, G)
    each missing value's conditional mean less the centre; at (m,) each row's pattern's
    position in the :class:`PatternCache`.
    """

    feats: Tensor
    mask: Tensor
    whitened: Tensor | None = None
    const: Tensor | None = None
    gaps: Patterns | None = None
    fill: Tensor | None = None
    at: Tensor | None = None


def block(p: Prepared, gf: GapFactors, x: Tensor, mask: Tensor, ws: Workspace) -> GapBlock:
    """The gap kernels' view of rows x (m, D) (mask, True where missing): the rows with
    at least one gap, or (diagonal structures, and full ones past ``EXPANDED_MAX_D``
    features) every row of a block that has one, since a row with no gap costs them no
    more than the usual kernels (it has pattern 0: no correction, no constant)."""
    m, D = x.shape
    if p.kernel == "diag":
        feats = ws.get("gap_features", (m, 3 * D + 1), p.dtype, x.device)
        xc = torch.sub(x, p.centre, out=feats[:, :D]).masked_fill_(mask, 0.0)
        torch.mul(xc, xc, out=feats[:, D : 2 * D])
        feats[:, 2 * D : 3 * D].copy_(~mask)
        feats[:, 3 * D].fill_(1.0)
        return GapBlock(feats, mask)
    feats = centred_features(p, x, mask, ws)
    return complete(gf, feats, mask, p.dtype, ws)


def centred_features(p: Prepared, x: Tensor, mask: Tensor, ws: Workspace) -> Tensor:
    """[x - c, 1] (m, D+1) in the kernel dtype, with 0 (the centre) in every gap."""
    m, D = x.shape
    feats = ws.get("gap_features", (m, D + 1), p.dtype, x.device)
    # a gap (NaN) minus the centre stays NaN: 0 in its place, with no pass over the mask
    # (infinities stay as they are)
    torch.nan_to_num_(torch.sub(x, p.centre, out=feats[:, :D]), nan=0.0, posinf=math.inf, neginf=-math.inf)
    feats[:, D].fill_(1.0)
    return feats


def complete(gf: GapFactors, feats: Tensor, mask: Tensor, dtype: torch.dtype, ws: Workspace) -> GapBlock:
    """Each row completed by each component's conditional mean, whitened, and its
    log-density's constant. feats: [x - c (0 in the gaps), 1] (m, D+1).

    Whole-block passes (see the module docstring): Lambda_k (x - mu_k) of the rows as
    filled, one batched product; each missing value's conditional mean less the fill,
    -sum_j (Sigma_UU|O)_ij (Lambda (x - mu))_j over the row's gaps j, for every (gap i,
    gap j) pair of a row at once (:func:`_corrections`); the completed rows (a copy, then
    one indexed write) and their whitening, one batched product.
    """
    m, width = feats.shape
    D = width - 1
    K = gf.whiten.shape[0]
    dev = feats.device
    gaps = patterns(mask)
    at = gf.cache.positions(mask, gaps.codes)  # (m,) each row's pattern in the cache
    # Lambda_k (x - mu_k) of the rows as filled: its gap entries give each conditional mean
    projected = torch.bmm(feats.expand(K, m, width), gf.project, out=ws.get("gap_projected", (K, m, D), dtype, dev))
    residual = torch.index_select(projected.view(K, m * D), 1, gaps.rows * D + gaps.coords)  # (K, G)
    fill = _corrections(gf.cache, gaps, at, residual)
    completed = ws.get("gap_completed", (K, m, width), dtype, dev)
    completed.copy_(feats.expand(K, m, width))
    completed.view(K, m * width).index_copy_(1, gaps.rows * width + gaps.coords, fill)  # the gaps: the conditional means
    const = torch.index_select(gf.cache.held("const"), 1, at)
    whitened = torch.bmm(completed, gf.whiten, out=ws.get("gap_whitened", (K, m, D), dtype, dev))
    return GapBlock(feats, mask, whitened, const, gaps, fill, at)


def _corrections(cache: PatternCache, gaps: Patterns, at: Tensor, residual: Tensor) -> Tensor:
    """-Sigma_UU|O (Lambda (x - mu))_U of every row, flat: (K, G) from the residuals (K, G)
    at the gaps. Gap e, the i-th of its row's u, pairs with the row's gaps j = 0..u-1:
    fill_e = -sum_j cond[offset + i u + j] residual[first + j], one gather and one product
    over the block's sum_n u_n^2 pairs, summed into place by one indexed add (in slices
    of ``_PAIR_BYTES`` of products where rows miss many coordinates)."""
    K, G = residual.shape
    dev = residual.device
    u = torch.index_select(gaps.count, 0, gaps.rows)  # (G,) each gap's row's count
    first = torch.index_select(gaps.first, 0, gaps.rows)
    gap = torch.arange(G, device=dev)
    base = torch.index_select(cache.held("offset"), 0, torch.index_select(at, 0, gaps.rows)) + (gap - first) * u
    ends = torch.cumsum(u, 0)
    total = int(ends[-1]) if G else 0  # one host read per block
    owner = torch.repeat_interleave(gap, u, output_size=total)  # each pair's gap
    # pair t of gap e is its j = t - start_e: entry base_e + j, residual first_e + j
    starts = ends - u
    pair = torch.arange(total, device=dev)
    from_cond = torch.index_select(base - starts, 0, owner).add_(pair)
    from_residual = torch.index_select(first - starts, 0, owner).add_(pair)
    fill = torch.zeros(K, G, dtype=residual.dtype, device=dev)
    step = max(1, _PAIR_BYTES // (K * residual.element_size()))
    for s in range(0, total, step):
        part = slice(s, s + step)
        products = torch.index_select(cache.held("cond"), 1, from_cond[part]).mul_(torch.index_select(residual, 1, from_residual[part]))
        fill.index_add_(1, owner[part], products)
    return fill.neg_()


def log_joint(p: Prepared, gf: GapFactors, gb: GapBlock, log_w: Tensor) -> Tensor:
    """log w_k + log N(x_O | mu_k, Sigma_k) of every gap row: (K, m)."""
    top = (p.const + log_w)[:, None]
    if gb.whitened is None:  # diagonal: the masked expanded form
        D = gf.const.shape[1]
        q = (gf.quad @ gb.feats[:, : 3 * D].T).clamp_(min=0)
        return torch.addmm(log_w[:, None], gf.const, gb.feats[:, 2 * D : 3 * D].T).sub_(q, alpha=0.5)
    out = torch.linalg.vector_norm(gb.whitened, dim=-1).square_().mul_(-0.5).add_(top)
    return out.add_(gb.const)


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
            self.fill = torch.zeros(K, D, **f64)
            self.second = torch.zeros(K, D, D, **f64)
            self.mass = torch.zeros(K, 0, **f64)
            self.cond = torch.zeros(K, D * D, **f64)

    def add(self, gb: GapBlock, rw: Tensor) -> None:
        """One block's gap rows and their weighted responsibilities rw (K, m). Consumes
        the whitened rows."""
        self.raw += weighted_sums(rw, gb.feats)
        if self.diag:
            return
        K, D = self.fill.shape
        rw64 = rw.double()
        gaps, cache = gb.gaps, self.gf.cache
        self.fill.index_add_(1, gaps.coords, torch.index_select(rw64, 1, gaps.rows).mul_(gb.fill))
        P = self.mass.shape[1]
        if P < cache.n_patterns:
            P = max(2 * cache.n_patterns, 64)
            grown = torch.zeros(K, P, dtype=torch.float64, device=rw.device)
            grown[:, : self.mass.shape[1]] = self.mass
            self.mass = grown
        # the mass of each pattern's rows: one bincount over (component, pattern) pairs,
        # several times faster than an indexed add along the (K, P) columns
        pairs = (torch.arange(K, device=rw.device)[:, None] * P + gb.at).reshape(-1)
        self.mass += torch.bincount(pairs, weights=rw64.reshape(-1), minlength=K * P).view(K, P)
        if gaps.codes is None:  # the cache is this block's alone: weigh its covariances now
            self._fold()
        y = gb.whitened.mul_(rw.sqrt()[:, :, None])
        self.second += gram_sums(y)

    def _fold(self) -> None:
        """cond += each pattern's conditional covariance times its rows' mass; mass = 0."""
        cache = self.gf.cache
        if cache.n_entries:
            self.cond.index_add_(1, cache.target, cache.cond64 * self.mass[:, cache.owner])
        self.mass.zero_()

    def result(self) -> GaussianStats:
        p = self.p
        shift_c = p.shift_c64
        K, D = shift_c.shape
        n_k = self.raw[:, -1]
        first = self.raw[:, :D]
        if self.diag:
            squares, observed = self.raw[:, D : 2 * D], self.raw[:, 2 * D : 3 * D]
            sum_x = first - shift_c * observed  # a gap's conditional mean is the shift: it adds 0
            sum_xx = (squares - 2.0 * shift_c * first + shift_c.square() * observed
                      + self.gf.var64 * (n_k[:, None] - observed))  # and its variance
            return GaussianStats(n_k, sum_x, sum_xx, p.shift64, p.kernel)
        first = first + self.fill
        sum_x = first - n_k[:, None] * shift_c
        u = self.gf.prec_chol64  # S_k = U_k^-T S^w_k U_k^-1, then the conditional covariances
        left = torch.linalg.solve_triangular(u.transpose(1, 2), self.second, upper=False)
        sum_xx = torch.linalg.solve_triangular(u, left, upper=True, left=False)
        self._fold()
        sum_xx = sum_xx + self.cond.view(K, D, D)
        if p.kernel == "tied":  # the total scatter about the centre: x - c = (x - s_k) + (s_k - c)
            outer = shift_c[:, :, None] * sum_x[:, None, :]
            sum_xx = (sum_xx + outer + outer.transpose(1, 2)
                      + n_k[:, None, None] * shift_c[:, :, None] * shift_c[:, None, :]).sum(0)
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
    gaps, fill = gb.gaps, gb.fill.double()  # (K, G)
    K = fill.shape[0]
    D = feats.shape[1] - 1
    out = feats[:, :D].double().clone()
    resp = resp.double()
    if uniforms is None:
        out[gaps.rows, gaps.coords] = (torch.index_select(resp, 1, gaps.rows) * fill).sum(0)
        return out
    cumulated = torch.cumsum(resp, 0)
    pick = (cumulated < uniforms.double()[None, :] * cumulated[-1:]).sum(0).clamp_(max=K - 1)  # (m,)
    G = gaps.rows.shape[0]
    chosen = fill[pick[gaps.rows], torch.arange(G, device=fill.device)]  # (G,)
    cache = gf.cache
    offset = cache.offset[gb.at]  # (m,)
    for u in torch.unique(gaps.count).tolist():  # a draw needs each row's u x u factor
        if u == 0:
            continue
        rows = torch.nonzero(gaps.count == u).reshape(-1)  # (m_u,)
        entries = offset[rows][:, None] + torch.arange(u * u, device=rows.device)  # (m_u, u^2)
        cond = cache.cond64[pick[rows][:, None], entries].reshape(-1, u, u)
        factor = torch.linalg.cholesky(cond)  # (m_u, u, u)
        at = gaps.first[rows][:, None] + torch.arange(u, device=rows.device)  # (m_u, u): the rows' gaps, flat
        z = normals.double()[gaps.rows[at], gaps.coords[at]]
        value = chosen[at] + (factor @ z[:, :, None])[:, :, 0]
        out[gaps.rows[at], gaps.coords[at]] = value
    return out
