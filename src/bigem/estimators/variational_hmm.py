"""hmmlearn's variational HMMs: VariationalGaussianHMM and VariationalCategoricalHMM.

Same constructor parameters and defaults, fitted attributes (the priors and posteriors
``*_prior_`` / ``*_posterior_``, the point estimates ``startprob_``, ``transmat_``,
``means_``, ``covars_``, ``emissionprob_``) and methods as hmmlearn 0.3, fitted by
variational Bayes (``models.variational_hmm``) on the same batched forward-backward
as the other HMMs. ``monitor_.history`` holds hmmlearn's evidence lower bound of each
iteration. Inference (score, predict, decode, sample) uses the point estimates, as
hmmlearn's does. Differences, all deliberate:

* the point estimates are set after every fit whatever ``params`` holds (hmmlearn sets
  ``startprob_`` and the others only when their letter is in ``params``);
* ``beta_posterior_`` and ``dof_posterior_`` start from the k-means cluster sizes as
  in hmmlearn, but at least 1 and n_features: an empty or tiny cluster would give an
  improper start (hmmlearn's bound is then NaN);
* ``aic`` and ``bic`` (hmmlearn's variational models have neither) evaluate the point
  estimates, with hmmlearn's count of the variational parameters;
* bigem's ``device``, ``dtype``, ``memory_budget``, ``engine`` and ``client``; X may be
  files, as for the other HMMs. On ``engine='dask'`` or ``'torch'`` the expected
  statistics of each partition (process) are summed as the other HMMs' are; the
  posterior update and the bound read only the sum.
"""

from __future__ import annotations

import logging

import numpy as np
import torch

from .._core.draws import fresh_numpy
from .._core.errors import DataError, NumericalError, ParameterError
from .._core.protocols import Task
from ..models.categorical import CategoricalComponent, CategoricalParams
from ..models.covariance import NAMES, structure
from ..models.gaussian import GaussianComponent, GaussianParams
from ..models.hmm import HMMParams
from ..models.kmeans import KMeansModel
from ..models.variational_hmm import (DirichletCategorical, DirichletParams, NormalWishart, NormalWishartParams,
                                      VariationalHMMModel, VariationalHMMParams)
from . import _params
from .hmm import ENGINE_DOC, CategoricalHMM, ConvergenceMonitor, GaussianHMM, _common, _dirichlet_rows

__all__ = ["VariationalGaussianHMM", "VariationalCategoricalHMM"]

_log = logging.getLogger(__name__)

# parameters of bigem's other HMMs that variational Bayes does not take: fixed
_FIXED = dict(accelerate=None, stopping="gain", missing_values="error")


def _fixed_and_monitor(est) -> None:
    """The settings a variational HMM fixes (``_FIXED``), and hmmlearn's monitor from
    construction, there to replace before a fit as on every HMM."""
    for name, value in _FIXED.items():
        setattr(est, name, value)
    est.monitor_ = ConvergenceMonitor(est.tol, est.n_iter, est.verbose)

VARIATIONAL_DOC = """
    n_components : int, default=1
        Number of hidden states K.
    startprob_prior : float or array of shape (n_components,), default=None
        Dirichlet concentration of the prior on the start probabilities (None: 1 / K).
    transmat_prior : float or array of shape (n_components, n_components), default=None
        Dirichlet concentration of the prior on each row of the transitions (None: 1 / K).
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder used by ``predict`` and ``decode``.
    random_state : int, RandomState, Generator or None, default=None
        Seed for initialisation and sampling.
    n_iter : int, default=100
        Maximum iterations.
    tol : float, default=1e-6
        Convergence threshold on the change of the lower bound (a total); any float
        (negative or -inf: run all ``n_iter`` iterations).
    verbose : bool, default=False
        Print the lower bound and its change after each iteration.
    params : str
        Letters of the posteriors each iteration updates ('s' start, 't' transitions,
        and the emission's letters).
    init_params : str
        Letters of the priors and posteriors ``fit`` initialises; the others must be set.
    implementation : {'log', 'scaling'}, default='log'
        hmmlearn's choice of forward-backward arithmetic, accepted so its code runs
        unchanged; both give the same answers to rounding, and so does bigem's one pass.
    device : str or torch.device, default='cpu'
        Where the arithmetic runs ('cpu', 'cuda', ...).
    dtype : {'float32', 'float64'} or torch dtype, default='float64'
        Precision of the forward-backward arithmetic; statistics and posteriors are
        float64. float64 by default (bigem's other HMMs: float32): hmmlearn's ``tol`` of
        1e-6 on the bound's total is below float32's rounding of it on all but tiny data.
    memory_budget : int or str, default=None
        Memory for a batch of sequences in flight (bytes, or a string such as '1GB');
        None: '128MB' on the CPU, '1GB' on a GPU.
""" + ENGINE_DOC

_COMMON_ATTRIBUTES = """
    startprob_prior_, startprob_posterior_ : ndarray (n_components,)
        Dirichlet concentrations of the start probabilities' prior and posterior.
    transmat_prior_, transmat_posterior_ : ndarray (n_components, n_components)
        The same for each row of the transition matrix.
    startprob_, transmat_ : ndarray
        The posterior means (the posteriors normalised), which inference uses.
    startprob_subnorm_, transmat_subnorm_ : ndarray
        exp E[log p] under the posteriors the fit's last step started from (hmmlearn's
        sub-normalised parameters, as its fit leaves them; a categorical model also has
        ``emissionprob_log_subnorm_``, E[log p] of its symbols). Set by ``fit`` and kept
        in model files; a model whose posteriors were set by hand has none.
    monitor_ : ConvergenceMonitor
        ``history``: the evidence lower bound entering each iteration (hmmlearn's,
        which leaves out the constant -n_samples n_features / 2 log(2 pi) of Gaussian
        emissions); ``iter``, ``converged``.
    n_passes_ : int
        Passes over the data the fit took.
"""


def _array(value, shape: tuple[int, ...], name: str, low: float | None = 0.0) -> torch.Tensor:
    """A float64 tensor of ``shape`` (ParameterError naming ``name`` otherwise), every
    entry above ``low`` (None: any)."""
    t = _params.as_f64(value, name)
    _params.check_shape(t, shape, name)
    if low is not None and bool((t <= low).any()):
        raise ParameterError(f"{name} must be greater than {low:g} everywhere, but holds {float(t.min()):.6g}")
    return t


def _broadcast(value, shape: tuple[int, ...], name: str, owner: str) -> np.ndarray:
    try:
        return np.array(np.broadcast_to(np.asarray(value, dtype=np.float64), shape))
    except ValueError:
        raise ParameterError(f"The {name!r} parameter of {owner} must broadcast to shape {shape}, "
                             f"got {np.shape(value)}") from None


class _Variational:
    """What both variational HMMs add to their family's HMM: priors and posteriors,
    fitted by variational Bayes; inference runs the family's HMM on the point estimates."""

    _emission_groups: dict[str, tuple[str, ...]] = {}
    _kept_arrays = {"startprob_subnorm_": "startprob_subnorm", "transmat_subnorm_": "transmat_subnorm"}

    @property
    def _fitted_arrays(self) -> dict[str, str]:
        names = ("startprob_prior_", "startprob_posterior_", "transmat_prior_", "transmat_posterior_",
                 *(n for group in self._emission_groups.values() for n in group))
        return {name: name for name in names}

    def _settle(self, values: dict) -> None:
        K = values["n_components"]
        for name in ("startprob_prior", "transmat_prior"):
            if values[name] is None:
                values[name] = 1.0 / K
        super()._settle(values)
        for name in ("startprob_prior", "transmat_prior"):
            if bool((values[name] <= 0).any()):
                raise ParameterError(f"The {name!r} parameter of {type(self).__name__} must be positive (a Dirichlet "
                                     f"concentration). Got {getattr(self, name)!r}.")

    def _needs_group(self, s, code: str, names: tuple[str, ...]) -> bool:
        """Whether ``fit`` initialises the attributes ``names`` of letter ``code``: its
        letter is in init_params, or one of them is not set (hmmlearn's rule). Those set
        are overwritten then, with hmmlearn's log message (hmmlearn's checks stop at the
        group's first attribute: it names that one, if set)."""
        if code in s.init_params:
            if hasattr(self, names[0]):
                _log.warning("Even though the %r attribute is set, it will be overwritten during initialization "
                             "because 'init_params' contains %r", names[0], code)
            return True
        return not all(hasattr(self, n) for n in names)

    def _init(self, s, source, summary, generator, engine) -> None:
        """hmmlearn's start: prior concentrations from the settings, posteriors drawn from
        Dirichlets scaled to the expected counts (sequences; rows per state)."""
        K = s.n_components
        rs = fresh_numpy(generator)  # hmmlearn's draws, for an int random_state
        if self._needs_group(s, "s", ("startprob_posterior_", "startprob_prior_")):
            self.startprob_prior_ = s.startprob_prior.numpy().copy()
            n_sequences = len(source.lengths)
            self.startprob_posterior_ = _dirichlet_rows(np.full(K, 1.0 / K), generator, rs) * n_sequences
        if self._needs_group(s, "t", ("transmat_posterior_", "transmat_prior_")):
            self.transmat_prior_ = s.transmat_prior.numpy().copy()
            draws = _dirichlet_rows(np.full((K, K), 1.0 / K), generator, rs)
            self.transmat_posterior_ = draws * source.n_rows / K
        self._init_emission(s, source, summary, generator, engine)
        self._warn_degenerate(s, source)

    def _fit_start(self, s) -> VariationalHMMParams:
        """The priors and posteriors the attributes hold, validated."""
        K = s.n_components
        return VariationalHMMParams(
            _array(self.startprob_posterior_, (K,), "startprob_posterior_"),
            _array(self.transmat_posterior_, (K, K), "transmat_posterior_"),
            self._variational_emission(s),
            _array(self.startprob_prior_, (K,), "startprob_prior_"),
            _array(self.transmat_prior_, (K, K), "transmat_prior_"),
        )

    def _fit_end(self, q: VariationalHMMParams) -> None:
        q = q.to("cpu")
        self.startprob_posterior_ = q.start.numpy().copy()
        self.transmat_posterior_ = q.trans.numpy().copy()
        self.startprob_prior_ = q.start_prior.numpy().copy()
        self.transmat_prior_ = q.trans_prior.numpy().copy()
        self._set_posterior(q.emission)
        self._set_params(self._point(q))

    def _last_step_from(self, q: VariationalHMMParams) -> None:
        """hmmlearn's ``startprob_subnorm_`` and ``transmat_subnorm_`` (and a categorical
        model's ``emissionprob_log_subnorm_``): exp E[log p] under the Dirichlet
        posteriors the last step started from, which hmmlearn's fit leaves in place."""
        q = q.to("cpu")
        self.startprob_subnorm_ = np.exp(_expected_log(q.start))
        self.transmat_subnorm_ = np.exp(_expected_log(q.trans))
        self._last_emission_from(q.emission)

    def _last_emission_from(self, emission) -> None:
        pass

    def _point(self, q: VariationalHMMParams) -> HMMParams:
        """The posterior means, as the family's HMM takes them."""
        return HMMParams(q.start / q.start.sum(), q.trans / q.trans.sum(1, keepdim=True), self._point_emission(q.emission))

    def _restore(self, state: dict) -> None:
        """A model file's posteriors, checked as user-set ones are, give the point
        estimates; the family's checks and monitor follow."""
        self.n_features = _params.Stored(state).count("n_features", low=1)
        s = self._settings()
        try:
            q = self._fit_start(s)
            point = self._point(q)
        except (NumericalError, ParameterError) as exc:
            raise ParameterError(f"invalid parameters ({exc}); the file is damaged") from None
        self._set_posterior(q.emission)  # in the attributes' own types (a tied dof: a number)
        self.startprob_, self.transmat_ = point.startprob.numpy(), point.transmat.numpy()
        self._set_emission(point.emission)
        self._check_kept(s)
        super()._restore(state)

    def _check_kept(self, s) -> None:
        """The sub-normalised parameters a file holds: each of its shape, and within what
        exp E[log p] of a Dirichlet can be (probabilities in (0, 1]; their logs <= 0)."""
        K, M = s.n_components, int(self.n_features)
        shapes = {"startprob_subnorm_": (K,), "transmat_subnorm_": (K, K), "emissionprob_log_subnorm_": (K, M)}
        for attr in self._kept_arrays:
            if not hasattr(self, attr):
                continue
            value = np.asarray(getattr(self, attr))
            if value.shape != shapes[attr]:
                raise ParameterError(f"invalid parameters ({attr} has shape {value.shape}, expected "
                                     f"{shapes[attr]}); the file is damaged")
            low, high = (-np.inf, 0.0) if attr.endswith("log_subnorm_") else (0.0, 1.0)
            if ((value <= low) | (value > high)).any():
                raise ParameterError(f"invalid parameters ({attr} holds values outside ({low:g}, {high:g}]); "
                                     "the file is damaged")


# ------------------------------------------------------------------ Gaussian
class VariationalGaussianHMM(_Variational, GaussianHMM):
    __doc__ = (
        """Hidden Markov model with Gaussian emissions fitted by variational Bayes, a
    drop-in for ``hmmlearn.hmm.VariationalGaussianHMM``.

    Each state's mean and precision have a Normal-Wishart posterior (diag and spherical:
    a Wishart with a diagonal or isotropic scale, as hmmlearn's).

    Parameters
    ----------"""
        + VARIATIONAL_DOC
        + """    covariance_type : {'full', 'diag', 'tied', 'spherical'}, default='full'
        Structure of each state's precision (tied: one shared by every state).
    means_prior : array of shape (n_components, n_features), default=None
        Prior mean of each state's mean (None: the data's mean).
    beta_prior : array of shape (n_components,), default=None
        Prior precision scale of each state's mean (None: 1).
    dof_prior : array of shape (n_components,) or float (tied), default=None
        Prior degrees of freedom of each state's Wishart (None: n_features).
    scale_prior : array, default=None
        Prior (inverse) scale of each state's Wishart, in the covariance_type's layout:
        (n_components, n_features, n_features) full, (n_features, n_features) tied,
        (n_components, n_features) diag, (n_components,) spherical (None: 1e-3 times
        the identity).

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    means_prior_, means_posterior_ : ndarray (n_components, n_features)
    beta_prior_, beta_posterior_ : ndarray (n_components,)
    dof_prior_, dof_posterior_ : ndarray (n_components,), or float (tied)
    scale_prior_, scale_posterior_ : ndarray, in the covariance_type's layout
    means_ : ndarray (n_components, n_features)
        ``means_posterior_``.
    covars_ : ndarray (n_components, n_features, n_features)
        ``scale_posterior_ / dof_posterior_`` as full matrices (hmmlearn's convention);
        ``_covars_`` holds the layout's form.
    n_features : int
    """
    )
    _spherical_in_columns = False  # hmmlearn's VariationalGaussianHMM keeps a spherical _covars_ as (K,)
    _emission_groups = {"m": ("means_prior_", "means_posterior_", "beta_prior_", "beta_posterior_"),
                        "c": ("dof_prior_", "dof_posterior_", "scale_prior_", "scale_posterior_")}
    _constraints = dict(
        {k: v for k, v in _common("mc").items() if k not in _FIXED},
        **{k: _params.Passed() for k in _FIXED},
        startprob_prior=_params.Optional(_params.FiniteArray()),
        transmat_prior=_params.Optional(_params.FiniteArray()),
        covariance_type=_params.Choice(NAMES),
        means_prior=_params.Optional(_params.FiniteArray()),
        beta_prior=_params.Optional(_params.FiniteArray()),
        dof_prior=_params.Optional(_params.FiniteArray()),
        scale_prior=_params.Optional(_params.FiniteArray()),
    )

    def __init__(
        self,
        n_components=1,
        covariance_type="full",
        startprob_prior=None,
        transmat_prior=None,
        means_prior=None,
        beta_prior=None,
        dof_prior=None,
        scale_prior=None,
        algorithm="viterbi",
        random_state=None,
        n_iter=100,
        tol=1e-6,
        verbose=False,
        params="stmc",
        init_params="stmc",
        implementation="log",
        device="cpu",
        dtype="float64",
        memory_budget=None,
        engine="local",
        client=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.beta_prior = beta_prior
        self.dof_prior = dof_prior
        self.scale_prior = scale_prior
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.device = device
        self.dtype = dtype
        self.memory_budget = memory_budget
        self.engine = engine
        self.client = client
        _fixed_and_monitor(self)

    def _advice(self, s) -> str:
        advice = "raise scale_prior or dof_prior, lower n_components, or standardise X"
        if "c" in s.params and "m" not in s.params:  # hmmlearn's raw-moment update can leave the scale indefinite
            advice = ("include 'm' in params (with 'c' alone, hmmlearn's update pairs the raw second moments with "
                      f"the old means, and the scale can turn indefinite), or {advice}")
        return advice

    def _gaussian(self, s) -> GaussianComponent:
        return GaussianComponent(s.covariance_type, 0.0, s.dtype, advice=self._advice(s))

    def _emission(self, s, n_features=None) -> GaussianComponent:
        return self._gaussian(s)

    def _check_prior_shapes(self, s, K: int, D: int) -> None:
        """The variational priors are checked where they are settled, not as hmmlearn's
        MAP priors of GaussianHMM."""

    def _mend(self, s, emission):
        return None

    def _fit_model(self, s, n_features: int) -> VariationalHMMModel:
        return VariationalHMMModel(NormalWishart(self._gaussian(s)), s.n_components, s.dtype, params=s.params)

    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        K, D = s.n_components, n_features
        c = {"full": K + K * D * (D + 1) // 2, "tied": 1 + D * (D + 1) // 2, "diag": K + K * D,
             "spherical": 2 * K}[s.covariance_type]
        return {"m": K * D + K, "c": c}

    # -------------------------------------------------------------- initialisation
    def _init_emission(self, s, source, summary, generator, engine) -> None:
        """hmmlearn's: k-means centres for the posterior means and cluster sizes for beta
        and dof; the data's covariance plus 1e-3 I, times dof, for the scale."""
        K, D = s.n_components, int(self.n_features)
        need_m = self._needs_group(s, "m", self._emission_groups["m"])
        need_c = self._needs_group(s, "c", self._emission_groups["c"])
        if not (need_m or need_c):
            return
        if source.n_rows < K:
            raise DataError(f"Expected n_samples >= n_components but got n_components = {K}, "
                            f"n_samples = {source.n_rows}")
        centres = self._kmeans_centres(s, source, K, generator, engine)
        shift = source.rows.shift
        origin = torch.zeros(D, dtype=torch.float64) if shift is None else shift.double().cpu()
        kmeans = KMeansModel(K, s.dtype)
        at = kmeans.params((torch.as_tensor(centres) - origin).to(s.device))
        counts = engine.reduce(Task(kmeans, "e_step", (at,)), source.rows).counts.double().cpu().numpy()
        owner, tied = type(self).__name__, s.covariance_type == "tied"
        if need_m:
            mean = (summary.mean.double().cpu() + origin).numpy()
            self.means_prior_ = _broadcast(mean if s.means_prior is None else s.means_prior, (K, D), "means_prior", owner)
            self.means_posterior_ = np.array(centres, dtype=np.float64)
            self.beta_prior_ = _broadcast(1.0 if s.beta_prior is None else s.beta_prior, (K,), "beta_prior", owner)
            self.beta_posterior_ = np.maximum(counts, 1.0)
        if need_c:
            dof_prior = float(D) if s.dof_prior is None else s.dof_prior
            if tied:
                if np.size(dof_prior) != 1:
                    raise ParameterError(f"The 'dof_prior' parameter of {owner} must be a number with "
                                         f"covariance_type='tied' (one Wishart). Got {self.dof_prior!r}.")
                self.dof_prior_ = float(np.reshape(dof_prior, ()))
                self.dof_posterior_ = float(max(counts.sum(), D))
            else:
                self.dof_prior_ = _broadcast(dof_prior, (K,), "dof_prior", owner)
                self.dof_posterior_ = np.maximum(counts, float(D))
            cv = summary.covariance.double().cpu().numpy() + 1e-3 * np.eye(D)
            eye = 1e-3 * np.eye(D)
            if s.covariance_type == "full":
                covars, default = np.tile(cv, (K, 1, 1)), np.tile(eye, (K, 1, 1))
            elif tied:
                covars, default = cv, eye
            elif s.covariance_type == "diag":
                covars, default = np.tile(np.diag(cv), (K, 1)), np.full((K, D), 1e-3)
            else:  # hmmlearn: the mean of every entry of the covariance
                covars, default = np.full(K, cv.mean()), np.full(K, 1e-3)
            self._covars_ = covars
            prior = default if s.scale_prior is None else s.scale_prior
            if s.covariance_type in ("full", "tied") and np.ndim(prior) < 2:  # hmmlearn names the shape too
                shapes = f"{default.shape}" if tied else f"{default.shape} or {default.shape[1:]}"
                raise ParameterError(
                    f"The 'scale_prior' parameter of {owner} must have shape {shapes} for covariance_type="
                    f"{s.covariance_type!r}, got {np.shape(prior)}: a number would fill every entry of the "
                    f"matrix, which is then singular; pass a matrix, e.g. c * np.eye({D})")
            self.scale_prior_ = _broadcast(prior, default.shape, "scale_prior", owner)
            dof = np.asarray(self.dof_posterior_)
            self.scale_posterior_ = covars * (dof if tied else dof.reshape(-1, *[1] * (covars.ndim - 1)))

    # -------------------------------------------------------------- posteriors
    def _variational_emission(self, s) -> NormalWishartParams:
        K, D = s.n_components, int(self.n_features)
        st = structure(s.covariance_type)
        tied = st.name == "tied"
        dof_shape = () if tied else (K,)
        dofs = []
        for name in ("dof_prior_", "dof_posterior_"):
            value = getattr(self, name)
            if tied and np.size(value) == 1:  # a number (hmmlearn's), or one as a model file holds it
                value = np.reshape(np.asarray(value, dtype=np.float64), ())
            dof = _array(value, dof_shape, name, low=D - 1)
            dofs.append(dof.expand(K).clone() if tied else dof)
        scales = []
        for name in ("scale_prior_", "scale_posterior_"):
            scale = _array(getattr(self, name), st.shape(K, D), name, low=None)
            if not bool(st.positive_definite(scale, K).all()):
                raise ParameterError(f"{name} must be positive definite ({st.name} layout)")
            scales.append(scale)
        return NormalWishartParams(
            means=_array(self.means_posterior_, (K, D), "means_posterior_", low=None),
            beta=_array(self.beta_posterior_, (K,), "beta_posterior_"),
            dof=dofs[1], scale=scales[1],
            prior_means=_array(self.means_prior_, (K, D), "means_prior_", low=None),
            prior_beta=_array(self.beta_prior_, (K,), "beta_prior_"),
            prior_dof=dofs[0], prior_scale=scales[0],
            origin=torch.zeros(D, dtype=torch.float64),
        )

    def _set_posterior(self, p: NormalWishartParams) -> None:
        tied = self._settings().covariance_type == "tied"
        self.means_prior_ = p.prior_means.numpy().copy()
        self.means_posterior_ = p.means.numpy().copy()
        self.beta_prior_ = p.prior_beta.numpy().copy()
        self.beta_posterior_ = p.beta.numpy().copy()
        self.dof_prior_ = float(p.prior_dof[0]) if tied else p.prior_dof.numpy().copy()
        self.dof_posterior_ = float(p.dof[0]) if tied else p.dof.numpy().copy()
        self.scale_prior_ = p.prior_scale.numpy().copy()
        self.scale_posterior_ = p.scale.numpy().copy()

    def _point_emission(self, p: NormalWishartParams) -> GaussianParams:
        emission = NormalWishart(self._gaussian(self._settings()))
        return emission.gaussian.make_params(p.means, emission.covariances(p))


# ------------------------------------------------------------------ categorical
class VariationalCategoricalHMM(_Variational, CategoricalHMM):
    __doc__ = (
        """Hidden Markov model with categorical emissions fitted by variational Bayes, a
    drop-in for ``hmmlearn.hmm.VariationalCategoricalHMM``.

    X has one column of integer symbols 0..n_features-1; each state's symbol
    distribution has a Dirichlet posterior.

    Parameters
    ----------"""
        + VARIATIONAL_DOC
        + """    emissionprob_prior : float or array (n_components, n_features), default=None
        Dirichlet concentration of the prior on each state's symbols (None: 1 / n_features).
    n_features : int, default=None
        Number of symbols; None: one more than the largest symbol in the data of ``fit``.

    Attributes
    ----------"""
        + _COMMON_ATTRIBUTES
        + """    emissionprob_prior_, emissionprob_posterior_ : ndarray (n_components, n_features)
    emissionprob_ : ndarray (n_components, n_features)
        The posterior means, which inference uses.
    """
    )
    _emission_groups = {"e": ("emissionprob_posterior_", "emissionprob_prior_")}
    _kept_arrays = {**_Variational._kept_arrays, "emissionprob_log_subnorm_": "emissionprob_log_subnorm"}
    _constraints = dict(
        {k: v for k, v in _common("e").items() if k not in _FIXED},
        **{k: _params.Passed() for k in _FIXED},
        startprob_prior=_params.Optional(_params.FiniteArray()),
        transmat_prior=_params.Optional(_params.FiniteArray()),
        emissionprob_prior=_params.Optional(_params.FiniteArray()),
        n_features=_params.Optional(_params.Int(1)),
    )

    def __init__(
        self,
        n_components=1,
        startprob_prior=None,
        transmat_prior=None,
        emissionprob_prior=None,
        n_features=None,
        algorithm="viterbi",
        random_state=None,
        n_iter=100,
        tol=1e-6,
        verbose=False,
        params="ste",
        init_params="ste",
        implementation="log",
        device="cpu",
        dtype="float64",
        memory_budget=None,
        engine="local",
        client=None,
    ):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features
        self.algorithm = algorithm
        self.random_state = random_state
        self.n_iter = n_iter
        self.tol = tol
        self.verbose = verbose
        self.params = params
        self.init_params = init_params
        self.implementation = implementation
        self.device = device
        self.dtype = dtype
        self.memory_budget = memory_budget
        self.engine = engine
        self.client = client
        _fixed_and_monitor(self)

    def _advice(self, s) -> str:
        return "raise emissionprob_prior, or check the symbols"

    def _symbols(self, s, fitting: bool, summary=None) -> int | None:
        """n_features given, else the set posteriors' width (unless fit initialises them),
        else (given the data's summary) one more than the largest symbol."""
        if s.n_features is not None:
            return s.n_features
        if hasattr(self, "emissionprob_posterior_") and not (fitting and "e" in s.init_params):
            return int(np.shape(self.emissionprob_posterior_)[-1])
        return None if summary is None else int(summary.top[0]) + 1

    def _emission(self, s, n_features=None) -> CategoricalComponent:
        symbols = n_features or s.n_features or (int(np.shape(self.emissionprob_)[-1])
                                                 if hasattr(self, "emissionprob_") else 0)
        return CategoricalComponent(symbols, 1.0, s.dtype, advice=self._advice(s))

    def _fit_model(self, s, n_features: int) -> VariationalHMMModel:
        emission = DirichletCategorical(int(n_features), s.dtype, self._advice(s))
        return VariationalHMMModel(emission, s.n_components, s.dtype, params=s.params)

    def _init_emission(self, s, source, summary, generator, engine) -> None:
        """hmmlearn's: the prior's concentration everywhere, and Dirichlet draws of it
        scaled to the rows per state for the posteriors."""
        K = s.n_components
        M = self._symbols(s, True, summary)
        _params.check_memory(4 * 8 * K * M, f"{M:,} symbols for {K} states",
                             "re-code the symbols as 0..M-1 (e.g. np.unique(X, return_inverse=True)[1]), or lower n_features")
        if self._needs_group(s, "e", self._emission_groups["e"]):
            value = 1.0 / M if s.emissionprob_prior is None else s.emissionprob_prior
            prior = _broadcast(value, (K, M), "emissionprob_prior", type(self).__name__)
            if (prior <= 0).any():
                raise ParameterError(f"The 'emissionprob_prior' parameter of {type(self).__name__} must be positive "
                                     f"(a Dirichlet concentration). Got {s.emissionprob_prior!r}.")
            self.emissionprob_prior_ = prior
            draws = _dirichlet_rows(prior, generator, fresh_numpy(generator))
            self.emissionprob_posterior_ = draws * source.n_rows / K
        self.n_features = M

    def _variational_emission(self, s) -> DirichletParams:
        K, M = s.n_components, int(self.n_features)
        return DirichletParams(_array(self.emissionprob_posterior_, (K, M), "emissionprob_posterior_"),
                               _array(self.emissionprob_prior_, (K, M), "emissionprob_prior_"))

    def _set_posterior(self, p: DirichletParams) -> None:
        self.emissionprob_prior_ = p.prior.numpy().copy()
        self.emissionprob_posterior_ = p.posterior.numpy().copy()

    def _last_emission_from(self, p: DirichletParams) -> None:
        self.emissionprob_log_subnorm_ = _expected_log(p.posterior)

    def _point_emission(self, p: DirichletParams) -> CategoricalParams:
        return CategoricalParams(p.posterior / p.posterior.sum(1, keepdim=True))

    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        return {"e": s.n_components * (n_features - 1)}


def _expected_log(alpha: torch.Tensor) -> np.ndarray:
    """E[log p] of Dirichlet rows ``alpha`` (float64): digamma(alpha) - digamma(the row's total)."""
    alpha = alpha.to(torch.float64)
    return (torch.special.digamma(alpha) - torch.special.digamma(alpha.sum(-1, keepdim=True))).numpy()
