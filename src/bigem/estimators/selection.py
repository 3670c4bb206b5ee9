"""Model selection: fit every (K, covariance type) candidate and rank them by BIC, AIC or ICL.

Sign convention: scikit-learn's, lower is better::

    BIC = -2 log L + p log n        AIC = -2 log L + 2 p
    ICL = BIC - 2 sum_i log max_k tau_ik      (BIC plus twice the entropy of the hard assignment)

mclust reports ``BIC_mclust = 2 log L - p log n`` (higher is better), so
``BIC_mclust = -BIC`` and mclust's best model is the one with our lowest BIC; the same
holds for its ICL. ``p`` counts free parameters (weights sum to one: K - 1 of them).

With ``variational=True`` the table also holds, per covariance type, a
BayesianGaussianMixture truncated at the largest K: its row gives the number of
components the data use (a variational answer to "how many clusters?"); it has no
likelihood to penalise, so its criteria are NaN and it is never the chosen candidate.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import numpy as np

import torch

from .._core.errors import DegenerateFitWarning, ParameterError
from .._core.optional import require
from ..models.covariance import NAMES, structure
from ._mixture import sample_size
from .bayesian_mixture import BayesianGaussianMixture
from .families import family_estimator
from .gaussian_mixture import GaussianMixture

CRITERIA = ("bic", "aic", "icl")
COVARIANCE_ORDER = ("full", "diag", "spherical", "tied")  # GaussianMixture's candidates by default
COLUMNS = (
    "model",
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
VARIATIONAL = "BayesianGaussianMixture"


@dataclass
class SelectionResult:
    """The outcome of :func:`select`.

    Attributes
    ----------
    table : list of dict
        One row per candidate, in fitting order, with the keys of ``COLUMNS``: model (the
        estimator's class name: the family's, such as 'GaussianMixture' or
        'CategoricalMixture', or 'BayesianGaussianMixture'), n_components, covariance_type, log_likelihood (total,
        weighted), n_parameters, bic, aic, icl (lower is better for all three), converged,
        degenerate, n_iter, seconds (fit plus scoring). A BayesianGaussianMixture row's
        n_components is the number of components it uses (those holding at least one row:
        see :func:`used_components`); its log_likelihood, n_parameters and criteria are NaN.
    estimators_ : list of GaussianMixture (or the family's estimator, or BayesianGaussianMixture)
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
        pd = require("pandas", "to_pandas()")
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
            if r["model"] == VARIATIONAL:
                notes.append(f"variational (of {self.estimators_[i].n_components}): lower bound "
                             f"{self.estimators_[i].lower_bound_:.6g}")
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
    family: str = "gaussian",
    keep_degenerate: bool = False,
    sample_weight=None,
    columns=None,
    callback=None,
    variational: bool = False,
    **params,
) -> SelectionResult:
    """Fit a mixture (GaussianMixture by default) for every K in ``n_components`` and every
    covariance type, and choose the one with the lowest ``criterion``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features), tensor, DataFrame or path
        Anything the family's ``fit`` accepts (for 'multinomial': sparse matrices, .npz
        files, token lists).
    n_components : int or iterable of int, default=range(1, 11)
    covariance_types : str or iterable of str, default=None
        None: every type the family has (Gaussian: 'full', 'diag', 'spherical', 'tied';
        mixed: its Gaussian block's 'diag', 'full'; none for the other families, whose
        table's covariance_type is None).
    criterion : {'bic', 'aic', 'icl'}, default='bic'
        Lower is better (scikit-learn's sign; mclust's BIC is minus ours).
    family : {'gaussian', 'bernoulli', 'categorical', 'poisson', 'multinomial', 'mixed'}, default='gaussian'
        The mixture fitted: :class:`GaussianMixture`, :class:`BernoulliMixture`,
        :class:`CategoricalMixture`, :class:`PoissonMixture`, :class:`MultinomialMixture`
        or :class:`MixedMixture` (their parameters go in ``**params``; see
        ``bigem.estimators.families``).
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
    variational : bool, default=False
        Also fit, per covariance type, a :class:`BayesianGaussianMixture` with
        ``n_components=max(n_components)`` (a Dirichlet process prior, scikit-learn's
        defaults) and add a row with the number of components it uses. It shares the
        parameters of ``params`` it has (``tol``, ``max_iter``, ``random_state``, ...). Its
        row informs; it is never chosen, as it has no likelihood to penalise.
    **params
        Passed to every estimator (``n_init``, ``tol``, ``max_iter``,
        ``reg_covar``, ``random_state``, ``dtype``, ``device``, ...).

    Returns
    -------
    SelectionResult
    """
    cls = family_estimator(family)
    ks = _check_components(n_components)
    types = _check_types(covariance_types, cls, family)
    if criterion not in CRITERIA:
        raise ParameterError(f"criterion must be one of {list(CRITERIA)}; got {criterion!r}")
    for flag, value in (("keep_degenerate", keep_degenerate), ("variational", variational)):
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(f"{flag} must be True or False; got {value!r}")
    for name in ("n_components", "covariance_type"):
        if name in params:
            raise ParameterError(f"pass {name!r} to select() as the candidate list, not as a {cls.__name__} parameter")
    unknown = sorted(set(params) - set(cls._param_names()))
    if unknown:
        raise ParameterError(
            f"select() got unknown {cls.__name__} parameter(s) {unknown}; valid: {cls._param_names()}"
        )
    cls(**params)._settings()  # bad values fail before any fit
    if variational and cls is not GaussianMixture:
        raise ParameterError(f"variational=True adds BayesianGaussianMixture rows: Gaussian family only, not "
                             f"family={family!r}")
    shared = {name: value for name, value in params.items() if name in BayesianGaussianMixture._param_names()}

    table, estimators = [], []
    for ct in types:
        for k in ks:
            started = time.perf_counter()
            shape = {} if ct is None else {"covariance_type": ct}
            est = cls(k, **shape, **params).fit(X, sample_weight=sample_weight, columns=columns, callback=callback)
            row = criteria(est, X, sample_weight, columns)
            row.update(
                model=cls.__name__,
                n_components=k,
                covariance_type=ct,
                converged=bool(est.converged_),
                degenerate=bool(degenerate_components(est)),
                n_iter=int(est.n_iter_),
                seconds=time.perf_counter() - started,
            )
            table.append({c: row[c] for c in COLUMNS})
            estimators.append(est)
        if variational:
            started = time.perf_counter()
            est = BayesianGaussianMixture(n_components=max(ks), covariance_type=ct, **shared).fit(
                X, sample_weight=sample_weight, columns=columns, callback=callback
            )
            nan = math.nan
            table.append(dict(
                model=VARIATIONAL, n_components=len(used_components(est)), covariance_type=ct,
                log_likelihood=nan, n_parameters=nan, bic=nan, aic=nan, icl=nan, converged=bool(est.converged_),
                degenerate=bool(set(degenerate_components(est)) & set(used_components(est))),
                n_iter=int(est.n_iter_), seconds=time.perf_counter() - started,
            ))
            estimators.append(est)

    candidates = [i for i, r in enumerate(table) if r["model"] != VARIATIONAL]
    eligible = [i for i in candidates if keep_degenerate or not table[i]["degenerate"]]
    dropped = [] if keep_degenerate else [(table[i]["n_components"], table[i]["covariance_type"])
                                          for i in candidates if table[i]["degenerate"]]
    if not eligible:
        warnings.warn(
            f"every candidate is degenerate ({_names(dropped)}); choosing among them anyway. A component "
            "collapsed onto repeated values: the data may be rounded or have duplicate rows; lower reg_covar "
            "only if the spread is real, or use fewer components",
            DegenerateFitWarning,
            stacklevel=2,
        )
        eligible = candidates
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


def used_components(est: BayesianGaussianMixture) -> list[int]:
    """The components a variational fit uses: those whose responsibilities hold at least
    one row's weight. That count n_k is the posterior's (``mean_precision_`` less its
    prior), not ``weights_`` times n: a Dirichlet process gives every stick a pseudo-row,
    so an empty component's ``weights_`` still reads as about one row."""
    counts = est.mean_precision_ - est.mean_precision_prior_
    return [int(k) for k in np.flatnonzero(counts >= 1.0)]


def full_covariances(est) -> np.ndarray:
    """(K, D, D) covariance matrices of a fitted mixture, whatever its covariance type."""
    K, D = est.means_.shape
    cov = torch.as_tensor(np.asarray(est.covariances_, dtype=np.float64))
    return structure(est._inference_settings().covariance_type).dense(cov, K, D).numpy().copy()


def criteria(est: GaussianMixture, X, sample_weight=None, columns=None) -> dict:
    """Total log-likelihood, n_parameters, BIC, AIC and ICL of a fitted mixture on X, in one
    streamed pass (the memory of a chunk; the weights read with the rows), and ``weight``:
    the rows' total weight (their count when unweighted). With engine='torch' under
    torchrun, a collective: every process scores its own part of X."""
    if isinstance(sample_weight, str) and columns is None:  # the weight column is not a feature
        columns = [str(c) for c in est.feature_names_in_]
    t = est._score_totals(X, columns, sample_weight, together=True)  # a torch group scores its parts together
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


def _check_types(value, cls: type = GaussianMixture, family: str = "gaussian") -> list[str | None]:
    """The candidate covariance types of ``family`` (whose estimator is ``cls``): the
    estimator's own choices (every one when None), or [None] for a family without."""
    choice = cls._constraints.get("covariance_type")
    names = NAMES if cls is GaussianMixture else tuple(getattr(choice, "options", ()))
    if value is None:
        return list(COVARIANCE_ORDER) if cls is GaussianMixture else list(names) or [None]
    if not names:
        raise ParameterError(f"covariance types apply to the Gaussian family (and a mixed family's Gaussian block), "
                             f"not to family={family!r}; leave covariance_types out")
    types = [value] if isinstance(value, str) else list(value)
    if not types:
        raise ParameterError("covariance_types is empty; give at least one of " + ", ".join(names))
    for t in types:
        if t not in names:
            raise ParameterError(f"unknown covariance type {t!r}; choose from {list(names)}")
    return list(dict.fromkeys(types))


def _names(cands: list[tuple[int, str]]) -> str:
    return ", ".join(f"K={k}" if ct is None else f"K={k} {ct}" for k, ct in cands)
