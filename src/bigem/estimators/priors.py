"""mclust's conjugate prior at the façade: the ``prior`` hyper-parameter, checked, and
resolved against the data into a ``models.covariance.MclustPrior`` at fit time.

mclust's ``defaultPrior(data, G, modelName)`` (Fraley and Raftery, 2007): shrinkage
0.01 towards the data's mean; degrees of freedom D + 2 (3 for one feature); scale the
data's covariance (n - 1 in the denominator) divided by G^(2/D) for the ellipsoidal
models, for the diagonal and spherical ones the mean of the variances so divided, and
for one feature the variance divided by G^2. How each model's M-step then uses it is
mclust's, model by model (``Structure.mclust_terms``; see ``models.eigen``).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
import torch

from .._core.errors import ConvergenceWarning, LikelihoodDecreaseWarning, NumericalError, ParameterError
from .._core.protocols import Task
from ..em.init import RandomResponsibilities
from ..models.covariance import MclustPrior, Structure
from . import _params

KEYS = ("shrinkage", "mean", "dof", "scale")
SHRINKAGE = 0.01


class PriorSpec(_params.Constraint):
    """None, 'default', or a dict overriding some of mclust's defaultPrior's values."""

    def check(self, value, name, owner):
        if value is None or value == "default" and isinstance(value, str):
            return value
        if not isinstance(value, dict):
            raise ParameterError(
                f"The {name!r} parameter of {owner} must be None, 'default' (mclust's defaultPrior) or a dict with "
                f"some of the keys {list(KEYS)}. Got {value!r} instead."
            )
        unknown = sorted(set(map(str, value)) - set(KEYS))
        if unknown:
            raise ParameterError(f"The {name!r} parameter of {owner} has unknown keys {unknown}; use {list(KEYS)}")
        for key, v in value.items():
            arr = np.asarray(v, dtype=np.float64) if _numeric(v) else None
            if arr is None or not np.isfinite(arr).all():
                raise ParameterError(f"prior[{key!r}] must be a finite number or array, got {v!r}")
            if key in ("shrinkage", "dof") and (arr.ndim or float(arr) < 0):
                raise ParameterError(f"prior[{key!r}] must be a number >= 0, got {v!r}")
        return value


def _numeric(value) -> bool:
    if isinstance(value, (str, bytes)):
        return False
    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return False
    return True


class DescribedPrior(MclustPrior):
    """A resolved prior that can say what it is (``prior_``)."""

    def describe(self, offset: torch.Tensor | None = None) -> dict:
        """The hyper-parameters as numpy values, the mean in the data's coordinates (the
        model's plus the source's ``offset``)."""
        as_np = lambda v: np.asarray(v.cpu() if isinstance(v, torch.Tensor) else v, dtype=np.float64)  # noqa: E731
        mean = as_np(self.means_prior) + (0.0 if offset is None else as_np(offset))
        return {"shrinkage": float(self.means_weight), "mean": mean, "dof": float(self.dof),
                "scale": as_np(self.scale) if np.ndim(as_np(self.scale)) else float(as_np(self.scale))}


# The data's moments with gaps (see data_moments): EM passes at most, and the change of the
# mean log-likelihood that ends them (SQUAREM's passes: 42 where plain EM took 92)
GAP_MOMENTS_PASSES = 500
GAP_MOMENTS_TOL = 1e-12
GAP_MOMENTS_RIDGE = 1e-10


def data_moments(source, engine, gaps: bool = False) -> tuple[torch.Tensor, torch.Tensor, float]:
    """The rows' mean (D,), covariance with n - 1 in the denominator (D, D), and n (the sum of
    the weights): one pass, the E-step of a one-component full Gaussian.

    ``gaps``: rows may miss values (``missing_values='fiml'``). The mean and covariance are
    then the one Gaussian's maximum-likelihood estimates under the fit's own assumption
    (values missing at random): EM, each pass completing a row's gaps by their
    conditional mean and adding their conditional covariance, extrapolated by SQUAREM
    (the missing information slows plain EM: 92 passes against 42 on half the values
    missing, benchmarks/bench_prior_gaps.py),
    to ``GAP_MOMENTS_TOL``; it warns where it has not settled in ``GAP_MOMENTS_PASSES``.
    Averages of the observed values, feature by feature or pair by pair, would give a
    covariance that need not be positive definite. Complete rows give the one-pass
    answer."""
    from ..em.driver import fit_em
    from ..models.gaussian import GaussianComponent
    from ..models.mixture import MixtureModel

    model = MixtureModel(GaussianComponent("full", 0.0, torch.float64, gaps=gaps), 1, torch.float64)
    probe = source.take(torch.arange(min(source.n_rows, 1024))).double()
    centre = torch.nan_to_num(probe.nanmean(0, keepdim=True)) if gaps else probe.mean(0, keepdim=True)
    task = Task(model, "e_step_given", (model.params_at(centre),), {"resp_fn": RandomResponsibilities(0, 1)})
    stats = engine.reduce(task, source)
    mean, cov, n = _moments(stats)
    if gaps:
        # a ridge of GAP_MOMENTS_RIDGE of the largest variance: a constant or collinear column
        # has a singular covariance, which the complete rows' one pass gives as it is, and
        # EM's M-step would refuse
        ridge = GAP_MOMENTS_RIDGE * max(float(torch.diagonal(cov).abs().max()), torch.finfo(torch.float64).tiny)
        model = MixtureModel(GaussianComponent("full", ridge, torch.float64, gaps=True), 1, torch.float64)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                start = model.m_step(stats).params  # the first pass's (the gaps completed by the centre)
                best, _ = fit_em(model, engine, source, lambda restart: start, n_init=1,
                                 max_iter=GAP_MOMENTS_PASSES, tol=GAP_MOMENTS_TOL, accelerate="squarem")
            except NumericalError as exc:
                raise NumericalError(f"the data's mean and covariance under missing values (the prior's centre and "
                                     f"scale) could not be estimated ({exc}); pass prior={{'mean': ..., 'scale': ...}} "
                                     "yourself") from None
        if not best.converged:
            warnings.warn(f"the data's mean and covariance under missing values (the prior's centre and scale) did "
                          f"not settle in {GAP_MOMENTS_PASSES} passes of EM: a column observed in very few rows "
                          "leaves them poorly determined; pass prior={'mean': ..., 'scale': ...} yourself, or drop "
                          "that column", ConvergenceWarning, stacklevel=4)
        for w in caught:
            # (on singular data the ridge, added after the M-step's maximum, is no exact EM step,
            # and the objective may fall: a regulariser's centre and scale need no more)
            if not issubclass(w.category, (ConvergenceWarning, LikelihoodDecreaseWarning)):
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        g = best.params.component
        mean, cov = g.means[0].double(), g.covariances[0].double() * n / max(n - 1.0, 1.0)
    return mean.cpu(), cov.cpu(), n


def _moments(stats) -> tuple[torch.Tensor, torch.Tensor, float]:
    """(mean, covariance with n - 1 in the denominator, n) of a one-component pass."""
    comp = stats.component
    n = float(comp.n_k[0])
    mean = comp.shift[0] + comp.sum_x[0] / n
    d = mean - comp.shift[0]
    scatter = comp.sum_xx[0] - n * torch.outer(d, d)
    return mean, scatter / max(n - 1.0, 1.0), n


def resolve_prior(spec, st: Structure, K: int, source, engine, gaps: bool = False) -> DescribedPrior:
    """mclust's defaultPrior for ``st`` and K components on the rows of ``source``, with the
    user's overrides. The mean is in the coordinates the model works in (the source's,
    less its shift). ``gaps``: the rows may miss values (see ``data_moments``)."""
    given = {} if spec == "default" else dict(spec)
    mean, cov, _ = data_moments(source, engine, gaps)
    D = mean.shape[0]
    dof = float(given.get("dof", 3.0 if D == 1 and getattr(st, "name", "") in ("E", "V") else D + 2.0))
    if D == 1:
        default_scale = cov.reshape(()) / K ** 2
    else:
        default_scale = cov / K ** (2.0 / D)
    if st.prior_kind != "matrix":  # inverse-gamma on each variance: one number
        default_scale = torch.diagonal(default_scale.reshape(D, D)).mean() if D > 1 else default_scale
    scale = torch.as_tensor(np.asarray(given["scale"], dtype=np.float64)) if "scale" in given else default_scale
    if st.prior_kind == "matrix" and scale.numel() not in (1, D * D):
        raise ParameterError(f"prior['scale'] must be a ({D}, {D}) matrix for covariance_type={st.name!r}")
    if st.prior_kind != "matrix" and scale.numel() != 1:
        raise ParameterError(f"prior['scale'] must be one number for the diagonal and spherical models, got shape "
                             f"{tuple(scale.shape)}")
    if st.prior_kind == "matrix":
        scale = scale.reshape(D, D) if scale.numel() == D * D else scale.reshape(()) * torch.eye(D, dtype=torch.float64)
        if not bool(torch.linalg.cholesky_ex(scale)[1] == 0):
            raise ParameterError("prior['scale'] must be symmetric positive definite")
    elif float(scale) <= 0:
        raise ParameterError(f"prior['scale'] must be positive, got {float(scale)}")
    prior_mean = torch.as_tensor(np.asarray(given["mean"], dtype=np.float64)) if "mean" in given else mean
    if prior_mean.numel() != D:
        raise ParameterError(f"prior['mean'] must have {D} values, got {prior_mean.numel()}")
    offset = source.shift
    if "mean" in given and offset is not None:  # the model works on the rows less the source's shift
        prior_mean = prior_mean.reshape(D) - offset.double().cpu()
    shrinkage = given.get("shrinkage", SHRINKAGE)
    if not isinstance(shrinkage, numbers.Real):
        shrinkage = float(np.asarray(shrinkage))
    return DescribedPrior(prior_mean.reshape(D), float(shrinkage), 0.0, 0.0, dof, scale.reshape(D, D)
                          if st.prior_kind == "matrix" else scale.reshape(()))
