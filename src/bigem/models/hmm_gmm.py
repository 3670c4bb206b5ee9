"""Gaussian-mixture emissions for hidden Markov models (hmmlearn's GMMHMM). Math only.

State k emits from a mixture of M Gaussians. The K*M components are handled as one
flat set by the Gaussian emission's kernels (``hmm_emissions.GaussianEmission``), so
every covariance type reuses the same log-densities and moment products; 'tied' here
means one covariance per state, shared by its M components (hmmlearn's meaning).
The M-step is maximum likelihood plus ``min_covar`` on every variance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.numerics import precision_cholesky
from .hmm_emissions import GaussianEmission, GaussianParams, GaussianStats


@dataclass(frozen=True, slots=True)
class GMMEmissionParams:
    """weights (K, M); flat: the K*M components as Gaussian parameters, with covariances
    full (KM, D, D) for 'full' and 'tied', (KM, D) for 'diag', (KM,) for 'spherical'."""

    weights: Tensor
    flat: GaussianParams

    def to(self, device) -> "GMMEmissionParams":
        return GMMEmissionParams(self.weights.to(device), self.flat.to(device))


@dataclass(frozen=True, slots=True)
class GMMEmissionStats:
    """flat: the components' Gaussian statistics (occupancy, moments), float64."""

    flat: GaussianStats

    def __add__(self, other: "GMMEmissionStats") -> "GMMEmissionStats":
        return GMMEmissionStats(self.flat + other.flat)

    def scale(self, factor: float) -> "GMMEmissionStats":
        return GMMEmissionStats(self.flat.scale(factor))

    def to(self, device) -> "GMMEmissionStats":
        return GMMEmissionStats(self.flat.to(device))



class GMMEmission:
    """A mixture of ``n_mix`` Gaussians per state."""

    letters = "mcw"

    def __init__(self, n_components: int, n_mix: int, covariance_type: str, min_covar: float) -> None:
        self.K, self.M = n_components, n_mix
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        flat_type = "full" if covariance_type == "tied" else covariance_type
        self.gauss = GaussianEmission(flat_type, 0.0, 0.0, 0.0, 0.0)

    def has_prior(self) -> bool:
        # min_covar added after the ML update is a regulariser, not an exact M-step:
        # the likelihood may dip by about its size near convergence
        return self.min_covar > 0

    def make_params(self, weights: Tensor, means: Tensor, covars: Tensor) -> GMMEmissionParams:
        """weights (K, M), means (K, M, D), covars in hmmlearn's GMMHMM layout."""
        K, M, D = means.shape
        ct = self.covariance_type
        cov = covars.double()
        if ct == "tied":  # (K, D, D): shared by the state's components
            cov = cov[:, None].expand(K, M, D, D)
        flat_cov = cov.reshape(K * M, *cov.shape[2:]) if ct != "spherical" else cov.reshape(K * M)
        flat = GaussianParams(means.double().reshape(K * M, D), flat_cov, precision_cholesky(flat_cov, self.gauss.covariance_type))
        return GMMEmissionParams(weights.double(), flat)

    def covars(self, p: GMMEmissionParams) -> Tensor:
        """Covariances in hmmlearn's layout: full (K, M, D, D), tied (K, D, D), diag (K, M, D), spherical (K, M)."""
        K, M = self.K, self.M
        c = p.flat.covars.reshape(K, M, *p.flat.covars.shape[1:])
        return c[:, 0] if self.covariance_type == "tied" else c

    def _component_log_prob(self, p: GMMEmissionParams, x: Tensor) -> Tensor:
        """log w_km + log N(x | mu_km, Sigma_km): (N, K, M)."""
        log_w = torch.log(p.weights).to(x.dtype)
        return self.gauss.log_prob(p.flat, x).view(-1, self.K, self.M) + log_w

    def log_prob(self, p: GMMEmissionParams, x: Tensor) -> Tensor:
        return torch.logsumexp(self._component_log_prob(p, x), 2)

    def stats(self, p: GMMEmissionParams, x: Tensor, gamma: Tensor) -> GMMEmissionStats:
        comp = self._component_log_prob(p, x)
        state = torch.logsumexp(comp, 2, keepdim=True)
        finite = torch.isfinite(state)
        resp = torch.exp(comp - torch.where(finite, state, torch.zeros_like(state))) * finite
        g = (resp * gamma.to(x.dtype)[:, :, None]).reshape(-1, self.K * self.M)
        return GMMEmissionStats(self.gauss.stats(p.flat, x, g))

    def m_step(self, s: GMMEmissionStats, old: GMMEmissionParams, letters: str) -> GMMEmissionParams:
        K, M = self.K, self.M
        f, of = s.flat, old.flat
        D = of.means.shape[1]
        post = f.post.reshape(K, M)
        weights = old.weights
        if "w" in letters:
            total = post.sum(1, keepdim=True)
            weights = torch.where(total > 0, post / torch.where(total > 0, total, 1.0), old.weights)
        alive = f.post > 0
        means = of.means
        if "m" in letters:
            new = f.centre + f.s1 / torch.where(alive, f.post, 1.0)[:, None]
            means = torch.where(alive[:, None], new, of.means)
        covars = of.covars
        if "c" in letters:
            mc = means - f.centre
            ct = self.covariance_type
            if ct in ("diag", "spherical"):
                c_n = f.s2 - 2 * mc * f.s1 + mc.square() * f.post[:, None]
                cov = c_n / torch.where(alive, f.post, 1.0)[:, None] + self.min_covar
                cov = cov.mean(1) if ct == "spherical" else cov
                covars = torch.where(alive if ct == "spherical" else alive[:, None], cov, of.covars)
            else:
                outer = f.s1[:, :, None] * mc[:, None, :]
                c_n = f.s2 - outer - outer.transpose(1, 2) + mc[:, :, None] * mc[:, None, :] * f.post[:, None, None]
                eye = torch.eye(D, dtype=torch.float64, device=c_n.device)
                if ct == "tied":
                    c_state = c_n.reshape(K, M, D, D).sum(1)
                    n_state = post.sum(1)
                    cov = c_state / torch.where(n_state > 0, n_state, 1.0)[:, None, None] + self.min_covar * eye
                    old_state = of.covars.reshape(K, M, D, D)[:, 0]
                    cov = torch.where((n_state > 0)[:, None, None], cov, old_state)
                    covars = cov[:, None].expand(K, M, D, D).reshape(K * M, D, D)
                else:
                    cov = c_n / torch.where(alive, f.post, 1.0)[:, None, None] + self.min_covar * eye
                    covars = torch.where(alive[:, None, None], cov, of.covars)
                covars = 0.5 * (covars + covars.transpose(-1, -2))
        flat = GaussianParams(means, covars, precision_cholesky(covars, self.gauss.covariance_type))
        return GMMEmissionParams(weights, flat)

    def sample(self, p: GMMEmissionParams, states: Tensor, generator: torch.Generator) -> Tensor:
        w = p.weights.cpu()[states]
        u = torch.rand(states.shape[0], 1, generator=generator, dtype=torch.float64)
        comp = torch.searchsorted(torch.cumsum(w, 1), u * w.sum(1, keepdim=True), right=True)[:, 0]
        comp = comp.clamp_(max=self.M - 1)
        return self.gauss.sample(p.flat, states * self.M + comp, generator)
