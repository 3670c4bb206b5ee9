"""hmmlearn-compatible hidden Markov models on bigem's EM driver: GaussianHMM,
CategoricalHMM, PoissonHMM (GMMHMM: ``gmm_hmm``).

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
  sequences apart, streamed in batches of whole sequences;
* ``engine='dask'`` (and ``client``) fits and infers on a Dask cluster, each
  partition holding whole sequences; ``engine='torch'`` fits in a torch.distributed group.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import math
import os
import sys
import warnings
from collections import deque
from abc import ABC, abstractmethod
from functools import partial

import numpy as np
import torch

from .._core.draws import fresh_draws, fresh_numpy
from .._core.errors import (CollapsedStateWarning, DataError, ImpossibleSequenceWarning, ModelFileError,
                            NumericalError, ParameterError, not_fitted_error)
from .._core.protocols import Task
from .._core.types import Chunk
from ..em.driver import Checkpoint, IterationInfo, linked, run_em
from ..em.init import SEED_SAMPLE_ROWS, fill_gaps, kmeans_centres, sample_rows
from ..engines import LocalEngine
from ..engines.distributed import process_device
from ..engines.readback import HostRows
from ..models.components import weighted_median
from ..models.categorical import CategoricalComponent, CategoricalParams
from ..models.covariance import NAMES, Prior, structure
from ..models.gaussian import GaussianComponent, GaussianParams
from ..models.hmm import HMMModel, HMMParams, Mend
from ..models.kmeans import KMeansModel
from ..models.poisson import PoissonComponent, PoissonParams
from ..models.summary import RowSummary, Summariser
from ..sources import Files, describe_input, open_source, sequence_lengths
from ..sources import identity
from ..sources.dask import is_dask_collection
from ..sources.inputs import RowsInOrder, checked_columns, feature_names_of, has_column_names, id_column_blocks
from ..sources.arrays import Centre
from ..sources.sequences import SequenceBatches, check_lengths
from ..sources.sinks import Sink, check_output_path
from ..sources.validate import CheckedSource, RowRule
from . import _hints as hints
from . import _npy_columns as npy_columns
from . import _params
from ._base import EstimatorBase, check_positions, writes_files
from ._hints import PomegranateHints

__all__ = ["GaussianHMM", "CategoricalHMM", "PoissonHMM", "ConvergenceMonitor", "ImpossibleSequenceWarning"]

# hmmlearn speaks through logging, not warnings: "will be overwritten", "degenerate solution"
_log = logging.getLogger(__name__)


# a fall of the total log-likelihood larger than this is logged, as hmmlearn's monitor does
_HMMLEARN_SLACK = float(np.finfo(np.float64).eps) ** 0.5


class ConvergenceMonitor:
    """hmmlearn's monitor: ``history`` (total log-likelihood entering each iteration; a
    ``deque``, as hmmlearn's, so index it or make an array of it, do not slice it),
    ``iter``, ``converged``, ``tol``, ``n_iter``, ``report`` and ``_reset``; plus
    ``seconds`` per iteration. With ``accelerate``, ``iter`` counts passes over the data
    and ``history`` / ``seconds`` keep the accepted ones (a rejected extrapolation is a
    pass, not a step).

    Every HMM has one from construction, as hmmlearn's do, so hmmlearn's recipe for
    another stopping rule works: set ``model.monitor_`` to a subclass (of this class or
    of hmmlearn's) that redefines ``converged``, and the fit reports each iteration to
    it and stops when it says so. bigem's own ``converged`` is what the fit's rule
    decided (see the module docstring)."""

    _template = "{iter:>10d} {log_prob:>16.8f} {delta:>+16.8f}"

    def __init__(self, tol: float, n_iter: int, verbose: bool) -> None:
        self.tol, self.n_iter, self.verbose = tol, n_iter, verbose
        self.history: deque[float] = deque()  # hmmlearn's type
        self.seconds: list[float] = []
        self.iter = 0
        self._converged = False

    @property
    def converged(self) -> bool:
        return self._converged

    @converged.setter
    def converged(self, value: bool) -> None:
        self._converged = bool(value)

    def _reset(self) -> None:
        self.iter = 0
        self.history.clear()
        self.seconds.clear()
        self._converged = False

    def report(self, log_prob: float) -> None:
        """One iteration's total log-likelihood, as hmmlearn's monitor takes it: printed to
        stderr with ``verbose``, logged where it fell, then kept."""
        if self.verbose:
            delta = log_prob - self.history[-1] if self.history else float("nan")
            print(self._template.format(iter=self.iter + 1, log_prob=log_prob, delta=delta), file=sys.stderr)
        if self.history and log_prob - self.history[-1] < -_HMMLEARN_SLACK:  # a prior traded likelihood
            _log.warning(f"Model is not converging.  Current: {log_prob} is not greater than "
                         f"{self.history[-1]}. Delta is {log_prob - self.history[-1]}")
        self.history.append(log_prob)
        self.iter += 1

    def __repr__(self) -> str:
        """hmmlearn's: one line per field, in name order."""
        fields = dict(history=list(self.history), iter=self.iter, n_iter=self.n_iter, tol=self.tol,
                      verbose=self.verbose)
        return f"{type(self).__name__}(\n" + "".join(f"    {k}={v},\n" for k, v in fields.items()) + ")"


# hmmlearn starts its Gaussian HMMs' means from KMeans(n_init=10): the best of 10 seedings
HMMLEARN_KMEANS_INIT = 10

COMMON_DOC = """
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
        Convergence threshold on the change of the total log-likelihood; any float
        (negative or -inf: run all ``n_iter`` iterations).
    verbose : bool, default=False
        Print the log-likelihood and its change after each iteration, to stderr in
        hmmlearn's format.
    params : str, default: every letter of the model (hmmlearn's)
        Letters of the parameters the M-step updates ('s' start, 't' transitions, and
        the emission's letters: 'stmc' for GaussianHMM, 'ste' for CategoricalHMM,
        'stl' for PoissonHMM, 'stmcw' for GMMHMM).
    init_params : str, default: every letter of the model (hmmlearn's)
        Letters of the parameters initialised by ``fit``; the others must be set.
    implementation : {'log', 'scaling'}, default='log'
        hmmlearn's choice of forward-backward arithmetic, accepted so its code runs
        unchanged; both give the same answers to rounding, and so does bigem's one
        pass (scaled on max-shifted emissions, in log space where scaling would
        underflow), whichever is named.
    device : str or torch.device, default='cpu'
        Where the arithmetic runs ('cpu', 'cuda', ...).
    dtype : {'float32', 'float64'} or torch dtype, default='float32'
        Precision of the forward-backward arithmetic; statistics and parameters are float64.
    memory_budget : int or str, default=None
        Memory for a batch of sequences in flight (bytes, or a string such as '1GB');
        None: '128MB' on the CPU, '1GB' on a GPU. A sequence longer than a batch is
        cut into pieces of a batch each, linked exactly (``bigem.models.hmm_pieces``),
        so memory stays within the budget however long a sequence is. Larger batches mean fewer time steps
        per iteration (each step serves every sequence of the batch). On the CPU
        128MB keeps the whole fit within hmmlearn's footprint on 1e6 rows at about the
        speed of 256MB (BENCHMARKS.md); on a GPU each step is a kernel launch, and
        1000 sequences x 1000 steps took 0.105 s per iteration at 256MB against
        0.235 s at 128MB (H200).
    accelerate : {None, 'squarem'}, default=None
        'squarem': extrapolate along Baum-Welch's path (SQUAREM) to the same optimum in
        fewer passes when EM is slow (many states, overlapping emissions); a step that
        would lower the log-likelihood is replaced by the plain EM step. ``n_iter`` and
        ``monitor_.iter`` then count passes; ``monitor_.history`` keeps the accepted ones.
    stopping : {'gain', 'aitken'}, default='gain'
        'gain': stop when the total log-likelihood rose by less than ``tol`` (hmmlearn's
        rule: a fall, which a MAP prior can cause, stops the fit too, and is logged with
        hmmlearn's "Model is not converging" message). 'aitken': stop when its
        Aitken-extrapolated limit is within ``tol`` (plain EM only, as SQUAREM's path is
        not the linear one the rule extrapolates). A ``monitor_`` set before the fit
        (hmmlearn's recipe: a ``ConvergenceMonitor`` whose ``converged`` says when) takes
        the place of either.
    missing_values : {'error', 'fiml'}, default='error'
        'error': NaN (and nulls in files and DataFrames) are refused, as hmmlearn does.
        'fiml': they are missing values, fitted exactly for values missing at random: a
        row's emission density is the marginal of what it observed (Gaussian features
        are completed by their conditional mean and covariance in the M-step, a missing
        count or symbol is left out), and a row with every value missing is a time step
        with no observation, through which the chain goes on. Inference (score,
        predict, decode, ...) then accepts rows with gaps too; a column missing in every
        row is an error.
"""

# engine and client: shared by every HMM (the variational ones too)
ENGINE_DOC = """
    engine : {'local', 'dask', 'torch'}, default='local'
        'local': this process. 'dask': a Dask cluster: the rows are partitioned at
        sequence boundaries, and at the boundaries of the pieces of a sequence longer
        than a batch (a sequence or piece that straddles two partitions of a Dask
        collection is moved whole into one), each worker runs forward-backward on its
        partitions' sequences, and the statistics are summed as a tree; fit, score,
        aic/bic, predict, predict_proba, decode and score_samples all run there. X may be
        a Dask array or DataFrame, Parquet/CSV paths read by the workers, or an
        in-memory array. 'torch': one of a torch.distributed group of processes
        (launched by torchrun; NCCL on GPUs, gloo on CPUs), each reading its own share of
        whole sequences (and pieces); every process must call ``fit`` on the same X. Either way the
        fit (its log-likelihood, or lower bound, and its parameters) equals the local
        fit's to rounding.
    client : distributed.Client, str or None, default=None
        The cluster for ``engine='dask'``: a client, or a scheduler address such as
        'tcp://host:8786'. None starts a LocalCluster for the call and closes it after.
        Refused with engine 'local' or 'torch', where it would go unused.
"""
COMMON_DOC += ENGINE_DOC


def _common(letters: str) -> dict[str, _params.Constraint]:
    """The constraints of hmmlearn's shared parameters, for an emission with ``letters``."""
    return dict(
        n_components=_params.Int(1),
        startprob_prior=_params.FiniteArray(),
        transmat_prior=_params.FiniteArray(),
        algorithm=_params.Choice(("viterbi", "map")),
        random_state=_params.Seed(),
        n_iter=_params.Int(0, at_most=_params.MAX_ITER),
        tol=_params.Real(),
        verbose=_params.Truthy(),
        params=_params.Letters("st" + letters),
        init_params=_params.Letters("st" + letters, ignoring_others=True),  # as hmmlearn's
        implementation=_params.Choice(("log", "scaling")),
        device=_params.Device(),
        dtype=_params.Dtype(),
        memory_budget=_params.Optional(_params.Memory()),
        accelerate=_params.Optional(_params.Choice(("squarem",))),
        stopping=_params.Choice(("gain", "aitken")),
        missing_values=_params.Choice(("error", "fiml")),
        engine=_params.Choice(("local", "dask", "torch")),
        client=_params.Client(),
    )


class _BaseHMM(PomegranateHints, EstimatorBase, ABC):
    """What every HMM shares: hmmlearn's common parameters, fitting by Baum-Welch on the
    EM driver, inference, sampling and persistence. Each emission family adds its
    parameters and the hooks below."""

    _emission_letters = ""
    _emission_attributes: tuple[str, ...] = ()
    _integer_data = False  # sample() returns integers (symbols, counts)
    _estimator_type = "density_estimator"
    _pomegranate = hints.HMM

    def __init__(self, n_components, startprob_prior, transmat_prior, algorithm, random_state, n_iter, tol, verbose,
                 params, init_params, device, dtype, memory_budget, accelerate, stopping, missing_values, engine,
                 implementation="log", client=None) -> None:
        self.n_components = n_components
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
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
        self.accelerate = accelerate
        self.stopping = stopping
        self.missing_values = missing_values
        self.engine = engine
        self.client = client
        self.monitor_ = ConvergenceMonitor(tol, n_iter, verbose)  # hmmlearn's: there to replace before a fit

    def __sklearn_tags__(self):
        """Symbols and counts (the integer families) are non-negative whole numbers, as
        the count mixtures' tags say it; scikit-learn's checks then draw such X."""
        tags = super().__sklearn_tags__()
        if self._integer_data:
            tags.input_tags.positive_only = tags.input_tags.categorical = True
        return tags

    @property
    def _fitted_arrays(self) -> dict[str, str]:
        return {name: name for name in ("startprob_", "transmat_", *self._emission_attributes)}

    # -------------------------------------------------------------- hooks per emission
    @abstractmethod
    def _emission(self, s, n_features: int | None = None):
        """The emission component (math) for the validated settings."""

    def _row_check(self, s, fitting: bool) -> RowRule | None:
        """What each chunk of rows must satisfy for this emission (None: finite is enough);
        it runs as the rows are read, in the first pass (sources.validate.CheckedSource)."""
        return None

    @abstractmethod
    def _init_emission(self, s, source, summary: RowSummary, generator: torch.Generator, engine) -> None:
        """Initial emission parameters (as hmmlearn's init_params letters ask)."""

    @abstractmethod
    def _emission_params(self, s, emission):
        """The current emission parameters, validated, as the emission component takes them."""

    @abstractmethod
    def _set_emission(self, p) -> None:
        """Fitted emission parameters to the public attributes (means_, covars_, ...)."""

    def _columns(self) -> int:
        """The columns of X (n_features, except where that counts symbols)."""
        return int(self.n_features)

    def _emission_width(self, emission) -> int:
        """n_features implied by the emission parameters."""
        return int(emission.means.shape[-1])

    def _advice(self, s) -> str:
        return "check the data for extreme values"

    # -------------------------------------------------------------- settings
    def _settle(self, values: dict) -> None:
        """Priors broadcast to their shapes; the batch budget's default depends on the device
        (see the class docstring: small batches on CPU, few large launches on a GPU)."""
        o, K = type(self).__name__, values["n_components"]
        values["startprob_prior"] = _broadcast(values["startprob_prior"], (K,), "startprob_prior", o)
        values["transmat_prior"] = _broadcast(values["transmat_prior"], (K, K), "transmat_prior", o)
        if values["memory_budget"] is None:
            default = "128MB" if values["device"].type == "cpu" else "1GB"
            values["memory_budget"] = _params.parse_memory_budget(default, o)

    def _model(self, s, n_features: int | None = None) -> HMMModel:
        emission = self._emission(s, n_features)
        return HMMModel(
            emission, s.n_components, s.dtype, params=s.params, startprob_prior=s.startprob_prior,
            transmat_prior=s.transmat_prior, advice=self._advice(s), mend=self._mend(s, emission),
        )

    def _mend(self, s, emission) -> Mend | None:
        """How the M-step mends emission parameters it cannot estimate (None: it raises)."""
        return None

    def _open(self, X, lengths, s, columns=None, sequence_column=None, fitting=False, engine=None, keep=None):
        """Batches of whole sequences (:class:`SequenceBatches`; on a Dask ``engine``,
        :class:`DaskSequences`). Rows of translatable emissions (Gaussians) lose a shift
        where float32 would lose digits (see ``sources.arrays.choose_shift``); the rows'
        source says which (``source.rows.shift``)."""
        columns = checked_columns(columns)
        if sequence_column is not None and lengths is not None:
            raise DataError(
                "both lengths and sequence_column were given; pass one: the lengths of the sequences, "
                "or the column whose runs of equal ids are the sequences"
            )
        indices = None if fitting else npy_columns.to_read(self, X, columns)  # a .npy file read by index at fit
        if indices is not None:
            columns = indices
        elif columns is None and not fitting:
            columns = self._fitted_columns(X)
        elif not fitting and getattr(self, "feature_names_in_", None) is not None:  # read by position
            check_positions([str(c) for c in columns], [str(n) for n in self.feature_names_in_])
        if s.engine == "dask":
            return self._open_dask(X, lengths, s, columns, sequence_column, fitting, engine)
        if is_dask_collection(X):  # engine='local' computes a Dask collection into this process
            X = X.compute()
        if sequence_column is not None:
            lengths, others = sequence_lengths(X, sequence_column)
            if columns is None and not (isinstance(X, Files) and X.columns is not None):
                columns = [c for c in others if c not in (keep or ())]  # every column but the ids
        emission = self._emission(s, getattr(self, "n_features", None))
        shift = self._shift(emission, s, fitting)
        # a process of a torch group moves only its own part of an in-memory X to its device
        rows = open_source(X, dtype=emission.row_dtype, device=s.device, memory_budget=1 << 62, columns=columns, keep=keep,
                           shift=shift, missing_values=self._missing(s), every_column=fitting,
                           hold_on_host=fitting and s.engine == "torch" and s.device.type != "cpu")
        lens = check_lengths(lengths, rows.n_rows, describe_input(X))
        batch = self._rows_per_batch(s, rows.n_features)
        rows.read_in(max(1, min(batch, rows.n_rows)))  # file sources read about one batch per chunk
        check = self._row_check(s, fitting)
        return SequenceBatches(rows if check is None else CheckedSource(rows, check), lens, batch)

    def _missing(self, s) -> str | None:
        """How the rows' source reads gaps: ``missing_values``, or None for an HMM that
        has no 'fiml' (its errors then name no option it refuses)."""
        options = getattr(self._constraints.get("missing_values"), "options", ())
        return s.missing_values if "fiml" in options else None

    def _shift(self, emission, s, fitting: bool):
        """What the rows lose before the cast (``sources.arrays.choose_shift``): "auto"
        for a fit, the fitted emissions' centre for inference (``sources.arrays.Centre``:
        the rows scored must not set the coordinates), nothing for emissions that do not
        move with their data."""
        if not emission.translatable:
            return None
        if fitting:
            return "auto"
        means = np.asarray(self.means_, dtype=np.float64)  # the emissions' means, (K, D) or a GMM's (K, M, D)
        share = _occupancy(np.asarray(self.startprob_, dtype=np.float64), np.asarray(self.transmat_, dtype=np.float64))
        if means.ndim == 3:  # a GMM's components, each its state's share times its weight
            share = share[:, None] * np.asarray(self.weights_, dtype=np.float64)
        # the weighted median, not the mean: a state that took a few far outliers would
        # move the centre off the rows, which would lose their digits in the cast
        return Centre(weighted_median(torch.from_numpy(means.reshape(-1, means.shape[-1])),
                                      torch.from_numpy(share.reshape(-1))))

    def _rows_per_batch(self, s, n_features: int) -> int:
        """Rows in a batch of sequences within ``memory_budget``: per row about six (K,)
        vectors (emissions, forward, backward, their products), three copies of the row
        (converted, packed, features) and int64 indices."""
        per_row = (torch.finfo(s.dtype).bits // 8) * (6 * s.n_components + 3 * n_features + 4) + 48
        return max(1, s.memory_budget // per_row)

    def _open_dask(self, X, lengths, s, columns, sequence_column, fitting: bool, engine):
        """Whole sequences, and the pieces of those longer than a batch, in partitions on
        ``engine``'s cluster, held in the workers' memory when they fit (see
        ``DaskEngine.persist``); the emission's value checks run once, where the
        partitions live."""
        from ..sources.dask import open_dask_source
        from ..sources.dask_sequences import DaskSequences, coalesced, sequence_aligned

        client = engine.client
        threads = sum(w.get("nthreads", 1) for w in client.scheduler_info()["workers"].values())
        batch_rows = functools.partial(self._rows_per_batch, s)
        aligned, lens, names = sequence_aligned(X, lengths, sequence_column, columns, client, threads, batch_rows)
        aligned = coalesced(aligned, lens, threads, batch_rows(int(aligned.shape[1])), cut=True)
        emission = self._emission(s, getattr(self, "n_features", None))
        rows = open_dask_source(aligned, client=client, dtype=emission.row_dtype, device=s.device,
                                memory_budget=s.memory_budget, shift=self._shift(emission, s, fitting),
                                missing_values=self._missing(s), every_column=fitting)
        rows.feature_names = names
        held = engine.persist(rows)
        source = DaskSequences(held, lens, batch_rows(rows.n_features), cut=True)
        check = self._row_check(s, fitting)
        if check is not None:
            source.check(check)
        if held is not rows:  # each partition's lengths join its rows in worker memory, shipped once
            source = source.with_partitions(client.persist(source.partitions))
        return source

    def _summary(self, source: SequenceBatches, engine, second_moments: bool) -> RowSummary:
        """The rows' summary in one pass through the engine, checked by the emission (the
        first pass over files: it also checks values and fills their cache)."""
        rows = source.rows
        probe = fill_gaps(rows.take(torch.arange(min(rows.n_rows, 1024)))).double().mean(0).cpu()
        # on the host: the starts read it with numpy, beside the host probe
        return engine.reduce(Task(Summariser(probe, second_moments), "summarise"), rows).to("cpu")

    # -------------------------------------------------------------- fitting
    def fit(self, X, lengths=None, *, columns=None, sequence_column=None, callback=None, checkpoint=None,
            checkpoint_every=10):
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
            ``sequence_column``). Columns read by name (files, a DataFrame's string
            names) are kept in ``feature_names_in_``, and inference reads them by name
            from X that names them (an array: its columns in order).
        sequence_column : str, default=None
            Instead of ``lengths``: the column of a DataFrame or of files holding a
            sequence id (strings or integers); each run of equal consecutive ids is one
            sequence, so the rows of a sequence must be contiguous and in time order.
        callback : callable, default=None
            Called with an :class:`bigem.em.driver.IterationInfo` after every pass over
            the data (a rejected extrapolation too, with ``accepted=False``);
            ``log_likelihood`` is per time step, ``report.total`` hmmlearn's total.
        checkpoint : str or path, default=None
            Save the fit's state there every ``checkpoint_every`` iterations (atomically).
            A fit given a checkpoint that exists resumes from it, on the same data and
            settings only, and ends where an uninterrupted fit would (``monitor_``
            included); the file is removed when the fit completes.
        checkpoint_every : int, default=10
            Iterations between checkpoints.

        Returns
        -------
        self
        """
        s = self._settings()
        if callback is not None and not callable(callback):
            raise ParameterError(
                f"callback must be a function of one argument (an IterationInfo) or None; got {callback!r}"
            )
        if s.engine == "torch":
            s = dataclasses.replace(s, device=process_device(s.device))
        with _engine(s) as engine:
            if not engine.primary:
                s = dataclasses.replace(s, verbose=False)  # the primary process alone prints
            fitted = self._fit(X, lengths, columns, sequence_column, callback, checkpoint, checkpoint_every, s, engine)
        npy_columns.remember(self, X, columns)
        return fitted

    def _fit(self, X, lengths, columns, sequence_column, callback, checkpoint, checkpoint_every, s, engine):
        # in a group of processes, each hears of another's failure to open its data at once
        source = engine.opened(lambda: self._open(X, lengths, s, columns, sequence_column, fitting=True, engine=engine),
                               settings=self._group_settings())
        computing = getattr(engine, "computing", None)  # this process: small data on one torch thread
        with computing(source) if computing is not None else contextlib.nullcontext():
            return self._fit_source(source, callback, checkpoint, checkpoint_every, s, engine)

    def _fit_source(self, source, callback, checkpoint, checkpoint_every, s, engine):
        self._check_features(source)
        saver = None
        if checkpoint is not None:
            every, shift = _params.check_int(checkpoint_every, "checkpoint_every", type(self).__name__, 1), source.rows.shift
            fingerprint = dict(self._fingerprint(), kind=type(self).__name__, n_rows=source.n_rows,
                               n_columns=source.n_features, features=source.feature_names,
                               data=dict(source.rows.fingerprint(),  # the rows are held less their shift
                                         shift=None if shift is None else shift.double().cpu().tolist()),
                               lengths=identity.digest(source.lengths))
            saver = Checkpoint(os.fspath(checkpoint), every, fingerprint)
        summary = self._summary(source, engine, second_moments=self._needs_moments(s))
        # hmmlearn's draws too, for an int random_state; one seed for a torch group
        generator = _params.draws(_params.shared_state(s.random_state, engine))
        self._given_names = []
        try:
            self._init(s, source, summary, generator, engine)
            given = sorted(set(self._given_names))
        finally:
            del self._given_names
        if saver is not None and given:  # the values set by hand decide the fit: a checkpoint of others is another's
            saver.fingerprint["hand_set_parameters"] = {name: self._start_digest(name) for name in given}
        self._check_prior_shapes(s, s.n_components, int(self.n_features))
        offset = None if source.rows.shift is None else source.rows.shift.to(s.device)
        model = self._fit_model(s, self.n_features).moved(None if offset is None else -offset)  # its prior too
        try:
            params = self._fit_start(s).to(s.device)
        except ParameterError as exc:
            changed = self._structure_changes(s)
            if not changed:
                raise
            raise ParameterError(
                f"{exc}: {changed}, and init_params={s.init_params!r} keeps the parameters whose letters it lacks "
                "from that fit; add their letters to init_params to initialise them afresh, or set them with the "
                "new shapes"
            ) from None
        params = model.translate(params, None if offset is None else -offset)
        # a monitor the user put in place (hmmlearn's recipe for another stopping rule)
        # decides when the fit stops; otherwise a fresh one of this fit's settings
        given = getattr(self, "monitor_", None)
        custom = given is not None and type(given) is not ConvergenceMonitor
        monitor = given if custom else ConvergenceMonitor(s.tol, s.n_iter, s.verbose)
        if hasattr(monitor, "_reset"):
            monitor._reset()

        entering = [params, params]  # the parameters entering the last step, and the current ones

        def report(info: IterationInfo) -> None:
            if callback is not None:  # in the data's coordinates
                callback(info if offset is None else dataclasses.replace(info, params=model.translate(info.params,
                                                                                                     offset)))
            if not info.accepted:  # an extrapolation set aside: a pass, not a step of the fit
                return
            entering[:] = [entering[1], info.params]
            # the mean times the rows, as a resumed fit rebuilds its history from the saved
            # means: the same digits either way (the total itself differs in the last bit)
            monitor.report(info.log_likelihood * source.n_rows)
            if not custom:
                monitor.seconds.append(info.seconds)

        # run_em's tol is on the per-step log-likelihood; hmmlearn's on the total
        # plain EM stops by hmmlearn's monitor (on the likelihood, a fall included); SQUAREM,
        # which hmmlearn lacks, when the likelihood moved by less than tol either way (under
        # a prior it may fall on the way to the MAP, which stopped it short, 'converged'),
        # or a plain step's fell within rounding ('floor': hmmlearn's first fall)
        hmmlearns = "rise" if s.accelerate is None else "floor"
        stopping = (lambda: bool(monitor.converged)) if custom else hmmlearns if s.stopping == "gain" else s.stopping
        result = run_em(model, engine, source, params, max_iter=s.n_iter, tol=s.tol / source.n_rows, callback=report,
                        accelerate=s.accelerate, stopping=stopping, checkpoint=saver)
        if not custom:
            # resumed from a checkpoint: the iterations before it, from the run's saved history
            before = [(v * source.n_rows, t) for v, t, ok in zip(result.history, result.seconds, result.accepted) if ok]
            missing = len(before) - len(monitor.history)
            monitor.history.extendleft(reversed([v for v, _ in before[:missing]]))
            monitor.seconds[:0] = [t for _, t in before[:missing]]
            monitor.iter = result.n_iter
            monitor.converged = result.converged
        self.monitor_ = monitor
        self.n_passes_ = result.n_iter
        self._remember_names(source.feature_names)
        self._fit_end(model.translate(result.params, offset))
        self._last_step_from(model.translate(entering[0], offset))
        generator.settle()
        return self

    # the fit's model, its starting parameters and what becomes of its result: Baum-Welch
    # on the attributes by default (the variational HMMs fit posteriors instead)
    def _fit_model(self, s, n_features: int):
        return self._model(s, n_features)

    def _check_prior_shapes(self, s, K: int, D: int) -> None:
        """ParameterError for priors of shapes the fit cannot use (the families with priors
        of their own shape rules say which)."""

    def _fit_start(self, s):
        n_features = getattr(self, "n_features", None)
        params = self._current_params(s)
        width = self._emission_width(params.emission)
        if n_features is not None and width != n_features:  # hmmlearn's ValueError ("... must have shape ...")
            names = [name.lstrip("_") for name in self._emission_attributes]
            verb, them = ("holds", "it") if len(names) == 1 else ("hold", "them")
            if "n_features" not in self.get_params(deep=False):  # learnt from X (GaussianHMM, GMMHMM)
                raise ParameterError(f"{', '.join(names)} {verb} {width} columns but X has {n_features} features: "
                                     f"give {them} {n_features} columns, or fit on {width} of X's columns")
            raise ParameterError(f"{', '.join(names)} {verb} {width} columns but n_features is {n_features}: give "
                                 f"{them} {n_features} columns, or set n_features={width}")
        return params

    def _fit_end(self, params) -> None:
        self._set_params(params)

    def _remember_names(self, names) -> None:
        """The fit's columns by name, where X named them (a DataFrame's string names,
        files): ``feature_names_in_``, as the mixtures keep it; inference then reads those
        columns from X that names them (:meth:`_fitted_columns`)."""
        if names is not None:
            self.feature_names_in_ = np.asarray([str(n) for n in names], dtype=object)
        else:
            self.__dict__.pop("feature_names_in_", None)

    def _fitted_columns(self, X) -> list[str] | None:
        """The columns inference reads where none are given: the fitted ones by name, from
        files that name their columns (a missing one is named by the reader's error) and
        from a DataFrame that has them all (an id column beside them, the sequence
        column); None (X's columns in order, as hmmlearn reads them) otherwise."""
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            return None
        names = [str(n) for n in names]
        if has_column_names(X):
            return names
        have = feature_names_of(X)
        return names if have is not None and set(names) <= set(have) else None

    def _last_step_from(self, params) -> None:
        """What a fit keeps of the parameters its last step started from (nothing here;
        the variational HMMs keep hmmlearn's subnormalised parameters of them)."""

    def _needs_moments(self, s) -> bool:
        """Whether initialisation reads the data's covariance."""
        return False

    def _check_features(self, source) -> None:
        if hasattr(self, "n_features") and getattr(self, "_fitted_features", None) not in (None, source.n_features):
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self._fitted_features} features as input."
            )
        given = getattr(self, "n_features", None)
        if given is not None and getattr(self, "_fitted_features", None) is None and given != source.n_features:
            raise DataError(f"Unexpected number of dimensions, got {source.n_features} but expected {given} "
                            "(the n_features set on this model); set n_features to X's width, or delete it")
        self.n_features = source.n_features

    def _start_digest(self, name: str) -> str:
        """A digest of a starting value set by hand, in one layout whatever the layout it
        was given in (covariances as full matrices: a spherical (K,) and its (K, D))."""
        value = self.covars_ if name == "_covars_" else getattr(self, name)
        return identity.digest(torch.as_tensor(np.asarray(value, dtype=np.float64)))

    def _will_init(self, s, code: str, name: str) -> bool:
        """Whether ``fit`` initialises attribute ``name`` (held in that name): its letter is
        in init_params, or it is not set (hmmlearn's rule)."""
        return code in s.init_params or not hasattr(self, name)

    def _needs_init(self, s, code: str, name: str, stored: str | None = None) -> bool:
        """Whether ``fit`` initialises attribute ``name`` (held in ``stored``, if another):
        its letter is in init_params, or it is not set, as in hmmlearn. Overwriting a value
        the user set is logged in hmmlearn's words (through ``logging``, as hmmlearn does:
        not a warning)."""
        present = hasattr(self, stored or name)
        if code in s.init_params and present:
            _log.warning(
                "Even though the %r attribute is set, it will be overwritten during initialization "
                "because 'init_params' contains %r", name, code,
            )
        needs = code in s.init_params or not present
        given = getattr(self, "_given_names", None)
        if not needs and given is not None:  # a value the user set starts the fit (see _fit_source)
            given.append(stored or name)
        return needs

    def _init(self, s, source, summary: RowSummary, generator: torch.Generator, engine) -> None:
        K = s.n_components
        rs = fresh_numpy(generator)  # hmmlearn's draws, for an int random_state
        if self._needs_init(s, "s", "startprob_"):
            self.startprob_ = _dirichlet_rows(np.full(K, 1.0 / K), generator, rs)
        if self._needs_init(s, "t", "transmat_"):
            self.transmat_ = _dirichlet_rows(np.full((K, K), 1.0 / K), generator, rs)
        self._init_emission(s, source, summary, generator, engine)
        self._warn_degenerate(s, source)

    def _warn_degenerate(self, s, source) -> None:
        """hmmlearn's log message when the data have fewer values than the fit has free scalars."""
        counts = self._free_scalars(s)
        scalars, values = sum(counts[p] for p in s.params if p in counts), source.n_rows * self._columns()
        if values < scalars:  # hmmlearn's words, through logging as in hmmlearn
            _log.warning("Fitting a model with %d free scalar parameters with only %d data points will result in a "
                         "degenerate solution.", scalars, values)

    # -------------------------------------------------------------- model selection
    def _free_scalars(self, s) -> dict[str, int]:
        """hmmlearn's count of the free scalars of each parameter letter
        (``_get_n_fit_scalars_per_param``), for the fitted n_features."""
        K = s.n_components
        return {"s": K - 1, "t": K * (K - 1), **self._emission_scalars(s, int(self.n_features))}

    @abstractmethod
    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        """The emission's letters and their free-scalar counts, as hmmlearn counts them."""

    def _criterion(self, X, lengths, where: dict) -> tuple[float, int, int]:
        """(score, free parameters of every letter, rows of X) for aic / bic."""
        s = self._inference_settings()
        with _inference_engine(s) as engine:
            params, source = self._batches(X, lengths, s, where, engine)
            model = self._model(s, self.n_features)
            totals = engine.reduce(Task(model, "score_totals", (params,), _links(model, engine, source, params,
                                                                                 "score_totals")), source).settled()
        self._warn_impossible(totals.impossible, totals.first_impossible, stacklevel=4)
        score = -math.inf if totals.impossible else float(totals.loglik)
        return score, sum(self._free_scalars(s).values()), source.n_rows

    def aic(self, X, lengths=None, *, columns=None, sequence_column=None) -> float:
        """Akaike information criterion on X: -2 log-likelihood + 2 free parameters
        (hmmlearn's count, every parameter letter). Lower is better. Arguments as for :meth:`fit`."""
        score, n_params, _ = self._criterion(X, lengths, _where(columns, sequence_column))
        return -2 * score + 2 * n_params

    def bic(self, X, lengths=None, *, columns=None, sequence_column=None) -> float:
        """Bayesian information criterion on X: -2 log-likelihood + free parameters x
        log(rows of X) (hmmlearn's count and rows). Lower is better. Arguments as for :meth:`fit`."""
        score, n_params, rows = self._criterion(X, lengths, _where(columns, sequence_column))
        return -2 * score + n_params * math.log(rows)

    def _kmeans_centres(self, s, source, k: int, generator: torch.Generator, engine) -> np.ndarray:
        """k k-means centres of the rows, in the data's coordinates (the rows' shift added
        back): hmmlearn's ``KMeans(k, n_init=10)``, converged on a sample of the rows (the
        best of 10 seedings), then Lloyd over all rows (``em.init.kmeans_centres``); for an
        int random_state, from a new RandomState of it, as hmmlearn's KMeans draws."""
        generator = fresh_draws(generator)
        sample = fill_gaps(sample_rows(source.rows, max(SEED_SAMPLE_ROWS, 256 * k), generator))
        kmeans = KMeansModel(k, s.dtype, gaps=s.missing_values == "fiml")
        centres = kmeans_centres(kmeans, KMeansModel(k, torch.float64), engine, source.rows, sample, k, generator,
                                 n_init=HMMLEARN_KMEANS_INIT).cpu()
        return (centres if source.rows.shift is None else centres + source.rows.shift).numpy()

    def _current_params(self, s) -> HMMParams:
        """The parameters the attributes hold, validated (ParameterError names the bad one)."""
        K = s.n_components
        startprob = _stochastic(self.startprob_, (K,), "startprob_")
        transmat = _stochastic(self.transmat_, (K, K), "transmat_")
        emission = self._emission_params(s, self._emission(s, getattr(self, "n_features", None)))
        if getattr(self, "n_features", None) is None:  # parameters set by hand, never fitted
            self.n_features = self._emission_width(emission)
        return HMMParams(startprob, transmat, emission)

    def _set_params(self, p: HMMParams) -> None:
        p = p.to("cpu")
        self.startprob_ = p.startprob.numpy().copy()
        self.transmat_ = p.transmat.numpy().copy()
        self._set_emission(p.emission)
        self._fitted_features = self.n_features
        self._params_ = p
        self._remember_structure()

    def _inference_settings(self):
        """The fitted structure (see EstimatorBase), unless the parameters were since set
        by hand for the structure the hyper-parameters now say (hmmlearn's way of making
        a model without fitting it): then that one."""
        s = super()._inference_settings()
        now = self._settings()
        if not hasattr(self, "startprob_") or not self._structure_changes(now):
            return s
        try:
            self._current_params(s)
        except ParameterError:
            try:
                self._current_params(now)
            except ParameterError:
                pass
            else:
                del self._fit_structure_  # the attributes describe another model now
                return now
            raise
        return s

    # -------------------------------------------------------------- inference
    def _fitted(self, s) -> HMMParams:
        if not hasattr(self, "startprob_"):
            raise not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )
        return self._current_params(s).to(s.device)

    def _batches(self, X, lengths, s, where: dict, engine=None, keep=None) -> tuple[HMMParams, SequenceBatches]:
        """The fitted parameters, moved like the rows of X's batches, and the batches
        (on ``engine``'s cluster with engine='dask'; ``keep``: columns carried to outputs)."""
        params = self._fitted(s)
        source = self._open(X, lengths, s, **where, engine=engine, **({} if keep is None else {"keep": keep}))
        if source.n_features != self.n_features:
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features} features as input."
            )
        shift = source.rows.shift
        return (params if shift is None else self._model(s, self.n_features).translate(params, -shift.to(s.device))), source

    def _warn_impossible(self, count: int, first: int, what: str = "their posteriors are NaN",
                         stacklevel: int = 3) -> None:
        if count:
            warnings.warn(
                f"{count} sequence(s) are impossible under the model (first: sequence {first}): "
                f"their log-likelihood is -inf and {what}",
                ImpossibleSequenceWarning,
                stacklevel=stacklevel,
            )

    def _per_batch(self, method: str, X, lengths, where: dict) -> tuple[list[np.ndarray], np.ndarray | None]:
        """The outputs of the model's ``method`` for every batch of X (a tuple of per-sequence
        or per-row tensors), each joined in row order as a numpy array; and, where X's
        sequences were cut into pieces, the sequence of each per-sequence output (a
        piece gives one for its sequence: see :meth:`SequenceBatches.sequence_of_outputs`).

        In this process the batches are streamed and their outputs stay on the device,
        coming back in groups of about ``READ_BACK_BYTES`` (:class:`HostRows`): on a GPU no
        batch waits for the host. On Dask each partition's outputs come back on the host."""
        s = self._inference_settings()
        outputs: list[HostRows] = []

        def gather(found) -> None:
            if not outputs:
                outputs.extend(HostRows() for _ in found)
            for rows, value in zip(outputs, found):
                rows.add(value)

        with _inference_engine(s) as engine:
            params, source = self._batches(X, lengths, s, where, engine)
            local = isinstance(engine, LocalEngine)
            model = self._model(s, self.n_features)
            task = Task(model, method, (params,), {"host": not local, **_links(model, engine, source, params, method)})
            if local:
                engine.size_chunks(task, source)
                with engine.sharing_cores(source), contextlib.closing(engine.stream(source)) as batches:
                    for batch in batches:
                        gather(task(batch))
            else:
                for found in engine.map(task, source):
                    gather(found)
        return [rows.result() for rows in outputs], _outputs_sequence(source)

    def _posteriors(self, X, lengths, where: dict):
        """(per-sequence log-likelihoods, posteriors (n_samples, K) float64)."""
        (ll, post), sequence = self._per_batch("state_posteriors", X, lengths, where)
        ll = _per_sequence(ll, sequence)
        bad = np.nonzero(~np.isfinite(ll))[0]
        self._warn_impossible(len(bad), int(bad[0]) if len(bad) else -1)
        return ll, post

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
        return self._criterion(X, lengths, _where(columns, sequence_column))[0]

    def predict_proba(self, X, lengths=None, *, columns=None, sequence_column=None) -> np.ndarray:
        """Posterior probability of each state at each row. Shape (n_samples, n_components)."""
        return self._posteriors(X, lengths, _where(columns, sequence_column))[1]

    def decode(self, X, lengths=None, algorithm=None, *, columns=None, sequence_column=None):
        """Most likely states: (log-probability, states of shape (n_samples,)).

        'viterbi': the jointly most likely path and its log-probability; 'map': the most
        likely state at each row and, as hmmlearn returns, the sum over rows of that
        state's posterior probability (not a log-probability). X, lengths, columns,
        sequence_column: as for :meth:`fit`.
        """
        where = _where(columns, sequence_column)
        s = self._inference_settings()
        algorithm = s.algorithm if algorithm is None else _params.check_choice(
            algorithm, "algorithm", type(self).__name__, ("viterbi", "map")
        )
        if algorithm == "map":
            post = self._posteriors(X, lengths, where)[1]
            # hmmlearn's sum: NaN where an impossible sequence's rows are NaN; its path (0 there)
            return float(post.max(1).sum()), np.nan_to_num(post, nan=0.0).argmax(1)
        (lp, path), sequence = self._per_batch("decode", X, lengths, where)
        lp = _per_sequence(lp, sequence)
        bad = np.nonzero(~np.isfinite(lp))[0]
        self._warn_impossible(len(bad), int(bad[0]) if len(bad) else -1)
        return float(lp.sum()), path

    def predict(self, X, lengths=None, *, columns=None, sequence_column=None) -> np.ndarray:
        """Most likely state of each row (by ``algorithm``). Shape (n_samples,)."""
        return self.decode(X, lengths, columns=columns, sequence_column=sequence_column)[1]

    def write_predictions(self, X, out, lengths=None, *, outputs=("state",), id_column=None, columns=None,
                          sequence_column=None) -> str:
        """Stream per-row outputs of X to a .parquet, .csv or .npy file; returns its path.

        ``outputs``: any of 'state' (each row's state by ``algorithm``, as :meth:`predict`:
        the Viterbi path by default) and 'proba' (each state's posterior: proba_0, ...,
        as :meth:`predict_proba`). ``id_column``: a column of X's file or DataFrame
        copied to the output first, to join results back. X, lengths, columns,
        sequence_column: as for :meth:`fit`. Batches of sequences, and pieces of a
        sequence longer than a batch, are computed and written one at a time: memory
        stays within ``memory_budget`` whatever the size of X (a Dask engine gathers the
        outputs first). The file appears only when complete; on any error nothing is
        left behind. Rows of impossible sequences get NaN probabilities, with an
        :class:`ImpossibleSequenceWarning`, as :meth:`predict_proba` gives them.
        """
        outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        unknown = [o for o in outputs if o not in ("state", "proba")]
        if not outputs or unknown:
            raise ParameterError(f"outputs must be one or more of ['state', 'proba']; got {list(outputs)}")
        path = check_output_path(out, X)
        if not writes_files(self):
            return path  # under torchrun, rank 0 alone writes (and computes) the file
        s = self._inference_settings()
        viterbi = "state" in outputs and s.algorithm == "viterbi"
        methods = (["decode"] if viterbi else []) + (["state_posteriors"] if set(outputs) - {"state"} or not viterbi
                                                     else [])
        keep = None if id_column is None else [str(id_column)]
        found: dict[str, list] = {m: [] for m in methods}  # the per-sequence values, for the warning
        with _inference_engine(s) as engine:
            params, source = self._batches(X, lengths, s, _where(columns, sequence_column), engine, keep)
            model = self._model(s, self.n_features)
            local = isinstance(engine, LocalEngine)
            tasks = [Task(model, method, (params,), {"host": True, **_links(model, engine, source, params, method)})
                     for method in methods]
            with Sink(path, source.n_rows) as sink:
                if local:
                    engine.size_chunks(tasks[0], source)
                    with engine.sharing_cores(source), contextlib.closing(engine.stream(source)) as batches:
                        for batch in batches:
                            self._write_batch(sink, batch, [task(batch) for task in tasks], methods, outputs, keep,
                                              found)
                else:  # a cluster's partitions: each task's outputs in row order, then written
                    results = [engine.map(task, source) for task in tasks]
                    ids = None if keep is None else RowsInOrder(id_column_blocks(X, keep[0]))  # read here
                    for parts in zip(*results):
                        self._write_batch(sink, None, list(parts), methods, outputs, keep, found, ids)
                written = sink.commit()
            sequence = _outputs_sequence(source)
        ll = _per_sequence(np.concatenate([v.numpy() for v in found[methods[-1]]]), sequence)
        bad = np.nonzero(~np.isfinite(ll))[0]
        self._warn_impossible(len(bad), int(bad[0]) if len(bad) else -1)
        return written

    def _write_batch(self, sink, batch, results, methods: list[str], outputs, keep, found: dict,
                     ids: RowsInOrder | None = None) -> None:
        """One batch's outputs (``results`` of ``methods``, on the host) appended to ``sink``,
        with its ids: the batch's own, or (outputs computed on a cluster) the next of ``ids``."""
        got = dict(zip(methods, results))
        for method, (per_sequence, _) in got.items():
            found[method].append(per_sequence)
        cols: dict[str, object] = {}
        if keep is not None:
            if ids is not None:
                cols[keep[0]] = ids.take(int(results[0][1].shape[0]))
            elif batch is None or batch.extra is None:
                raise DataError(f"id_column={keep[0]!r}: the rows came without it; pass X as a file or DataFrame "
                                "that holds that column")
            else:
                cols[keep[0]] = batch.extra[keep[0]]
        if "state" in outputs:
            cols["state"] = (got["decode"][1] if "decode" in got else got["state_posteriors"][1].argmax(1)).numpy()
        if "proba" in outputs:
            cols["proba"] = got["state_posteriors"][1].numpy()
        sink.write(cols)

    def get_stationary_distribution(self) -> np.ndarray:
        """The stationary distribution of the states, hmmlearn's: the left eigenvector of
        ``transmat_`` for its largest eigenvalue (1), normalised to sum to 1."""
        if not hasattr(self, "transmat_"):
            raise not_fitted_error(
                f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                "before using this estimator."
            )
        values, vectors = np.linalg.eig(np.asarray(self.transmat_, dtype=np.float64).T)
        vector = np.real_if_close(vectors[:, np.argmax(values)])
        return vector / vector.sum()

    def sample(self, n_samples=1, random_state=None, currstate=None):
        """One sequence of ``n_samples`` steps: (X of shape (n_samples, n_features), states).
        ``currstate``: the first step's state (else drawn from ``startprob_``), so that
        ``sample(n, currstate=states[-1])`` goes on from an earlier sample's last state.

        With an int ``random_state`` (this one, else the estimator's), hmmlearn's draws from
        numpy's ``RandomState`` of it, step after step in its order: the same rows as
        hmmlearn's ``sample``."""
        s = self._sampling_settings()
        params = self._fitted(s)
        if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
            raise ParameterError(f"n_samples must be a positive int, got {n_samples!r}")
        n_samples = _params.check_sample_size(n_samples, self._columns())
        K = s.n_components
        if currstate is not None and (isinstance(currstate, bool) or not isinstance(currstate, (int, np.integer))
                                      or not 0 <= currstate < K):
            raise ParameterError(f"currstate must be a state, an int in [0, {K - 1}] (n_components={K}); "
                                 f"got {currstate!r}")
        generator = _params.draws(s.random_state if random_state is None else random_state)
        emit = self._hmmlearn_emitter() if generator.numpy is not None else None
        if emit is not None:
            return _hmmlearn_sample(self.startprob_, self.transmat_, emit, int(n_samples), generator.numpy,
                                    currstate)
        x, states = self._model(s, self.n_features).sample(params.to("cpu"), int(n_samples), generator,
                                                           first=None if currstate is None else int(currstate))
        generator.settle()
        x = x.numpy()
        return (x.astype(np.int64) if self._integer_data else x), states.numpy()

    def _sampling_settings(self):
        """The settings ``sample`` draws with (default: the inference settings)."""
        return self._inference_settings()

    def _hmmlearn_emitter(self):
        """hmmlearn's ``_generate_sample_from_state`` of this emission: (state, RandomState)
        -> one row, drawn as hmmlearn draws it; None where it has none."""
        return None

    # -------------------------------------------------------------- persistence
    def save(self, path) -> None:
        """Write the fitted model to ``path`` (safetensors + JSON metadata, atomically)."""
        from .persistence import save

        self._fitted(self._inference_settings())
        save(self, path)

    def _fitted_state(self) -> dict:
        monitor = getattr(self, "monitor_", None)
        return {
            "n_features": int(getattr(self, "_fitted_features", self.n_features)),
            "history": [float(v) for v in monitor.history] if monitor else [],
            "iter": int(monitor.iter) if monitor else 0,
            "converged": bool(monitor.converged) if monitor else False,
            "n_passes": int(getattr(self, "n_passes_", monitor.iter if monitor else 0)),
            **({"feature_names_in_": [str(n) for n in self.feature_names_in_]}
               if hasattr(self, "feature_names_in_") else {}),
            **npy_columns.state(self),
        }

    def _restore(self, state: dict) -> None:
        """The fitted state of a model file, once its arrays are set as attributes: every
        field checked by type (ModelFileError naming it), the parameters as user-set ones
        are, and within what the arithmetic can evaluate."""
        stored = _params.Stored(state)
        self.n_features = stored.count("n_features", low=1)
        s = self._settings()
        try:
            params = self._current_params(s)
            width = self._emission_width(params.emission)
            if width != self.n_features:
                raise ModelFileError(f"n_features is {self.n_features} but the emission parameters have {width}")
            self._check_scale(s, params.emission)
            centres = self._centres(s, params.emission)
            if centres is not None:
                log_b = self._model(s, self.n_features).log_emission(params, centres)
                _params.check_density_at_centres(log_b, s.dtype, "state")
        except (NumericalError, ParameterError) as exc:
            raise ParameterError(f"invalid parameters ({exc}); the file is damaged") from None
        self._set_params(params)
        monitor = ConvergenceMonitor(s.tol, s.n_iter, s.verbose)
        monitor.history = deque(stored.numbers("history", []))
        monitor.iter = stored.count("iter", 0, high=_params.MAX_ITER)
        monitor.converged = stored.flag("converged", False)
        self.monitor_ = monitor
        self.n_passes_ = stored.count("n_passes", monitor.iter, high=_params.MAX_ITER)
        names = stored.strings("feature_names_in_", None)
        if names is not None and len(names) != self._columns():
            raise ModelFileError(f"feature_names_in_ has {len(names)} names but the model reads {self._columns()} "
                                 "columns; the file is damaged")
        self._remember_names(names)
        npy_columns.restore(self, stored, self._columns())

    def _check_scale(self, s, emission) -> None:
        """NumericalError when loaded emission parameters are beyond what float64 can carry
        (``_params.check_scale``); default: nothing to check."""

    def _centres(self, s, emission) -> torch.Tensor | None:
        """Rows where each state's emission density must be finite (its means), float64;
        None: nothing to evaluate (probabilities are their own check)."""
        return None


# ------------------------------------------------------------------ helpers
@contextlib.contextmanager
def _engine(s):
    """The engine a fit runs on: this process, its torch.distributed group, or a Dask cluster."""
    if s.engine == "torch":
        from ..engines.distributed import session

        with session(s.device) as engine:
            yield engine
    elif s.engine == "dask":
        from ..engines.dask import session

        with session(s.client) as engine:
            yield engine
    else:
        yield LocalEngine()


def _occupancy(startprob: np.ndarray, transmat: np.ndarray, doublings: int = 10) -> np.ndarray:
    """Each state's expected share of a long sequence's steps from ``startprob``: the mean of
    its first 2**doublings state distributions (the stationary one for a mixing chain; for
    a left-right chain, mostly its last state's), summed by doubling, I + A + ... +
    A^(2m-1) = S_m + S_m A^m: 20 small products, not one per step (every inference call
    asks). Uniform where the parameters give none."""
    total, power = np.eye(len(startprob)), transmat.copy()
    for _ in range(doublings):
        total, power = total + total @ power, power @ power
    share = startprob @ total
    return share / share.sum() if np.isfinite(share).all() and share.sum() > 0 else np.full_like(share, 1 / len(share))


@contextlib.contextmanager
def _inference_engine(s):
    """Where inference runs: the Dask cluster with engine='dask', else this process (a
    process of a torch group scores and decodes what it is given)."""
    if s.engine == "dask":
        with _engine(s) as engine:
            yield engine
    else:
        yield LocalEngine()


def _links(model: HMMModel, engine, source, params: HMMParams, method: str) -> dict:
    """The keyword that hands ``method`` its pieces' links where the source cuts a
    sequence (see ``em.driver.linked``; Viterbi's come from its own pass), else none."""
    found = (linked(model, engine, source, [params], "best_transfers", "best_path") if method == "decode"
             else linked(model, engine, source, [params]))
    return {} if found is None else {"links": found[0]}


def _outputs_sequence(source) -> np.ndarray | None:
    """Each per-sequence output's sequence where the source cuts a sequence into pieces
    (:meth:`SequenceBatches.sequence_of_outputs`), else None."""
    return None if getattr(source, "pieces", None) is None else source.sequence_of_outputs()


def _per_sequence(values: np.ndarray, sequence: np.ndarray | None) -> np.ndarray:
    """Per-sequence outputs from per-batch ones: a cut sequence's pieces each gave its
    part (of its log-likelihood, or of its best path's log-probability), which add up;
    ``sequence``: each output's sequence (None: no sequence was cut)."""
    if sequence is None:
        return values
    return np.bincount(sequence, weights=values, minlength=int(sequence[-1]) + 1)


def _where(columns, sequence_column) -> dict:
    """Which columns are features and which holds the sequence ids (None: not by name)."""
    return {"columns": None if columns is None else list(columns), "sequence_column": sequence_column}


def _broadcast(value, shape, name: str, owner: str) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if bool((t < 0).any()):
        raise ParameterError(f"The {name!r} parameter of {owner} must be finite and non-negative. Got {value!r}.")
    try:
        return torch.broadcast_to(t, shape).clone()
    except RuntimeError:
        raise ParameterError(f"The {name!r} parameter of {owner} must broadcast to shape {shape}, got {tuple(t.shape)}") from None


def _stochastic(value, shape, name: str) -> torch.Tensor:
    """A user-set startprob_ / transmat_: finite, non-negative, each row summing to 1
    within hmmlearn's tolerance (``np.allclose``: 1e-5 relative, 1e-8 absolute, so that
    float32 rows and rounded ones pass as they pass there), used as given."""
    t = _params.as_f64(value, name)
    _params.check_shape(t, shape, name)
    if bool((t < 0).any()):
        raise ParameterError(f"{name} has negative entries (min {float(t.min()):.6g}); probabilities must be >= 0")
    sums = t.sum(-1)
    if not bool(torch.allclose(sums, torch.ones_like(sums), rtol=1e-5, atol=1e-8)):
        row = int(torch.argmax((sums - 1).abs())) if t.ndim == 2 else 0
        what = f"row {row} of {name}" if t.ndim == 2 else name
        raise ParameterError(
            f"{what} sums to {float(sums.reshape(-1)[row]):.10g}, not 1; normalise it (divide by its sum)"
        )
    return t


def _hmmlearn_sample(startprob, transmat, emit, n: int, rs: np.random.RandomState, currstate=None):
    """hmmlearn's ``sample``: the first state from ``startprob`` (unless ``currstate``),
    then each step's row (``emit(state, rs)``) and the next state from its row of
    ``transmat``, each by one ``rand`` against the cumulated probabilities, in that order."""
    start_cdf = np.cumsum(np.asarray(startprob, dtype=np.float64))
    trans_cdf = np.cumsum(np.asarray(transmat, dtype=np.float64), axis=1)
    state = int((start_cdf > rs.rand()).argmax()) if currstate is None else int(currstate)
    states, rows = [state], [emit(state, rs)]
    for _ in range(n - 1):
        state = int((trans_cdf[state] > rs.rand()).argmax())
        states.append(state)
        rows.append(emit(state, rs))
    return np.atleast_2d(rows), np.array(states, dtype=int)


def _normal_emitter(means: np.ndarray, covariances: np.ndarray):
    """Draws of ``rs.multivariate_normal(means[i], covariances[i])`` with each covariance's
    factor computed once (numpy's own: its SVD, the square roots of the singular values
    times the right vectors), so that each step costs one ``standard_normal`` and one
    product, the same numbers as numpy's call. ``means`` (..., D); ``covariances`` the same
    leading shape, (..., D, D); index with a tuple for several leading axes."""
    u, s, vh = np.linalg.svd(covariances)
    factors = np.sqrt(s)[..., :, None] * vh
    D = means.shape[-1]

    def emit(index, rs):
        x = rs.standard_normal((1, D))
        return (np.dot(x, factors[index]) + means[index])[0]

    return emit


def _random_rows(K: int, M: int, generator: torch.Generator) -> np.ndarray:
    """(K, M) uniform draws, each row normalised to sum to 1: hmmlearn's start of a
    categorical or multinomial emission (``rand``, from a new RandomState of an int
    random_state), else drawn from the fit's generator."""
    rs = fresh_numpy(generator)
    e = torch.rand(K, M, generator=generator, dtype=torch.float64).numpy() if rs is None else rs.rand(K, M)
    return e / e.sum(1, keepdims=True)


def _values_mean_var(summary: RowSummary) -> tuple[float, float]:
    """The mean and variance (n in the denominator) of every observed value of X, all
    columns together (hmmlearn's ``X.mean()`` and ``X.var()``), from a row summary with
    second moments: the sums are about the probe, where a gap counts as the probe."""
    p, seen = summary.probe, summary.seen.double()
    first = seen * p + summary.sum_x  # per column: the sum of its observed values
    second = torch.diagonal(summary.scatter) + 2.0 * p * summary.sum_x + seen * p.square()
    n = float(seen.sum())
    mean = float(first.sum()) / n
    return mean, float(second.sum()) / n - mean * mean


def _dirichlet(alpha: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Dirichlet draws (rows) from Gamma variates with an explicit generator."""
    g = torch._standard_gamma(alpha.double(), generator=generator)
    total = g.sum(-1, keepdim=True)
    g = torch.where(total > 0, g, torch.ones_like(g))
    return g / g.sum(-1, keepdim=True)


def _dirichlet_rows(alpha: np.ndarray, generator: torch.Generator, rs: np.random.RandomState | None) -> np.ndarray:
    """Dirichlet draws of concentrations ``alpha`` ((M,), or one row each (R, M)): from
    hmmlearn's RandomState ``rs`` in its order (row after row, as its ``dirichlet(size=R)``
    draws them) where there is one, else from the fit's generator."""
    if rs is None:
        return _dirichlet(torch.as_tensor(alpha, dtype=torch.float64), generator).numpy()
    if alpha.ndim == 1:
        return rs.dirichlet(alpha)
    return np.stack([rs.dirichlet(row) for row in alpha])


# At most this many symbols unless n_features says more: a symbol of 1e9 would make
# emissionprob_ (K, 1e9); re-coding the symbols as 0..M-1 is the way to many distinct ones.
MAX_SYMBOLS = 2**20
EXACT_FLOAT32 = 2**24  # float32 holds every integer up to here, and rounds beyond


def _non_negative_integers(what: str, owner: str, columns: bool, limit: int | None = None,
                           given: bool = True, gaps: bool = False) -> RowRule:
    """A chunk rule: every value a non-negative integer (below ``limit`` when given:
    n_features, or, when ``given`` is False, bigem's bound on the symbols); with ``gaps``
    NaN too (a missing value)."""

    def entries(x: torch.Tensor) -> torch.Tensor:
        bad = (x < 0) | (x != torch.round(x))
        if gaps:
            bad &= ~torch.isnan(x)  # a missing value (NaN) is not a bad one
        return bad

    def broken(chunk: Chunk) -> torch.Tensor:
        flag = entries(chunk.x).any()
        return flag if limit is None else flag | (chunk.x >= limit).any()

    def check(chunk: Chunk) -> None:
        x = chunk.x
        bad = entries(x)
        if bool(bad.any()):
            r, c = (int(v) for v in torch.nonzero(bad)[0])
            where = f"X row {chunk.row_start + r}, column {c}" if columns else f"X row {chunk.row_start + r}"
            raise DataError(f"{where} holds {float(x[r, c]):g}: {owner} {what}")
        if limit is not None and x.shape[0] and bool((x >= limit).any()):
            r = int(torch.nonzero((x >= limit).any(1))[0])
            value = float(x[r].max())
            value = f"{value:.17g}" if value >= 2**63 else f"{int(value)}"
            if given:
                raise DataError(f"X holds symbol {value}, outside 0..{limit - 1} (n_features={limit}), at row "
                                f"{chunk.row_start + r}; raise n_features or re-encode the symbols")
            raise DataError(
                f"X holds symbol {value} at row {chunk.row_start + r}: {owner} takes symbols 0..{limit - 1} "
                f"(2**{limit.bit_length() - 1}) unless n_features says more, as each state keeps a probability per "
                "symbol; re-code the symbols as 0..M-1 (e.g. np.unique(X, return_inverse=True)[1]), or pass n_features"
            )

    return RowRule(check, broken)


def _covariance_scalars(covariance_type: str, K: int, D: int) -> int:
    """hmmlearn's free scalars of K covariances of a type."""
    return {"spherical": K, "diag": K * D, "full": K * D * (D + 1) // 2, "tied": D * (D + 1) // 2}[covariance_type]


def _spherical(covars: torch.Tensor, K: int, D: int) -> torch.Tensor:
    """Spherical variances (K,) from the shapes hmmlearn accepts: (K,), or one value per
    state repeated in columns, (K, 1) or (K, D) (hmmlearn's own layout after its M-step)."""
    if covars.ndim == 2 and covars.shape[0] == K and covars.shape[1] in (1, D):
        if not bool((covars == covars[:, :1]).all()):
            row = int(torch.nonzero((covars != covars[:, :1]).any(1))[0])
            raise ParameterError(
                f"spherical covars_ of shape {tuple(covars.shape)} must repeat one variance per state across its "
                f"columns, but row {row} holds {covars[row].tolist()}; pass shape ({K},), or use "
                "covariance_type='diag' for a variance per feature"
            )
        return covars[:, 0].contiguous()
    return covars


def _compact(dense: torch.Tensor, st, K: int, D: int) -> torch.Tensor:
    """Covariances of type ``st`` from full matrices (K, D, D), as ``covars_`` returns
    them: only matrices that type holds (diagonal; one variance on the diagonal; one
    matrix for every state), else a ParameterError with the shape to pass."""
    compact = st.from_dense(dense)
    if not torch.allclose(st.dense(compact, K, D), dense, rtol=1e-12, atol=0.0):
        what = {"diag": "diagonal matrices", "spherical": "one variance times the identity per state",
                "tied": "one matrix repeated for every state"}[st.name]
        shape = {"diag": (K, D), "spherical": (K,), "tied": (D, D)}[st.name]
        raise ParameterError(
            f"covars_ holds full matrices of shape {(K, D, D)}, but covariance_type={st.name!r} takes only "
            f"{what}; set covars_ of shape {shape}, or use covariance_type='full'"
        )
    return compact


# ------------------------------------------------------------------ Gaussian
class GaussianHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with Gaussian emissions, a drop-in for ``hmmlearn.hmm.GaussianHMM``.

    Parameters
    ----------"""
        + COMMON_DOC
        + """    covariance_type : {'diag', 'full', 'tied', 'spherical'}, default='diag'
        Covariance of each state's Gaussian.
    min_covar : float, default=1e-3
        Added to the diagonal of the data covariance that initialises ``covars_``, and to
        the diagonal of a state's covariance that collapses in an M-step (singular: a
        constant feature, fewer rows than features), with a ``CollapsedStateWarning``;
        0: such a collapse raises instead.
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
    n_passes_ : int
        Passes over the data the fit took (with ``accelerate``, rejected extrapolations too).
    n_features : int
    """
    )
    _emission_letters = "mc"
    _emission_attributes = ("means_", "_covars_")
    _spherical_in_columns = True  # hmmlearn's GaussianHMM repeats a spherical variance per column after a fit
    _structural = ("n_components", "covariance_type")
    _constraints = dict(
        _common("mc"),
        covariance_type=_params.Choice(NAMES),
        min_covar=_params.Float(0.0),
        means_prior=_params.FiniteArray(),
        means_weight=_params.FiniteArray(non_negative=True),
        covars_prior=_params.FiniteArray(),
        covars_weight=_params.FiniteArray(),
    )

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
        self.covariance_type = covariance_type
        self.min_covar = min_covar
        self.means_prior = means_prior
        self.means_weight = means_weight
        self.covars_prior = covars_prior
        self.covars_weight = covars_weight

    @property
    def covars_(self) -> np.ndarray:
        """Covariances as full matrices (n_components, n_features, n_features)."""
        fitted = getattr(self, "_fit_structure_", None) or {}
        c, K = self._covars_, fitted.get("n_components", self.n_components)
        D = np.shape(self.means_)[-1]  # means_ may be a list, as hmmlearn's users set it
        ct = fitted.get("covariance_type", self.covariance_type)
        c = _params.as_f64(c, "covars_")
        if tuple(c.shape) == (K, D, D):  # full matrices, of any type: as they are
            return c.numpy().copy()
        if ct == "spherical":  # hmmlearn also stores spherical as (K, D)
            c = _spherical(c, K, D)
        _params.check_shape(c, {"full": (K, D, D), "diag": (K, D), "tied": (D, D), "spherical": (K,)}[ct], "covars_")
        return structure(ct).dense(c, K, D).numpy().copy()

    @covars_.setter
    def covars_(self, value) -> None:
        self._covars_ = np.array(value, dtype=np.float64, copy=True)

    def _hmmlearn_emitter(self):
        return _normal_emitter(np.asarray(self.means_, dtype=np.float64), self.covars_)

    def _advice(self, s) -> str:
        return (f"increase min_covar (now {s.min_covar:g}) or covars_prior (now {s.covars_prior}), lower "
                "n_components, or standardise X")

    def _emission(self, s, n_features=None) -> GaussianComponent:
        # as in hmmlearn, a prior acts only through the updates of the letters in params
        updated = set(s.params) & set("mc")
        weight = float(np.reshape(s.covars_weight, -1)[0]) if np.size(s.covars_weight) == 1 else s.covars_weight
        covars = (s.covars_prior, weight) if "c" in updated else (0.0, 0.0)
        prior = Prior(s.means_prior, s.means_weight, *covars) if updated else None
        return GaussianComponent(s.covariance_type, 0.0, s.dtype, prior=prior, advice=self._advice(s),
                                 gaps=s.missing_values == "fiml")

    def _mend(self, s, emission: GaussianComponent) -> Mend | None:
        """A state whose covariance collapses gets min_covar on its diagonal (hmmlearn's
        documented meaning of min_covar; hmmlearn itself retries its Cholesky factor with
        1e-7 added): tiny data with a constant feature fits instead of failing."""
        if s.min_covar <= 0:
            return None
        uniform = torch.full((s.n_components,), 1.0 / s.n_components, dtype=torch.float64)
        return Mend(partial(emission.floor, amount=s.min_covar), emission.collapsed,
                    partial(emission.decrease_tolerance, weights=uniform),
                    f"min_covar={s.min_covar:g} was added to its diagonal", CollapsedStateWarning)

    def _needs_moments(self, s) -> bool:
        return self._will_init(s, "c", "_covars_")

    def _init_emission(self, s, source, summary, generator, engine) -> None:
        K = s.n_components
        if self._needs_init(s, "m", "means_"):
            if source.n_rows < K:
                raise DataError(
                    f"Expected n_samples >= n_components but got n_components = {K}, n_samples = {source.n_rows}"
                )
            self.means_ = self._kmeans_centres(s, source, K, generator, engine)
        elif self._needs_init(s, "c", "covars_", "_covars_"):
            # means_ set by hand, covariances from X: a width that is not X's is the means' (the
            # covariances made to X's width were blamed), in _fit_start's words
            width = np.shape(self.means_)[-1] if np.ndim(self.means_) == 2 else None
            if width is not None and width != source.n_features:
                raise ParameterError(f"means_ holds {width} columns but X has {source.n_features} features: give it "
                                     f"{source.n_features} columns, or fit on {width} of X's columns")
        if self._needs_init(s, "c", "covars_", "_covars_"):
            cov = summary.covariance
            D = cov.shape[0]
            cv = cov.numpy() + s.min_covar * np.eye(D)
            st = structure(s.covariance_type)
            if st.name == "spherical":  # hmmlearn's: the mean of every entry of cv, its covariances too
                self._covars_ = np.full(K, cv.mean())
            else:
                self._covars_ = st.from_dense(torch.as_tensor(cv).expand(K, D, D)).numpy().copy()

    def _emission_params(self, s, emission: GaussianComponent) -> GaussianParams:
        K, st = s.n_components, structure(s.covariance_type)
        means = _params.as_f64(self.means_, "means_")
        D = means.shape[-1] if means.ndim == 2 else -1
        _params.check_shape(means, (K, D), "means_")
        covars = _params.as_f64(self._covars_, "covars_")
        if st.name == "spherical":
            covars = _spherical(covars, K, D)
        if tuple(covars.shape) == (K, D, D) and st.name != "full":  # full matrices (the getter's form)
            covars = _compact(covars, st, K, D)
        covars = st.check_covariances(covars, K, D, "covars_")
        try:
            return emission.make_params(means, covars)
        except NumericalError as exc:
            raise ParameterError(f"covars_ must be symmetric, positive-definite: {exc}") from None

    def _set_emission(self, p: GaussianParams) -> None:
        self.means_ = p.means.numpy().copy()
        covars = p.covariances.numpy()
        if covars.ndim == 1 and self._spherical_in_columns:  # hmmlearn's layouts of a spherical _covars_:
            if "c" in self.params:  # its M-step's, one variance repeated, (K, D)
                covars = np.repeat(covars[:, None], self.means_.shape[1], 1)
            elif np.shape(getattr(self, "_covars_", None)) == (covars.shape[0], self.means_.shape[1]):
                covars = np.repeat(covars[:, None], self.means_.shape[1], 1)  # untouched: the layout it had
        self._covars_ = covars.copy()

    def _check_prior_shapes(self, s, K: int, D: int) -> None:
        """ParameterError for a prior that the updates of ``params`` use and cannot combine
        with the parameters, as hmmlearn's arithmetic broadcasts them (hmmlearn fails there
        with numpy's ValueError); a prior of a parameter held fixed is not read. Checked as
        a fit starts: only the fit reads the priors, as in hmmlearn."""
        def check(name: str, target: tuple[int, ...], hint: str) -> None:
            shape = np.shape(getattr(s, name))
            try:
                fits = np.broadcast_shapes(shape, target) == target
            except ValueError:
                fits = False
            if not fits:
                raise ParameterError(f"{name} has shape {shape}, which does not broadcast to {target} as "
                                     f"covariance_type={s.covariance_type!r} needs: give {hint}")

        if not set(s.params) & set("mc"):
            return
        means = f"a number, or an array that broadcasts to the means' shape ({K}, {D})"
        check("means_prior", (K, D), means)
        check("means_weight", (K, D), means)
        if s.covariance_type in ("full", "tied") and np.size(s.means_weight) not in (1, K):
            raise ParameterError(f"means_weight has shape {np.shape(s.means_weight)}: with "
                                 f"covariance_type={s.covariance_type!r} it weighs a state's whole mean, so give a "
                                 f"number, or one per state (shape ({K}, 1))")
        if "c" in s.params:
            target = {"full": (K, D, D), "tied": (D, D)}.get(s.covariance_type, (K, D))
            check("covars_prior", target, f"a number, or an array of shape {target}")
            if np.size(s.covars_weight) != 1:
                raise ParameterError(f"covars_weight has shape {np.shape(s.covars_weight)}: give one number")

    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        return {"m": s.n_components * n_features, "c": _covariance_scalars(s.covariance_type, s.n_components, n_features)}

    def _check_scale(self, s, emission: GaussianParams) -> None:
        tied = s.covariance_type == "tied"
        variances = _params.variances_of(emission.covariances, s.covariance_type, 1 if tied else s.n_components)
        _params.check_scale("state", means=emission.means, variances=variances, tied=tied)

    def _centres(self, s, emission: GaussianParams) -> torch.Tensor:
        return emission.means


# ------------------------------------------------------------------ categorical
class CategoricalHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with categorical emissions, a drop-in for ``hmmlearn.hmm.CategoricalHMM``.

    X has one column of integer symbols 0..n_features-1.

    Parameters
    ----------"""
        + COMMON_DOC
        + """    emissionprob_prior : float or array (n_components, n_features), default=1.0
        Dirichlet concentration of each state's symbol distribution.
    n_features : int, default=None
        Number of symbols; None: one more than the largest symbol in the data of ``fit``.

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    emissionprob_ : ndarray (n_components, n_features)
    monitor_ : ConvergenceMonitor
    n_passes_ : int
        Passes over the data the fit took (with ``accelerate``, rejected extrapolations too).
    """
    )
    _emission_letters = "e"
    _emission_attributes = ("emissionprob_",)
    _structural = ("n_components", "n_features")
    _integer_data = True
    _constraints = dict(
        _common("e"), emissionprob_prior=_params.FiniteArray(), n_features=_params.Optional(_params.Int(1))
    )

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
        self.emissionprob_prior = emissionprob_prior
        self.n_features = n_features

    def _row_check(self, s, fitting):
        symbols = self._symbols(s, fitting)
        if symbols is not None and s.dtype == torch.float32 and symbols > EXACT_FLOAT32:
            raise ParameterError(
                f"n_features={symbols} symbols: with dtype='float32' the symbols above 2**24 = {EXACT_FLOAT32:,} are "
                "not exact (float32 rounds them to their neighbours); pass dtype='float64', or re-code the symbols "
                "as 0..M-1"
            )
        return _non_negative_integers("symbols must be non-negative integers 0..n_features-1", type(self).__name__,
                                      False, MAX_SYMBOLS if symbols is None else symbols, given=symbols is not None,
                                      gaps=s.missing_values == "fiml")

    def _open(self, X, lengths, s, columns=None, sequence_column=None, fitting=False, engine=None, keep=None):
        source = super()._open(X, lengths, s, columns, sequence_column, fitting, engine, keep)
        if source.n_features != 1:
            raise DataError(
                f"CategoricalHMM expects X with one column of integer symbols, got {source.n_features} columns; "
                "pass X of shape (n_samples, 1)"
            )
        return source

    def _check_features(self, source) -> None:
        pass  # n_features counts symbols here: the symbols are checked against it instead

    def _columns(self) -> int:
        return 1

    def _symbols(self, s, fitting: bool, summary: RowSummary | None = None) -> int | None:
        """How many symbols: n_features given, else the set emissionprob_'s (unless fit
        initialises it), else (given the data's summary) one more than the largest."""
        if s.n_features is not None:
            return s.n_features
        if hasattr(self, "emissionprob_") and not (fitting and "e" in s.init_params):
            return int(np.shape(self.emissionprob_)[-1])
        return None if summary is None else int(summary.top[0]) + 1

    def _advice(self, s) -> str:
        return "give every symbol a non-zero probability in some state (emissionprob_), or raise emissionprob_prior above 1"

    def _emission(self, s, n_features=None) -> CategoricalComponent:
        symbols = n_features or s.n_features or (int(np.shape(self.emissionprob_)[-1]) if hasattr(self, "emissionprob_") else 0)
        return CategoricalComponent(symbols, self.emissionprob_prior, s.dtype, advice=self._advice(s),
                                    gaps=s.missing_values == "fiml")

    def _init_emission(self, s, source, summary, generator, engine) -> None:
        M = self._symbols(s, True, summary)
        _params.check_memory(4 * 8 * s.n_components * M, f"{M:,} symbols for {s.n_components} states",
                             "re-code the symbols as 0..M-1 (e.g. np.unique(X, return_inverse=True)[1]), or lower n_features")
        if self._needs_init(s, "e", "emissionprob_"):
            self.emissionprob_ = _random_rows(s.n_components, M, generator)
        self.n_features = M

    def _emission_params(self, s, emission) -> CategoricalParams:
        K = s.n_components
        e = _params.as_f64(self.emissionprob_, "emissionprob_")
        M = e.shape[-1] if e.ndim == 2 else -1
        return CategoricalParams(_stochastic(e, (K, M), "emissionprob_"))

    def _emission_width(self, emission: CategoricalParams) -> int:
        return int(emission.probabilities.shape[-1])

    def _set_emission(self, p: CategoricalParams) -> None:
        self.emissionprob_ = p.probabilities.numpy().copy()

    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        return {"e": s.n_components * (n_features - 1)}

    def _hmmlearn_emitter(self):
        cdf = np.cumsum(np.asarray(self.emissionprob_, dtype=np.float64), axis=1)
        return lambda state, rs: [(cdf[state] > rs.rand()).argmax()]

    def _batches(self, X, lengths, s, where: dict, engine=None, keep=None):
        params = self._fitted(s)
        return params, self._open(X, lengths, s, **where, engine=engine, **({} if keep is None else {"keep": keep}))


# ------------------------------------------------------------------ Poisson
class PoissonHMM(_BaseHMM):
    __doc__ = (
        """Hidden Markov model with independent Poisson emissions, a drop-in for ``hmmlearn.hmm.PoissonHMM``.

    Parameters
    ----------"""
        + COMMON_DOC
        + """    lambdas_prior, lambdas_weight : float or array, default=0.0
        Gamma prior on the rates, as hmmlearn applies it: lambdas = (prior + n * mean) /
        (weight + n), with mean the state's posterior-weighted mean count and n the
        posterior mass of every row (not the state's own occupancy).

    Attributes
    ----------
    startprob_, transmat_ : ndarray
    lambdas_ : ndarray (n_components, n_features)
    monitor_ : ConvergenceMonitor
    n_passes_ : int
        Passes over the data the fit took (with ``accelerate``, rejected extrapolations too).
    """
    )
    _emission_letters = "l"
    _emission_attributes = ("lambdas_",)
    _integer_data = True
    _constraints = dict(_common("l"), lambdas_prior=_params.FiniteArray(non_negative=True),
                        lambdas_weight=_params.FiniteArray(non_negative=True))

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
        self.lambdas_prior = lambdas_prior
        self.lambdas_weight = lambdas_weight

    def _row_check(self, s, fitting):
        return _non_negative_integers("models counts, which must be non-negative integers", "PoissonHMM", True,
                                      gaps=s.missing_values == "fiml")

    def _advice(self, s) -> str:
        return "give every state a positive rate of every feature (lambdas_), or set lambdas_prior and lambdas_weight"

    def _emission(self, s, n_features=None) -> PoissonComponent:
        return PoissonComponent(s.lambdas_prior, s.lambdas_weight, s.dtype, advice=self._advice(s),
                                gaps=s.missing_values == "fiml", prior_per_row=True, exact_zeros=True)

    def _needs_moments(self, s) -> bool:
        return self._will_init(s, "l", "lambdas_")

    def _init_emission(self, s, source, summary, generator, engine) -> None:
        """hmmlearn's: every rate drawn from the Gamma distribution whose mean and variance
        are those of all of X's values (method of moments), from a new RandomState of an
        int random_state as hmmlearn draws (else from the fit's generator)."""
        if self._needs_init(s, "l", "lambdas_"):
            mean, var = _values_mean_var(summary)
            mean, var = max(mean, 1e-3), max(var, 1e-6)  # constant or all-zero counts: still positive rates
            K, D = s.n_components, int(summary.sum_x.shape[0])
            rs = fresh_numpy(generator)
            if rs is not None:
                self.lambdas_ = rs.gamma(shape=mean**2 / var, scale=var / mean, size=(K, D))
            else:
                shape = torch.full((K, D), mean**2 / var, dtype=torch.float64)
                self.lambdas_ = (torch._standard_gamma(shape, generator=generator) * (var / mean)).numpy()
            # hmmlearn keeps its draws; one below what the arithmetic resolves (a shape far
            # below 1 draws 0) would make every positive count impossible in its state
            self.lambdas_ = np.maximum(self.lambdas_, torch.finfo(s.dtype).tiny)

    def _emission_params(self, s, emission) -> PoissonParams:
        lam = _params.as_f64(self.lambdas_, "lambdas_")
        K = s.n_components
        D = lam.shape[-1] if lam.ndim == 2 else -1
        _params.check_shape(lam, (K, D), "lambdas_")
        if bool((lam < 0).any()):
            raise ParameterError("lambdas_ must be non-negative rates")
        return PoissonParams(lam)

    def _emission_width(self, emission: PoissonParams) -> int:
        return int(emission.rates.shape[-1])

    def _set_emission(self, p: PoissonParams) -> None:
        self.lambdas_ = p.rates.numpy().copy()

    def _emission_scalars(self, s, n_features: int) -> dict[str, int]:
        return {"l": s.n_components * n_features}

    def _hmmlearn_emitter(self):
        lambdas = np.asarray(self.lambdas_, dtype=np.float64)
        return lambda state, rs: rs.poisson(lambdas[state])

    def _check_scale(self, s, emission: PoissonParams) -> None:
        _params.check_scale("state", rates=emission.rates)

    def _centres(self, s, emission: PoissonParams) -> torch.Tensor:
        return emission.rates
