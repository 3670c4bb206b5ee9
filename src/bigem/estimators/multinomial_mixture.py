"""A mixture of multinomials: documents (bags of words) clustered by EM, from sparse data.

The façade only: its hyper-parameters, how it reads X (sparse rows, never densified), its
initialiser and its fitted attributes. Execution, inference and persistence are the
mixture base's (``_mixture``).
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from .._core import parallel
from .._core.chunking import host_budget
from .._core.errors import DataError, ParameterError
from ..em.init import SEED_SAMPLE_ROWS, RandomResponsibilities, from_centres, sample_rows
from ..em import spherical
from .._core.protocols import Task
from .._core.sparse import SparseRows
from ..models.mixture import MixtureModel, MixtureParams
from ..models.multinomial import multinomial_mixture
from .._core.optional import require
from ..sources.counts import (Tokens, checked_dask_counts, is_scipy_sparse, is_torch_sparse, open_counts,
                              reads_count_columns)
from ..sources.dask import is_dask_collection
from . import _params
from ._discrete import Y_IGNORED
from ._mixture import EXECUTION, MIXTURE_DOC, SUPERVISION, SUPERVISION_DOC, _BaseMixture

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


class _Smoothing(_params.Float):
    """A positive pseudo-count; the message says why 0 is refused."""

    def check(self, value, name, owner):
        try:
            return super().check(value, name, owner)
        except ParameterError as exc:
            raise ParameterError(
                f"{exc} With alpha=0 a word that a component's documents never use has probability 0 there, so a "
                "document holding it cannot come from that component, and one no component's documents hold scores "
                "-inf; pass a small alpha such as 1e-3.") from None


class MultinomialMixture(_BaseMixture):
    __doc__ = (
        """Mixture of multinomials fitted by EM: clusters of documents (bags of words).

    Each row is a document, the count of each word of a vocabulary of D words. Component
    k draws a document's tokens from its own word probabilities ``probabilities_[k]``;
    EM finds the components and each document's posterior over them (Nigam, McCallum,
    Thrun & Mitchell 2000): unsupervised, or semi-supervised from a few labelled
    documents and many unlabelled ones (``unlabeled_weight``). The likelihood conditions on each document's
    length, and includes the multinomial coefficient: ``score_samples`` is the
    log-probability of the counts given their total.

    X may be a scipy.sparse matrix (CSR is read in place; CSC and COO by row blocks), a
    torch sparse tensor, a dense array, tensor or DataFrame of counts, a ``.npz`` file
    written by ``scipy.sparse.save_npz`` (streamed; uncompressed files are read by
    positioned reads), Parquet or Arrow files with a list column of word ids and one of
    counts (``bigem.Tokens``, or ``columns=[ids, counts]``), or files of count columns.
    A dense copy of more than one chunk of rows is never made. Counts must be whole and
    non-negative; an all-zero row (an empty document) has likelihood 1 under every
    component and moves only the weights.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    alpha : float > 0, default=1.0
        Pseudo-count added to every word of every component (scikit-learn's
        MultinomialNB smoothing; the M-step is the MAP of a Dirichlet(alpha + 1) prior),
        so that a word never has probability 0. The log-likelihood EM reports may then
        fall by as much as the prior gains. (With ``dtype='float32'`` a document's
        log-probability carries a rounding error that grows with its length and its
        vocabulary: about 0.04 nats at 1e4 words, 0.4 at 1e5 and 4 to 6 at 1e6 (2,000
        words in the vocabulary); its posteriors, where the error cancels between
        components, agreed with float64's. Pass ``dtype='float64'`` to score long documents
        exactly.)
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood.
    max_iter : int, default=100
        Maximum EM iterations per initialisation; 0 only initialises.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        'kmeans': spherical k-means (cosine similarity of the documents' counts) on a
        sample of 20000 documents, k-means++ seeded, then each document assigned to its
        most similar centre in one pass; 'k-means++': the seeds only, then the same
        pass; 'random_from_data': K distinct sampled documents as centres; 'random':
        random responsibilities (slow to separate topics on large data; sample weights
        enter from the first E-step, as in StepMix).
    weights_init : array-like of shape (n_components,), default=None
        Initial weights (non-negative, summing to 1).
    probabilities_init : array-like of shape (n_components, n_features), default=None
        Initial word probabilities, each row positive and summing to 1.
"""
        + SUPERVISION_DOC.format(default="None", none=Y_IGNORED)
        + """        With y, the labelled documents initialise (unless initial parameters are
        given). y is an array for every X; a column name only where X has named count
        columns (DataFrames, files of count columns), not for sparse matrices, ``.npz``
        files or token lists.
"""
        + MIXTURE_DOC
        + """
    Attributes
    ----------
    weights_ : ndarray of shape (n_components,)
    probabilities_ : ndarray of shape (n_components, n_features)
        Each component's word probabilities (float64, rows sum to 1).
    mean_lengths_ : ndarray of shape (n_components,)
        Each component's mean number of tokens per document: :meth:`sample` draws
        document lengths around it (the likelihood does not model lengths).
    classes_ : ndarray
        The class labels of a semi-supervised fit.
    converged_, n_iter_, n_passes_, lower_bound_, lower_bounds_, history_, n_features_in_
        As in :class:`bigem.GaussianMixture`.
    feature_names_in_ : ndarray of str
        Only when X had string column names (count columns of a DataFrame or file).
    """
    )

    _structural = ("n_components",)
    _constraints = dict(
        n_components=_params.Int(1),
        alpha=_Smoothing(0.0, closed=False),
        init_params=_params.Choice(INIT_METHODS),
        weights_init=_params.ArrayLike(),
        probabilities_init=_params.ArrayLike(),
        **SUPERVISION,
        **EXECUTION,
    )
    _fitted_arrays = {"weights_": "weights", "probabilities_": "probabilities", "mean_lengths_": "lengths"}

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

    # ------------------------------------------------------------------ the family
    def _model(self, s) -> MixtureModel:
        advice = f"increase alpha (now {s.alpha:g}), lower n_components, or try another init_params"
        return multinomial_mixture(s.n_components, s.alpha, s.dtype, advice)

    def _rows_to_start_online(self, s, n_features: int) -> int:
        """A document's tokens, not its row, estimate the word probabilities: a row per
        component starts an online fit."""
        return s.n_components

    def _user_initialised(self, s) -> bool:
        return self.weights_init is not None or self.probabilities_init is not None

    def _open(self, X, s, sample_weight=None, min_rows: int = 1, shift="auto", fitted: bool = False,
              identify: bool = False, schema=None, **kw):
        """X as chunks of sparse count rows, with their class codes when ``labels`` are
        given; read for a fitted model, token ids beyond its vocabulary are refused.
        (``identify`` and ``schema`` do not apply: every column is a count.)"""
        return open_counts(
            X,
            dtype=s.dtype,
            device=s.device,
            memory_budget=host_budget(s.memory_budget),  # sparse rows: not measured on a GPU
            chunk_size=s.chunk_size,
            sample_weight=sample_weight,
            min_rows=min_rows,
            n_features=self.n_features_in_ if fitted and hasattr(self, "n_features_in_") else None,
            # the E-step's scratch a row: its K log-joints (then responsibilities), and a
            # weighted chunk's copy of them, in the compute dtype; its log-likelihood and coefficient
            scratch_per_row=2 * s.n_components * (torch.finfo(s.dtype).bits // 8) + 16,
            **{"cache_bytes": s.cache_budget, **kw},
        )

    @contextlib.contextmanager
    def _execution(self, X, s, sample_weight=None, columns=None, **open_kw):
        """As every mixture's; on a Dask cluster the workers check the counts of the
        partitions they read (a dask collection or Parquet/CSV files of count columns).
        Labels in a column of X need named count columns: refused before X is read."""
        y = open_kw.get("y")
        if isinstance(y, str) and not is_dask_collection(X) and not reads_count_columns(X, columns):
            raise DataError(
                f"y={y!r} names a column, but X is a sparse matrix, a .npz file or token lists, whose labels bigem "
                "does not read from a column: pass y as an array of labels (one per row, -1 unlabelled), e.g. "
                f"pyarrow.parquet.read_table(path, columns=[{y!r}]).column(0).to_numpy(zero_copy_only=False)"
            )
        fitting = open_kw.get("fitting", False)
        if self._wants_dask(X, s, fitting):
            _refuse_on_dask(X)
            if isinstance(X, (np.ndarray, torch.Tensor)):
                import dask.array as da

                X = da.from_array(np.asarray(X), chunks=(s.chunk_size or 1_000_000, -1))
            skip = tuple(c for c in (sample_weight, y) if isinstance(c, str))  # weights and labels: not counts
            X = checked_dask_counts(X, s.dtype, columns, skip)
        with super()._execution(X, s, sample_weight, columns, **open_kw) as pair:
            here = not self._wants_dask(X, s, fitting) and torch.device(s.device).type == "cpu"
            if not here or not self._model(s).component.use_scipy:
                yield pair
                return
            # on the CPU the E-step's work runs in the kernels of _core.parallel: torch's
            # own (small) operations stay on one thread, whose team would spin beside them
            with parallel.torch_on_one_thread():
                yield pair

    def _lazy(self, X, what: str, columns=None, sample_weight=None):
        """Dask input to predict or score: its counts checked where each partition is read."""
        skip = (sample_weight,) if isinstance(sample_weight, str) else ()
        return super()._lazy(checked_dask_counts(X, self._inference_settings().dtype, columns, skip), what, columns,
                             sample_weight)

    def _initialise(self, model: MixtureModel, engine, source, s, generator: torch.Generator, offset) -> MixtureParams:
        """Initial parameters by ``init_params``; user-given parts replace the computed ones
        (given probabilities without weights start from equal weights)."""
        K, D = s.n_components, source.n_features
        weights = None if self.weights_init is None else _params.check_weights_init(self.weights_init, K)
        probs = None if self.probabilities_init is None else check_probabilities_init(self.probabilities_init, K, D)
        if probs is not None:
            w = torch.full((K,), 1.0 / K, dtype=torch.float64) if weights is None else weights
            return model.make_params(w, probs)
        if s.init_params == "random":
            seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
            reference = model.params_at(torch.ones(K, D, dtype=torch.float64, device=s.device))
            task = Task(model, "e_step_given", (reference,),  # the rows as listed, as from_random_responsibilities
                        {"resp_fn": RandomResponsibilities(seed, K), "weighted": False})
            base = model.m_step(engine.reduce(task, source)).params
        else:
            sample = sample_rows(source, max(SEED_SAMPLE_ROWS, 256 * K), generator, engine)
            if not isinstance(sample, SparseRows):  # rows drawn from Dask partitions arrive dense
                sample = SparseRows.from_dense(sample)
            centres = spherical.seeds(s.init_params, sample, K, generator).to(s.device)
            base = from_centres(model, engine, source, centres)
        if weights is None:
            return base
        return MixtureParams(weights.to(base.weights), base.component)

    def _publish(self, params: MixtureParams) -> None:
        p = params.component
        self.weights_ = params.weights.numpy().copy()
        self.probabilities_ = p.probabilities.numpy().copy()
        self.mean_lengths_ = p.lengths.numpy().copy()

    def _from_attributes(self, s) -> MixtureParams:
        """The fitted arrays as parameters: shapes, weights and word probabilities that are
        distributions, non-negative lengths (ParameterError naming the bad one)."""
        K = s.n_components
        weights, probs, lengths = (torch.as_tensor(np.asarray(getattr(self, a), dtype=np.float64))
                                   for a in self._fitted_arrays)
        if weights.shape != (K,) or probs.ndim != 2 or probs.shape[0] != K or lengths.shape != (K,):
            raise ParameterError(f"tensor shapes do not match n_components={K}")
        _params.check_weights_init(weights.numpy(), K)
        check_probabilities_init(probs.numpy(), K, probs.shape[1], what="probabilities_")
        if bool((lengths < 0).any()) or not bool(torch.isfinite(lengths).all()):
            raise ParameterError("invalid parameters: mean_lengths_ must be finite and non-negative")
        return self._model(s).make_params(weights, probs, lengths)

    def _centres(self, params: MixtureParams) -> torch.Tensor:
        return params.component.probabilities

    def sample(self, n_samples=1):
        """Draw documents from the fitted mixture: (counts as a scipy.sparse CSR matrix of
        shape (n_samples, n_features), int64; component labels). Each document's length is
        a Poisson draw around its component's ``mean_lengths_``."""
        sp = require("scipy.sparse", "MultinomialMixture.sample()")

        params = self._fitted()
        _params.check_n_samples(n_samples)
        n_samples = _params.check_sample_size(n_samples, 1)
        s = self._inference_settings()
        generator = torch.Generator().manual_seed(_params.random_seed(s.random_state))
        rows, labels = self._model(s).sample(params, int(n_samples), generator)
        X = sp.csr_matrix((rows.values.numpy().astype(np.int64), rows.indices.numpy(), rows.indptr.numpy()),
                          shape=rows.shape)
        return X, labels.cpu().numpy()

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = True
        tags.input_tags.categorical = True  # whole numbers: scikit-learn's checks then draw rounded X
        return tags


def _refuse_on_dask(X) -> None:
    """Inputs that live in this process, or that only the local engine streams, are not
    sent to a cluster: say what to pass instead."""
    if is_dask_collection(X):
        return
    if is_scipy_sparse(X) or is_torch_sparse(X):
        raise ParameterError(
            "engine='dask' fits data that lives on the cluster: a dask array or dataframe of counts, or Parquet/CSV "
            f"files of count columns; X is a sparse {type(X).__name__} in this process: fit it with engine='local' "
            "and client=None, which streams its rows without densifying them"
        )
    if isinstance(X, Tokens):
        raise ParameterError("engine='dask' reads count columns; token lists (bigem.Tokens) are streamed by "
                             "engine='local' (and client=None)")


def check_probabilities_init(value, K: int, D: int, what: str = "probabilities_init") -> torch.Tensor:
    """(K, D) rows of positive probabilities summing to 1 (a word of probability 0 would make
    every document that holds it impossible under that component)."""
    p = _params.as_f64(value, what)
    if tuple(p.shape) != (K, D):
        raise ParameterError(f"The parameter '{what}' should have the shape ({K}, {D}), but got {tuple(p.shape)}")
    if not bool(torch.isfinite(p).all()) or bool((p <= 0).any()):
        raise ParameterError(f"The parameter '{what}' should hold positive probabilities (a word of probability 0 "
                             "makes any document holding it impossible)")
    sums = p.sum(1)
    if bool(((sums - 1).abs() > 1e-6).any()):
        k = int(((sums - 1).abs() > 1e-6).nonzero()[0])
        raise ParameterError(f"The parameter '{what}' should be normalized: row {k} sums to {float(sums[k]):.6g}, "
                             "not 1")
    return p / sums[:, None]
