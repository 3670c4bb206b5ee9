"""scikit-learn compatible variational Gaussian mixture: same parameters, attributes and answers.

The façade only: its hyper-parameters and priors, its initialiser and its fitted
attributes. Execution, inference and persistence are the mixture base's (``_mixture``);
the math is ``models.variational``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from .._core.errors import DataError, ModelFileError, ParameterError
from .._core.protocols import Task
from .._core.types import Chunk
from ..models.covariance import NAMES, structure
from ..models.gaussian import GaussianComponent, GaussianParams
from ..models.mixture import MixtureModel
from ..models.variational import PRIOR_TYPES, VariationalMixture, VariationalParams, VariationalPrior
from . import _params
from ._mixture import _MCLUST_STOPPING, EXACT_MIXTURE_DOC, EXECUTION, ONLINE, _BaseMixture
from ._sklearn_internals import ScikitLearnInternals, expected_log_weights
from .gaussian_mixture import (_PrecisionsKept, given_precision_factors, InitParams, initial_from_data,
                               scikit_learn_sample, warn_float32_rounding)

_POSITIVE = _params.Optional(_params.Float(0.0, closed=False), none_first=True)  # scikit-learn's [None, Interval]


class BayesianGaussianMixture(_PrecisionsKept, ScikitLearnInternals, _BaseMixture):
    __doc__ = (
        """Variational Bayesian Gaussian mixture, a drop-in for ``sklearn.mixture.BayesianGaussianMixture``.

    Variational inference for a Gaussian mixture with a Dirichlet process (stick-breaking,
    truncated at ``n_components``) or Dirichlet distribution prior on the weights, and
    Gaussian-Wishart priors on the components: components the data do not need keep
    weights near zero, so the effective number of components is inferred. Same
    constructor, fitted attributes and answers as scikit-learn's (the same lower bound at
    every iteration from the same initial responsibilities), computed by the Gaussian
    mixture's E-step: on CPU or GPU, streamed in chunks from files of any size, on Dask,
    with sample weights (frequencies: a weight of 2 is a repeated row, priors included).

    Parameters
    ----------
    n_components : int, default=1
        The number of components K (the truncation level for a Dirichlet process).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component its own covariance matrix; 'tied': one shared matrix;
        'diag': each component a diagonal matrix; 'spherical': each a single variance.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (a total over rows, as
        in scikit-learn, not a mean).
    reg_covar : float, default=1e-6
        Added to the diagonal of each component's empirical covariance before the update.
    max_iter : int, default=100
        Maximum iterations per initialisation; 0 only initialises.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'hc'} or HCTree, default='kmeans'
        The initial responsibilities: 'kmeans', k-means++ seeds on a sample and Lloyd
        iterations over all rows; 'k-means++' / 'random_from_data', seeds (k-means++ or
        uniform rows) with every row assigned to its nearest seed; 'random', random
        responsibilities (their M-step leaves sample weights out; they enter from the
        first E-step); 'hc' or an :class:`HCTree`, the classes of mclust's hierarchical
        clustering, as for :class:`GaussianMixture` (not in scikit-learn).
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, default='dirichlet_process'
        The prior on the weights.
    weight_concentration_prior : float or None, default=None
        gamma, the concentration of the weights' prior (> 0); None: 1 / n_components.
        Larger values spread the weight over more components.
    mean_precision_prior : float or None, default=None
        beta0, the precision of the means' prior (> 0); None: 1.
    mean_prior : array-like of shape (n_features,), default=None
        The means' prior; None: the mean of X (weighted by sample_weight).
    degrees_of_freedom_prior : float or None, default=None
        nu0, the Wishart's degrees of freedom (> n_features - 1); None: n_features.
    covariance_prior : float or array-like, default=None
        The Wishart's covariance prior, shaped (D, D) for 'full' and 'tied', (D,) for
        'diag', a float for 'spherical'; None: the covariance of X (ddof=1; weighted by
        sample_weight as frequencies), its diagonal, or its diagonal's mean.
"""
        + EXACT_MIXTURE_DOC.replace(
            """    dtype : {'float32', 'float64'} or torch dtype, default='float32'
        Precision of the per-chunk arithmetic. Statistics and parameters are always
        accumulated and stored in float64.
""",
            """    dtype : {'float32', 'float64'} or torch dtype, default='float64'
        Precision of the per-chunk arithmetic. Statistics and parameters are always
        accumulated and stored in float64. float64 by default (bigem's other mixtures:
        float32): ``tol`` applies to the bound's total, and float32's rounding of the
        statistics moves that total by about 1e-7 of itself an iteration, past the
        default tol of 1e-3 beyond a few thousand rows, where a fit would stop early.
""").replace(_MCLUST_STOPPING, "").replace("stopping : {'gain', 'aitken', 'mclust'}", "stopping : {'gain', 'aitken'}")
        + """
    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        E[pi] (normalised), the posterior means, and the covariances W_k^-1 / nu_k with their
        precisions, laid out as in scikit-learn.
    weight_concentration_ : ndarray of shape (K,), or tuple of two such arrays
        The posterior Dirichlet parameters, or the Beta parameters of the sticks
        ('dirichlet_process').
    mean_precision_ : ndarray of shape (K,)
    degrees_of_freedom_ : ndarray of shape (K,), or float for 'tied'
    weight_concentration_prior_, mean_precision_prior_, mean_prior_, degrees_of_freedom_prior_, covariance_prior_
        The priors the last fit used (from the data where the parameters are None).
    converged_ : bool
    n_iter_, n_passes_ : int
        Iterations of the best run (passes over the data).
    lower_bound_ : float
        The lower bound of the best run at its last iteration (a total over rows).
    lower_bounds_ : list of float
        The best run's lower bound per accepted iteration.
    history_ : list of dict
        Per restart: ``log_likelihood`` (the lower bound), ``seconds`` and ``accepted`` per
        pass, ``converged``, ``n_iter``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    """
    )

    _structural = ("n_components", "covariance_type", "weight_concentration_prior_type")
    _constraints = dict(
        n_components=_params.Int(1),
        covariance_type=_params.Choice(NAMES),
        reg_covar=_params.Float(0.0),
        init_params=InitParams(),
        weight_concentration_prior_type=_params.Choice(PRIOR_TYPES),
        weight_concentration_prior=_POSITIVE,
        mean_precision_prior=_POSITIVE,
        mean_prior=_params.ArrayLike(),
        degrees_of_freedom_prior=_POSITIVE,
        covariance_prior=_params.Passed(),
        **{name: c for name, c in EXECUTION.items() if name not in ONLINE and name != "stopping"},
        # mclust's rule is on the log-likelihood, which a variational fit does not climb
        stopping=_params.Choice(("gain", "aitken")),
    )
    _bound_words = "the evidence lower bound"
    _parameter_names = ("weight_concentration_", "mean_precision_", "means_", "degrees_of_freedom_", "covariances_",
                        "precisions_cholesky_")
    # fitted attribute -> its tensor in a model file
    _fitted_arrays = {"weight_concentration_": "concentration", "mean_precision_": "mean_precision",
                      "means_": "means", "degrees_of_freedom_": "dof", "covariances_": "covariances",
                      "mean_prior_": "mean_prior", "covariance_prior_": "covariance_prior"}

    def __init__(
        self,
        *,
        n_components=1,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weight_concentration_prior_type="dirichlet_process",
        weight_concentration_prior=None,
        mean_precision_prior=None,
        mean_prior=None,
        degrees_of_freedom_prior=None,
        covariance_prior=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        device="cpu",
        dtype="float64",
        chunk_size=None,
        memory_budget="auto",
        cache_budget="1GB",
        engine="auto",
        client=None,
        accelerate=None,
        stopping="gain",
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.memory_budget = memory_budget
        self.cache_budget = cache_budget
        self.engine = engine
        self.client = client
        self.accelerate = accelerate
        self.stopping = stopping

    def _settle(self, values: dict) -> None:
        """Exact passes only: variational inference here has no online form."""
        values["algorithm"] = "em"

    # ------------------------------------------------------------------ not in scikit-learn's API
    @property
    def partial_fit(self):
        raise AttributeError(
            "'BayesianGaussianMixture' object has no attribute 'partial_fit': its updates need every row's "
            "statistics at once (as in scikit-learn, which has none); call fit, which streams files of any size"
        )

    @property
    def bic(self):
        raise AttributeError(
            "'BayesianGaussianMixture' object has no attribute 'bic' (nor 'aic'), as in scikit-learn: its score is a "
            "variational bound, not a likelihood to penalise; compare lower_bound_, or use "
            "bigem.select(..., variational=True) beside GaussianMixture's BIC"
        )

    aic = caic = sabic = bic

    @property
    def bootstrap(self):
        raise AttributeError(
            "'BayesianGaussianMixture' object has no attribute 'bootstrap': the bootstrap resamples a "
            "maximum-likelihood fit, and a variational fit's posteriors (mean_precision_, degrees_of_freedom_, ...) "
            "already describe its parameters' uncertainty. Bootstrap a GaussianMixture of the same components instead"
        )

    def fit(self, X, y=None, sample_weight=None, *, columns=None, callback=None, checkpoint=None,
            checkpoint_every: int = 10):
        """Estimate the posterior by variational inference (coordinate ascent on the lower bound).

        Parameters
        ----------
        X : array-like (n_samples, n_features), tensor, DataFrame, path, glob, folder,
            list of paths, :class:`bigem.Files`, or a Source object
        y : ignored
        sample_weight : array-like of shape (n_samples,) or str, default=None
            Non-negative frequencies: a row of weight 2 counts as two rows, in the
            statistics and in the priors taken from the data. A string names a column of X.
        columns : list of str, default=None
            Features by name (files and DataFrames).
        callback : callable, default=None
            Called with an :class:`bigem.em.driver.IterationInfo` after every iteration
            (its ``log_likelihood`` is the lower bound).
        checkpoint : str or path, default=None
            Save the fit's state there every ``checkpoint_every`` iterations; an existing
            file is resumed from, and removed when the fit completes.
        checkpoint_every : int, default=10

        Returns
        -------
        self
        """
        return super().fit(X, y, sample_weight, columns=columns, callback=callback, checkpoint=checkpoint,
                           checkpoint_every=checkpoint_every)

    # ------------------------------------------------------------------ the family
    def _model(self, s, prior: VariationalPrior | None = None) -> VariationalMixture:
        advice = f"increase reg_covar (now {s.reg_covar:g}), lower n_components, or standardise X"
        component = GaussianComponent(s.covariance_type, s.reg_covar, s.dtype, advice=advice)
        return VariationalMixture(component, s.n_components, s.dtype, s.weight_concentration_prior_type, prior)

    def _fit(self, source, engine, s, callback, checkpoint, checkpoint_every, classes=None):
        fitted = super()._fit(source, engine, s, callback, checkpoint, checkpoint_every, classes)
        if s.dtype == torch.float32:  # rows held in float32: say where they cannot hold the components
            warn_float32_rounding(self, source.shift, s, stacklevel=5)  # from the caller of fit
        return fitted

    _fit_min_rows = 2  # scikit-learn's (its data priors need two rows), with its message

    def _fitting_model(self, model, engine, source, s) -> VariationalMixture:
        """The model with its priors: the given ones, checked against the data's width, and
        the data's mean and covariance where they are None (one pass, weighted), in the
        coordinates of the rows (less the source's shift)."""
        D, owner = source.n_features, type(self).__name__
        st = structure(s.covariance_type)
        nu0 = float(D) if s.degrees_of_freedom_prior is None else s.degrees_of_freedom_prior
        if nu0 <= D - 1.0:
            raise ParameterError(
                f"The parameter 'degrees_of_freedom_prior' should be greater than {D - 1}, but got {nu0:.3f}."
            )
        mean = None if self.mean_prior is None else _params.as_f64(self.mean_prior, "mean_prior")
        if mean is not None:
            _params.check_shape(mean, (D,), "means")
        cov = None if self.covariance_prior is None else _covariance_prior(self.covariance_prior, st.name, D, owner)
        offset = source.shift
        if mean is not None and offset is not None:
            mean = mean - offset.to(mean)
        if mean is None or cov is None:
            data_mean, data_cov = _data_moments(engine, source, st.name, s.reg_covar)
            mean = data_mean if mean is None else mean
            cov = data_cov if cov is None else cov
        prior = VariationalPrior(
            1.0 / s.n_components if s.weight_concentration_prior is None else s.weight_concentration_prior,
            1.0 if s.mean_precision_prior is None else s.mean_precision_prior,
            mean, nu0, cov,
        )
        self._publish_prior(prior.translate(torch.zeros(D, dtype=torch.float64) if offset is None else offset))
        # scikit-learn's: n_features (an int) by default, else the value as given
        self.degrees_of_freedom_prior_ = D if s.degrees_of_freedom_prior is None else self.degrees_of_freedom_prior
        return self._model(s, prior)

    def _publish_prior(self, prior: VariationalPrior) -> None:
        self.weight_concentration_prior_ = prior.weight_concentration
        self.mean_precision_prior_ = prior.mean_precision
        self.mean_prior_ = prior.mean.cpu().numpy().copy()
        self.degrees_of_freedom_prior_ = prior.dof
        cov = prior.covariance.cpu().numpy().copy()
        self.covariance_prior_ = np.float64(cov) if cov.ndim == 0 else cov  # scikit-learn's types

    def _reference_sample(self, n_samples, rs, s):
        return scikit_learn_sample(self, s.covariance_type, n_samples, rs)

    def _initialise(self, model: MixtureModel, engine, source, s, generator: torch.Generator, offset) -> VariationalParams:
        """The update from initial responsibilities (``init_params``), as scikit-learn's
        ``_initialize``."""
        return initial_from_data(model, engine, source, s, generator, offset)

    # scikit-learn scores with the precision factors (the covariances are not read)
    _live_attributes = (*_fitted_arrays, "precisions_cholesky_")
    # the priors are not read to score: scikit-learn's fitted arrays set by hand predict without them
    _required_attributes = tuple(a for a in _fitted_arrays if a not in ("mean_prior_", "covariance_prior_"))

    def _from_live(self, s) -> VariationalParams:
        params = self._from_attributes(s)
        if not hasattr(self, "precisions_cholesky_"):
            return params
        c = params.component
        return dataclasses.replace(params, component=GaussianParams(c.means, c.covariances,
                                                                    given_precision_factors(self, s)))

    def _estimate_log_weights(self) -> np.ndarray:
        self._fitted()
        return expected_log_weights(self.weight_concentration_, self.weight_concentration_prior_type)

    def _publish(self, params: VariationalParams) -> None:
        p = params.component
        tied = self._fit_structure_["covariance_type"] == "tied"
        self.weights_ = params.weights.numpy().copy()
        self.means_ = p.means.numpy().copy()
        self.covariances_ = p.covariances.numpy().copy()
        self.precisions_cholesky_ = p.prec_chol.numpy().copy()
        if structure(self._fit_structure_["covariance_type"]).kernel != "diag":
            self.precisions_ = (p.prec_chol @ p.prec_chol.transpose(-1, -2)).numpy()
        else:
            self.precisions_ = p.prec_chol.square().numpy()
        concentration = params.concentration.numpy().copy()
        self.weight_concentration_ = (concentration[0], concentration[1]) if concentration.ndim == 2 else concentration
        self.mean_precision_ = params.mean_precision.numpy().copy()
        self.degrees_of_freedom_ = float(params.dof[0]) if tied else params.dof.numpy().copy()

    def _from_attributes(self, s) -> VariationalParams:
        """The fitted arrays as parameters: their shapes, positive concentrations and
        precisions, degrees of freedom above n_features - 1 (ParameterError), factorable
        covariances (NumericalError)."""
        K, st = s.n_components, structure(s.covariance_type)
        f64 = dict(dtype=torch.float64)
        concentration = torch.as_tensor(np.asarray(self.weight_concentration_, dtype=np.float64), **f64)
        beta, means, cov = (torch.as_tensor(np.asarray(getattr(self, a), dtype=np.float64), **f64)
                            for a in ("mean_precision_", "means_", "covariances_"))
        dof = torch.as_tensor(np.asarray(self.degrees_of_freedom_, dtype=np.float64), **f64)
        expected_conc = (2, K) if s.weight_concentration_prior_type == "dirichlet_process" else (K,)
        if means.ndim != 2 or means.shape[0] != K or tuple(concentration.shape) != expected_conc or beta.shape != (K,):
            raise ParameterError(f"tensor shapes do not match n_components={K}")
        D = means.shape[1]
        dof = dof.reshape(1).expand(K).clone() if st.name == "tied" and dof.numel() == 1 else dof
        if dof.shape != (K,) or tuple(cov.shape) != st.shape(K, D):
            raise ParameterError(f"degrees_of_freedom_ or covariances_ do not match n_components={K}, {st.name!r}")
        if not (bool((concentration > 0).all()) and bool((beta > 0).all()) and bool((dof > D - 1).all())):
            raise ParameterError("invalid parameters: concentrations and precisions must be positive, degrees of "
                                 "freedom above n_features - 1")
        if st.kernel != "diag" and not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-10, atol=0.0):
            raise ParameterError("invalid parameters: covariances are not symmetric")
        params = self._model(s).variational_params(concentration, beta, means, dof, cov)
        tied = st.name == "tied"
        _params.check_scale("component", means=means, variances=_params.variances_of(cov, st.name, 1 if tied else K),
                            tied=tied)
        return params

    def _centres(self, params: VariationalParams) -> torch.Tensor:
        return params.component.means

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        priors = ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_", "degrees_of_freedom_prior_",
                  "covariance_prior_")
        missing = [a for a in priors if not hasattr(self, a)]
        if missing:  # a model set by hand predicts without them; its file would not continue a fit
            raise ParameterError(f"this {type(self).__name__} has no {', '.join(missing)}: a model file holds the "
                                 "priors that a fit continues with; set them (scikit-learn's fitted model has them), "
                                 "or fit the model, before saving it")
        super().save(path)

    save.__doc__ = _BaseMixture.save.__doc__

    def _fitted_state(self) -> dict:
        return {**super()._fitted_state(), "weight_concentration_prior_": float(self.weight_concentration_prior_),
                "mean_precision_prior_": float(self.mean_precision_prior_),
                "degrees_of_freedom_prior_": _number(self.degrees_of_freedom_prior_)}

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        stored = _params.Stored(state)
        self.weight_concentration_prior_ = stored.number("weight_concentration_prior_")
        self.mean_precision_prior_ = stored.number("mean_precision_prior_")
        dof = stored.number("degrees_of_freedom_prior_")
        self.degrees_of_freedom_prior_ = int(dof) if isinstance(state.get("degrees_of_freedom_prior_"), int) else dof
        D = self.n_features_in_
        mean = np.asarray(self.mean_prior_, dtype=np.float64)
        cov = np.asarray(self.covariance_prior_, dtype=np.float64)
        if cov.shape == (1,) and self._inference_settings().covariance_type == "spherical":
            cov = cov.reshape(())  # files written before 0-d tensors were kept 0-d
        if mean.shape != (D,) or cov.shape != _prior_shape(self._inference_settings().covariance_type, D):
            raise ModelFileError("mean_prior_ or covariance_prior_ do not match n_features_in_")
        self.mean_prior_ = mean
        self.covariance_prior_ = np.float64(cov) if cov.ndim == 0 else cov


def _prior_shape(covariance_type: str, D: int) -> tuple[int, ...]:
    return {"full": (D, D), "tied": (D, D), "diag": (D,), "spherical": ()}[covariance_type]


def _covariance_prior(value, covariance_type: str, D: int, owner: str) -> torch.Tensor:
    """A user's covariance_prior, checked with scikit-learn's messages."""
    if covariance_type == "spherical":
        given = value
        if isinstance(value, np.ndarray) or (not isinstance(value, (bool, str, int, float, np.integer, np.floating))
                                             and np.ndim(value) > 0):
            try:  # an array of one number, of any shape, as scikit-learn takes it (np.var(X) kept as an array)
                array = np.asarray(value, dtype=np.float64)
            except (TypeError, ValueError):
                array = None
            if array is not None and array.size != 1:
                raise ParameterError(f"The parameter 'spherical covariance_prior' should be one number greater than 0 "
                                     f"(a float, or an array of one); got an array of shape {array.shape}")
            if array is not None:
                value = array.reshape(()).item()
                if not (value > 0 and np.isfinite(value)):
                    finite = "" if np.isfinite(value) or np.isnan(value) else "finite and "
                    raise ParameterError(f"The parameter 'spherical covariance_prior' should be {finite}greater than 0., "
                                         f"but got {value:.3f} (in {given!r}).")
        if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not value > 0 \
                or not np.isfinite(value):
            raise ParameterError(
                f"The 'covariance_prior' parameter of {owner} must be None, an array-like or a float in the range "
                f"(0.0, inf). Got {value!r} instead."
            )
        return torch.tensor(float(value), dtype=torch.float64)
    cov = _params.as_f64(value, "covariance_prior")
    _params.check_shape(cov, _prior_shape(covariance_type, D), f"{covariance_type} covariance_prior")
    if covariance_type == "diag":
        if bool((cov <= 0).any()):
            raise ParameterError("'diag precision' should be positive")
    elif not torch.allclose(cov, cov.T) or not bool((torch.linalg.eigvalsh(cov) > 0).all()):
        raise ParameterError(f"'{covariance_type} precision' should be symmetric, positive-definite")
    return cov


@dataclass(frozen=True)
class _Ones:
    """Every row's responsibility to the one component of the data's moments pass."""

    def __call__(self, chunk: Chunk) -> torch.Tensor:
        return torch.ones(chunk.n_rows, 1, dtype=chunk.x.dtype, device=chunk.x.device)


def _data_moments(engine, source, covariance_type: str, reg_covar: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The rows' (weighted) mean (D,) and covariance with ddof=1 in the prior's layout,
    float64, in one pass through ``engine``: a one-component mixture's statistics, summed
    in float64 whatever dtype the rows hold. (The data's covariance is the prior of
    every component, and can be nearly singular, as scikit-learn's is for clusters far
    apart along one direction: float32 sums made it indefinite, and the fit failed.)

    Rows that lie in a subspace (fewer distinct rows than columns, a column that is a sum
    of others) have a singular covariance, which rounding leaves indefinite or not: a
    component with no rows keeps it as its own, so scikit-learn fits or fails by that
    rounding. Where it is singular to rounding, ``reg_covar`` is added to its diagonal,
    as to every covariance a fit estimates (``covariance_prior_`` shows it); a variance
    that rounding took below 0 is 0."""
    kernel = "full" if covariance_type in ("full", "tied") else "diag"
    one = MixtureModel(GaussianComponent(kernel, 0.0, torch.float64), 1, torch.float64)
    probe = source.take(torch.arange(min(source.n_rows, 1024)))
    centre = probe.double().mean(0, keepdim=True).cpu()
    task = Task(one, "e_step_given", (one.params_at(centre),), {"resp_fn": _Ones()})
    stats = engine.reduce(task, source).component
    n = float(stats.n_k[0])
    if not n > 1.0:
        raise DataError(
            f"sample_weight sums to {n:.6g}: the priors taken from the data (their covariance, with ddof=1) need a "
            "total weight above 1; bigem reads sample weights as frequencies, so rescale them to sum to the row "
            "count (w * n / w.sum()), or pass mean_prior and covariance_prior"
        )
    st = structure(kernel)
    d = stats.sum_x / n
    scatter = st.scatter(stats.n_k, stats.sum_x, stats.sum_xx, d, torch.zeros_like(d))[0].cpu()
    mean = (stats.shift + d)[0].cpu()
    cov = scatter / (n - 1.0)
    if not bool(torch.isfinite(cov).all()):  # squares beyond float64's range (values near 1e154 and more)
        raise DataError(f"X's covariance overflows float64 (a column's mean is {float(mean.abs().max()):.3g}, and "
                        "squares beyond about 1.8e308 are infinite): the priors taken from the data cannot be formed; "
                        "rescale X (divide it by a constant), or pass mean_prior and covariance_prior")
    if kernel == "diag":
        cov = cov.clamp(min=0.0)
    elif _singular(cov):
        cov = cov + reg_covar * torch.eye(cov.shape[0], dtype=cov.dtype)
    if covariance_type == "spherical":
        cov = cov.mean()
    return mean, cov


def _singular(cov: torch.Tensor) -> bool:
    """Whether a covariance is singular to float64 rounding: its least eigenvalue within
    D eps of its greatest (a Cholesky factor may still exist, by the rounding's luck)."""
    eigen = torch.linalg.eigvalsh(cov)
    return bool(eigen[0] <= cov.shape[0] * torch.finfo(cov.dtype).eps * eigen[-1].abs())


def _number(value) -> int | float:
    """A number for the model file's JSON, an int kept an int (scikit-learn's
    ``degrees_of_freedom_prior_`` is n_features, an int, by default)."""
    return int(value) if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else float(value)
