"""Gaussian kernels for every covariance type, shared by the mixture and (later) HMM emissions.

Three pieces, each batched over the K components:

* :func:`prepare` casts float64 parameters to the compute dtype once per E-step and
  re-expresses them about a centre ``c`` (the mean of the component means), so the
  products below never see the data's raw offset (float32 would cancel on it);
* :func:`log_density` gives log N(x | mu_k, Sigma_k) for a block of centred rows;
* :func:`accumulate_moments` adds a block's responsibility-weighted first and second
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
    factor: Tensor  # full: (D, K*D) stacked U_k; tied: (D, D); diag: (K, D) precisions; spherical: (K,)
    offset: Tensor  # full: (K*D,) means_c_k @ U_k; tied: (K, D) means_c @ U; diag: (K, D) means*prec; spherical: (K,)
    const: Tensor  # (K,) -0.5 * D log 2pi + log det U_k
    quad: Tensor  # (K,) diag: sum_d mu_c^2 prec; spherical: |mu_c|^2; else unused


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
    quad = torch.zeros_like(const)
    if covariance_type == "full":
        factor = prec_chol.permute(1, 0, 2).reshape(D, K * D)
        offset = torch.einsum("kd,kde->ke", means_c64, prec_chol).reshape(K * D)
    elif covariance_type == "tied":
        factor = prec_chol
        offset = means_c64 @ prec_chol
    elif covariance_type == "diag":
        factor = prec_chol.square()
        offset = means_c64 * factor
        quad = (means_c64.square() * factor).sum(1)
    else:  # spherical
        factor = prec_chol.square()
        offset = factor
        quad = means_c64.square().sum(1)
    return Prepared(
        covariance_type,
        centre64.to(dtype),
        centre64,
        means_c64.to(dtype),
        means_c64,
        factor.to(dtype),
        offset.to(dtype),
        const.to(dtype),
        quad.to(dtype),
    )


def centre_of(means: Tensor) -> Tensor:
    """The point the E-step centres rows on: the mean of the component means.  (K, D) -> (D,)."""
    return means.mean(0)


def log_density(p: Prepared, xc: Tensor, ws: Workspace) -> Tensor:
    """log N(x | mu_k, Sigma_k) for centred rows ``xc = x - centre``.  (n, D) -> (n, K).

    full: one (n x D) @ (D x K*D) product into a reused buffer, squared in place;
    diag/spherical: the expanded quadratic form, two products (clamped at 0, since
    rounding can make a tiny distance negative); tied: one (n x D) @ (D x D) product.
    """
    n, D = xc.shape
    K = p.const.shape[0]
    if p.covariance_type == "full":
        y = ws.get("whitened", (n, K * D), xc.dtype, xc.device)
        torch.addmm(p.offset, xc, p.factor, beta=-1.0, out=y)
        maha = y.square_().view(n, K, D).sum(-1)
    elif p.covariance_type == "tied":
        y = xc @ p.factor
        maha = (y[:, None, :] - p.offset[None]).square_().sum(-1)
    elif p.covariance_type == "diag":
        maha = torch.addmm((xc * xc) @ p.factor.T, xc, p.offset.T, alpha=-2.0).add_(p.quad).clamp_(min=0)
    else:
        dist = torch.addmm((xc * xc).sum(1, keepdim=True), xc, p.means_c.T, alpha=-2.0)
        maha = dist.add_(p.quad).clamp_(min=0).mul_(p.factor)
    return p.const - 0.5 * maha


def moment_shapes(covariance_type: str, K: int, D: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Shapes of the (first, second) moment statistics for a covariance type."""
    if covariance_type == "full":
        return (K, D), (K, D, D)
    if covariance_type == "tied":
        return (K, D), (D, D)
    return (K, D), (K, D)


def accumulate_moments(
    p: Prepared, xc: Tensor, rw: Tensor, w: Tensor | None, sum_x: Tensor, sum_xx: Tensor, ws: Workspace
) -> None:
    """Add one block's moments into the float64 accumulators, in place.

    xc (n, D) centred rows; rw (n, K) weighted responsibilities; w (n,) sample weights.
    sum_x[k] gets sum_n rw_nk (x_n - s_k) and, per type, sum_xx gets
      full:  sum_n rw_nk (x_n - s_k)(x_n - s_k)^T, one batched product over K in the
             compute dtype on per-component centred rows (exact shift, no cancellation);
      diag/spherical: sum_n rw_nk (x_n - s_k)^2, from float64 products about the centre;
      tied:  sum_n w_n (x_n - c)(x_n - c)^T, the total scatter about the centre in float64
             (the M-step subtracts the between-component part).
    """
    n, D = xc.shape
    K = rw.shape[1]
    ct = p.covariance_type
    if ct == "full":
        centred = ws.get("centred", (K, n, D), xc.dtype, xc.device)
        weighted = ws.get("weighted", (K, n, D), xc.dtype, xc.device)
        torch.sub(xc[None], p.means_c[:, None, :], out=centred)
        torch.mul(centred, rw.T[:, :, None], out=weighted)
        sum_xx += torch.bmm(weighted.transpose(1, 2), centred).double()
        sum_x += weighted.sum(1).double()
        return
    x64 = xc.double()
    rw64 = rw.double()
    first = rw64.T @ x64  # (K, D) about the centre
    n_k = rw64.sum(0)
    shift = p.shift_c64
    sum_x += first - n_k[:, None] * shift
    if ct == "tied":
        xw = x64 if w is None else x64 * w.double()[:, None]
        sum_xx += xw.T @ x64
    else:
        second = rw64.T @ (x64 * x64)
        sum_xx += second - 2.0 * shift * first + n_k[:, None] * shift.square()


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
