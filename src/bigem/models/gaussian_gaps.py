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


@dataclass(frozen=True, slots=True)
class GapFactors:
    """What the gap kernels read, built once per E-step beside the ``Prepared`` parameters.

    precision64 (K, D, D): the precisions, dense, float64 (diag: diagonal matrices);
    prec_chol64 (K, D, D): their upper factors U (U U^T = Lambda), dense, float64;
    whiten (K, D+1, D), kernel dtype: [U_k; -mc_k U_k], whitens [x - c, 1];
    project (K, D+1, D), kernel dtype: [Lambda_k; -mc_k Lambda_k], gives Lambda (x - mu);
    diag structures also: quad (K, 3D) [-2 mc prec, prec, mc^2 prec] and const (K, D)
    (-log 2pi / 2 + log of the precision factor) of the masked expanded form, and
    var64 (K, D) the variances (float64).
    """

    precision64: Tensor
    prec_chol64: Tensor
    whiten: Tensor
    project: Tensor
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
    if structure.kernel != "diag":
        return GapFactors(precision, u, whiten, project)
    prec = structure.precisions(prec_chol, D)
    quad = torch.cat([-2.0 * means_c64 * prec, prec, means_c64.square() * prec], 1).to(dtype)
    const = (-0.5 * LOG_2PI + 0.5 * torch.log(prec)).to(dtype)
    return GapFactors(precision, u, whiten, project, quad, const, structure.variances(covariances, D).clone())


@dataclass(slots=True)
class GapBlock:
    """The rows of a block that have gaps, as the gap kernels read them.

    feats: [x - c (0 in the gaps), 1] (m, D+1), or for diagonal structures
    [x - c, (x - c)^2 (0 in the gaps), observed mask, 1] (m, 3D+1); mask (m, D): True
    in the gaps; the rest only for
    full and tied structures: whitened (K, m, D) the rows completed by each component's
    conditional mean and whitened, which the log-density reads and the moments consume;
    const (K, m) each row's log-density beyond what |whitened|^2 gives
    ((u/2) log 2pi - (1/2) log det Lambda_UU); groups (``gaps.Group``), and per group
    fills (K, m_u, u) the completed coordinates less the centre, conds (K, p, u, u) the
    conditional covariances of its patterns (float64).
    """

    feats: Tensor
    mask: Tensor
    whitened: Tensor | None = None
    const: Tensor | None = None
    groups: list[Group] | None = None
    fills: list[Tensor] | None = None
    conds: list[Tensor] | None = None


def block(p: Prepared, gf: GapFactors, x: Tensor, mask: Tensor, ws: Workspace) -> GapBlock:
    """The gap kernels' view of rows x (m, D) that each miss at least one value (mask,
    True where missing)."""
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
    torch.sub(x, p.centre, out=feats[:, :D]).masked_fill_(mask, 0.0)
    feats[:, D].fill_(1.0)
    return feats


def complete(gf: GapFactors, feats: Tensor, mask: Tensor, dtype: torch.dtype, ws: Workspace) -> GapBlock:
    """Each row completed by each component's conditional mean, whitened; the per-pattern
    factors of its gaps. feats: [x - c (0 in the gaps), 1] (m, D+1)."""
    m, width = feats.shape
    D = width - 1
    K = gf.whiten.shape[0]
    dev = feats.device
    # Lambda_k (x - mu_k) of the rows as filled: its gap entries give each conditional mean
    projected = torch.bmm(feats.expand(K, m, width), gf.project, out=ws.get("gap_projected", (K, m, D), dtype, dev))
    completed = ws.get("gap_completed", (K, m, width), dtype, dev)
    completed.copy_(feats.expand(K, m, width))
    const = torch.zeros(K, m, dtype=dtype, device=dev)
    groups = patterns(mask)
    fills, conds = [], []
    for g in groups:
        lam = gf.precision64[:, g.coords[:, :, None], g.coords[:, None, :]]  # (K, p, u, u): Lambda_UU
        chol = torch.linalg.cholesky(lam)  # a principal block of a positive definite matrix
        cond = torch.cholesky_inverse(chol)  # Sigma_UU|O, the conditional covariance
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K, p): log det Lambda_UU
        const[:, g.rows] = (0.5 * g.u * LOG_2PI - 0.5 * log_det)[:, g.pattern].to(dtype)
        fill = torch.empty(K, g.rows.shape[0], g.u, dtype=dtype, device=dev)
        cond_k = cond.to(dtype)
        step = max(1, _GATHER_BYTES // max(1, K * g.u * g.u * fill.element_size()))
        for s in range(0, g.rows.shape[0], step):
            rows, where = g.rows[s : s + step], g.where[s : s + step]
            residual = torch.gather(projected[:, rows], 2, where.expand(K, -1, -1))  # (K, r, u)
            # conditional mean less the fill: -Sigma_UU|O (Lambda (x - mu))_U, a u x u product per row
            fill[:, s : s + step] = (cond_k[:, g.pattern[s : s + step]] * residual[:, :, None, :]).sum(-1).neg_()
        completed[:, g.rows[:, None], g.where] = fill  # the gaps held the centre (0): now each conditional mean
        fills.append(fill)
        conds.append(cond)
    whitened = torch.bmm(completed, gf.whiten, out=ws.get("gap_whitened", (K, m, D), dtype, dev))
    return GapBlock(feats, mask, whitened, const, groups, fills, conds)


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
    whitened completed rows' Gram matrices, cond (K, D*D) the conditional covariances.
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
            self.cond = torch.zeros(K, D * D, **f64)

    def add(self, gb: GapBlock, rw: Tensor) -> None:
        """One block's gap rows and their weighted responsibilities rw (K, m). Consumes
        the whitened rows."""
        self.raw += weighted_sums(rw, gb.feats)
        if self.diag:
            return
        K, D = self.fill.shape
        rw64 = rw.double()
        for g, fill, cond in zip(gb.groups, gb.fills, gb.conds):
            r = rw64[:, g.rows]  # (K, m_u)
            self.fill.index_add_(1, g.where.reshape(-1), (r[:, :, None] * fill).reshape(K, -1))
            mass = torch.zeros(K, g.coords.shape[0], dtype=torch.float64, device=r.device)
            mass.index_add_(1, g.pattern, r)
            flat = (g.coords[:, :, None] * D + g.coords[:, None, :]).reshape(-1)
            self.cond.index_add_(1, flat, (cond * mass[:, :, None, None]).reshape(K, -1))
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
        sum_xx = torch.linalg.solve_triangular(u, left, upper=True, left=False) + self.cond.reshape(K, D, D)
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
    K, m, _ = gb.whitened.shape
    D = feats.shape[1] - 1
    out = feats[:, :D].double().clone()
    if uniforms is not None:
        cumulated = torch.cumsum(resp.double(), 0)
        pick = (cumulated < uniforms.double()[None, :] * cumulated[-1:]).sum(0).clamp_(max=K - 1)  # (m,)
    for g, fill, cond in zip(gb.groups, gb.fills, gb.conds):
        if uniforms is None:
            value = (resp.double()[:, g.rows, None] * fill.double()).sum(0)  # (m_u, u)
        else:
            k = pick[g.rows]
            chosen = fill.double()[k, torch.arange(g.rows.shape[0], device=k.device)]  # (m_u, u)
            factor = torch.linalg.cholesky(cond)[k, g.pattern]  # (m_u, u, u)
            z = torch.gather(normals.double()[g.rows], 1, g.where)
            value = chosen + (factor @ z[:, :, None])[:, :, 0]
        out[g.rows[:, None], g.where] = value
    return out
