"""Variational Bayesian Gaussian mixtures (scikit-learn's BayesianGaussianMixture). Math only.

The weights have a Dirichlet distribution or a Dirichlet process prior (stick-breaking,
truncated at K components); each component's mean and precision a Gaussian-Wishart
prior. Coordinate ascent on the evidence lower bound (Bishop 2006, section 10.2; Blei &
Jordan 2006) alternates two updates:

* q(Z), the E-step: r_nk proportional to exp(E[log pi_k] + E[log N(x_n | mu_k, Lambda_k)]).
  The second term is the Gaussian log-density at the posterior means with covariances
  W_k^-1 / nu_k (scikit-learn's ``covariances_``) plus a constant per component, so the
  E-step is the Gaussian mixture's (``mixture.MixtureModel``) with "log weights"
  E[log pi_k] + c_k (:attr:`VariationalParams.log_weights`), and its statistics are the
  mixture's: counts and moments, plus the responsibilities' entropy. So it streams,
  runs on Dask and on the GPU, and takes sample weights as the mixture does.
* q(pi, mu, Lambda), the M-step: the conjugate updates from those statistics.

Parameters, priors and every formula follow scikit-learn's ``_bayesian_mixture.py``
(its normalised covariances included). Its lower bound (``_compute_lower_bound``) keeps
only the terms that do not cancel when q(theta) is optimal for q(Z): it is evaluated
after the M-step, from the statistics of the E-step before it, and it is a total over
rows, not a mean (scikit-learn's ``tol`` applies to the total).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .._core.protocols import Objective, Report, Step
from .gaussian import GaussianComponent, GaussianParams
from .mixture import MixtureModel, MixtureStats, check_statistics

DIRICHLET_PROCESS = "dirichlet_process"
DIRICHLET_DISTRIBUTION = "dirichlet_distribution"
PRIOR_TYPES = (DIRICHLET_PROCESS, DIRICHLET_DISTRIBUTION)
_LOG_2 = math.log(2.0)


@dataclass(frozen=True, slots=True)
class VariationalPrior:
    """The priors, in the coordinates the model works in (scikit-learn's ``*_prior_``).

    weight_concentration: gamma (Dirichlet, or the stick-breaking Beta(1, gamma)); mean:
    m0 (D,); mean_precision: beta0; dof: nu0; covariance: W0^-1, in the structure's prior
    layout (full and tied (D, D), diag (D,), spherical a 0-d tensor).
    """

    weight_concentration: float
    mean_precision: float
    mean: Tensor
    dof: float
    covariance: Tensor

    def to(self, device: torch.device | str) -> VariationalPrior:
        return replace(self, mean=self.mean.to(device), covariance=self.covariance.to(device))

    def translate(self, offset: Tensor) -> VariationalPrior:
        """The same prior for rows moved by ``offset`` (D,)."""
        return replace(self, mean=self.mean + offset.to(self.mean))


@dataclass(frozen=True, slots=True)
class VariationalParams:
    """q(pi, mu, Lambda), float64, with what the E-step and the user read from it.

    concentration: (K,) Dirichlet parameters, or (2, K) the Beta parameters of the
    sticks; mean_precision (K,) beta_k; dof (K,) nu_k (tied: K equal values); component:
    the posterior means, covariances W_k^-1 / nu_k and their precision factors; weights
    (K,): E[pi] normalised (scikit-learn's ``weights_``); log_weights (K,): E[log pi_k]
    plus the constant of E[log N] the Gaussian log-density lacks. Fields of the component
    read through (``p.means``), as :class:`~bigem.models.mixture.MixtureParams`' do.
    """

    weights: Tensor
    component: GaussianParams
    log_weights: Tensor
    concentration: Tensor
    mean_precision: Tensor
    dof: Tensor

    @property
    def n_components(self) -> int:
        return int(self.weights.shape[0])

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy and pickle probe dunders before the slots are set
            raise AttributeError(name)
        return getattr(self.component, name)

    def to(self, device: torch.device | str) -> VariationalParams:
        return VariationalParams(self.weights.to(device), self.component.to(device), self.log_weights.to(device),
                                 self.concentration.to(device), self.mean_precision.to(device), self.dof.to(device))


def expected_log_weights(kind: str, concentration: Tensor) -> Tensor:
    """E[log pi_k] (K,): Dirichlet, or stick-breaking sum_j<k E[log(1 - v_j)] + E[log v_k]."""
    digamma = torch.special.digamma
    if kind == DIRICHLET_PROCESS:
        a, b = concentration
        total = digamma(a + b)
        sticks = torch.cumsum(digamma(b) - total, 0)[:-1]
        return digamma(a) - total + torch.cat([sticks.new_zeros(1), sticks])
    return digamma(concentration) - digamma(concentration.sum())


def expected_weights(kind: str, concentration: Tensor) -> Tensor:
    """E[pi] normalised (K,): scikit-learn's ``weights_``."""
    if kind == DIRICHLET_PROCESS:
        a, b = concentration
        total = a + b
        rest = torch.cumprod((b / total)[:-1], 0)
        weights = a / total * torch.cat([rest.new_ones(1), rest])
        return weights / weights.sum()
    return concentration / concentration.sum()


def log_wishart_terms(dof: Tensor, D: int) -> Tensor:
    """D log 2 + sum_i<D digamma((nu_k - i) / 2): E[log |Lambda_k|] less log |W_k| (K,)."""
    i = torch.arange(D, dtype=dof.dtype, device=dof.device)
    return D * _LOG_2 + torch.special.digamma(0.5 * (dof[:, None] - i)).sum(1)


class VariationalMixture(MixtureModel):
    """The math of a variational Gaussian mixture of K components.

    ``kind``: 'dirichlet_process' or 'dirichlet_distribution'; ``prior``: a
    :class:`VariationalPrior`, needed by the M-step and the bound (inference runs without
    one). Everything the E-step does is the Gaussian mixture's (this class inherits it):
    parameters enter through their ``log_weights`` and ``component``, and the E-step
    also sums the responsibilities' entropy.
    """

    def __init__(self, component: GaussianComponent, n_components: int, dtype: torch.dtype, kind: str,
                 prior: VariationalPrior | None = None, advice: str | None = None) -> None:
        super().__init__(component, n_components, dtype, advice)
        self.kind = kind
        self.prior = prior
        self.entropy = True

    # ------------------------------------------------------------------ parameters
    def variational_params(self, concentration: Tensor, mean_precision: Tensor, means: Tensor, dof: Tensor,
                           covariances: Tensor) -> VariationalParams:
        """Float64 parameters from q's own (dof (K,); tied: K equal values), with their
        precision factors (NumericalError if a covariance has none)."""
        f64 = torch.float64
        concentration, mean_precision, dof = concentration.to(f64), mean_precision.to(f64), dof.to(f64)
        component = self.component.make_params(means, covariances)
        D = component.n_features
        log_weights = (expected_log_weights(self.kind, concentration) - 0.5 * D * torch.log(dof)
                       + 0.5 * (log_wishart_terms(dof, D) - D / mean_precision))
        return VariationalParams(expected_weights(self.kind, concentration), component, log_weights, concentration,
                                 mean_precision, dof)

    def translate(self, params: Any, offset: Tensor | None) -> Any:
        if offset is None or not isinstance(params, VariationalParams):
            return super().translate(params, offset)
        return replace(params, component=self.component.translate(params.component, offset))

    def to_tensors(self, params: VariationalParams) -> dict[str, Tensor]:
        return {"concentration": params.concentration, "mean_precision": params.mean_precision, "dof": params.dof,
                "means": params.component.means, "covariances": params.component.covariances}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> VariationalParams:
        return self.variational_params(tensors["concentration"], tensors["mean_precision"], tensors["means"],
                                       tensors["dof"], tensors["covariances"])

    def _tied(self) -> bool:
        return self.component.structure.name == "tied"

    def flatten(self, params: VariationalParams) -> Tensor:
        """[log concentration, log beta, means, log(nu - D + 1) (one for tied), the
        covariances' unconstrained vector]: every vector maps back to a valid q."""
        D = params.component.n_features
        dof = params.dof[:1] if self._tied() else params.dof
        return torch.cat([torch.log(params.concentration).reshape(-1), torch.log(params.mean_precision),
                          self.component.flatten(params.component), torch.log(dof - (D - 1))])

    def unflatten(self, vector: Tensor, like: VariationalParams) -> VariationalParams:
        K, D = like.component.means.shape
        n_conc = like.concentration.numel()
        concentration = torch.exp(vector[:n_conc]).reshape(like.concentration.shape)
        mean_precision = torch.exp(vector[n_conc : n_conc + K])
        at = n_conc + K
        size = self.component.flat_size(K, D)
        component = self.component.unflatten(vector[at : at + size], like.component)
        dof = torch.exp(vector[at + size :]) + (D - 1)
        dof = dof.expand(K).clone() if self._tied() else dof
        return self.variational_params(concentration, mean_precision, component.means, dof, component.covariances)

    # ------------------------------------------------------------------ M-step
    def posterior(self, stats: MixtureStats) -> VariationalParams:
        """q(pi, mu, Lambda) from the E-step's statistics (scikit-learn's ``_m_step``):
        n_k (with its 10 eps floor), the means x_k and the maximum-likelihood covariances
        S_k plus reg_covar, then the conjugate updates of the weights, means and
        precisions."""
        cs = stats.component
        device = cs.n_k.device
        prior = self.prior.to(device)
        st = self.component.structure
        avg_row = float(stats.weight) / max(stats.rows, 1)
        nk = cs.n_k + 10 * torch.finfo(torch.float64).eps * avg_row
        shift = cs.shift
        K, D = shift.shape
        xk = shift + cs.sum_x / nk[:, None]
        scatter = st.scatter(nk, cs.sum_x, cs.sum_xx, xk - shift, shift - shift.mean(0))
        sk = st.maximise(nk, scatter, self.component.reg_covar)
        gamma = prior.weight_concentration
        if self.kind == DIRICHLET_PROCESS:
            tail = torch.cumsum(nk.flip(0), 0).flip(0)[1:]  # sum_j>k n_j, summed from the end
            concentration = torch.stack([1.0 + nk, gamma + torch.cat([tail, nk.new_zeros(1)])])
        else:
            concentration = gamma + nk
        beta0, m0, w0 = prior.mean_precision, prior.mean, prior.covariance
        beta = beta0 + nk
        means = (beta0 * m0 + nk[:, None] * xk) / beta[:, None]
        diff = xk - m0
        if st.name == "full":
            dof = prior.dof + nk
            outer = diff[:, :, None] * diff[:, None, :]
            cov = (w0 + nk[:, None, None] * sk + (nk * beta0 / beta)[:, None, None] * outer) / dof[:, None, None]
        elif st.name == "tied":
            share = nk.sum() / K
            dof = (prior.dof + share).expand(K).clone()
            cov = (w0 + sk * share + beta0 / K * ((nk / beta)[:, None] * diff).T @ diff) / dof[0]
        elif st.name == "diag":
            dof = prior.dof + nk
            cov = (w0 + nk[:, None] * (sk + (beta0 / beta)[:, None] * diff.square())) / dof[:, None]
        else:
            dof = prior.dof + nk
            cov = (w0 + nk * (sk + beta0 / beta * diff.square().mean(1))) / dof
        return self.variational_params(concentration, beta, means, dof, cov)

    def lower_bound(self, stats: MixtureStats, q: VariationalParams) -> float:
        """scikit-learn's bound (``_compute_lower_bound``): the entropy of the
        responsibilities the statistics were gathered with, and the normalisers of q's
        Wishart, weight and mean factors, with the constant terms dropped."""
        p = q.component
        K, D = p.means.shape
        nu = q.dof
        log_det = self.component.structure.log_det_precision(p.prec_chol, D) * torch.ones_like(nu) - 0.5 * D * torch.log(nu)
        i = torch.arange(D, dtype=nu.dtype, device=nu.device)
        log_wishart = -(nu * log_det + nu * D * 0.5 * _LOG_2 + torch.lgamma(0.5 * (nu[:, None] - i)).sum(1)).sum()
        if self.kind == DIRICHLET_PROCESS:
            a, b = q.concentration
            log_norm_weight = -log_beta(a, b).sum()
        else:
            c = q.concentration
            log_norm_weight = torch.lgamma(c.sum()) - torch.lgamma(c).sum()
        total = -stats.neg_entropy - log_wishart - log_norm_weight - 0.5 * D * torch.log(q.mean_precision).sum()
        return float(total)

    def m_step(self, stats: MixtureStats, params: Any = None) -> Step[VariationalParams]:
        """The variational update: an exact coordinate ascent step (nothing is re-seeded:
        a component the data do not use keeps its prior, which is how the model prunes)."""
        step = self._update(stats)
        self._last = None  # the driver asks for the objective first, then the step: both are one update
        return step

    def objective(self, stats: MixtureStats) -> Objective:
        """The bound after the M-step these statistics lead to (scikit-learn's
        ``lower_bound_``), as a total: its weight is 1, so the driver's change and
        ``tol`` are in the total's units, as scikit-learn's are."""
        return Objective(self._update(stats).report.total, 1.0)

    def _update(self, stats: MixtureStats) -> Step[VariationalParams]:
        """q and its bound from these statistics, computed once for the objective and the
        M-step of the same statistics (the object itself is kept, so its identity cannot
        be reused by another)."""
        last = getattr(self, "_last", None)
        if last is not None and last[0] is stats:
            return last[1]
        check_statistics(stats)
        q = self.posterior(stats)
        step = Step(q, Report(total=self.lower_bound(stats, q)))
        self._last = (stats, step)
        return step

    def decrease_tolerance(self, params: VariationalParams, value: float) -> float:
        """The Gaussian mixture's rounding and regularisation bound per row (``reg_covar``
        makes the update inexact, as it makes the maximum-likelihood step), times the
        rows' total weight: the bound is a total."""
        n = max(float((params.mean_precision - self.prior.mean_precision).sum()), 1.0)
        return n * self.component.decrease_tolerance(params.component, params.weights, value / n)


def _stirling_tail(x: Tensor) -> Tensor:
    """lgamma(x) less Stirling's (x - 1/2) log x - x + log(2 pi) / 2, for x >= 10 (four
    terms of the series: the next is below 1e-12 there)."""
    r = 1.0 / x
    r2 = r * r
    return r * (1.0 / 12 - r2 * (1.0 / 360 - r2 * (1.0 / 1260 - r2 / 1680)))


def log_beta(a: Tensor, b: Tensor) -> Tensor:
    """log B(a, b) = lgamma(a) + lgamma(b) - lgamma(a + b), without the cancellation of
    that sum where an argument is large (scipy's ``betaln``, which scikit-learn's bound
    uses): at a Dirichlet process's concentration of 1e12 the sum lost 0.004 nats (above
    the default tol, so the fit stopped one iteration sooner), at 1e20 the whole term.
    Large arguments take Stirling's series, their logarithms as log1p of the ratio."""
    small, large = torch.minimum(a, b), torch.maximum(a, b)
    naive = torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)
    big = torch.clamp(large, min=10.0)  # (the branches not taken are computed on safe values)
    ratio = torch.log1p(small / big)
    # lgamma(large) - lgamma(large + small), large >= 10
    drop = -(big - 0.5) * ratio - small * torch.log(big + small) + small + _stirling_tail(big) - _stirling_tail(
        big + small)
    one_large = torch.lgamma(small) + drop
    sm = torch.clamp(small, min=10.0)
    both_large = (0.5 * math.log(2 * math.pi) + 0.5 * (torch.log(big + sm) - torch.log(big) - torch.log(sm))
                  - big * torch.log1p(sm / big) + sm * (torch.log(sm) - torch.log(big + sm))
                  + _stirling_tail(big) + _stirling_tail(sm) - _stirling_tail(big + sm))
    return torch.where(large < 10.0, naive, torch.where(small < 10.0, one_large, both_large))
