"""Gaussian kernels for rows with gaps: the exact E-step for data missing at random.

A row that observes the coordinates O and misses U has, under component k,

* the marginal log-density log N(x_O | mu_O, Sigma_OO), which with the precision
  Lambda = Sigma^-1 is  log N(x^ | mu, Sigma) + (u/2) log 2pi + (1/2) log det(Sigma_UU|O),
  where x^ completes the row by its conditional mean and Sigma_UU|O = (Lambda_UU)^-1;
* the conditional mean x^_U = x_U - (Lambda_UU)^-1 (Lambda (x - mu))_U for any value the
  gaps were filled with (the minimiser over x_U of the quadratic form);
* the conditional covariance (Lambda_UU)^-1, which the second moments gain.

Everything per pattern (the Cholesky factor of Lambda_UU, its log-determinant, the
conditional covariance) is a u x u problem, u the number of missing coordinates: cheap
when a row misses few of its coordinates, and batched over every pattern that misses
the same number (``gaps.patterns``), however many patterns there are. Per row, two
products the size of the whitening (the residuals in precision units, then the whitened
completed rows) and a few u-sized operations.

Diagonal structures need none of this: their coordinates are independent given the
component, so a gap's term of the log-density is 0, its conditional mean is the mean
and its conditional variance the variance. Their gap rows are the expanded form with
one more column per feature, the observed mask ([x, x^2, o, 1]).

Per-pattern factors are float64; per-row arithmetic is in the kernel dtype (chosen as
for complete rows); statistics are float64 about the same shifts as complete rows', so
both add.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.workspace import Workspace
from .gaps import Group, patterns
from .gaussian import LOG_2PI, GaussianStats, Prepared, gram_sums, weighted_sums

# Bytes of the per-row gathers (u x u conditional covariances of each row and component)
# computed at a time: larger groups are processed in slices of rows.
_GATHER_BYTES = 8 << 20


class Table:
    """The factors of the patterns that miss ``u`` coordinates: coords (P, u) the missing
    coordinates of each, cond64 (K, P, u, u) the conditional covariances Sigma_UU|O (float64)
    and cond the same in the kernel dtype, const (K, P) (u/2) log 2pi - (1/2) log det Lambda_UU
    in the kernel dtype. Computed once per pattern: a batched Cholesky factorisation of
    the Lambda_UU of every pattern new to the table. Storage grows by doubling."""

    _FIELDS = ("coords", "codes", "cond64", "cond", "const")

    def __init__(self, u: int) -> None:
        self.u = u
        self.size = 0
        self.store: dict[str, Tensor] = {}
        self.sorted_codes = self.order = None

    def __getattr__(self, name: str) -> Tensor | None:
        if name in Table._FIELDS:
            value = self.store.get(name)
            if value is None:
                return None
            return value[: self.size] if name in ("coords", "codes") else value[:, : self.size]
        raise AttributeError(name)

    def add(self, precision64: Tensor, coords: Tensor, codes: Tensor | None, dtype: torch.dtype) -> None:
        lam = precision64[:, coords[:, :, None], coords[:, None, :]]  # (K, p, u, u): Lambda_UU
        # a principal block of a positive definite matrix: no failure to check (nor a host sync)
        chol = torch.linalg.cholesky_ex(lam).L
        cond64 = torch.cholesky_inverse(chol)  # Sigma_UU|O, the conditional covariance
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # log det Lambda_UU
        const = (0.5 * self.u * LOG_2PI - 0.5 * log_det).to(dtype)
        parts = dict(coords=coords, codes=codes, cond64=cond64, cond=cond64.to(dtype), const=const)
        n, new = self.size, int(coords.shape[0])
        for name, value in parts.items():
            if value is None:
                continue
            dim = 0 if name in ("coords", "codes") else 1
            held = self.store.get(name)
            if held is None or held.shape[dim] < n + new:
                shape = list(value.shape)
                shape[dim] = max(2 * (n + new), 64)
                grown = value.new_empty(shape)
                if held is not None:
                    grown.narrow(dim, 0, n).copy_(held.narrow(dim, 0, n))
                self.store[name] = held = grown
            held.narrow(dim, n, new).copy_(value)
        self.size = n + new
        if codes is not None:
            self.sorted_codes, self.order = torch.sort(self.codes)

    def find(self, codes: Tensor) -> tuple[Tensor, Tensor]:
        """(positions of ``codes`` in the table, whether each is there)."""
        if self.size == 0:
            return torch.zeros_like(codes), torch.zeros_like(codes, dtype=torch.bool)
        at = torch.searchsorted(self.sorted_codes, codes).clamp_(max=self.size - 1)
        return self.order[at], self.sorted_codes[at] == codes


class PatternCache:
    """Per-pattern factors for the life of one set of prepared parameters (one E-step on a
    chunk): a pattern that recurs in later blocks is factored once. Beyond 62 features,
    where patterns have no integer code, every block gets tables of its own."""

    def __init__(self, precision64: Tensor, dtype: torch.dtype) -> None:
        self.precision64, self.dtype = precision64, dtype
        self.tables: dict[int, Table] = {}

    def lookup(self, g: Group) -> tuple[Table, Tensor]:
        """The table of ``g``'s patterns and each row's position in it (m_u,)."""
        if g.codes is None:
            table = Table(g.u)
            table.add(self.precision64, g.coords, None, self.dtype)
            return table, g.pattern
        table = self.tables.setdefault(g.u, Table(g.u))
        at, found = table.find(g.codes)
        if not bool(found.all()):
            new = ~found
            table.add(self.precision64, g.coords[new], g.codes[new], self.dtype)
            at, _ = table.find(g.codes)
        return table, at[g.pattern]


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
    in the gaps; the rest only for full and tied structures, whose rows come sorted by
    missing pattern (:func:`block` says in which order): whitened (K, m, D) the rows
    completed by each component's conditional mean and whitened, which the log-density
    reads and the moments consume; const (K, m) each row's log-density beyond what
    |whitened|^2 gives; groups (``gaps.Group``: ranges of rows), and per group its
    :class:`Table`, each row's position in it (m_u,), and fills (K, m_u, u) the completed
    coordinates less the centre.
    """

    feats: Tensor
    mask: Tensor
    whitened: Tensor | None = None
    const: Tensor | None = None
    groups: list[Group] | None = None
    tables: list[Table] | None = None
    positions: list[Tensor] | None = None
    fills: list[Tensor] | None = None


def block(p: Prepared, gf: GapFactors, x: Tensor, mask: Tensor, rows: Tensor, ws: Workspace) -> tuple[GapBlock, Tensor]:
    """The gap kernels' view of the rows ``rows`` of a block x (n, D) (mask (n, D), True
    where missing), each of which misses at least one value; and the positions of its
    rows in the block, in the order the GapBlock holds them (full and tied: sorted by
    missing pattern, so that each group of rows is a slice)."""
    D = x.shape[1]
    if p.kernel == "diag":
        mask = mask[rows]
        m = mask.shape[0]
        feats = ws.get("gap_features", (m, 3 * D + 1), p.dtype, x.device)
        xc = torch.sub(x[rows], p.centre, out=feats[:, :D]).masked_fill_(mask, 0.0)
        torch.mul(xc, xc, out=feats[:, D : 2 * D])
        feats[:, 2 * D : 3 * D].copy_(~mask)
        feats[:, 3 * D].fill_(1.0)
        return GapBlock(feats, mask), rows
    order, groups = patterns(mask[rows])
    rows = rows[order]
    mask = mask[rows]
    feats = centred_features(p, x[rows], mask, ws)
    return complete(gf, feats, mask, groups, p.dtype, ws), rows


def centred_features(p: Prepared, x: Tensor, mask: Tensor, ws: Workspace) -> Tensor:
    """[x - c, 1] (m, D+1) in the kernel dtype, with 0 (the centre) in every gap."""
    m, D = x.shape
    feats = ws.get("gap_features", (m, D + 1), p.dtype, x.device)
    torch.sub(x, p.centre, out=feats[:, :D]).masked_fill_(mask, 0.0)
    feats[:, D].fill_(1.0)
    return feats


def complete(gf: GapFactors, feats: Tensor, mask: Tensor, groups: list[Group], dtype: torch.dtype,
             ws: Workspace) -> GapBlock:
    """Each row completed by each component's conditional mean, whitened; the per-pattern
    factors of its gaps. feats: [x - c (0 in the gaps), 1] (m, D+1), its rows sorted by
    missing pattern as ``groups`` (``gaps.patterns``) lists them.

    Three (K, m, D)-sized passes do the work of every row at once, whatever its pattern:
    Lambda_k (x - mu_k) of the rows as filled (one batched product), the completed rows
    (a copy, then the gaps written), their whitening (one batched product). In between,
    per group of rows that miss u coordinates (a slice of the block), the per-pattern
    factors are looked up (factored once per E-step, :class:`PatternCache`) and each row
    gets its u conditional means: a gather of u residuals, a u x u product, a scatter.
    """
    m, width = feats.shape
    D = width - 1
    K = gf.whiten.shape[0]
    dev = feats.device
    # Lambda_k (x - mu_k) of the rows as filled: its gap entries give each conditional mean
    projected = torch.bmm(feats.expand(K, m, width), gf.project, out=ws.get("gap_projected", (K, m, D), dtype, dev))
    completed = ws.get("gap_completed", (K, m, width), dtype, dev)
    completed.copy_(feats.expand(K, m, width))
    const = ws.get("gap_const", (K, m), dtype, dev)
    if not groups or groups[0].start > 0:  # rows with no gap: nothing beyond the norm
        const[:, : groups[0].start if groups else m].zero_()
    tables, positions, fills = [], [], []
    for g in groups:
        table, at = gf.cache.lookup(g)
        rows = slice(g.start, g.stop)
        const[:, rows] = torch.index_select(table.const, 1, at)
        where = g.where.expand(K, -1, -1)
        residual = torch.gather(projected[:, rows], 2, where)  # (K, m_u, u): (Lambda (x - mu))_U
        # the conditional mean less the fill: -Sigma_UU|O (Lambda (x - mu))_U, u x u per row
        if g.u == 1:
            fill = torch.index_select(table.cond.view(K, -1), 1, at)[:, :, None].mul_(residual).neg_()
        else:
            fill = torch.empty(K, g.stop - g.start, g.u, dtype=dtype, device=dev)
            step = max(1, _GATHER_BYTES // max(1, K * g.u * g.u * fill.element_size()))
            for s in range(0, g.stop - g.start, step):
                per_row = torch.index_select(table.cond, 1, at[s : s + step])  # (K, r, u, u)
                per_row.mul_(residual[:, s : s + step, None, :])
                torch.sum(per_row, -1, out=fill[:, s : s + step]).neg_()
        completed[:, rows].scatter_(2, where, fill)  # the gaps held the centre (0): now the conditional means
        tables.append(table)
        positions.append(at)
        fills.append(fill)
    whitened = torch.bmm(completed, gf.whiten, out=ws.get("gap_whitened", (K, m, D), dtype, dev))
    return GapBlock(feats, mask, whitened, const, groups, tables, positions, fills)


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
    whitened completed rows' Gram matrices, and per pattern table the responsibility mass
    of its rows (K, P), which weighs its conditional covariances once, in :meth:`result`.
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
            self.mass: dict[int, tuple[Table, Tensor]] = {}  # id(table) -> (table, (K, P) mass)

    def add(self, gb: GapBlock, rw: Tensor) -> None:
        """One block's gap rows and their weighted responsibilities rw (K, m). Consumes
        the whitened rows."""
        self.raw += weighted_sums(rw, gb.feats)
        if self.diag:
            return
        K, D = self.fill.shape
        rw64 = rw.double()
        for g, table, at, fill in zip(gb.groups, gb.tables, gb.positions, gb.fills):
            r = rw64[:, g.start : g.stop]  # (K, m_u): the group's rows are a slice
            self.fill.index_add_(1, g.where.reshape(-1), (r[:, :, None] * fill).reshape(K, -1))
            _, mass = self.mass.get(id(table), (table, None))
            if mass is None or mass.shape[1] < table.size:
                grown = torch.zeros(K, table.size, dtype=torch.float64, device=r.device)
                if mass is not None:
                    grown[:, : mass.shape[1]] = mass
                mass = grown
                self.mass[id(table)] = (table, mass)
            mass.index_add_(1, at, r)
        y = gb.whitened.mul_(rw.sqrt()[:, :, None])
        self.second += gram_sums(y)

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
        sum_xx = torch.linalg.solve_triangular(u, left, upper=True, left=False).contiguous()
        cond = sum_xx.view(K, D * D)
        for table, mass in self.mass.values():
            P = mass.shape[1]
            flat = (table.coords[:P, :, None] * D + table.coords[:P, None, :]).reshape(-1)
            cond.index_add_(1, flat, (table.cond64[:, :P] * mass[:, :, None, None]).reshape(K, -1))
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
    order, groups = patterns(mask)
    gb = complete(gf, feats[order], mask[order], groups, dtype, ws)
    K = gb.whitened.shape[0]
    D = feats.shape[1] - 1
    out = gb.feats[:, :D].double()  # in pattern order
    if uniforms is not None:
        cumulated = torch.cumsum(resp.double()[:, order], 0)
        pick = (cumulated < uniforms.double()[order][None, :] * cumulated[-1:]).sum(0).clamp_(max=K - 1)  # (m,)
        normals = normals.double()[order]
    for g, table, at, fill in zip(gb.groups, gb.tables, gb.positions, gb.fills):
        rows = slice(g.start, g.stop)
        if uniforms is None:
            value = (resp.double()[:, order[rows], None] * fill.double()).sum(0)  # (m_u, u)
        else:
            k = pick[rows]
            chosen = fill.double()[k, torch.arange(g.stop - g.start, device=k.device)]  # (m_u, u)
            factor = torch.linalg.cholesky(table.cond64)[k, at]  # (m_u, u, u)
            z = torch.gather(normals[rows], 1, g.where)
            value = chosen + (factor @ z[:, :, None])[:, :, 0]
        out[rows].scatter_(1, g.where, value)
    return torch.empty_like(out).index_copy_(0, order, out)
