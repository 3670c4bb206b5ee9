"""hmmlearn-compatible GMMHMM: a hidden Markov model whose states emit Gaussian mixtures."""

from __future__ import annotations

from functools import partial

import numpy as np
import torch

from .._core.draws import fresh_draws
from .._core.errors import CollapsedStateWarning, DataError, NumericalError, ParameterError
from ..em.init import SEED_SAMPLE_ROWS, converged_kmeans, fill_gaps, kmeans_centres, sample_rows
from ..models.covariance import NAMES, symmetric
from ..models.hmm import Mend
from ..models.hmm_gmm import GMMEmission, GMMEmissionParams, GMMPrior
from ..models.kmeans import KMeansModel
from . import _params
from .hmm import COMMON_DOC, HMMLEARN_KMEANS_INIT, _BaseHMM, _common, _normal_emitter


class GMMHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with Gaussian-mixture emissions, a drop-in for ``hmmlearn.hmm.GMMHMM``.

    The M-step is hmmlearn's, to the digit: the MAP update under its priors below, each
    covariance taken about the means the E-step used (as hmmlearn accumulates it). Under
    the default priors that is maximum likelihood for 'full', 'tied' and 'diag'; for
    'spherical', hmmlearn's default prior divides each scatter by D (N + 1) - n_mix
    rather than D N.

    Parameters
    ----------"""
        + COMMON_DOC
        + """    n_mix : int, default=1
        Gaussians per state.
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance that initialises ``covars_`` (as
        hmmlearn does), and to a Gaussian's covariance that collapses in an M-step
        (singular: a constant feature, fewer rows than features), with a
        ``CollapsedStateWarning``; 0: such a collapse raises instead.
    weights_prior : float or array (n_components, n_mix), default=1.0
        Dirichlet concentrations of each state's mixture weights (1: no prior).
    means_prior, means_weight : float or array, default=0.0
        Normal prior on each mean (hmmlearn's): its mean (n_components, n_mix,
        n_features), and its precision as a multiple of the Gaussian's (n_components,
        n_mix); 0: no prior.
    covars_prior, covars_weight : float or array, default=None
        Prior on the covariances (hmmlearn's parametrisation): for 'full' and 'tied' an
        inverse Wishart's scale matrix and degrees of freedom, for 'diag' and
        'spherical' an inverse gamma's shape and scale. None: hmmlearn's defaults
        (full: 0 and -(n_features + 2); tied: 0 and -(n_mix + n_features + 1); diag: -1.5
        and 0; spherical: -(n_mix + 2) / 2 and 0).
    covariance_type : {'diag', 'full', 'tied', 'spherical'}, default='diag'
        'tied': one covariance per state, shared by its mixture components (hmmlearn's meaning).

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    weights_ : ndarray (n_components, n_mix)
    means_ : ndarray (n_components, n_mix, n_features)
    covars_ : ndarray
        (K, M, D, D) full, (K, D, D) tied, (K, M, D) diag, (K, M) spherical.
    monitor_ : ConvergenceMonitor
    n_passes_ : int
        Passes over the data the fit took (with ``accelerate``, rejected extrapolations too).
    """
    )
    _emission_letters = "mcw"
    _emission_attributes = ("weights_", "means_", "covars_")
    _structural = ("n_components", "n_mix", "covariance_type")
    _constraints = dict(
        _common("mcw"), n_mix=_params.Int(1), covariance_type=_params.Choice(NAMES), min_covar=_params.Float(0.0),
        weights_prior=_params.FiniteArray(non_negative=True), means_prior=_params.FiniteArray(),
        means_weight=_params.FiniteArray(non_negative=True),
        covars_prior=_params.Optional(_params.FiniteArray()), covars_weight=_params.Optional(_params.FiniteArray()),
    )

    def __init__(
        self,
        n_components=1,
        n_mix=1,
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        weights_prior=1.0,
        means_prior=0.0,
        means_weight=0.0,
        covars_prior=None,
        covars_weight=None,
        algorithm="viterbi",
        covariance_type="diag",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmcw",
        init_params="stmcw",
        implementation="log",
        device="cpu",
        dtype="float32",
        memory_budget=None,
        accelerate=None,
        stopping="gain",
        missing_values="error",
        engine="local",
        client=None,
    ):
        super().__init__(n_components, startprob_prior, transmat_prior, algorithm, random_state, n_iter, tol, verbose,
                         params, init_params, device, dtype, memory_budget, accelerate, stopping, missing_values,
                         engine, implementation, client)
        self.n_mix = n_mix
        self.min_covar = min_covar
        self.weights_prior = weights_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
        self.covariance_type = covariance_type

    def _advice(self, s) -> str:
        floor = "set min_covar > 0" if s.min_covar <= 0 else "raise min_covar"
        return (f"{floor} (now {s.min_covar:g}) to floor a collapsed covariance, give covars_prior a proper prior, "
                "lower n_mix or n_components, or standardise X")

    def _prior(self, s) -> GMMPrior:
        return GMMPrior(s.weights_prior, s.means_prior, s.means_weight, s.covars_prior, s.covars_weight)

    def _check_features(self, source) -> None:
        """The data's width, and the priors' shapes against it: a prior that does not
        broadcast fails here, before initialisation sets any attribute."""
        super()._check_features(source)
        s = self._settings()
        self._prior(s).resolved(s.n_components, s.n_mix, source.n_features, s.covariance_type, "cpu")

    def _emission(self, s, n_features=None) -> GMMEmission:
        return GMMEmission(s.n_components, s.n_mix, s.covariance_type, self._prior(s), s.dtype, advice=self._advice(s),
                           gaps=s.missing_values == "fiml")

    def _mend(self, s, emission: GMMEmission) -> Mend | None:
        """A Gaussian whose covariance collapses gets min_covar on its diagonal, as
        GaussianHMM's states do (hmmlearn would fail or go NaN); 0: the fit raises."""
        if s.min_covar <= 0:
            return None
        return Mend(partial(emission.floor, amount=s.min_covar), emission.collapsed, emission.decrease_tolerance,
                    f"min_covar={s.min_covar:g} was added to the diagonal of its collapsed Gaussians",
                    CollapsedStateWarning)

    def _needs_moments(self, s) -> bool:
        return self._will_init(s, "c", "covars_")

    def _init_emission(self, s, source, summary, generator, engine) -> None:
        K, M = s.n_components, s.n_mix
        if self._needs_init(s, "m", "means_"):
            if source.n_rows < K:  # a state with fewer rows than n_mix draws its means (hmmlearn's fallback)
                raise DataError(f"Expected n_samples >= n_components = {K}, got n_samples = {source.n_rows}")
            self.means_ = self._state_centres(s, source, generator, engine)
        if self._needs_init(s, "w", "weights_"):
            self.weights_ = np.full((K, M), 1.0 / M)
        if self._needs_init(s, "c", "covars_"):
            cov = summary.covariance
            D = cov.shape[0]
            cv = cov.numpy() + s.min_covar * np.eye(D)
            self.covars_ = {
                "full": np.tile(cv, (K, M, 1, 1)),
                "tied": np.tile(cv, (K, 1, 1)),
                "diag": np.tile(np.diag(cv), (K, M, 1)),
                "spherical": np.full((K, M), cv.mean()),  # hmmlearn's: every entry's mean, covariances too
            }[s.covariance_type]

    def _state_centres(self, s, source, generator: torch.Generator, engine) -> np.ndarray:
        """hmmlearn's initial means (K, M, D): k-means of K centres over all rows, then, per
        state, k-means of M centres over its rows (of a row sample, so memory stays
        bounded), each the best of hmmlearn's 10 seedings; a state with fewer sampled rows than M draws its means from a normal
        about the centres' mean with the sample's covariance (hmmlearn's fallback). The
        rows alone decide it, never ``lengths``."""
        K, M = s.n_components, s.n_mix
        rows = source.rows
        draws = fresh_draws(generator)  # hmmlearn's KMeans draws from a new RandomState each time
        sample = fill_gaps(sample_rows(rows, max(SEED_SAMPLE_ROWS, 256 * K * M), draws))
        kmeans = KMeansModel(K, s.dtype, gaps=s.missing_values == "fiml")
        states = kmeans_centres(kmeans, KMeansModel(K, torch.float64), engine, rows, sample, K, draws,
                                n_init=HMMLEARN_KMEANS_INIT)
        label = torch.cdist(sample.double(), states.to(sample.device)).argmin(1)
        means = []
        for k in range(K):
            own = sample[label == k]
            if own.shape[0] >= M:
                means.append(converged_kmeans(KMeansModel(M, torch.float64), own, M, fresh_draws(generator),
                                              n_init=HMMLEARN_KMEANS_INIT).cpu())
            else:
                D = states.shape[1]
                cov = torch.cov(sample.double().T).reshape(D, D).cpu() + s.min_covar * torch.eye(D, dtype=torch.float64)
                z = torch.randn(M, D, generator=generator, dtype=torch.float64)
                means.append(states.mean(0).cpu() + z @ torch.linalg.cholesky(cov).T)
        centres = torch.stack(means)
        return (centres if rows.shift is None else centres + rows.shift.cpu()).numpy()

    def _hmmlearn_emitter(self):
        """hmmlearn's: the mixture component by ``choice`` with the state's weights, then
        ``multivariate_normal`` of its mean and covariance (tied: the state's)."""
        means = np.asarray(self.means_, dtype=np.float64)
        K, M, D = means.shape
        cov, ct = np.asarray(self.covars_, dtype=np.float64), self._inference_settings().covariance_type
        if ct == "tied":
            full = np.broadcast_to(cov[:, None], (K, M, D, D))
        elif ct == "full":
            full = cov
        elif ct == "diag":
            full = cov[..., :, None] * np.eye(D)
        else:
            full = cov[..., None, None] * np.eye(D)
        normal = _normal_emitter(means, np.ascontiguousarray(full))
        weights = np.asarray(self.weights_, dtype=np.float64)
        return lambda state, rs: normal((state, rs.choice(M, p=weights[state])), rs)

    def _emission_params(self, s, emission: GMMEmission) -> GMMEmissionParams:
        K, M, ct = s.n_components, s.n_mix, s.covariance_type
        means = _params.as_f64(self.means_, "means_")
        if means.ndim != 3:  # hmmlearn's words
            raise ParameterError(f"means_ must have shape (n_components, n_mix, n_features) = ({K}, {M}, "
                                 f"n_features), actual shape: {tuple(means.shape)}")
        D = means.shape[-1]
        _params.check_shape(means, (K, M, D), "means_")
        weights = _params.as_f64(self.weights_, "weights_")
        _params.check_shape(weights, (K, M), "weights_")
        if bool((weights < 0).any()) or not torch.allclose(weights.sum(1), torch.ones(K, dtype=torch.float64)):
            raise ParameterError("weights_ must be non-negative and each row must sum to 1")
        covars = _params.as_f64(self.covars_, "covars_")
        shapes = {"full": (K, M, D, D), "tied": (K, D, D), "diag": (K, M, D), "spherical": (K, M)}
        _params.check_shape(covars, shapes[ct], "covars_")
        if ct in ("full", "tied"):
            _check_symmetric(covars)
        try:
            return emission.make_params(weights, means, covars)
        except NumericalError as exc:
            raise ParameterError(f"covars_ must be positive (definite): {exc}") from None

    def _emission_width(self, emission: GMMEmissionParams) -> int:
        return int(emission.flat.means.shape[1])

    def _check_scale(self, s, emission: GMMEmissionParams) -> None:
        K, flat = s.n_components, emission.flat
        kind = "full" if s.covariance_type in ("full", "tied") else s.covariance_type  # flat: one matrix per Gaussian
        _params.check_scale("state", means=flat.means.reshape(K, -1),
                            variances=_params.variances_of(flat.covariances, kind, K))

    def _centres(self, s, emission: GMMEmissionParams) -> torch.Tensor:
        return emission.flat.means

    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        """hmmlearn's counts, verbatim: its mixture weights count n_mix - 1 in all."""
        K, M, D = s.n_components, s.n_mix, n_features
        cov = {"spherical": K * M, "diag": K * M * D, "full": K * M * D * (D + 1) // 2, "tied": K * D * (D + 1) // 2}
        return {"m": K * M * D, "c": cov[s.covariance_type], "w": M - 1}

    def _set_emission(self, p: GMMEmissionParams) -> None:
        s = self._settings()
        K, M = s.n_components, s.n_mix
        self.weights_ = p.weights.numpy().copy()
        self.means_ = p.flat.means.numpy().reshape(K, M, -1).copy()
        self.covars_ = self._emission(s).covars(p).numpy().copy()


def _check_symmetric(covars: torch.Tensor) -> None:
    """hmmlearn's test (:func:`~bigem.models.covariance.symmetric`) and words, naming the
    first state (and mixture) whose matrix fails it."""
    close = symmetric(covars)
    if not bool(close.all()):
        where = [int(i) for i in torch.nonzero(~close)[0]]
        name = f"state #{where[0]}" + (f", mixture #{where[1]}" if len(where) == 2 else "")
        raise ParameterError(f"Covariance of {name} is not symmetric")
