"""A mixture of independent Poissons: count columns (events, visits, purchases per period).

The façade only: its hyper-parameters, its component and its fitted attributes.
Execution, inference and persistence are the mixture base's (``_mixture``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.poisson import PoissonComponent, PoissonParams
from ..models.mixture import MixtureModel, MixtureParams
from .._core.errors import ParameterError
from . import _params
from ._discrete import DISCRETE, DISCRETE_MISSING_DOC, INIT_DOC, Y_IGNORED, _DiscreteMixture
from ._mixture import MIXTURE_DOC, SUPERVISION_DOC


class PoissonMixture(_DiscreteMixture):
    __doc__ = (
        """Mixture of independent Poisson distributions: one rate per column and component.

    Within a component the columns are independent counts. X holds non-negative integers
    (any other value is an error that names its column and row); counts are read in
    float64 whatever ``dtype`` says (float32 rounds counts from 2**24 up), and the
    log-densities are computed in float64 (their terms cancel). X may be anything
    ``GaussianMixture`` reads: arrays, tensors, DataFrames, Parquet/CSV/Arrow/.npy files
    (streamed), Source objects, Dask collections; exact EM (or online EM), CPU or GPU.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    alpha : float >= 0, default=0.0
        Pseudo-events per column and component: rate = (alpha + counts) / (beta + mass),
        the MAP under a Gamma(alpha + 1, beta) prior. 0 is maximum likelihood, as in
        pomegranate and hmmlearn's PoissonHMM (a rate of 0, for a column that is 0 in
        every row of a component, scores a count above 0 at log-rate -708, not minus
        infinity). alpha > 0 needs beta > 0: with beta = 0 the prior is improper and
        its MAP has no maximum (a component emptied of rows gains alpha log rate as its
        rates grow without bound, so EM empties components), and a fit refuses it.
    beta : float >= 0, default=0.0
        Pseudo-rows per component (the Gamma prior's rate): beta > 0 pulls every rate
        towards alpha / beta.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
"""
        + INIT_DOC.format(space="the counts themselves")
        + """    lambdas_init : array-like of shape (n_components, n_features), default=None
        Initial rates.
"""
        + SUPERVISION_DOC.format(default="None", none=Y_IGNORED)
        + MIXTURE_DOC
        + DISCRETE_MISSING_DOC
        + """
    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    lambdas_ : ndarray of shape (n_components, n_features)
        The rate (expected count) of each column in each component.
    classes_ : ndarray
        The class labels of a semi-supervised fit.
    converged_, n_iter_, n_passes_, lower_bound_, lower_bounds_, history_, n_features_in_, feature_names_in_
        As in :class:`GaussianMixture`.
    """
    )

    _kind = "count"
    _integer_draws = True
    _init_attribute = "lambdas_init"
    _constraints = dict(DISCRETE, beta=_params.Float(0.0), lambdas_init=_params.ArrayLike())
    _fitted_arrays = {"weights_": "weights", "lambdas_": "rates"}

    def __init__(
        self,
        n_components=1,
        *,
        alpha=0.0,
        beta=0.0,
        tol=1e-3,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        lambdas_init=None,
        unlabeled_weight=None,
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        device="cpu",
        dtype="float32",
        chunk_size=None,
        memory_budget="auto",
        cache_budget="1GB",
        algorithm="em",
        batch_size=10_000,
        learning_decay=0.7,
        learning_offset=10.0,
        engine="auto",
        client=None,
        accelerate=None,
        stopping="gain",
        missing_values="error",
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.beta = beta
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.lambdas_init = lambdas_init
        self.unlabeled_weight = unlabeled_weight
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.memory_budget = memory_budget
        self.cache_budget = cache_budget
        self.algorithm = algorithm
        self.batch_size = batch_size
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.engine = engine
        self.client = client
        self.accelerate = accelerate
        self.stopping = stopping
        self.missing_values = missing_values

    # ------------------------------------------------------------------ the family
    # refused when a fit starts, not when the model is made: a model saved with this prior
    # (once the default) still loads, predicts and scores
    def _fit(self, source, engine, s, *args, **kwargs):
        _refuse_improper(s)
        return super()._fit(source, engine, s, *args, **kwargs)

    def _partial_fit(self, source, engine, s, *args, **kwargs):
        _refuse_improper(s)
        return super()._partial_fit(source, engine, s, *args, **kwargs)

    def _model(self, s) -> MixtureModel:
        advice = "lower n_components, or try another init_params"
        component = PoissonComponent(s.alpha, s.beta, s.dtype, advice=advice, gaps=s.missing_values == "fiml")
        return MixtureModel(component, s.n_components, s.dtype)

    def _component_init(self, model, s, n_features):
        if self.lambdas_init is None:
            return None
        return PoissonParams(check_rates(self.lambdas_init, (s.n_components, n_features), "lambdas_init"))

    def _publish(self, params: MixtureParams) -> None:
        self.weights_ = params.weights.numpy().copy()
        self.lambdas_ = params.component.rates.numpy().copy()

    def _from_attributes(self, s) -> MixtureParams:
        K = s.n_components
        weights = self._checked_weights(K)
        lam = np.asarray(self.lambdas_, dtype=np.float64)
        rates = check_rates(lam, (K, lam.shape[-1] if lam.ndim == 2 else -1), "lambdas_")
        _params.check_scale("component", rates=rates)
        return MixtureParams(weights, PoissonParams(rates))

    def _centres(self, params: MixtureParams) -> torch.Tensor:
        """Each component's most likely row: its rates rounded down (the Poisson mode)."""
        return torch.floor(params.component.rates)


def check_rates(value, shape: tuple[int, ...], name: str) -> torch.Tensor:
    """Rates given by the user or read from a file: the shape, finite, non-negative."""
    rates = _params.as_f64(value, name)
    _params.check_shape(rates, shape, name)
    if bool((rates < 0).any()):
        raise ParameterError(f"{name} must hold non-negative rates; got a minimum of {float(rates.min()):.6g}")
    return rates


def _refuse_improper(s) -> None:
    """alpha > 0 with beta = 0: a prior whose MAP has no maximum (see the class docstring)."""
    if s.alpha > 0 and s.beta == 0:
        raise ParameterError(
            f"alpha={s.alpha!r} with beta=0 is an improper Gamma prior on the rates, whose MAP has no maximum: a "
            "component emptied of rows gains alpha log(rate) as its rates grow without bound, so EM empties "
            "components; give beta > 0 (pseudo-rows: the rates shrink towards alpha / beta), or alpha=0 (maximum "
            "likelihood)"
        )
