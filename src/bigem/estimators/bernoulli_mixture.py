"""A mixture of independent Bernoullis: binary columns (clicks, flags, presence/absence).

The façade only: its hyper-parameters, its component and its fitted attributes.
Execution, inference and persistence are the mixture base's (``_mixture``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.bernoulli import BernoulliComponent, BernoulliParams
from ..models.mixture import MixtureModel, MixtureParams
from . import _params
from ._discrete import DISCRETE, DISCRETE_MISSING_DOC, INIT_DOC, Y_IGNORED, _DiscreteMixture, check_probabilities
from ._mixture import MIXTURE_DOC, SUPERVISION_DOC


class BernoulliMixture(_DiscreteMixture):
    __doc__ = (
        """Mixture of independent Bernoulli distributions (latent class analysis of binary items).

    Each component k holds a probability p_kd that column d is 1; within a component the
    columns are independent. X holds 0/1 values or booleans (any other value is an error
    that names its column and row). X may be anything ``GaussianMixture`` reads: arrays,
    tensors, DataFrames, Parquet/CSV/Arrow/.npy files (streamed), Source objects, Dask
    collections; fitting is exact EM (or online EM), on CPU or GPU.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    alpha : float >= 0, default=1.0
        Pseudo-counts of each value per column and component: p = (alpha + ones) /
        (2 alpha + mass), the MAP under a Beta(alpha + 1, alpha + 1) prior, so that no
        probability is 0 or 1. 1 is Laplace smoothing (scikit-learn's BernoulliNB);
        0 is maximum likelihood (pomegranate, StepMix).
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
"""
        + INIT_DOC.format(space="the 0/1 rows themselves: squared distance is Hamming distance")
        + """    probabilities_init : array-like of shape (n_components, n_features), default=None
        Initial probabilities of a 1.
"""
        + SUPERVISION_DOC.format(default="None", none=Y_IGNORED)
        + MIXTURE_DOC
        + DISCRETE_MISSING_DOC
        + """
    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    probabilities_ : ndarray of shape (n_components, n_features)
        P(x_d = 1) in each component.
    classes_ : ndarray
        The class labels of a semi-supervised fit.
    converged_, n_iter_, n_passes_, lower_bound_, lower_bounds_, history_, n_features_in_, feature_names_in_
        As in :class:`GaussianMixture`.
    """
    )

    _kind = "binary"
    _integer_draws = True
    _init_attribute = "probabilities_init"
    _constraints = dict(DISCRETE, probabilities_init=_params.ArrayLike())
    _fitted_arrays = {"weights_": "weights", "probabilities_": "probabilities"}

    def __init__(
        self,
        n_components=1,
        *,
        alpha=1.0,
        tol=1e-3,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        probabilities_init=None,
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
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.probabilities_init = probabilities_init
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
    def _model(self, s) -> MixtureModel:
        advice = f"increase alpha (now {s.alpha:g}), lower n_components, or try another init_params"
        component = BernoulliComponent(s.alpha, s.dtype, advice=advice, gaps=s.missing_values == "fiml")
        return MixtureModel(component, s.n_components, s.dtype)

    def _component_init(self, model, s, n_features):
        if self.probabilities_init is None:
            return None
        return BernoulliParams(check_probabilities(self.probabilities_init, (s.n_components, n_features),
                                                   "probabilities_init"))

    def _publish(self, params: MixtureParams) -> None:
        self.weights_ = params.weights.numpy().copy()
        self.probabilities_ = params.component.probabilities.numpy().copy()

    def _from_attributes(self, s) -> MixtureParams:
        K = s.n_components
        weights = self._checked_weights(K)
        p = np.asarray(self.probabilities_, dtype=np.float64)
        probabilities = check_probabilities(p, (K, p.shape[-1] if p.ndim == 2 else -1), "probabilities_")
        return MixtureParams(weights, BernoulliParams(probabilities))

    def _centres(self, params: MixtureParams) -> torch.Tensor:
        """Each component's most likely row: its probabilities rounded."""
        return torch.round(params.component.probabilities)
