"""Bootstrap inference for fitted mixtures: standard errors and intervals of the
parameters (mclust's ``MclustBootstrap``, StepMix's ``bootstrap``), and the bootstrap
likelihood ratio test of the number of components (:func:`blrt`, StepMix's ``blrt``).

Each replicate refits the mixture on a resampled version of the same rows, started
from the fitted parameters (a warm start, so a replicate takes a few passes and keeps
the components' order). The rows are never copied: a replicate is the same X with
sample weights, so files, tensors and DataFrames stream as in ``fit``:

* ``"nonparametric"``: rows drawn with replacement, as frequency weights (each row's
  count in a multinomial draw of n rows): Efron's bootstrap, mclust's ``type = "bs"``;
* ``"weighted"``: independent Exp(1) weights, the weighted likelihood bootstrap
  (Newton and Raftery 1994), mclust's ``type = "wlbs"``: every row keeps some weight,
  so a small component is never left without rows;
* ``"parametric"``: n rows drawn from the fitted model itself, in memory (mclust's
  ``type = "pb"``, StepMix's ``parametric=True``); X is read only to count its rows.

A replicate whose draws left a component without rows (a small component's few rows
not drawn) re-seeds it elsewhere: that is not a replicate of the component, so, as
mclust's missing replicates, its parameters are NaN and the standard errors and
intervals are taken over the others, with a ComponentReseededWarning that counts them
(the weighted likelihood bootstrap keeps every row and seldom loses one).

A replicate's components are matched to the fitted ones before the statistics are
taken, in case a replicate swapped two: the permutation under which the two models'
posteriors agree most on rows drawn from the fitted model (StepMix aligns its replicates
by posteriors too, on the data). Parameters alone cannot tell: two components of equal
weights make the weights' noise look like a swap.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import warnings
from dataclasses import dataclass

import numpy as np

from .._core.errors import ComponentLostError, ComponentReseededWarning, ConvergenceWarning, ParameterError
from ..sources.inputs import has_column_names
from . import _params

METHODS = ("nonparametric", "weighted", "parametric")
_EXHAUSTIVE = 7  # up to this many components, the matching tries every permutation
_MATCHING_ROWS = 2000  # rows drawn from the fitted model to match a replicate's components on


@dataclass
class BootstrapResult:
    """The replicates of a fitted mixture's parameters.

    Attributes
    ----------
    method : str
        'nonparametric', 'weighted' or 'parametric'.
    estimate : dict of str to ndarray
        The fitted parameters, by attribute name (``weights_``, ``means_``, ...; a list of
        arrays, such as a categorical mixture's ``probabilities_``, one entry per array:
        ``probabilities_[0]``, ...).
    replicates : dict of str to ndarray
        Each parameter's replicates, shape (n_boot, ...its shape), components matched to
        the estimate's; NaN in the replicates that lost a component.
    converged : ndarray of bool, shape (n_boot,)
        Whether each replicate's fit converged within ``max_iter``.
    lost : ndarray of bool, shape (n_boot,)
        Whether a replicate's draws left a component without rows (it was re-seeded):
        such replicates are left out of ``se`` and ``ci``.
    """

    method: str
    estimate: dict[str, np.ndarray]
    replicates: dict[str, np.ndarray]
    converged: np.ndarray
    lost: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.lost is None:
            self.lost = np.zeros(self.converged.shape, dtype=bool)

    @property
    def n_boot(self) -> int:
        return int(self.converged.shape[0])

    def se(self) -> dict[str, np.ndarray]:
        """Bootstrap standard errors: each entry's standard deviation over the replicates
        (those that kept every component; NaN with fewer than two)."""
        kept = ~self.lost
        if kept.sum() < 2:
            return {name: np.full(r.shape[1:], np.nan) for name, r in self.replicates.items()}
        return {name: r[kept].std(axis=0, ddof=1) for name, r in self.replicates.items()}

    def ci(self, level: float = 0.95) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Percentile intervals: each entry's (lower, upper) quantiles of the replicates at
        (1 - level) / 2 and (1 + level) / 2."""
        if not 0.0 < float(level) < 1.0:
            raise ParameterError(f"level must be in (0, 1), e.g. 0.95; got {level!r}")
        q, kept = (1.0 - float(level)) / 2.0, ~self.lost
        if not kept.any():
            return {name: (np.full(r.shape[1:], np.nan),) * 2 for name, r in self.replicates.items()}
        return {name: (np.quantile(r[kept], q, axis=0), np.quantile(r[kept], 1.0 - q, axis=0))
                for name, r in self.replicates.items()}

    def summary(self, level: float = 0.95) -> str:
        """The estimate, its standard error and its interval, per parameter, as text."""
        se, ci = self.se(), self.ci(level)
        lost = f"; {int(self.lost.sum())} lost a component, left out" if self.lost.any() else ""
        lines = [f"Bootstrap of {self.n_boot} replicates ({self.method}; {int(self.converged.sum())} converged{lost}), "
                 f"{level:.0%} percentile intervals"]
        with np.printoptions(precision=4, suppress=True, linewidth=100):
            for name, value in self.estimate.items():
                lines += [f"{name}:", f"  estimate {np.array2string(value, prefix='           ')}",
                          f"  se       {np.array2string(se[name], prefix='           ')}",
                          f"  lower    {np.array2string(ci[name][0], prefix='           ')}",
                          f"  upper    {np.array2string(ci[name][1], prefix='           ')}"]
        return "\n".join(lines)


def bootstrap(est, X, y=None, *, n_boot: int = 100, method: str = "nonparametric", random_state=None,
              columns=None, sample_weight=None) -> BootstrapResult:
    """Replicates of ``est``'s fitted parameters (see the module docstring); ``est`` is left
    as it is. ``sample_weight``: the fit's own weights (an array, one per row), which
    each replicate's draws multiply (the parametric bootstrap draws fresh rows, and has
    none)."""
    _check_n_boot(n_boot)
    if method not in METHODS:
        raise ParameterError(f"method must be one of {list(METHODS)}; got {method!r}")
    est._fitted()
    if y is None and getattr(est, "classes_", None) is not None and method != "parametric":
        raise ParameterError(f"this {type(est).__name__} was fitted with labels (classes_ "
                             f"{np.asarray(est.classes_).tolist()}): pass them, est.bootstrap(X, y), so that every "
                             "replicate refits with them; without y each would be an unlabelled clustering")
    named = has_column_names(X) or hasattr(X, "columns")
    if columns is None and getattr(est, "feature_names_in_", None) is not None and named:
        columns = [str(c) for c in est.feature_names_in_]  # refits read the columns the fit read (an id beside)
    K = int(np.shape(est.weights_)[0])
    shared = est._shared_parameters()
    estimate = _parameters(est)
    n = est._score_totals(X, columns).rows  # one pass: the rows' count, whatever X is
    base = base_weights(sample_weight, n)
    rng = np.random.default_rng(_params.check_seed(random_state))
    probe, reference = _probe(est, int(rng.integers(2**31 - 1)))
    draws: dict[str, list[np.ndarray]] = {name: [] for name in estimate}
    converged, lost = [], []
    for _ in range(int(n_boot)):
        replicate = copy.deepcopy(est)  # each replicate starts from the fitted parameters
        replicate.set_params(warm_start=True, verbose=0)
        with _replicate() as outcome:
            if method == "parametric":  # drawn rows carry no labels: each replicate is a clustering
                rows, _ = _drawn(est, n, int(rng.integers(2**31 - 1)))
                _unlabelled(replicate).fit(rows)
            else:
                replicate.fit(X, y, sample_weight=drawn_weights(rng, n, method, base), columns=columns)
        converged.append(not outcome.failed and bool(replicate.converged_))
        lost.append(outcome.lost)
        if outcome.lost:
            for name, value in estimate.items():
                draws[name].append(np.full_like(value, np.nan))
            continue
        order = _best_order(reference, replicate.predict_proba(probe))
        for name, value in _parameters(replicate).items():
            draws[name].append(value if name in shared or value.shape[:1] != (K,) else value[order])
    return _result(method, estimate, draws, converged, lost)


def structural_bootstrap(est, X, Y, *, n_boot: int = 100, method: str = "nonparametric", random_state=None,
                         columns=None, sample_weight=None) -> BootstrapResult:
    """Replicates of a fitted :class:`~bigem.StructuralModel`'s parameters: each one
    refits the measurement model (from its fit) and then the structural steps, on the
    rows reweighted as in :func:`bootstrap`, so the standard errors carry the first
    step's uncertainty, which the stepwise estimators' own fits hold fixed (Bakk, Oberski
    & Vermunt 2014). Classes are matched to the fit's through the measurement model's
    posteriors on rows drawn from it."""
    _check_n_boot(n_boot)
    if method not in METHODS[:2]:
        raise ParameterError(f"method must be one of {list(METHODS[:2])} for a structural model (its outcomes and "
                             f"covariates are not drawn from a model); got {method!r}")
    est._check_fitted()
    measurement = est.measurement_
    named = has_column_names(X) or hasattr(X, "columns")
    if columns is None and getattr(measurement, "feature_names_in_", None) is not None and named:
        columns = [str(c) for c in measurement.feature_names_in_]  # refits read the columns the fit read
    K = int(np.shape(est.weights_)[0])
    estimate = est._parameters()
    n = measurement._score_totals(X, columns).rows
    base = base_weights(sample_weight, n)
    rng = np.random.default_rng(_params.check_seed(random_state))
    probe, reference = _probe(measurement, int(rng.integers(2**31 - 1)))
    draws: dict[str, list[np.ndarray]] = {name: [] for name in estimate}
    converged, lost = [], []
    for _ in range(int(n_boot)):
        weights = drawn_weights(rng, n, method, base)
        first = copy.deepcopy(measurement)  # started from the fit: a few passes, the classes in order
        first.set_params(warm_start=True, verbose=0)
        replicate = None
        with _replicate() as outcome:
            first.fit(X, sample_weight=weights, columns=columns)
            replicate = copy.deepcopy(est).set_params(measurement=first)
            replicate.fit(X, Y, sample_weight=weights, columns=columns)
        converged.append(not outcome.failed and bool(first.converged_ and replicate.converged_))
        lost.append(outcome.lost)
        if outcome.lost:
            for name, value in estimate.items():
                draws[name].append(np.full_like(value, np.nan))
            continue
        order = _best_order(reference, first.predict_proba(probe))
        for name, value in replicate._parameters().items():
            draws[name].append(value[order] if value.shape[:1] == (K,) else value)
    return _result(method, estimate, draws, converged, lost)


@dataclass
class _Outcome:
    """What became of a replicate's refit: ``lost`` a component (re-seeded, or, under
    mclust's stopping rule, the fit ``failed`` there, as mclust's replicate does)."""

    lost: bool = False
    failed: bool = False


@contextlib.contextmanager
def _replicate():
    """A replicate's refit: its ConvergenceWarning silenced (``converged`` records it), a
    re-seeded component or a ComponentLostError (a component lost under mclust's rule)
    noted in the :class:`_Outcome` it yields, every other warning passed on."""
    outcome = _Outcome()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield outcome
        except ComponentLostError:  # (any other error is the caller's to see)
            outcome.lost = outcome.failed = True
    for w in caught:
        if issubclass(w.category, ComponentReseededWarning):
            outcome.lost = True
        elif not issubclass(w.category, ConvergenceWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def _result(method: str, estimate: dict, draws: dict, converged: list, lost: list) -> BootstrapResult:
    """The replicates stacked, with a warning that counts those that lost a component."""
    if any(lost):
        advice = ("method='weighted' keeps every row in every replicate" if method == "nonparametric"
                  else "fewer components may suit these data")
        warnings.warn(f"{sum(lost)} of {len(lost)} bootstrap replicates left a component without rows (it was "
                      f"re-seeded elsewhere, or under mclust's stopping rule its fit ended there); their parameters "
                      f"are NaN and se() and ci() leave them out; {advice}",
                      ComponentReseededWarning, stacklevel=3)
    return BootstrapResult(method, estimate, {k: np.stack(v) for k, v in draws.items()}, np.array(converged),
                           np.array(lost, dtype=bool))


def _check_n_boot(n_boot) -> None:
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 2:
        raise ParameterError(f"n_boot must be an int >= 2 (the number of replicates); got {n_boot!r}")


def base_weights(sample_weight, n: int) -> np.ndarray | None:
    """The fit's own row weights, which each replicate's draws multiply (None: none)."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, str):
        raise ParameterError(f"sample_weight={sample_weight!r} names a column; the bootstrap multiplies the weights by "
                             "its draws, so pass them as an array (one per row)")
    base = np.asarray(sample_weight, dtype=np.float64).reshape(-1)
    if base.shape != (n,):
        raise ParameterError(f"sample_weight has {base.shape[0]} weights, but X has {n} rows; pass one per row")
    return base


def drawn_weights(rng: np.random.Generator, n: int, method: str, base: np.ndarray | None) -> np.ndarray:
    """One replicate's row weights: each row's count in n draws with replacement
    ('nonparametric'), or an Exp(1) weight ('weighted'), times ``base``."""
    draws = (rng.multinomial(n, np.full(n, 1.0 / n)) if method == "nonparametric"
             else rng.exponential(size=n)).astype(np.float64)
    return draws if base is None else draws * base


def _parameters(est) -> dict[str, np.ndarray]:
    """The fitted parameters by public attribute name; lists of arrays by element."""
    out = {}
    for stored in est._fitted_arrays:
        name = stored.lstrip("_")
        value = getattr(est, name)
        if isinstance(value, (list, tuple)):
            out.update({f"{name}[{j}]": np.array(v, dtype=np.float64) for j, v in enumerate(value)})
        else:
            out[name] = np.array(value, dtype=np.float64)
    return out


def _drawn(est, n: int, seed: int):
    """n rows drawn from the fitted model, in the form it was fitted on, and their components."""
    sampler = copy.deepcopy(est)
    sampler.random_state = seed
    rows, components = sampler.sample(n)
    return _as_fitted(est, rows), components


def _probe(est, seed: int):
    """Rows drawn from the fitted model and their posteriors under it: what a
    replicate's components are matched on."""
    rows, _ = _drawn(est, _MATCHING_ROWS, seed)
    return rows, est.predict_proba(rows)


def _best_order(reference: np.ndarray, posteriors: np.ndarray) -> np.ndarray:
    """The order of a replicate's components that agrees most with the fit's: order[k]
    is the replicate's component for fitted component k, maximising
    sum_k sum_rows reference[row, k] posteriors[row, order[k]] (every permutation up to
    ``_EXHAUSTIVE`` components, the best pairs first beyond)."""
    agree = np.asarray(reference, dtype=np.float64).T @ np.asarray(posteriors, dtype=np.float64)  # (K, K)
    K = agree.shape[0]
    if K <= _EXHAUSTIVE:
        perms = np.array(list(itertools.permutations(range(K))))
        return perms[int(np.argmax(agree[np.arange(K), perms].sum(1)))]
    order = np.full(K, -1)
    for flat in np.argsort(-agree, axis=None):
        i, j = divmod(int(flat), K)
        if order[i] < 0 and j not in order:
            order[i] = j
    return order


@dataclass
class BLRTResult:
    """The bootstrap likelihood ratio test of K against more components (:func:`blrt`).

    Attributes
    ----------
    statistic : float
        2 (log L of the alternative - log L of the null) on the data.
    p_value : float
        (1 + the replicates whose statistic reaches it) / (n_boot + 1).
    bootstrap_statistics : ndarray, shape (n_boot,)
        The statistic on each data set drawn from the fitted null model.
    null_components, alternative_components : int
    """

    statistic: float
    p_value: float
    bootstrap_statistics: np.ndarray
    null_components: int
    alternative_components: int

    def __str__(self) -> str:
        return (f"BLRT {self.null_components} vs {self.alternative_components} components: "
                f"-2 log LR = {self.statistic:.4f}, p = {self.p_value:.4g} ({self.bootstrap_statistics.size} replicates)")


def blrt(null, alternative, X, *, n_boot: int = 30, random_state=None, columns=None) -> BLRTResult:
    """Bootstrap likelihood ratio test (McLachlan 1987; Nylund et al. 2007): does the
    ``alternative`` mixture's extra components fit X better than chance would?

    ``null`` and ``alternative`` are mixtures of one family, the alternative with more
    components, fitted to X (fitted here, on copies, where they are not). The statistic
    is 2 (log L_alt - log L_null). Its distribution under the null comes from ``n_boot``
    data sets of X's size drawn from the fitted null model, each fitted by both models
    from fresh starts with their own settings (give them ``n_init`` > 1 so that a
    replicate's alternative fit does not stop in a poor local optimum). The p-value is
    (1 + the replicates whose statistic reaches the observed one) / (n_boot + 1), a
    valid Monte Carlo p-value (StepMix's ``blrt`` counts the replicates alone and
    divides by n_boot, which can give 0). ``random_state`` (an int, a numpy Generator
    or None) seeds the draws and the replicates' fits; ``columns`` selects X's
    features, as in ``fit``.
    """
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise ParameterError(f"n_boot must be an int >= 1 (the number of simulated data sets); got {n_boot!r}")
    from ._mixture import _BaseMixture

    for m in (null, alternative):
        if not isinstance(m, _BaseMixture):
            raise ParameterError(f"blrt compares two bigem mixtures (GaussianMixture, BernoulliMixture, ...); got "
                                 f"{type(m).__name__}" + (": an HMM's replicates would be sequences, which blrt does "
                                                          "not draw; compare HMMs by bic() or aic()"
                                                          if "HMM" in type(m).__name__ else ""))
    if type(null) is not type(alternative):
        raise ParameterError(f"null and alternative must be mixtures of one family; got {type(null).__name__} and "
                             f"{type(alternative).__name__}")
    null, alternative = (m if hasattr(m, "converged_") else _fresh(m, m.random_state).fit(X, columns=columns)
                         for m in (null, alternative))
    k0, k1 = (int(np.shape(m.weights_)[0]) for m in (null, alternative))
    if k1 <= k0:
        raise ParameterError(f"the alternative must have more components than the null; got {k1} against {k0}")
    n = null._score_totals(X, columns).rows
    statistic = 2.0 * (alternative.score(X, columns=columns) - null.score(X, columns=columns)) * n
    if statistic < 0:  # the test compares the two maxima; this alternative is short of its own
        warnings.warn(f"The alternative ({k1} components) fits X worse than the null ({k0}): 2 log LR = "
                      f"{statistic:.4g} < 0, so its fit stopped in a poor local optimum and the p-value says "
                      f"nothing; fit it again with a larger n_init (or from the null's components)",
                      ConvergenceWarning, stacklevel=2)
    rng = np.random.default_rng(_params.check_seed(random_state))
    draws = []
    for _ in range(int(n_boot)):
        seed = int(rng.integers(2**31 - 1))
        rows, _ = _drawn(null, n, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits = [_unlabelled(_fresh(m, seed)).fit(rows) for m in (null, alternative)]
        draws.append(2.0 * (fits[1].score(rows) - fits[0].score(rows)) * n)
    draws = np.array(draws)
    p_value = (1.0 + float((draws >= statistic).sum())) / (len(draws) + 1.0)
    return BLRTResult(float(statistic), p_value, draws, k0, k1)


def _fresh(est, random_state):
    """An unfitted copy of ``est``'s settings, with ``random_state``."""
    params = est.get_params(deep=False)
    params.update(random_state=random_state, warm_start=False, verbose=0)
    return type(est)(**params)


def _unlabelled(est):
    """``est`` set to fit rows without labels (drawn rows have none), as it would without y."""
    if getattr(est, "unlabeled_weight", None) is not None:
        est.set_params(unlabeled_weight=None)
    return est


def _as_fitted(est, rows):
    """Rows drawn from ``est`` in the form it was fitted on: a DataFrame with its
    feature names where it had them (a mixed-type mixture names its columns' families)."""
    names = getattr(est, "feature_names_in_", None)
    if names is None:
        return rows
    import pandas as pd

    return pd.DataFrame(rows, columns=list(names))
