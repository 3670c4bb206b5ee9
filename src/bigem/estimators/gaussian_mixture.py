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
from .._core.types import COVARIANCE_TYPES, Chunk, Source
from ..em.driver import Checkpoint, EMResult, IterationInfo, fit_em
from ..em.init import INIT_METHODS, initial_params, sample_rows
from ..em.online import OnlineState, minibatches, online_step, run_online
from ..engines import LocalEngine
from ..models.gmm import GaussianMixtureModel, GMMParams, ScoreTotals
from ..sources import TensorSource, has_column_names, input_files, is_file_input, is_source, open_source
from ..sources.dask import is_dask_collection
from ..sources.sinks import Sink, check_output_path
from . import _params
from ._base import EstimatorBase
from ._progress import Progress

_OWNER = "GaussianMixture"
_OUTPUTS = ("label", "proba", "log_density")


class GaussianMixture(EstimatorBase):
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
        Memory for chunks in flight (bytes, or a string such as '1GB'): for files, the
        chunk computing, the four decoded ahead of it and the reader's batch.
    cache_budget : int or str, default='1GB'
        Streamed data (files, Source objects) whose decoded size fits is kept in memory
        after the first pass, so later iterations read no file. 0 turns caching off.
    algorithm : {'em', 'online'}, default='em'
        'em': exact EM, one M-step per pass over all rows (scikit-learn's answer).
        'online': stepwise EM (Cappé & Moulines 2009), one M-step per mini-batch of
        ``batch_size`` rows over a running average of the statistics; ``max_iter`` then
        counts passes. Prefer it when only one or a few passes are affordable.
    batch_size : int, default=10000
        Rows per mini-batch of online EM and of :meth:`partial_fit`.
    learning_decay : float in (0.5, 1], default=0.7
        kappa in the online step size (t + learning_offset) ** -kappa.
    learning_offset : float, default=10.0
        t0 in the online step size: larger values damp the first steps.
    engine : {'auto', 'local', 'dask'}, default='auto'
        'local': this process; 'dask': a Dask cluster (a map over partitions and a tree
        reduction of the statistics; same answer as 'local' to rounding); 'auto': 'dask'
        for a Dask collection, else 'local'.
    client : distributed.Client, str or None, default=None
        The cluster for ``engine='dask'``: a client, or a scheduler address such as
        'tcp://host:8786'. None starts a LocalCluster for the fit and closes it after.

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
        cache_budget="1GB",
        algorithm="em",
        batch_size=10_000,
        learning_decay=0.7,
        learning_offset=10.0,
        engine="auto",
        client=None,
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
        self.cache_budget = cache_budget
        self.algorithm = algorithm
        self.batch_size = batch_size
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset
        self.engine = engine
        self.client = client

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
            cache_budget=_params.parse_memory_budget(self.cache_budget, o, "cache_budget", allow_zero=True),
            algorithm=_params.check_choice(self.algorithm, "algorithm", o, ("em", "online")),
            batch_size=_params.check_int(self.batch_size, "batch_size", o, 1),
            learning_decay=_params.check_float(self.learning_decay, "learning_decay", o, 0.5, closed=False),
            learning_offset=_params.check_float(self.learning_offset, "learning_offset", o, 0.0),
            engine=_params.check_choice(self.engine, "engine", o, ("auto", "local", "dask")),
            client=self.client,
        )
        if self.client is not None and not isinstance(self.client, (str, os.PathLike)):
            if not (hasattr(self.client, "scheduler_info") and hasattr(self.client, "compute")):
                raise ParameterError(
                    f"The 'client' parameter of {o} must be a distributed.Client, a scheduler address such as "
                    f"'tcp://host:8786', or None. Got {self.client!r} instead."
                )
        if s["learning_decay"] > 1:
            raise ParameterError(
                f"The 'learning_decay' parameter of {o} must be a float in the range (0.5, 1]. "
                f"Got {self.learning_decay!r} instead."
            )
        if not isinstance(self.warm_start, (bool, np.bool_)):
            raise ParameterError(f"The 'warm_start' parameter of {o} must be an instance of 'bool'. Got {self.warm_start!r} instead.")
        return s

    def _open(self, X, s: dict, sample_weight=None, min_rows: int = 1, **kw) -> Source:
        return open_source(
            X,
            dtype=s["dtype"],
            device=s["device"],
            memory_budget=s["memory_budget"],
            chunk_size=s["chunk_size"],
            sample_weight=sample_weight,
            min_rows=min_rows,
            **{"cache_bytes": s["cache_budget"], **kw},
        )

    @staticmethod
    def _wants_dask(X, s: dict) -> bool:
        return s["engine"] == "dask" or (s["engine"] == "auto" and is_dask_collection(X))

    @contextlib.contextmanager
    def _execution(self, X, s: dict, sample_weight=None, columns=None, **open_kw):
        """(engine, source) for X: this process, or a Dask cluster for the block's duration."""
        if not self._wants_dask(X, s):
            if is_dask_collection(X):  # engine='local': bring the rows here
                X = X.compute()
            yield LocalEngine(), self._open(X, s, sample_weight, columns=columns, **open_kw)
            return
        from ..engines.dask import session
        from ..sources.dask import open_dask_source

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
                columns=columns,
                sample_weight=sample_weight,
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
        columns=None,
        algorithm=None,
        batch_size=None,
        callback: Callable[[IterationInfo], None] | None = None,
        checkpoint=None,
        checkpoint_every: int = 10,
    ):
        """Estimate the parameters with EM (exact, or online with ``algorithm='online'``).

        Parameters
        ----------
        X : array-like (n_samples, n_features), tensor, DataFrame, path, glob, folder,
            list of paths, :class:`bigem.Files`, or a Source object
        y : ignored
        sample_weight : array-like of shape (n_samples,) or str, default=None
            Non-negative row weights; a row of weight 2 counts as two rows. A string
            names a column of X (files or a DataFrame) that holds the weights: it is
            read with the rows as they stream and is not a feature.
        columns : list of str, default=None
            Features by name (files and DataFrames); remembered in ``feature_names_in_``
            and read again by predict, score, ... when they get a file.
        algorithm, batch_size : default=None
            Override the constructor's values for this fit only.
        callback : callable, default=None
            Called with an :class:`bigem.em.driver.IterationInfo` after every iteration
            (online: after every pass).
        checkpoint : str or path, default=None
            Save the fit's state there every ``checkpoint_every`` iterations (atomically;
            exact EM only). If the file exists, the fit resumes from it and reaches the
            same result as an uninterrupted run; it is removed when the fit completes.
        checkpoint_every : int, default=10
            Iterations between checkpoints.

        Returns
        -------
        self
        """
        s = self._settings()
        if algorithm is not None:
            s["algorithm"] = _params.check_choice(algorithm, "algorithm", _OWNER, ("em", "online"))
        if batch_size is not None:
            s["batch_size"] = _params.check_int(batch_size, "batch_size", _OWNER, 1)
        one_pass = s["algorithm"] == "online" and s["max_iter"] <= 1 and s["n_init"] == 1
        if checkpoint is not None and s["algorithm"] != "em":
            raise ParameterError("checkpoint= applies to algorithm='em' only; online EM keeps no checkpoint yet")
        open_kw = {"cache_bytes": 0} if one_pass else {}
        with self._execution(X, s, sample_weight, columns, **open_kw) as (engine, source):
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
        online = s["algorithm"] == "online"
        saver = None
        if checkpoint is not None:
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
                _params.check_int(checkpoint_every, "checkpoint_every", _OWNER, 1),
                GMMParams,
                fingerprint,
            )

        def initialise(restart: int) -> GMMParams:
            started = time.perf_counter()
            if warm:
                params = self._params_
            elif online:
                params = self._online_initial(model, engine, source, s, generator, inits)
            else:
                params = initial_params(model, engine, source, s["init_params"], generator, **inits)
            if s["verbose"]:
                print(f"Initialization {restart} ({time.perf_counter() - started:.2f}s)")
            return params

        with Progress(source, s, online) as progress:
            report = progress.callback(self._verbose_callback(s, callback))
            if online:
                best, runs = self._fit_online(model, engine, progress.source, initialise, s, report, warm)
            else:
                best, runs = fit_em(
                    model,
                    engine,
                    progress.source,
                    initialise,
                    n_init=1 if warm else s["n_init"],
                    max_iter=s["max_iter"],
                    tol=s["tol"],
                    callback=report,
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

    def _fit_online(self, model, engine, source, initialise, s: dict, report, warm: bool):
        """n_init online runs of up to max_iter passes; the best by its last pass's mean."""
        runs = []
        for restart in range(1 if warm else s["n_init"]):
            state = OnlineState(initialise(restart))
            with engine.sharing_cores(source):
                converged, n, last, history, seconds = run_online(
                    model,
                    lambda: minibatches(engine.stream(source), s["batch_size"]),
                    state,
                    decay=s["learning_decay"],
                    offset=s["learning_offset"],
                    max_passes=max(1, s["max_iter"]),
                    tol=s["tol"],
                    callback=report,
                )
            runs.append((EMResult(state.params, converged, n, last, history, seconds, restart), state))
        best, self._online_ = max(runs, key=lambda r: r[0].lower_bound)
        self.n_steps_ = self._online_.steps
        return best, [r for r, _ in runs]

    def _online_initial(self, model, engine, source: Source, s: dict, generator, inits: dict) -> GMMParams:
        """Initial parameters for online EM from a row sample (3 batches), not the whole
        data: an online fit may afford one pass only. ``engine`` draws a weighted sample
        where the weights live (a Dask cluster's workers)."""
        rows = sample_rows(source, max(3 * s["batch_size"], 10 * s["n_components"]), generator, engine)
        sample = TensorSource(rows, None, rows.shape[0])
        return initial_params(model, LocalEngine(), sample, s["init_params"], generator, **inits)

    def partial_fit(self, X, y=None, sample_weight=None, *, columns=None):
        """Online EM on X: one step per ``batch_size`` rows, continuing from the last call.

        The first call initialises from a sample of X (``init_params``), or continues
        from a previous ``fit``. X streams as in fit, so it may be a file larger than
        memory. ``n_steps_`` counts the mini-batches seen; ``lower_bound_`` is the mean
        log-likelihood of this call's batches under the parameters each one met.
        """
        s = self._settings()
        fitted = hasattr(self, "_params_")
        if fitted:
            self._check_features(X, columns)
            if columns is None and has_column_names(X) and hasattr(self, "feature_names_in_"):
                columns = list(self.feature_names_in_)
        source = self._open(X, s, sample_weight, columns=columns, cache_bytes=0)
        model, engine = self._model(s), LocalEngine()
        state = getattr(self, "_online_", None)
        if fitted:
            self._check_width(source)
        if state is None and fitted:
            state = OnlineState(self._params_.to(s["device"]))
        elif state is None:
            K = s["n_components"]
            if source.n_rows < K:
                raise DataError(
                    f"Expected n_samples >= n_components but got n_components = {K}, n_samples = {source.n_rows}: "
                    "the first partial_fit batch initialises the model; pass more rows"
                )
            generator = torch.Generator().manual_seed(_params.random_seed(self.random_state))
            inits = self._user_inits(s, source.n_features)
            state = OnlineState(self._online_initial(model, engine, source, s, generator, inits))
        total = weight = 0.0
        with engine.sharing_cores(source):
            for chunk in minibatches(engine.stream(source), s["batch_size"]):
                ll = online_step(model, state, chunk, s["learning_decay"], s["learning_offset"])
                w = float(chunk.n_rows if chunk.weight is None else chunk.weight.sum())
                total, weight = total + ll * w, weight + w
        self._online_ = state
        self._set_fitted(state.params, source.n_features, source.feature_names)
        self.n_steps_ = state.steps
        self.lower_bound_ = total / weight if weight else -math.inf
        if not fitted:
            self.converged_, self.n_iter_, self.lower_bounds_, self.history_ = False, 0, [], []
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

    def _verbose_callback(self, s: dict, callback):
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

    def fit_predict(self, X, y=None, sample_weight=None, *, columns=None):
        """Fit, then return the most likely component of each row of X."""
        return self.fit(X, y, sample_weight=sample_weight, columns=columns).predict(X, columns=columns)

    # ------------------------------------------------------------------ inference
    def _fitted(self) -> GMMParams:
        if not hasattr(self, "_params_"):
            raise not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )
        return self._params_

    def _inference_source(self, X, columns=None, keep=None, sample_weight=None) -> tuple[Source, dict]:
        """X opened for inference: a file reads the fitted feature names unless told."""
        self._fitted()
        s = self._settings()
        self._check_features(X, columns)
        if columns is None and has_column_names(X) and hasattr(self, "feature_names_in_"):
            columns = list(self.feature_names_in_)
        source = self._open(X, s, sample_weight, columns=columns, keep=keep, cache_bytes=0)  # one pass: nothing to keep
        self._check_width(source)
        return source, s

    def _check_width(self, source: Source) -> None:
        if source.n_features != self.n_features_in_:
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _log_joint_blocks(self, source: Source, s: dict):
        """(chunk, (n, K) float64 numpy log w_k + log N(x | k)) over the source, in row order."""
        model = self._model(s)
        params = self._fitted().to(s["device"])
        for chunk in LocalEngine().stream(source):
            yield chunk, model.log_joint(params, chunk.x).double().cpu().numpy()

    def _log_joint_chunks(self, X, columns=None):
        """(n, K) float64 log-joints of X's rows in order, a chunk at a time (Dask input
        takes :meth:`_lazy` instead)."""
        source, s = self._inference_source(X, columns)
        for _, block in self._log_joint_blocks(source, s):
            yield block

    def write_predictions(self, X, out, *, outputs=("label",), id_column=None, columns=None) -> str:
        """Stream per-row outputs of X to a .parquet, .csv or .npy file; returns its path.

        ``outputs``: any of 'label' (most likely component), 'proba' (one column per
        component: proba_0, ...), 'log_density' (log p(x)). ``id_column``: a column of
        X's file or DataFrame copied to the output first, to join results back. Rows are
        computed and written chunk by chunk: memory stays bounded whatever the size of X.
        The file appears only when complete; on any error nothing is left behind.
        """
        outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        unknown = [o for o in outputs if o not in _OUTPUTS]
        if not outputs or unknown:
            raise ParameterError(f"outputs must be one or more of {list(_OUTPUTS)}; got {list(outputs)}")
        path = check_output_path(out, input_files(X))
        keep = None if id_column is None else [str(id_column)]
        source, s = self._inference_source(X, columns, keep)
        with Sink(path, source.n_rows) as sink:
            for chunk, block in self._log_joint_blocks(source, s):
                cols: dict[str, object] = {} if keep is None else {keep[0]: chunk.extra[keep[0]]}
                norm = _logsumexp(block)
                if "label" in outputs:
                    cols["label"] = block.argmax(1)
                if "proba" in outputs:
                    cols["proba"] = np.exp(block - norm[:, None])
                if "log_density" in outputs:
                    cols["log_density"] = norm
                sink.write(cols)
            return sink.commit()

    def _check_features(self, X, columns=None) -> None:
        """scikit-learn's feature-name consistency rules between fit and predict."""
        from ..sources import feature_names_of

        if is_file_input(X) or is_source(X):
            return  # files are read by the fitted names (or the columns= given): nothing to compare
        names = feature_names_of(X) if columns is None else [str(c) for c in columns]
        fitted = getattr(self, "feature_names_in_", None)
        if fitted is None and names is not None:
            warnings.warn(
                f"X has feature names, but {type(self).__name__} was fitted without feature names", UserWarning
            )
        elif fitted is not None and names is None:
            warnings.warn(
                f"X does not have valid feature names, but {type(self).__name__} was fitted with feature names",
                UserWarning,
            )
        elif fitted is not None and list(fitted) != names:
            raise DataError(
                "The feature names should match those that were passed during fit.\n"
                f"Fitted with: {list(fitted)}\nGot: {names}"
            )

    def _lazy(self, X, what: str, columns=None, sample_weight=None):
        """Dask input: a lazy dask array, computed partition by partition where X lives;
        for "totals", one row of :class:`ScoreTotals` fields per partition."""
        from ..sources.dask import rows_with_weights

        params = self._fitted()
        s = self._settings()
        self._check_features(X, columns)
        X, weighted = rows_with_weights(X, columns, sample_weight)
        if X.ndim != 2 or X.shape[1] - weighted != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1] - weighted if X.ndim == 2 else X.shape} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        fn = partial(_predict_block, self._model(s), params, what, s["device"], weighted)
        if what == "totals":
            return X.map_blocks(fn, dtype=np.float64, chunks=((1,) * X.numblocks[0], (3,)))
        if what == "proba":
            return X.map_blocks(fn, dtype=np.float64, chunks=(X.chunks[0], (self.n_components,)))
        return X.map_blocks(fn, dtype=np.int64 if what == "label" else np.float64, drop_axis=1)

    def _score_totals(self, X, columns=None, sample_weight=None) -> ScoreTotals:
        """:class:`ScoreTotals` of X in one streamed pass, in the memory of a chunk whatever
        the data's size; Dask input is reduced where it lives."""
        if is_dask_collection(X):
            totals = ScoreTotals(*(float(v) for v in self._lazy(X, "totals", columns, sample_weight).sum(0).compute()))
        else:
            source, s = self._inference_source(X, columns, sample_weight=sample_weight)
            totals = LocalEngine().reduce(partial(self._model(s).score_totals, self._fitted().to(s["device"])), source)
        if not totals.weight > 0:
            raise DataError("sample_weight sums to zero over X: give at least one row a positive weight")
        return totals

    def score_samples(self, X, *, columns=None, out=None, id_column=None) -> np.ndarray | str:
        """Log-density log p(x) of each row, shape (n_samples,); with ``out``, written to
        that file instead (see :meth:`write_predictions`) and its path returned. A lazy
        dask array for Dask input."""
        if is_dask_collection(X) and out is None:
            return self._lazy(X, "log_density", columns)
        if out is not None:
            return self.write_predictions(X, out, outputs=("log_density",), id_column=id_column, columns=columns)
        parts = [_logsumexp(block) for block in self._log_joint_chunks(X, columns)]
        return np.concatenate(parts)

    def score(self, X, y=None, *, columns=None) -> float:
        """Mean log-likelihood per row (higher is better, as in scikit-learn), streamed:
        files of any size are scored in the memory of a chunk."""
        totals = self._score_totals(X, columns)
        return totals.loglik / totals.weight

    def predict_proba(self, X, *, columns=None, out=None, id_column=None) -> np.ndarray | str:
        """Posterior probability of each component for each row, shape (n_samples, K);
        with ``out``, written to that file instead and its path returned. A lazy dask
        array for Dask input."""
        if is_dask_collection(X) and out is None:
            return self._lazy(X, "proba", columns)
        if out is not None:
            return self.write_predictions(X, out, outputs=("proba",), id_column=id_column, columns=columns)
        parts = []
        for block in self._log_joint_chunks(X, columns):
            parts.append(np.exp(block - _logsumexp(block)[:, None]))
        return np.concatenate(parts)

    def predict(self, X, *, columns=None, out=None, id_column=None) -> np.ndarray | str:
        """Most likely component of each row, shape (n_samples,); with ``out``, written to
        that file instead and its path returned. A lazy dask array for Dask input."""
        if is_dask_collection(X) and out is None:
            return self._lazy(X, "label", columns)
        if out is not None:
            return self.write_predictions(X, out, outputs=("label",), id_column=id_column, columns=columns)
        return np.concatenate([block.argmax(1) for block in self._log_joint_chunks(X, columns)])

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

    def bic(self, X, *, columns=None) -> float:
        """Bayesian information criterion on X (lower is better); streamed like :meth:`score`."""
        totals = self._score_totals(X, columns)
        return -2 * totals.loglik + self._n_parameters() * math.log(totals.weight)

    def aic(self, X, *, columns=None) -> float:
        """Akaike information criterion on X (lower is better); streamed like :meth:`score`."""
        return -2 * self._score_totals(X, columns).loglik + 2 * self._n_parameters()

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (safetensors + JSON metadata, atomically)."""
        from .persistence import save_estimator

        save_estimator(self, path)


def _predict_block(model: GaussianMixtureModel, params: GMMParams, what: str, device, weighted: bool, block) -> np.ndarray:
    """One partition's labels, probabilities or log-densities, or its score totals (the
    weights, when ``weighted``, in its last column); runs on a Dask worker."""
    from ..sources.validate import check_finite, raise_not_finite

    block = np.asarray(block, dtype=np.float64)
    x = torch.from_numpy(np.ascontiguousarray(block[:, :-1] if weighted else block)).to(device=device, dtype=model.dtype)
    found = check_finite(x)
    if found:
        raise_not_finite(found[0], found[1], found[2], "X", " in one partition; row counted from its start")
    if what == "totals":
        w = None
        if weighted:
            w = torch.from_numpy(np.ascontiguousarray(block[:, -1])).to(device=device, dtype=model.dtype)
            bad = ~torch.isfinite(w) | (w < 0)
            if bool(bad.any()):
                row = int(bad.int().argmax())
                raise DataError(f"X: sample_weight has {float(w[row])} at row {row} of one partition (counted from "
                                "its start); weights must be finite and non-negative")
        t = model.score_totals(params, Chunk(x, w, 0))
        return np.array([[t.loglik, t.hard, t.weight]])
    log_joint = model.log_joint(params, x).double().cpu().numpy()
    if what == "label":
        return log_joint.argmax(1)
    norm = _logsumexp(log_joint)
    return norm if what == "log_density" else np.exp(log_joint - norm[:, None])


def _logsumexp(a: np.ndarray) -> np.ndarray:
    m = a.max(1)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(divide="ignore"):
        return m + np.log(np.exp(a - m[:, None]).sum(1))

