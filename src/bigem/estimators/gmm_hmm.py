"""hmmlearn-compatible GMMHMM: a hidden Markov model whose states emit Gaussian mixtures."""

from __future__ import annotations

import numpy as np
import torch

from .._core.errors import DataError, ParameterError
from .._core.types import COVARIANCE_TYPES
from ..em.init import kmeans_plusplus, lloyd, sample_rows
from ..models.hmm_gmm import GMMEmission, GMMEmissionParams
from . import _params
from .hmm import _COMMON_DOC, HMM_KINDS, _BaseHMM, _row_moments


class GMMHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with Gaussian-mixture emissions, like ``hmmlearn.hmm.GMMHMM``.

    The M-step is maximum likelihood (hmmlearn's GMMHMM adds its own priors, so fits
    are not expected to match hmmlearn's digit for digit), with ``min_covar`` added
    to every variance.

    Parameters
    ----------"""
        + _COMMON_DOC
        + """    n_mix : int, default=1
        Gaussians per state.
    covariance_type : {'diag', 'full', 'tied', 'spherical'}, default='diag'
        'tied': one covariance per state, shared by its mixture components (hmmlearn's meaning).
    min_covar : float, default=1e-3
        Added to every variance (initial and after each M-step).

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    weights_ : ndarray (n_components, n_mix)
    means_ : ndarray (n_components, n_mix, n_features)
    covars_ : ndarray
        (K, M, D, D) full, (K, D, D) tied, (K, M, D) diag, (K, M) spherical.
    monitor_ : ConvergenceMonitor
    """
    )
    _emission_letters = "mcw"
    _emission_attributes = ("weights_", "means_", "covars_")

    def __init__(
        self,
        n_components=1,
        n_mix=1,
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        covariance_type="diag",
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmcw",
        init_params="stmcw",
        device="cpu",
        dtype="float32",
        memory_budget=None,
    ):
        self.n_components = n_components
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.covariance_type = covariance_type
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.device = device
        self.dtype = dtype
        self.memory_budget = memory_budget

    def _emission_settings(self, s: dict) -> None:
        o = type(self).__name__
        s["n_mix"] = _params.check_int(self.n_mix, "n_mix", o, 1)
        s["covariance_type"] = _params.check_choice(self.covariance_type, "covariance_type", o, COVARIANCE_TYPES)
        s["min_covar"] = _params.check_float(self.min_covar, "min_covar", o, 0.0)

    def _emission(self, s: dict) -> GMMEmission:
        return GMMEmission(s["n_components"], s["n_mix"], s["covariance_type"], s["min_covar"])

    def _init_emission(self, s: dict, source, generator, engine) -> None:
        K, M = s["n_components"], s["n_mix"]
        if self._needs_init(s, "m", "means_"):
            if source.n_rows < K * M:
                raise DataError(
                    f"Expected n_samples >= n_components * n_mix = {K * M}, got n_samples = {source.n_rows}"
                )
            sample = sample_rows(source.rows, max(20_000, 256 * K * M), generator)
            centres = lloyd(engine, source.rows, kmeans_plusplus(sample, K * M, generator), s["dtype"])
            self.means_ = centres.cpu().numpy().reshape(K, M, -1)
        if self._needs_init(s, "w", "weights_"):
            self.weights_ = np.full((K, M), 1.0 / M)
        if self._needs_init(s, "c", "covars_"):
            _, cov = _row_moments(source)
            D = cov.shape[0]
            cv = cov.numpy() + s["min_covar"] * np.eye(D)
            self.covars_ = {
                "full": np.tile(cv, (K, M, 1, 1)),
                "tied": np.tile(cv, (K, 1, 1)),
                "diag": np.tile(np.diag(cv), (K, M, 1)),
                "spherical": np.full((K, M), np.diag(cv).mean()),
            }[s["covariance_type"]]

    def _emission_params(self, s: dict, emission: GMMEmission) -> GMMEmissionParams:
        K, M, ct = s["n_components"], s["n_mix"], s["covariance_type"]
        means = _params._as_f64(self.means_, "means_")
        D = means.shape[-1] if means.ndim == 3 else -1
        _params._check_shape(means, (K, M, D), "means_")
        weights = _params._as_f64(self.weights_, "weights_")
        _params._check_shape(weights, (K, M), "weights_")
        if bool((weights < 0).any()) or not torch.allclose(weights.sum(1), torch.ones(K, dtype=torch.float64)):
            raise ParameterError("weights_ must be non-negative and each row must sum to 1")
        covars = _params._as_f64(self.covars_, "covars_")
        shapes = {"full": (K, M, D, D), "tied": (K, D, D), "diag": (K, M, D), "spherical": (K, M)}
        _params._check_shape(covars, shapes[ct], "covars_")
        try:
            return emission.make_params(weights, means, covars)
        except ValueError as exc:
            raise ParameterError(f"covars_ must be positive (definite): {exc}") from None

    def _emission_width(self, emission: GMMEmissionParams) -> int:
        return int(emission.flat.means.shape[1])

    def _set_emission(self, p: GMMEmissionParams) -> None:
        s = self._settings()
        K, M = s["n_components"], s["n_mix"]
        self.weights_ = p.weights.numpy().copy()
        self.means_ = p.flat.means.numpy().reshape(K, M, -1).copy()
        self.covars_ = self._emission(s).covars(p).numpy().copy()


HMM_KINDS["GMMHMM"] = GMMHMM
