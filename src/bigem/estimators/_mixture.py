"""What every mixture estimator shares: execution (engine choice, exact and online EM,
checkpoints, partial_fit), streamed and lazy inference, file outputs, persistence.

A family's façade (``GaussianMixture``, ...) adds its hyper-parameters, its docstring,
its model (:meth:`_BaseMixture._model`), its initialiser and its fitted attributes;
everything else is here, written once over ``models.mixture.MixtureModel``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch

from .._core.chunking import host_budget
from .._core.draws import row_draws
from .._core import numerics
from .._core.errors import (DataError, ModelFileError, NumericalError, ParameterError, SampleWeightWarning,
                            SmallBatchWarning, UninformativeColumnWarning, caller_stacklevel, not_fitted_error)
from .._core.optional import require
from .._core.protocols import Task
from .._core.sparse import cat_rows
from .._core.types import Source
from ..em.driver import Checkpoint, IterationInfo, fit_em
from ..em.online import OnlineState, continued, online_step, run_online
from ..em.init import LabelledResponsibilities, from_given_responsibilities
from ..engines import LocalEngine
from ..engines.readback import HostRows
from ..engines.distributed import process_device
from ..models.components import log_prob
from ..models.mixture import (MixtureModel, MixtureParams, ScoreTotals, check_explained, check_unexplained, first_of,
                              first_unexplained)
from ..sources import (Files, TensorSource, feature_names_of, has_column_names, is_file_input, is_source,
                       open_source)
from ..sources.arrays import Centre
from ..sources.identity import digest
from ..sources.validate import check_shape, refuse_sparse
from ..sources.frames import frame_columns, native_frame
from ..sources.inputs import checked_columns, unmasked
from ..sources.dask import is_dask_collection
from ..sources.labels import LabelColumn, as_labels, classes_of, label_codes, learn_classes
from ..sources.schema import KINDS, Schema, as_categories
from ..sources.sinks import Sink, check_output_path
from . import _hints as hints
from . import _npy_columns as npy_columns
from . import _params
from ._base import EstimatorBase, check_positions, writes_files
from ._hints import PomegranateHints
from ._progress import Progress

OUTPUTS = ("label", "proba", "log_density")

# The execution parameters every mixture takes, with their constraints (the façade
# adds its family's); their documentation is MIXTURE_DOC.
EXECUTION = dict(
    tol=_params.Float(0.0),
    max_iter=_params.Int(0, at_most=_params.MAX_ITER),
    n_init=_params.Int(1, at_most=_params.MAX_INIT),
    random_state=_params.Seed(),
    warm_start=_params.Flag(),
    verbose=_params.Int(0, bools=True),
    verbose_interval=_params.Int(1),
    device=_params.Device(),
    dtype=_params.Dtype(),
    chunk_size=_params.Optional(_params.Int(1, at_most=_params.MAX_ROWS)),
    memory_budget=_params.Memory(auto=True),
    cache_budget=_params.Memory(allow_zero=True),
    algorithm=_params.Choice(("em", "online")),
    batch_size=_params.Int(1, at_most=_params.MAX_ROWS),
    learning_decay=_params.Float(0.5, closed=False, high=1.0),
    learning_offset=_params.Float(0.0),
    engine=_params.Choice(("auto", "local", "dask", "torch")),
    client=_params.Client(),
    accelerate=_params.Optional(_params.Choice(("squarem",))),
    stopping=_params.Choice(("gain", "aitken", "mclust")),
)

# Semi-supervised fitting (every mixture): its parameter and constraint.
SUPERVISION = dict(unlabeled_weight=_params.Optional(_params.Float(0.0, high=1.0)))

SUPERVISION_DOC = """    unlabeled_weight : float in [0, 1] or None, default={default}
        Semi-supervised EM (Nigam et al. 2000): with a number, ``fit(X, y)`` reads y as
        class labels, -1 (or a missing value) for an unlabelled row (scikit-learn's
        ``semi_supervised`` convention). A labelled row's responsibilities are confined
        to its class's components, an unlabelled row counts this much (Nigam's lambda;
        0: the supervised classifier from the labelled rows alone). Components are shared
        out among the classes in order (n_components >= the number of classes; several
        per class allowed); ``classes_`` holds the labels, ``predict`` returns them and
        ``predict_proba`` gives one column per class (a number with no y, or a y that
        labels no row, warns: the fit is then unsupervised). Unless ``*_init`` are
        given, the fit starts from the labelled rows (each class's components from its
        rows), whatever ``init_params``. None: y is ignored{none}.
"""

# The parameters of online EM, which a model without it (a variational one) leaves out.
ONLINE = ("algorithm", "batch_size", "learning_decay", "learning_offset")

# Gaps (missing values): a family whose model can read them adds this to its parameters,
# and MISSING_DOC to its documentation.
MISSING = dict(missing_values=_params.Choice(("error", "fiml")))

# stopping="mclust", which the variational mixture lacks (its bound is no likelihood)
_MCLUST_STOPPING = """        'mclust': mclust's rule, ``|change of the total log-likelihood| <= tol (1 + |total|)``
        (mclust's tol is 1e-5), ending on the parameters last evaluated, whose
        log-likelihood mclust reports and scores its BIC with: with ``init_params='hc'``
        and ``reg_covar=0`` a fit retraces mclust's to its printed digits (mclust's own
        parameters are the M-step one beyond, a step of about ``tol``'s size). As in mclust, a component that loses its
        support or turns singular ends the fit (a NumericalError; mclust's missing BIC,
        which ``select`` and the classifiers leave out) instead of being re-seeded.
"""
_EXECUTION_DOC = """    random_state : int, RandomState, Generator or None, default=None
        Seed for initialisation and sampling; an int makes fits reproducible bit for bit on CPU.
    warm_start : bool, default=False
        Start the next ``fit`` from the current solution (and use ``n_init=1``).
    verbose : int or bool, default=0
        1 (or True) prints scikit-learn's lines: each initialisation, its ``Iteration i``
        line every ``verbose_interval`` iterations and its result (with a progress bar
        where tqdm is installed); 2 adds each line's time and change of the log-likelihood.
    verbose_interval : int, default=10
        Iterations between progress lines when ``verbose >= 1``.
    device : str or torch.device, default='cpu'
        Where the arithmetic runs ('cpu', 'cuda', 'cuda:1', ...).
    dtype : {'float32', 'float64'} or torch dtype, default='float32'
        Precision of the per-chunk arithmetic. Statistics and parameters are always
        accumulated and stored in float64.
    chunk_size : int, default=None
        Rows per chunk; by default derived from ``memory_budget``.
    memory_budget : int, str or 'auto', default='auto'
        Memory for chunks in flight (bytes, or a string such as '1GB'): for files, the
        chunk computing, the four decoded ahead of it and the reader's batch. 'auto':
        256MB of host memory, and on a CUDA device the chunks are also sized from the
        GPU's free memory by measurement: the first pass of each kind (an
        initialisation step, the E-step, scoring) runs once on probe rows, and the
        device's peak allocation per row sets the chunk rows, so that the peak stays
        within half the free memory. Chunking changes answers only by rounding; a
        number (or ``chunk_size``) fixes the chunks whatever the free memory.
    cache_budget : int or str, default='1GB'
        Streamed data (files, Source objects) whose decoded size fits is kept in memory
        after the first pass, so later iterations read no file. 0 turns caching off.
"""

_ONLINE_DOC = """    algorithm : {'em', 'online'}, default='em'
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
"""

_CLUSTER_DOC = """    engine : {'auto', 'local', 'dask', 'torch'}, default='auto'
        'local': this process; 'dask': a Dask cluster (a map over partitions and a tree
        reduction of the statistics; same answer as 'local' to rounding); 'torch': one of
        a torch.distributed group of processes launched by torchrun (NCCL on GPUs, gloo
        on CPUs), each reading its own share of X, the statistics summed by one
        all-reduce per iteration (same answer as 'local' to rounding); every process
        calls ``fit`` on the same X, and only the first (rank 0) writes files and prints;
        'auto': 'dask' for a Dask collection, and for a fit given a ``client``, else
        'local' (inference on in-memory data or files runs here).
    client : distributed.Client, str or None, default=None
        The cluster for ``engine='dask'``: a client, or a scheduler address such as
        'tcp://host:8786'. None starts a LocalCluster for the fit and closes it after.
        Refused with engine 'local' or 'torch', where it would go unused.
    accelerate : {None, 'squarem'}, default=None
        'squarem': extrapolate along EM's path (SQUAREM, Varadhan & Roland 2008) to the
        same optimum in fewer passes over the data when EM is slow (overlapping
        components); a step that would lower the log-likelihood is replaced by the plain
        EM step. Exact EM only. ``max_iter`` and ``n_iter_`` then count passes.
    stopping : {'gain', 'aitken', 'mclust'}, default='gain'
        'gain': stop when the mean log-likelihood rose by less than ``tol``
        (scikit-learn's rule). 'aitken': stop when its Aitken-extrapolated limit is within
        ``tol`` of its value, which lands closer to the optimum at the price of more passes
        (plain EM only: SQUAREM's path is not the linear one the rule extrapolates).
""" + _MCLUST_STOPPING

MIXTURE_DOC = _EXECUTION_DOC + _ONLINE_DOC + _CLUSTER_DOC
EXACT_MIXTURE_DOC = _EXECUTION_DOC + _CLUSTER_DOC  # a mixture without online EM
MISSING_DOC = """    missing_values : {'error', 'fiml'}, default='error'
        'error': NaN (and nulls in files and DataFrames) are refused, as scikit-learn
        refuses them. 'fiml': they are missing values, fitted by the exact EM for values
        missing at random (full-information maximum likelihood): each row's likelihood
        is the marginal of what it observed. The M-step of a full or tied Gaussian
        completes each gap by its conditional expectation given the row's observed values
        and adds the conditional covariance to the second moments; a diagonal or
        spherical one estimates each feature's mean and variance from the rows that
        observed it (StepMix's step; mclust's constrained diagonal models and fits under a
        prior complete the gaps by the component's mean and variance). predict, score,
        ... then accept rows with gaps too; a row with every value missing gets the
        weights as its posterior (the fit warns once with their count); a column missing
        in every row is an error. See also :meth:`impute`.
"""


# ``impute``'s documentation: the families' own words for 'mean' and 'sample', what it returns
IMPUTE_DOC = """X with every missing value (NaN, or a null in files and DataFrames) filled in.

        Parameters
        ----------
        X : as for :meth:`predict`
            Rows with gaps (rows without one come back as they are).
        method : {{'mean', 'sample'}}, default='mean'
{method}
        random_state : int, default=None
            Seed of 'sample' (None: the estimator's ``random_state``); each row's draw
            depends on the seed and the row's position only, not on the chunking.
        columns, id_column : as for :meth:`predict`
        out : str or path, default=None
            Stream the completed rows to this .parquet, .csv or .npy file (columns named
            as the features) instead of returning them; its path is returned. Memory
            stays that of a chunk; nothing is left behind on an error. With
            engine='torch' under torchrun, rank 0 alone writes it; the others return
            its path at once.

        Returns
        -------
{returns}

        Observed values are returned exactly as read, whatever ``dtype`` the model
        computes in. Works whatever ``missing_values`` says: imputing reads gaps.
        """


class _BaseMixture(PomegranateHints, EstimatorBase, ABC):
    """A mixture estimator: scikit-learn's API over a :class:`MixtureModel`.

    Subclasses define ``_constraints`` (their parameters and :data:`EXECUTION`),
    ``_fitted_arrays`` (the attributes a model file holds), and the hooks below.
    """

    _fitted_arrays: tuple[str, ...] = ()
    _bound_words = "mean log-likelihood"  # what lower_bound_ is (verbose's summary line says)
    _schema_: Schema | None = None  # how the fitted model reads non-numeric columns (sources.schema)
    _has_schema = False  # whether the family reads its columns by a schema (``_kinds``)
    _integer_draws = False  # sample() returns integers (0/1, counts), as StepMix's draws
    _pomegranate = hints.MIXTURE

    # ------------------------------------------------------------------ family hooks
    @abstractmethod
    def _model(self, s) -> MixtureModel:
        """The family's model for the validated settings (and the columns' schema, for
        families whose parameters depend on it: ``self._schema_``)."""

    def _kinds(self, names: list[str] | None, types: list[str], s) -> list[str] | None:
        """How the family reads each feature column (``sources.schema.KINDS``), given the
        columns' names and coarse types; None: every column a plain number (no schema)."""
        return None

    def _user_initialised(self, s) -> bool:
        """Whether the user gave initial parameters (they then win over labels' initialisation)."""
        return False

    @abstractmethod
    def _initialise(self, model: MixtureModel, engine, source: Source, s, generator: torch.Generator,
                    offset: torch.Tensor | None) -> MixtureParams:
        """Initial parameters from the data (and whatever the user gave), for rows that
        are the data less ``offset`` (user-given locations move by it too)."""

    @abstractmethod
    def _publish(self, params: MixtureParams) -> None:
        """The fitted parameters as public attributes (weights_, means_, ...)."""

    @abstractmethod
    def _from_attributes(self, s) -> MixtureParams:
        """Parameters from the public attributes (a loaded model file), validated."""

    # ------------------------------------------------------------------ the attributes are the model
    @property
    def _live_attributes(self) -> tuple[str, ...]:
        """The fitted attributes inference reads. As in scikit-learn, whose estimators
        compute from their attributes, a user who sets one (assigned, or changed in place)
        changes the model; and one who sets them all on an unfitted estimator has one."""
        return tuple(self._fitted_arrays)

    @property
    def _required_attributes(self) -> tuple[str, ...]:
        """Those a model set by hand must have (the others follow from them)."""
        return self._live_attributes

    def _from_live(self, s) -> MixtureParams:
        """Parameters from the live attributes, validated (default: as a model file's)."""
        return self._from_attributes(s)

    def _from_file(self, s) -> MixtureParams:
        """Parameters from the arrays a model file set as attributes (default: the fitted
        arrays; a Gaussian's precision factors too, where the file holds them)."""
        return self._from_attributes(s)

    def _set_by_hand(self) -> bool:
        return all(hasattr(self, a) for a in self._required_attributes)

    def _missing_by_hand(self) -> str:
        """For the not-fitted error: the attributes a model set by hand still lacks, once
        some are set ('' when none is, which is scikit-learn's case)."""
        given = [a for a in self._live_attributes if hasattr(self, a)]
        missing = [a for a in self._required_attributes if not hasattr(self, a)]
        if not given or not missing:
            return ""
        return (f" (to set a model by hand, set {', '.join(missing)} as well as {', '.join(given)})")

    def _remember_attributes(self) -> None:
        """What the live attributes hold now, to see later whether the user changed them:
        a digest of each, not a copy (a large model is not held twice)."""
        self._seen_ = {a: _digest(getattr(self, a, None)) for a in self._live_attributes}

    def _adopt_attributes(self, fresh: bool) -> MixtureParams:
        """The model the attributes now hold (``fresh``: set on an unfitted estimator),
        checked as a model file is, its error naming the attributes."""
        s = self._settings() if fresh else self._inference_settings()
        weights = getattr(self, "weights_", None)
        K = int(np.shape(weights)[0]) if np.ndim(weights) == 1 else s.n_components
        if K != s.n_components:  # a component pruned, or a model set by hand: the arrays say K, as in scikit-learn
            s = dataclasses.replace(s, n_components=K)
        try:
            params = self._from_live(s)
        except (ParameterError, NumericalError) as exc:
            reason = str(exc).replace("invalid parameters: ", "")
            raise ParameterError(
                f"the fitted attributes of this {type(self).__name__} ({', '.join(self._live_attributes)}) do not "
                f"make a valid model: {reason}; set them consistently, or call fit"
            ) from None
        if fresh:
            self._remember_structure()
            if not hasattr(self, "n_features_in_"):
                self.n_features_in_ = int(self._centres(params).shape[1])
        self._fit_structure_ = {**getattr(self, "_fit_structure_", {}), "n_components": K}
        state = self.__dict__.get("_online_")
        if state is not None and _components_of(state) != K:  # a running average of other components
            self._online_ = None
        elif state is not None:  # partial_fit's next E-step at the attributes as set, as after a load of this
            # model; its running average still holds the fit's statistics, which the step blends in
            self._online_ = dataclasses.replace(state, params=None)
        self._params_ = params.to("cpu")
        self._remember_attributes()
        return self._params_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_params_") or self._set_by_hand()

    # the fewest rows a fit takes (scikit-learn's GaussianMixture asks for two)
    _fit_min_rows = 1

    def _fitting_model(self, model: MixtureModel, engine, source: Source, s) -> MixtureModel:
        """The model a fit runs: ``model``, or one that first learns from the data (a
        variational model's priors, from the data's mean and covariance)."""
        return model

    @abstractmethod
    def _centres(self, params: MixtureParams) -> torch.Tensor:
        """One float64 row per component, in the data's space, where its density must be
        finite (the means): a loaded model must evaluate itself there."""

    # ------------------------------------------------------------------ set-up
    def _shift(self, s, shift="auto"):
        """What to ask a source to subtract from the rows: ``shift`` when the family's
        model moves with its data (Gaussians), else nothing. A source subtracts "auto"
        only where float32 would lose digits (see ``sources.arrays.choose_shift``); the
        model then works on the rows less ``source.shift``, and its parameters are
        translated back before anyone sees them."""
        return shift if self._model(s).component.translatable else None

    def _open(self, X, s, sample_weight=None, min_rows: int = 1, shift="auto", fitted: bool = False,
              identify: bool = False, dtype=None, **kw) -> Source:
        """X as a validated source. ``fitted``: X is read for the fitted model (inference,
        partial_fit after a fit), so what the fit learnt about reading X applies (a
        family that learns a vocabulary or a category mapping reads it there); a fit
        refuses a column missing in every row. ``identify``: X is read to learn its
        features, so an id-like column is warned about. ``dtype``: the rows' (default the
        family's). ``schema`` (default the fitted one) and ``labels``: see ``open_source``."""
        kw.setdefault("schema", self._schema_)
        if fitted and isinstance(shift, str) and shift == "auto" and self._shift(s):
            # about the model's centre, not the rows' (see sources.arrays.Centre)
            shift = Centre(self._model(s).location(self._fitted()).to("cpu", torch.float64))  # held on the host
        return open_source(
            X,
            dtype=dtype or self._model(s).component.row_dtype,
            device=s.device,
            memory_budget=s.memory_budget,
            chunk_size=s.chunk_size,
            sample_weight=sample_weight,
            min_rows=min_rows,
            shift=self._shift(s, shift),
            identify=identify,
            missing_values=_missing(s),
            every_column=not fitted,
            by=type(self).__name__,
            **{"cache_bytes": s.cache_budget, **kw},
        )

    @staticmethod
    def _wants_dask(X, s, fitting: bool = False) -> bool:
        """Whether X goes to a Dask cluster: with engine='dask', or under 'auto' a Dask
        collection, or a fit given a ``client`` (inference on data here stays here, and
        does not need the client to be open still)."""
        given = fitting and s.client is not None
        return s.engine == "dask" or (s.engine == "auto" and (is_dask_collection(X) or given))

    @contextlib.contextmanager
    def _execution(self, X, s, sample_weight=None, columns=None, y=None, fitting=False, **open_kw):
        """(engine, source, classes) for X: this process, its torch.distributed group, or a
        Dask cluster for the block's duration. Fitting, the columns' schema and y's classes
        are learnt first (one pass over those columns where it is needed), and the schema
        is the estimator's from then on unless the block raises; ``classes`` is None when
        the fit has no labelled row."""
        # another library's frame, read once here rather than by each reader; a MaskedTensor's
        # hidden entries as NaN before any pass (the column survey too) reads it
        X, columns = unmasked(native_frame(X)), checked_columns(columns)
        if s.engine == "torch":
            from ..engines.distributed import session

            if is_dask_collection(X):
                X = X.compute()
            with session(s.device) as engine:
                learnt: list = []

                def open_here():
                    schema, labels, classes = self._layout(X, s, columns, sample_weight, y, fitting, None)
                    learnt[:] = [schema, classes]
                    # each process moves only its own part of an in-memory X to its device;
                    # the primary alone warns of an id-like column; the schema is given (the
                    # estimator takes it only once every process has opened its data)
                    return self._open(X, s, sample_weight, columns=columns, identify=engine.primary,
                                      **_held(s.device.type != "cpu"), schema=schema, **_given(labels=labels),
                                      **open_kw)

                # every process opens its data, and hears of another's failure, before any exchange
                source = engine.opened(open_here, settings=self._group_settings())
                with self._schema_during(learnt[0]):
                    yield engine, source, learnt[1]
            return
        if not self._wants_dask(X, s, fitting):
            if is_dask_collection(X):  # engine='local': bring the rows here
                X = X.compute()
            schema, labels, classes = self._layout(X, s, columns, sample_weight, y, fitting, None)
            with self._schema_during(schema):
                source = self._open(X, s, sample_weight, columns=columns, identify=True,
                                    **_given(schema=schema, labels=labels), **open_kw)
                engine = LocalEngine()
                with engine.computing(source):
                    yield engine, source, classes
            return
        from ..engines.dask import session
        from ..sources.dask import open_dask_source, plain_paths

        X, columns = plain_paths(X, columns, s.chunk_size)
        if not is_dask_collection(X) and not isinstance(X, (str, os.PathLike, list, tuple)):
            if _goes_as_a_frame(X, sample_weight, y):  # keeping its columns' types (and the rows' order)
                dd = require("dask.dataframe", "the Dask engine")
                X = dd.from_pandas(X.reset_index(drop=True), chunksize=s.chunk_size or 1_000_000)
            else:
                refuse_sparse(X)  # (as here: np.asarray would make it a 0-d object array)
                da = require("dask.array", "the Dask engine")
                X = da.from_array(np.asarray(X), chunks=(s.chunk_size or 1_000_000, -1))
        with session(s.client) as engine:
            schema, labels, classes = self._layout(X, s, columns, sample_weight, y, fitting, engine.client)
            with self._schema_during(schema):
                source = open_dask_source(
                    X,
                    client=engine.client,
                    dtype=self._model(s).component.row_dtype,
                    device=s.device,
                    memory_budget=host_budget(s.memory_budget),  # a worker's chunks: the host budget
                    chunk_size=s.chunk_size,
                    columns=columns,
                    min_rows=open_kw.get("min_rows", 1),
                    by=type(self).__name__,
                    sample_weight=sample_weight,
                    shift=self._shift(s),
                    missing_values=_missing(s),
                    every_column=True,
                    schema=schema,
                    labels=labels,
                )
                yield engine, engine.persist(source), classes

    @contextlib.contextmanager
    def _schema_during(self, schema: Schema | None):
        """The estimator reads its columns by ``schema`` from now on; the previous schema
        comes back if the block raises (a failed fit leaves the fitted model as it was)."""
        had, previous = "_schema_" in self.__dict__, self.__dict__.get("_schema_")
        self._schema_ = schema
        try:
            yield
        except BaseException:
            if had:
                self._schema_ = previous
            else:
                self.__dict__.pop("_schema_", None)
            raise

    def _layout(self, X, s, columns, sample_weight, y, fitting: bool, client):
        """(schema, labels for the source, classes) of X. Fitting: the family's schema
        learnt from X (its columns' types, one pass over its categorical columns), or the
        fitted one when a fit continues (warm_start, partial_fit); y's classes from y (an
        array, or the name of X's label column). Otherwise the fitted schema (with the
        current ``handle_unknown``), and no labels."""
        continuing = bool(s.warm_start) and hasattr(self, "_params_") or not fitting
        label_column = str(y) if isinstance(y, str) else None
        if continuing:
            schema = self._inference_schema(s)
        else:
            schema = None
        exclude = tuple(c for c in (sample_weight if isinstance(sample_weight, str) else None, label_column) if c)
        wants_schema = schema is None and not continuing and self._has_schema
        class_keys: set = set()
        if wants_schema or label_column is not None:
            from ..sources import columns as local
            from ..sources import dask as remote

            where = remote if client is not None else local
            read = X
            if columns is not None and is_file_input(X) and client is None:  # the files with the chosen columns
                # (a .npy's by index); Dask's workers read the paths and take columns= themselves
                read = dataclasses.replace(X if isinstance(X, Files) else Files(X), columns=list(columns))
            shape = getattr(X, "shape", None) if client is None and not is_source(X) else None
            if shape is not None and len(shape) == 2:
                check_shape(tuple(shape))  # an empty X says so (not that its first column has no values)
            names, types = where.describe_columns(read, columns, exclude)
            kinds = self._kinds(names, types, s) if wants_schema else None
            categorical = [] if kinds is None else [j for j, k in enumerate(kinds) if k == "category"]
            args = (read, names, categorical, label_column) + ((client,) if client is not None else ())
            found, class_keys = where.distinct_values(*args)
            if kinds is not None:
                schema = self._new_schema(names, kinds, found, s)
        if y is None or not fitting:
            return schema, None, None
        if label_column is not None:
            classes = classes_of(class_keys, f"label column {label_column!r}")
            labels = LabelColumn(label_column, classes)
        else:
            if client is not None and is_dask_collection(y):
                y = y.compute()
            values = as_labels(y)
            classes = classes_of(learn_classes(values))
            labels = label_codes(values, classes)
        if not len(classes):  # nothing labelled: an unsupervised fit, unless unlabelled rows count for nothing
            if label_column is None and hasattr(X, "shape") and len(values) != X.shape[0]:
                raise DataError(f"y has {len(values)} labels but X has {X.shape[0]} rows; pass one label per row of "
                                "X (-1 or None where it is unlabelled)")
            if s.unlabeled_weight == 0:
                raise DataError("y labels none of X's rows, and unlabeled_weight=0 counts the unlabelled ones for "
                                "nothing: there is nothing to fit; label some rows, or pass unlabeled_weight=None "
                                "for an unsupervised fit")
            return schema, None, None
        fitted = getattr(self, "classes_", None)
        if continuing and fitted is not None and not np.array_equal(np.asarray(fitted), classes):
            raise DataError(
                f"y has classes {classes.tolist()}, but the fit being continued has {np.asarray(fitted).tolist()}; "
                "pass labels of the same classes, or fit afresh (warm_start=False)"
            )
        return schema, labels, classes

    def _new_schema(self, names, kinds: list[str], found: dict[int, set], s) -> Schema:
        """The schema of a fit: its kinds, the sorted categories of each categorical column
        (a warning for a column with a single one: it carries no information)."""
        owner = type(self).__name__
        schema = Schema(tuple(kinds), (), getattr(s, "handle_unknown", "error"), owner,
                        None if names is None else tuple(names), _missing(s) == "fiml")
        declared = self._declared_categories(s, names, kinds, schema)
        categories = []
        for j, kind in enumerate(kinds):
            if kind != "category":
                categories.append(None)
                continue
            from ..sources.schema import Vocabulary, declared_categories

            if j in declared:
                cats = declared_categories(declared[j], found.get(j, set()), schema.label(j))
            else:
                cats = Vocabulary({j: found.get(j, set())}).categories(j, schema.label(j))
            if len(cats) == 1:
                warnings.warn(
                    f"{schema.label(j)} has a single category ({cats[0].item()!r}): it carries no information about "
                    "the components; drop it, or check that the data is the one you meant",
                    UninformativeColumnWarning,
                    stacklevel=5,
                )
            if s.dtype == torch.float32 and len(cats) > 2**24:
                raise ParameterError(f"{schema.label(j)} has {len(cats):,} categories: with dtype='float32' codes above "
                                     "2**24 are not exact; pass dtype='float64'")
            categories.append(cats)
        return schema.with_categories(tuple(categories))

    @staticmethod
    def _declared_categories(s, names, kinds: list[str], schema: Schema) -> dict:
        """The categories the user declared (``categories=``), by column index: the
        columns whose vocabulary is given rather than learnt from X."""
        value = getattr(s, "categories", "auto")
        if isinstance(value, str):  # 'auto': every column learnt
            return {}
        from ._by_column import by_column

        out = {}
        for j, cats in by_column(value, names, len(kinds), "categories", "list of categories").items():
            if cats is None or isinstance(cats, str) and cats == "auto":
                continue
            if kinds[j] != "category":
                raise ParameterError(f"categories lists categories for {schema.label(j)}, which {schema.owner} reads "
                                     f"as a {kinds[j]} column, not a categorical one; give categories only for categorical "
                                     "columns ('auto' or None for the others)")
            out[j] = cats
        return out

    def _inference_schema(self, s) -> Schema | None:
        """The fitted schema, read with the current ``handle_unknown`` and ``missing_values``."""
        schema = self._schema_
        if schema is None:
            return None
        return Schema(schema.kinds, schema.categories, getattr(s, "handle_unknown", "error"), schema.owner, schema.names,
                      _missing(s) == "fiml")

    def _uses_labels(self, s) -> bool:
        """Whether fit reads y (semi-supervised EM): ``unlabeled_weight`` is a number."""
        return getattr(s, "unlabeled_weight", None) is not None

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
        y : array-like of shape (n_samples,), str or None, default=None
            Class labels for semi-supervised EM (see ``unlabeled_weight``): one per row,
            -1 (or a missing value) for an unlabelled row; a string names a column of X
            (files, DataFrames, Dask dataframes) that holds them, read with the rows as
            they stream and not a feature. Ignored when ``unlabeled_weight`` is None.
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
            same result as an uninterrupted run; it is removed when the fit completes. A
            checkpoint of other data or settings is refused, naming what differs (files
            are known by path, size and modification time; rows in memory by their count
            and a digest of their first and last rows and of rows sampled between them,
            so an edit of a few rows in the middle can pass unseen). A ``warm_start``
            fit's checkpoint resumes only from the same fitted parameters (a loaded copy
            of the model too), and never a cold fit's.
        checkpoint_every : int, default=10
            Iterations between checkpoints.

        Returns
        -------
        self
        """
        s = self._settings()
        owner = type(self).__name__
        if callback is not None and not callable(callback):
            raise ParameterError(
                f"callback must be a function of one argument (an IterationInfo) or None; got {callback!r}"
            )
        if algorithm is not None:
            s = dataclasses.replace(s, algorithm=_params.check_choice(algorithm, "algorithm", owner, ("em", "online")))
        if batch_size is not None:
            s = dataclasses.replace(s, batch_size=_params.check_int(batch_size, "batch_size", owner, 1))
        one_pass = s.algorithm == "online" and s.max_iter <= 1 and s.n_init == 1
        if s.accelerate is not None and s.algorithm != "em":
            raise ParameterError(
                f"accelerate={s.accelerate!r} applies to algorithm='em' only (online EM steps on mini-batches, "
                "not on passes); pass accelerate=None, or algorithm='em'"
            )
        if s.algorithm != "em" and s.stopping != "gain":
            raise ParameterError(
                f"stopping={s.stopping!r} applies to algorithm='em' only: online EM stops when a pass's mean "
                "log-likelihood changed by less than tol (the 'gain' rule); pass stopping='gain', or algorithm='em'"
            )
        if checkpoint is not None and s.algorithm != "em":
            raise ParameterError("checkpoint= applies to algorithm='em' only; online EM keeps no checkpoint yet")
        if s.engine == "torch":
            s = dataclasses.replace(s, device=process_device(s.device))
        open_kw = {"min_rows": self._fit_min_rows, **({"cache_bytes": 0} if one_pass else {})}
        if self._uses_labels(s) and y is None:
            warnings.warn(f"unlabeled_weight={s.unlabeled_weight!r} weighs the unlabelled rows of a semi-supervised "
                          "fit, but fit got no y, so this fit is unsupervised: pass y (-1 for an unlabelled row), "
                          "or unlabeled_weight=None", UserWarning, stacklevel=2)
        y = y if self._uses_labels(s) else None
        with self._execution(X, s, sample_weight, columns, y=y, fitting=True, **open_kw) as (engine, source, classes):
            if y is not None and classes is None:
                warnings.warn("y labels none of X's rows, so this fit is unsupervised: the model has no classes_, "
                              "and predict gives components, predict_proba one column per component; label some "
                              "rows, or pass unlabeled_weight=None for an unsupervised fit", UserWarning, stacklevel=2)
            fitted = self._fit(source, engine, s, callback, checkpoint, checkpoint_every, classes)
        npy_columns.remember(self, X, columns)
        return fitted

    def _supervised(self, model: MixtureModel, classes: np.ndarray | None, s) -> MixtureModel:
        """The model of a semi-supervised fit: components shared out among the classes."""
        if classes is None:
            return model
        K, C = s.n_components, len(classes)
        if K < C:
            shown = ", ".join(repr(c.item() if hasattr(c, "item") else c) for c in classes[:10])
            raise ParameterError(
                f"y has {C} classes ({shown}{', ...' if C > 10 else ''}) but n_components={K}: semi-supervised "
                "fitting needs at least one component per class; raise n_components (several components per class "
                "are allowed). Only -1, None, NaN or an empty field mark an unlabelled row"
            )
        return model.with_classes(component_classes(K, C), s.unlabeled_weight)

    def _fit(self, source: Source, engine, s, callback, checkpoint, checkpoint_every, classes=None):
        K, N, D = s.n_components, source.n_rows, source.n_features
        if not engine.primary:
            s = dataclasses.replace(s, verbose=0)  # the primary process alone prints
        check_shape((N, D), min_rows=self._fit_min_rows, by=type(self).__name__)  # a Dask collection's too
        if N < K:
            raise DataError(
                f"Expected n_samples >= n_components but got n_components = {K}, n_samples = {N}: "
                "pass more rows or lower n_components"
            )
        model = self._supervised(self._model(s), classes, s)
        warm = bool(s.warm_start) and hasattr(self, "converged_")
        if warm:
            self._fitted()  # the attributes as they are now (a pruned component), whatever inference ran before
        changed = self._structure_changes(s) if warm else ""
        if changed:
            raise ParameterError(
                f"{changed}, so warm_start=True has no fit of that structure to continue from: set "
                "warm_start=False to fit afresh, or set the old value back"
            )
        if warm and self.n_features_in_ != D:
            raise DataError(
                f"X has {D} features, but {type(self).__name__} is expecting {self.n_features_in_} features as input "
                "(warm_start continues from the previous fit); fit a new estimator for different data"
            )
        # scikit-learn's draws too, for an int random_state; one seed for a torch group
        generator = _params.draws(_params.shared_state(s.random_state, engine))
        model = self._fitting_model(model, engine, source, s)
        online = s.algorithm == "online"
        offset = source.shift  # the model works on rows less this; parameters move back after
        back = None if offset is None else offset.to(s.device)
        saver = None
        if checkpoint is not None:
            fingerprint = dict(kind=type(self).__name__, n_rows=N, n_features=D, features=source.feature_names,
                               data=dict(source.fingerprint(),  # the rows are held less their shift
                                         shift=None if offset is None else offset.double().cpu().tolist()),
                               **self._fingerprint(),
                               **({} if classes is None else {"classes": [_plain_label(c) for c in classes]}),
                               # a warm start begins at the fitted parameters: another start is another fit
                               **({"warm_start": self._warm_digest(model)} if warm else {}))
            every = _params.check_int(checkpoint_every, "checkpoint_every", type(self).__name__, 1)
            saver = Checkpoint(os.fspath(checkpoint), every, fingerprint)

        progress = Progress(engine, N, s, online, type(self).__name__, self._bound_words)
        engine = progress.engine  # counts the rows of each pass for the bar, as they are computed

        def initialise(restart: int) -> MixtureParams:
            started = time.perf_counter()
            progress.initialising(restart)
            if warm:
                params = model.translate(self._fitted().to(s.device), None if back is None else -back)
            elif online:
                params = self._online_initial(model, engine, source, s, generator, offset, classes)
            elif classes is not None and not self._user_initialised(s):
                params = from_labelled_rows(model, engine, source, generator)
            else:
                params = self._initialise(model, engine, source, s, generator, offset)
            progress.initialised(restart, time.perf_counter() - started)
            return params

        if callback is not None and back is not None:  # the callback sees the data's coordinates
            user = callback
            callback = lambda info: user(dataclasses.replace(info, params=model.translate(info.params, back)))  # noqa: E731
        with progress:
            report = progress.callback(callback)
            if online:
                best, runs = self._fit_online(model, engine, source, initialise, s, report, warm, offset)
            else:
                best, runs = fit_em(
                    model, engine, source, initialise, n_init=1 if warm else s.n_init, max_iter=s.max_iter,
                    tol=s.tol, callback=report, checkpoint=saver, accelerate=s.accelerate, stopping=s.stopping,
                    start=self.lower_bound_ if warm else -math.inf,
                )
            progress.finish(runs, best)
        if not online:  # partial_fit continues from this fit, not an older online state
            self.__dict__.pop("n_steps_", None)
            batch = getattr(s, "batch_size", None)  # None: a model without partial_fit
            self._online_ = None if batch is None else continued(model, best, offset, batch)
        self._set_classes(classes)
        self._set_fitted(model.translate(best.params, back), source.n_features, source.feature_names)
        self.converged_ = best.converged
        self.n_iter_ = self.n_passes_ = best.n_iter
        self.lower_bound_ = np.float64(best.lower_bound)  # scikit-learn's type
        self.lower_bounds_ = [np.float64(v) for v, ok in zip(best.history, best.accepted) if ok]  # scikit-learn's
        self.history_ = [
            {"log_likelihood": r.history, "seconds": r.seconds, "converged": r.converged, "n_iter": r.n_iter,
             "accepted": r.accepted}
            for r in runs
        ]
        generator.settle()
        return self

    def _fit_online(self, model, engine, source, initialise, s, report, warm: bool, offset):
        """n_init online runs of up to max_iter passes; the best by its last pass's mean."""
        runs = []
        kept = getattr(self, "_online_", None) if warm else None
        if kept is None or not _same_shift(kept.shift, offset):
            self._warn_small_first_batch(s, source)
        for restart in range(1 if warm else s.n_init):
            # a warm start goes on with the running state, as partial_fit does (where its rows
            # are in the same coordinates), not from a fresh one whose first step would be 1
            if kept is not None and _same_shift(kept.shift, offset):
                state = self._resumed(kept, model, s, offset)
            else:
                state = OnlineState(initialise(restart), shift=offset)
            with engine.sharing_cores(source):
                result = run_online(
                    model,
                    lambda: engine.batches(source, s.batch_size),
                    state,
                    decay=s.learning_decay,
                    offset=s.learning_offset,
                    max_passes=max(1, s.max_iter),
                    tol=s.tol,
                    restart=restart,
                    callback=report,
                    combine=engine.combine,
                    batch_size=s.batch_size,
                )
            runs.append((result, state))
        best, self._online_ = max(runs, key=lambda r: r[0].lower_bound)
        self.n_steps_ = self._online_.steps
        return best, [r for r, _ in runs]

    def _warm_digest(self, model) -> str:
        """A digest of the fitted parameters a warm start continues from."""
        tensors = model.to_tensors(self._fitted())
        return digest(*(tensors[k].double() for k in sorted(tensors)))

    def _warn_small_first_batch(self, s, source, partial: bool = False) -> None:
        """Online EM's first mini-batch sets its running statistics outright, so a first
        batch of fewer rows than one component has free parameters starts it from
        components estimated on a handful of rows (2 blobs in 3-D, 10 parameters a
        component, batch_size=5: one pass ended at a mean log-likelihood of -5.53 against
        exact EM's -4.95; at 20 rows, -4.95)."""
        rows = min(s.batch_size, source.n_rows)
        needed = self._rows_to_start_online(s, source.n_features)
        if rows < needed:
            if s.batch_size < needed:
                fix = f"raise batch_size to {needed} rows or more (hundreds to thousands are usual)"
            else:  # the rows given are fewer than a batch
                fix = (f"give the first partial_fit call {needed} rows or more" if partial else
                       "fit by exact EM (algorithm='em'), which reads every row at each step")
            warnings.warn(
                f"online EM starts from a first mini-batch of {rows} rows, fewer than the model's {needed} free "
                f"parameters per component: its first steps estimate the components from too few rows, and a pass may end far "
                f"from exact EM; {fix}", SmallBatchWarning, stacklevel=caller_stacklevel())

    def _rows_to_start_online(self, s, n_features: int) -> int:
        """The fewest rows a first online mini-batch should hold: one component's free
        parameters (the model's, over K; the total grows as K D^2, and at K=10, D=50 asked
        13,259 rows where the default 10,000 ended one pass as close to exact EM as more)."""
        return -(-self._model(s).n_free_parameters(n_features) // s.n_components)

    def _resumed(self, state: OnlineState, model, s, offset) -> OnlineState:
        """A running online state to go on from: a copy, which the steps change (kept only if
        every batch succeeds: a failure changes nothing); one read from a model file takes
        the fitted parameters, in the state's coordinates."""
        state = dataclasses.replace(state, seen=set(state.seen))
        if state.params is None:
            back = None if offset is None else -offset.to(s.device)
            state.params = model.translate(self._params_.to(s.device), back)
            state.running = state.running.to(s.device)
        return state

    def _online_initial(self, model, engine, source: Source, s, generator, offset, classes=None) -> MixtureParams:
        """Initial parameters for online EM from the first rows (3 batches, with their
        weights and labels), not the whole data: an online fit may afford one pass only.
        A sample drawn across the data decoded every row group of a Parquet or CSV file it
        touched (all of them, on a large file: a second pass before the one pass); the
        first rows are a fair sample wherever online EM's own premise holds (every
        mini-batch looks like the whole data), and the same rows whatever holds them (in
        memory, a file, a Dask collection), so a streamed fit equals the in-memory one.
        Rows of weight 0 are passed over, and with labels it reads on to a labelled row of
        every class, whose labelled rows then initialise. In a group of processes, the
        data's first rows, read by the primary process (the others' too: its own part may
        be empty), so that every process starts alike."""
        n = max(3 * s.batch_size, 10 * s.n_components)
        labelled = len(classes) if classes is not None and not self._user_initialised(s) else 0

        def read() -> TensorSource:
            # the rows' own files' groups first, and on through the data where they fall short
            # (rows of weight 0, or a class with no label yet: rare, and then read until found)
            head = source.part(0, min(n, source.n_rows)) if hasattr(source, "part") else source
            sample = first_rows(LocalEngine(), head, n, labelled)
            found = set() if sample.labels is None else set(sample.labels[sample.labels >= 0].tolist())
            if head is not source and (sample.n_rows < n or len(found) < labelled):
                sample = first_rows(LocalEngine(), source, n, labelled)
            return sample

        sample = engine.share(read)
        if labelled and sample.labels is not None and bool((sample.labels >= 0).any()):
            return from_labelled_rows(model, LocalEngine(), sample, generator)
        return self._initialise(model, LocalEngine(), TensorSource(sample.x, sample.weight, sample.n_rows), s,
                                generator, offset)

    def partial_fit(self, X, y=None, sample_weight=None, *, columns=None, classes=None):
        """Online EM on X: one step per ``batch_size`` rows, continuing from the last call.

        The first call initialises from a sample of X (``init_params``), or continues
        from a previous ``fit``: its last pass's statistics are the running average and
        its rows the steps taken (ceil(n / batch_size)), so a batch moves it by the
        schedule's next step; after ``load``, as in the estimator that was saved (a
        model file keeps the running state). X streams as in fit, so it may be a file larger than
        memory. ``n_steps_`` counts the mini-batches seen; ``lower_bound_`` is the mean
        log-likelihood of this call's batches under the parameters each one met. The
        first call also learns the columns' categories (later calls read new ones by
        ``handle_unknown``).

        With ``unlabeled_weight`` set, y holds class labels (-1: unlabelled) as in
        :meth:`fit`; ``classes`` (the first call, as scikit-learn's partial_fit has it)
        lists every class the calls will see, or else the first call's labels set them.

        A batch is read and stepped in this process whatever ``engine`` and ``client``
        say (a Dask batch is computed here), or by each process of a torch.distributed
        group.
        """
        s = self._settings()
        # a batch is read in this process, as fit(engine='local') reads one
        X, y, sample_weight = (v.compute() if is_dask_collection(v) else v for v in (X, y, sample_weight))
        # another library's frame, read once here rather than by each reader; a MaskedTensor's
        # hidden entries as NaN before any pass (the column survey too) reads it
        X, columns = unmasked(native_frame(X)), checked_columns(columns)
        fitted = hasattr(self, "_params_")
        if fitted:
            self._fitted()  # the attributes as they are now (a pruned component), whatever inference ran before
        changed = self._structure_changes(s) if fitted else ""
        if changed:
            raise ParameterError(
                f"{changed}, so partial_fit has no fit of that structure to continue: call fit to start "
                "afresh (partial_fit then continues from it), or set the old value back"
            )
        if fitted:
            columns = self._check_features(X, columns) or columns
            if columns is None and has_column_names(X) and hasattr(self, "feature_names_in_"):
                columns = list(self.feature_names_in_)
        state = getattr(self, "_online_", None)
        y = y if self._uses_labels(s) else None
        # the first call learns the columns' schema; later ones read by the fitted one
        schema = self._inference_schema(s) if fitted else self._layout(X, s, columns, sample_weight, None, True, None)[0]
        labels, known = None, getattr(self, "classes_", None) if fitted else None
        if y is not None:
            labels, known = self._partial_labels(y, classes, known, fitted)
        if s.engine == "torch":
            s = dataclasses.replace(s, device=process_device(s.device))
        with self._online_engine(s) as engine, self._schema_during(schema):
            # a running state continues in its own coordinates: the same shift for every call
            source = self._open(X, s, sample_weight, columns=columns, cache_bytes=0,
                                shift="auto" if state is None else state.shift, fitted=fitted, identify=not fitted,
                                **_held(s.engine == "torch" and s.device.type != "cpu"),
                                **_given(schema=schema, labels=labels))
            self._partial_fit(source, engine, s, fitted, state, known)
        if not fitted:  # the first call's columns, as feature_names_in_ is the first call's names
            npy_columns.remember(self, X, columns)
        return self

    def _partial_labels(self, y, classes, known, fitted: bool):
        """(class codes of y, the classes) for partial_fit: the fitted classes, or ``classes``
        given, or the labels of this (first) call."""
        if isinstance(y, str):
            raise ParameterError("partial_fit takes y as an array of labels (one per row, -1 unlabelled), not a "
                                 "column name; pass X[col] as y")
        values = as_labels(y)
        if classes is not None:
            given = classes_of(learn_classes(as_labels(classes, name="classes"), "classes"), "classes")
            if known is not None and not np.array_equal(np.asarray(known), given):
                raise ParameterError(f"classes={given.tolist()} differ from the classes of the earlier calls, "
                                     f"{np.asarray(known).tolist()}; pass the same classes, or fit afresh")
            known = given
        if known is None:
            if fitted:
                raise DataError("y labels rows, but this model was fitted without classes; fit afresh with labels "
                                "(partial_fit continues the classes of the first call)")
            known = classes_of(learn_classes(values))
            if not len(known):
                warnings.warn(
                    "y labels none of the rows of this first partial_fit call, and classes= was not given: the model "
                    "goes on without classes, and a later call's labels will be refused; pass classes=[...] (every "
                    "class the calls will see) on the first call",
                    UserWarning,
                    stacklevel=3,
                )
                return None, None
        return label_codes(values, np.asarray(known)), np.asarray(known)

    @contextlib.contextmanager
    def _online_engine(self, s):
        """partial_fit's engine: its torch.distributed group with engine='torch' (each
        process steps on its part of every mini-batch), else this process."""
        if s.engine == "torch":
            from ..engines.distributed import session

            with session(s.device) as engine:
                yield engine
        else:
            yield LocalEngine()

    def _partial_fit(self, source: Source, engine, s, fitted: bool, state: OnlineState | None, classes=None):
        model = self._supervised(self._model(s), classes, s)
        offset = source.shift
        back = None if offset is None else offset.to(s.device)
        if fitted:
            self._check_width(source)
        if state is not None:
            state = self._resumed(state, model, s, offset)
            # a fit weighs a prior against one pass's rows, which it knows; partial_fit cannot
            # know whether its rows repeat, so from here on against every row it is given,
            # after the fit's one pass, as a partial_fit stream from the start does: a prior's
            # share then shrinks as data come in, whichever way the model was started (and
            # does not jump with the fit's passes counted as rows)
            if state.data_weight is not None:
                state.seen_weight, state.data_weight = state.data_weight, None
        if state is None and fitted:
            state = OnlineState(model.translate(self._params_.to(s.device), None if back is None else -back), shift=offset)
        elif state is None:
            K = s.n_components
            if source.n_rows < K:
                raise DataError(
                    f"Expected n_samples >= n_components but got n_components = {K}, n_samples = {source.n_rows}: "
                    "the first partial_fit batch initialises the model; pass more rows"
                )
            self._warn_small_first_batch(s, source, partial=True)
            generator = _params.draws(_params.shared_state(s.random_state, engine))  # as fit draws
            state = OnlineState(self._online_initial(model, engine, source, s, generator, offset, classes), shift=offset)
            generator.settle()
        total = weight = 0.0
        with engine.sharing_cores(source):
            for chunk in engine.batches(source, s.batch_size):
                ll, w = online_step(model, state, chunk, s.learning_decay, s.learning_offset, engine.combine,
                                    s.batch_size)
                if w > 0:
                    total, weight = total + ll * w, weight + w
        self._online_ = state
        if not fitted:
            self._set_classes(classes)
        names = source.feature_names
        if fitted and hasattr(self, "feature_names_in_"):  # as scikit-learn's partial_fit: the first call's
            names = list(self.feature_names_in_)
        self._set_fitted(model.translate(state.params, back), source.n_features, names)
        self.n_steps_ = state.steps
        self.lower_bound_ = np.float64(total / weight if weight else -math.inf)  # scikit-learn's type, as fit's
        if not fitted:
            self.converged_, self.n_iter_, self.lower_bounds_, self.history_ = False, 0, [], []
            self.n_passes_ = 0
        return self

    def _set_fitted(self, params: MixtureParams, n_features: int, feature_names: list[str] | None) -> None:
        self._params_ = params.to("cpu")
        self._remember_structure()
        self.n_features_in_ = n_features
        if feature_names is not None:
            self.feature_names_in_ = np.asarray(feature_names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        self._publish(self._params_)
        self._remember_attributes()

    def _set_classes(self, classes: np.ndarray | None) -> None:
        """The labels of a semi-supervised fit (``classes_``), or none."""
        if classes is None:
            self.__dict__.pop("classes_", None)
        else:
            self.classes_ = np.asarray(classes)

    def _groups(self) -> torch.Tensor | None:
        """Each component's class (K,), after a semi-supervised fit; None otherwise."""
        classes = getattr(self, "classes_", None)
        if classes is None:
            return None
        return component_classes(self._fitted().n_components, len(classes))

    def fit_predict(self, X, y=None, sample_weight=None, *, columns=None):
        """Fit, then return the most likely component (or class, semi-supervised) of each row of X."""
        data = X
        named = frame_columns(X)
        if isinstance(y, str) and self._uses_labels(self._settings()) and named is not None and columns is None:
            columns = [str(c) for c in named if str(c) != y and str(c) != sample_weight]
        return self.fit(data, y, sample_weight=sample_weight, columns=columns).predict(X, columns=columns)

    # ------------------------------------------------------------------ inference
    def _fitted(self) -> MixtureParams:
        """The fitted parameters: those the live attributes hold, when the user changed or
        set them (``_live_attributes``)."""
        params = self.__dict__.get("_params_")
        if params is None:
            if not self._set_by_hand():
                raise not_fitted_error(
                    f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments "
                    f"before using this estimator.{self._missing_by_hand()}"
                )
            return self._adopt_attributes(fresh=True)
        seen = self.__dict__.get("_seen_")
        if seen is not None and any(_digest(getattr(self, a, None)) != d for a, d in seen.items()):
            return self._adopt_attributes(fresh=False)
        return params

    def _grouped(self) -> bool:
        """Whether this estimator runs in a torch.distributed group (engine='torch',
        launched by torchrun)."""
        from ..engines.distributed import launched

        return self._inference_settings().engine == "torch" and launched()

    def _inference_source(self, X, columns=None, keep=None, sample_weight=None, settings=None, passes: int = 1):
        """X opened for inference: a file reads the fitted feature names unless told.
        ``settings``: a process of a torch group's (its device; it moves only its own part
        of an in-memory X there). ``passes``: how often it will be read; more than one
        keeps the decoded chunks within ``cache_budget``, as a fit does."""
        self._fitted()
        s = self._inference_settings() if settings is None else settings
        hold = settings is not None and s.device.type != "cpu"
        columns = self._check_features(X, columns) or columns
        named = has_column_names(X) or (keep is not None and feature_names_of(X) is not None)
        if columns is None and named and hasattr(self, "feature_names_in_"):
            columns = list(self.feature_names_in_)  # (an id column beside them is read as a feature only if fitted so)
        cache = s.cache_budget if passes > 1 else 0  # one pass: nothing to keep
        source = self._open(X, s, sample_weight, columns=columns, keep=keep, cache_bytes=cache,
                            fitted=True, **_given(schema=self._inference_schema(s)), **_held(hold))
        self._check_width(source)
        return source, s

    def _in_source_coordinates(self, model: MixtureModel, source: Source, s) -> MixtureParams:
        """The fitted parameters on the compute device, moved like the source's rows."""
        params = self._fitted().to(s.device)
        return params if source.shift is None else model.translate(params, -source.shift.to(s.device))

    def _check_width(self, source: Source) -> None:
        if source.n_features != self.n_features_in_:
            raise DataError(
                f"X has {source.n_features} features, but {type(self).__name__} is expecting "
                f"{self.n_features_in_} features as input."
            )

    def _log_joint_blocks(self, source: Source, s):
        """(chunk, (n, K) float64 log w_k + log p_k(x), the first row of the chunk that no
        component explains as a 0-d tensor, -1 for none) over the source, in row order.
        Nothing is read back to the host here: the caller checks the rows when it reads
        (see :func:`first_unexplained`)."""
        model = self._model(s)
        params = self._in_source_coordinates(model, source, s)
        engine = LocalEngine()
        engine.size_chunks(lambda chunk: _posteriors(model.log_joint(params, chunk.x).double()), source)
        for chunk in engine.stream(source):
            log_joint = model.log_joint(params, chunk.x)
            bad = first_unexplained(torch.logsumexp(log_joint, 1), None, chunk.row_start)
            yield chunk, log_joint.double(), bad, log_joint.dtype

    def _per_row_tensors(self, X, what: str, columns=None) -> np.ndarray:
        """One of :func:`per_row_tensors`' outputs for every row of X, as a numpy array.

        On a GPU the chunks' outputs stay on the device and come back in groups of about
        ``READ_BACK_BYTES`` (:class:`HostRows`), and whether a row is unexplained is read
        once at the end: no chunk waits for the host. ('label' after a semi-supervised
        fit: the class codes, mapped to the labels by the caller.)"""
        source, s = self._inference_source(X, columns)
        groups = self._groups()
        n_classes = None if groups is None else len(self.classes_)
        groups = None if groups is None else groups.to(s.device)  # once a pass, not once a chunk
        rows, unexplained, dtype = HostRows(), -1, s.dtype
        for _, block, bad, dtype in self._log_joint_blocks(source, s):
            rows.add(block if what == "log_joint" else per_row_tensors(block, (what,), groups, n_classes)[what])
            unexplained = first_of(unexplained, bad)
        check_unexplained(unexplained, dtype)
        return rows.result()

    def _log_joint_rows(self, X, columns=None) -> np.ndarray:
        """(n, K) float64 log-joints of X's rows (Dask input takes :meth:`_lazy` instead)."""
        return self._per_row_tensors(X, "log_joint", columns)

    def write_predictions(self, X, out, *, outputs=("label",), id_column=None, columns=None) -> str:
        """Stream per-row outputs of X to a .parquet, .csv or .npy file; returns its path.

        ``outputs``: any of 'label' (most likely component), 'proba' (one column per
        component: proba_0, ...; after a semi-supervised fit one per class, named by its
        label: proba_spam, ...), 'log_density' (log p(x)). ``id_column``: a column of
        X's file or DataFrame copied to the output first, to join results back. Rows are
        computed and written chunk by chunk: memory stays bounded whatever the size of X.
        The file appears only when complete; on any error nothing is left behind. With
        engine='torch' under torchrun, the primary process (rank 0) alone writes it; the
        others return its path at once.
        """
        outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        unknown = [o for o in outputs if o not in OUTPUTS]
        if not outputs or unknown:
            raise ParameterError(f"outputs must be one or more of {list(OUTPUTS)}; got {list(outputs)}")
        path = check_output_path(out, X)
        if not writes_files(self):
            return path  # under torchrun, rank 0 alone writes (and computes) the file
        if is_dask_collection(X):
            return self._write_dask_predictions(X, path, outputs, id_column, columns)
        keep = None if id_column is None else [str(id_column)]
        source, s = self._inference_source(X, columns, keep)
        groups, classes = self._groups(), getattr(self, "classes_", None)
        blocks = self._log_joint_blocks(source, s)
        with Sink(path, source.n_rows, self._matrix_names()) as sink:
            for chunk, block, bad, dtype in blocks:
                # writing reads each chunk's rows to the host anyway, so its check costs no
                # extra wait; a bad row stops the write at once, and the sink leaves no file
                try:
                    check_unexplained(bad, dtype)
                except NumericalError:
                    if numerics.defers_reads(block.device):
                        # the rows' own checks (NaN, infinity) are read when the pass ends:
                        # finish it, so that a bad value is named as the CPU names it
                        for _ in blocks:
                            pass
                    raise
                written = per_row(block, outputs, groups, classes)
                _check_id_column(id_column, written)
                cols: dict[str, object] = {} if keep is None else {keep[0]: chunk.extra[keep[0]]}
                cols.update(written)
                sink.write(cols)
            return sink.commit()

    def _matrix_names(self) -> dict[str, list[str]]:
        """The probability columns of a prediction file: per class after a semi-supervised fit."""
        classes = getattr(self, "classes_", None)
        return {} if classes is None else {"proba": proba_columns(len(classes), classes)}

    def _write_dask_predictions(self, X, path: str, outputs: tuple, id_column, columns) -> str:
        """:meth:`write_predictions` of a Dask collection: each partition's log-joints are
        computed where it lives (:meth:`_lazy`) and come back one partition at a time,
        with its ids, to be written here: only the outputs travel, and this process holds
        one partition's of them."""
        from ..sources.dask import PartitionIds

        ids = None if id_column is None else PartitionIds(X, str(id_column))
        _check_id_column(id_column, outputs)
        if ids is not None and columns is None and not hasattr(self, "feature_names_in_"):
            columns = [c for c in X.columns if c != str(id_column)]  # the ids are no feature
        lazy = self._lazy(X, "log_joint", columns)
        if any(np.isnan(c) for c in lazy.chunks[0]):  # a dask array of unknown chunk sizes
            lazy = lazy.compute_chunk_sizes()
        groups, classes = self._groups(), getattr(self, "classes_", None)
        with Sink(path, int(sum(lazy.chunks[0])), self._matrix_names()) as sink:
            for i in range(lazy.numblocks[0]):
                # (two computes: dask warns when one mixes an array's graph with a frame's expressions)
                cols: dict[str, object] = {}
                if ids is not None:
                    cols[ids.name] = ids.values(ids.series.partitions[i].compute())
                cols.update(per_row(torch.from_numpy(lazy.blocks[i].compute()), outputs, groups, classes))
                sink.write(cols)
            return sink.commit()

    def _check_features(self, X, columns=None):
        """scikit-learn's feature-name consistency rules between fit and predict, except
        that a DataFrame with every fitted column and more (an id column) is read by the
        fitted names, as a file is (scikit-learn refuses it). Returns the columns to read
        then (the fitted names), else None."""
        fitted = getattr(self, "feature_names_in_", None)
        columns = checked_columns(columns)
        indices = npy_columns.to_read(self, X, columns)  # a .npy file read by index at fit
        if indices is not None:
            return indices
        if is_file_input(X) or is_source(X):  # read by the fitted names, or by the columns= given
            if columns is not None and fitted is not None:
                check_positions([str(c) for c in columns], [str(n) for n in fitted])
            return
        names = feature_names_of(X) if columns is None else [str(c) for c in columns]
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
            if columns is None and len(names) > len(fitted) and set(fitted) <= set(names):
                return list(fitted)  # every fitted feature and more (an id column): read by name, as files are
            raise DataError(_names_mismatch([str(n) for n in fitted], names))

    def _lazy(self, X, what: str, columns=None, sample_weight=None):
        """Dask input: a lazy dask array, computed partition by partition where X lives;
        for "totals" (and "entropy": with the posteriors' entropy), one row of
        :class:`ScoreTotals` fields per partition."""
        from ..sources.dask import feature_columns, rows_with_weights

        params = self._fitted()
        s = self._inference_settings()
        columns = self._check_features(X, columns) or columns
        names = feature_columns(X, columns, sample_weight)  # a frame's, for messages (the array has none)
        X, weighted = rows_with_weights(X, columns, sample_weight, self._inference_schema(s))
        if X.ndim != 2 or X.shape[1] - weighted != self.n_features_in_:
            raise DataError(
                f"X has {X.shape[1] - weighted if X.ndim == 2 else X.shape} features, but {type(self).__name__} is "
                f"expecting {self.n_features_in_} features as input."
            )
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        model = self._model(s)
        # the workers subtract the model's own location (known without a pass over X)
        offset = model.location(params) if s.dtype == torch.float32 and self._shift(s) else None
        params = model.translate(params, None if offset is None else -offset)
        groups, classes = self._groups(), getattr(self, "classes_", None)
        fn = partial(_predict_block, model, params, what, s.device, weighted, offset, _missing(s),
                     self._inference_schema(s), groups, classes, names)
        if what in ("totals", "entropy"):
            return X.map_blocks(fn, dtype=np.float64, chunks=((1,) * X.numblocks[0], (6,)))
        if what == "proba":
            width = s.n_components if classes is None else len(classes)
            return X.map_blocks(fn, dtype=np.float64, chunks=(X.chunks[0], (width,)))
        if what == "log_joint":
            return X.map_blocks(fn, dtype=np.float64, chunks=(X.chunks[0], (s.n_components,)))
        dtype = np.int64 if classes is None else np.asarray(classes).dtype
        return X.map_blocks(fn, dtype=dtype if what == "label" else np.float64, drop_axis=1)

    def _score_totals(self, X, columns=None, sample_weight=None, together: bool = False,
                      entropy: bool = False) -> ScoreTotals:
        """:class:`ScoreTotals` of X in one streamed pass, in the memory of a chunk whatever
        the data's size; Dask input is reduced where it lives. ``entropy``: the posteriors'
        entropy too (a log per row and component more). ``together``: with
        engine='torch' in a process group, every process scores its own part of X and the
        totals are summed (a collective, as fit is: ``select`` scores its candidates so);
        otherwise this process scores all of X."""
        if is_dask_collection(X) and not (together and self._grouped()):
            loglik, hard, weight, rows, fractional, ent = (
                self._lazy(X, "entropy" if entropy else "totals", columns, sample_weight).sum(0).compute())
            totals = ScoreTotals(float(loglik), float(hard), float(weight), int(rows), int(fractional),
                                 entropy=float(ent))
        elif together and self._grouped():
            from ..engines.distributed import session

            s = self._inference_settings()
            s = dataclasses.replace(s, device=process_device(s.device))
            if is_dask_collection(X):
                X = X.compute()
            with session(s.device) as engine:
                source, _ = self._inference_source(X, columns, sample_weight=sample_weight, settings=s)
                model = self._model(s)
                totals = engine.reduce(Task(model, "score_totals", (self._in_source_coordinates(model, source, s),),
                                            {"entropy": entropy}), source).settled()
        else:
            source, s = self._inference_source(X, columns, sample_weight=sample_weight)
            model = self._model(s)
            task = Task(model, "score_totals", (self._in_source_coordinates(model, source, s),), {"entropy": entropy})
            totals = LocalEngine().reduce(task, source).settled()  # read back once, not once a chunk
        if totals.rows == 0:  # a Dask collection of no rows (one filtered to none, say), as a local X says it
            check_shape((0, int(self.n_features_in_)), by=type(self).__name__)
        if not totals.weight > 0:
            raise DataError("sample_weight sums to zero over X: give at least one row a positive weight")
        return totals

    def score_samples(self, X, *, columns=None, out=None, id_column=None) -> np.ndarray | str:
        """Log-density log p(x) of each row, shape (n_samples,); with ``out``, written to
        that file instead (see :meth:`write_predictions`) and its path returned. A lazy
        dask array for Dask input."""
        return self._per_row(X, "log_density", columns, out, id_column)

    def score(self, X, y=None, *, columns=None, sample_weight=None) -> float:
        """Mean log-likelihood per row (higher is better, as in scikit-learn), streamed:
        files of any size are scored in the memory of a chunk. ``sample_weight``: as for
        ``fit`` (an array, or a column of X's files): the weighted mean."""
        totals = self._score_totals(X, columns, sample_weight)
        return totals.loglik / totals.weight

    def predict_proba(self, X, *, columns=None, out=None, id_column=None) -> np.ndarray | str:
        """Posterior probability of each component for each row, shape (n_samples, K);
        with ``out``, written to that file instead and its path returned. A lazy dask
        array for Dask input."""
        return self._per_row(X, "proba", columns, out, id_column)

    def predict(self, X, *, columns=None, out=None, id_column=None) -> np.ndarray | str:
        """Most likely component of each row, shape (n_samples,); with ``out``, written to
        that file instead and its path returned. A lazy dask array for Dask input."""
        return self._per_row(X, "label", columns, out, id_column)

    def _per_row(self, X, what: str, columns, out, id_column):
        _ids_need_out(id_column, out)
        if is_dask_collection(X) and out is None:
            return self._lazy(X, what, columns)
        if out is not None:
            return self.write_predictions(X, out, outputs=(what,), id_column=id_column, columns=columns)
        values = self._per_row_tensors(X, what, columns)
        classes = getattr(self, "classes_", None)
        return values if what != "label" or classes is None else np.asarray(classes)[values]

    def _impute(self, X, *, method="mean", random_state=None, columns=None, out=None, id_column=None):
        """X with every gap filled (``GaussianMixture.impute``, which documents it)."""
        methods = ("mean", "sample")
        if method not in methods:
            raise ParameterError(f"method must be one of {list(methods)}; got {method!r}")
        _ids_need_out(id_column, out)
        s = dataclasses.replace(self._inference_settings(), missing_values="fiml")
        seed = None
        if method == "sample":
            seed = _params.random_seed(s.random_state if random_state is None else
                                       _params.Seed().check(random_state, "random_state", type(self).__name__))
        if is_dask_collection(X) and out is None:
            return self._lazy_impute(X, s, columns, seed)
        path = None if out is None else check_output_path(out, X)
        if path is not None and not writes_files(self):
            return path  # under torchrun, rank 0 alone writes (and computes) the file
        if is_dask_collection(X):
            return self._write_dask_impute(X, s, columns, seed, path, id_column)
        self._fitted()
        columns = self._check_features(X, columns) or columns  # a frame's fitted columns, an id column beside
        if columns is None and has_column_names(X) and hasattr(self, "feature_names_in_"):
            columns = list(self.feature_names_in_)
        keep = None if id_column is None else [str(id_column)]
        source = self._open(X, s, columns=columns, keep=keep, cache_bytes=0, fitted=True, dtype=torch.float64,
                            **_given(schema=self._inference_schema(s)))  # nulls read as gaps in category columns too
        self._check_width(source)
        model = self._model(s)
        params = self._in_source_coordinates(model, source, s)
        fitted_names = getattr(self, "feature_names_in_", None)
        names = [str(n) for n in fitted_names] if fitted_names is not None else [f"x{j}" for j in range(source.n_features)]

        def completed():
            for chunk in LocalEngine().stream(source):
                draws = {}
                if seed is not None:
                    u, z = row_draws(seed, chunk.row_start, chunk.n_rows, self.n_features_in_)
                    draws = {"uniforms": u.to(chunk.x.device), "normals": z.to(chunk.x.device)}
                rows = model.impute(params, chunk, **draws)
                if source.shift is not None:
                    rows += source.shift.to(rows)
                yield chunk, self._decoded(rows.cpu().numpy())  # category codes back to the categories

        if path is None:
            return np.concatenate([rows for _, rows in completed()]) if source.n_rows else np.empty((0, len(names)))
        blocks = (({} if keep is None else {keep[0]: chunk.extra[keep[0]]}, rows) for chunk, rows in completed())
        return self._write_completed(path, source.n_rows, names, id_column, blocks)

    def _write_completed(self, path: str, n_rows: int, names: list[str], id_column, blocks) -> str:
        """Completed rows into ``path``: ``blocks`` yields, in row order, each block's id
        column ({name: values}, or {}) and its rows; the columns are named ``names``."""
        if self._names_categories() and str(path).endswith(".npy"):
            raise ParameterError(f"out={str(path)!r}: the completed rows hold categories that are not numbers, which a "
                                 ".npy file cannot hold; write a .parquet or .csv file")
        _check_id_column(id_column, names)
        with Sink(path, n_rows) as sink:
            for ids, rows in blocks:
                cols: dict[str, object] = dict(ids)
                if sink.format == "npy":
                    cols["X"] = rows
                else:
                    cols.update({name: rows[:, j] for j, name in enumerate(names)})
                sink.write(cols)
            return sink.commit()

    def _lazy_impute(self, X, s, columns, seed, coded: bool = False):
        """Dask input: a lazy dask array of the completed rows, computed where X lives.
        ``coded``: category columns come as their codes (the caller decodes them)."""
        from ..sources.dask import rows_with_weights

        params = self._fitted()
        columns = self._check_features(X, columns) or columns  # a frame's fitted columns, an id column beside
        encodes = self._schema_ is not None and self._schema_.encodes()
        if encodes and not coded:
            raise ParameterError("impute of a Dask collection returns a lazy array of numbers, and this model has "
                                 "category columns; pass out= (a .parquet or .csv file), or X.compute()")
        X, _ = rows_with_weights(X, columns, None, self._inference_schema(s) if encodes else None)
        if X.ndim != 2 or X.shape[1] != self.n_features_in_:
            raise DataError(f"X has {X.shape[1] if X.ndim == 2 else X.shape} features, but {type(self).__name__} is "
                            f"expecting {self.n_features_in_} features as input.")
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})
        starts = np.concatenate([[0], np.cumsum(X.chunks[0])[:-1]]) if not any(np.isnan(X.chunks[0])) else None
        if seed is not None and starts is None:
            raise DataError("method='sample' on a dask collection needs its partitions' lengths (each row's draw "
                            "depends on its position): call X.compute_chunk_sizes() first")
        fn = partial(_impute_block, self._model(s), params, s.device, seed, starts)
        return X.map_blocks(fn, dtype=np.float64)

    def _write_dask_impute(self, X, s, columns, seed, path: str, id_column) -> str:
        """:meth:`impute` of a Dask collection into ``path``: each partition is completed
        where it lives and comes back one at a time, with its ids, to be written here (as
        :meth:`_write_dask_predictions`); category codes are decoded here."""
        from ..sources.dask import PartitionIds

        if seed is not None and hasattr(X, "chunks") and any(np.isnan(c) for c in X.chunks[0]):
            X = X.compute_chunk_sizes()  # each row's draw depends on its position
        ids = None if id_column is None else PartitionIds(X, str(id_column))
        lazy = self._lazy_impute(X, s, columns, seed, coded=True)
        if any(np.isnan(c) for c in lazy.chunks[0]):
            lazy = lazy.compute_chunk_sizes()
        names = [str(n) for n in getattr(self, "feature_names_in_", [f"x{j}" for j in range(self.n_features_in_)])]

        def blocks():  # one partition at a time: its ids, then its completed rows
            for i in range(lazy.numblocks[0]):
                kept = {} if ids is None else {ids.name: ids.values(ids.series.partitions[i].compute())}
                yield kept, self._decoded(lazy.blocks[i].compute())

        return self._write_completed(path, int(sum(lazy.chunks[0])), names, id_column, blocks())

    def sample(self, n_samples=1):
        """Draw rows from the fitted mixture: (X of shape (n_samples, D), component labels).
        Binary and count families draw int64 rows; categories come back as the data's (a
        mixed model's rows with text are an object array, its 0/1 and count columns ints)."""
        params = self._fitted()
        _params.check_n_samples(n_samples)
        n_samples = _params.check_sample_size(n_samples, self.n_features_in_)
        s = self._inference_settings()
        generator = _params.draws(s.random_state)
        if generator.numpy is not None:  # scikit-learn's own draws, where it has them
            drawn = self._reference_sample(n_samples, generator.numpy, s)
            if drawn is not None:
                return drawn
        x, labels = self._model(s).sample(params, n_samples, generator)
        generator.settle()
        x = self._decoded(x.cpu().numpy())
        whole = self._integer_columns()
        if x.dtype.kind == "f" and len(whole) == x.shape[1]:
            x = x.astype(np.int64)
        elif x.dtype == object:  # counts and 0/1 beside text: ints, as they are drawn alone
            for j in whole:
                x[:, j] = x[:, j].astype(np.int64)
        return x, labels.cpu().numpy()

    def _integer_columns(self) -> list[int]:
        """The columns :meth:`sample` draws as integers (0/1, counts), as StepMix's draws."""
        return list(range(self.n_features_in_)) if self._integer_draws else []

    def _reference_sample(self, n_samples: int, rs: np.random.RandomState, s) -> tuple[np.ndarray, np.ndarray] | None:
        """(X, labels) drawn as the reference library's ``sample`` draws them from ``rs``
        (``s``: the settings the fitted parameters have), or None where it has no such
        method (the family's own draws then)."""
        return None

    def _decoded(self, x: np.ndarray) -> np.ndarray:
        """Rows (sampled, imputed) in the data's own values: category codes back to the
        categories. An object array where a category column holds values that are not
        numbers (strings, booleans); else the categories' dtype when every column is a
        category column, float64 beside other columns."""
        schema = self._schema_
        if schema is None or not schema.encodes():
            return x
        cols = schema.columns_of("category")
        if self._names_categories():
            out = x.astype(object)
        elif len(cols) < x.shape[1]:
            out = x.astype(np.float64)
        else:
            out = np.empty(x.shape, dtype=np.result_type(*(schema.categories[j].dtype for j in cols)))
        for j in cols:
            out[:, j] = schema.categories[j][x[:, j].astype(np.int64)]
        return out

    def _names_categories(self) -> bool:
        """Whether a category column of the fitted schema holds values that are not numbers
        (strings, booleans): decoded rows are then an object array."""
        schema = self._schema_
        return schema is not None and any(schema.categories[j].dtype.kind not in "iuf"
                                          for j in schema.columns_of("category"))

    def _n_parameters(self) -> int:
        self._fitted()
        return self._model(self._inference_settings()).n_free_parameters(self.n_features_in_)

    def bic(self, X, *, columns=None, sample_weight=None) -> float:
        """Bayesian information criterion on X (lower is better); streamed like :meth:`score`.
        ``sample_weight``: frequency weights, as for ``fit`` (n is their total)."""
        return self._criteria(X, columns, sample_weight=sample_weight)["bic"]

    def aic(self, X, *, columns=None, sample_weight=None) -> float:
        """Akaike information criterion on X (lower is better); streamed like :meth:`score`."""
        return self._criteria(X, columns, sample_weight=sample_weight)["aic"]

    def _criteria(self, X, columns=None, entropy: bool = False, sample_weight=None) -> dict[str, float]:
        """:func:`criteria_of` this fit's totals on X (one streamed pass)."""
        return criteria_of(self._score_totals(X, columns, sample_weight, entropy=entropy), self._n_parameters(),
                           int(np.shape(self.weights_)[0]))

    def bootstrap(self, X, y=None, *, n_boot: int = 100, method: str = "nonparametric", random_state=None,
                  columns=None, sample_weight=None):
        """Bootstrap standard errors and percentile intervals of the fitted parameters
        (mclust's ``MclustBootstrap``, StepMix's ``bootstrap``): ``n_boot`` refits on
        resampled rows, each started from this fit, as a :class:`~bigem.estimators.bootstrap.BootstrapResult`
        (``se()``, ``ci(level)``, ``summary()``, ``replicates``).

        ``method``: 'nonparametric' (rows drawn with replacement), 'weighted' (Exp(1)
        weights: the weighted likelihood bootstrap) or 'parametric' (n rows drawn from
        this fit, in memory). X (and y, for a semi-supervised fit)
        as given to ``fit``, with the fit's ``sample_weight`` (an array) if it had one: the
        rows are reweighted, never copied, so files stream as in ``fit``. This estimator
        is left as it is."""
        from .bootstrap import bootstrap

        return bootstrap(self, X, y, n_boot=n_boot, method=method, random_state=random_state, columns=columns,
                         sample_weight=sample_weight)

    def _shared_parameters(self) -> set[str]:
        """The fitted attributes all components share (the bootstrap does not reorder them)."""
        return set()

    def caic(self, X, *, columns=None, sample_weight=None) -> float:
        """Consistent AIC (Bozdogan 1987) on X: -2 log L + p (log n + 1), lower is better;
        StepMix's and latent class analysis's. Streamed like :meth:`score`."""
        return self._criteria(X, columns, sample_weight=sample_weight)["caic"]

    def sabic(self, X, *, columns=None, sample_weight=None) -> float:
        """Sample-size adjusted BIC (Sclove 1987) on X: -2 log L + p log((n + 2) / 24),
        lower is better, as Mplus and LatentGOLD compute it. (StepMix's ``sabic`` takes
        log(n (n + 2) / 24), p log n more than Sclove's.) Streamed like :meth:`score`."""
        return self._criteria(X, columns, sample_weight=sample_weight)["sabic"]

    def entropy(self, X, *, columns=None) -> float:
        """The posteriors' entropy summed over the rows of X, -sum_n sum_k r_nk log r_nk
        (0: every row certain of its component); StepMix's. Streamed like :meth:`score`."""
        return self._score_totals(X, columns, entropy=True).entropy

    def relative_entropy(self, X, *, columns=None) -> float:
        """1 - entropy / (n log K) (Ramaswamy et al. 1993), the separation of the
        components that latent class analysis reports: 1 when every row is certain of its
        component, near 0 when the posteriors are uniform; NaN for one component, as
        StepMix's. Streamed like :meth:`score`."""
        if int(np.shape(self.weights_)[0]) < 2:
            return float("nan")  # no pass: nothing to separate
        return self._criteria(X, columns, entropy=True)["relative_entropy"]

    # ------------------------------------------------------------------ persistence
    def _fitted_state(self) -> dict[str, Any]:
        """The fitted scalars a model file keeps beside the arrays (a model set by hand, never
        fitted, has none: it is saved as not converged after 0 iterations)."""
        n_iter = int(getattr(self, "n_iter_", 0))
        return {
            "converged_": bool(getattr(self, "converged_", False)),
            "n_iter_": n_iter,
            "n_passes_": int(getattr(self, "n_passes_", n_iter)),
            "lower_bound_": float(getattr(self, "lower_bound_", -np.inf)),
            "n_features_in_": int(self.n_features_in_),
            "lower_bounds_": [float(v) for v in getattr(self, "lower_bounds_", [])],
            "history_": [
                {"log_likelihood": [float(v) for v in r["log_likelihood"]], "seconds": [float(v) for v in r["seconds"]],
                 "converged": bool(r["converged"]), "n_iter": int(r["n_iter"]),
                 "accepted": [bool(v) for v in r.get("accepted", [True] * len(r["log_likelihood"]))]}
                for r in getattr(self, "history_", [])
            ],
            **({"feature_names_in_": [str(n) for n in self.feature_names_in_]} if hasattr(self, "feature_names_in_") else {}),
            **npy_columns.state(self),
            **({"classes_": [_plain_label(c) for c in self.classes_]} if hasattr(self, "classes_") else {}),
            **({"schema_": {"kinds": list(self._schema_.kinds),
                            "categories": [None if c is None else [_plain_label(v) for v in c]
                                           for c in self._schema_.categories]}}
               if self._schema_ is not None else {}),
        }

    def _restore(self, state: dict) -> None:
        """The fitted state of a model file, once its arrays are set as attributes: every
        field checked by type (ModelFileError naming it), the parameters as user-set ones
        are, and within what the arithmetic can evaluate (NumericalError)."""
        stored = _params.Stored(state)
        s = self._settings()
        self._restore_layout(state)
        params = self._from_file(s)
        n_features = stored.count("n_features_in_", low=1)
        names = stored.strings("feature_names_in_", None)
        centres = self._centres(params)
        if centres.shape[1] != n_features:
            raise ModelFileError(f"n_features_in_ is {n_features} but the parameters have {centres.shape[1]} features")
        if names is not None and len(names) != n_features:
            raise ModelFileError(f"feature_names_in_ has {len(names)} names but n_features_in_ is {n_features}")
        model = self._model(s)
        _params.check_density_at_centres(log_prob(model.component, params.component, centres.to(s.dtype)), s.dtype)
        self._set_fitted(params, n_features, names)
        npy_columns.restore(self, stored, n_features)
        self.converged_ = stored.flag("converged_")
        self.n_iter_ = stored.count("n_iter_", high=_params.MAX_ITER)
        self.n_passes_ = stored.count("n_passes_", self.n_iter_, high=_params.MAX_ITER)
        self.lower_bound_ = np.float64(stored.number("lower_bound_"))  # as fit leaves it
        self.lower_bounds_ = [np.float64(v) for v in stored.numbers("lower_bounds_", [])]
        self.history_ = [
            {"log_likelihood": r.numbers("log_likelihood"), "seconds": r.numbers("seconds", []),
             "converged": r.flag("converged"), "n_iter": r.count("n_iter", high=_params.MAX_ITER),
             "accepted": r.flags("accepted", [True] * len(r.numbers("log_likelihood")))}
            for r in stored.records("history_", [])
        ]

    def _restore_layout(self, state: dict) -> None:
        """The schema and classes of a model file: every kind known, categories and
        classes of one type each (ModelFileError naming the field otherwise)."""
        schema = state.get("schema_")
        if schema is None:
            self.__dict__.pop("_schema_", None)
        else:
            if not isinstance(schema, dict) or not isinstance(schema.get("kinds"), list) or not isinstance(
                    schema.get("categories"), list) or len(schema["kinds"]) != len(schema["categories"]):
                raise ModelFileError("schema_ must hold 'kinds' and 'categories', one per feature")
            kinds = schema["kinds"]
            if any(k not in KINDS for k in kinds):
                raise ModelFileError(f"schema_ kinds must be among {list(KINDS)}; got {kinds}")
            cats = []
            for j, (kind, values) in enumerate(zip(kinds, schema["categories"])):
                if (kind == "category") != isinstance(values, list) or values == []:
                    raise ModelFileError(f"schema_ column {j}: a category column lists its categories, others none")
                try:
                    cats.append(None if values is None else as_categories(values, f"schema_ column {j}"))
                except ValueError as exc:
                    raise ModelFileError(str(exc)) from None
                if values is not None and len(cats[-1]) != len(values):
                    raise ModelFileError(f"schema_ column {j} lists a category twice")
            names = state.get("feature_names_in_")
            self._schema_ = Schema(tuple(kinds), tuple(cats), "error", type(self).__name__,
                                   tuple(names) if isinstance(names, list) else None)
        classes = state.get("classes_")
        if classes is None:
            self.__dict__.pop("classes_", None)
            return
        try:
            values = as_categories(classes, "classes_") if isinstance(classes, list) and classes else None
        except ValueError as exc:
            raise ModelFileError(str(exc)) from None
        if values is None or len(values) != len(classes):
            raise ModelFileError("classes_ must list distinct class labels (strings, integers or booleans)")
        self.classes_ = np.asarray(classes, dtype=values.dtype)

    def save(self, path) -> None:
        """Write the fitted model to ``path`` (safetensors + JSON metadata, atomically).
        With engine='torch' under torchrun, the primary process (rank 0) alone writes."""
        from .persistence import save

        self._fitted()
        save(self, path)


def criteria_of(totals: ScoreTotals, p: int, K: int) -> dict[str, float]:
    """The information criteria of a fit with ``p`` free parameters and ``K`` components
    from its score totals (lower is better; n is :func:`sample_size`):

        BIC = -2 log L + p log n      AIC = -2 log L + 2 p      ICL = BIC - 2 sum_i log max_k tau_ik
        CAIC = BIC + p                SABIC = -2 log L + p log((n + 2) / 24)

    and relative_entropy = 1 - E / (n log K), E the posteriors' entropy (NaN for K = 1,
    or where the totals were summed without it)."""
    n, ll = sample_size(totals), totals.loglik
    bic = -2 * ll + p * math.log(n)
    separation = 1.0 - totals.entropy / (totals.weight * math.log(K)) if K > 1 else math.nan
    return dict(log_likelihood=ll, n_parameters=p, bic=bic, aic=-2 * ll + 2 * p, icl=bic - 2 * totals.hard,
                caic=bic + p, sabic=-2 * ll + p * math.log((n + 2.0) / 24.0), relative_entropy=separation,
                weight=totals.weight)


def sample_size(totals: ScoreTotals) -> float:
    """BIC's n: the rows, or the sum of the sample weights, which bigem reads as
    frequencies (a weight of 2 counts a row twice). Fractional weights summing far from
    the row count look like probabilities or importance weights, for which that n is
    wrong: warned about, with the fix."""
    if totals.fractional and not 0.5 <= totals.weight / max(totals.rows, 1) <= 2.0:
        warnings.warn(
            f"sample_weight sums to {totals.weight:.6g} over {totals.rows} rows, with fractional weights: bigem "
            "reads sample weights as frequencies (a weight of 2 is a repeated row), so BIC's n is their sum, "
            f"{totals.weight:.6g}, not the row count; if they are probabilities or importance weights, rescale "
            "them to sum to the row count (w * n / w.sum())",
            SampleWeightWarning,
            stacklevel=3,
        )
    return totals.weight


def component_classes(n_components: int, n_classes: int) -> torch.Tensor:
    """The class of each component when K components are shared out among C classes in
    order: as evenly as possible, contiguous (K = C: component k is class k)."""
    return torch.arange(n_components, dtype=torch.int64) * n_classes // n_components


def from_labelled_rows(model: MixtureModel, engine, source, generator: torch.Generator) -> MixtureParams:
    """Nigam's start: parameters from the labelled rows alone, each spread at random over
    its class's components (one-hot when the class has one); unlabelled rows count nothing."""
    seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
    return from_given_responsibilities(model, engine, source, LabelledResponsibilities(seed, model.classes))


def first_rows(engine, source: Source, n: int, classes: int = 0) -> TensorSource:
    """The first ``n`` rows of a source (dense or sparse) that carry weight, with their
    weights and labels, in memory: rows of weight 0 are passed over (they tell a start
    nothing), and with ``classes`` it reads on until each class has a labelled row too
    (or the source ends)."""
    xs, ws, ls, have, seen = [], [], [], 0, set()
    for chunk in engine.stream(source):
        keep = None if chunk.weight is None else torch.nonzero(chunk.weight > 0).reshape(-1)
        x, w, label = ((chunk.x, chunk.weight, chunk.label) if keep is None else
                       (chunk.x[keep], chunk.weight[keep], None if chunk.label is None else chunk.label[keep]))
        take = min(x.shape[0], max(n - have, 0))
        if classes and chunk.label is not None and len(seen) < classes:  # on to the first row of each class
            found = torch.nonzero(label >= 0).reshape(-1)
            for code, first in zip(*np.unique(label[found].cpu().numpy(), return_index=True)):
                if int(code) not in seen:
                    seen.add(int(code))
                    take = max(take, int(found[first]) + 1)
        xs.append(x[:take])
        ws.append(None if w is None else w[:take])
        ls.append(None if label is None else label[:take])
        have += take
        if have >= n and (not classes or chunk.label is None or len(seen) >= classes):
            break
    x = cat_rows(xs)
    w = None if any(v is None for v in ws) else torch.cat(ws)
    labels = None if any(v is None for v in ls) else torch.cat(ls)
    return TensorSource(x, w, x.shape[0], labels=labels)


def _plain_label(value) -> object:
    """A label or category as JSON holds it (bool, int or str)."""
    return value.item() if isinstance(value, np.generic) else value


def _posteriors(log_joint: torch.Tensor) -> torch.Tensor:
    """What a chunk's per-row outputs hold at most beside its float64 log-joints (their
    posteriors): the pass over a GPU's chunks is sized by it (``engines.sizing``)."""
    return torch.softmax(log_joint, 1)


def per_row_tensors(log_joint: torch.Tensor, outputs, groups: torch.Tensor | None = None,
                    n_classes: int | None = None) -> dict[str, torch.Tensor]:
    """Per-row outputs from (n, K) float64 log-joints, on their device: 'label' (the most
    likely component, or class code after a semi-supervised fit: ``groups`` gives each
    component's class), 'proba' (the components' or classes' posteriors), 'log_density'."""
    norm = torch.logsumexp(log_joint, 1)
    joint = log_joint if groups is None else class_log_joint(log_joint, groups.to(log_joint.device), n_classes)
    out = {}
    if "label" in outputs:
        out["label"] = joint.argmax(1)
    if "proba" in outputs:
        # shifted by each row's largest and divided by the sum, so every row sums to 1: exp(joint - norm)
        # gave rows of K ones where the log-joints are too large for their differences to be kept
        # (a query row 1e20 from a tied model's components: its K log-joints round to one value)
        out["proba"] = torch.softmax(joint, 1)
    if "log_density" in outputs:
        out["log_density"] = norm
    return out


def per_row(log_joint: torch.Tensor, outputs, groups: torch.Tensor | None = None, classes=None) -> dict[str, np.ndarray]:
    """:func:`per_row_tensors` as numpy arrays, 'label' as the classes' labels after a
    semi-supervised fit (``classes``)."""
    out = {k: v.cpu().numpy() for k, v in
           per_row_tensors(log_joint, outputs, groups, None if classes is None else len(classes)).items()}
    if "label" in out and classes is not None:
        out["label"] = np.asarray(classes)[out["label"]]
    return out


def proba_columns(n: int, classes=None) -> list[str]:
    """The names of a prediction file's probability columns: one per component (proba_0,
    ...), or after a semi-supervised fit one per class, named by its label."""
    return [f"proba_{k}" for k in range(n)] if classes is None else [f"proba_{_plain_label(c)}" for c in classes]


def class_log_joint(log_joint: torch.Tensor, groups: torch.Tensor, n_classes: int) -> torch.Tensor:
    """log p(x, class c) = logsumexp over c's components of log w_k + log p_k(x): (n, K) -> (n, C).
    One index_add over the components (``groups`` on log_joint's device), shifted by each
    row's largest term: no boolean indexing, which would read a GPU's mask back to the host."""
    if int(groups.shape[0]) == n_classes:
        return log_joint
    top = log_joint.amax(1, keepdim=True)
    top = torch.where(torch.isfinite(top), top, torch.zeros_like(top))
    sums = log_joint.new_zeros(log_joint.shape[0], n_classes).index_add_(1, groups, torch.exp(log_joint - top))
    return torch.log(sums) + top


def _missing(s) -> str | None:
    """How the settings ``s`` read gaps (the sources' ``missing_values``): None for a family
    without that option, which refuses them and says to drop or fill them instead."""
    return getattr(s, "missing_values", None)


def _predict_block(model: MixtureModel, params: MixtureParams, what: str, device, weighted: bool, offset,
                   missing: str | None, schema, groups, classes, names, block, block_info=None) -> np.ndarray:
    """One partition's labels, probabilities or log-densities, or its score totals (the
    weights, when ``weighted``, in its last column; gaps read as ``missing`` says, see
    ``_missing``); runs on a Dask worker. Messages name a row by its place in X where Dask
    knows it (``block_info``), else in its partition."""
    from .._core.types import Chunk
    from ..sources.dask import Place, partition_rows

    place = Place.of(block_info)
    x, w = partition_rows(block, weighted, device, model.component.row_dtype, offset, missing == "fiml",
                          missing is not None, place, names)
    if schema is not None:
        schema.check(x, place.row(0), "X" if place.start is not None else place.within)
    start = place.row(0)
    if what in ("totals", "entropy"):
        t = model.score_totals(params, Chunk(x, w, start), entropy=what == "entropy").settled(place.within)
        return np.array([[t.loglik, t.hard, t.weight, t.rows, t.fractional, t.entropy]])
    log_joint = model.log_joint(params, x)
    check_explained(torch.logsumexp(log_joint, 1), None, start, place.within)
    if what == "log_joint":  # every output of the rows, derived where they are written
        return log_joint.double().cpu().numpy()
    return per_row(log_joint.double(), (what,), groups, classes)[what]


def _impute_block(model: MixtureModel, params: MixtureParams, device, seed, starts, block, block_info=None) -> np.ndarray:
    """One partition's rows with every gap filled (see ``_BaseMixture.impute``); runs on a
    Dask worker, in float64 rows (observed values exact)."""
    from .._core.types import Chunk
    from ..sources.dask import Place, partition_rows

    x, _ = partition_rows(block, False, device, torch.float64, None, True, place=Place.of(block_info))
    draws = {}
    if seed is not None:
        start = int(starts[block_info[0]["chunk-location"][0]])
        u, z = row_draws(seed, start, x.shape[0], x.shape[1])
        draws = {"uniforms": u.to(x.device), "normals": z.to(x.device)}
    return model.impute(params, Chunk(x, None, 0), **draws).cpu().numpy()


def _held(hold: bool) -> dict:
    """``hold_on_host=True`` for ``_open`` where asked (a process of a torch group moves only
    its own part of an in-memory X to its device), else nothing: a family's own opener
    need not know the argument."""
    return {"hold_on_host": True} if hold else {}


def _given(**kw) -> dict:
    """The keyword arguments that are set (not None), for ``_open``: a family's own opener
    (the multinomial's) need not know the schema and labels of the families that have them."""
    return {k: v for k, v in kw.items() if v is not None}


def _digest(value) -> tuple | None:
    """What an attribute holds (None: unset): its type, shape, dtype and a hash of its
    bytes; for a tuple or list (a Dirichlet process's two concentrations, one table per
    column), each item's."""
    import hashlib

    if value is None:
        return None
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, *(_digest(v) for v in value))
    arr = np.ascontiguousarray(value)
    if arr.dtype == object:
        return ("object", arr.shape, repr(arr.tolist()))
    return (type(value).__name__, arr.shape, arr.dtype.str, hashlib.blake2b(arr.view(np.uint8).reshape(-1)).digest())


def _ids_need_out(id_column, out) -> None:
    """An id column goes beside outputs written to a file: without ``out`` it would be
    ignored, so it is refused."""
    if id_column is not None and out is None:
        raise ParameterError(
            f"id_column={str(id_column)!r} names a column to write beside the outputs in out=, but out is None (the "
            "outputs are returned as an array, in X's row order); pass out='predictions.parquet' too, or drop id_column"
        )


def _check_id_column(id_column, written) -> None:
    """An id column copied beside the outputs must not share a name with one of them
    (``written``): the output would hold that name once, and the ids would be lost."""
    if id_column is not None and str(id_column) in written:
        raise ParameterError(
            f"id_column={str(id_column)!r} is also the name of an output column ({', '.join(map(repr, written))}), "
            "so the ids would be lost; rename the id column in X, or pass id_column=None"
        )


def _names_mismatch(fitted: list[str], names: list[str]) -> str:
    """scikit-learn's message for feature names that differ from the fit's (the names
    unseen, the names missing, or another order), then how to pass the fitted ones."""

    def listed(values: list[str]) -> str:
        shown = "".join(f"- {v}\n" for v in values[:5])
        return shown + ("- ...\n" if len(values) > 5 else "")

    unexpected, missing = sorted(set(names) - set(fitted)), sorted(set(fitted) - set(names))
    message = "The feature names should match those that were passed during fit.\n"
    if unexpected:
        message += "Feature names unseen at fit time:\n" + listed(unexpected)
    if missing:
        message += "Feature names seen at fit time, yet now missing:\n" + listed(missing)
    if not unexpected and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    return message + "Pass X[list(est.feature_names_in_)] to give the fitted columns in their order."


def _same_shift(a, b) -> bool:
    """Whether two sources' shifts (None: none) put rows in the same coordinates."""
    if a is None or b is None:
        return a is None and b is None
    return bool(torch.equal(a.to("cpu", torch.float64), b.to("cpu", torch.float64)))


def _components_of(state: OnlineState) -> int:
    """The number of components an online state's running statistics are of."""
    if state.params is not None:
        return int(state.params.n_components)
    return int(state.running.component.n_k.shape[0])  # read from a model file: its statistics say


def _goes_as_a_frame(X, sample_weight, y) -> bool:
    """Whether an in-memory DataFrame goes to a Dask cluster as a Dask DataFrame: where
    it holds a column that is not numbers (an array of its values would make every column
    objects, a float beside a string refused by a category's rule) or names a column of
    weights or labels (an array would read it as a feature), its columns are plain names,
    and no array of weights or labels comes with it (a Dask DataFrame takes them as its
    columns). Otherwise its values go as a Dask array, as numbers do."""
    if not (hasattr(X, "columns") and hasattr(X, "dtypes")):  # (pandas is there when X is a frame)
        return False
    import pandas as pd

    if not isinstance(X, pd.DataFrame) or isinstance(X.columns, pd.MultiIndex) or not X.columns.is_unique:
        return False
    given = [v for v in (sample_weight, y) if v is not None]
    if any(not isinstance(v, str) for v in given):
        return False
    return bool(given) or not all(pd.api.types.is_numeric_dtype(t) for t in X.dtypes)  # named columns need the frame
