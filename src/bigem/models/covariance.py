"""Covariance structures: everything that depends on how a Gaussian's covariance is
constrained, in one object per structure.

A structure knows its parameter layout and free-parameter count, how it is
regularised, factored (precision Cholesky factors, log-determinants), estimated from
the scatter statistics (maximum likelihood, or MAP under hmmlearn's conjugate
prior), sampled, checked when a user gives it, and mapped to an unconstrained vector.

Two things are kept apart on purpose:

* ``kernel``: the E-step layout that computes log-densities and moments ('full':
  one precision factor per component, moments (K, D, D); 'tied': one shared factor,
  the total scatter (D, D); 'diag': per-component diagonal precisions, moments (K, D));
* the M-step, which turns those moments into covariances of this structure.

So a constrained structure (mclust's EEV, VEI, ...) is a small entry that reuses a
kernel and brings its own M-step. Layouts: full (K, D, D), tied (D, D), diag (K, D),
spherical (K,); precision factors have the same shape (upper-triangular U with
U U^T = Sigma^-1, scikit-learn's ``precisions_cholesky_``; 1/sqrt(variance) for diag
and spherical).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import torch
from torch import Tensor

from .._core.errors import NumericalError, ParameterError


def _eye(D: int, like: Tensor) -> Tensor:
    return torch.eye(D, dtype=like.dtype, device=like.device)


def cholesky_or_raise(mat: Tensor, what: str, advice: str) -> Tensor:
    """Lower Cholesky factors of a batch of SPD matrices (..., D, D); names the failing one."""
    chol, info = torch.linalg.cholesky_ex(mat)
    if bool((info != 0).any()):
        bad = int(torch.nonzero(info.reshape(-1))[0])
        raise NumericalError(f"{what} {bad} is not symmetric positive definite; {advice}")
    return chol


def symmetric(matrices: Tensor) -> Tensor:
    """Whether each matrix of a (..., D, D) batch is symmetric by numpy's ``allclose``
    defaults (rtol 1e-5, atol 1e-8), scikit-learn's and hmmlearn's test of a given
    covariance or precision: matrices typed or read back to 8 digits pass. The Cholesky
    factors then read the lower triangle, as theirs do."""
    return torch.isclose(matrices, matrices.transpose(-1, -2), rtol=1e-5, atol=1e-8).flatten(-2).all(-1)


@dataclass(frozen=True, slots=True)
class Prior:
    """A conjugate prior on the means and covariances (hmmlearn's parametrisation).

    means: Normal(means_prior, Sigma / means_weight); covariances: inverse-Wishart (full,
    tied) or inverse-gamma (diag, spherical) with scale ``covars_prior`` (added to every
    entry, as hmmlearn does) and ``covars_weight``. Zero weights and scale: no prior.
    """

    means_prior: Tensor | float = 0.0
    means_weight: Tensor | float = 0.0
    covars_prior: Tensor | float = 0.0
    covars_weight: Tensor | float = 0.0

    def tensors(self, device) -> tuple[Tensor, Tensor, Tensor]:
        f64 = dict(dtype=torch.float64, device=device)
        return (torch.as_tensor(self.means_prior, **f64), torch.as_tensor(self.means_weight, **f64),
                torch.as_tensor(self.covars_prior, **f64))

    @property
    def active(self) -> bool:
        nonzero = lambda v: bool(torch.any(torch.as_tensor(v) != 0))  # noqa: E731
        return nonzero(self.covars_prior) or nonzero(self.means_weight)


@dataclass(frozen=True, slots=True)
class MclustPrior(Prior):
    """mclust's conjugate prior (Fraley and Raftery, 2007): means Normal(means_prior,
    Sigma_k / means_weight) (``means_weight`` is mclust's shrinkage kappa), and on the
    covariances an inverse-Wishart with ``dof`` degrees of freedom and ``scale`` (a
    (D, D) matrix) for the ellipsoidal models, or inverse-gamma(dof / 2, scale / 2) on
    each variance for the diagonal and spherical ones (``scale`` a number).

    The MAP M-step is the structure's own M-step on augmented statistics
    (:meth:`Structure.augment`): counts and scatter gain the prior's terms, as mclust's
    Fortran adds them for that model (:meth:`Structure.mclust_terms`), so every model
    gets mclust's M-step from the same code.
    """

    dof: float = 0.0
    scale: Tensor | float = 0.0

    @property
    def active(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class MclustTerms:
    """How one model's MAP M-step uses mclust's prior (:meth:`Structure.mclust_terms`).

    extra: what the prior adds to each component's count (in units of n_k);
    scale: 'each' (the scale joins each component's scatter), 'once' (it joins the
    total, spread over the components) or 'none'; shrink: whether the means are the
    MAP means (n_k xbar_k + kappa mean) / (n_k + kappa) or the plain xbar_k.
    """

    extra: float
    scale: str
    shrink: bool


def _wishart_log_density(cov: Tensor, scale: Tensor, a: float) -> Tensor:
    """sum_k -(a/2) log|cov_k| - tr(scale_k cov_k^-1)/2: (K, D, D) float64 -> a scalar."""
    chol = torch.linalg.cholesky(cov)
    log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
    trace = torch.diagonal(torch.cholesky_solve(scale.expand_as(cov).contiguous(), chol), dim1=-2, dim2=-1).sum(-1)
    return (-0.5 * a * log_det - 0.5 * trace).sum()


class Structure(ABC):
    """Base of the covariance structures; each subclass is one row of the table."""

    name: str = ""
    kernel: str = ""  # 'full' | 'tied' | 'diag': the E-step layout (see the module docstring)
    what: str = "covariance of component"  # how messages name one of its matrices
    # how mclust's conjugate prior sits on it: 'matrix' (inverse-Wishart), 'diagonal' or
    # 'spherical' (inverse-gamma on each variance); ``shared``: one covariance for all
    prior_kind: str = "matrix"
    shared: bool = False

    # ---------------------------------------------------------------- layout
    @abstractmethod
    def shape(self, K: int, D: int) -> tuple[int, ...]:
        """The layout of K components' covariances in D dimensions."""

    @abstractmethod
    def n_parameters(self, K: int, D: int) -> int:
        """Free scalars of the covariances (scikit-learn's and mclust's count)."""

    @abstractmethod
    def dense(self, cov: Tensor, K: int, D: int) -> Tensor:
        """(K, D, D) matrices, whatever the layout."""

    @abstractmethod
    def from_dense(self, full: Tensor) -> Tensor:
        """This layout from (K, D, D) matrices (their mean, diagonal, ... as it constrains)."""

    # ---------------------------------------------------------------- factors
    def regularize(self, cov: Tensor, reg: float) -> Tensor:
        """Add ``reg`` to every variance (one meaning, every structure)."""
        return cov + reg

    def precision_cholesky(self, cov: Tensor, advice: str) -> Tensor:
        """Upper U with U U^T = Sigma^-1 (1/sqrt(variance) here); NumericalError naming the
        first component without one, ending with ``advice``."""
        bad = ~(cov > 0) | ~torch.isfinite(cov)
        if bool(bad.any()):
            k = int(torch.nonzero(bad.reshape(cov.shape[0], -1).any(1))[0]) if cov.ndim else 0
            raise NumericalError(f"variance of component {k} is not positive; {advice}")
        return torch.rsqrt(cov)

    def covariance(self, prec_chol: Tensor) -> Tensor:
        """Inverse of :meth:`precision_cholesky`."""
        return 1.0 / prec_chol.square()

    @abstractmethod
    def log_det_precision(self, prec_chol: Tensor, D: int) -> Tensor:
        """log det U: (K,), or a scalar for one shared matrix."""

    def positive_definite(self, cov: Tensor, K: int) -> Tensor:
        """(K,) whether each component's covariance can be factored."""
        ok = (cov > 0) & torch.isfinite(cov)
        return ok.all(-1) if ok.ndim > 1 else ok

    def repair(self, cov: Tensor, reg: float) -> Tensor:
        """Undo rounding that left a covariance slightly indefinite (only when factoring fails)."""
        return cov

    # ---------------------------------------------------------------- M-step
    def scatter(self, n_k: Tensor, sum_x: Tensor, sum_xx: Tensor, d: Tensor, shift_c: Tensor) -> Tensor:
        """Scatter about the new means, in the kernel's moment layout, from moments about
        the shift: n_k (K,), sum_x (K, D) about the shift, sum_xx (kernel layout; tied:
        the total scatter about the centre), d (K, D) new means minus shift, shift_c (K, D)
        shift minus centre. Exact algebra, float64."""
        s2 = sum_xx - 2.0 * d * sum_x + n_k[:, None] * d.square()
        return s2.clamp_(min=0)

    @abstractmethod
    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        """Maximum-likelihood covariances from the scatter, plus ``reg``; ``old`` (the
        previous covariances) warm-starts the structures whose M-step iterates."""

    def maximise_observed(self, counts: Tensor, scatter: Tensor, reg: float) -> Tensor | None:
        """Maximum-likelihood covariances, plus ``reg``, from moments over the observed
        values only: counts (K, D) the responsibility mass that observed each feature,
        scatter (K, D) about the new means over those values (the diag kernel with gaps).
        None where the structure has no closed form so (its M-step then completes the
        gaps with their conditional moments instead: the same maximum, by smaller steps)."""
        return None

    def mclust_terms(self, K: int, D: int, prior: MclustPrior) -> MclustTerms:
        """How mclust's MAP M-step for this model and K components uses ``prior``.

        Here the conjugate MAP of Fraley and Raftery (2007) that mclust's Fortran uses
        for VII, VVI, VVV and EEE (and for every model at K = 1, where mclust fits its
        one-component XII, XXI or XXX): each component's count gains one for the mean's
        prior (shrinkage > 0) and the covariance prior's degrees of freedom (inverse-
        Wishart: dof + D + 1; inverse-gamma on each variance: dof + 2, spread over the D
        variances of a spherical component), its scatter the scale. A covariance shared
        by every component (EEE) takes the covariance prior once, spread over them. The
        constrained models of ``eigen`` override this where mclust departs from it."""
        m = 1.0 if float(prior.means_weight) > 0 else 0.0
        nu = float(prior.dof)
        extra = {"matrix": nu + D + 1, "diagonal": nu + 2}.get(self.prior_kind, (nu + 2) / D)
        if self.shared and K > 1:
            return MclustTerms(m + extra / K, "once", True)
        return MclustTerms(m + extra, "each", True)

    def augment(self, n_k: Tensor, scatter: Tensor, diff: Tensor, prior: MclustPrior,
                weight: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """The counts and scatter whose maximum-likelihood M-step is mclust's MAP M-step
        (:meth:`mclust_terms`): each count gains the prior's extra count, each scatter the
        mean's prior, ``weight_k diff_k diff_k^T``, and the scale ('each' component's, or
        'once' spread over the K components, or 'none'). diff (K, D): the M-step's means
        minus means_prior; ``weight`` (K,) defaults to the shrinkage kappa about shrunk
        (MAP) means, and to kappa n_k / (n_k + kappa) about the plain means (the same
        matrix: W_k + kappa n_k / (n_k + kappa) (xbar_k - mean)(xbar_k - mean)^T)."""
        K, D = diff.shape
        terms = self.mclust_terms(K, D, prior)
        kappa = float(prior.means_weight)
        if weight is None:
            weight = torch.full_like(n_k, kappa)
            if not terms.shrink and kappa > 0:
                weight = kappa * n_k / (n_k + kappa)
        share = {"each": 1.0, "once": 1.0 / K, "none": 0.0}[terms.scale]
        scale = torch.as_tensor(prior.scale, dtype=torch.float64, device=diff.device) * share
        if self.prior_kind == "matrix":
            add = scale.expand(D, D) if scale.ndim else scale * torch.eye(D, dtype=diff.dtype, device=diff.device)
        elif self.prior_kind == "diagonal":
            add = scale.reshape(())
        else:  # one inverse-gamma per spherical variance, spread over its D diagonal entries
            add = scale.reshape(()) / D
        counts = n_k + terms.extra
        if self.kernel == "diag":
            return counts, scatter + weight[:, None] * diff.square() + (torch.diagonal(add) if add.ndim == 2 else add)
        outer = weight[:, None, None] * diff[:, :, None] * diff[:, None, :]
        full_add = add if add.ndim == 2 else add * torch.eye(D, dtype=diff.dtype, device=diff.device)
        if self.kernel == "tied":  # the summed scatter: every component's share of the scale
            return counts, scatter + outer.sum(0) + K * full_add
        return counts, scatter + outer + full_add

    def mclust_map(self, n_k: Tensor, scatter: Tensor, diff: Tensor, prior: MclustPrior, old: Tensor | None,
                   reg: float) -> Tensor:
        """MAP covariances under mclust's prior (see :meth:`augment`), plus ``reg``."""
        counts, augmented = self.augment(n_k, scatter, diff, prior)
        return self.maximise(counts, augmented, reg, old)

    def mclust_log_prior(self, cov: Tensor, diff: Tensor, prior: MclustPrior) -> Tensor:
        """log p(Sigma, means) up to a constant under mclust's prior: -1/2 sum_k of
        extra_k log|Sigma_k| + tr((scale_k + kappa diff_k diff_k^T) Sigma_k^-1), in the
        augmented form whose maximiser :meth:`mclust_map` is."""
        K, D = diff.shape
        zeros = torch.zeros(K, dtype=torch.float64, device=diff.device)
        dense = self.dense(cov, K, D)
        if self.kernel == "diag":
            empty = torch.zeros(K, D, dtype=torch.float64, device=diff.device)
        else:
            empty = torch.zeros(K, D, D, dtype=torch.float64, device=diff.device)
            empty = empty.sum(0) if self.kernel == "tied" else empty
        weight = torch.full((K,), float(prior.means_weight), dtype=torch.float64, device=diff.device)
        counts, added = self.augment(zeros, empty, diff, prior, weight)
        if self.kernel == "diag":
            added = torch.diag_embed(added)
        elif self.kernel == "tied":
            added = added.expand(K, D, D) / K
        chol = torch.linalg.cholesky(dense)
        log_det = 2.0 * torch.log(torch.diagonal(chol, dim1=-2, dim2=-1)).sum(-1)
        trace = torch.diagonal(torch.cholesky_solve(added.contiguous(), chol), dim1=-2, dim2=-1).sum(-1)
        return -0.5 * (counts * log_det + trace).sum()

    @abstractmethod
    def log_prior(self, cov: Tensor, diff: Tensor, prior: Prior) -> Tensor:
        """The log-density (up to a constant) of which :meth:`map_estimate` is the maximiser,
        at covariances ``cov`` and means ``means_prior + diff``: a scalar tensor."""

    @abstractmethod
    def map_estimate(self, n_k: Tensor, scatter: Tensor, diff: Tensor, prior: Prior, old: Tensor | None, reg: float) -> Tensor:
        """MAP covariances under ``prior`` (hmmlearn's update), plus ``reg``; components with
        nothing to estimate from keep ``old``. diff (K, D): new means minus means_prior."""

    # ---------------------------------------------------------------- user input
    def check_features(self, D: int) -> None:
        """ParameterError when the structure does not exist for D features (mclust's
        univariate E and V)."""

    def check_shape(self, value: Tensor, K: int, D: int, name: str) -> None:
        if tuple(value.shape) != self.shape(K, D):
            raise ParameterError(
                f"The parameter '{name}' should have the shape of {self.shape(K, D)}, but got {tuple(value.shape)}"
            )

    def from_precisions(self, precisions: Tensor, K: int, D: int) -> Tensor:
        """Covariances from user-given precisions (scikit-learn's ``precisions_init``
        layout, finite float64), with scikit-learn's messages."""
        name = f"{self.name} precision"
        self.check_shape(precisions, K, D, name)
        if bool((precisions <= 0).any()):
            raise ParameterError(f"'{name}' should be positive")
        return 1.0 / precisions

    def check_covariances(self, cov: Tensor, K: int, D: int, name: str) -> Tensor:
        """User-given covariances (finite float64): the layout, symmetric and positive
        (positive definiteness is checked where they are factored)."""
        self.check_shape(cov, K, D, name)
        if bool((cov <= 0).any()):
            raise ParameterError(f"{name} must be positive")
        return cov

    # ---------------------------------------------------------------- sampling
    @abstractmethod
    def draw(self, cov: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        """Noise with the covariance of each row's component: z (n, D) standard normal."""

    # ---------------------------------------------------------------- unconstrained
    def flatten(self, cov: Tensor) -> Tensor:
        """Covariances as an unconstrained vector (log variances, log-diagonal Cholesky)."""
        return torch.log(cov).reshape(-1)

    def unflatten(self, vector: Tensor, K: int, D: int) -> Tensor:
        return torch.exp(vector).reshape(self.shape(K, D))

    def flat_size(self, K: int, D: int) -> int:
        return self.n_parameters(K, D)


class _Matrix(Structure):
    """Shared by the structures with whole matrices (full: per component; tied: one)."""

    def regularize(self, cov: Tensor, reg: float) -> Tensor:
        return cov + reg * _eye(cov.shape[-1], cov)

    def _batch(self, cov: Tensor) -> Tensor:
        return cov

    def precision_cholesky(self, cov: Tensor, advice: str) -> Tensor:
        batch = self._batch(cov)
        chol = cholesky_or_raise(batch, self.what, advice)
        eye = _eye(cov.shape[-1], cov).expand_as(chol)
        prec_chol = torch.linalg.solve_triangular(chol, eye, upper=False).transpose(-1, -2)
        return prec_chol.reshape(cov.shape)

    def covariance(self, prec_chol: Tensor) -> Tensor:
        eye = _eye(prec_chol.shape[-1], prec_chol)
        u_inv = torch.linalg.solve_triangular(prec_chol, eye.expand_as(prec_chol), upper=True)
        return u_inv.transpose(-1, -2) @ u_inv

    def log_det_precision(self, prec_chol: Tensor, D: int) -> Tensor:
        return torch.log(torch.diagonal(prec_chol, dim1=-2, dim2=-1)).sum(-1)

    def repair(self, cov: Tensor, reg: float) -> Tensor:
        """Clip the eigenvalues of the unregularised part at 0, then regularise again: a
        scatter matrix is PSD, but rounding in its accumulation can leave an eigenvalue
        slightly negative, which no reg may cover."""
        eye = _eye(cov.shape[-1], cov)
        broken = ~torch.isfinite(cov).all(-1).all(-1)[..., None, None]  # nothing to repair: stays invalid
        eig, vec = torch.linalg.eigh(torch.where(broken, eye, cov - reg * eye))
        clipped = (vec * eig.clamp(min=0).unsqueeze(-2)) @ vec.transpose(-1, -2)
        return torch.where(broken, cov, 0.5 * (clipped + clipped.transpose(-1, -2)) + reg * eye)

    def from_precisions(self, precisions: Tensor, K: int, D: int) -> Tensor:
        name = f"{self.name} precision"
        self.check_shape(precisions, K, D, name)
        if not bool(symmetric(precisions).all()):
            raise ParameterError(f"'{name}' should be symmetric, positive-definite")
        lower, info = torch.linalg.cholesky_ex(self._batch(precisions))
        if bool((info != 0).any()):
            raise ParameterError(
                f"'{name}' should be symmetric, positive-definite: a precisions_init matrix has a non-positive eigenvalue"
            )
        eye = _eye(precisions.shape[-1], precisions).expand_as(lower)
        l_inv = torch.linalg.solve_triangular(lower, eye, upper=False)
        return (l_inv.transpose(-1, -2) @ l_inv).reshape(precisions.shape)

    def check_covariances(self, cov: Tensor, K: int, D: int, name: str) -> Tensor:
        self.check_shape(cov, K, D, name)
        if not bool(symmetric(cov).all()):
            raise ParameterError(f"{name} must be symmetric, positive-definite matrices")
        return cov

    def flatten(self, cov: Tensor) -> Tensor:
        chol = torch.linalg.cholesky(self._batch(cov))
        D = cov.shape[-1]
        rows, cols = torch.tril_indices(D, D, -1, device=cov.device)
        diag = torch.log(torch.diagonal(chol, dim1=-2, dim2=-1))
        return torch.cat([diag, chol[:, rows, cols]], 1).reshape(-1)

    def unflatten(self, vector: Tensor, K: int, D: int) -> Tensor:
        per = D * (D + 1) // 2
        v = vector.reshape(-1, per)
        chol = torch.zeros(v.shape[0], D, D, dtype=vector.dtype, device=vector.device)
        rows, cols = torch.tril_indices(D, D, -1, device=vector.device)
        chol[:, rows, cols] = v[:, D:]
        chol.diagonal(dim1=-2, dim2=-1).copy_(torch.exp(v[:, :D]))
        return (chol @ chol.transpose(-1, -2)).reshape(self.shape(K, D))


class Full(_Matrix):
    name, kernel = "full", "full"

    def shape(self, K: int, D: int) -> tuple[int, ...]:
        return (K, D, D)

    def n_parameters(self, K: int, D: int) -> int:
        return K * D * (D + 1) // 2

    def dense(self, cov: Tensor, K: int, D: int) -> Tensor:
        return cov

    def from_dense(self, full: Tensor) -> Tensor:
        return full

    def positive_definite(self, cov: Tensor, K: int) -> Tensor:
        return torch.linalg.cholesky_ex(cov)[1] == 0

    def scatter(self, n_k, sum_x, sum_xx, d, shift_c):
        outer = d[:, :, None] * sum_x[:, None, :]
        return sum_xx - outer - outer.transpose(1, 2) + n_k[:, None, None] * d[:, :, None] * d[:, None, :]

    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        cov = scatter / n_k[:, None, None]
        cov = 0.5 * (cov + cov.transpose(1, 2))  # the float32 block products are not exactly symmetric
        return self.regularize(cov, reg)

    def log_prior(self, cov, diff, prior):
        """-(a/2) log|S_k| - tr(C_k S_k^-1)/2 summed over k, with a = max(covars_weight - D, 0)
        and C_k = covars_prior + means_weight diff_k diff_k^T."""
        _, mw, cp = prior.tensors(cov.device)
        D = cov.shape[-1]
        mw = mw.reshape(-1, 1, 1) if mw.ndim else mw
        return _wishart_log_density(cov, cp + mw * diff[:, :, None] * diff[:, None, :], max(float(prior.covars_weight) - D, 0.0))

    def map_estimate(self, n_k, scatter, diff, prior, old, reg):
        mp, mw, cp = prior.tensors(n_k.device)
        D = scatter.shape[-1]
        mw = mw.reshape(-1, 1, 1) if mw.ndim else mw
        c_n = mw * diff[:, :, None] * diff[:, None, :] + scatter
        denom = max(float(prior.covars_weight) - D, 0.0) + n_k[:, None, None]
        new = (cp + c_n) / torch.where(denom > 0, denom, torch.ones_like(denom))
        cov = new if old is None else torch.where(denom > 0, new, old)
        return self.regularize(0.5 * (cov + cov.transpose(-1, -2)), reg)

    def draw(self, cov: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        return (torch.linalg.cholesky(cov)[labels] @ z[:, :, None])[:, :, 0]


class Tied(_Matrix):
    name, kernel, what = "tied", "tied", "tied covariance"
    shared = True

    def shape(self, K: int, D: int) -> tuple[int, ...]:
        return (D, D)

    def n_parameters(self, K: int, D: int) -> int:
        return D * (D + 1) // 2

    def _batch(self, cov: Tensor) -> Tensor:
        return cov[None]

    def log_det_precision(self, prec_chol: Tensor, D: int) -> Tensor:
        return torch.log(torch.diagonal(prec_chol)).sum()

    def dense(self, cov: Tensor, K: int, D: int) -> Tensor:
        return cov.expand(K, D, D)

    def from_dense(self, full: Tensor) -> Tensor:
        return full[0]

    def positive_definite(self, cov: Tensor, K: int) -> Tensor:
        ok = bool(torch.linalg.cholesky_ex(cov)[1] == 0)
        return torch.full((K,), ok, dtype=torch.bool, device=cov.device)

    def scatter(self, n_k, sum_x, sum_xx, d, shift_c):
        """The summed within-component scatter (D, D) about the new means, from the
        summed scatter about each shift: sum_k (S_k - S1_k d_k^T - d_k S1_k^T + n_k d_k d_k^T)."""
        cross = sum_x.T @ d
        return sum_xx - cross - cross.T + (n_k[:, None] * d).T @ d

    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        cov = scatter / n_k.sum()
        return self.regularize(0.5 * (cov + cov.T), reg)

    def log_prior(self, cov, diff, prior):
        """As full's, with one matrix and C = covars_prior + sum_k means_weight diff_k diff_k^T."""
        _, mw, cp = prior.tensors(cov.device)
        D = cov.shape[-1]
        mw = mw.reshape(-1, 1, 1) if mw.ndim else mw
        scale = cp + (mw * diff[:, :, None] * diff[:, None, :]).sum(0)
        return _wishart_log_density(cov[None], scale[None], max(float(prior.covars_weight) - D, 0.0))

    def map_estimate(self, n_k, scatter, diff, prior, old, reg):
        mp, mw, cp = prior.tensors(n_k.device)
        D = scatter.shape[-1]
        mw = mw.reshape(-1, 1, 1) if mw.ndim else mw
        c_n = (mw * diff[:, :, None] * diff[:, None, :]).sum(0) + scatter
        cov = (cp + c_n) / (max(float(prior.covars_weight) - D, 0.0) + n_k.sum())
        return self.regularize(0.5 * (cov + cov.T), reg)

    def draw(self, cov: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        return z @ torch.linalg.cholesky(cov).T

    def flat_size(self, K: int, D: int) -> int:
        return D * (D + 1) // 2


class Diag(Structure):
    name, kernel = "diag", "diag"
    prior_kind = "diagonal"

    def shape(self, K: int, D: int) -> tuple[int, ...]:
        return (K, D)

    def n_parameters(self, K: int, D: int) -> int:
        return K * D

    def log_det_precision(self, prec_chol: Tensor, D: int) -> Tensor:
        return torch.log(prec_chol).sum(-1)

    def dense(self, cov: Tensor, K: int, D: int) -> Tensor:
        return torch.diag_embed(cov)

    def from_dense(self, full: Tensor) -> Tensor:
        return torch.diagonal(full, dim1=1, dim2=2)

    def variances(self, cov: Tensor, D: int) -> Tensor:
        """(K, D) per-feature variances (the diag kernel's layout)."""
        return cov

    def precisions(self, prec_chol: Tensor, D: int) -> Tensor:
        """(K, D) per-feature precisions (the diag kernel's layout)."""
        return prec_chol.square()

    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        return self.regularize(scatter / n_k[:, None], reg)

    def maximise_observed(self, counts: Tensor, scatter: Tensor, reg: float) -> Tensor | None:
        """Each variance from the rows that observed its feature."""
        return self.regularize(scatter / counts, reg)

    def log_prior(self, cov, diff, prior):
        """sum over k, d of -(a/2) log v - (covars_prior + means_weight diff^2) / (2 v), with
        a = max(covars_weight - 1, 0): the inverse-gamma of which ``_map`` is the mode."""
        _, mw, cp = prior.tensors(cov.device)
        v = self.variances(cov, diff.shape[-1])
        a = max(float(prior.covars_weight) - 1, 0.0)
        return (-0.5 * a * torch.log(v) - 0.5 * (cp + mw * diff.square()) / v).sum()

    def _map(self, n_k, scatter, diff, prior):
        mp, mw, cp = prior.tensors(n_k.device)
        c_n = mw * diff.square() + scatter
        c_d = torch.clamp(max(float(prior.covars_weight) - 1, 0.0) + n_k[:, None], min=1e-5)
        return (cp + c_n) / c_d

    def map_estimate(self, n_k, scatter, diff, prior, old, reg):
        return self.regularize(self._map(n_k, scatter, diff, prior), reg)

    def draw(self, cov: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        return z * cov[labels].sqrt()


class Spherical(Diag):
    """One variance per component; its E-step runs the diag kernel with equal precisions."""

    name = "spherical"
    prior_kind = "spherical"

    def shape(self, K: int, D: int) -> tuple[int, ...]:
        return (K,)

    def n_parameters(self, K: int, D: int) -> int:
        return K

    def log_det_precision(self, prec_chol: Tensor, D: int) -> Tensor:
        return D * torch.log(prec_chol)

    def dense(self, cov: Tensor, K: int, D: int) -> Tensor:
        return cov[:, None, None] * torch.eye(D, dtype=cov.dtype, device=cov.device)

    def from_dense(self, full: Tensor) -> Tensor:
        return torch.diagonal(full, dim1=1, dim2=2).mean(1)

    def variances(self, cov: Tensor, D: int) -> Tensor:
        return cov[:, None].expand(-1, D)

    def precisions(self, prec_chol: Tensor, D: int) -> Tensor:
        return prec_chol.square()[:, None].expand(-1, D)

    def maximise(self, n_k: Tensor, scatter: Tensor, reg: float, old: Tensor | None = None) -> Tensor:
        return self.regularize(scatter / n_k[:, None], reg).mean(1)

    def maximise_observed(self, counts: Tensor, scatter: Tensor, reg: float) -> Tensor | None:
        """One variance per component from every observed value: its squares over their count
        (the mean of the per-feature variances where every value is observed)."""
        return self.regularize(scatter.sum(1) / counts.sum(1), reg)

    def map_estimate(self, n_k, scatter, diff, prior, old, reg):
        return self.regularize(self._map(n_k, scatter, diff, prior), reg).mean(1)

    def draw(self, cov: Tensor, labels: Tensor, z: Tensor) -> Tensor:
        return z * cov[labels].sqrt()[:, None]


STRUCTURES: dict[str, Structure] = {s.name: s for s in (Full(), Tied(), Diag(), Spherical())}
NAMES: tuple[str, ...] = tuple(STRUCTURES)  # scikit-learn's four (the HMMs take these)
# mclust's names (``eigen``): its four models that scikit-learn has are the same objects
MCLUST_NAMES: tuple[str, ...] = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV", "VEV",
                                 "EVV", "VVV", "E", "V")
ALL_NAMES: tuple[str, ...] = NAMES + MCLUST_NAMES
_SAME = {"VII": "spherical", "VVI": "diag", "EEE": "tied", "VVV": "full"}
_FAMILY: dict[str, Structure] = {}


def structure(name: str) -> Structure:
    """The structure called ``name`` (scikit-learn's or mclust's), with a clear error for
    an unknown one."""
    if isinstance(name, str) and name in _SAME:
        name = _SAME[name]
    try:
        return STRUCTURES[name]
    except (KeyError, TypeError):
        pass
    if not _FAMILY:
        from .eigen import family

        _FAMILY.update(family())
    try:
        return _FAMILY[name]
    except (KeyError, TypeError):
        raise ParameterError(f"covariance_type must be one of {list(ALL_NAMES)}, got {name!r}") from None

