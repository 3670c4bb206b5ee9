"""hmmlearn-compatible hidden Markov models on bigem's EM driver: GaussianHMM,
CategoricalHMM, PoissonHMM.

Same constructor parameters, fitted attributes (``startprob_``, ``transmat_``,
``means_``, ``covars_``, ``emissionprob_``, ``lambdas_``) and methods (``fit(X,
lengths)``, ``score``, ``score_samples``, ``predict``, ``predict_proba``, ``decode``,
``sample``) as hmmlearn 0.3, so from the same initial parameters the fits agree to
rounding. Differences, all deliberate:

* ``monitor_.converged`` is True only when the change of log-likelihood fell below
  ``tol`` (hmmlearn also reports True when ``n_iter`` ran out);
* a state that no sequence visits keeps its previous row of ``transmat_`` and its
  emission parameters (hmmlearn leaves a zero row, or NaN means);
* a sequence impossible under the model (zero-probability start, transition or
  symbol) scores -inf with a warning; fitting leaves it out of the statistics
  (hmmlearn propagates NaN into the parameters);
* bigem's ``device``, ``dtype`` and ``memory_budget``; X may be a ``.npy`` path or
  Parquet/CSV/Arrow files (or a DataFrame) whose ``sequence_column`` tells the
  sequences apart, streamed in batches of whole sequences.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from dataclasses import fields

import numpy as np
import torch

from .._core.errors import DataError, ModelFileError, ParameterError, not_fitted_error
from .._core.numerics import parse_device, parse_dtype
from .._core.types import COVARIANCE_TYPES
from ..em.driver import IterationInfo, run_em
from ..em.init import kmeans_plusplus, lloyd, sample_rows
from ..engines import LocalEngine
from ..models.hmm import HMMModel, HMMParams, viterbi
from ..models.hmm_emissions import (
    CategoricalEmission,
    CategoricalParams,
    GaussianEmission,
    GaussianParams,
    PoissonEmission,
    PoissonParams,
)
from ..sources import Files, describe_input, open_source, sequence_lengths
from ..sources.sequences import SequenceBatches, check_lengths
from . import _params
from ._base import EstimatorBase


class ImpossibleSequenceWarning(RuntimeWarning):
    """A sequence has zero probability under the model (its log-likelihood is -inf)."""


class ConvergenceMonitor:
    """hmmlearn's monitor: ``history`` (total log-likelihood entering each iteration),
    ``iter``, ``converged``, ``tol``, ``n_iter``; plus ``seconds`` per iteration."""

    def __init__(self, tol: float, n_iter: int, verbose: bool) -> None:
        self.tol, self.n_iter, self.verbose = tol, n_iter, verbose
        self.history: list[float] = []
        self.seconds: list[float] = []
        self.iter = 0
        self.converged = False

    def __repr__(self) -> str:
        return f"ConvergenceMonitor(tol={self.tol}, n_iter={self.n_iter}, iter={self.iter}, converged={self.converged})"


_COMMON_DOC = """
    n_components : int, default=1
        Number of hidden states K.
    startprob_prior : float or array of shape (n_components,), default=1.0
        Dirichlet concentration of the start probabilities (1: no prior, MAP = ML).
    transmat_prior : float or array of shape (n_components, n_components), default=1.0
        Dirichlet concentration of each row of the transition matrix.
    algorithm : {'viterbi', 'map'}, default='viterbi'
        Decoder used by ``predict`` and ``decode``.
    random_state : int, RandomState, Generator or None, default=None
        Seed for initialisation and sampling.
    n_iter : int, default=10
        Maximum EM iterations.
    tol : float, default=1e-2
        Convergence threshold on the change of the total log-likelihood.
    verbose : bool, default=False
        Print the log-likelihood and its change after each iteration.
    params : str
        Letters of the parameters the M-step updates ('s' start, 't' transitions, and
        the emission's letters).
    init_params : str
        Letters of the parameters initialised by ``fit``; the others must be set.
    device : str or torch.device, default='cpu'
        Where the arithmetic runs ('cpu', 'cuda', ...).
    dtype : {'float32', 'float64'} or torch dtype, default='float32'
        Precision of the forward-backward arithmetic; statistics and parameters are float64.
    memory_budget : int or str, default=None
        Memory for a batch of sequences in flight (bytes, or a string such as '1GB');
        None: '128MB' on the CPU, '1GB' on a GPU. Larger batches mean fewer time steps
        per iteration (each step serves every sequence of the batch). On the CPU
        128MB keeps the whole fit within hmmlearn's footprint on 1e6 rows at about the
        speed of 256MB (BENCHMARKS.md); on a GPU each step is a kernel launch, and
        1000 sequences x 1000 steps took 0.105 s per iteration at 256MB against
        0.235 s at 128MB (H200).
"""


class _BaseHMM(EstimatorBase, ABC):
    _emission_letters = ""
    _integer_data = False  # sample() returns integers (symbols, counts)
    _estimator_type = "density_estimator"

    # -------------------------------------------------------------- hooks per emission
    # Every concrete HMM defines the four abstract hooks; the two others default to nothing.
    @abstractmethod
    def _emission(self, s: dict):
        """The emission model (math) for the validated settings."""

    def _emission_settings(self, s: dict) -> None:
        pass

    def _check_rows(self, source, s: dict) -> None:
        pass

    @abstractmethod
    def _init_emission(self, s: dict, source, generator: torch.Generator, engine) -> None:
        """Initial emission parameters (as hmmlearn's init_params letters ask)."""

    @abstractmethod
    def _emission_params(self, s: dict, emission):
        """The current emission parameters, as the emission model takes them."""

    @abstractmethod
    def _set_emission(self, p) -> None:
        """Fitted emission parameters to the public attributes (means_, covars_, ...)."""

    # -------------------------------------------------------------- settings
    def _settings(self) -> dict:
        o = type(self).__name__
        s = dict(
            n_components=_params.check_int(self.n_components, "n_components", o, 1),
            algorithm=_params.check_choice(self.algorithm, "algorithm", o, ("viterbi", "map")),
            n_iter=_params.check_int(self.n_iter, "n_iter", o, 0),
            tol=_params.check_float(self.tol, "tol", o, 0.0),
            verbose=bool(self.verbose),
            device=parse_device(self.device),
            dtype=parse_dtype(self.dtype),
        )
        budget = self.memory_budget
        if budget is None:  # see the class docstring: small batches on CPU, few large launches on a GPU
            budget = "128MB" if s["device"].type == "cpu" else "1GB"
        s["memory_budget"] = _params.parse_memory_budget(budget, o)
        letters = "st" + self._emission_letters
        for name in ("params", "init_params"):
            value = getattr(self, name)
            if not isinstance(value, str) or set(value) - set(letters):
                raise ParameterError(
                    f"The {name!r} parameter of {o} must be a string of letters from {letters!r}. Got {value!r} instead."
                )
            s[name] = value
        K = s["n_components"]
        s["startprob_prior"] = _prior(self.startprob_prior, (K,), "startprob_prior", o)
        s["transmat_prior"] = _prior(self.transmat_prior, (K, K), "transmat_prior", o)
        self._emission_settings(s)
        return s

    def _model(self, s: dict) -> HMMModel:
        return HMMModel(
            self._emission(s), s["n_components"], s["dtype"], params=s["params"],
            startprob_prior=s["startprob_prior"], transmat_prior=s["transmat_prior"],
        )

    def _open(self, X, lengths, s: dict, columns=None, sequence_column=None) -> SequenceBatches:
        if sequence_column is not None:
            if lengths is not None:
                raise DataError(
                    "both lengths and sequence_column were given; pass one: the lengths of the sequences, "
                    "or the column whose runs of equal ids are the sequences"
                )
            lengths, others = sequence_lengths(X, sequence_column)
            if columns is None and not (isinstance(X, Files) and X.columns is not None):
                columns = others  # every column but the ids
        rows = open_source(X, dtype=s["dtype"], device=s["device"], memory_budget=1 << 62, columns=columns)
        lens = check_lengths(lengths, rows.n_rows, describe_input(X))
        itemsize = torch.finfo(s["dtype"]).bits // 8
        # per row in a batch: about six (K,) vectors (emissions, forward, backward, their
        # products), three copies of the row (converted, packed, features) and int64 indices
        per_row = itemsize * (6 * s["n_components"] + 3 * rows.n_features + 4) + 48
        batch = max(1, s["memory_budget"] // per_row)
        # read files in chunks of about one batch (FirstPassSource wraps the file source)
        reader = getattr(rows, "inner", rows)
        if hasattr(reader, "chunk_rows"):
            reader.chunk_rows = max(1, min(batch, rows.n_rows))
        source = SequenceBatches(rows, lens, batch)
        self._check_rows(source, s)
        return source

    # -------------------------------------------------------------- fitting
    def fit(self, X, lengths=None, *, columns=None, sequence_column=None):
        """Estimate the parameters with Baum-Welch EM.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), tensor, DataFrame, or files
            The rows of all sequences, one sequence after the other. Files: a ``.npy``
            path, or Parquet/CSV/Arrow files (a path, folder, glob, list or ``Files``).
        lengths : array-like of int, shape (n_sequences,), or path to .npy, default=None
            Rows of each sequence, summing to n_samples; None: X is one sequence.
        columns : list of str, default=None
            The feature columns of a DataFrame or of files (default: all columns but
            ``sequence_column``).
        sequence_column : str, default=None
            Instead of ``lengths``: the column of a DataFrame or of files holding a
            sequence id (strings or integers); each run of equal consecutive ids is one
            sequence, so the rows of a sequence must be contiguous and in time order.

        Returns
        -------
        self
        """
        s = self._settings()
        source = self._open(X, lengths, s, columns, sequence_column)
        self._check_features(source)
        self.n_features = source.n_features
        generator = torch.Generator().manual_seed(_params.random_seed(self.random_state))
        engine = LocalEngine()
        self._init(s, source, generator, engine)
        params = self._current_params(s)
        model = self._model(s)
        monitor = ConvergenceMonitor(s["tol"], s["n_iter"], s["verbose"])
        warned = []

        def report(info: IterationInfo) -> None:
            total, n_bad, first_bad = info.params.e_step_summary
            monitor.history.append(total)
            monitor.seconds.append(info.seconds)
            if n_bad and not warned:
                warned.append(True)
                warnings.warn(
                    f"{n_bad} sequence(s) are impossible under the current parameters (first: sequence "
                    f"{first_bad}): a zero-probability start, transition or emission; they are left out of "
                    "this fit. Give startprob_/transmat_/emission parameters non-zero entries where the data "
                    "needs them.",
                    ImpossibleSequenceWarning,
                    stacklevel=3,
                )
            if s["verbose"]:
                delta = total - monitor.history[-2] if len(monitor.history) > 1 else float("nan")
                print(f"{info.iteration:>10d} {total:>16.8f} {delta:>+16.8f}")

        # run_em's tol is on the per-step log-likelihood; hmmlearn's on the total
        result = run_em(
            model, engine, source, params, max_iter=s["n_iter"], tol=s["tol"] / source.n_rows, callback=report
        )
        monitor.iter = result.n_iter
        monitor.converged = result.converged
        self.monitor_ = monitor
        self._set_params(result.params)
        return self

    def _check_features(self, source) -> None:
        if hasattr(self, "n_features") and getattr(self, "_fitted_features", None) not in (None, source.n_features):
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self._fitted_features} features as input."
            )

    def _needs_init(self, s: dict, code: str, name: str) -> bool:
        if code in s["init_params"]:
            if hasattr(self, name):
                warnings.warn(
                    f"Even though the {name!r} attribute is set, it will be overwritten during initialization "
                    f"because 'init_params' contains {code!r}",
                    UserWarning,
                    stacklevel=4,
                )
            return True
        if not hasattr(self, name):
            raise ParameterError(
                f"{name} is not set and 'init_params' does not contain {code!r}: set {name} before fit, "
                f"or add {code!r} to init_params"
            )
        return False

    def _init(self, s: dict, source, generator: torch.Generator, engine) -> None:
        K = s["n_components"]
        if self._needs_init(s, "s", "startprob_"):
            self.startprob_ = _dirichlet(torch.full((K,), 1.0 / K), generator).numpy()
        if self._needs_init(s, "t", "transmat_"):
            self.transmat_ = _dirichlet(torch.full((K, K), 1.0 / K), generator).numpy()
        self._init_emission(s, source, generator, engine)

    def _current_params(self, s: dict) -> HMMParams:
        K = s["n_components"]
        startprob = _stochastic(self.startprob_, (K,), "startprob_")
        transmat = _stochastic(self.transmat_, (K, K), "transmat_")
        emission = self._emission_params(s, self._emission(s))
        if getattr(self, "n_features", None) is None:  # parameters set by hand, never fitted
            self.n_features = int(self._emission_width(emission))
        return HMMParams(startprob, transmat, emission).to(s["device"])

    def _emission_width(self, emission) -> int:
        """n_features implied by the emission parameters (their first field's last axis:
        means, emissionprob or lambdas)."""
        return int(getattr(emission, fields(emission)[0].name).shape[-1])

    def _set_params(self, p: HMMParams) -> None:
        p = p.to("cpu")
        self.startprob_ = p.startprob.numpy().copy()
        self.transmat_ = p.transmat.numpy().copy()
        self._set_emission(p.emission)
        self._fitted_features = self.n_features
        self._params_ = p

    # -------------------------------------------------------------- inference
    def _fitted(self, s: dict) -> HMMParams:
        if not hasattr(self, "startprob_"):
            raise not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )
        return self._current_params(s)

    def _batches(self, X, lengths, s: dict, where: dict):
        params = self._fitted(s)
        source = self._open(X, lengths, s, **where)
        if source.n_features != self.n_features:
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features} features as input."
            )
        return params, source

    def _warn_impossible(self, loglik: np.ndarray) -> None:
        bad = np.nonzero(~np.isfinite(loglik))[0]
        if len(bad):
            warnings.warn(
                f"{len(bad)} sequence(s) are impossible under the model (first: sequence {int(bad[0])}): "
                "their log-likelihood is -inf and their posteriors are NaN",
                ImpossibleSequenceWarning,
                stacklevel=3,
            )

    def _posteriors(self, X, lengths, where: dict):
        """(per-sequence log-likelihoods, posteriors (n_samples, K) float64)."""
        s = self._settings()
        params, source = self._batches(X, lengths, s, where)
        model = self._model(s)
        lls, posts = [], []
        for chunk in source.chunks():
            post = model.posteriors(params, chunk, need_trans=False)
            ll = post.loglik.cpu().numpy()
            gamma = post.gamma.double().cpu().numpy()
            bad = ~np.isfinite(ll)
            if bad.any():
                gamma[np.repeat(bad, chunk.lengths.numpy())] = np.nan
            lls.append(ll)
            posts.append(gamma)
        ll = np.concatenate(lls)
        self._warn_impossible(ll)
        return ll, np.concatenate(posts)

    def score_samples(self, X, lengths=None, *, columns=None, sequence_column=None):
        """Log-likelihood of X and the posterior of each state at each row.

        X, lengths, columns, sequence_column: as for :meth:`fit`.

        Returns
        -------
        log_prob : float
            Total log-likelihood of all sequences.
        posteriors : ndarray of shape (n_samples, n_components)
        """
        ll, post = self._posteriors(X, lengths, _where(columns, sequence_column))
        return float(ll.sum()), post

    def score(self, X, lengths=None, *, columns=None, sequence_column=None) -> float:
        """Total log-likelihood of all sequences of X (hmmlearn's convention); arguments as for :meth:`fit`."""
        s = self._settings()
        params, source = self._batches(X, lengths, s, _where(columns, sequence_column))
        model = self._model(s)
        lls = [model.posteriors(params, c, need_trans=False).loglik.cpu().numpy() for c in source.chunks()]
        ll = np.concatenate(lls)
        self._warn_impossible(ll)
        return float(ll.sum())

    def predict_proba(self, X, lengths=None, *, columns=None, sequence_column=None) -> np.ndarray:
        """Posterior probability of each state at each row. Shape (n_samples, n_components)."""
        return self._posteriors(X, lengths, _where(columns, sequence_column))[1]

    def decode(self, X, lengths=None, algorithm=None, *, columns=None, sequence_column=None):
        """Most likely states: (log-probability, states of shape (n_samples,)).

        'viterbi': the jointly most likely path and its log-probability; 'map': the most
        likely state at each row and the log-likelihood of X. X, lengths, columns,
        sequence_column: as for :meth:`fit`.
        """
        where = _where(columns, sequence_column)
        s = self._settings()
        algorithm = s["algorithm"] if algorithm is None else _params.check_choice(
            algorithm, "algorithm", type(self).__name__, ("viterbi", "map")
        )
        if algorithm == "map":
            ll, post = self._posteriors(X, lengths, where)
            return float(ll.sum()), np.nan_to_num(post, nan=0.0).argmax(1)
        params, source = self._batches(X, lengths, s, where)
        model = self._model(s)
        lps, paths = [], []
        for chunk in source.chunks():
            log_b = model.log_emission(params, chunk.x)
            lp, path = viterbi(log_b, chunk.lengths.numpy(), params.startprob, params.transmat)
            lps.append(lp.cpu().numpy())
            paths.append(path.cpu().numpy())
        lp = np.concatenate(lps)
        self._warn_impossible(lp)
        return float(lp.sum()), np.concatenate(paths)

    def predict(self, X, lengths=None, *, columns=None, sequence_column=None) -> np.ndarray:
        """Most likely state of each row (by ``algorithm``). Shape (n_samples,)."""
        return self.decode(X, lengths, columns=columns, sequence_column=sequence_column)[1]

    def sample(self, n_samples=1, random_state=None):
        """One sequence of ``n_samples`` steps: (X of shape (n_samples, n_features), states)."""
        s = self._settings()
        params = self._fitted(s)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ParameterError(f"n_samples must be a positive int, got {n_samples!r}")
        seed = _params.random_seed(self.random_state if random_state is None else random_state)
        x, states = self._model(s).sample(params.to("cpu"), int(n_samples), torch.Generator().manual_seed(seed))
        x = x.numpy()
        return (x.astype(np.int64) if self._integer_data else x), states.numpy()

    # -------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (safetensors + JSON metadata, atomically)."""
        from .persistence import save_hmm

        s = self._settings()
        self._fitted(s)
        save_hmm(self, path)

    def _tensors(self) -> dict:
        """Fitted arrays by attribute name (what ``save`` writes)."""
        out = {"startprob_": self.startprob_, "transmat_": self.transmat_}
        for name in self._emission_attributes:
            out[name] = getattr(self, name)
        return {k: torch.from_numpy(np.asarray(v, dtype=np.float64).copy()) for k, v in out.items()}


# ------------------------------------------------------------------ helpers
def _where(columns, sequence_column) -> dict:
    """Which columns are features and which holds the sequence ids (None: not by name)."""
    return {"columns": None if columns is None else list(columns), "sequence_column": sequence_column}


def _prior(value, shape, name: str, owner: str) -> torch.Tensor:
    try:
        t = torch.as_tensor(np.asarray(value, dtype=np.float64))
    except (TypeError, ValueError):
        raise ParameterError(f"The {name!r} parameter of {owner} must be a float or an array. Got {value!r}.") from None
    if not bool(torch.isfinite(t).all()) or bool((t < 0).any()):
        raise ParameterError(f"The {name!r} parameter of {owner} must be finite and non-negative. Got {value!r}.")
    try:
        return torch.broadcast_to(t, shape).clone()
    except RuntimeError:
        raise ParameterError(f"The {name!r} parameter of {owner} must broadcast to shape {shape}, got {tuple(t.shape)}") from None


def _stochastic(value, shape, name: str) -> torch.Tensor:
    """A user-set startprob_ / transmat_: finite, non-negative, each row summing to 1."""
    t = _params._as_f64(value, name)
    _params._check_shape(t, shape, name)
    if bool((t < 0).any()):
        raise ParameterError(f"{name} has negative entries (min {float(t.min()):.6g}); probabilities must be >= 0")
    sums = t.sum(-1)
    if not bool(torch.allclose(sums, torch.ones_like(sums), rtol=0, atol=1e-8)):
        row = int(torch.argmax((sums - 1).abs())) if t.ndim == 2 else 0
        what = f"row {row} of {name}" if t.ndim == 2 else name
        raise ParameterError(
            f"{what} sums to {float(sums.reshape(-1)[row]):.10g}, not 1; normalise it (divide by its sum)"
        )
    return t


def _dirichlet(alpha: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Dirichlet draws (rows) from Gamma variates with an explicit generator."""
    g = torch._standard_gamma(alpha.double(), generator=generator)
    total = g.sum(-1, keepdim=True)
    g = torch.where(total > 0, g, torch.ones_like(g))
    return g / g.sum(-1, keepdim=True)


def _row_moments(source) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean (D,) and covariance (D, D) of all rows, float64, one pass about a probe mean."""
    probe = source.take(torch.arange(min(source.n_rows, 1024))).double().mean(0)
    n, s1, s2 = 0, 0.0, 0.0
    for chunk in source.rows.chunks():
        xc = chunk.x.double() - probe
        n += xc.shape[0]
        s1 = s1 + xc.sum(0)
        s2 = s2 + xc.T @ xc
    mean = s1 / n
    cov = (s2 - n * torch.outer(mean, mean)) / max(n - 1, 1)
    return (probe + mean).cpu(), cov.cpu()


# ------------------------------------------------------------------ Gaussian
class GaussianHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with Gaussian emissions, a drop-in for ``hmmlearn.hmm.GaussianHMM``.

    Parameters
    ----------"""
        + _COMMON_DOC
        + """    covariance_type : {'diag', 'full', 'tied', 'spherical'}, default='diag'
        Covariance of each state's Gaussian.
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance that initialises ``covars_``.
    means_prior, means_weight : float or array, default=0
        Normal prior on the means (hmmlearn's).
    covars_prior, covars_weight : float or array, default=1e-2, 1
        Inverse-Wishart / inverse-gamma prior on the covariances (hmmlearn's; covars_prior
        is added to every covariance entry, as hmmlearn does).

    Attributes
    ----------
    startprob_ : ndarray (n_components,)
    transmat_ : ndarray (n_components, n_components)
    means_ : ndarray (n_components, n_features)
    covars_ : ndarray (n_components, n_features, n_features)
        Full matrices for every type (hmmlearn's convention); ``_covars_`` holds the compact form.
    monitor_ : ConvergenceMonitor
    n_features : int
    """
    )
    _emission_letters = "mc"
    _emission_attributes = ("means_", "_covars_")

    def __init__(
        self,
        n_components=1,
        covariance_type="diag",
        min_covar=1e-3,
        startprob_prior=1.0,
        transmat_prior=1.0,
        means_prior=0,
        means_weight=0,
        covars_prior=1e-2,
        covars_weight=1,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stmc",
        init_params="stmc",
        device="cpu",
        dtype="float32",
        memory_budget=None,
    ):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight
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

    @property
    def covars_(self) -> np.ndarray:
        """Covariances as full matrices (n_components, n_features, n_features)."""
        c, K = self._covars_, self.n_components
        D = self.means_.shape[1]
        ct = self.covariance_type
        if ct == "full":
            return c.copy()
        if ct == "tied":
            return np.tile(c, (K, 1, 1))
        if ct == "diag":
            return np.stack([np.diag(v) for v in c])
        return np.stack([np.eye(D) * v for v in np.asarray(c).reshape(-1)[:K]])

    @covars_.setter
    def covars_(self, value) -> None:
        self._covars_ = np.array(value, dtype=np.float64, copy=True)

    def _emission_settings(self, s: dict) -> None:
        o = type(self).__name__
        s["covariance_type"] = _params.check_choice(self.covariance_type, "covariance_type", o, COVARIANCE_TYPES)
        s["min_covar"] = _params.check_float(self.min_covar, "min_covar", o, 0.0)
        for name in ("means_prior", "means_weight", "covars_prior", "covars_weight"):
            value = np.asarray(getattr(self, name), dtype=np.float64) if not isinstance(getattr(self, name), str) else None
            if value is None or not np.isfinite(value).all():
                raise ParameterError(f"The {name!r} parameter of {o} must be a finite float or array. Got {getattr(self, name)!r}.")
            s[name] = value if value.ndim else float(value)

    def _emission(self, s: dict) -> GaussianEmission:
        return GaussianEmission(
            s["covariance_type"], s["means_prior"], s["means_weight"], s["covars_prior"], s["covars_weight"]
        )

    def _init_emission(self, s: dict, source, generator, engine) -> None:
        K = s["n_components"]
        if self._needs_init(s, "m", "means_"):
            if source.n_rows < K:
                raise DataError(
                    f"Expected n_samples >= n_components but got n_components = {K}, n_samples = {source.n_rows}"
                )
            sample = sample_rows(source.rows, max(20_000, 256 * K), generator)
            centres = lloyd(engine, source.rows, kmeans_plusplus(sample, K, generator), s["dtype"])
            self.means_ = centres.cpu().numpy()
        if self._needs_init(s, "c", "covars_"):
            _, cov = _row_moments(source)
            D = cov.shape[0]
            cv = cov.numpy() + s["min_covar"] * np.eye(D)
            ct = s["covariance_type"]
            self._covars_ = {
                "full": np.tile(cv, (K, 1, 1)),
                "tied": cv,
                "diag": np.tile(np.diag(cv), (K, 1)),
                "spherical": np.full(K, np.diag(cv).mean()),
            }[ct]

    def _emission_params(self, s: dict, emission: GaussianEmission) -> GaussianParams:
        K, ct = s["n_components"], s["covariance_type"]
        means = _params._as_f64(self.means_, "means_")
        D = means.shape[-1] if means.ndim == 2 else -1
        _params._check_shape(means, (K, D), "means_")
        covars = _params._as_f64(self._covars_, "covars_")
        if ct == "spherical" and covars.shape == (K, D):  # hmmlearn stores spherical as (K, D) after its M-step
            covars = covars[:, 0].contiguous()
        shapes = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
        if tuple(covars.shape) == (K, D, D) and ct != "full":  # full matrices given for another type
            covars = {"tied": covars[0], "diag": torch.diagonal(covars, dim1=1, dim2=2), "spherical": torch.diagonal(covars, dim1=1, dim2=2).mean(1)}[ct]
        _params._check_shape(covars, shapes[ct], "covars_")
        if ct in ("full", "tied") and not torch.allclose(covars, covars.transpose(-1, -2), rtol=1e-8, atol=1e-12):
            raise ParameterError("covars_ must be symmetric, positive-definite matrices")
        if ct in ("diag", "spherical") and bool((covars <= 0).any()):
            raise ParameterError("covars_ must be positive")
        try:
            return emission.make_params(means, covars)
        except ValueError as exc:
            raise ParameterError(f"covars_ must be symmetric, positive-definite: {exc}") from None

    def _set_emission(self, p: GaussianParams) -> None:
        self.means_ = p.means.numpy().copy()
        self._covars_ = p.covars.numpy().copy()


# ------------------------------------------------------------------ categorical
class CategoricalHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with categorical emissions, a drop-in for ``hmmlearn.hmm.CategoricalHMM``.

    X has one column of integer symbols 0..n_features-1.

    Parameters
    ----------"""
        + _COMMON_DOC
        + """    emissionprob_prior : float or array (n_components, n_features), default=1.0
        Dirichlet concentration of each state's symbol distribution.
    n_features : int, default=None
        Number of symbols; None: one more than the largest symbol in the data of ``fit``.

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    emissionprob_ : ndarray (n_components, n_features)
    monitor_ : ConvergenceMonitor
    """
    )
    _emission_letters = "e"
    _emission_attributes = ("emissionprob_",)
    _integer_data = True

    def __init__(
        self,
        n_components=1,
        startprob_prior=1.0,
        transmat_prior=1.0,
        emissionprob_prior=1.0,
        n_features=None,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="ste",
        init_params="ste",
        device="cpu",
        dtype="float32",
        memory_budget=None,
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
        self.device = device
        self.dtype = dtype
        self.memory_budget = memory_budget

    def _emission_settings(self, s: dict) -> None:
        if self.n_features is not None:
            s["n_symbols"] = _params.check_int(self.n_features, "n_features", type(self).__name__, 1)

    def _check_rows(self, source, s: dict) -> None:
        if source.n_features != 1:
            raise DataError(
                f"CategoricalHMM expects X with one column of integer symbols, got {source.n_features} columns; "
                "pass X of shape (n_samples, 1)"
            )
        top = -1
        for chunk in source.rows.chunks():
            x = chunk.x[:, 0]
            bad = (x != torch.round(x)) | (x < 0)
            if bool(bad.any()):
                row = chunk.row_start + int(torch.nonzero(bad)[0])
                raise DataError(
                    f"X row {row} holds {float(x[row - chunk.row_start]):g}: CategoricalHMM symbols must be "
                    "non-negative integers 0..n_features-1"
                )
            top = max(top, int(x.max()))
        limit = s.get("n_symbols")
        if limit is None and hasattr(self, "emissionprob_") and "e" not in s["init_params"]:
            limit = int(np.shape(self.emissionprob_)[-1])
        if limit is not None and top >= limit:
            raise DataError(
                f"X holds symbol {top}, outside 0..{limit - 1} (n_features={limit}); "
                "raise n_features or re-encode the symbols"
            )
        s["data_symbols"] = top + 1

    def _emission(self, s: dict) -> CategoricalEmission:
        return CategoricalEmission(s.get("n_symbols", 0), self.emissionprob_prior)

    def _init_emission(self, s: dict, source, generator, engine) -> None:
        M = s.get("n_symbols") or s["data_symbols"]
        s["n_symbols"] = M
        if self._needs_init(s, "e", "emissionprob_"):
            e = torch.rand(s["n_components"], M, generator=generator, dtype=torch.float64)
            self.emissionprob_ = (e / e.sum(1, keepdim=True)).numpy()
        self.n_features = M

    def _check_features(self, source) -> None:
        pass

    def _emission_params(self, s: dict, emission) -> CategoricalParams:
        K = s["n_components"]
        e = _params._as_f64(self.emissionprob_, "emissionprob_")
        M = e.shape[-1] if e.ndim == 2 else -1
        return CategoricalParams(_stochastic(e, (K, M), "emissionprob_"))

    def _set_emission(self, p: CategoricalParams) -> None:
        self.emissionprob_ = p.emissionprob.numpy().copy()

    def _batches(self, X, lengths, s: dict, where: dict):
        params = self._fitted(s)
        s.setdefault("n_symbols", self.emissionprob_.shape[1])
        source = self._open(X, lengths, s, **where)
        return params, source


# ------------------------------------------------------------------ Poisson
class PoissonHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with independent Poisson emissions, a drop-in for ``hmmlearn.hmm.PoissonHMM``.

    Parameters
    ----------"""
        + _COMMON_DOC
        + """    lambdas_prior, lambdas_weight : float or array, default=0.0
        Gamma prior on the rates: lambdas = (prior + counts) / (weight + state occupancy).

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    lambdas_ : ndarray (n_components, n_features)
    monitor_ : ConvergenceMonitor
    """
    )
    _emission_letters = "l"
    _emission_attributes = ("lambdas_",)
    _integer_data = True

    def __init__(
        self,
        n_components=1,
        startprob_prior=1.0,
        transmat_prior=1.0,
        lambdas_prior=0.0,
        lambdas_weight=0.0,
        algorithm="viterbi",
        random_state=None,
        n_iter=10,
        tol=1e-2,
        verbose=False,
        params="stl",
        init_params="stl",
        device="cpu",
        dtype="float32",
        memory_budget=None,
    ):
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight
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

    def _check_rows(self, source, s: dict) -> None:
        for chunk in source.rows.chunks():
            bad = (chunk.x < 0) | (chunk.x != torch.round(chunk.x))
            if bool(bad.any()):
                r, c = (int(v) for v in torch.nonzero(bad)[0])
                raise DataError(
                    f"X row {chunk.row_start + r}, column {c} holds {float(chunk.x[r, c]):g}: PoissonHMM models "
                    "counts, which must be non-negative integers"
                )

    def _emission(self, s: dict) -> PoissonEmission:
        return PoissonEmission(self.lambdas_prior, self.lambdas_weight)

    def _init_emission(self, s: dict, source, generator, engine) -> None:
        if self._needs_init(s, "l", "lambdas_"):
            mean, _ = _row_moments(source)
            shape = mean.clamp_min(1e-3).expand(s["n_components"], -1).contiguous()
            self.lambdas_ = torch._standard_gamma(shape, generator=generator).clamp_min(1e-3).numpy()

    def _emission_params(self, s: dict, emission) -> PoissonParams:
        lam = _params._as_f64(self.lambdas_, "lambdas_")
        K = s["n_components"]
        D = lam.shape[-1] if lam.ndim == 2 else -1
        _params._check_shape(lam, (K, D), "lambdas_")
        if bool((lam < 0).any()):
            raise ParameterError("lambdas_ must be non-negative rates")
        return PoissonParams(lam)

    def _set_emission(self, p: PoissonParams) -> None:
        self.lambdas_ = p.lambdas.numpy().copy()


HMM_KINDS = {"GaussianHMM": GaussianHMM, "CategoricalHMM": CategoricalHMM, "PoissonHMM": PoissonHMM}


def restore_hmm(kind: str, tensors: dict, hyper: dict, fitted: dict, where: str):
    """Rebuild a saved HMM estimator and validate its parameters (persistence.load calls this)."""
    est = HMM_KINDS[kind]()
    unknown = set(hyper) - set(est.get_params())
    if unknown:
        raise ModelFileError(f"{where}: unknown hyper-parameters {sorted(unknown)}")
    est.set_params(**hyper)
    for name in ("startprob_", "transmat_", *est._emission_attributes):
        if name not in tensors:
            raise ModelFileError(f"{where}: tensor {name!r} is missing; the file is damaged")
        setattr(est, name, tensors[name].numpy())
    est.n_features = int(fitted["n_features"])
    s = est._settings()
    if kind == "CategoricalHMM":
        s["n_symbols"] = est.emissionprob_.shape[1]
    try:
        params = est._current_params(s)
    except (ParameterError, ValueError) as exc:
        raise ModelFileError(f"{where}: invalid parameters ({exc}); the file is damaged") from None
    est._set_params(params)
    monitor = ConvergenceMonitor(s["tol"], s["n_iter"], s["verbose"])
    monitor.history = [float(v) for v in fitted.get("history", [])]
    monitor.iter = int(fitted.get("iter", 0))
    monitor.converged = bool(fitted.get("converged", False))
    est.monitor_ = monitor
    return est

