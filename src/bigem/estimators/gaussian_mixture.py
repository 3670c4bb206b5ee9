"""scikit-learn compatible Gaussian mixture: same parameters, attributes and answers.

The façade only: its hyper-parameters, its initialiser and its fitted attributes.
Execution, inference and persistence are the mixture base's (``_mixture``).
"""

from __future__ import annotations

import math
import warnings

import torch

import numpy as np

from .._core.errors import ModelFileError, ParameterError, PrecisionWarning
from ..em.init import from_centres, from_random_responsibilities, kmeans_centres, seed_sample, seeds
from ..models.covariance import ALL_NAMES, structure
from ..models.eigen import NO_PRIOR, decompose
from ..models.gaussian import GaussianComponent, GaussianParams, float32_rounding_share
from ..models.kmeans import KMeansModel
from ..models.mixture import MixtureModel, MixtureParams
from . import _params
from ._mixture import (EXECUTION, IMPUTE_DOC, MISSING, MISSING_DOC, MIXTURE_DOC, SUPERVISION, SUPERVISION_DOC,
                       _BaseMixture)
from ._sklearn_internals import ScikitLearnInternals
from .hierarchical import HCTree, build
from .priors import PriorSpec, resolve_prior

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data", "hc")


class InitParams(_params.Constraint):
    """One of :data:`INIT_METHODS`, or an :class:`HCTree` built beforehand (``bigem.hc``)."""

    def check(self, value, name, owner):
        if isinstance(value, HCTree):
            return value
        return _params.Choice(INIT_METHODS).check(value, name, owner)


def initial_from_data(model: MixtureModel, engine, source, s, generator: torch.Generator, offset=None):
    """The M-step of the initial responsibilities ``s.init_params`` names: 'random' (uniform
    random), the classes of a hierarchical clustering ('hc', or an :class:`HCTree`; ``offset``
    the rows' shift), or hard assignments of every row to the nearest of K seeds (k-means++
    seeds refined by Lloyd iterations for 'kmeans', k-means++ or distinct rows otherwise)."""
    K = s.n_components
    if isinstance(s.init_params, HCTree) or s.init_params == "hc":
        tree = s.init_params if isinstance(s.init_params, HCTree) else build(
            source, generator=generator, engine=engine, offset=offset)
        return tree.initial_parameters(model, engine, source, K, offset, s.device,
                                       strict=getattr(s, "stopping", None) == "mclust")
    if s.init_params == "random":
        return from_random_responsibilities(model, engine, source, generator)
    sample = seed_sample(source, K, generator, engine)
    if s.init_params == "kmeans":  # scikit-learn's KMeans(n_init=1), converged on the sample first
        gaps = getattr(s, "missing_values", "error") == "fiml"  # a family without gaps has no such setting
        centres = kmeans_centres(KMeansModel(K, s.dtype, gaps=gaps), KMeansModel(K, torch.float64), engine, source,
                                 sample, K, generator)
    else:
        centres = seeds(s.init_params, sample, K, generator)
    return from_centres(model, engine, source, centres)


def scikit_learn_sample(model, ct: str, n_samples: int,
                        rs: np.random.RandomState) -> tuple[np.ndarray, np.ndarray] | None:
    """scikit-learn's ``sample`` of a fitted Gaussian mixture (its ``weights_``,
    ``means_``, ``covariances_``, fitted with covariance type ``ct``), drawn from ``rs``
    in its order: the counts per component by ``multinomial``, then each component's
    rows (``multivariate_normal`` for full and tied, standard normals times the standard
    deviations for diag and spherical), component after component. None for mclust's
    other structures."""
    means, cov = model.means_, model.covariances_
    if ct not in ("full", "tied", "diag", "spherical"):
        return None
    counts = rs.multinomial(n_samples, model.weights_)
    D = means.shape[1]
    if ct == "full":
        parts = [rs.multivariate_normal(m, c, int(n)) for m, c, n in zip(means, cov, counts)]
    elif ct == "tied":
        parts = [rs.multivariate_normal(m, cov, int(n)) for m, n in zip(means, counts)]
    else:
        parts = [m + rs.standard_normal(size=(n, D)) * np.sqrt(c) for m, c, n in zip(means, cov, counts)]
    return np.vstack(parts), np.concatenate([np.full(int(n), k, dtype=np.int64) for k, n in enumerate(counts)])


def given_precision_factors(est, s) -> torch.Tensor:
    """``est.precisions_cholesky_`` as set, checked: the shape of ``s``'s covariance type
    for ``est.means_``, a positive diagonal (scikit-learn takes its log)."""
    st = structure(s.covariance_type)
    prec = _params.as_f64(est.precisions_cholesky_, "precisions_cholesky_")
    means = np.asarray(est.means_)
    _params.check_shape(prec, st.shape(s.n_components, means.shape[-1] if means.ndim == 2 else -1),
                        "precisions_cholesky_")
    diagonal = prec if st.kernel == "diag" else torch.diagonal(prec, dim1=-2, dim2=-1)
    if not bool((diagonal > 0).all()):
        raise ParameterError("precisions_cholesky_ must have a positive diagonal (a Cholesky factor of each "
                             "precision matrix)")
    return prec


def precisions_set_apart(est) -> bool:
    """Whether ``est.precisions_cholesky_`` (scikit-learn scores with it) is not the
    factor of its ``covariances_`` (``sample`` draws with them): set by hand apart from
    them, as scikit-learn lets a user. A model file then holds both, so that the loaded
    model scores and draws as the saved one did."""
    params = est._fitted()
    c = params.component
    derived = structure(est._inference_settings().covariance_type).precision_cholesky(c.covariances, "")
    return not torch.equal(derived, c.prec_chol.to(derived))


class _PrecisionsKept:
    """GaussianMixture's and BayesianGaussianMixture's model files: the precision
    factors as well, where they were set apart from the covariances."""

    _kept_arrays = {"precisions_cholesky_": "precisions_cholesky"}

    def _arrays_kept(self) -> dict[str, str]:
        kept = super()._arrays_kept()
        if "precisions_cholesky_" in kept and not precisions_set_apart(self):
            del kept["precisions_cholesky_"]  # the file's covariances give them
        return kept

    def _from_file(self, s):
        return self._from_live(s)  # the precision factors as the file holds them, when it does

    def _saved_array(self, attr: str):
        """A model set by hand with its precision factors alone is saved with the
        covariances they give (what ``sample`` draws with)."""
        if attr == "covariances_" and not hasattr(self, attr):
            return self._fitted().component.covariances.numpy()
        return super()._saved_array(attr)


class GaussianMixture(_PrecisionsKept, ScikitLearnInternals, _BaseMixture):
    __doc__ = (
        """Gaussian mixture model fitted by EM, a drop-in for ``sklearn.mixture.GaussianMixture``.

    Same constructor, methods and fitted attributes as scikit-learn's, computed with
    PyTorch on CPU or GPU, streamed in chunks (exactly: chunked and one-piece fits agree
    to rounding), with sample weights. X may be a numpy array, a torch tensor (any
    device), a pandas DataFrame, files (Parquet, CSV, Arrow IPC/Feather or .npy: a path, folder,
    glob or list, read in chunks, never all at once), or any Source object. A dask.array
    or dask.dataframe (or, with ``engine='dask'``, Parquet/CSV paths read by the workers)
    is fitted on a Dask cluster; prediction on one returns lazy dask arrays.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : str, default='full'
        scikit-learn's 'full' (each component its own covariance matrix), 'tied' (one
        shared matrix), 'diag' (each a diagonal matrix), 'spherical' (each a single
        variance); or one of mclust's models Sigma_k = lambda_k D_k A_k D_k^T, volume,
        shape and orientation each Equal, Variable or Identity: 'EII', 'VII', 'EEI',
        'VEI', 'EVI', 'VVI', 'EEE', 'VEE', 'EVE', 'VVE', 'EEV', 'VEV', 'EVV', 'VVV', and
        'E', 'V' for one feature. 'VII', 'VVI', 'EEE' and 'VVV' are 'spherical', 'diag',
        'tied' and 'full' (identical results); ``covariances_`` keeps scikit-learn's
        layout: (K,) for EII, VII, E, V; (K, D) for EEI, VEI, EVI, VVI; (D, D) for EEE;
        (K, D, D) for the others.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    reg_covar : float, default=1e-6
        Added to every variance (the diagonal of every covariance) to keep it positive.
    max_iter : int, default=100
        Maximum EM iterations per initialisation; 0 only initialises (``lower_bound_`` is
        then -inf), as scikit-learn does.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data', 'hc'} or HCTree, default='kmeans'
        'kmeans': k-means++ seeds on a sample, then Lloyd iterations over all rows;
        'k-means++' / 'random_from_data': seeds (k-means++ or uniform rows) then one
        nearest-seed assignment pass; 'random': random responsibilities (their M-step
        leaves sample weights out, as StepMix's start does; they enter from the first
        E-step); 'hc': mclust's
        start, one M-step from the classes of a model-based hierarchical clustering
        (VVV criterion on the SVD-transformed rows; quantile classes for one feature) of
        the rows, or of a sample of 2000 of them on bigger data; an :class:`HCTree` from
        ``bigem.hc(X, ...)``: that tree (its criterion, transform and sample size), built
        once for every K and covariance type.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (non-negative, summing to 1).
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), shaped as for ``covariance_type``:
        (K,), (D, D), (K, D) or (K, D, D) for spherical, tied, diag, full (mclust's
        models: as ``covariances_``, and of the model's structure).
    prior : None, 'default' or dict, default=None
        A conjugate prior, which turns each M-step into its MAP update (Fraley and
        Raftery, 2007): 'default' is mclust's ``defaultPrior`` (shrinkage 0.01 towards
        the data's mean, D + 2 degrees of freedom, scale the data's covariance divided
        by K^(2/D); for the diagonal and spherical models the mean variance so scaled;
        one feature: 3 and the variance / K^2); a dict overrides any of its keys
        'shrinkage', 'mean', 'dof', 'scale'. Not available for EVE, VEE, VVE and EVV
        (mclust has no prior for them). BIC and ICL stay 2 log L - p log n at the MAP
        parameters, as mclust defines them with a prior. ``prior_`` holds the values used.
"""
        + SUPERVISION_DOC.format(default="None", none=", as by scikit-learn's GaussianMixture")
        + MIXTURE_DOC
        + MISSING_DOC
        + """
    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        Fitted parameters (float64), laid out as in scikit-learn.
    converged_ : bool
    n_iter_ : int
        Iterations of the best run: passes over the data (with ``accelerate``, a pass
        that evaluated a rejected extrapolation counts too).
    n_passes_ : int
        The same number, named for what it counts.
    lower_bound_ : float
        Mean log-likelihood of the best run at its last accepted iteration.
    lower_bounds_ : list of float
        The best run's mean log-likelihood per accepted iteration (never decreasing).
    history_ : list of dict
        Per restart: ``log_likelihood``, ``seconds`` and ``accepted`` per pass,
        ``converged``, ``n_iter``.
    volume_, shape_, orientation_ : ndarray
        The decomposition Sigma_k = volume_[k] orientation_[k] diag(shape_[k])
        orientation_[k]^T: volumes det(Sigma_k)^(1/D) (K,), shapes with product 1 (K, D)
        (in the features' order for the diagonal models, else largest first; for a
        common orientation, in that orientation's order), orientations (K, D, D) with
        eigenvectors as columns (the identity for diagonal models).
    prior_ : dict
        Only with ``prior``: the hyper-parameters used (shrinkage, mean, dof, scale).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    feature_indices_ : ndarray of int
        Only when X was a .npy file whose columns ``columns=`` picked by index: inference
        on a .npy file reads those unless told (every family and HMM keeps it so).
    classes_ : ndarray
        The class labels of a semi-supervised fit (``unlabeled_weight`` set and y given).
    """
    )

    _structural = ("n_components", "covariance_type")
    _constraints = dict(
        n_components=_params.Int(1),
        covariance_type=_params.Choice(ALL_NAMES),
        reg_covar=_params.Float(0.0),
        init_params=InitParams(),
        weights_init=_params.ArrayLike(),
        means_init=_params.ArrayLike(),
        precisions_init=_params.ArrayLike(),
        prior=PriorSpec(),
        **SUPERVISION,
        **EXECUTION,
        **MISSING,
    )
    # fitted attribute -> its tensor in a model file
    _fitted_arrays = {"weights_": "weights", "means_": "means", "covariances_": "covariances"}

    def __init__(
        self,
        n_components=1,
        *,
        covariance_type="full",
        tol=1e-3,
        reg_covar=1e-6,
        max_iter=100,
        n_init=1,
        init_params="kmeans",
        weights_init=None,
        means_init=None,
        precisions_init=None,
        prior=None,
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
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.prior = prior
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

    def impute(self, X, *, method="mean", random_state=None, columns=None, out=None, id_column=None):
        return self._impute(X, method=method, random_state=random_state, columns=columns, out=out,
                            id_column=id_column)

    impute.__doc__ = IMPUTE_DOC.format(
        method="""            'mean': each gap's conditional expectation given the row's observed values
            under the fitted mixture, sum_k p(k | x_obs) E[x_miss | x_obs, k] (for a row
            with nothing observed, the mixture's mean). 'sample': a draw from the
            conditional distribution p(x_miss | x_obs) (a component by its posterior,
            then the gaps from its conditional Gaussian): multiple imputation, one
            completed data set per ``random_state``.""",
        returns="""        ndarray of shape (n_samples, n_features), float64, or the path written; a lazy
        dask array for Dask input (without ``out``).""")

    # ------------------------------------------------------------------ the family
    def _settle(self, values: dict) -> None:
        if values.get("prior") is not None and values["covariance_type"] in NO_PRIOR:
            raise ParameterError(
                f"prior={values['prior']!r} is not available for covariance_type={values['covariance_type']!r}: "
                f"mclust has no conjugate prior for {', '.join(NO_PRIOR)}; choose another model or prior=None"
            )

    def _model(self, s) -> MixtureModel:
        advice = f"increase reg_covar (now {s.reg_covar:g}), lower n_components, or standardise X"
        # the prior is resolved against the data when a fit starts (``_fit``); a model made
        # before that (to learn the row dtype, or for inference) runs no M-step
        prior = getattr(self, "_prior_", None) if s.prior is not None else None
        component = GaussianComponent(s.covariance_type, s.reg_covar, s.dtype, advice=advice, prior=prior,
                                      gaps=s.missing_values == "fiml")
        return MixtureModel(component, s.n_components, s.dtype)

    def _fit(self, source, engine, s, callback, checkpoint, checkpoint_every, classes=None):
        if s.prior is not None:
            self._prior_ = resolve_prior(s.prior, structure(s.covariance_type), s.n_components, source, engine,
                                        gaps=s.missing_values == "fiml")
            self.prior_ = self._prior_.describe(source.shift)
        fitted = super()._fit(source, engine, s, callback, checkpoint, checkpoint_every, classes)
        if self._model(s).component.row_dtype == torch.float32:
            warn_float32_rounding(self, source.shift, s)
        return fitted

    def partial_fit(self, X, y=None, sample_weight=None, *, columns=None, classes=None):
        if self._settings().prior is not None:
            raise ParameterError(
                "prior= is resolved against the whole data when fit() starts (its mean and scale come from the "
                "data), so partial_fit cannot use it; fit with algorithm='online' for online EM with a prior, or "
                "pass prior=None"
            )
        return super().partial_fit(X, y, sample_weight, columns=columns, classes=classes)

    partial_fit.__doc__ = _BaseMixture.partial_fit.__doc__

    def _hyper_parameters(self, as_fitted: bool = True):
        values, arrays = super()._hyper_parameters(as_fitted)
        if isinstance(self.prior, dict):
            values["prior"] = {k: (np.asarray(v, dtype=np.float64).tolist() if not isinstance(v, (int, float)) else v)
                               for k, v in self.prior.items()}
        return values, arrays

    def _user_initialised(self, s) -> bool:
        return any(v is not None for v in (self.weights_init, self.means_init, self.precisions_init))

    def _fitted_state(self) -> dict:
        """With a prior, ``prior_`` too: the values the fit resolved from the data."""
        state = super()._fitted_state()
        described = getattr(self, "prior_", None) if self.prior is not None else None
        if isinstance(described, dict):
            scale = np.asarray(described["scale"], dtype=np.float64)
            state["prior_"] = {"shrinkage": float(described["shrinkage"]), "dof": float(described["dof"]),
                               "mean": np.asarray(described["mean"], dtype=np.float64).tolist(),
                               "scale": scale.ravel().tolist(), "scale_shape": list(scale.shape)}
        return state

    def _restore(self, state: dict) -> None:
        super()._restore(state)
        self.__dict__.pop("prior_", None)
        if state.get("prior_") is None:
            return
        stored = _params.Stored(state["prior_"], "prior_")
        D, shape = self.n_features_in_, [int(v) for v in stored.numbers("scale_shape")]
        mean, scale = np.asarray(stored.numbers("mean")), np.asarray(stored.numbers("scale"))
        if mean.shape != (D,) or shape not in ([], [D], [D, D]) or scale.size != int(np.prod(shape)):
            raise ModelFileError(f"prior_ must hold a mean of {D} values and a scale of shape (), ({D},) or ({D}, {D})")
        self.prior_ = {"shrinkage": stored.number("shrinkage"), "mean": mean, "dof": stored.number("dof"),
                       "scale": float(scale[0]) if not shape else scale.reshape(shape)}

    def _reference_sample(self, n_samples, rs, s):
        return scikit_learn_sample(self, s.covariance_type, n_samples, rs)

    _fit_min_rows = 2  # scikit-learn's (a covariance needs two rows), with its message

    def _initialise(self, model: MixtureModel, engine, source, s, generator: torch.Generator, offset) -> MixtureParams:
        """Initial parameters by ``init_params``; user-given parts replace the computed ones.

        When ``means_init`` is given but weights or covariances are not, those come from
        assigning each row to its nearest given mean (consistent with the given means;
        scikit-learn instead takes them from an independent k-means run).
        """
        K, D = s.n_components, source.n_features
        st = structure(s.covariance_type)
        st.check_features(D)
        weights = None if self.weights_init is None else _params.check_weights_init(self.weights_init, K)
        means = None if self.means_init is None else _params.check_means_init(self.means_init, K, D)
        if means is not None and offset is not None:  # in the coordinates of the rows
            means = means - offset.to(means)
        cov = None
        if self.precisions_init is not None:
            cov = st.from_precisions(_params.as_f64(self.precisions_init, f"{st.name} precision"), K, D)
        if weights is not None and means is not None and cov is not None:
            return model.make_params(weights, means, cov)
        if means is not None:
            base = from_centres(model, engine, source, means)
        else:
            base = initial_from_data(model, engine, source, s, generator, offset)
        return model.make_params(
            base.weights if weights is None else weights,
            base.component.means if means is None else means,
            base.component.covariances if cov is None else cov,
        )

    def _shared_parameters(self) -> set[str]:
        return {"covariances_"} if structure(self._fit_structure_["covariance_type"]).kernel == "tied" else set()

    def _publish(self, params: MixtureParams) -> None:
        p = params.component
        self.weights_ = params.weights.numpy().copy()
        self.means_ = p.means.numpy().copy()
        self.covariances_ = p.covariances.numpy().copy()
        self.precisions_cholesky_ = p.prec_chol.numpy().copy()
        st = structure(self._fit_structure_["covariance_type"])
        volume, shape, orientation = decompose(st, p.covariances, *p.means.shape)
        self.volume_, self.shape_, self.orientation_ = volume.numpy(), shape.numpy(), orientation.numpy()
        if st.kernel != "diag":
            self.precisions_ = (p.prec_chol @ p.prec_chol.transpose(-1, -2)).numpy()
        else:
            self.precisions_ = p.prec_chol.square().numpy()

    _parameter_names = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    # scikit-learn's inference reads these: the precision factors score, the covariances sample
    _live_attributes = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    _required_attributes = ("weights_", "means_")

    def _set_by_hand(self) -> bool:
        return super()._set_by_hand() and (hasattr(self, "covariances_") or hasattr(self, "precisions_cholesky_"))

    def _missing_by_hand(self) -> str:
        given = [a for a in self._live_attributes if hasattr(self, a)]
        if given and not (hasattr(self, "covariances_") or hasattr(self, "precisions_cholesky_")):
            missing = [a for a in self._required_attributes if not hasattr(self, a)]
            return (f" (to set a model by hand, set {', '.join([*missing, 'covariances_ or precisions_cholesky_'])}"
                    f" as well as {', '.join(given)})")
        return super()._missing_by_hand()

    def _from_live(self, s) -> MixtureParams:
        """The attributes as scikit-learn reads them: ``precisions_cholesky_`` scores and
        ``covariances_`` samples, each as set (either one alone gives the other)."""
        if not hasattr(self, "precisions_cholesky_"):
            return self._from_attributes(s)
        prec = given_precision_factors(self, s)
        cov = (_params.as_f64(self.covariances_, "covariances_") if hasattr(self, "covariances_")
               else structure(s.covariance_type).covariance(prec))
        params = self._from_attributes(s, cov)
        return MixtureParams(params.weights, GaussianParams(params.component.means, params.component.covariances, prec))

    def _from_attributes(self, s, covariances: torch.Tensor | None = None) -> MixtureParams:
        """The fitted arrays as parameters (``covariances``: instead of ``covariances_``):
        their shapes, a distribution of weights, symmetric covariances (ParameterError),
        factorable ones (NumericalError)."""
        K, st = s.n_components, structure(s.covariance_type)
        weights, means = (torch.as_tensor(np.asarray(getattr(self, a), dtype=np.float64)) for a in ("weights_", "means_"))
        cov = torch.as_tensor(np.asarray(self.covariances_ if covariances is None else covariances, dtype=np.float64))
        if weights.shape != (K,) or means.ndim != 2 or means.shape[0] != K:
            raise ParameterError(f"tensor shapes do not match n_components={K}")
        expected = st.shape(K, means.shape[1])
        if tuple(cov.shape) != expected:
            raise ParameterError(f"covariances have shape {tuple(cov.shape)}, expected {expected} for {st.name!r}")
        total = float(weights.sum())
        if bool((weights < 0).any()) or abs(total - 1) > 1e-6:
            raise ParameterError(
                f"invalid parameters: weights must be non-negative and sum to 1, got sum {total:.6g} "
                f"and minimum {float(weights.min()):.6g}"
            )
        if st.kernel != "diag" and not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-10, atol=0.0):
            raise ParameterError("invalid parameters: covariances are not symmetric")
        params = self._model(s).make_params(weights, means, cov)
        tied = st.kernel == "tied"
        layout = {"full": "full", "tied": "tied"}.get(st.kernel, "diag")
        _params.check_scale("component", means=means, variances=_params.variances_of(cov, layout, 1 if tied else K),
                            tied=tied)
        return params

    def _centres(self, params: MixtureParams) -> torch.Tensor:
        return params.component.means


def warn_float32_rounding(est, shift, s, stacklevel: int = 4) -> None:
    """A PrecisionWarning where float32 rows add more than 0.1% to a component's
    variance (``float32_rounding_share``): components far apart against their
    spread, which one shift cannot bring all near zero (GaussianMixture and
    BayesianGaussianMixture, whose fitted attributes share a layout)."""
    cov, K, D = np.asarray(est.covariances_, dtype=np.float64), s.n_components, est.n_features_in_
    if cov.ndim == 3:  # (K, D, D)
        variances = np.diagonal(cov, axis1=1, axis2=2)
    elif structure(s.covariance_type).kernel == "tied":  # (D, D)
        variances = np.tile(np.diag(cov), (K, 1))
    else:  # (K, D), or one variance a component (K,)
        variances = cov if cov.ndim == 2 else np.tile(cov[:, None], (1, D))
    share = float32_rounding_share(torch.tensor(np.asarray(est.means_, dtype=np.float64)),  # copies: the
                                   torch.tensor(np.asarray(variances, dtype=np.float64)),  # fitted are read-only
                                   None if shift is None else shift.cpu()).numpy()
    if not share.size or float(share.max()) <= 1e-3:
        return
    k, d = np.unravel_index(int(np.argmax(share)), share.shape)
    pct = 100 * float(share[k, d])
    spacing = math.sqrt(12 * float(share[k, d]) * float(variances[k, d]))
    share_text = f"{pct:.2f}" if pct < 100 else f"{pct:,.0f}" if pct < 1e4 else "over 10,000"
    warnings.warn(
        f"float32 rows hold component {k}'s values in feature {d} (mean {est.means_[k, d]:.7g}) to a spacing of "
        f"{spacing:.3g}: rounding adds {share_text}% to its variance ({variances[k, d]:.3g}) and may move its "
        f"mean by up to {spacing / 2:.3g}; the data spans more than float32's 24 bits (components far apart "
        "against their spread): fit with dtype='float64' for its answer",
        PrecisionWarning, stacklevel=stacklevel)
