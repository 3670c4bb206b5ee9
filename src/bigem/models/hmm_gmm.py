"""Gaussian-mixture emissions for hidden Markov models (hmmlearn's GMMHMM). Math only.

State k emits from a mixture of M Gaussians. The K*M Gaussians are one flat
:class:`~bigem.models.gaussian.GaussianComponent`, so every covariance type reuses
the same kernels and moments as the mixture and GaussianHMM; 'tied' here means one
covariance per state, shared by its M Gaussians (hmmlearn's meaning: a 'full'
flat component whose M-step pools each state's scatter).

The M-step is hmmlearn's, to the digit: the MAP update under its priors
(:class:`GMMPrior`), with each covariance taken about the means the E-step used, as
hmmlearn accumulates it. That is an ECM step (covariances given the old means, then
means given the covariances), so the likelihood still never falls under the default
priors, and it has the same fixed points as maximum likelihood; hmmlearn's default
spherical prior is not flat, and the fit is MAP there.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .._core.errors import ParameterError
from .._core.stats import additive
from .gaussian import Block, GaussianComponent, GaussianParams, GaussianStats, Prepared
from .categorical import _logits, softmax_where


@dataclass(frozen=True, slots=True)
class GMMPrior:
    """hmmlearn's GMMHMM priors, as the user gave them (floats or arrays).

    ``weights``: Dirichlet concentrations of each state's mixture weights. ``means`` and
    ``means_weight``: a Normal prior on each mean, of precision ``means_weight`` times
    the Gaussian's. ``covars`` and ``covars_weight``: for 'full' and 'tied' an inverse
    Wishart's scale matrix and degrees of freedom, for 'diag' and 'spherical' an inverse
    gamma's shape and scale (hmmlearn's order of names). None takes hmmlearn's default,
    which depends on the covariance type, n_mix and n_features (:meth:`resolved`).
    """

    weights: Any = 1.0
    means: Any = 0.0
    means_weight: Any = 0.0
    covars: Any = None
    covars_weight: Any = None

    def moved(self, offset: Tensor) -> GMMPrior:
        """The same prior for rows moved by ``offset`` (D,)."""
        return replace(self, means=torch.as_tensor(self.means, dtype=torch.float64) + offset.double().cpu())

    def flat(self, covariance_type: str) -> bool:
        """Whether the prior leaves the M-step maximum likelihood (hmmlearn's defaults for
        'full', 'tied' and 'diag'; its default spherical prior is not flat)."""
        is_ = lambda v, x: bool(torch.all(torch.as_tensor(v, dtype=torch.float64) == x))  # noqa: E731
        if not (is_(self.weights, 1.0) and is_(self.means_weight, 0.0)) or covariance_type == "spherical":
            return False
        if covariance_type == "diag":
            return ((self.covars is None or is_(self.covars, -1.5))
                    and (self.covars_weight is None or is_(self.covars_weight, 0.0)))
        return (self.covars is None or is_(self.covars, 0.0)) and self.covars_weight is None  # its default: D's

    def resolved(self, K: int, M: int, D: int, covariance_type: str, device) -> dict[str, Tensor]:
        """Every prior broadcast to its shape, float64 on ``device`` (hmmlearn's
        ``_init_covar_priors`` and ``_fix_priors_shape``): weights (K, M), means
        (K, M, D), means_weight (K, M); covars full (K, M, D, D), tied (K, D, D), diag
        (K, M, D), spherical (K, M); covars_weight full (K, M), tied (K,), diag
        (K, M, D), spherical (K, M). ParameterError where a given one does not broadcast."""
        default_covars, default_weight = {
            "full": (0.0, -(1.0 + D + 1.0)), "tied": (0.0, -(M + D + 1.0)),
            "diag": (-1.5, 0.0), "spherical": (-(M + 2.0) / 2.0, 0.0),
        }[covariance_type]
        covars_shape, weight_shape = {
            "full": ((K, M, D, D), (K, M)), "tied": ((K, D, D), (K,)),
            "diag": ((K, M, D), (K, M, D)), "spherical": ((K, M), (K, M)),
        }[covariance_type]
        given = {
            "weights_prior": (self.weights, (K, M)),
            "means_prior": (self.means, (K, M, D)),
            "means_weight": (self.means_weight, (K, M)),
            "covars_prior": (default_covars if self.covars is None else self.covars, covars_shape),
            "covars_weight": (default_weight if self.covars_weight is None else self.covars_weight, weight_shape),
        }
        out = {}
        for name, (value, shape) in given.items():
            t = torch.as_tensor(value, dtype=torch.float64)
            try:
                out[name] = torch.broadcast_to(t, shape).to(device)
            except RuntimeError:
                raise ParameterError(
                    f"{name} must broadcast to shape {shape} for covariance_type={covariance_type!r} "
                    f"(n_components={K}, n_mix={M}, n_features={D}); got shape {tuple(t.shape)}"
                ) from None
        return out


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
    """A mixture of ``n_mix`` Gaussians per state, with hmmlearn's M-step (module docstring)."""

    letters = "mcw"
    translatable = True

    def __init__(self, n_components: int, n_mix: int, covariance_type: str, prior: GMMPrior | None = None,
                 dtype: torch.dtype = torch.float64, advice: str = "give the covariances a prior",
                 gaps: bool = False) -> None:
        self.K, self.M = n_components, n_mix
        self.covariance_type = covariance_type
        self.prior = GMMPrior() if prior is None else prior
        self.advice = advice
        self.gaps = gaps  # rows may have gaps (NaN): the Gaussians' exact E-step (``gaussian_gaps``)
        flat_type = "full" if covariance_type == "tied" else covariance_type
        self.gauss = GaussianComponent(flat_type, 0.0, dtype, advice=advice, gaps=gaps)
        self.row_dtype = dtype

    @property
    def regularised(self) -> bool:
        """Whether the prior trades likelihood for prior density (so the likelihood alone
        may fall, by up to the prior's gain)."""
        return not self.prior.flat(self.covariance_type)

    def moved(self, offset: Tensor) -> GMMEmission:
        """The same emission for rows moved by ``offset`` (D,): its means prior moves too."""
        return GMMEmission(self.K, self.M, self.covariance_type, self.prior.moved(offset), self.row_dtype,
                           self.advice, self.gaps)

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
        """hmmlearn's ``_do_mstep``: weights, then means, then covariances, each MAP under
        :class:`GMMPrior` (module docstring). Where a denominator is not positive (a
        Gaussian without rows, under the default priors), the old value stays, where
        hmmlearn would divide by zero. Returns the parameters and the (K,) states whose
        covariances could be factored."""
        K, M = self.K, self.M
        f = s.flat.filled()  # hmmlearn's updates, with any gaps completed
        N, shift = f.n_k, f.shift  # (KM,), (KM, D): moments about the E-step's means
        D = shift.shape[1]
        pr = self.prior.resolved(K, M, D, self.covariance_type, N.device)
        weights = old.weights
        if "w" in update:
            new = torch.clamp(pr["weights_prior"] - 1.0 + N.reshape(K, M), min=0.0)
            total = new.sum(1, keepdim=True)
            weights = torch.where(total > 0, new / torch.where(total > 0, total, 1.0), old.weights)
        means = old.flat.means
        if "m" in update:
            lam, mu0 = pr["means_weight"].reshape(-1), pr["means_prior"].reshape(K * M, D)
            denom = N + lam
            step = (lam[:, None] * (mu0 - shift) + f.sum_x) / torch.where(denom > 0, denom, 1.0)[:, None]
            means = torch.where((denom > 0)[:, None], shift + step, means)
        if "c" not in update:
            flat = GaussianParams(means, old.flat.covariances, old.flat.prec_chol)
            return GMMEmissionParams(weights, flat), torch.ones(K, dtype=torch.bool)
        cov = self._covariances(f, old.flat, means, pr)
        params, valid = self.gauss._factored(means, cov)
        return GMMEmissionParams(weights, params), valid.reshape(K, M).all(1)

    def _covariances(self, f: GaussianStats, old: GaussianParams, means: Tensor, pr: dict[str, Tensor]) -> Tensor:
        """hmmlearn's covariance update, flat layout: the scatter about the E-step's means
        (``old.means``, as hmmlearn accumulates it), plus the prior's terms about the new
        means, over the prior's count."""
        K, M, ct = self.K, self.M, self.covariance_type
        N, shift = f.n_k, f.shift
        D = shift.shape[1]
        st = self.gauss.structure
        scatter = st.scatter(N, f.sum_x, f.sum_xx, old.means - shift, shift - shift.mean(0))
        lam = pr["means_weight"].reshape(-1)
        d = means - pr["means_prior"].reshape(K * M, D)  # the new means about the prior's
        psi, nu = pr["covars_prior"], pr["covars_weight"]
        if ct in ("full", "tied"):
            outer = lam[:, None, None] * d[:, :, None] * d[:, None, :] + scatter
            if ct == "full":
                num = psi.reshape(K * M, D, D).transpose(1, 2) + outer
                den = N + 1.0 + nu.reshape(-1) + D + 1.0
            else:
                num = (psi.transpose(1, 2) + outer.reshape(K, M, D, D).sum(1)).repeat_interleave(M, 0)
                den = (N.reshape(K, M).sum(1) + M + nu + D + 1.0).repeat_interleave(M)
            cov = num / torch.where(den > 0, den, 1.0)[:, None, None]
            cov = 0.5 * (cov + cov.transpose(1, 2))
            keep = (den <= 0)[:, None, None]
        elif ct == "diag":
            alpha, beta = psi.reshape(K * M, D), nu.reshape(K * M, D)
            den = N[:, None] + 1.0 + 2.0 * (alpha + 1.0)
            cov = (lam[:, None] * d.square() + 2.0 * beta + scatter) / torch.where(den > 0, den, 1.0)
            keep = den <= 0
        else:  # spherical: the features' scatter summed, over D (N + 1) + 2 (alpha + 1)
            alpha, beta = psi.reshape(-1), nu.reshape(-1)
            den = D * (N + 1.0) + 2.0 * (alpha + 1.0)
            cov = (lam * d.square().sum(1) + 2.0 * beta + scatter.sum(1)) / torch.where(den > 0, den, 1.0)
            keep = den <= 0
        if ct in ("diag", "spherical"):  # rounding of a Gaussian on repeated rows is no variance
            cov = self.gauss._unresolved_to_zero(cov, means, shift, float(f.eps))
        return torch.where(keep, old.covariances, cov)

    def log_prior(self, p: GMMEmissionParams) -> Tensor:
        """The log-density of :class:`GMMPrior` at ``p``, up to a constant (0-d, float64):
        the objective whose stationary point hmmlearn's update is. Per Gaussian, with
        d = mean - means_prior: full, -(nu + D + 2)/2 log|S| - tr((Psi + lambda d d^T) S^-1)/2;
        tied, per state, -(M + nu + D + 1)/2 log|S| - tr((Psi + sum_m lambda d d^T) S^-1)/2;
        diag, per feature, -(alpha + 3/2) log v - (beta + lambda d^2 / 2) / v; spherical,
        -(D/2 + alpha + 1) log v - (beta + lambda |d|^2 / 2) / v; plus the weights'
        Dirichlet, sum (w_prior - 1) log w over the positive weights."""
        K, M, ct = self.K, self.M, self.covariance_type
        means, cov = p.flat.means, p.flat.covariances
        D = means.shape[1]
        pr = self.prior.resolved(K, M, D, ct, means.device)
        lam = pr["means_weight"].reshape(-1)
        d = means - pr["means_prior"].reshape(K * M, D)
        psi, nu = pr["covars_prior"], pr["covars_weight"]
        if ct in ("full", "tied"):
            scale = lam[:, None, None] * d[:, :, None] * d[:, None, :]
            if ct == "full":
                scale, cov, count = scale + psi.reshape(K * M, D, D).transpose(1, 2), cov, nu.reshape(-1) + D + 2.0
            else:
                scale = scale.reshape(K, M, D, D).sum(1) + psi.transpose(1, 2)
                cov, count = cov.reshape(K, M, D, D)[:, 0], M + nu + D + 1.0
            trace = torch.linalg.solve(cov, scale).diagonal(dim1=1, dim2=2).sum(1)
            total = (-0.5 * count * torch.linalg.slogdet(cov)[1] - 0.5 * trace).sum()
        elif ct == "diag":
            alpha, beta = psi.reshape(K * M, D), nu.reshape(K * M, D)
            total = (-(alpha + 1.5) * torch.log(cov) - (beta + 0.5 * lam[:, None] * d.square()) / cov).sum()
        else:
            alpha, beta = psi.reshape(-1), nu.reshape(-1)
            total = (-(0.5 * D + alpha + 1.0) * torch.log(cov) - (beta + 0.5 * lam * d.square().sum(1)) / cov).sum()
        a = pr["weights_prior"] - 1.0
        used = (p.weights > 0) & (a != 0)
        return total + (a * torch.log(torch.where(used, p.weights, 1.0))).sum()

    def prior_gain(self, new: GMMEmissionParams, old: GMMEmissionParams) -> float:
        """How much a step raised the prior's log-density (0 under a flat prior), which the
        likelihood may lose in exchange."""
        if not self.regularised:
            return 0.0
        gain = float(self.log_prior(new) - self.log_prior(old))
        return gain if math.isfinite(gain) else math.inf

    # ------------------------------------------------------------------ collapse
    def collapsed(self, p: GMMEmissionParams) -> Tensor:
        """(K,) the states with a Gaussian whose covariance is singular to float64 precision."""
        return self.gauss.collapsed(p.flat).reshape(self.K, self.M).any(1)

    def floor(self, p: GMMEmissionParams, bad: Tensor, amount: float) -> GMMEmissionParams:
        """The covariances of the Gaussians of the ``bad`` states (K,) that could not be
        factored or are singular, mended by ``amount`` on their diagonal
        (:meth:`GaussianComponent.floor`); the states' other Gaussians stay as they are
        ('tied': a state's Gaussians share one matrix, and collapse together)."""
        flat = p.flat
        unfactored = torch.isnan(flat.prec_chol.reshape(flat.means.shape[0], -1)).any(1)
        broken = (unfactored | self.gauss.collapsed(flat)).cpu()
        pick = bad.reshape(-1).cpu().repeat_interleave(self.M) & broken
        return GMMEmissionParams(p.weights, self.gauss.floor(flat, pick, amount))

    def decrease_tolerance(self, p: GMMEmissionParams, value: float) -> float:
        """How far rounding may move the mean log-likelihood near a collapse
        (:meth:`GaussianComponent.decrease_tolerance`, each Gaussian weighted by its
        state's share)."""
        KM = self.K * self.M
        return self.gauss.decrease_tolerance(p.flat, torch.full((KM,), 1.0 / KM, dtype=torch.float64), value)

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
