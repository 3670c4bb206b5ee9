"""Gaussian kernels for every covariance type, shared by the mixture and (later) HMM emissions.

Three pieces, each batched over the K components:

* :func:`prepare` casts float64 parameters to the compute dtype once per E-step and
  re-expresses them about a centre ``c`` (the mean of the component means), so the
  products below never see the data's raw offset (float32 would cancel on it);
* :func:`log_joint` gives log w_k + log N(x | mu_k, Sigma_k) for a block of centred rows,
  component-major (K, n): each component's row is contiguous, so the softmax over K
  runs element-wise along n (vectorised) and the moment products read it as it is;
* :class:`Moments` accumulates a chunk's responsibility-weighted first and second
  moments, about each component's shift (the previous means), in float64.

Shapes: x (n, D), means (K, D), covariances full (K, D, D) | tied (D, D) |
diag (K, D) | spherical (K,), and ``prec_chol`` the same shapes as covariances.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.numerics import LOG_2PI, log_det_precision_cholesky, regularize
from .._core.workspace import Workspace


@dataclass(frozen=True, slots=True)
class Prepared:
    """Parameters in the compute dtype, about ``centre``; built once per E-step call."""

    covariance_type: str
    centre: Tensor  # (D,) compute dtype
    centre64: Tensor  # (D,) float64
    means_c: Tensor  # (K, D) compute dtype: means - centre
    shift_c64: Tensor  # (K, D) float64: means - centre, the moments' shift
    factor: Tensor  # full: (K, D+1, D) [U_k; -means_c_k U_k]; tied: (D, D); diag/spherical: (K, 2D+1)
    offset: Tensor  # tied: (K, D) means_c @ U; else unused (the factor's last row carries it)
    const: Tensor  # (K,) -0.5 * D log 2pi + log det U_k
    prec_chol64: Tensor  # float64 precision factors, to map whitened moments back (full)


def prepare(means: Tensor, prec_chol: Tensor, covariance_type: str, dtype: torch.dtype) -> Prepared:
    """Cast and centre the parameters for :func:`log_density` (float64 in, compute dtype out).

    The centre is the plain mean of the means: a function of the shift alone, so the
    M-step can recompute it from the statistics (see :func:`centre_of`).
    """
    K, D = means.shape
    centre64 = centre_of(means)
    means_c64 = means - centre64
    logdet = log_det_precision_cholesky(prec_chol, covariance_type, D)
    const = -0.5 * D * LOG_2PI + logdet * torch.ones(K, dtype=means.dtype, device=means.device)
    if covariance_type == "full":
        shifted = torch.einsum("kd,kde->ke", means_c64, prec_chol)[:, None, :]
        factor = torch.cat([prec_chol, -shifted], 1)  # rows for [x, 1]: one product whitens
        offset = const.new_zeros(0)
    elif covariance_type == "tied":
        factor = prec_chol
        offset = means_c64 @ prec_chol
    else:  # diag, and spherical as a diag whose precisions are equal across features
        prec = diagonal_precisions(prec_chol, covariance_type, D)
        quad = (means_c64.square() * prec).sum(1)
        factor = torch.cat([-2.0 * means_c64 * prec, prec, quad[:, None]], 1)  # columns for [x, x^2, 1]
        offset = const.new_zeros(0)  # the bias column of factor carries it
    return Prepared(
        covariance_type,
        centre64.to(dtype),
        centre64,
        means_c64.to(dtype),
        means_c64,
        factor.to(dtype),
        offset.to(dtype),
        const.to(dtype),
        prec_chol,
    )


def diagonal_precisions(prec_chol: Tensor, covariance_type: str, n_features: int) -> Tensor:
    """(K, D) precisions of a diag or spherical mixture."""
    prec = prec_chol.square()
    return prec if covariance_type == "diag" else prec[:, None].expand(-1, n_features)


def expanded_form_is_exact_enough(means: Tensor, prec_chol: Tensor, covariances: Tensor, covariance_type: str) -> bool:
    """Whether float32 can evaluate the diag/spherical expanded quadratic form.

    About the centre, x^2 P - 2 x mu P + mu^2 P cancels: for rows near component k the
    rounding of each term is about eps * (mu_c^2 + var) * P per feature, the "ratio".
    Allow float32 while eps * sum_d ratio_d < 1e-3, i.e. 1e-3 nats in a row's
    log-density at worst. In the statistics the rounding of each row's square is
    independent, so it averages out over the rows: at ratio 1943 (eps * ratio = 2.3e-4)
    a float32 fit's variances differed from the float64 fit's by 2e-5 relative, its
    means by 1.5e-6 (measured, K=3, D=8, 1e5 rows; an earlier per-feature bound of
    1e-5 sent typical data, such as scikit-learn-style initial means with unit
    variances, to float64 at 1.5-2x the cost). A component collapsed to reg_covar far
    from the centre fails this and gets float64.
    """
    K, D = means.shape
    prec = diagonal_precisions(prec_chol, covariance_type, D)
    var = covariances if covariance_type == "diag" else covariances[:, None].expand(-1, D)
    ratio = ((means - centre_of(means)).square() + var) * prec  # (K, D)
    eps = torch.finfo(torch.float32).eps
    return bool(eps * ratio.sum(1).max() < 1e-3)


def well_conditioned_for_float32(covariances: Tensor) -> bool:
    """Whether float32 sums can resolve every full/tied covariance: its condition number
    must stay well below 1/eps (1e5 against 8e6), or rounding in the moments swamps the
    smallest eigenvalue. A component collapsed onto a subspace fails this and gets float64."""
    eig = torch.linalg.eigvalsh(covariances)
    cond = eig.max(-1).values / eig.min(-1).values.clamp(min=torch.finfo(torch.float64).tiny)
    return bool(cond.max() < 1e5)


def clip_to_psd(cov: Tensor, reg_covar: float) -> Tensor:
    """Project (K, D, D) or (D, D) regularised covariances back to PSD + reg_covar * I.

    A scatter matrix is PSD; rounding in its accumulation can leave an eigenvalue
    slightly negative, which no reg_covar may cover. Clip the eigenvalues of the
    unregularised part at 0, then regularise again (only called when Cholesky fails)."""
    eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
    eig, vec = torch.linalg.eigh(cov - reg_covar * eye)
    clipped = (vec * eig.clamp(min=0).unsqueeze(-2)) @ vec.transpose(-1, -2)
    return 0.5 * (clipped + clipped.transpose(-1, -2)) + reg_covar * eye


def centre_of(means: Tensor) -> Tensor:
    """The point the E-step centres rows on: the mean of the component means.  (K, D) -> (D,)."""
    return means.mean(0)


def block_features(p: Prepared, x: Tensor, ws: Workspace) -> Tensor:
    """What the kernels below read for a block of rows x (any float dtype), centred, in a
    reused buffer: xc = x - centre (n, D) for tied; [xc, 1] (n, D+1) for full (the ones
    column turns the whitening's offset and the moments' counts into the same products);
    [xc, xc^2, 1] (n, 2D+1) for diag/spherical, the one matrix that both the log-density
    (its expanded quadratic form) and the moments (rw [x, x^2, 1] = [first, second, n_k])
    multiply, so the squares are formed once. Either way its first D columns are the
    centred rows.

    The buffer takes the layout of x: column-major rows (a file source's blocks, whose
    columns are decoded one by one) give a transposed view of a feature-major buffer.
    Transposing while centring cost 15x a straight pass (720 vs 50 us per 24k rows
    of 16 features); the products take either layout at about the same speed.
    """
    n, D = x.shape
    dt = p.centre.dtype
    width = {"tied": D, "full": D + 1}.get(p.covariance_type, 2 * D + 1)
    if x.stride(0) == 1 and D > 1:
        feats = ws.get("rows_features_t", (width, n), dt, x.device).T
    else:
        feats = ws.get("rows_features", (n, width), dt, x.device)
    xc = torch.sub(x, p.centre, out=feats[:, :D])
    if p.covariance_type == "tied":
        return xc
    if width > D + 1:
        torch.mul(xc, xc, out=feats[:, D : 2 * D])
    feats[:, width - 1].fill_(1.0)
    return feats


def whiten(p: Prepared, feats: Tensor, ws: Workspace) -> Tensor:
    """full only: y_k = (x - mu_k) U_k for every component from [xc, 1], one batched
    product into a reused (K, n, D) buffer. The log-density reads its squared norms,
    the moments reuse it."""
    n = feats.shape[0]
    K, _, D = p.factor.shape
    y = ws.get("whitened", (K, n, D), feats.dtype, feats.device)
    return torch.bmm(feats.expand(K, n, D + 1), p.factor, out=y)


def log_joint(p: Prepared, feats: Tensor, log_w: Tensor, ws: Workspace, whitened: Tensor | None = None) -> Tensor:
    """log w_k + log N(x | mu_k, Sigma_k) from :func:`block_features`.  -> (K, n), contiguous.

    full: squared norms of the whitened rows (:func:`whiten`, computed here if not given);
    tied: one (n x D) @ (D x D) product; diag/spherical: the expanded quadratic form as
    one (K x 2D+1) @ (2D+1 x n) product whose scale and bias carry the constants,
    capped at the constants (rounding can push a tiny distance below zero). The
    component-major product is also the faster one: with n as its long output side
    the (n x 2D+1) @ (2D+1 x K) form ran 2-3x slower in MKL (measured at K=8, D=16).
    """
    top = (p.const + log_w)[:, None]
    if p.covariance_type == "full":
        y = whiten(p, feats, ws) if whitened is None else whitened
        # squared norms by one reduction with no (K, n, D) temporary: vecdot's fresh
        # temporary per block cost as much as the whitening product itself (profiled)
        return torch.linalg.vector_norm(y, dim=-1).square_().mul_(-0.5).add_(top)
    if p.covariance_type == "tied":
        y3 = (feats @ p.factor)[None] - p.offset[:, None, :]  # (K, n, D)
        return y3.square_().sum(-1).mul_(-0.5).add_(top)
    out = ws.get("log_joint", (p.factor.shape[0], feats.shape[0]), feats.dtype, feats.device)
    torch.addmm(top, p.factor, feats.T, alpha=-0.5, out=out)
    return torch.minimum(out, top, out=out)


# Rows per float32 partial sum of the diag/spherical moment product: the partials are
# added in float64, so float32 rounding accumulates over at most this many rows.
_PARTIAL_ROWS = 256


def weighted_sums(rw: Tensor, feats: Tensor) -> Tensor:
    """rw @ feats in float64: (K, n) @ (n, W) -> (K, W).

    A float64 product would need a float64 copy of feats (n x W): that copy and the
    float64 GEMM cost more than the rest of the diag E-step together. Instead, float32
    products over runs of ``_PARTIAL_ROWS`` rows (one batched product), whose partial
    sums are added in float64: each partial carries rounding of about sqrt(256) eps,
    independent between partials, so over n rows the total's relative error shrinks
    like 256 eps / sqrt(n). Float64 inputs take one float64 product.
    """
    if feats.dtype == torch.float64:
        return rw.to(torch.float64) @ feats
    K, n = rw.shape
    whole = n - n % _PARTIAL_ROWS
    total = torch.zeros(K, feats.shape[1], dtype=torch.float64, device=feats.device)
    if whole:
        runs = whole // _PARTIAL_ROWS
        parts = torch.bmm(
            rw[:, :whole].reshape(K, runs, _PARTIAL_ROWS).transpose(0, 1),
            feats[:whole].reshape(runs, _PARTIAL_ROWS, -1),
        )
        total += parts.sum(0, dtype=torch.float64)
    if whole < n:
        total += rw[:, whole:] @ feats[whole:]
    return total


# Rows per float32 partial of the full-covariance second moments (one (D x D) Gram
# product per component and run, added in float64). CPU blocks hold 2k-8k rows (one
# or two runs: splitting them finer cost 30% of the Gram product); a GPU block holds
# 1e5-1e6 rows, where one float32 sum over all of them cost three digits of the
# log-likelihood (measured on an H200: 9e-6 relative at N=4e6, D=16, K=8).
GRAM_ROWS = 4096


def gram_sums(y: Tensor) -> Tensor:
    """sum_n y_kn y_kn^T in float64 from (K, n, D) rows: float32 Gram products over runs
    of ``GRAM_ROWS`` rows (one batched product), added in float64. Blocks of a whole
    number of runs reshape for free; a chunk's last, shorter block pays one copy."""
    K, n, D = y.shape
    if y.dtype == torch.float64 or n <= GRAM_ROWS:
        return torch.bmm(y.transpose(1, 2), y).to(torch.float64)
    whole = n - n % GRAM_ROWS
    runs = y[:, :whole].reshape(K * (whole // GRAM_ROWS), GRAM_ROWS, D)
    total = torch.bmm(runs.transpose(1, 2), runs).reshape(K, -1, D, D).sum(1, dtype=torch.float64)
    if whole < n:
        tail = y[:, whole:]
        total += torch.bmm(tail.transpose(1, 2), tail)
    return total


class Moments:
    """Float64 accumulator of one chunk's responsibility-weighted moments.

    :meth:`add` takes a block of centred rows and responsibilities; :meth:`result`
    returns sum_x (K, D) = sum_n rw_nk (x_n - s_k) about each component's shift s_k, and
      full:  sum_xx (K, D, D) = sum_n rw_nk (x_n - s_k)(x_n - s_k)^T, accumulated in the
             whitened coordinates y = (x - s_k) U_k that the log-density already computed
             (batched products over K of sqrt(rw)-scaled rows, float32 partials over
             runs of rows added in float64: :func:`gram_sums`), then mapped back
             once per chunk by triangular solves in float64.
             Centred on each component's own shift, nothing cancels; whitened, every
             direction is O(1), so float32 rounding is relative in every eigen-direction;
      diag/spherical: sum_xx (K, D) = sum_n rw_nk (x_n - s_k)^2, from the product
             rw [x, x^2, 1] about the centre (:func:`weighted_sums`: float32 partials over
             256 rows, added in float64; x^2 formed in the kernel dtype, float32 only
             where :func:`expanded_form_is_exact_enough`), shifted once per chunk;
      tied:  sum_xx (D, D) = sum_n w_n (x_n - c)(x_n - c)^T, the total scatter about the
             centre in float64 (the M-step subtracts the between-component part).
    First moments come from rw x about the centre (:func:`weighted_sums`; float64 for
    tied), shifted once per chunk. Responsibilities arrive component-major, (K, n).
    """

    def __init__(self, p: Prepared, K: int, D: int, device: torch.device, ws: Workspace) -> None:
        self.p, self.ws = p, ws
        f64 = dict(dtype=torch.float64, device=device)
        self.n_k = torch.zeros(K, **f64)  # tied only; the others count in raw's last column
        width = {"diag": 2 * D + 1, "spherical": 2 * D + 1, "full": D + 1}.get(p.covariance_type, D)
        self.raw = torch.zeros(K, width, **f64)  # rw [x, (x^2,) 1] as block_features gives them
        second = {"full": (K, D, D), "tied": (D, D)}.get(p.covariance_type)
        self.second = None if second is None else torch.zeros(second, **f64)

    def add(self, feats: Tensor, rw: Tensor, w: Tensor | None, whitened: Tensor | None = None) -> None:
        """One block: :func:`block_features` of it and rw (K, n) weighted responsibilities;
        full may pass the block's :func:`whiten` output, which this overwrites."""
        ct = self.p.covariance_type
        if ct in ("diag", "spherical"):
            self.raw += weighted_sums(rw, feats)
            return
        if ct == "full":
            self.raw += weighted_sums(rw, feats)  # its last column: n_k
            y = whiten(self.p, feats, self.ws) if whitened is None else whitened
            y.mul_(rw.sqrt()[:, :, None])  # consumes the whitened rows
            self.second += gram_sums(y)
        else:
            xc = feats
            self.n_k += rw.sum(1).double()  # a cascade sum per block; float64 across blocks
            x64 = self.ws.get("rows64", tuple(xc.shape), torch.float64, xc.device)
            x64.copy_(xc)
            self.raw += rw.to(torch.float64) @ x64
            xw = x64 if w is None else x64 * w.double()[:, None]
            self.second += xw.T @ x64

    def result(self) -> tuple[Tensor, Tensor, Tensor]:
        """(n_k, sum_x, sum_xx) with moments about the shift (see the class docstring)."""
        shift = self.p.shift_c64
        D = shift.shape[1]
        n_k = self.n_k if self.p.covariance_type == "tied" else self.raw[:, -1]
        first = self.raw[:, :D]
        sum_x = first - n_k[:, None] * shift
        if self.p.covariance_type == "full":  # whitened: S_k = U_k^-T S^w_k U_k^-1
            u = self.p.prec_chol64
            left = torch.linalg.solve_triangular(u.transpose(1, 2), self.second, upper=False)
            return n_k, sum_x, torch.linalg.solve_triangular(u, left, upper=True, left=False)
        if self.second is not None:
            return n_k, sum_x, self.second
        sum_xx = self.raw[:, D : 2 * D] - 2.0 * shift * first + n_k[:, None] * shift.square()
        return n_k, sum_x, sum_xx


def covariances_from_moments(
    covariance_type: str, n_k: Tensor, sum_x: Tensor, sum_xx: Tensor, shift_c: Tensor, reg_covar: float
) -> Tensor:
    """M-step covariances (float64) from moments about the shift.  See :func:`accumulate_moments`.

    n_k (K,), sum_x (K, D) about shift, shift_c (K, D) = shift - centre.
    """
    delta = sum_x / n_k[:, None]  # new mean minus shift
    if covariance_type == "full":
        cov = sum_xx / n_k[:, None, None] - delta[:, :, None] * delta[:, None, :]
        cov = 0.5 * (cov + cov.transpose(1, 2))  # the float32 block products are not exactly symmetric
    elif covariance_type == "tied":
        mean_c = shift_c + delta  # new means about the centre
        cov = (sum_xx - (n_k[:, None] * mean_c).T @ mean_c) / n_k.sum()
        cov = 0.5 * (cov + cov.T)
    else:
        cov = (sum_xx / n_k[:, None] - delta.square()).clamp_(min=0)
        if covariance_type == "spherical":
            return regularize(cov, "diag", reg_covar).mean(1)
    return regularize(cov, covariance_type, reg_covar)


def moments_about(
    covariance_type: str, resp_sum: Tensor, sum_x: Tensor, sum_xx: Tensor, weight_sum: Tensor, shift: Tensor, new_shift: Tensor
) -> tuple[Tensor, Tensor]:
    """The same moments taken about ``new_shift`` instead of ``shift`` (float64, exact algebra).

    With d = shift - new_shift, x - new = (x - shift) + d, so per component
    S1' = S1 + R d and S2' = S2 + S1 d^T + d S1^T + R d d^T (diag: its diagonal). Tied
    keeps the total scatter about the centre c = mean of the shifts; moving c by e uses
    sum_n w_n (x_n - c) = sum_k (S1_k + R_k (shift_k - c)). Online EM needs this to
    average statistics gathered under different parameters.
    """
    d = shift - new_shift
    new_x = sum_x + resp_sum[:, None] * d
    if covariance_type == "full":
        outer = sum_x[:, :, None] * d[:, None, :]
        new_xx = sum_xx + outer + outer.transpose(1, 2) + resp_sum[:, None, None] * d[:, :, None] * d[:, None, :]
    elif covariance_type == "tied":
        c, new_c = centre_of(shift), centre_of(new_shift)
        total = (sum_x + resp_sum[:, None] * (shift - c)).sum(0)  # sum_n w_n (x_n - c)
        e = c - new_c
        new_xx = sum_xx + total[:, None] * e[None, :] + e[:, None] * total[None, :] + weight_sum * e[:, None] * e[None, :]
    else:
        new_xx = sum_xx + 2 * sum_x * d + resp_sum[:, None] * d.square()
    return new_x, new_xx
