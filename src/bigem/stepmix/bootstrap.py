"""``stepmix.bootstrap``: the bootstrap of a fitted StepMix, and the bootstrap likelihood
ratio test (BLRT) of K against K + 1 classes, as StepMix runs them. (bigem's own
:func:`bigem.blrt` draws from the null model alike, and reports the Monte Carlo p-value
(1 + count) / (n_boot + 1), which is never 0; StepMix's, here, is count / n_repetitions.)"""

from __future__ import annotations

import itertools

import numpy as np

__all__ = ["blrt", "blrt_sweep", "bootstrap", "find_best_permutation", "mse"]


def mse(x, y):
    """The mean squared difference of two arrays."""
    return float(np.mean(np.square(np.subtract(x, y))))


def find_best_permutation(reference, target, criterion=mse):
    """The order of ``target``'s columns (n, K) that brings it closest to ``reference`` by
    ``criterion``: StepMix's search over every permutation (the first in lexicographic
    order where several tie); with the mean squared difference and more than 8 columns,
    an assignment (the same minimum, which a sum over columns decomposes)."""
    reference, target = np.asarray(reference), np.asarray(target)
    K = reference.shape[1]
    if criterion is mse and K > 8:
        from scipy.optimize import linear_sum_assignment

        cost = np.square(reference[:, :, None] - target[:, None, :]).sum(0)
        return linear_sum_assignment(cost)[1]
    best, order = np.inf, None
    for perm in itertools.permutations(range(K)):
        score = criterion(reference, target[:, list(perm)])
        if score < best:
            best, order = score, perm
    return np.array(order)


def bootstrap(estimator, X, Y=None, n_repetitions=1000, sample_weight=None, parametric=False, sampler=None,
              identify_classes=True, progress_bar=True, random_state=None):
    """StepMix's bootstrap of a fitted estimator: (the parameter frames of every
    repetition, or None without ``identify_classes``; each repetition's LL and avg_LL).
    See :meth:`bigem.StepMix.bootstrap`."""
    return estimator.bootstrap(X, Y, n_repetitions=n_repetitions, sample_weight=sample_weight, parametric=parametric,
                               sampler=sampler, identify_classes=identify_classes, progress_bar=progress_bar,
                               random_state=random_state)


def blrt(null_model, alternative_model, X, Y=None, n_repetitions=30, random_state=42):
    """StepMix's BLRT p-value of ``null_model`` (K classes) against
    ``alternative_model`` (K + 1): both are fitted on X (and Y); then, n_repetitions
    times, a data set drawn from the fitted null model is fitted by each from scratch,
    and the p-value is the share of those likelihood ratios above the observed one."""
    n = int(np.shape(X)[0])
    null_model.fit(X, Y)
    alternative_model.fit(X, Y)
    observed = 2 * (alternative_model.score(X, Y) - null_model.score(X, Y)) * n
    kw = dict(n_repetitions=n_repetitions, identify_classes=False, sampler=null_model, random_state=random_state,
              parametric=True)
    print("Bootstrapping null model...")
    _, null = null_model.bootstrap(X, Y, **kw)
    print("\nBootstrapping alternative model...")
    _, alternative = alternative_model.bootstrap(X, Y, **kw)
    drawn = 2 * (alternative["LL"] - null["LL"])
    return float(np.sum(drawn > observed)) / n_repetitions


def blrt_sweep(model, X, Y=None, low=1, high=5, n_repetitions=30, random_state=42, verbose=True):
    """StepMix's BLRT for each number of classes k in [low, high): k against k + 1, with
    ``model``'s settings; a DataFrame of p-values indexed by "k vs. k + 1 classes".
    As StepMix's, it names each test as it starts whatever ``verbose`` says (``verbose``
    prints the table at the end)."""
    import pandas as pd

    tests, p_values = [], []
    for k in range(low, high):
        print(f"Testing {k} vs. {k + 1} classes...")
        null_model = type(model)(**{**model.get_params(deep=False), "n_components": k})
        alternative_model = type(model)(**{**model.get_params(deep=False), "n_components": k + 1})
        p_values.append(blrt(null_model, alternative_model, X, Y=Y, n_repetitions=n_repetitions,
                             random_state=random_state))
        tests.append(f"{k} vs. {k + 1} classes")
    df = pd.DataFrame({"Test": tests, "p": p_values}).set_index("Test")
    if verbose:
        print("\nBLRT Sweep Results")
        print(df.round(4))
    return df
