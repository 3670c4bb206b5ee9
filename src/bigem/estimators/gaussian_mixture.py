"""scikit-learn compatible Gaussian mixture: same parameters, attributes and answers."""

from __future__ import annotations

import contextlib
import math
import os
import time
import warnings
from collections.abc import Callable
from functools import partial

import numpy as np
import torch

from .._core.errors import DataError, ParameterError, not_fitted_error
from .._core.numerics import parse_device, parse_dtype
from .._core.types import COVARIANCE_TYPES, Source
from ..em.driver import Checkpoint, IterationInfo, fit_em
from ..em.init import INIT_METHODS, initial_params
from ..engines import LocalEngine
from ..models.gmm import GaussianMixtureModel, GMMParams
from ..sources import open_source
from ..sources.dask import is_dask_collection
from . import _params
from ._base import EstimatorBase

_OWNER = "GaussianMixture"


class GaussianMixture(EstimatorBase):
    """Gaussian mixture model fitted by EM, a drop-in for ``sklearn.mixture.GaussianMixture``.

    Same constructor, methods and fitted attributes as scikit-learn's, computed with
    PyTorch on CPU or GPU, streamed in chunks (exactly: chunked and one-piece fits agree
    to rounding), with sample weights. X may be a numpy array, a torch tensor (any
    device), a pandas DataFrame, or a path to a ``.npy`` file (memory-mapped, streamed).
    A dask.array or dask.dataframe (or, with ``engine='dask'``, Parquet/CSV paths) is
    fitted on a Dask cluster; prediction on one returns lazy dask arrays.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        'full': each component its own covariance matrix; 'tied': one shared matrix;
        'diag': each component a diagonal matrix; 'spherical': each a single variance.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    reg_covar : float, default=1e-6
        Added to every variance (the diagonal of every covariance) to keep it positive.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        'kmeans': k-means++ seeds on a sample, then Lloyd iterations over all rows;
        'k-means++' / 'random_from_data': seeds (k-means++ or uniform rows) then one
        nearest-seed assignment pass; 'random': random responsibilities.
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (non-negative, summing to 1).
    means_init : array-like of shape (n_components, n_features), default=None
        Initial means.
    precisions_init : array-like, default=None
        Initial precisions (inverse covariances), shaped as for ``covariance_type``:
        (K,), (D, D), (K, D) or (K, D, D) for spherical, tied, diag, full.
    random_state : int, RandomState, Generator or None, default=None
        Seed for initialisation and sampling; an int makes fits reproducible bit for bit on CPU.
    warm_start : bool, default=False
        Start the next ``fit`` from the current solution (and use ``n_init=1``).
    verbose : int, default=0
        1 prints each initialisation's result, 2 also every ``verbose_interval`` iterations.
    verbose_interval : int, default=10
        Iterations between progress lines when ``verbose >= 2``.
    device : str or torch.device, default='cpu'
        Where the arithmetic runs ('cpu', 'cuda', 'cuda:1', ...).
    dtype : {'float32', 'float64'} or torch dtype, default='float32'
        Precision of the per-chunk arithmetic. Statistics and parameters are always
        accumulated and stored in float64.
    chunk_size : int, default=None
        Rows per chunk; by default derived from ``memory_budget``.
    memory_budget : int or str, default='256MB'
        Memory for chunks in flight (bytes, or a string such as '1GB').
    engine : {'auto', 'local', 'dask'}, default='auto'
        'local': this process; 'dask': a Dask cluster (map over partitions, tree
        reduction of the statistics); 'auto': 'dask' for a Dask collection, else 'local'.
    client : distributed.Client, str or None, default=None
        The Dask cluster for ``engine='dask'``: a client, or a scheduler address such
        as 'tcp://host:8786'. None starts a LocalCluster for the fit and closes it after.
    columns : list of str, default=None
        The columns of a (Dask or pandas) DataFrame or of Parquet/CSV files to model;
        None takes them all.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : ndarray
        Fitted parameters (float64), laid out as in scikit-learn.
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood of the best run at its last iteration.
    lower_bounds_ : list of float
        The best run's mean log-likelihood per iteration.
    history_ : list of dict
        Per restart: ``log_likelihood`` and ``seconds`` per iteration, ``converged``.
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when X had string column names.
    """

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
        random_state=None,
        warm_start=False,
        verbose=0,
        verbose_interval=10,
        device="cpu",
        dtype="float32",
        chunk_size=None,
        memory_budget="256MB",
        engine="auto",
        client=None,
        columns=None,
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
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.memory_budget = memory_budget
        self.engine = engine
        self.client = client
        self.columns = columns

    # ------------------------------------------------------------------ set-up
    def _settings(self) -> dict:
        """Validated hyper-parameters (raises ParameterError naming the bad one)."""
        o = _OWNER
        s = dict(
            n_components=_params.check_int(self.n_components, "n_components", o, 1),
            covariance_type=_params.check_choice(self.covariance_type, "covariance_type", o, COVARIANCE_TYPES),
            tol=_params.check_float(self.tol, "tol", o, 0.0),
            reg_covar=_params.check_float(self.reg_covar, "reg_covar", o, 0.0),
            max_iter=_params.check_int(self.max_iter, "max_iter", o, 0),
            n_init=_params.check_int(self.n_init, "n_init", o, 1),
            init_params=_params.check_choice(self.init_params, "init_params", o, INIT_METHODS),
            verbose=_params.check_int(self.verbose, "verbose", o, 0),
            verbose_interval=_params.check_int(self.verbose_interval, "verbose_interval", o, 1),
            device=parse_device(self.device),
            dtype=parse_dtype(self.dtype),
            memory_budget=_params.parse_memory_budget(self.memory_budget, o),
            chunk_size=None if self.chunk_size is None else _params.check_int(self.chunk_size, "chunk_size", o, 1),
            engine=_params.check_choice(self.engine, "engine", o, ("auto", "local", "dask")),
            client=self.client,
            columns=_params.check_columns(self.columns, o),
        )
        if self.client is not None and not isinstance(self.client, (str, os.PathLike)):
            if not (hasattr(self.client, "scheduler_info") and hasattr(self.client, "compute")):
                raise ParameterError(
                    f"The 'client' parameter of {o} must be a distributed.Client, a scheduler address such as "
                    f"'tcp://host:8786', or None. Got {self.client!r} instead."
                )
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ParameterError(f"The 'warm_start' parameter of {o} must be an instance of 'bool'. Got {self.warm_start!r} instead.")
        return s

    def _open(self, X, s: dict, sample_weight=None, min_rows: int = 1) -> Source:
        if s["columns"] is not None and hasattr(X, "columns") and hasattr(X, "dtypes"):
            missing = [c for c in s["columns"] if c not in list(X.columns)]
            if missing:
                raise DataError(f"column(s) {missing} not found; X has columns {list(X.columns)}")
            X = X[s["columns"]]
        return open_source(
            X,
            dtype=s["dtype"],
            device=s["device"],
            memory_budget=s["memory_budget"],
            chunk_size=s["chunk_size"],
            sample_weight=sample_weight,
            min_rows=min_rows,
        )

    @staticmethod
    def _wants_dask(X, s: dict) -> bool:
        return s["engine"] == "dask" or (s["engine"] == "auto" and is_dask_collection(X))

    @contextlib.contextmanager
    def _execution(self, X, s: dict, sample_weight=None, min_rows: int = 1):
        """(engine, source) for X: this process, or a Dask cluster for the block's duration."""
        if not self._wants_dask(X, s):
            if is_dask_collection(X):  # engine='local': bring the rows here
                X = X.compute()
            yield LocalEngine(), self._open(X, s, sample_weight, min_rows)
            return
        from ..engines.dask import session
        from ..sources.dask import open_dask_source

        if sample_weight is not None:
            raise DataError(
                "sample_weight is not supported with engine='dask' yet; pass the data as an in-memory array "
                "with engine='local', or repeat rows instead of weighting them"
            )
        if not is_dask_collection(X) and not isinstance(X, (str, os.PathLike, list, tuple)):
            import dask.array as da

            X = da.from_array(np.asarray(X), chunks=(s["chunk_size"] or 1_000_000, -1))
        with session(s["client"]) as engine:
            source = open_dask_source(
                X,
                client=engine.client,
                dtype=s["dtype"],
                device=s["device"],
                memory_budget=s["memory_budget"],
                chunk_size=s["chunk_size"],
                columns=s["columns"],
                min_rows=min_rows,
            )
            engine.persist(source)
            yield engine, source

    def _model(self, s: dict) -> GaussianMixtureModel:
        return GaussianMixtureModel(s["n_components"], s["covariance_type"], s["reg_covar"], s["dtype"])

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X,
        y=None,
        sample_weight=None,
        *,
        callback: Callable[[IterationInfo], None] | None = None,
        checkpoint=None,
        checkpoint_every: int = 10,
    ):
        """Estimate the parameters with EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), tensor, DataFrame, path to .npy,
            dask.array or dask.dataframe (or Parquet/CSV path(s) with ``engine='dask'``)
        y : ignored
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative row weights; a row of weight 2 counts as two rows.
        callback : callable, default=None
            Called with an :class:`bigem.em.driver.IterationInfo` after every iteration.
        checkpoint : str or path, default=None
            Save the fit's state there every ``checkpoint_every`` iterations (atomically).
            If the file exists, the fit resumes from it and reaches the same result as an
            uninterrupted run; it is removed when the fit completes.
        checkpoint_every : int, default=10
            Iterations between checkpoints.

        Returns
        -------
        self
        """
        s = self._settings()
        with self._execution(X, s, sample_weight) as (engine, source):
            return self._fit(source, engine, s, callback, checkpoint, checkpoint_every)

    def _fit(self, source: Source, engine, s: dict, callback, checkpoint, checkpoint_every):
        K, N, D = s["n_components"], source.n_rows, source.n_features
        if N < K:
            raise DataError(
                f"Expected n_samples >= n_components but got n_components = {K}, n_samples = {N}: "
                "pass more rows or lower n_components"
            )
        model = self._model(s)
        inits = self._user_inits(s, D)
        warm = bool(self.warm_start) and hasattr(self, "converged_")
        if warm and self.n_features_in_ != D:
            raise DataError(
                f"X has {D} features, but GaussianMixture is expecting {self.n_features_in_} features as input "
                "(warm_start continues from the previous fit); fit a new estimator for different data"
            )
        generator = torch.Generator().manual_seed(_params.random_seed(self.random_state))
        saver = None
        if checkpoint is not None:
            every = _params.check_int(checkpoint_every, "checkpoint_every", _OWNER, 1)
            fingerprint = dict(
                kind=_OWNER,
                n_rows=N,
                n_features=D,
                **{k: s[k] for k in ("n_components", "covariance_type", "reg_covar", "tol", "max_iter", "n_init")},
                init_params=s["init_params"],
                dtype=str(s["dtype"]),
            )
            saver = Checkpoint(
                os.fspath(checkpoint),
                every,
                GMMParams,
                fingerprint,
                get_state=lambda: {"generator": generator.get_state().to(torch.int64)},
                set_state=lambda st: generator.set_state(st["generator"].to(torch.uint8)),
            )

        def initialise(restart: int) -> GMMParams:
            started = time.perf_counter()
            if warm:
                params = self._params_
            else:
                params = initial_params(model, engine, source, s["init_params"], generator, **inits)
            if s["verbose"]:
                print(f"Initialization {restart} ({time.perf_counter() - started:.2f}s)")
            return params

        progress = self._progress_callback(s, callback)
        best, runs = fit_em(
            model,
            engine,
            source,
            initialise,
            n_init=1 if warm else s["n_init"],
            max_iter=s["max_iter"],
            tol=s["tol"],
            callback=progress,
            checkpoint=saver,
        )
        self._set_fitted(best.params, source.n_features, source.feature_names)
        self.converged_ = best.converged
        self.n_iter_ = best.n_iter
        self.lower_bound_ = best.lower_bound
        self.lower_bounds_ = list(best.history)
        self.history_ = [
            {"log_likelihood": r.history, "seconds": r.seconds, "converged": r.converged, "n_iter": r.n_iter}
            for r in runs
        ]
        return self

    def _user_inits(self, s: dict, D: int) -> dict:
        K, ct = s["n_components"], s["covariance_type"]
        return dict(
            weights_init=None if self.weights_init is None else _params.check_weights_init(self.weights_init, K),
            means_init=None if self.means_init is None else _params.check_means_init(self.means_init, K, D),
            covariances_init=None
            if self.precisions_init is None
            else _params.check_precisions_init(self.precisions_init, ct, K, D),
        )

    def _progress_callback(self, s: dict, callback):
        verbose, interval = s["verbose"], s["verbose_interval"]
        if not verbose:
            return callback

        def report(info: IterationInfo) -> None:
            if verbose >= 2 and info.iteration % interval == 0:
                print(f"  Iteration {info.iteration}\t time lapse {info.seconds:.5f}s\t ll change {info.change:.5f}")
            if callback is not None:
                callback(info)

        return report

    def _set_fitted(self, params: GMMParams, n_features: int, feature_names: list[str] | None) -> None:
        self._params_ = params.to("cpu")
        self.n_features_in_ = n_features
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        p = self._params_
        self.weights_ = p.weights.numpy().copy()
        self.means_ = p.means.numpy().copy()
        self.covariances_ = p.covariances.numpy().copy()
        self.precisions_cholesky_ = p.prec_chol.numpy().copy()
        if p.covariance_type in ("full", "tied"):
            self.precisions_ = (p.prec_chol @ p.prec_chol.transpose(-1, -2)).numpy()
        else:
            self.precisions_ = p.prec_chol.square().numpy()

    def fit_predict(self, X, y=None, sample_weight=None):
        """Fit, then return the most likely component of each row of X."""
        return self.fit(X, y, sample_weight=sample_weight).predict(X)

    # ------------------------------------------------------------------ inference
    def _fitted(self) -> GMMParams:
        if not hasattr(self, "_params_"):
            raise not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )
        return self._params_

    def _log_joint_chunks(self, X):
        """Yield (n, K) float64 numpy blocks of log w_k + log N(x | k) over X, in row order."""
        params = self._fitted()
        s = self._settings()
        self._check_features(X)
        source = self._open(X, s)
        if source.n_features != self.n_features_in_:
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        model = self._model(s)
        params = params.to(s["device"])
        for chunk in source.chunks():
            yield model.log_joint(params, chunk.x).double().cpu().numpy()

    def _check_features(self, X) -> None:
        """scikit-learn's feature-name consistency rules between fit and predict."""
        from ..sources import feature_names_of

        names = feature_names_of(X)
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None and names is not None:
            warnings.warn(
                f"X has feature names, but {type(self).__name__} was fitted without feature names", UserWarning
            )
        elif fitted is not None and names is None and not isinstance(X, (str, os.PathLike)):
            warnings.warn(
                f"X does not have valid feature names, but {type(self).__name__} was fitted with feature names",
                UserWarning,
            )
        elif fitted is not None and list(fitted) != names:
            raise DataError(
                "The feature names should match those that were passed during fit.\n"
                f"Fitted with: {list(fitted)}\nGot: {names}"
            )

    def _lazy(self, X, what: str):
        """Dask input: a lazy dask array computed partition by partition on the workers."""
        params = self._fitted()
        s = self._settings()
        self._check_features(X)
        if hasattr(X, "columns") and hasattr(X, "dtypes"):
            cols = list(X.columns) if s["columns"] is None else s["columns"]
            X = X[cols].to_dask_array()
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1] if X.ndim == 2 else X.shape} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        fn = partial(_predict_block, self._model(s), params, what, s["device"])
        K = self.n_components
        if what == "proba":
            return X.map_blocks(fn, dtype=np.float64, chunks=(X.chunks[0], (K,)))
        return X.map_blocks(fn, dtype=np.int64 if what == "label" else np.float64, drop_axis=1)

    def score_samples(self, X) -> np.ndarray:
        """Log-density log p(x) of each row. Shape (n_samples,). Lazy for Dask input."""
        if is_dask_collection(X):
            return self._lazy(X, "log_density")
        parts = [_logsumexp(block) for block in self._log_joint_chunks(X)]
        return np.concatenate(parts)

    def score(self, X, y=None) -> float:
        """Mean log-likelihood per row (higher is better, as in scikit-learn)."""
        if is_dask_collection(X):
            return float(self._lazy(X, "log_density").mean().compute())
        return float(self.score_samples(X).mean())

    def predict_proba(self, X) -> np.ndarray:
        """Posterior probability of each component for each row. Shape (n_samples, K). Lazy for Dask input."""
        if is_dask_collection(X):
            return self._lazy(X, "proba")
        parts = []
        for block in self._log_joint_chunks(X):
            parts.append(np.exp(block - _logsumexp(block)[:, None]))
        return np.concatenate(parts)

    def predict(self, X) -> np.ndarray:
        """Most likely component of each row. Shape (n_samples,). Lazy for Dask input."""
        if is_dask_collection(X):
            return self._lazy(X, "label")
        return np.concatenate([block.argmax(1) for block in self._log_joint_chunks(X)])

    def sample(self, n_samples=1):
        """Draw rows from the fitted mixture: (X of shape (n_samples, D), component labels)."""
        params = self._fitted()
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ParameterError(
                f"Invalid value for 'n_samples': {n_samples} . The sampling requires at least one sample."
            )
        s = self._settings()
        generator = torch.Generator().manual_seed(_params.random_seed(self.random_state))
        x, labels = self._model(s).sample(params, int(n_samples), generator)
        return x.numpy(), labels.numpy()

    def _n_parameters(self) -> int:
        self._fitted()
        return self._model(self._settings()).n_free_parameters(self.n_features_in_)

    def bic(self, X) -> float:
        """Bayesian information criterion on X (lower is better)."""
        ll = self.score_samples(X)
        return float(-2 * ll.sum() + self._n_parameters() * math.log(ll.shape[0]))

    def aic(self, X) -> float:
        """Akaike information criterion on X (lower is better)."""
        return float(-2 * self.score_samples(X).sum() + 2 * self._n_parameters())

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (safetensors + JSON metadata, atomically)."""
        from .persistence import save_estimator

        save_estimator(self, path)


def _predict_block(model: GaussianMixtureModel, params: GMMParams, what: str, device, block) -> np.ndarray:
    """One partition's labels, probabilities or log-densities; runs on a Dask worker."""
    from ..sources.validate import check_finite, raise_not_finite

    x = torch.from_numpy(np.ascontiguousarray(block, dtype=np.float64)).to(device=device, dtype=model.dtype)
    found = check_finite(x)
    if found:
        raise_not_finite(found[0], found[1], found[2], "X", " in one partition; row counted from its start")
    lj = model.log_joint(params, x).double().cpu().numpy()
    if what == "label":
        return lj.argmax(1)
    norm = _logsumexp(lj)
    return norm if what == "log_density" else np.exp(lj - norm[:, None])


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(1)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return m + np.log(np.exp(a - m[:, None]).sum(1))

