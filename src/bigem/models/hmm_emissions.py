"""Emission distributions of hidden Markov models: log-density, additive statistics, M-step.

Each emission is a small object with ``log_prob(p, x) -> (N, K)``, ``stats(p, x, gamma)``
(float64, additive), ``m_step(stats, old, letters)`` and ``sample(p, states, generator)``.
M-steps follow hmmlearn's (same priors, same defaults), so fits from the same start
agree to rounding; where hmmlearn would divide by zero (a state with no posterior
mass) the old value is kept instead of producing NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

import torch
from torch import Tensor

from .._core.numerics import LOG_2PI, matmul, precision_cholesky
from .._core.workspace import Workspace

_ROW_BLOCK = 1 << 15  # rows per block of the (n, K, D) temporaries
_SUM_BLOCK = 1 << 17  # rows per compute-dtype product before the float64 sum
# Per-thread scratch: the row features of a block are rebuilt in the same memory for
# the log-density and the statistics, not allocated per call (page faults).
_WS = Workspace()


def _fields_add(a, b):
    return replace(a, **{f.name: getattr(a, f.name) + getattr(b, f.name) for f in fields(a) if f.name != "centre"})


def _fields_scale(a, factor: float):
    return replace(a, **{f.name: getattr(a, f.name) * factor for f in fields(a) if f.name != "centre"})


def _fields_to(a, device):
    return replace(a, **{f.name: getattr(a, f.name).to(device) for f in fields(a)})


# ---------------------------------------------------------------------------- Gaussian
def _features(x: Tensor, centre: Tensor) -> Tensor:
    """[1, x - centre, (x - centre)^2] per row: (n, 1 + 2D), in a reused per-thread buffer
    (valid until the next call). Diagonal Gaussians are linear in these."""
    n, D = x.shape
    out = _WS.get("features", (n, 1 + 2 * D), x.dtype, x.device)
    out[:, 0] = 1.0
    xc = torch.sub(x, centre, out=out[:, 1 : D + 1])
    torch.mul(xc, xc, out=out[:, D + 1 :])
    return out


@dataclass(frozen=True, slots=True)
class GaussianParams:
    """means (K, D); covars in hmmlearn's compact layout: spherical (K,), diag (K, D),
    tied (D, D), full (K, D, D); prec_chol the matching precision factors. float64."""

    means: Tensor
    covars: Tensor
    prec_chol: Tensor

    def to(self, device) -> "GaussianParams":
        return _fields_to(self, device)


@dataclass(frozen=True, slots=True)
class GaussianStats:
    """post (K,); s1 (K, D) and s2 ((K, D) or (K, D, D)): posterior-weighted first and
    second moments of x - centre (centre: the mean of the E-step's means), float64."""

    post: Tensor
    s1: Tensor
    s2: Tensor
    centre: Tensor

    __add__ = _fields_add
    scale = _fields_scale
    to = _fields_to


class GaussianEmission:
    """Gaussian emissions, every covariance type, with hmmlearn's conjugate priors."""

    letters = "mc"

    def __init__(self, covariance_type: str, means_prior=0.0, means_weight=0.0, covars_prior=1e-2, covars_weight=1.0):
        self.covariance_type = covariance_type
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight

    def has_prior(self) -> bool:
        # MAP updates raise likelihood + log prior; the likelihood alone may dip slightly
        nonzero = lambda v: bool(np.any(np.asarray(v) != 0))  # noqa: E731
        return nonzero(self.covars_prior) or nonzero(self.means_weight)

    def make_params(self, means: Tensor, covars: Tensor) -> GaussianParams:
        means, covars = means.double(), covars.double()
        return GaussianParams(means, covars, precision_cholesky(covars, self.covariance_type))

    def log_prob(self, p: GaussianParams, x: Tensor) -> Tensor:
        """log N(x | mu_k, Sigma_k) for every row and state.  x: (N, D) -> (N, K)."""
        dtype = x.dtype
        K, D = p.means.shape
        centre = p.means.mean(0)
        mc = p.means - centre
        ct = self.covariance_type
        if ct in ("diag", "spherical"):
            # one product: [1, xc, xc^2] @ [const; mu*prec; -prec/2] (x centred: no cancellation)
            prec = p.prec_chol.square()
            prec = prec[:, None].expand(K, D) if ct == "spherical" else prec
            logdet = 0.5 * torch.log(prec).sum(1)
            const = -0.5 * D * LOG_2PI + logdet - 0.5 * (mc.square() * prec).sum(1)
            W = torch.cat([const[None, :], (mc * prec).T, (-0.5 * prec).T]).to(dtype).contiguous()
            c = centre.to(dtype)
            out = torch.empty(x.shape[0], K, dtype=dtype, device=x.device)
            for s in range(0, x.shape[0], _SUM_BLOCK):
                matmul(_features(x[s : s + _SUM_BLOCK], c), W, out=out[s : s + _SUM_BLOCK])
            return out
        xc = x - centre.to(dtype)
        U = p.prec_chol if ct == "full" else p.prec_chol.expand(K, D, D)  # (K, D, D)
        logdet = torch.log(torch.diagonal(U, dim1=-2, dim2=-1)).sum(-1)
        const = (-0.5 * D * LOG_2PI + logdet).to(dtype)
        Ucat = U.permute(1, 0, 2).reshape(D, K * D).to(dtype)
        offset = torch.einsum("kd,kde->ke", mc, U).reshape(K * D).to(dtype)
        out = torch.empty(x.shape[0], K, dtype=dtype, device=x.device)
        for s in range(0, x.shape[0], _ROW_BLOCK):
            z = matmul(xc[s : s + _ROW_BLOCK], Ucat).sub_(offset)
            out[s : s + _ROW_BLOCK] = const - 0.5 * z.square_().reshape(-1, K, D).sum(2)
        return out

    def stats(self, p: GaussianParams, x: Tensor, gamma: Tensor) -> GaussianStats:
        K, D = p.means.shape
        centre = p.means.mean(0)
        g = gamma.to(x.dtype)
        n = x.shape[0]
        if self.covariance_type in ("diag", "spherical"):
            # occupancy, first and second moments in one product: g^T [1, xc, xc^2], per row
            # block (bounding the compute-dtype accumulation), summed in float64
            m = torch.zeros(K, 1 + 2 * D, dtype=torch.float64, device=x.device)
            c = centre.to(x.dtype)
            for s in range(0, n, _SUM_BLOCK):
                m += matmul(g[s : s + _SUM_BLOCK].T, _features(x[s : s + _SUM_BLOCK], c)).double()
            return GaussianStats(m[:, 0].contiguous(), m[:, 1 : D + 1].contiguous(), m[:, D + 1 :].contiguous(), centre)
        xc = x - centre.to(x.dtype)
        ones = torch.ones(min(n, _ROW_BLOCK), 1, dtype=x.dtype, device=x.device)
        m = torch.zeros(K, 1 + D, dtype=torch.float64, device=x.device)
        s2 = torch.zeros(K * D, D, dtype=torch.float64, device=x.device)
        for s in range(0, n, _ROW_BLOCK):
            gb, xb = g[s : s + _ROW_BLOCK], xc[s : s + _ROW_BLOCK]
            m += matmul(gb.T, torch.cat([ones[: xb.shape[0]], xb], 1)).double()
            s2 += matmul((gb[:, :, None] * xb[:, None, :]).reshape(-1, K * D).T, xb).double()
        post, s1, s2 = m[:, 0].contiguous(), m[:, 1:].contiguous(), s2.reshape(K, D, D)
        return GaussianStats(post, s1, s2, centre)

    def m_step(self, s: GaussianStats, old: GaussianParams, letters: str) -> GaussianParams:
        """hmmlearn's GaussianHMM._do_mstep on moments about the centre (no cancellation)."""
        K, D = old.means.shape
        dev = s.post.device
        mw = torch.as_tensor(self.means_weight, dtype=torch.float64, device=dev)
        mp = torch.as_tensor(self.means_prior, dtype=torch.float64, device=dev)
        N = s.post
        means = old.means
        if "m" in letters:
            denom = (mw + N[:, None]).expand(K, D)
            new = s.centre + (mw * (mp - s.centre) + s.s1) / torch.where(denom > 0, denom, torch.ones_like(denom))
            means = torch.where(denom > 0, new, old.means)
        covars = old.covars
        if "c" in letters:
            cp = torch.as_tensor(self.covars_prior, dtype=torch.float64, device=dev)
            cw = float(self.covars_weight)
            mc = means - s.centre
            diff = means - mp
            if self.covariance_type in ("diag", "spherical"):
                c_n = mw * diff.square() + s.s2 - 2 * mc * s.s1 + mc.square() * N[:, None]
                c_d = torch.clamp(max(cw - 1, 0) + N[:, None], min=1e-5)
                cov = (cp + c_n) / c_d
                if self.covariance_type == "spherical":
                    cov = cov.mean(1)
                covars = cov
            else:
                outer = s.s1[:, :, None] * mc[:, None, :]
                c_n = (
                    mw[..., None, None] * diff[:, :, None] * diff[:, None, :] if mw.ndim == 0 else
                    mw[:, None, None] * diff[:, :, None] * diff[:, None, :]
                ) + s.s2 - outer - outer.transpose(1, 2) + mc[:, :, None] * mc[:, None, :] * N[:, None, None]
                cvw = max(cw - D, 0)
                if self.covariance_type == "tied":
                    covars = (cp + c_n.sum(0)) / (cvw + N.sum())
                else:
                    denom = cvw + N[:, None, None]
                    new = (cp + c_n) / torch.where(denom > 0, denom, torch.ones_like(denom))
                    covars = torch.where(denom > 0, new, old.covars)
                covars = 0.5 * (covars + covars.transpose(-1, -2))
        return GaussianParams(means, covars, precision_cholesky(covars, self.covariance_type))

    def sample(self, p: GaussianParams, states: Tensor, generator: torch.Generator) -> Tensor:
        K, D = p.means.shape
        z = torch.randn(states.shape[0], D, generator=generator, dtype=torch.float64)
        ct = self.covariance_type
        if ct in ("diag", "spherical"):
            sd = p.covars.sqrt()
            sd = sd[:, None].expand(K, D) if ct == "spherical" else sd
            return p.means.cpu()[states] + z * sd.cpu()[states]
        L = torch.linalg.cholesky(p.covars.cpu() if ct == "full" else p.covars.cpu().expand(K, D, D))
        return p.means.cpu()[states] + (L[states] @ z[:, :, None])[:, :, 0]

    def n_free_parameters(self, K: int, D: int) -> int:
        cov = {"spherical": K, "diag": K * D, "full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2}
        return K * D + cov[self.covariance_type]


# ---------------------------------------------------------------------------- categorical
@dataclass(frozen=True, slots=True)
class CategoricalParams:
    """emissionprob (K, M): row k is state k's distribution over the M symbols."""

    emissionprob: Tensor

    def to(self, device) -> "CategoricalParams":
        return _fields_to(self, device)


@dataclass(frozen=True, slots=True)
class CategoricalStats:
    """obs (K, M): posterior mass of each symbol in each state."""

    obs: Tensor

    __add__ = _fields_add
    scale = _fields_scale
    to = _fields_to


class CategoricalEmission:
    """One discrete symbol per step (x has one column of integers 0..M-1)."""

    letters = "e"

    def __init__(self, n_features: int, emissionprob_prior=1.0):
        self.n_features = n_features
        self.emissionprob_prior = emissionprob_prior

    def has_prior(self) -> bool:
        return not bool(torch.all(torch.as_tensor(self.emissionprob_prior) == 1.0))

    def log_prob(self, p: CategoricalParams, x: Tensor) -> Tensor:
        with torch.no_grad():
            log_e = torch.log(p.emissionprob).to(x.dtype)  # log 0 = -inf: that symbol is impossible there
        return log_e.T[x[:, 0].long()]

    def stats(self, p: CategoricalParams, x: Tensor, gamma: Tensor) -> CategoricalStats:
        K, M = p.emissionprob.shape
        obs = torch.zeros(M, K, dtype=torch.float64, device=x.device)
        obs.index_add_(0, x[:, 0].long(), gamma.double())
        return CategoricalStats(obs.T.contiguous())

    def m_step(self, s: CategoricalStats, old: CategoricalParams, letters: str) -> CategoricalParams:
        if "e" not in letters:
            return old
        prior = torch.as_tensor(self.emissionprob_prior, dtype=torch.float64, device=s.obs.device)
        new = torch.clamp(prior - 1.0 + s.obs, min=0.0)
        total = new.sum(1, keepdim=True)
        return CategoricalParams(torch.where(total > 0, new / torch.where(total > 0, total, 1.0), old.emissionprob))

    def sample(self, p: CategoricalParams, states: Tensor, generator: torch.Generator) -> Tensor:
        cdf = torch.cumsum(p.emissionprob.cpu(), 1)
        u = torch.rand(states.shape[0], 1, generator=generator, dtype=torch.float64) * cdf[states, -1:]
        sym = torch.searchsorted(cdf[states].contiguous(), u, right=True).clamp_(max=cdf.shape[1] - 1)
        return sym.to(torch.float64)

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * (self.n_features - 1)


# ---------------------------------------------------------------------------- Poisson
@dataclass(frozen=True, slots=True)
class PoissonParams:
    """lambdas (K, D): the rate of each feature in each state."""

    lambdas: Tensor

    def to(self, device) -> "PoissonParams":
        return _fields_to(self, device)


@dataclass(frozen=True, slots=True)
class PoissonStats:
    """post (K,), obs (K, D): posterior-weighted counts."""

    post: Tensor
    obs: Tensor

    __add__ = _fields_add
    scale = _fields_scale
    to = _fields_to


class PoissonEmission:
    """Independent Poisson counts per feature. lambdas = (prior + obs) / (weight + post)."""

    letters = "l"

    def __init__(self, lambdas_prior=0.0, lambdas_weight=0.0):
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight

    def has_prior(self) -> bool:
        return False

    def log_prob(self, p: PoissonParams, x: Tensor) -> Tensor:
        lam = p.lambdas.to(x.dtype)
        log_lam = torch.log(lam.clamp_min(torch.finfo(x.dtype).tiny))
        return x @ log_lam.T - lam.sum(1) - torch.lgamma(x + 1).sum(1, keepdim=True)

    def stats(self, p: PoissonParams, x: Tensor, gamma: Tensor) -> PoissonStats:
        g = gamma.to(x.dtype)
        return PoissonStats(g.double().sum(0), (g.T @ x).double())

    def m_step(self, s: PoissonStats, old: PoissonParams, letters: str) -> PoissonParams:
        if "l" not in letters:
            return old
        dev = s.obs.device
        a = torch.as_tensor(self.lambdas_prior, dtype=torch.float64, device=dev)
        b = torch.as_tensor(self.lambdas_weight, dtype=torch.float64, device=dev)
        denom = (b + s.post[:, None]).expand_as(s.obs)
        new = (a + s.obs) / torch.where(denom > 0, denom, torch.ones_like(denom))
        return PoissonParams(torch.where(denom > 0, new, old.lambdas))

    def sample(self, p: PoissonParams, states: Tensor, generator: torch.Generator) -> Tensor:
        return torch.poisson(p.lambdas.cpu()[states], generator=generator)

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * D

