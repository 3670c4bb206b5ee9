"""Variational Bayesian hidden Markov models (hmmlearn's VariationalGaussianHMM and
VariationalCategoricalHMM). Math only.

q(pi) q(A) q(theta) approximates the posterior: a Dirichlet on the start
probabilities and on each row of the transitions, and the emission's conjugate
posterior (a Dirichlet on each state's symbols; a Normal-Wishart on each state's
Gaussian). Coordinate ascent on the evidence lower bound (Beal 2003, chapter 3; Ji,
Krishnapuram & Carin 2006) alternates:

* the E-step: the ordinary forward-backward pass on sub-normalised parameters
  exp(E[log pi]), exp(E[log A]) and emissions exp(E[log p(x | theta_k)]). That is
  :class:`~bigem.models.hmm.HMMModel`'s batched pass unchanged (its scaled recursion
  needs non-negative entries, not stochastic rows), so its statistics are the HMM's;
* the M-step: each posterior is its prior plus the expected counts or moments.

The bound is hmmlearn's (``_compute_lower_bound``): the log of the sub-normalised
likelihood (the forward pass's total) minus KL(q || prior) of every factor, for the q
the E-step ran under, so the statistics carry that q (a ``shared`` field). As in
hmmlearn, the Gaussian's E[log p(x)] leaves out -D/2 log(2 pi): the bound lacks
-N D/2 log(2 pi), a constant that changes nothing but its value.

Shapes: K states, D features, M symbols.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from .._core.errors import NumericalError
from .._core.protocols import Objective, Report, Step
from .._core.stats import additive, shared
from .._core.types import SequenceChunk
from .categorical import CategoricalComponent, CategoricalParams, CategoricalStats
from .gaussian import LOG_2PI, GaussianComponent, GaussianParams, GaussianStats
from .hmm import HMMModel, HMMParams, HMMStats
from .variational import log_wishart_terms

_LOG_2 = math.log(2.0)
_LOG_PI = math.log(math.pi)


def expected_log(concentration: Tensor) -> Tensor:
    """E[log p] of a Dirichlet along the last axis: digamma(a) - digamma(sum a)."""
    digamma = torch.special.digamma
    return digamma(concentration) - digamma(concentration.sum(-1, keepdim=True))


def kl_dirichlet(q: Tensor, p: Tensor) -> Tensor:
    """KL(Dir(q) || Dir(p)) along the last axis, summed over the other axes (0-d)."""
    lgamma, digamma = torch.lgamma, torch.special.digamma
    qs, ps = q.sum(-1), p.sum(-1)
    kl = (lgamma(qs) - lgamma(ps) - (lgamma(q) - lgamma(p)).sum(-1)
          + ((q - p) * (digamma(q) - digamma(qs)[..., None])).sum(-1))
    return kl.sum()


# ---------------------------------------------------------------------------- HMM
@dataclass(frozen=True, slots=True)
class VariationalHMMParams:
    """q and its prior, float64: Dirichlet concentrations of the start (K,) and of each
    row of the transitions (K, K), their priors, and the emission's posterior (which
    holds its own prior)."""

    start: Tensor
    trans: Tensor
    emission: Any
    start_prior: Tensor
    trans_prior: Tensor

    @property
    def n_components(self) -> int:
        return int(self.start.shape[0])

    def to(self, device: torch.device | str) -> VariationalHMMParams:
        return VariationalHMMParams(self.start.to(device), self.trans.to(device), self.emission.to(device),
                                    self.start_prior.to(device), self.trans_prior.to(device))


@additive
@dataclass(frozen=True, slots=True)
class VariationalHMMStats:
    """The forward-backward statistics under q's sub-normalised parameters, and that q
    (the bound is evaluated for it)."""

    hmm: HMMStats
    params: VariationalHMMParams = shared()


class VariationalHMMModel:
    """Variational Bayes for an HMM whose emission is a variational emission
    (:class:`DirichletCategorical`, :class:`NormalWishart`): e_step, m_step and the
    bound, with hmmlearn's ``params`` letters (what the M-step updates)."""

    def __init__(self, emission: Any, n_components: int, dtype: torch.dtype, *, params: str = "st") -> None:
        self.emission = emission
        self.n_components = n_components
        self.dtype = dtype
        self.params = params
        self.advice = emission.advice
        self._hmm = HMMModel(emission.expectation, n_components, dtype, params=params)
        self._bound: tuple[VariationalHMMStats, float] | None = None  # the driver asks twice per pass
        self._expected: tuple[VariationalHMMParams, HMMParams] | None = None  # every chunk of a pass asks

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_bound"] = state["_expected"] = None
        return state

    def expected(self, q: VariationalHMMParams) -> HMMParams:
        """The sub-normalised HMM the E-step runs: exp(E[log pi]), exp(E[log A]), and the
        emission's E[log p(x | theta_k)]; computed once per q, not once per chunk (a few
        small digamma and exp kernels each: on a GPU, launches per batch of sequences)."""
        held = self._expected
        if held is not None and held[0] is q:
            return held[1]
        value = HMMParams(torch.exp(expected_log(q.start)), torch.exp(expected_log(q.trans)),
                          self.emission.expected(q.emission))
        self._expected = (q, value)
        return value

    def e_step(self, q: VariationalHMMParams, chunk: SequenceChunk, links=None) -> VariationalHMMStats:
        return VariationalHMMStats(self._hmm.e_step(self.expected(q), chunk, links=links), q)

    def transfers(self, q: VariationalHMMParams, chunk: SequenceChunk) -> Tensor:
        """A piece's transfer under the sub-normalised HMM (see :mod:`bigem.models.hmm_pieces`:
        the links need non-negative matrices, not stochastic rows, as the scaled pass does)."""
        return self._hmm.transfers(self.expected(q), chunk)

    def link(self, transfers: Tensor, first):
        return self._hmm.link(transfers, first)

    def lower_bound(self, stats: VariationalHMMStats) -> float:
        """hmmlearn's bound of the q the statistics were gathered under (a total)."""
        if self._bound is not None and self._bound[0] is stats:
            return self._bound[1]
        q = stats.params
        kl = (kl_dirichlet(q.start, q.start_prior) + kl_dirichlet(q.trans, q.trans_prior)
              + self.emission.kl(q.emission))
        value = float(stats.hmm.loglik - kl)
        self._bound = (stats, value)
        return value

    def objective(self, stats: VariationalHMMStats) -> Objective:
        """The bound per time step (its weight: the rows), so ``tol`` reads as for the
        other HMMs."""
        return Objective(self.lower_bound(stats), float(stats.hmm.rows))

    def m_step(self, stats: VariationalHMMStats, q: VariationalHMMParams) -> Step[VariationalHMMParams]:
        h = stats.hmm
        if h.rows == 0:
            raise NumericalError("no sequence has a finite likelihood under the current posteriors; "
                                 f"{self.advice}")
        start = q.start_prior + h.start if "s" in self.params else q.start
        trans = q.trans_prior + h.trans if "t" in self.params else q.trans
        emission = self.emission.posterior(h.emission, q.emission, self.params)
        return Step(replace(q, start=start, trans=trans, emission=emission),
                    Report(exact=self.emission.ascends(self.params), smooth=True, total=self.lower_bound(stats)))

    def decrease_tolerance(self, q: VariationalHMMParams, value: float) -> float:
        """Rounding of the per-step bound (coordinate ascent never lowers it)."""
        eps = 1e-6 if self.dtype == torch.float32 else 1e-11
        return eps * (abs(value) + 1.0)

    def translate(self, q: VariationalHMMParams, offset: Tensor | None) -> VariationalHMMParams:
        """The posteriors of the same model for rows moved by ``offset`` (None: none)."""
        if offset is None:
            return q
        return replace(q, emission=self.emission.translate(q.emission, offset))

    def moved(self, offset: Tensor | None) -> VariationalHMMModel:
        """The same model for rows moved by ``offset``: itself, as its priors live in the
        posteriors, which :meth:`translate` moves."""
        return self

    def to_tensors(self, q: VariationalHMMParams) -> dict[str, Tensor]:
        return {"start": q.start, "trans": q.trans, "start_prior": q.start_prior, "trans_prior": q.trans_prior,
                **self.emission.to_tensors(q.emission)}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> VariationalHMMParams:
        f64 = torch.float64
        return VariationalHMMParams(tensors["start"].to(f64), tensors["trans"].to(f64),
                                    self.emission.from_tensors(tensors), tensors["start_prior"].to(f64),
                                    tensors["trans_prior"].to(f64))


# ---------------------------------------------------------------------------- categorical
@dataclass(frozen=True, slots=True)
class DirichletParams:
    """Each state's Dirichlet posterior over the symbols (K, M), and its prior (K, M)."""

    posterior: Tensor
    prior: Tensor

    def to(self, device: torch.device | str) -> DirichletParams:
        return DirichletParams(self.posterior.to(device), self.prior.to(device))


class DirichletCategorical:
    """Categorical emissions with a Dirichlet posterior per state (letter 'e'). The E-step
    is the categorical component's, on exp(E[log phi_k])."""

    letters = "e"

    def __init__(self, n_symbols: int, dtype: torch.dtype, advice: str) -> None:
        self.expectation = CategoricalComponent(n_symbols, 1.0, dtype, advice=advice)
        self.advice = advice

    def expected(self, p: DirichletParams) -> CategoricalParams:
        """The sub-normalised exp(E[log phi]), with E[log phi] itself for the E-step: a
        concentration of ~1e-20 (the default prior's random start can draw one) gives
        E[log phi] ~ -1e20, whose exp is 0, but hmmlearn's bound stays finite there."""
        logs = expected_log(p.posterior)
        return CategoricalParams(torch.exp(logs), logs)

    def ascends(self, update: str) -> bool:
        """Whether the M-step maximises the bound (always: each factor's update is exact)."""
        return True

    def posterior(self, stats: CategoricalStats, p: DirichletParams, update: str) -> DirichletParams:
        return replace(p, posterior=p.prior + stats.counts) if "e" in update else p

    def kl(self, p: DirichletParams) -> Tensor:
        return kl_dirichlet(p.posterior, p.prior)

    def translate(self, p: DirichletParams, offset: Tensor) -> DirichletParams:
        return p

    def to_tensors(self, p: DirichletParams) -> dict[str, Tensor]:
        return {"emission_posterior": p.posterior, "emission_prior": p.prior}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> DirichletParams:
        return DirichletParams(tensors["emission_posterior"].double(), tensors["emission_prior"].double())


# ---------------------------------------------------------------------------- Gaussian
@dataclass(frozen=True, slots=True)
class NormalWishartParams:
    """Each state's Normal-Wishart posterior and prior, float64 (hmmlearn's names).

    means (K, D), beta (K,): the means' Normal; dof (K,) (tied: K equal values) and
    scale (the covariance structure's layout: full (K, D, D), tied (D, D), diag (K, D),
    spherical (K,)): the precision's Wishart, whose E[precision] is dof scale^-1. The
    ``prior_*`` fields: the same for the prior. origin (D,): where the rows' zero lies in
    the data's coordinates (rows may arrive less a shift), which the covariance update
    needs when it keeps the means fixed (hmmlearn's update then uses raw moments).
    """

    means: Tensor
    beta: Tensor
    dof: Tensor
    scale: Tensor
    prior_means: Tensor
    prior_beta: Tensor
    prior_dof: Tensor
    prior_scale: Tensor
    origin: Tensor

    _FIELDS = ("means", "beta", "dof", "scale", "prior_means", "prior_beta", "prior_dof", "prior_scale", "origin")

    def to(self, device: torch.device | str) -> NormalWishartParams:
        return NormalWishartParams(*(getattr(self, f).to(device) for f in self._FIELDS))


@dataclass(frozen=True, slots=True)
class ExpectedGaussian:
    """E[log N(x | mu_k, Lambda_k)] (less -D/2 log 2 pi) as a Gaussian log-density at the
    posterior means with covariances scale_k / dof_k, plus a constant per state."""

    gaussian: GaussianParams
    const: Tensor  # (K,)

    def to(self, device: torch.device | str) -> ExpectedGaussian:
        return ExpectedGaussian(self.gaussian.to(device), self.const.to(device))


@dataclass(frozen=True, slots=True)
class _Prepared:
    inner: Any
    const: Tensor

    @property
    def dtype(self) -> torch.dtype:
        return self.inner.dtype

    @property
    def n_components(self) -> int:
        return self.inner.n_components


class ExpectedGaussianComponent:
    """The Gaussian component's E-step kernels with a constant per state added to the
    log-densities: what the forward-backward pass and its statistics need of a component."""

    def __init__(self, gaussian: GaussianComponent) -> None:
        self.gaussian = gaussian
        self.advice = gaussian.advice
        self.row_dtype = gaussian.row_dtype
        self.translatable = gaussian.translatable

    def prepare(self, p: ExpectedGaussian, device: torch.device) -> _Prepared:
        inner = self.gaussian.prepare(p.gaussian, device)
        return _Prepared(inner, p.const.to(device=device, dtype=inner.dtype))

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        return self.gaussian.block_rows(K, D, device)

    def block(self, p: _Prepared, x: Tensor) -> Any:
        return self.gaussian.block(p.inner, x)

    def log_joint(self, p: _Prepared, block: Any, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        return self.gaussian.log_joint(p.inner, block, log_w + p.const, into)

    def accumulator(self, p: _Prepared) -> Any:
        return self.gaussian.accumulator(p.inner)


class NormalWishart:
    """Gaussian emissions of a covariance structure with a Normal-Wishart posterior per
    state (letters 'm' means, 'c' covariances), as hmmlearn's VariationalGaussianHMM:
    diag and spherical are Wisharts with a diagonal (isotropic) scale."""

    letters = "mc"

    def __init__(self, gaussian: GaussianComponent) -> None:
        self.gaussian = gaussian
        self.structure = gaussian.structure
        self.advice = gaussian.advice
        self.expectation = ExpectedGaussianComponent(gaussian)

    # ------------------------------------------------------------------ layouts
    def covariances(self, p: NormalWishartParams) -> Tensor:
        """The posterior-mean point estimate scale / dof, in the structure's layout."""
        name = self.structure.name
        if name == "full":
            return p.scale / p.dof[:, None, None]
        if name == "tied":
            return p.scale / p.dof[0]
        if name == "diag":
            return p.scale / p.dof[:, None]
        return p.scale / p.dof

    def _dense(self, scale: Tensor, K: int, D: int) -> Tensor:
        return self.structure.dense(scale, K, D)

    # ------------------------------------------------------------------ E-step
    def expected(self, p: NormalWishartParams) -> ExpectedGaussian:
        """E[log N(x)] + D/2 log 2 pi = 1/2 (E[log |Lambda|] - D/beta - dof (x-m)^T scale^-1 (x-m)),
        which is log N(x | m, scale/dof) plus 1/2 (sum_i digamma((dof-i)/2) + D log 2
        - D log dof - D/beta) + D/2 log 2 pi: the log-determinant of scale cancels."""
        K, D = p.means.shape
        gaussian = self.gaussian.make_params(p.means, self.covariances(p))
        const = 0.5 * D * LOG_2PI + 0.5 * (log_wishart_terms(p.dof, D) - D * torch.log(p.dof) - D / p.beta)
        return ExpectedGaussian(gaussian, const)

    # ------------------------------------------------------------------ M-step
    def ascends(self, update: str) -> bool:
        """Whether the M-step maximises the bound: not when it updates the covariances but
        keeps the means ('c' without 'm'), where hmmlearn's update pairs raw moments with
        the old means (not the optimal q of the precisions), so the bound may fall."""
        return not ("c" in update and "m" not in update)

    def posterior(self, s: GaussianStats, p: NormalWishartParams, update: str) -> NormalWishartParams:
        """hmmlearn's updates, from moments about the E-step's means (no raw second moments):

        beta = beta0 + n, m = (beta0 m0 + sum x) / beta, dof = dof0 + n,
        scale = scale0 + sum x x^T + beta0 m0 m0^T - beta m m^T.

        About a point c (per state; tied: the scatters about each, summed), with primes for
        "minus c", the scale is scale0 + S2' + beta0 m0' m0'^T - beta m' m'^T + c u^T + u c^T
        + (n + beta0 - beta) c c^T, u = S1' + beta0 m0' - beta m': the last terms vanish
        when the means were updated, and carry hmmlearn's raw-moment arithmetic when they
        were not ('c' without 'm'), with c in the data's coordinates.
        """
        name = self.structure.name
        n, s1, s2, c = s.n_k, s.sum_x, s.sum_xx, s.shift
        K, D = c.shape
        b0 = p.prior_beta
        m0 = p.prior_means - c
        if "m" in update:
            beta = b0 + n
            m = (b0[:, None] * m0 + s1) / beta[:, None]
            means = c + m
        else:
            beta, means = p.beta, p.means
            m = means - c
        if "c" not in update:
            return replace(p, means=means, beta=beta)
        raw = "m" not in update
        if raw:
            u = s1 + b0[:, None] * m0 - beta[:, None] * m
            g = n + b0 - beta
            cd = c + p.origin
        if name in ("full", "tied"):
            terms = (b0[:, None, None] * m0[:, :, None] * m0[:, None, :]
                     - beta[:, None, None] * m[:, :, None] * m[:, None, :])
            if raw:
                cu = cd[:, :, None] * u[:, None, :]
                terms = terms + cu + cu.transpose(1, 2) + g[:, None, None] * cd[:, :, None] * cd[:, None, :]
            if name == "full":
                scale, dof = p.prior_scale + s2 + terms, p.prior_dof + n
            else:
                scale, dof = p.prior_scale + s2 + terms.sum(0), (p.prior_dof[0] + n.sum()).expand(K).clone()
            scale = 0.5 * (scale + scale.transpose(-1, -2))
        else:
            terms = s2 + b0[:, None] * m0.square() - beta[:, None] * m.square()
            if raw:
                terms = terms + 2.0 * cd * u + g[:, None] * cd.square()
            scale = p.prior_scale + (terms if name == "diag" else terms.mean(1))
            dof = p.prior_dof + n
        return replace(p, means=means, beta=beta, dof=dof, scale=scale)

    # ------------------------------------------------------------------ bound
    def kl(self, p: NormalWishartParams) -> Tensor:
        """KL(q || prior) of the Normal-Wisharts (hmmlearn's ``_kl_divergence``, each
        state's; a tied Wishart counted once): scales as dense matrices (diagonal for diag
        and spherical), through their Cholesky factors."""
        K, D = p.means.shape
        tied = self.structure.name == "tied"
        scale = self._dense(p.scale, K, D)
        prior_scale = self._dense(p.prior_scale, K, D)
        chol, info = torch.linalg.cholesky_ex(scale)
        if bool(info.any()):
            raise NumericalError(f"a posterior scale matrix is not positive definite; {self.advice}")
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)  # (K,)
        diff = (p.means - p.prior_means)[:, :, None]
        quad = torch.linalg.solve_triangular(chol, diff, upper=False).square().sum((-2, -1))  # diff^T scale^-1 diff
        beta, b0, nu, nu0 = p.beta, p.prior_beta, p.dof, p.prior_dof
        kl_normal = 0.5 * (D * torch.log(beta / b0) + D * b0 / beta - D + b0 * nu * quad)
        # tr(scale0 scale^-1), E[log |Lambda|] and the Wishart normalisers, per state
        trace = torch.diagonal(torch.cholesky_solve(prior_scale, chol), dim1=-2, dim2=-1).sum(-1)
        prior_chol, info = torch.linalg.cholesky_ex(prior_scale)
        if bool(info.any()):
            raise NumericalError("the prior scale matrix (scale_prior) is not positive definite; pass one that is")
        prior_log_det = 2.0 * torch.log(torch.diagonal(prior_chol, dim1=-2, dim2=-1)).sum(-1)
        i = torch.arange(D, dtype=nu.dtype, device=nu.device)
        half = 0.5 * (nu[:, None] - i)
        half0 = 0.5 * (nu0[:, None] - i)
        log_half = log_det - D * _LOG_2  # log |scale / 2|
        log_half0 = prior_log_det - D * _LOG_2
        e_log = -log_half + torch.special.digamma(half).sum(-1)
        log_z = D * (D - 1) / 4 * _LOG_PI - 0.5 * nu * log_half + torch.lgamma(half).sum(-1)
        log_z0 = D * (D - 1) / 4 * _LOG_PI - 0.5 * nu0 * log_half0 + torch.lgamma(half0).sum(-1)
        kl_wishart = 0.5 * (nu - nu0) * e_log - 0.5 * D * nu + 0.5 * nu * trace + log_z0 - log_z
        return kl_normal.sum() + (kl_wishart[0] if tied else kl_wishart.sum())

    # ------------------------------------------------------------------ maps
    def translate(self, p: NormalWishartParams, offset: Tensor) -> NormalWishartParams:
        offset = offset.to(p.means)
        return replace(p, means=p.means + offset, prior_means=p.prior_means + offset, origin=p.origin - offset)

    def to_tensors(self, p: NormalWishartParams) -> dict[str, Tensor]:
        return {f"emission_{f}": getattr(p, f) for f in NormalWishartParams._FIELDS}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> NormalWishartParams:
        return NormalWishartParams(*(tensors[f"emission_{f}"].double() for f in NormalWishartParams._FIELDS))
