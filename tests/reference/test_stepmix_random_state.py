"""The discrete and mixed-type mixtures give StepMix 3's fit from the same int
``random_state``, with ``init_params="random"`` (StepMix's default start): its uniform
responsibility table from numpy's RandomState, the components' M-step from it, and
uniform weights; restarts one after another from the same stream. Before, bigem's
'random' start took the weights from the table, and the fits parted from StepMix's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bigem

stepmix = pytest.importorskip("stepmix")


def stepmix_fit(X, measurement, K, rs, iters, n_init=1):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return stepmix.StepMix(n_components=K, measurement=measurement, random_state=rs, n_init=n_init,
                               max_iter=iters, abs_tol=0, verbose=0, progress_bar=0).fit(X)


def ours(cls, X, K, rs, iters, n_init=1, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        return cls(K, init_params="random", random_state=rs, n_init=n_init, max_iter=iters, tol=0, alpha=0.0,
                   dtype="float64", **kw).fit(X)


@pytest.mark.parametrize("gaps", [False, True])
def test_latent_class_analysis_of_binary_items_is_stepmixs_fit(gaps):
    rng = np.random.default_rng(0)
    K = 3
    X = (rng.random((500, 6)) < rng.uniform(0.1, 0.9, (K, 6))[rng.integers(0, K, 500)]).astype(float)
    if gaps:
        X[rng.random(X.shape) < 0.1] = np.nan
    for rs in range(3):
        ref = stepmix_fit(X, "binary_nan" if gaps else "binary", K, rs, 30)
        m = ours(bigem.BernoulliMixture, X, K, rs, 30, missing_values="fiml" if gaps else "error")
        np.testing.assert_allclose(m.weights_, ref.weights_, atol=1e-12)
        np.testing.assert_allclose(m.probabilities_, ref.get_parameters()["measurement"]["pis"], atol=1e-12)


@pytest.mark.parametrize("n_init", [1, 3])
def test_latent_class_analysis_of_categories_is_stepmixs_fit(n_init):
    rng = np.random.default_rng(1)
    X = np.stack([rng.integers(0, m, 600) for m in (3, 3, 4, 2)], 1)
    for rs in range(2):
        ref = stepmix_fit(X, "categorical", 3, rs, 25, n_init)
        m = ours(bigem.CategoricalMixture, X, 3, rs, 25, n_init)
        np.testing.assert_allclose(m.weights_, ref.weights_, atol=1e-12)
        assert m.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-12)  # the same restart kept
        pis = ref.get_parameters()["measurement"]["pis"]  # (K, columns x 4 outcomes), padded
        for j, probs in enumerate(m.probabilities_):
            np.testing.assert_allclose(probs, pis[:, 4 * j: 4 * j + probs.shape[1]], atol=1e-12)


def test_mixed_data_is_stepmixs_fit():
    rng = np.random.default_rng(2)
    z = rng.integers(0, 2, 600)
    df = pd.DataFrame({"g1": rng.normal(2.0 * z, 1.0), "g2": rng.normal(-z, 1.5),
                       "c1": np.minimum(rng.integers(0, 3, 600) + 3 * z, 4),
                       "b1": (rng.random(600) < 0.3 + 0.4 * z).astype(float)})
    desc = {"g": {"model": "gaussian_diag", "n_columns": 2}, "c": {"model": "categorical", "n_columns": 1},
            "b": {"model": "binary", "n_columns": 1}}
    families = {"g1": "gaussian", "g2": "gaussian", "c1": "categorical", "b1": "bernoulli"}
    for rs in range(2):
        ref = stepmix_fit(df.to_numpy(float), desc, 2, rs, 20)
        m = ours(bigem.MixedMixture, df, 2, rs, 20, families=families)
        np.testing.assert_allclose(m.weights_, ref.weights_, atol=1e-12)
        np.testing.assert_allclose(m.means_, ref._mm.models["g"].parameters["means"], atol=1e-12)
        np.testing.assert_allclose(m.bernoulli_probabilities_, ref._mm.models["b"].parameters["pis"], atol=1e-12)


def test_latent_class_criteria_are_stepmixs():
    """caic, entropy and relative_entropy, which latent class analysis reports beside BIC
    and AIC, equal StepMix's; sabic is Sclove's, -2 log L + p log((n + 2) / 24), as Mplus
    computes it: StepMix's takes log(n (n + 2) / 24), p log n more (different on purpose)."""
    rng = np.random.default_rng(1)
    X = np.stack([rng.integers(0, m, 600) for m in (3, 3, 4, 2)], 1)
    ref = stepmix_fit(X, "categorical", 3, 0, 50)
    m = ours(bigem.CategoricalMixture, X, 3, 0, 50)
    for name in ("bic", "aic", "caic", "entropy", "relative_entropy"):
        assert getattr(m, name)(X) == pytest.approx(getattr(ref, name)(X), rel=1e-10), name
    p, n = m._n_parameters(), len(X)
    assert m.sabic(X) == pytest.approx(ref.sabic(X) - p * np.log(n), rel=1e-10)
    assert m.sabic(X) == pytest.approx(-2 * m.score(X) * n + p * np.log((n + 2) / 24), rel=1e-12)


def test_one_step_distal_outcome_model_is_a_mixed_mixture_with_the_outcome_columns():
    """StepMix's 1-step estimator of a distal outcome fits p(x | k) p(y | k) jointly: a
    mixed mixture whose columns are the items and the outcome, the same fit from the
    same random_state."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 800)
    X = (rng.random((800, 5)) < np.where(z[:, None] == 1, 0.8, 0.2)).astype(float)
    Y = rng.normal(2.0 * z, 1.0)[:, None]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = stepmix.StepMix(n_components=2, measurement="binary", structural="gaussian_diag", n_steps=1,
                              random_state=0, max_iter=50, abs_tol=0, verbose=0, progress_bar=0).fit(X, Y)
    frame = pd.DataFrame(np.c_[X, Y], columns=[f"x{j}" for j in range(5)] + ["y"])
    families = {**{f"x{j}": "bernoulli" for j in range(5)}, "y": "gaussian"}
    m = ours(bigem.MixedMixture, frame, 2, 0, 50, families=families)
    np.testing.assert_allclose(m.weights_, ref.weights_, atol=1e-12)
    np.testing.assert_allclose(m.means_, ref.get_parameters()["structural"]["means"], atol=1e-12)
    np.testing.assert_allclose(m.bernoulli_probabilities_, ref.get_parameters()["measurement"]["pis"], atol=1e-12)


def test_stepmixs_start_holds_beyond_twenty_thousand_rows():
    """StepMix's table of uniform draws is drawn whole while it holds at most
    ``RANDOM_TABLE_VALUES`` numbers (here 60 000 rows x 3): before, a source of more than
    20 000 rows took bigem's own draws, and the fit parted from StepMix's."""
    rng = np.random.default_rng(4)
    X = (rng.random((60_000, 6)) < rng.uniform(0.1, 0.9, (3, 6))[rng.integers(0, 3, 60_000)]).astype(float)
    ref = stepmix_fit(X, "binary", 3, 0, 5)
    m = ours(bigem.BernoulliMixture, X, 3, 0, 5)
    np.testing.assert_allclose(m.probabilities_, ref.get_parameters()["measurement"]["pis"], atol=1e-12)
