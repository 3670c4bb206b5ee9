"""Classification by Gaussian mixtures: mclust's ``MclustDA`` and ``EDDA`` in scikit-learn's API.

A class-conditional density is fitted per class, and a row's class follows Bayes' rule,
p(c | x) proportional to pi_c f_c(x), with pi_c the training proportions unless
``class_priors`` says otherwise.

* ``model='MclustDA'`` (Fraley and Raftery, 2002): a Gaussian mixture per class,
  its number of components and covariance structure chosen by BIC, class by class
  (:func:`select` on that class's rows, mclust's ``mclustBIC``).
* ``model='EDDA'`` (Bensmail and Celeux, 1996): one Gaussian per class, with one
  covariance structure for every class (VVV: quadratic discriminant analysis; EEE:
  linear), chosen by BIC over the structures. It is one :class:`GaussianMixture` with a
  component per class fitted from labelled rows (``unlabeled_weight=0``): the M-step of
  the structure on the classes' counts, sums and scatters, which streams like any fit.

From files, MclustDA's class fits stream too: each reads the whole file with the other
classes' rows weighted 0, which is the fit on the class's rows alone.

BIC follows mclust's ``MclustDA``: EDDA's log-likelihood is the mixture's,
sum_i log sum_c pi_c f_c(x_i), with the class means and the structure's covariance
parameters counted (not the class proportions); MclustDA's is the same sum over the
class mixtures, counting every class mixture's parameters. Our sign is scikit-learn's
(lower is better), minus mclust's.
"""

from __future__ import annotations

import copy
import functools
import math
import numbers
import warnings
from typing import Any

import numpy as np
import torch

from .._core.errors import (DataError, DegenerateFitWarning, ModelFileError, NumericalError, ParameterError,
                           not_fitted_error)
from ..models.covariance import ALL_NAMES
from ..models.eigen import MODELS, MULTIVARIATE, NO_PRIOR, SKLEARN_EQUIVALENT, UNIVARIATE
from ..sources.dask import is_dask_collection
from ..sources.inputs import feature_names_of, is_file_input, is_source
from ..sources.validate import MISSING_HINT, NO_MISSING_HINT, check_shape, refuse_sparse
from . import _params
from ._base import EstimatorBase
from .gaussian_mixture import GaussianMixture
from .hierarchical import hc
from .priors import PriorSpec
from .selection import criteria, degenerate_components, select

MODEL_TYPES = ("MclustDA", "EDDA")
TIE = 1e-9  # relative difference of BICs that is rounding, not evidence
# GaussianMixture's parameters every class fit shares (the rest keep its defaults)
SHARED = ("prior", "reg_covar", "tol", "max_iter", "n_init", "init_params", "stopping", "random_state", "verbose",
          "device", "dtype", "chunk_size", "memory_budget")


class _Types(_params.Constraint):
    """None, 'mclust', one covariance type, or a non-empty list of them."""

    def check(self, value, name, owner):
        if value is None or (isinstance(value, str) and value == "mclust"):
            return value
        types = [value] if isinstance(value, str) else value
        try:
            types = list(types)
        except TypeError:
            raise ParameterError(f"{owner}: {name} must be None, 'mclust', a covariance type or a list of them; "
                                 f"got {value!r}") from None
        if not types:
            raise ParameterError(f"{owner}: {name} is empty; give at least one of {list(ALL_NAMES)} (or None)")
        for t in types:
            if not isinstance(t, str) or t not in ALL_NAMES:
                raise ParameterError(f"{owner}: unknown covariance type {t!r} in {name}; choose from {list(ALL_NAMES)}")
        return tuple(dict.fromkeys(types))


class _Components(_params.Constraint):
    """None, an int >= 1, or a non-empty iterable of them."""

    def check(self, value, name, owner):
        if value is None:
            return None
        values = [value] if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
        if isinstance(value, (dict, str, bytes)):  # a dict's keys are no list of candidates (a K per class is not taken)
            raise ParameterError(f"{owner}: {name} must be None, an int or an iterable of ints (e.g. range(1, 6)), "
                                 f"the candidates of every class; got {value!r}")
        try:
            ks = list(values)
        except TypeError:
            raise ParameterError(f"{owner}: {name} must be None, an int or an iterable of ints (e.g. range(1, 6)); "
                                 f"got {value!r}") from None
        if not ks or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1 for k in ks):
            raise ParameterError(f"{owner}: {name} must hold integers >= 1; got {value!r}")
        return tuple(sorted({int(k) for k in ks}))


class _ClassPriors(_params.Constraint):
    """None or a vector of non-negative finite numbers with a positive sum."""

    def check(self, value, name, owner):
        if value is None:
            return None
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            raise ParameterError(f"{owner}: {name} must be None or one probability per class; got {value!r}") from None
        if arr.ndim != 1 or arr.size == 0 or not np.isfinite(arr).all() or (arr < 0).any() or arr.sum() <= 0:
            raise ParameterError(f"{owner}: {name} must be None or one non-negative number per class (in the order "
                                 f"of classes_) with a positive sum; got {value!r}")
        return tuple(float(v) for v in arr / arr.sum())



def _in_its_words(method):
    """A data error of the per-class mixtures in the classifier's words: it has no
    missing_values (their NaN message offered missing_values='fiml'), and it is what
    expects the features (they named GaussianMixture). Their warnings too (scikit-learn's
    feature-name warnings), each once, however many classes said it."""

    @functools.wraps(method)
    def run(self, *args, **kwargs):
        name = type(self).__name__
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                result = method(self, *args, **kwargs)
            except DataError as exc:
                text = str(exc)
                said = (text.replace(f", {MISSING_HINT}", f": {NO_MISSING_HINT}")
                        .replace(" (infinity is not a missing value: NaN is, with missing_values='fiml')", "")
                        .replace("but GaussianMixture is expecting", f"but {name} is expecting"))
                if said != text:
                    exc.args = (said, *exc.args[1:])
                raise
            finally:
                seen = {}
                for w in caught:
                    seen.setdefault((w.category, str(w.message).replace("GaussianMixture was fitted",
                                                                        f"{name} was fitted")), w)
        for (category, text), w in seen.items():
            warnings.warn(text, category, stacklevel=2)
        return result

    return run

class MixtureClassifier(EstimatorBase):
    """Classification by Gaussian mixtures: mclust's ``MclustDA`` and ``EDDA``.

    Each class gets a density (a Gaussian mixture for 'MclustDA', one Gaussian for
    'EDDA'), chosen by BIC over mclust's covariance models, and a row is assigned by
    Bayes' rule with the training class proportions as priors. It follows
    scikit-learn's classifier API (``fit(X, y)``, ``predict``, ``predict_proba``,
    ``score`` as accuracy, ``classes_``), so it works in ``cross_val_score`` and
    pipelines; :meth:`cv` is mclust's ``cvMclustDA``.

    Parameters
    ----------
    model : {'MclustDA', 'EDDA'}, default='MclustDA'
        mclust's ``modelType``. 'MclustDA': a mixture per class, its number of components and covariance model
        chosen per class by BIC. 'EDDA': one Gaussian per class and one covariance model
        for every class (its volume, shape and orientation equal or varying across the
        classes as the model's letters say: 'VVV' is quadratic discriminant analysis,
        'EEE' linear), chosen by BIC.
    n_components : int, iterable of int or None, default=None
        The numbers of components tried per class ('MclustDA'): None is mclust's 1..5.
        'EDDA' fits one component per class and takes only None (or 1).
    covariance_types : str, list of str or None, default=None
        The covariance models tried: None or 'mclust' is mclust's 14 (E and V for one
        feature; with a ``prior``, without EVE, VEE, VVE and EVV, as mclust does); any of
        :class:`GaussianMixture`'s ``covariance_type`` names, or a list of them. Models
        a class has too few rows for are skipped for that class (see Raises).
    class_priors : array-like of shape (n_classes,) or None, default=None
        Prior class probabilities for prediction (Bayes' rule), in the order of
        ``classes_``; normalised to sum to one. None: the training proportions
        (mclust's ``prop``). They change predictions only, never the fit.
    prior : None, 'default' or dict, default=None
        mclust's conjugate prior for every class fit, as :class:`GaussianMixture`'s ``prior``.
    reg_covar : float, default=0
        Added to every variance, as in :class:`GaussianMixture`. mclust adds nothing, and
        neither does this default (GaussianMixture's is scikit-learn's 1e-6): a
        candidate whose covariance turns singular is left out, as mclust leaves its BIC
        missing, and one that collapses onto repeated values is excluded as degenerate.
    tol : float, default=1e-5
        EM's convergence threshold for each class fit (mclust's ``emControl(tol)``).
    stopping : {'mclust', 'gain', 'aitken'}, default='mclust'
        EM's stopping rule, as :class:`GaussianMixture`'s: mclust's (the relative change
        of the log-likelihood below ``tol``) by default, so the class mixtures end where
        mclust's do; 'gain' is scikit-learn's (the mean log-likelihood's gain).
    max_iter : int, default=1000
        EM iterations per fit (mclust sets no limit; tol=1e-5 may need many on a
        poorly separated class).
    n_init : int, default=1
        Starts per fit (the hierarchical start is deterministic; k-means starts differ).
    init_params : str, default='hc'
        The start of each class mixture: 'hc' (mclust's: a hierarchical clustering of
        the class's rows, on its variables as mclust's ``MclustDA`` does) or any of
        :class:`GaussianMixture`'s ``init_params``. 'EDDA' starts from the labels.
    random_state : int, RandomState, Generator or None, default=None
        Seed for initialisation (and the folds of :meth:`cv`).
    verbose : int or bool, default=0
        Passed to every fit.
    device : str or torch.device, default='cpu'
        Where the arithmetic runs ('cpu', 'cuda', ...).
    dtype : {'float32', 'float64'} or torch dtype, default='float32'
        Precision of the per-chunk arithmetic (statistics are always float64).
    chunk_size : int, default=None
        Rows per chunk; by default derived from ``memory_budget``.
    memory_budget : int, str or 'auto', default='auto'
        Memory for a chunk's working arrays; 'auto' as for ``GaussianMixture``: 256MB,
        and on a CUDA device chunks sized from the GPU's free memory by measurement.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The class labels, sorted.
    class_counts_ : ndarray of shape (n_classes,)
        Each class's training rows.
    class_proportions_ : ndarray of shape (n_classes,)
        Each class's share of the training rows (mclust's ``prop``).
    class_priors_ : ndarray of shape (n_classes,)
        The priors prediction uses: ``class_priors`` normalised, or the proportions.
    covariance_types_ : list of str
        The chosen covariance model of each class (EDDA: the same for all).
    n_components_ : list of int
        The chosen number of components of each class (EDDA: 1 for all).
    estimators_ : list of GaussianMixture
        'MclustDA': the fitted mixture of each class, in the order of ``classes_``.
        'EDDA': one GaussianMixture whose component c is the Gaussian of class c.
    table_ : list of dict
        Every candidate fitted: class (None for EDDA's shared fits), n_components,
        covariance_type, log_likelihood, n_parameters, bic (lower is better; mclust's is
        minus ours), degenerate, chosen.
    log_likelihood_ : float
        The training log-likelihood, sum_i log sum_c p_c f_c(x_i) with the training proportions.
    n_parameters_ : int
        mclust's ``df``: the parameters of every class density (class proportions not counted).
    bic_ : float
        ``-2 log_likelihood_ + n_parameters_ log n`` (mclust's ``bic`` negated).
    n_features_in_ : int
    feature_names_in_ : ndarray of str
        Only when fitted on data with column names.

    Raises
    ------
    DataError
        When y's length differs from X's rows, when a class has too few rows for every
        candidate covariance model (the message names the class and the fixes), or when
        there are fewer than two classes.

    Notes
    -----
    Differences from mclust: BIC's sign (ours is lower-is-better), and a covariance
    model a class cannot support (fewer rows than it needs) is skipped up front rather
    than fitted into a singular covariance. Defaults are mclust's (``reg_covar=0``,
    ``tol=1e-5``, its stopping rule, its hierarchical start on the variables); with
    ``dtype='float64'`` the fits and BIC agree with mclust's to its printed digits.
    """

    _estimator_type = "classifier"
    _constraints = dict(
        model=_params.Choice(MODEL_TYPES),
        n_components=_Components(),
        covariance_types=_Types(),
        class_priors=_ClassPriors(),
        prior=PriorSpec(),
        reg_covar=_params.Float(0.0),
        tol=_params.Float(0.0),
        stopping=_params.Choice(("gain", "aitken", "mclust")),
        max_iter=_params.Int(0, at_most=_params.MAX_ITER),
        n_init=_params.Int(1, at_most=_params.MAX_INIT),
        init_params=_params.Passed(),
        random_state=_params.Seed(),
        verbose=_params.Int(0),
        device=_params.Device(),
        dtype=_params.Dtype(),
        chunk_size=_params.Optional(_params.Int(1, at_most=_params.MAX_ROWS)),
        memory_budget=_params.Memory(auto=True),
    )
    _structural = ("model",)
    _fitted_arrays: dict[str, str] = {}  # the class densities are saved as parts (see _parts)

    def __init__(
        self,
        model="MclustDA",
        *,
        n_components=None,
        covariance_types=None,
        class_priors=None,
        prior=None,
        reg_covar=0.0,
        tol=1e-5,
        stopping="mclust",
        max_iter=1000,
        n_init=1,
        init_params="hc",
        random_state=None,
        verbose=0,
        device="cpu",
        dtype="float32",
        chunk_size=None,
        memory_budget="auto",
    ):
        self.model = model
        self.n_components = n_components
        self.covariance_types = covariance_types
        self.class_priors = class_priors
        self.prior = prior
        self.reg_covar = reg_covar
        self.tol = tol
        self.stopping = stopping
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.verbose = verbose
        self.device = device
        self.dtype = dtype
        self.chunk_size = chunk_size
        self.memory_budget = memory_budget

    # ------------------------------------------------------------------ settings
    def _settle(self, values: dict) -> None:
        owner = type(self).__name__
        if values["model"] == "EDDA" and values["n_components"] not in (None, (1,)):
            raise ParameterError(f"{owner}: model='EDDA' fits one Gaussian per class, so n_components must be "
                                 f"None (or 1); got {self.n_components!r}. Use model='MclustDA' for a mixture "
                                 "per class")
        init = values["init_params"]
        if not isinstance(init, str) or init not in ("hc", "kmeans", "k-means++", "random", "random_from_data"):
            raise ParameterError(f"{owner}: init_params must be 'hc', 'kmeans', 'k-means++', 'random' or "
                                 f"'random_from_data'; got {init!r}")

    def _gm_params(self, s) -> dict[str, Any]:
        """The GaussianMixture parameters every class fit shares."""
        params = {name: getattr(self, name) for name in SHARED}
        params["verbose"] = s.verbose
        return params

    def _hyper_parameters(self, as_fitted: bool = True):
        """As every estimator's, with the candidate lists and class priors as JSON lists
        (covariance names are not numbers; the counts stay integers)."""
        s = self._settings()
        lists = {name: getattr(s, name) for name in ("covariance_types", "n_components", "class_priors")}
        plain = copy.copy(self)
        for name in lists:
            setattr(plain, name, None)
        values, arrays = EstimatorBase._hyper_parameters(plain, as_fitted)
        for name, value in lists.items():
            values[name] = value if value is None or isinstance(value, str) else list(value)
        return values, arrays

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimators_")

    def __sklearn_tags__(self):
        from sklearn.utils import ClassifierTags, Tags, TargetTags

        tags = Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_class=True))
        tags.non_deterministic = False
        return tags

    # ------------------------------------------------------------------ fitting
    @_in_its_words
    def fit(self, X, y, *, columns=None):
        """Fit a density per class and choose each by BIC.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features), tensor, DataFrame, path or files
            Files are streamed (y: the name of their label column): 'EDDA' in one pass per
            iteration of each model, 'MclustDA' in one per class fit, with the other
            classes' rows weighted 0 (one 4-byte class code and one 8-byte weight per row
            in memory). In memory, 'MclustDA' fits each class on its own rows.
        y : array-like of shape (n_samples,) or str
            The class of each row (every row labelled); a string names a column of X
            (a DataFrame or files) that holds the labels and is not a feature. In
            memory any label is a class, -1 too (scikit-learn's rule); a file's label
            column reads -1, an empty field and null as an unlabelled row, as
            semi-supervised fitting does, and refuses them.
        columns : list of str, default=None
            Features by name (files and DataFrames).

        Returns
        -------
        self
        """
        s = self._settings()
        for name in ("estimators_", "table_", "classes_", "feature_names_in_"):
            self.__dict__.pop(name, None)
        if is_dask_collection(X):
            raise DataError("MixtureClassifier reads X in memory or from files; compute the Dask collection first "
                            "(X.compute()), or write it to Parquet and pass the path (y: its label column's name)")
        if is_file_input(X) or is_source(X):
            if not isinstance(y, str):
                raise DataError("a file's labels are one of its columns: pass y as that column's name")
            classes, codes, columns = self._file_labels(s, X, y, columns)
            labels, weighted = y, True  # EDDA reads the label column; MclustDA weighs the rows of each class
        else:
            X, y, columns = self._in_memory(X, y, columns)
            classes, codes = _classes(y)
            labels, weighted = codes, False
        if len(classes) < 2:
            raise DataError(f"y holds a single class ({_plain(classes[0])!r} or none): a classifier needs at least two")
        if s.class_priors is not None and len(s.class_priors) != len(classes):
            raise ParameterError(f"class_priors has {len(s.class_priors)} values but y holds {len(classes)} classes "
                                 f"{[_plain(c) for c in classes]}: give one per class, in the order of classes_")
        counts = np.bincount(codes, minlength=len(classes))
        plan = self._plan(s, classes, counts, len(columns) if weighted else _width(X))
        if s.model == "EDDA":
            return self._fit_edda(s, X, labels, columns, (classes, counts, plan))
        return self._fit_mclustda(s, X, codes, columns, classes, counts, plan, weighted)

    def _file_labels(self, s, X, label_column: str, columns):
        """(classes, int32 code of every row, feature columns) of a file whose labels are
        its column ``label_column``, in one streamed pass; every row must be labelled."""
        from ..engines.local import LocalEngine

        est = GaussianMixture(2, unlabeled_weight=0.0, **{**self._gm_params(s), "init_params": "kmeans"})
        with est._execution(X, est._settings(), None, columns, y=label_column, fitting=True) as (_, source, classes):
            if classes is None:
                raise DataError(f"label column {label_column!r} labels no row: every training row needs its class")
            codes = np.concatenate([chunk.label.cpu().numpy().astype(np.int32)
                                    for chunk in LocalEngine().stream(source)])
            names = list(source.feature_names)
        missing = np.flatnonzero(codes < 0)
        if len(missing):
            raise DataError(f"label column {label_column!r} leaves {len(missing)} row(s) unlabelled (-1, empty or "
                            f"null; the first is row {int(missing[0])}): every training row needs its class; drop "
                            "those rows, or fit GaussianMixture(unlabeled_weight=...) for semi-supervised EM. In a "
                            "file's label column -1 marks an unlabelled row, as in semi-supervised fitting (in "
                            "memory it is a class): recode a class named -1")
        return np.asarray(classes), codes, names

    def _in_memory(self, X, y, columns):
        """(X, y as an array, columns) for an in-memory X; y's length checked; a label
        column of a DataFrame taken out of X."""
        if y is None:
            raise DataError(f"{type(self).__name__} requires y to be passed, but the target y is None: give the class "
                            "of every row")
        refuse_sparse(X)  # (MclustDA takes each class's rows out of X before any source reads it)
        if not hasattr(X, "shape") and not hasattr(X, "columns"):
            X = np.asarray(X)
        if isinstance(y, str):
            names = feature_names_of(X)
            if names is None or y not in names:
                raise DataError(f"y={y!r} names a label column, but X has no column {y!r}"
                                + ("" if names is None else f" (its columns: {names})"))
            labels = np.asarray(X[y])
            keep = [c for c in (columns or names) if c != y]
            X, columns = X[keep], None
            y = labels
        if isinstance(y, torch.Tensor):
            y = y.cpu().numpy()
        shape = getattr(X, "shape", None)
        if shape is not None and len(shape) != 2:  # said of the whole X (MclustDA reads it a class at a time)
            check_shape(tuple(shape), by=type(self).__name__)
        y = np.asarray(y)
        if y.ndim != 1:
            y = y.ravel() if y.ndim == 2 and 1 in y.shape else y
        if y.ndim != 1:
            raise DataError(f"y must be one label per row, shape (n_samples,); got shape {y.shape}")
        n = _n_rows(X)
        if len(y) != n:
            raise DataError(f"y has {len(y)} labels but X has {n} rows: give one label per row of X")
        if n < 2:
            raise DataError(f"X has n_samples = {n}: a classifier needs rows of at least two classes")
        if y.dtype.kind == "f" and np.isfinite(y).all() and (y != np.round(y)).any():
            raise DataError("Unknown label type: continuous (y holds fractional numbers). MixtureClassifier predicts "
                            "classes; for a continuous target use a regressor, or bin y into classes first")
        if y.dtype.kind == "f" and not np.isfinite(y).all() or y.dtype == object and any(
                v is None or (isinstance(v, float) and math.isnan(v)) for v in y):
            raise DataError("y has missing labels (NaN or None): every training row needs its class; drop the "
                            "unlabelled rows (or fit GaussianMixture(unlabeled_weight=...) for semi-supervised EM)")
        return X, y, columns

    def _types(self, s, n_features: int) -> list[str]:
        if s.covariance_types is None or s.covariance_types == "mclust":
            types = list(UNIVARIATE) if n_features == 1 else list(MULTIVARIATE)
            return [t for t in types if s.prior is None or t not in NO_PRIOR]
        return list(s.covariance_types)

    def _plan(self, s, classes, counts, n_features: int) -> list[list[tuple[int, str]]]:
        """The (K, covariance type) candidates of each class (EDDA: the same list, K=1),
        those a class has too few rows for left out; a class left with none is an error."""
        types = self._types(s, n_features)
        ks = [1] if s.model == "EDDA" else list(s.n_components or range(1, 6))
        n, C = int(counts.sum()), len(classes)
        plan = []
        for label, n_c in zip(classes, counts):
            if s.model == "EDDA":
                fits = [(1, t) for t in types if int(n_c) >= _rows_needed(t, 1, n_features, n - C + 1)]
            else:
                fits = [(k, t) for t in types for k in ks if int(n_c) >= _rows_needed(t, k, n_features, int(n_c))]
            if not fits:
                need = min(_rows_needed(t, k, n_features, int(n_c)) for t in types for k in ks)
                raise DataError(
                    f"class {_plain(label)!r} has {int(n_c)} training row(s), fewer than the {need} the smallest candidate "
                    f"needs (covariance_types={types}, n_components={ks}, {n_features} features): give that class "
                    "more rows, or allow a model that needs fewer (a spherical or diagonal one such as 'EII' or "
                    "'VVI', fewer components, or model='EDDA' with an 'E..' model whose covariance is pooled "
                    "across classes), or pass prior='default'"
                )
            plan.append(fits)
        if s.model == "EDDA":
            shared = [t for t in types if all((1, t) in fits for fits in plan)]
            if not shared:
                worst = int(np.argmin(counts))
                raise DataError(
                    f"no covariance model in {types} suits every class: class {_plain(classes[worst])!r} has "
                    f"{int(counts[worst])} row(s); add a pooled or diagonal model (such as 'EEE' or 'VVI'), or give "
                    "that class more rows")
            plan = [[(1, t) for t in shared]] * C
        return plan

    def _fit_edda(self, s, X, labels, columns, known):
        """One GaussianMixture with a component per class for each covariance model; the
        lowest BIC (mclust's: the mixture's likelihood, means and covariance counted).
        ``labels``: each row's class code, or the name of a file's label column (whose
        sorted classes are ``classes`` again); ``known``: (classes, counts, plan)."""
        params = {**self._gm_params(s), "init_params": "kmeans", "n_init": 1}  # the labels start every fit
        classes, counts, plan = known
        C = len(classes)
        rows, fits = [], []
        for _, ct in plan[0]:
            try:
                est = GaussianMixture(C, covariance_type=ct, unlabeled_weight=0.0, **params).fit(X, labels,
                                                                                                 columns=columns)
                row = criteria(est, X, None, columns)
            except FAILURES:
                continue  # a singular covariance (collinear features in a class): mclust's missing BIC

            p = est._n_parameters() - (C - 1)  # the class proportions are not counted (mclust's equalPro)
            bic = -2 * row["log_likelihood"] + p * math.log(row["weight"])
            rows.append(dict(**{"class": None}, n_components=1, covariance_type=ct,
                             log_likelihood=row["log_likelihood"], n_parameters=p, bic=bic,
                             degenerate=bool(degenerate_components(est)), chosen=False))
            fits.append(est)
        if not rows:
            raise DataError(f"no covariance model in {[t for _, t in plan[0]]} could be fitted: each class's "
                            f"covariance is singular (collinear or constant features?); pass reg_covar > 0 (now "
                            f"{s.reg_covar:g}), prior='default', or drop the redundant features")
        best = _best(rows, "EDDA's candidates")
        rows[best]["chosen"] = True
        self._finish(s, classes, counts, [fits[best]], rows, rows[best]["log_likelihood"], rows[best]["n_parameters"],
                     float(counts.sum()), fits[best])
        return self

    def _fit_mclustda(self, s, X, codes, columns, classes, counts, plan, weighted: bool = False):
        """Per class: select over its candidates on its own rows; the lowest BIC. In memory
        the class's rows are taken out; a file is streamed whole with the other classes'
        rows weighted 0 (``weighted``), which gives the same fits."""
        params = self._gm_params(s)
        estimators, table = [], []
        for c, label in enumerate(classes):
            rows_c, weight = (X, (codes == c).astype(np.float64)) if weighted else (_take(X, codes == c), None)
            if s.init_params == "hc":
                # one tree per class, on its rows' SVD: mclust's MclustDA runs mclustBIC on each
                # class, which starts from mclust.options("hcUse"), "SVD" (hc()'s own default,
                # "VARS", gave other starts, and on a split of iris other models)
                host = rows_c.cpu() if isinstance(rows_c, torch.Tensor) else rows_c  # the tree is built on the host
                params["init_params"] = hc(host, use="SVD", random_state=self.random_state, columns=columns,
                                           sample_weight=weight)
            candidates = []
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", DegenerateFitWarning)
                for t in dict.fromkeys(t for _, t in plan[c]):
                    candidates += _candidates(rows_c, [k for k, u in plan[c] if u == t], t, columns, params, weight)
            if not candidates:
                raise DataError(f"class {_plain(label)!r}: no candidate model could be fitted to its {int(counts[c])} "
                                f"rows (each failed numerically); pass reg_covar > 0 (now {s.reg_covar:g}), "
                                "prior='default', or fewer components")
            for w in caught:
                if issubclass(w.category, DegenerateFitWarning):
                    warnings.warn(f"class {_plain(label)!r}: {w.message}", DegenerateFitWarning, stacklevel=3)
                else:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            rows = [dict(**{"class": _plain(label)}, n_components=r["n_components"], covariance_type=r["covariance_type"],
                         log_likelihood=r["log_likelihood"], n_parameters=r["n_parameters"], bic=r["bic"],
                         degenerate=r["degenerate"], chosen=False) for r, _ in candidates]
            best = _best(rows, f"class {_plain(label)!r}'s candidates", warn=False)  # select has said so
            rows[best]["chosen"] = True
            estimators.append(candidates[best][1])
            table += rows
        self._finish(s, classes, counts, estimators, table, None, sum(e._n_parameters() for e in estimators),
                     float(counts.sum()), None, X, columns)
        return self

    def _set_parts(self, classes, counts: np.ndarray, estimators: list, table: list):
        """The fitted attributes a fit and a loaded file share; returns the first class's model."""
        self.classes_ = np.asarray(classes)
        self.class_counts_ = counts
        self.class_proportions_ = counts / counts.sum()
        self.estimators_ = estimators
        self.table_ = table
        first = estimators[0]
        self.n_features_in_ = int(first.n_features_in_)
        if hasattr(first, "feature_names_in_"):
            self.feature_names_in_ = np.asarray(first.feature_names_in_, dtype=object)
        return first

    def _finish(self, s, classes, counts, estimators, table, loglik, n_parameters, n, edda, X=None, columns=None):
        first = self._set_parts(classes, np.asarray(counts, dtype=np.int64), estimators, table)
        if not hasattr(first, "feature_names_in_"):
            self.__dict__.pop("feature_names_in_", None)
        if edda is not None:
            self.covariance_types_ = [edda.covariance_type] * len(classes)
            self.n_components_ = [1] * len(classes)
        else:
            self.covariance_types_ = [e.covariance_type for e in estimators]
            self.n_components_ = [int(e.n_components) for e in estimators]
        self._remember_structure()
        if loglik is None:  # MclustDA: the mixture over classes, with the training proportions (mclust's logLik)
            log_dens = self._class_log_density(X, columns)
            loglik = float(torch.logsumexp(torch.from_numpy(log_dens + np.log(self.class_proportions_)), 1).sum())
        self.log_likelihood_ = float(loglik)
        self.n_parameters_ = int(n_parameters)
        self.bic_ = -2 * self.log_likelihood_ + self.n_parameters_ * math.log(n)

    # ------------------------------------------------------------------ inference
    def _check_fitted(self) -> None:
        if not hasattr(self, "estimators_"):
            raise not_fitted_error(f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with "
                                   "appropriate arguments before using this estimator.")

    @property
    def class_priors_(self) -> np.ndarray:
        self._check_fitted()
        priors = self._settings().class_priors
        if priors is None:
            return self.class_proportions_
        if len(priors) != len(self.classes_):
            raise ParameterError(f"class_priors has {len(priors)} values but there are {len(self.classes_)} classes "
                                 f"{self.classes_.tolist()}: give one per class, in the order of classes_")
        return np.asarray(priors)

    def _class_log_density(self, X, columns=None) -> np.ndarray:
        """(n, C) log f_c(x) of each row under each class's density, streamed through
        the fitted mixtures (files are read a chunk at a time)."""
        self._check_fitted()
        if is_dask_collection(X):
            X = X.compute()
        if self._inference_settings().model == "EDDA":
            est = self.estimators_[0]
            log_w = np.log(est.weights_)
            return est._log_joint_rows(X, columns) - log_w
        return np.column_stack([est.score_samples(X, columns=columns) for est in self.estimators_])

    @_in_its_words
    def predict_log_proba(self, X, *, columns=None) -> np.ndarray:
        """Log posterior class probabilities, shape (n_samples, n_classes), by Bayes' rule
        with ``class_priors_``."""
        log_joint = torch.from_numpy(self._class_log_density(X, columns) + np.log(self.class_priors_))
        return (log_joint - torch.logsumexp(log_joint, 1, keepdim=True)).numpy()

    def predict_proba(self, X, *, columns=None) -> np.ndarray:
        """Posterior class probabilities, shape (n_samples, n_classes), columns in the
        order of ``classes_`` (mclust's ``predict(...)$z``)."""
        return np.exp(self.predict_log_proba(X, columns=columns))

    def predict(self, X, *, columns=None) -> np.ndarray:
        """The most probable class of each row, shape (n_samples,) (mclust's ``classification``)."""
        self._check_fitted()
        return self.classes_[np.argmax(self.predict_log_proba(X, columns=columns), axis=1)]

    def score(self, X, y, sample_weight=None, *, columns=None) -> float:
        """Accuracy: the share of rows whose predicted class is y, each row counted by its
        ``sample_weight`` where given (scikit-learn's classifier score)."""
        y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
        if y.ndim == 2 and y.shape[1] == 1:  # a column of labels, as fit takes it (not broadcast against the rows)
            y = y[:, 0]
        if y.ndim != 1:
            raise DataError(f"y must be one label per row, shape (n_samples,); got shape {y.shape}")
        predicted = self.predict(X, columns=columns)
        if len(y) != len(predicted):
            raise DataError(f"y has {len(y)} labels but X has {len(predicted)} rows: give one label per row of X")
        if sample_weight is None:
            return float(np.mean(predicted == y))
        w = np.asarray(sample_weight.cpu() if isinstance(sample_weight, torch.Tensor) else sample_weight, float)
        if w.shape != y.shape:
            raise DataError(f"sample_weight has shape {w.shape} but y has {len(y)} labels: give one weight per row")
        if not np.isfinite(w).all() or (w < 0).any() or not w.sum() > 0:
            raise DataError("sample_weight must be finite and non-negative, and not all zero")
        return float(np.average(predicted == y, weights=w))

    @_in_its_words
    def summary(self, X=None, y=None, *, columns=None) -> str:
        """mclust's ``summary(MclustDA)``: the log-likelihood, n, df and BIC, then each
        class's rows, share, model and number of components. BIC with bigem's sign (lower
        is better; mclust prints minus it). Given the training data X and y (mclust keeps
        them in the model; bigem does not), also its training confusion matrix,
        classification error and Brier score (the squared error of the probabilities
        against the labels, summed and divided by 2n, as mclust's ``BrierScore``)."""
        self._check_fitted()
        n = int(self.class_counts_.sum())
        kind = self._inference_settings().model
        lines = [f"{kind} model summary (BIC with bigem's sign: lower is better; mclust prints minus it):", "",
                 f"  {'log-likelihood':>14} {'n':>8} {'df':>6} {'BIC':>14}",
                 f"  {self.log_likelihood_:>14.4f} {n:>8} {self.n_parameters_:>6} {self.bic_:>14.4f}", "",
                 f"  {'class':<16} {'n':>8} {'%':>7} {'model':>6} {'G':>3}"]
        for label, rows, share, model, k in zip(self.classes_, self.class_counts_, self.class_proportions_,
                                                self.covariance_types_, self.n_components_):
            name = _one_component_name(model) if k == 1 and kind == "MclustDA" else model  # EDDA's is shared
            lines.append(f"  {str(label):<16} {int(rows):>8} {100 * share:>7.2f} {name:>6} {k:>3}")
        if X is not None or y is not None:
            lines += self._training_summary(X, y, columns)
        return "\n".join(lines)

    def _training_summary(self, X, y, columns) -> list[str]:
        if X is None or y is None:
            raise ParameterError("summary(X, y) needs both the training rows and their labels, or neither")
        y = np.asarray(y)
        proba = self.predict_proba(X, columns=columns)
        if len(y) != len(proba):
            raise DataError(f"y has {len(y)} labels but X has {len(proba)} rows: give one label per row of X")
        classes = list(self.classes_)
        unknown = sorted({str(v) for v in np.unique(y)} - {str(c) for c in classes})
        if unknown:
            raise DataError(f"y holds labels the classifier was not fitted on: {unknown}")
        truth = np.array([classes.index(v) for v in y])
        predicted = proba.argmax(1)
        onehot = np.eye(len(classes))[truth]
        width = max(8, *(len(str(c)) for c in classes))
        # mclust's layout: a row per class, a column per prediction
        lines = ["", "Training confusion matrix:", " " * (width + 3) + "Predicted",
                 f"{'Class':<{width + 2}}" + "".join(f"{str(c):>{width + 1}}" for c in classes)]
        for i, c in enumerate(classes):
            counts = [int(np.sum((truth == i) & (predicted == j))) for j in range(len(classes))]
            lines.append(f"  {str(c):<{width}}" + "".join(f"{v:>{width + 1}}" for v in counts))
        lines += [f"Classification error = {np.mean(predicted != truth):.4f}",
                  f"Brier score          = {np.sum((proba - onehot) ** 2) / (2 * len(y)):.4f}"]
        return lines

    @_in_its_words
    def cv(self, X, y, *, n_folds: int = 10, random_state=None) -> dict:
        """Cross-validated classification error and Brier score (mclust's ``cvMclustDA``).

        The rows are split into ``n_folds`` folds balanced by class; for each fold the
        chosen models (each class's covariance model and number of components, as
        fitted here) are refitted on the other folds and predict the fold.

        Parameters
        ----------
        X, y : as for :meth:`fit` (in memory)
        n_folds : int, default=10
            Folds (at most the largest class's size, as mclust caps it); the number of
            rows: leave-one-out.
        random_state : int or None, default=None
            Seed of the folds (default: the estimator's ``random_state``).

        Returns
        -------
        dict
            'error' (the folds' errors averaged by fold size), 'brier' (mclust's Brier
            score, 1/(2n) sum_i sum_c (1{y_i = c} - p_ic)^2), 'se' and 'se_brier' (their
            standard errors over the folds, weighted by fold size as mclust's ``se.ce`` and
            ``se.brier``), 'classification' and 'proba' (each row's out-of-fold prediction).
        """
        self._check_fitted()
        s = self._inference_settings()
        folds_wanted = _params.check_int(n_folds, "n_folds", type(self).__name__, 2)
        X, y, columns = self._in_memory(X, y, None)
        index = {_plain(c): i for i, c in enumerate(self.classes_)}
        codes = np.asarray([index.get(_plain(v), -1) for v in y], dtype=np.int64)
        if (codes < 0).any():
            unseen = sorted({repr(_plain(v)) for v, c in zip(y, codes) if c < 0})
            raise DataError(f"y holds classes the fit did not see ({', '.join(unseen[:5])}); fitted classes: "
                            f"{[_plain(c) for c in self.classes_]}")
        self._class_log_density(X, columns)  # X's values checked, rows numbered as in X (a fold numbers its own)
        seed = _params.random_seed(self.random_state if random_state is None else random_state)
        folds = _balanced_folds(codes, folds_wanted, np.random.default_rng(seed))
        proba = np.empty((len(y), len(self.classes_)))
        errors, briers, sizes = [], [], []
        chosen = [(k, t) for k, t in zip(self.n_components_, self.covariance_types_)]
        for test in folds:
            train = np.ones(len(y), dtype=bool)
            train[test] = False
            clone = MixtureClassifier(**self.get_params(deep=False))
            clone._fit_chosen(s, _take(X, train), codes[train], columns, self.classes_, chosen)
            clone.class_priors = self.class_priors_
            p = clone.predict_proba(_take(X, ~train), columns=columns)
            proba[test] = p
            errors.append(float(np.mean(np.argmax(p, 1) != codes[test])))
            briers.append(float(np.sum((np.eye(len(self.classes_))[codes[test]] - p) ** 2) / (2 * len(test))))
            sizes.append(len(test))
        sizes = np.asarray(sizes)
        error, se = _fold_mean(np.asarray(errors), sizes)
        brier, se_brier = _fold_mean(np.asarray(briers), sizes)
        return {
            "error": error,
            "brier": brier,
            "se": se,
            "se_brier": se_brier,
            "classification": self.classes_[np.argmax(proba, 1)],
            "proba": proba,
        }

    def _fit_chosen(self, s, X, codes, columns, classes, chosen):
        """Refit with each class's chosen model only (cv's folds)."""
        present = np.unique(codes)
        if len(present) != len(classes):
            missing = [classes[c] for c in range(len(classes)) if c not in present]
            raise DataError(f"a cross-validation fold left no training row of class(es) {missing}: lower n_folds")
        counts = np.bincount(codes, minlength=len(classes))
        if s.model == "EDDA":
            return self._fit_edda(s, X, codes, columns, (classes, counts, [[chosen[0]]] * len(classes)))
        return self._fit_mclustda(s, X, codes, columns, classes, counts, [[k_t] for k_t in chosen])

    # ------------------------------------------------------------------ persistence
    def _parts(self) -> list[EstimatorBase]:
        return list(self.estimators_)

    def _fitted_state(self) -> dict[str, Any]:
        return {
            "classes_": [_plain(c) for c in self.classes_],
            "class_counts_": [int(v) for v in self.class_counts_],
            "table_": [{k: (_plain(v) if k == "class" else v) for k, v in r.items()} for r in self.table_],
            "log_likelihood_": float(self.log_likelihood_),
            "n_parameters_": int(self.n_parameters_),
            "bic_": float(self.bic_),
        }

    def _restore(self, state: dict) -> None:
        raise ModelFileError("a MixtureClassifier file holds its class densities as parts, and this one has none")

    def _restore_parts(self, state: dict, parts: list) -> None:
        """The fitted classifier from a model file: its state and its class densities."""
        stored = _params.Stored(state)
        s = self._settings()
        classes = state.get("classes_")
        if not isinstance(classes, list) or len(classes) < 2 or len(set(map(repr, classes))) != len(classes) or not all(
                isinstance(c, (str, int, float)) for c in classes):  # a label is one value, as y's were
            raise ModelFileError("classes_ must list at least two distinct class labels")
        counts = state.get("class_counts_")
        if not isinstance(counts, list) or len(counts) != len(classes) or not all(
                isinstance(c, int) and not isinstance(c, bool) and c > 0 for c in counts):
            raise ModelFileError("class_counts_ must be one positive row count per class")
        counts = np.asarray(counts, dtype=np.int64)
        expected = 1 if s.model == "EDDA" else len(classes)
        if len(parts) != expected or not all(isinstance(p, GaussianMixture) for p in parts):
            raise ModelFileError(f"a {s.model} classifier holds {expected} GaussianMixture part(s); "
                                 f"found {[type(p).__name__ for p in parts]}")
        if s.model == "EDDA" and parts[0].n_components != len(classes):
            raise ModelFileError(f"EDDA's mixture has {parts[0].n_components} components for {len(classes)} classes")
        if len({p.n_features_in_ for p in parts}) != 1:
            raise ModelFileError("the class densities disagree on the number of features")
        table = state.get("table_")
        if not isinstance(table, list) or not all(isinstance(r, dict) for r in table):
            raise ModelFileError("table_ must be a list of rows")
        first = self._set_parts(classes, counts, parts, table)
        if s.model == "EDDA":
            self.covariance_types_, self.n_components_ = [first.covariance_type] * len(classes), [1] * len(classes)
        else:
            self.covariance_types_ = [p.covariance_type for p in parts]
            self.n_components_ = [int(p.n_components) for p in parts]
        self.log_likelihood_ = stored.number("log_likelihood_")
        self.n_parameters_ = stored.count("n_parameters_")
        self.bic_ = stored.number("bic_")
        self._remember_structure()

    def save(self, path) -> None:
        """Write the fitted classifier to ``path`` (safetensors + JSON, atomically): its
        settings, its fitted state and every class density."""
        from .persistence import save

        self._check_fitted()
        save(self, path)


# ---------------------------------------------------------------------- helpers
def _rows_needed(name: str, k: int, n_features: int, pooled_rows: int) -> int:
    """The fewest rows of one class for K components of the covariance model ``name``
    to have a non-singular covariance: D + 1 per component when each has its own
    orientation, 2 per component when its volume or shape varies, otherwise (a
    covariance shared by the components) K + D for a full one, K + 1 for a diagonal
    or spherical one. ``pooled_rows``: for a covariance pooled over classes (EDDA's
    E.. models), the rows pooled less the classes plus one, compared instead."""
    model = MODELS[SKLEARN_EQUIVALENT.get(name, name)]
    if model.orientation == "V":
        return k * (n_features + 1)
    if "V" in (model.volume, model.shape):
        return 2 * k
    shared = k + (n_features if model.orientation == "E" else 1)
    return 1 if pooled_rows >= shared else shared  # pooled: any class may be small


# what a candidate's fit may fail with when its covariance is singular (mclust: a missing BIC)
FAILURES = (NumericalError, torch.linalg.LinAlgError)


def _candidates(rows, ks: list[int], covariance_type: str, columns, params: dict,
                weight=None) -> list[tuple[dict, GaussianMixture]]:
    """(table row, fit) of every K of one model on one class's rows (or on the rows
    ``weight`` selects), by :func:`select`, each K from the class's start alone, as
    mclust's MclustDA (select's split starts found fits of higher likelihood and other
    choices: on iris, setosa's EEV,5 at 141 against mclust's 82.9, chosen over mclust's
    EEE,2). A K whose fit fails numerically is left out, as mclust leaves its BIC missing."""
    try:
        result = select(rows, ks, [covariance_type], columns=columns, sample_weight=weight, split=False, **params)
        return [(row, est) for row, est in zip(result.table, result.estimators_) if est is not None]
    except FAILURES:
        if len(ks) == 1:
            return []
    return [found for k in ks for found in _candidates(rows, [k], covariance_type, columns, params, weight)]


def _best(rows: list[dict], what: str, warn: bool = True) -> int:
    """The row of lowest BIC among the non-degenerate ones (all of them, with a warning,
    when every one is degenerate); of BICs equal to rounding, the first."""
    eligible = [i for i, r in enumerate(rows) if not r["degenerate"] and math.isfinite(r["bic"])]
    if not eligible and warn:
        warnings.warn(f"every one of {what} is degenerate (a variance at the reg_covar floor); choosing among them "
                      "anyway: the class may have repeated rows, or too few for its models", DegenerateFitWarning,
                      stacklevel=4)
    if not eligible:
        eligible = list(range(len(rows)))
    lowest = min(rows[i]["bic"] for i in eligible)
    # BICs equal but for rounding (one component: every ellipsoidal model is the same fit,
    # with as many parameters) go to the first candidate in mclust's order, not to the noise
    return min(i for i in eligible if rows[i]["bic"] <= lowest + TIE * max(1.0, abs(lowest)))


def _n_rows(X) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    return len(X)


def _width(X) -> int:
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 2:
        return int(shape[1])
    arr = np.asarray(X)
    return 1 if arr.ndim == 1 else int(arr.shape[1])


def _take(X, mask: np.ndarray):
    """The rows of an in-memory X where mask holds, keeping its kind (DataFrame names)."""
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(mask, device=X.device)]
    if hasattr(X, "iloc"):
        return X.iloc[np.flatnonzero(mask)]
    if hasattr(X, "filter") and hasattr(X, "columns"):  # polars
        return X.filter(mask)
    return np.asarray(X)[mask]


def _balanced_folds(codes: np.ndarray, n_folds: int, rng: np.random.Generator) -> list[np.ndarray]:
    """mclust's balanced folds: each class's rows shuffled and dealt round the folds (at
    most as many folds as the largest class has rows); n_folds = n: leave one out."""
    if n_folds == len(codes):
        return [np.asarray([i]) for i in range(len(codes))]
    n_folds = min(n_folds, int(np.bincount(codes).max()))
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    start = 0
    for c in np.unique(codes):
        rows = rng.permutation(np.flatnonzero(codes == c))
        for i, r in enumerate(rows):
            folds[(start + i) % n_folds].append(int(r))
        start = (start + len(rows)) % n_folds
    return [np.sort(np.asarray(f)) for f in folds if f]


def _plain(label):
    return label.item() if isinstance(label, np.generic) else label


def _classes(y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(the sorted classes, each row's code): np.unique, with scikit-learn's words for
    labels that cannot be sorted together (strings and numbers)."""
    try:
        return np.unique(y, return_inverse=True)
    except TypeError:
        kinds = sorted({type(v).__name__ for v in y})
        raise DataError(f"Mix of label input types (string and number): y holds labels of the types {kinds}; give "
                        "every label one type (y.astype(str), say)") from None


def _one_component_name(model: str) -> str:
    """mclust's name of a one-component model, where the models of a shape coincide:
    XII (spherical), XXI (diagonal), XXX (ellipsoidal), X (one feature)."""
    if model in ("E", "V"):
        return "X"
    if model == "spherical" or model.endswith("II"):
        return "XII"
    return "XXI" if model == "diag" or model.endswith("I") else "XXX"


def _fold_mean(values: np.ndarray, sizes: np.ndarray) -> tuple[float, float]:
    """The folds' mean of a per-fold metric weighted by fold size, and its standard error
    as mclust's ``cvMclustDA`` computes it: sqrt(sum_f n_f (m_f - m)^2 / (n (F - 1) / F) / F)
    (NaN for one fold)."""
    n, F = float(sizes.sum()), len(values)
    mean = float(np.sum(values * sizes) / n)
    if F < 2:
        return mean, math.nan
    return mean, float(math.sqrt(np.sum((values - mean) ** 2 * sizes) / (n * (F - 1) / F) / F))
