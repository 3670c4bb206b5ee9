"""Model selection: fit every (K, covariance type) candidate and rank them by BIC, AIC or ICL.

mclust's strategy by default: every candidate starts from one model-based hierarchical
clustering of the data (``init_params='hc'``, the tree built once for the whole grid),
and every K + 1 fit is also started from the K fit of the same covariance type with one
component split in two, the better of the two kept, so a larger K never ends below a
smaller one. ``covariance_types='mclust'`` is mclust's family: its 14 models (E and V
for one feature), for K = 1..9 by default.

Sign convention: scikit-learn's, lower is better::

    BIC = -2 log L + p log n        AIC = -2 log L + 2 p
    ICL = BIC - 2 sum_i log max_k tau_ik      (BIC plus twice the entropy of the hard assignment)
    CAIC = -2 log L + p (log n + 1)   SABIC = -2 log L + p log((n + 2) / 24)   (latent class analysis's)

and, beside them, the posteriors' relative entropy 1 - E / (n log K), E = -sum_i sum_k
tau_ik log tau_ik: the separation of the classes (NaN for K = 1).

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

from .._core.errors import DataError, DegenerateFitWarning, NumericalError, ParameterError
from .._core.optional import require
from ..models.covariance import ALL_NAMES, structure
from ..models.eigen import MULTIVARIATE, NO_PRIOR, UNIVARIATE
from . import _params
from ._mixture import criteria_of
from .bayesian_mixture import BayesianGaussianMixture
from .families import family_estimator
from .gaussian_mixture import GaussianMixture
from .hierarchical import HCTree, build

CRITERIA = ("bic", "aic", "icl", "caic", "sabic")
COVARIANCE_ORDER = ("full", "diag", "spherical", "tied")  # GaussianMixture's candidates by default
COLUMNS = (
    "model",
    "n_components",
    "covariance_type",
    "start",
    "log_likelihood",
    "n_parameters",
    "bic",
    "aic",
    "icl",
    "caic",
    "sabic",
    "relative_entropy",
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
        'CategoricalMixture', or 'BayesianGaussianMixture'), n_components, covariance_type,
        start (the start the kept fit came from: 'hc', 'kmeans', ..., or 'split' for the
        K - 1 fit with a component split), log_likelihood (total,
        weighted), n_parameters, bic, aic, icl, caic, sabic (lower is better for all five),
        relative_entropy (higher: better separated classes), converged,
        degenerate, n_iter, seconds (every start's fit plus scoring). A BayesianGaussianMixture row's
        n_components is the number of components it uses (those holding at least one row:
        see :func:`used_components`); its log_likelihood, n_parameters and criteria are NaN.
    estimators_ : list of GaussianMixture (or the family's estimator, or BayesianGaussianMixture)
        The fitted candidate for each row of ``table``; None for one whose fit turned
        singular or lost a component under ``stopping='mclust'`` (its row's criteria are
        NaN, as mclust's table shows a missing BIC there, and it is never chosen).
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

    def summary(self, criterion: str | None = None, n: int = 3) -> str:
        """The best ``n`` candidates, as mclust's ``summary(BIC)`` shows them ("EEE,3" ...),
        with each one's distance from the best. bigem's sign: lower is better, the
        criterion is minus mclust's (mclust prints 2 log L - p log n, higher is better)."""
        criterion = criterion or self.criterion
        if criterion not in CRITERIA:
            raise ParameterError(f"criterion must be one of {list(CRITERIA)}; got {criterion!r}")
        eligible = [i for i, r in enumerate(self.table)
                    if (r["n_components"], r["covariance_type"]) not in self.dropped and r["model"] != VARIATIONAL
                    and math.isfinite(r[criterion])]
        ranked = sorted(eligible, key=lambda i: (self.table[i][criterion], self.table[i]["n_components"], i))[:n]
        name = criterion.upper()
        labels = [_label(self.table[i]) for i in ranked]
        values = [self.table[i][criterion] for i in ranked]
        width = max(12, *(len(label) + 2 for label in labels))
        mclust = criterion in ("bic", "icl") and all(self.table[i]["model"] == "GaussianMixture" for i in ranked)
        sign = ("bigem's sign: lower is better; mclust prints minus these, higher is better" if mclust
                else "lower is better")  # mclust tables BIC and ICL only
        lines = [f"Best {name} values ({sign}):",
                 " " * 10 + "".join(f"{label:>{width}}" for label in labels),
                 f"{name:<10}" + "".join(f"{v:>{width}.3f}" for v in values),
                 f"{name + ' diff':<10}" + "".join(f"{v - values[0]:>{width}.3f}" for v in values)]
        return "\n".join(lines)

    def format_table(self) -> str:
        """A fixed-width text table, the chosen candidate marked with '*': BIC, AIC and ICL,
        the criterion chosen by if it is another, and the relative entropy."""
        extra = [] if self.criterion in ("bic", "aic", "icl") else [self.criterion]
        head = (f"  {'K':>3} {'covariance':<10} {'start':<8} {'log-lik':>14} {'params':>7} {'BIC':>14} {'AIC':>14} "
                f"{'ICL':>14} " + "".join(f"{c.upper():>14} " for c in extra) + f"{'rel.ent':>7} {'iter':>5} {'sec':>7}  notes")
        lines = [head]
        for i, r in enumerate(self.table):
            notes = []
            if r["degenerate"]:
                notes.append("degenerate" + ("" if (r["n_components"], r["covariance_type"]) not in self.dropped else ", dropped"))
            if self.estimators_[i] is None:
                notes.append("singular (mclust's missing BIC)")
            elif not r["converged"]:
                notes.append("not converged")
            if r["model"] == VARIATIONAL:
                notes.append(f"variational (of {self.estimators_[i].n_components}): lower bound "
                             f"{self.estimators_[i].lower_bound_:.6g}")
            mark = "*" if i == self.best_index_ else " "
            lines.append(
                f"{mark} {r['n_components']:>3} {r['covariance_type'] or '-':<10} {r['start']:<8} {r['log_likelihood']:>14.6g} "
                f"{r['n_parameters']:>7} {r['bic']:>14.6g} {r['aic']:>14.6g} {r['icl']:>14.6g} "
                + "".join(f"{r[c]:>14.6g} " for c in extra)
                + f"{r['relative_entropy']:>7.3f} {r['n_iter']:>5} {r['seconds']:>7.2f}  {', '.join(notes)}"
            )
        return "\n".join(lines)


def _one_gaussian_column(fitted) -> bool:
    """Whether the candidates fitted so far are mixed models whose columns hold at most
    one Gaussian column (a 'full' covariance of such a block is its 'diag' one)."""
    families = next((est.families_ for est in fitted if est is not None and hasattr(est, "families_")), None)
    return families is not None and sum(f == "gaussian" for f in families) <= 1


def _label(row: dict) -> str:
    """A candidate's name in a summary: mclust's "EEE,3" for a covariance type, else
    the family's "CategoricalMixture,3" (a family without covariance types)."""
    return f"{row['covariance_type'] or row['model']},{row['n_components']}"


def select(
    X,
    n_components=None,
    covariance_types=None,
    criterion: str = "bic",
    *,
    family: str = "gaussian",
    keep_degenerate: bool = False,
    split: bool = True,
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
    n_components : int or iterable of int, default=None
        range(1, 10) (mclust's 1..9) for ``covariance_types='mclust'``, else range(1, 11);
        either up to the number of rows, where X has fewer (and they are known in advance).
    covariance_types : str or iterable of str, default=None
        None: every type the family has (Gaussian: 'full', 'diag', 'spherical', 'tied', or
        'full' and 'tied' for one feature, where the other two are 'full' again;
        mixed: its Gaussian block's 'diag', 'full', or 'diag' alone where that block has at
        most one column, 'full' being the same model; none for the other families, whose
        table's covariance_type is None). Gaussian family: any of GaussianMixture's
        covariance types, or 'mclust': mclust's 14 models (EII ... VVV; with
        n_samples <= n_features only its 6 spherical and diagonal ones), or E and V for one
        feature; with a ``prior``, without EVE, VEE, VVE and EVV, as mclust does.
    criterion : {'bic', 'aic', 'icl', 'caic', 'sabic'}, default='bic'
        Lower is better (scikit-learn's sign; mclust's BIC and ICL are minus ours). 'caic'
        and 'sabic' (Bozdogan's consistent AIC, Sclove's sample-size adjusted BIC) are what
        latent class analysis often chooses by.
    family : {'gaussian', 'bernoulli', 'categorical', 'poisson', 'multinomial', 'mixed'}, default='gaussian'
        The mixture fitted: :class:`GaussianMixture`, :class:`BernoulliMixture`,
        :class:`CategoricalMixture`, :class:`PoissonMixture`, :class:`MultinomialMixture`
        or :class:`MixedMixture` (their parameters go in ``**params``; see
        ``bigem.estimators.families``).
    keep_degenerate : bool, default=False
        Let degenerate fits (a component collapsed onto repeated values, its variance
        at the ``reg_covar`` floor) be chosen. By default they are excluded, as mclust
        does, and a :class:`DegenerateFitWarning` names them.
    split : bool, default=True
        Gaussian family: also start each K fit from the K - 1 fit of the same covariance type with its
        component of largest weight x variance split along its principal axis, and keep
        the start that ends higher (the table's ``start`` says which): a K fit then never
        ends below the K - 1 fit, whose likelihood that start begins from. The other
        families have no split start: each K fit starts afresh, and may end below the
        K - 1 one (a local optimum); pass ``n_init`` (10 to 20, as latent class analysis
        does) to keep the best of several starts.
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
        Passed to every estimator (``n_init``, ``tol``, ``max_iter``, ``reg_covar``,
        ``prior``, ``random_state``, ``dtype``, ``device``, ...). For the Gaussian family
        ``init_params`` defaults to 'hc' here (mclust's start), the tree built once
        (``bigem.hc``) for every candidate; pass an :class:`HCTree` to choose its
        criterion, transform or sample size.

    Returns
    -------
    SelectionResult
    """
    cls = family_estimator(family)
    gaussian = cls is GaussianMixture
    mclust = gaussian and isinstance(covariance_types, str) and covariance_types == "mclust"
    ks = _check_components(range(1, 10) if n_components is None and mclust else
                           range(1, 11) if n_components is None else n_components)
    if not mclust:  # a misspelt name fails before the data is read
        types = _check_types(covariance_types, cls, family)
    if criterion not in CRITERIA:
        raise ParameterError(f"criterion must be one of {list(CRITERIA)}; got {criterion!r}")
    for flag, value in (("keep_degenerate", keep_degenerate), ("split", split), ("variational", variational)):
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(f"{flag} must be True or False; got {value!r}")
    for name in ("n_components", "covariance_type"):
        if name in params:
            raise ParameterError(f"pass {name!r} to select() as the candidate list, not as a {cls.__name__} parameter")
    if params.get("unlabeled_weight") is not None:  # each candidate warned that it got no y
        raise ParameterError("unlabeled_weight weighs the unlabelled rows of a fit given labels (y), which select() "
                             "does not take: fit the candidates yourself with fit(X, y), or drop unlabeled_weight")
    unknown = sorted(set(params) - set(cls._param_names()))
    if unknown:
        raise ParameterError(
            f"select() got unknown {cls.__name__} parameter(s) {unknown}; valid: {cls._param_names()}"
        )
    if variational and not gaussian:
        raise ParameterError(f"variational=True adds BayesianGaussianMixture rows: Gaussian family only, not "
                             f"family={family!r}")
    # the variational rows take the user's parameters (k-means start unless one of theirs is
    # given; mclust's stopping rule, on a likelihood, is not theirs: their own 'gain')
    shared = {name: value for name, value in params.items()
              if name in BayesianGaussianMixture._param_names() and (name, value) not in (("init_params", "hc"),
                                                                                            ("stopping", "mclust"))}
    if gaussian:
        params = {"init_params": "hc", **params}
        s = GaussianMixture(**params)._settings()  # bad values fail before any fit
        n_rows, n_features, tree = _survey(X, s, params, sample_weight, columns)
        if tree is not None:
            params["init_params"] = tree
        if mclust:
            types = _mclust_types(n_rows, n_features, params.get("prior"))
        elif covariance_types is None and n_features == 1:  # one feature: 'diag' and 'spherical' are 'full' again
            types = [ct for ct in types if ct not in ("diag", "spherical")]
        for ct in types:
            structure(ct).check_features(n_features)
            if params.get("prior") is not None and ct in NO_PRIOR:
                raise ParameterError(f"covariance type {ct!r} has no prior in mclust; drop it or pass prior=None")
    else:
        cls(**params)._settings()  # bad values fail before any fit
        n_rows = _in_memory_rows(X)
    if n_rows is not None and max(ks) > n_rows and n_components is None and n_rows >= 1:
        ks = [k for k in ks if k <= n_rows]  # the default range, as mclust's G: up to the rows
    if n_rows is not None and max(ks) > n_rows:
        raise DataError(f"Expected n_samples >= n_components for every candidate, but n_components goes up to "
                        f"{max(ks)} and X has {n_rows} rows; pass n_components up to {n_rows} (the fits would stop "
                        f"at K = {n_rows + 1}, after the smaller ones)")

    table, estimators, failed = [], [], []
    # mclust's EM stops where a component turns singular or loses its support, and its
    # table shows a missing BIC there: so does this one's. Under its stopping rule that is
    # the rule; under the others (which re-seed such components) a candidate that fails
    # all the same is shown so too, with a warning, and the other candidates go on
    mclust_rule = params.get("stopping") == "mclust"
    missing = (NumericalError, torch.linalg.LinAlgError)
    for ct in types:
        if ct == "full" and covariance_types is None and _one_gaussian_column(estimators):
            continue  # a mixed model's Gaussian block of at most one column: 'full' is 'diag' again
        previous = None
        for k in ks:
            started = time.perf_counter()
            shape = {} if ct is None else {"covariance_type": ct}
            try:
                est = cls(k, **shape, **params).fit(X, sample_weight=sample_weight, columns=columns, callback=callback)
            except missing as exc:
                if not mclust_rule:
                    failed.append((k, ct, str(exc).split(". ")[0]))
                nan = math.nan
                table.append(dict(model=cls.__name__, n_components=k, covariance_type=ct,
                                  start=_start_name(params.get("init_params", "kmeans")), log_likelihood=nan,
                                  n_parameters=nan, bic=nan, aic=nan, icl=nan, caic=nan, sabic=nan,
                                  relative_entropy=nan, converged=False, degenerate=False, n_iter=0,
                                  seconds=time.perf_counter() - started))
                estimators.append(None)
                previous = None
                continue
            start = _start_name(est.init_params)
            row = criteria(est, X, sample_weight, columns)
            if gaussian and split and previous is not None and previous[0] == k - 1:
                # the split start; if the better start still ends below the K - 1 fit (EM
                # stops early, or in a poorer optimum), the K - 1 fit with a component
                # duplicated: an EM fixed point with exactly its likelihood
                for spread in (SPLIT_SPREAD, 0.0):
                    other = _split_fit(previous[1], k, ct, params, X, sample_weight, columns, callback, spread)
                    other_row = None if other is None else criteria(other, X, sample_weight, columns)
                    if other_row is not None and other_row["log_likelihood"] > row["log_likelihood"]:
                        est, start, row = other, "split", other_row
                    if row["log_likelihood"] >= previous[2]:
                        break
            row.update(
                model=cls.__name__,
                n_components=k,
                covariance_type=ct,
                start=start,
                converged=bool(est.converged_),
                degenerate=bool(degenerate_components(est)),
                n_iter=int(est.n_iter_),
                seconds=time.perf_counter() - started,
            )
            table.append({c: row[c] for c in COLUMNS})
            estimators.append(est)
            previous = (k, est, row["log_likelihood"])
        if variational:
            started = time.perf_counter()
            est = BayesianGaussianMixture(n_components=max(ks), covariance_type=ct, **shared).fit(
                X, sample_weight=sample_weight, columns=columns, callback=callback
            )
            nan = math.nan
            table.append(dict(
                model=VARIATIONAL, n_components=len(used_components(est)), covariance_type=ct,
                start=_start_name(shared.get("init_params", "kmeans")), log_likelihood=nan, n_parameters=nan, bic=nan,
                aic=nan, icl=nan, caic=nan, sabic=nan, relative_entropy=nan, converged=bool(est.converged_),
                degenerate=bool(set(degenerate_components(est)) & set(used_components(est))),
                n_iter=int(est.n_iter_), seconds=time.perf_counter() - started,
            ))
            estimators.append(est)

    candidates = [i for i, r in enumerate(table) if r["model"] != VARIATIONAL and estimators[i] is not None]
    if not candidates:
        rule = "under mclust's stopping rule " if mclust_rule else ""
        raise NumericalError(f"every candidate's fit turned singular or lost a component {rule}(mclust's table "
                             "would be all missing); pass reg_covar > 0, prior='default', fewer components, "
                             "dtype='float64'" + (", or stopping='gain' to re-seed the components and go on"
                                                  if mclust_rule else ""))
    if failed:
        warnings.warn(
            f"candidates {_names([(k, ct) for k, ct, _ in failed])} failed ({failed[0][2]}); their rows are missing "
            "(NaN, as mclust shows a missing BIC) and never chosen. A start with a cluster of fewer rows than "
            "features does this: dtype='float64' or a larger reg_covar may fit them",
            DegenerateFitWarning,
            stacklevel=2,
        )
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


SPLIT_SPREAD = math.sqrt(2.0 / math.pi)


def _survey(X, s, params, sample_weight, columns) -> tuple[int, int, HCTree | None]:
    """The rows and features of X, and the hierarchical tree every candidate starts from
    (built once, when ``init_params`` is 'hc')."""
    est = GaussianMixture(**{k: v for k, v in params.items() if k != "init_params"})
    # (part of the fits: where a client sends them, the survey and the tree go too)
    with est._execution(X, est._settings(), sample_weight, columns, fitting=True) as (engine, source, _):
        tree = None
        if isinstance(s.init_params, str) and s.init_params == "hc":
            generator = torch.Generator().manual_seed(_params.random_seed(_params.shared_state(s.random_state,
                                                                                              engine)))
            tree = build(source, generator=generator, engine=engine, offset=source.shift)
        return source.n_rows, source.n_features, tree


def _mclust_types(n_rows: int, n_features: int, prior) -> list[str]:
    """mclust's default models for the data: E and V for one feature; the 14 multivariate
    ones, only the spherical and diagonal six when n <= d; none without a prior for EVE,
    VEE, VVE, EVV when there is one (mclustBIC's rules)."""
    if n_features == 1:
        return list(UNIVARIATE)
    types = list(MULTIVARIATE) if n_rows > n_features else list(MULTIVARIATE[:6])
    return [t for t in types if prior is None or t not in NO_PRIOR]


def _start_name(init) -> str:
    return "hc" if isinstance(init, HCTree) else str(init)


def _split_fit(smaller: GaussianMixture, k: int, ct: str, params: dict, X, sample_weight, columns, callback,
               spread: float):
    """The K fit started from the K - 1 fit with one component split: the one of largest
    weight x total variance, into two halves of its weight, means moved +- ``spread``
    standard deviations along its principal axis (sqrt(2 / pi): the means of a
    Gaussian's two halves; 0: an exact duplicate, where EM stays), its covariance
    copied (so every constraint of the structure still holds)."""
    st = structure(ct)
    K, D = smaller.means_.shape
    cov = torch.as_tensor(np.asarray(smaller.covariances_, dtype=np.float64))
    dense = st.dense(cov, K, D).numpy()
    c = int(np.argmax(smaller.weights_ * np.trace(dense, axis1=1, axis2=2)))
    val, vec = np.linalg.eigh(dense[c])
    step = spread * math.sqrt(max(val[-1], 0.0)) * vec[:, -1]
    weights = np.r_[smaller.weights_, smaller.weights_[c] / 2]
    weights[c] /= 2
    means = np.r_[smaller.means_, (smaller.means_[c] + step)[None]]
    means[c] = means[c] - step
    precisions = np.asarray(smaller.precisions_, dtype=np.float64)
    if st.kernel != "tied":
        precisions = np.concatenate([precisions, precisions[c:c + 1]])
    start = {**params, "init_params": "kmeans", "n_init": 1}  # every parameter is given: no k-means runs
    try:
        return GaussianMixture(k, covariance_type=ct, weights_init=weights, means_init=means,
                               precisions_init=precisions, **start).fit(
            X, sample_weight=sample_weight, columns=columns, callback=callback)
    except (ParameterError, ValueError):  # a start the structure cannot hold: the other start stands
        return None


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
    """Total log-likelihood, n_parameters, BIC, AIC, ICL, CAIC, SABIC and the relative
    entropy of a fitted mixture on X (:func:`~bigem.estimators._mixture.criteria_of`), in
    one streamed pass (the memory of a chunk; the weights read with the rows), and
    ``weight``: the rows' total weight (their count when unweighted). With engine='torch'
    under torchrun, a collective: every process scores its own part of X."""
    if isinstance(sample_weight, str) and columns is None:  # the weight column is not a feature
        columns = [str(c) for c in est.feature_names_in_]
    t = est._score_totals(X, columns, sample_weight, together=True, entropy=True)  # a torch group: all its parts
    return criteria_of(t, est._n_parameters(), int(np.shape(est.weights_)[0]))


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
    names = ALL_NAMES if cls is GaussianMixture else tuple(getattr(choice, "options", ()))
    extra = " or 'mclust'" if cls is GaussianMixture else ""
    if value is None:
        return list(COVARIANCE_ORDER) if cls is GaussianMixture else list(names) or [None]
    if not names:
        raise ParameterError(f"covariance types apply to the Gaussian family (and a mixed family's Gaussian block), "
                             f"not to family={family!r}; leave covariance_types out")
    types = [value] if isinstance(value, str) else list(value)
    if not types:
        raise ParameterError("covariance_types is empty; give at least one of " + ", ".join(names) + extra)
    for t in types:
        if t not in names:
            raise ParameterError(f"unknown covariance type {t!r}; choose from {list(names)}" + extra)
    return list(dict.fromkeys(types))


def _names(cands: list[tuple[int, str]]) -> str:
    return ", ".join(f"K={k}" if ct is None else f"K={k} {ct}" for k, ct in cands)


def _in_memory_rows(X) -> int | None:
    """X's row count where it is in memory (an array, tensor or data frame); None for
    files and other sources, whose rows are counted by the fits."""
    from ..sources import is_file_input, is_source

    if is_file_input(X) or is_source(X):
        return None
    shape = getattr(X, "shape", None)
    known = shape is not None and len(shape) == 2 and isinstance(shape[0], (int, np.integer))  # (a Dask frame's is not)
    return int(shape[0]) if known else None
