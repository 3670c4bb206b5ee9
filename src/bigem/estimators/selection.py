"""Model selection: fit every (K, covariance type) candidate and rank them by BIC, AIC or ICL.

Sign convention: scikit-learn's, lower is better::

    BIC = -2 log L + p log n        AIC = -2 log L + 2 p
    ICL = BIC - 2 sum_i log max_k tau_ik      (BIC plus twice the entropy of the hard assignment)

mclust reports ``BIC_mclust = 2 log L - p log n`` (higher is better), so
``BIC_mclust = -BIC`` and mclust's best model is the one with our lowest BIC; the same
holds for its ICL. ``p`` counts free parameters (weights sum to one: K - 1 of them).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

import torch

from .._core.errors import DegenerateFitWarning, ParameterError
from ..models.covariance import NAMES, structure
from ._mixture import sample_size
from .gaussian_mixture import GaussianMixture

CRITERIA = ("bic", "aic", "icl")
COVARIANCE_ORDER = ("full", "diag", "spherical", "tied")  # GaussianMixture's candidates by default
COLUMNS = (
    "n_components",
    "covariance_type",
    "log_likelihood",
    "n_parameters",
    "bic",
    "aic",
    "icl",
    "converged",
    "degenerate",
    "n_iter",
    "seconds",
)
# A component is degenerate when, in some direction, the data it holds spreads less
# than the regulariser itself: its fitted variance is at most twice reg_covar (plus a
# rounding allowance relative to the data's overall scale).
_FLOOR_FACTOR = 2.0
_ROUNDING = 1e-9


@dataclass
class SelectionResult:
    """The outcome of :func:`select`.

    Attributes
    ----------
    table : list of dict
        One row per candidate, in fitting order, with the keys of ``COLUMNS``:
        n_components, covariance_type, log_likelihood (total, weighted), n_parameters,
        bic, aic, icl (lower is better for all three), converged, degenerate, n_iter,
        seconds (fit plus scoring).
    estimators_ : list of GaussianMixture
        The fitted candidate for each row of ``table``.
    criterion : str
        The criterion the best candidate minimises.
    best_index_ : int
        Row of ``table`` of the chosen candidate.
    best_estimator_ : GaussianMixture
    dropped : list of (int, str)
        Degenerate candidates excluded from the choice.
    """

    table: list[dict]
    estimators_: list[GaussianMixture]
    criterion: str
    best_index_: int
    dropped: list[tuple[int, str]] = field(default_factory=list)

    @property
    def best_estimator_(self) -> GaussianMixture:
        return self.estimators_[self.best_index_]

    @property
    def best_(self) -> dict:
        """The table row of the chosen candidate."""
        return self.table[self.best_index_]

    def to_pandas(self):
        """The table as a pandas DataFrame (needs pandas)."""
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is in the dev extra
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.table, columns=list(COLUMNS))

    def format_table(self) -> str:
        """A fixed-width text table, the chosen candidate marked with '*'."""
        head = f"  {'K':>3} {'covariance':<10} {'log-lik':>14} {'params':>7} {'BIC':>14} {'AIC':>14} {'ICL':>14} {'iter':>5} {'sec':>7}  notes"
        lines = [head]
        for i, r in enumerate(self.table):
            notes = []
            if r["degenerate"]:
                notes.append("degenerate" + ("" if (r["n_components"], r["covariance_type"]) not in self.dropped else ", dropped"))
            if not r["converged"]:
                notes.append("not converged")
            mark = "*" if i == self.best_index_ else " "
            lines.append(
                f"{mark} {r['n_components']:>3} {r['covariance_type'] or '-':<10} {r['log_likelihood']:>14.6g} "
                f"{r['n_parameters']:>7} {r['bic']:>14.6g} {r['aic']:>14.6g} {r['icl']:>14.6g} "
                f"{r['n_iter']:>5} {r['seconds']:>7.2f}  {', '.join(notes)}"
            )
        return "\n".join(lines)


def select(
    X,
    n_components=range(1, 11),
    covariance_types=None,
    criterion: str = "bic",
    *,
    estimator=None,
    keep_degenerate: bool = False,
    sample_weight=None,
    columns=None,
    callback=None,
    **params,
) -> SelectionResult:
    """Fit a mixture (GaussianMixture by default) for every K in ``n_components`` and every
    covariance type, and choose the one with the lowest ``criterion``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), tensor, DataFrame or path
        Anything :meth:`GaussianMixture.fit` accepts.
    n_components : int or iterable of int, default=range(1, 11)
    covariance_types : str or iterable of str, default=None
        None: every type the estimator has (GaussianMixture: 'full', 'diag', 'spherical',
        'tied'; MixedMixture: 'diag', 'full'; none for the other families).
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Lower is better (scikit-learn's sign; mclust's BIC is minus ours).
    estimator : mixture class, default=GaussianMixture
        The family to fit: GaussianMixture, BernoulliMixture, CategoricalMixture,
        PoissonMixture or MixedMixture (their parameters go in ``**params``).
    keep_degenerate : bool, default=False
        Let degenerate fits (a component collapsed onto repeated values, its variance
        at the ``reg_covar`` floor) be chosen. By default they are excluded, as mclust
        does, and a :class:`DegenerateFitWarning` names them.
    sample_weight : array-like of shape (n_samples,) or str (a column of X), default=None
        Frequency weights: the log-likelihood is weighted and n is their sum.
    columns : list of str, default=None
        Features by name, for files and DataFrames (as in :meth:`GaussianMixture.fit`).
    callback : callable, default=None
        Passed to every fit: called with an ``IterationInfo`` after each EM iteration.
    **params
        Passed to every estimator (``n_init``, ``tol``, ``max_iter``,
        ``reg_covar``, ``random_state``, ``dtype``, ``device``, ...).

    Returns
    -------
    SelectionResult
    """
    cls = _check_estimator(estimator)
    ks = _check_components(n_components)
    types = _check_types(covariance_types, cls)
    if criterion not in CRITERIA:
        raise ParameterError(f"criterion must be one of {list(CRITERIA)}; got {criterion!r}")
    if not isinstance(keep_degenerate, (bool, np.bool_)):
        raise ParameterError(f"keep_degenerate must be True or False; got {keep_degenerate!r}")
    for name in ("n_components", "covariance_type"):
        if name in params:
            raise ParameterError(f"pass {name!r} to select() as the candidate list, not as a {cls.__name__} parameter")
    unknown = sorted(set(params) - set(cls._param_names()))
    if unknown:
        raise ParameterError(
            f"select() got unknown {cls.__name__} parameter(s) {unknown}; valid: {cls._param_names()}"
        )
    cls(**params)._settings()  # bad values fail before any fit

    table, estimators = [], []
    for ct in types:
        for k in ks:
            started = time.perf_counter()
            shape = {} if ct is None else {"covariance_type": ct}
            est = cls(k, **shape, **params).fit(X, sample_weight=sample_weight, columns=columns, callback=callback)
            row = criteria(est, X, sample_weight, columns)
            row.update(
                n_components=k,
                covariance_type=ct,
                converged=bool(est.converged_),
                degenerate=bool(degenerate_components(est)),
                n_iter=int(est.n_iter_),
                seconds=time.perf_counter() - started,
            )
            table.append({c: row[c] for c in COLUMNS})
            estimators.append(est)

    eligible = [i for i, r in enumerate(table) if keep_degenerate or not r["degenerate"]]
    dropped = [] if keep_degenerate else [(r["n_components"], r["covariance_type"]) for r in table if r["degenerate"]]
    if not eligible:
        warnings.warn(
            f"every candidate is degenerate ({_names(dropped)}); choosing among them anyway. A component "
            "collapsed onto repeated values: the data may be rounded or have duplicate rows; lower reg_covar "
            "only if the spread is real, or use fewer components",
            DegenerateFitWarning,
            stacklevel=2,
        )
        eligible = list(range(len(table)))
    elif dropped:
        warnings.warn(
            f"excluded degenerate candidates {_names(dropped)}: a component collapsed onto repeated values "
            "(its variance sits at the reg_covar floor), so its likelihood is a spike, not a better model; "
            "pass keep_degenerate=True to let them be chosen",
            DegenerateFitWarning,
            stacklevel=2,
        )
    best = min(eligible, key=lambda i: (table[i][criterion], i))
    return SelectionResult(table, estimators, criterion, best, dropped)


def degenerate_components(est: GaussianMixture) -> list[int]:
    """Components whose variance, in some direction, is at the ``reg_covar`` floor.

    The smallest eigenvalue of each component's covariance is compared with
    ``2 * reg_covar`` plus ``1e-9`` of the data's mean variance (for rounding): below
    it, the rows the component holds spread less than the regulariser adds, which
    happens when it sits on a handful of repeated values. For 'tied' the one shared
    covariance is checked and every component is reported.
    """
    if getattr(est, "means_", None) is None or np.shape(est.means_)[1] == 0:
        return []  # no Gaussian block: nothing sits on a variance floor
    cov = full_covariances(est)
    w, mu = est.weights_, est.means_
    centred = mu - w @ mu
    total = np.einsum("k,kij->ij", w, cov) + np.einsum("k,ki,kj->ij", w, centred, centred)
    floor = _FLOOR_FACTOR * float(est.reg_covar) + _ROUNDING * float(np.trace(total)) / total.shape[0]
    smallest = np.linalg.eigvalsh(cov)[:, 0]
    return [int(k) for k in np.flatnonzero(smallest <= floor)]


def full_covariances(est) -> np.ndarray:
    """(K, D, D) covariance matrices of a fitted mixture, whatever its covariance type."""
    K, D = est.means_.shape
    cov = torch.as_tensor(np.asarray(est.covariances_, dtype=np.float64))
    return structure(est._inference_settings().covariance_type).dense(cov, K, D).numpy().copy()


def criteria(est: GaussianMixture, X, sample_weight=None, columns=None) -> dict:
    """Total log-likelihood, n_parameters, BIC, AIC and ICL of a fitted mixture on X, in one
    streamed pass (the memory of a chunk; the weights read with the rows), and ``weight``:
    the rows' total weight (their count when unweighted)."""
    if isinstance(sample_weight, str) and columns is None:  # the weight column is not a feature
        columns = [str(c) for c in est.feature_names_in_]
    t = est._score_totals(X, columns, sample_weight)
    p = est._n_parameters()
    bic = -2 * t.loglik + p * math.log(sample_size(t))
    return dict(log_likelihood=t.loglik, n_parameters=p, bic=bic, aic=-2 * t.loglik + 2 * p, icl=bic - 2 * t.hard, weight=t.weight)


def _check_components(value) -> list[int]:
    values = [value] if isinstance(value, (int, np.integer)) and not isinstance(value, bool) else value
    try:
        ks = list(values)
    except TypeError:
        raise ParameterError(f"n_components must be an int or an iterable of ints (e.g. range(1, 11)); got {value!r}") from None
    if not ks:
        raise ParameterError(f"n_components is empty ({value!r}); give at least one number of components")
    for k in ks:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ParameterError(f"n_components must contain integers >= 1; got {k!r} in {value!r}")
    return sorted(dict.fromkeys(int(k) for k in ks))


def _check_estimator(value) -> type:
    from . import __all__ as public
    from ._mixture import _BaseMixture

    if value is None:
        return GaussianMixture
    if not (isinstance(value, type) and issubclass(value, _BaseMixture) and value.__name__ in public):
        raise ParameterError(f"estimator must be a bigem mixture class (GaussianMixture, BernoulliMixture, "
                             f"CategoricalMixture, PoissonMixture, MixedMixture); got {value!r}")
    return value


def _check_types(value, cls: type = GaussianMixture) -> list[str | None]:
    choice = cls._constraints.get("covariance_type")
    names = NAMES if cls is GaussianMixture else tuple(getattr(choice, "options", ()))
    if value is None:
        return list(COVARIANCE_ORDER) if cls is GaussianMixture else list(names) or [None]
    if not names:
        raise ParameterError(f"{cls.__name__} has no covariance types; leave covariance_types=None")
    types = [value] if isinstance(value, str) else list(value)
    if not types:
        raise ParameterError("covariance_types is empty; give at least one of " + ", ".join(names))
    for t in types:
        if t not in names:
            raise ParameterError(f"unknown covariance type {t!r}; choose from {list(names)}")
    return list(dict.fromkeys(types))


def _names(cands: list[tuple[int, str]]) -> str:
    return ", ".join(f"K={k}" if ct is None else f"K={k} {ct}" for k, ct in cands)
