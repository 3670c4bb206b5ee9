"""Gaussian-mixture emissions for hidden Markov models (hmmlearn's GMMHMM). Math only.

State k emits from a mixture of M Gaussians. The K*M Gaussians are one flat
:class:`~bigem.models.gaussian.GaussianComponent`, so every covariance type reuses
the same kernels and moments as the mixture and GaussianHMM; 'tied' here means one
covariance per state, shared by its M Gaussians (hmmlearn's meaning: a 'full'
flat component whose M-step pools each state's scatter). The M-step is maximum
likelihood plus ``min_covar`` on every variance.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.stats import additive
from .gaussian import Block, GaussianComponent, GaussianParams, GaussianStats, Prepared
from .categorical import _logits, softmax_where


@dataclass(frozen=True, slots=True)
class GMMEmissionParams:
    """weights (K, M); flat: the K*M Gaussians, covariances full (KM, D, D) for 'full'
    and 'tied', (KM, D) for 'diag', (KM,) for 'spherical'."""

    weights: Tensor
    flat: GaussianParams

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    def to(self, device) -> GMMEmissionParams:
        return GMMEmissionParams(self.weights.to(device), self.flat.to(device))


@additive
@dataclass(frozen=True, slots=True)
class GMMEmissionStats:
    """flat: the Gaussians' statistics (occupancy, moments), float64."""

    flat: GaussianStats

    def rebase(self, like: GMMEmissionStats) -> GMMEmissionStats:
        return GMMEmissionStats(self.flat.rebase(like.flat))


@dataclass(frozen=True, slots=True)
class _Prepared:
    flat: Prepared
    log_mix: Tensor  # (K*M,) log mixture weights, kernel dtype
    states: int

    @property
    def dtype(self) -> torch.dtype:
        return self.flat.dtype

    @property
    def n_components(self) -> int:
        return self.states


class _Accumulator:
    """The flat moments, each Gaussian weighted by its share of its state's posterior."""

    def __init__(self, emission: GMMEmission, p: _Prepared) -> None:
        self.emission, self.p = emission, p
        self.flat = emission.gauss.accumulator(p.flat)

    def add(self, block: Block, rw: Tensor, w: Tensor | None) -> None:
        comp = self.emission._component_log_joint(self.p, block)  # (K, M, n)
        state = torch.logsumexp(comp, 1, keepdim=True)
        finite = torch.isfinite(state)
        resp = torch.exp(comp - torch.where(finite, state, torch.zeros_like(state))) * finite
        g = (resp * rw[:, None, :]).reshape(-1, rw.shape[1])
        self.flat.add(block, g, w)

    def result(self) -> GMMEmissionStats:
        return GMMEmissionStats(self.flat.result())


class GMMEmission:
    """A mixture of ``n_mix`` Gaussians per state."""

    letters = "mcw"
    translatable = True

    def __init__(self, n_components: int, n_mix: int, covariance_type: str, min_covar: float,
                 dtype: torch.dtype = torch.float64, advice: str = "increase min_covar", gaps: bool = False) -> None:
        self.K, self.M = n_components, n_mix
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.advice = advice
        self.gaps = gaps  # rows may have gaps (NaN): the Gaussians' exact E-step (``gaussian_gaps``)
        flat_type = "full" if covariance_type == "tied" else covariance_type
        self.gauss = GaussianComponent(flat_type, min_covar, dtype, advice=advice, gaps=gaps)
        self.row_dtype = dtype

    @property
    def regularised(self) -> bool:
        # min_covar added after the ML update is a regulariser, not an exact M-step:
        # the likelihood may dip by about its size near convergence
        return self.min_covar > 0

    def make_params(self, weights: Tensor, means: Tensor, covars: Tensor) -> GMMEmissionParams:
        """weights (K, M), means (K, M, D), covars in hmmlearn's GMMHMM layout."""
        K, M, D = means.shape
        cov = covars.double()
        if self.covariance_type == "tied":  # (K, D, D): shared by the state's components
            cov = cov[:, None].expand(K, M, D, D)
        flat_cov = cov.reshape(K * M, *cov.shape[2:]) if self.covariance_type != "spherical" else cov.reshape(K * M)
        return GMMEmissionParams(weights.double(), self.gauss.make_params(means.double().reshape(K * M, D), flat_cov))

    def translate(self, p: GMMEmissionParams, offset: Tensor) -> GMMEmissionParams:
        return GMMEmissionParams(p.weights, self.gauss.translate(p.flat, offset))

    def location(self, p: GMMEmissionParams) -> Tensor:
        return self.gauss.location(p.flat)

    def covars(self, p: GMMEmissionParams) -> Tensor:
        """Covariances in hmmlearn's layout: full (K, M, D, D), tied (K, D, D), diag (K, M, D), spherical (K, M)."""
        c = p.flat.covariances.reshape(self.K, self.M, *p.flat.covariances.shape[1:])
        return c[:, 0] if self.covariance_type == "tied" else c

    # ------------------------------------------------------------------ E-step
    def prepare(self, p: GMMEmissionParams, device: torch.device) -> _Prepared:
        flat = self.gauss.prepare(p.flat, device)
        return _Prepared(flat, torch.log(p.weights.to(device)).reshape(-1).to(flat.dtype), self.K)

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        return self.gauss.block_rows(K * self.M, D, device)

    def block(self, p: _Prepared, x: Tensor) -> Block:
        return self.gauss.block(p.flat, x)

    def _component_log_joint(self, p: _Prepared, block: Block) -> Tensor:
        """log w_km + log N(x | mu_km, Sigma_km): (K, M, n)."""
        return self.gauss.log_joint(p.flat, block, p.log_mix).view(self.K, self.M, -1)

    def log_joint(self, p: _Prepared, block: Block, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        joint = torch.logsumexp(self._component_log_joint(p, block), 1) + log_w[:, None]
        return joint if into is None else into.copy_(joint.T)

    def accumulator(self, p: _Prepared) -> _Accumulator:
        return _Accumulator(self, p)

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: GMMEmissionStats, old: GMMEmissionParams, update: str) -> tuple[GMMEmissionParams, Tensor]:
        K, M = self.K, self.M
        f = s.flat
        post = f.n_k.reshape(K, M)
        weights = old.weights
        if "w" in update:
            total = post.sum(1, keepdim=True)
            weights = torch.where(total > 0, post / torch.where(total > 0, total, 1.0), old.weights)
        if self.covariance_type != "tied" or "c" not in update:
            flat, valid = self.gauss.m_step(f, old.flat, update)
            return GMMEmissionParams(weights, flat), valid.reshape(K, M).all(1)
        flat, _ = self.gauss.m_step(f, old.flat, update.replace("c", ""))
        D = flat.means.shape[1]
        st = self.gauss.structure
        scatter = st.scatter(f.n_k, f.sum_x, f.sum_xx, flat.means - f.shift, f.shift - f.shift.mean(0))
        n_state = post.sum(1)
        eye = torch.eye(D, dtype=torch.float64, device=scatter.device)
        pooled = scatter.reshape(K, M, D, D).sum(1) / torch.where(n_state > 0, n_state, 1.0)[:, None, None]
        pooled = 0.5 * (pooled + pooled.transpose(-1, -2)) + self.min_covar * eye
        old_state = old.flat.covariances.reshape(K, M, D, D)[:, 0]
        cov = torch.where((n_state > 0)[:, None, None], pooled, old_state)
        params, valid = self.gauss._factored(flat.means, cov[:, None].expand(K, M, D, D).reshape(K * M, D, D))
        return GMMEmissionParams(weights, params), valid.reshape(K, M).all(1)

    def prior_gain(self, new: GMMEmissionParams, old: GMMEmissionParams) -> float:
        return 0.0  # no prior: min_covar is a regulariser (see ``regularised``)

    # ------------------------------------------------------------------ the rest
    def sample(self, p: GMMEmissionParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        w = p.weights.cpu()[labels]
        u = torch.rand(labels.shape[0], 1, generator=generator, dtype=torch.float64)
        comp = torch.searchsorted(torch.cumsum(w, 1), u * w.sum(1, keepdim=True), right=True)[:, 0]
        comp = comp.clamp_(max=self.M - 1)
        return self.gauss.sample(p.flat, labels * self.M + comp, generator)

    def n_free_parameters(self, K: int, D: int) -> int:
        M = self.M
        cov = {"full": K * M * D * (D + 1) // 2, "tied": K * D * (D + 1) // 2, "diag": K * M * D, "spherical": K * M}
        return K * (M - 1) + K * M * D + cov[self.covariance_type]

    def to_tensors(self, p: GMMEmissionParams) -> dict[str, Tensor]:
        return {"mix_weights": p.weights, **self.gauss.to_tensors(p.flat)}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> GMMEmissionParams:
        return GMMEmissionParams(tensors["mix_weights"].double(), self.gauss.from_tensors(tensors))

    def flatten(self, p: GMMEmissionParams) -> Tensor:
        return torch.cat([_logits(p.weights).reshape(-1), self.gauss.flatten(p.flat)])

    def unflatten(self, vector: Tensor, like: GMMEmissionParams) -> GMMEmissionParams:
        K, M = like.weights.shape
        weights = softmax_where(vector[: K * M].reshape(K, M), like.weights > 0)
        return GMMEmissionParams(weights, self.gauss.unflatten(vector[K * M :], like.flat))
