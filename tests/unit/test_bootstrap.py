"""Bootstrap standard errors of a fitted mixture against closed forms, and what the
replicates must keep: the components' order, the estimator, reproducibility."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import bigem
from bigem._core.errors import ComponentReseededWarning, ConvergenceWarning, NotFittedError, ParameterError
from bigem.estimators.bootstrap import _best_order


def two_groups(n=2000, share=0.3, seed=0):
    rng = np.random.default_rng(seed)
    m = int(share * n)
    return np.concatenate([rng.normal(0, 1, (m, 2)), rng.normal(5, 1, (n - m, 2))])


@pytest.mark.parametrize("method", ["nonparametric", "weighted", "parametric"])
def test_standard_errors_are_the_closed_forms_of_well_separated_groups(method):
    """Separated components: a weight's standard error is the binomial sqrt(w (1 - w) / n),
    a mean's sigma / sqrt(n w). Every bootstrap lands within 25% of them with 200 replicates."""
    X = two_groups()
    n = len(X)
    gm = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    result = gm.bootstrap(X, n_boot=200, method=method, random_state=0)
    se, w = result.se(), gm.weights_
    np.testing.assert_allclose(se["weights_"], np.sqrt(w * (1 - w) / n), rtol=0.25)
    sigma = np.sqrt(np.diagonal(gm.covariances_, axis1=1, axis2=2))
    np.testing.assert_allclose(se["means_"], sigma / np.sqrt(n * w[:, None]), rtol=0.25)
    assert result.converged.all() and result.n_boot == 200
    lower, upper = result.ci(0.95)["means_"]
    assert ((lower < gm.means_) & (gm.means_ < upper)).all()


def test_one_component_mean_has_the_standard_error_of_a_sample_mean():
    X = np.random.default_rng(1).normal(3, 2, (600, 2))
    gm = bigem.GaussianMixture(1, dtype="float64").fit(X)
    se = gm.bootstrap(X, n_boot=300, random_state=1).se()
    np.testing.assert_allclose(se["means_"][0], X.std(0, ddof=1) / np.sqrt(len(X)), rtol=0.2)
    np.testing.assert_allclose(se["weights_"], 0.0, atol=1e-12)  # one component: its weight is 1 in every replicate


def test_replicates_that_lose_a_small_component_are_left_out_with_a_count():
    """Three rows near 10 beside 97 near 0: about one resample in twenty draws none of
    them, and the refit re-seeded the component near 1 with weight 0.2. Kept, those
    replicates made the mean's standard error 2.2 (its closed form is 0.042) and its
    interval [1.18, 10.18]."""
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(97, 1), rng.randn(3, 1) * 0.1 + 10]
    gm = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    with pytest.warns(ComponentReseededWarning,
                      match=r"^\d+ of 200 bootstrap replicates left a component without rows \(it was re-seeded "
                            r"elsewhere, or under mclust's stopping rule its fit ended there\); their parameters are "
                            r"NaN and se\(\) and ci\(\) leave them out; method='weighted' keeps every row in every "
                            r"replicate$") as caught:
        result = gm.bootstrap(X, n_boot=200, random_state=0)
    assert len(caught) == 1  # one count, not a warning per replicate
    lost = result.lost
    assert 3 <= lost.sum() <= 25  # (97/100)^100 = 4.8% of replicates
    assert np.isnan(result.replicates["means_"][lost]).all() and not np.isnan(result.replicates["means_"][~lost]).any()
    se = result.se()["means_"][1, 0]
    closed = np.sqrt(gm.covariances_[1].item() / (len(X) * gm.weights_[1]))
    assert se == pytest.approx(closed, rel=0.3)
    lower, upper = result.ci(0.95)["means_"]
    assert 9.8 < lower[1, 0] < gm.means_[1, 0] < upper[1, 0] < 10.3
    assert f"{lost.sum()} lost a component, left out" in result.summary()


def test_under_mclusts_stopping_a_replicate_that_loses_a_component_is_left_out_not_fatal():
    """mclust's rule ends a fit whose component lost its rows (NumericalError, mclust's
    missing replicate): the whole bootstrap raised it."""
    rng = np.random.RandomState(0)
    X = np.r_[rng.randn(97, 1), rng.randn(3, 1) * 0.1 + 10]
    plain = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    mclust = bigem.GaussianMixture(2, random_state=0, dtype="float64", stopping="mclust").fit(X)
    with pytest.warns(ComponentReseededWarning, match="under mclust's stopping rule its fit ended there"):
        result = mclust.bootstrap(X, n_boot=60, random_state=0)
    with pytest.warns(ComponentReseededWarning):
        reseeding = plain.bootstrap(X, n_boot=60, random_state=0)
    np.testing.assert_array_equal(result.lost, reseeding.lost)  # the same draws lose the same replicates
    assert result.lost.any() and not result.converged[result.lost].any()
    assert np.isnan(result.replicates["means_"][result.lost]).all()
    assert result.se()["means_"][1, 0] == pytest.approx(reseeding.se()["means_"][1, 0], rel=0.05)


def test_a_replicate_whose_arithmetic_fails_is_an_error_not_a_lost_component(monkeypatch):
    """Only mclust's stop on a lost component (ComponentLostError) leaves a replicate out;
    every NumericalError was taken for one, and a bootstrap whose every replicate failed
    returned NaN standard errors without a word but a wrong one."""
    from bigem.errors import NumericalError

    X = two_groups(300)
    gm = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    fit = bigem.GaussianMixture.fit

    def failing(self, *args, **kwargs):
        if self.warm_start:  # a replicate's refit
            raise NumericalError("the mean log-likelihood became nan at iteration 1 (restart 0)")
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(bigem.GaussianMixture, "fit", failing)
    with pytest.raises(NumericalError, match="became nan"):
        gm.bootstrap(X, n_boot=3, random_state=0)


def test_replicates_are_reproducible_and_leave_the_estimator_as_it_was():
    X = two_groups(600)
    gm = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    before = {name: np.copy(getattr(gm, name)) for name in ("weights_", "means_", "covariances_", "lower_bound_")}
    a = gm.bootstrap(X, n_boot=5, random_state=7)
    b = gm.bootstrap(X, n_boot=5, random_state=7)
    for name in a.replicates:
        np.testing.assert_array_equal(a.replicates[name], b.replicates[name])
    for name, value in before.items():
        np.testing.assert_array_equal(getattr(gm, name), value)
    assert not gm.warm_start
    assert "weights_:" in a.summary() and "se " in a.summary()


def test_components_are_matched_to_the_fit_whatever_order_a_replicate_has():
    """The matching undoes any permutation of a replicate's posteriors, by exhaustive
    search up to 7 components and greedily beyond."""
    rng = np.random.default_rng(2)
    for K in (3, 9):
        reference = rng.dirichlet(np.full(K, 0.2), 500)  # fairly certain posteriors
        perm = rng.permutation(K)
        noisy = reference[:, np.argsort(perm)] + rng.uniform(0, 0.02, (500, K))
        order = _best_order(reference, noisy / noisy.sum(1, keepdims=True))
        np.testing.assert_array_equal(order, perm)  # replicate column perm[k] is fitted component k


def test_components_of_equal_weights_are_not_taken_for_swapped():
    """Two components of the same weight: a matching on the parameters took the weights'
    noise for a swap, and the means' standard errors came out as the distance between
    the groups (2.6 instead of 0.06)."""
    X = two_groups(600, share=0.5)
    gm = bigem.GaussianMixture(2, random_state=0).fit(X)
    se = gm.bootstrap(X, n_boot=20, random_state=0).se()
    assert se["means_"].max() < 0.15 and se["weights_"].max() < 0.05


def test_a_file_bootstraps_as_its_array(tmp_path):
    """The rows are reweighted, never copied: a .npy path streams each replicate."""
    X = two_groups(800)
    np.save(tmp_path / "x.npy", X)
    gm = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    a = gm.bootstrap(X, n_boot=4, random_state=3)
    b = gm.bootstrap(str(tmp_path / "x.npy"), n_boot=4, random_state=3)
    for name in a.replicates:
        np.testing.assert_allclose(b.replicates[name], a.replicates[name], rtol=1e-10, atol=1e-12)


def test_latent_class_probabilities_have_binomial_standard_errors():
    """A Bernoulli mixture of well-separated classes: each item probability's standard
    error is about sqrt(p (1 - p) / (n w_k)); a categorical mixture's probabilities_,
    a list per item, come back one entry per item."""
    rng = np.random.default_rng(4)
    n, truth = 3000, np.array([[0.9, 0.8, 0.85, 0.9, 0.2], [0.1, 0.15, 0.2, 0.1, 0.7]])
    z = (rng.random(n) < 0.4).astype(int)
    X = (rng.random((n, 5)) < truth[z]).astype(float)
    m = bigem.BernoulliMixture(2, alpha=0.0, random_state=0, dtype="float64").fit(X)
    se = m.bootstrap(X, n_boot=150, random_state=0).se()["probabilities_"]
    p, w = m.probabilities_, m.weights_
    np.testing.assert_allclose(se, np.sqrt(p * (1 - p) / (n * w[:, None])), rtol=0.35)
    c = bigem.CategoricalMixture(2, random_state=0, dtype="float64").fit(X.astype(int))
    result = c.bootstrap(X.astype(int), n_boot=3, random_state=0)
    assert [k for k in result.replicates if k.startswith("probabilities_")] == [f"probabilities_[{j}]" for j in range(5)]
    assert result.replicates["probabilities_[0]"].shape == (3, 2, 2)


def test_tied_covariances_are_shared_not_reordered():
    X = two_groups(600)
    gm = bigem.GaussianMixture(2, covariance_type="tied", random_state=0, dtype="float64").fit(X)
    result = gm.bootstrap(X, n_boot=3, random_state=0)
    assert result.replicates["covariances_"].shape == (3, 2, 2)
    assert gm._shared_parameters() == {"covariances_"}


def test_bad_requests_say_what_to_pass():
    X = two_groups(300)
    gm = bigem.GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ParameterError, match=r"n_boot must be an int >= 2"):
        gm.bootstrap(X, n_boot=1)
    with pytest.raises(ParameterError, match=r"method must be one of \['nonparametric', 'weighted', 'parametric'\]"):
        gm.bootstrap(X, method="jackknife")
    with pytest.raises(ParameterError, match=r"level must be in \(0, 1\)"):
        gm.bootstrap(X, n_boot=2, random_state=0).ci(95)
    with pytest.raises(NotFittedError):
        bigem.GaussianMixture(2).bootstrap(X)
    bgm = bigem.BayesianGaussianMixture(n_components=2).fit(X)
    with pytest.raises(AttributeError, match=r"Bootstrap a GaussianMixture"):  # as its bic: hasattr is False
        bgm.bootstrap(X)
    assert not hasattr(bgm, "caic") and not hasattr(bgm, "sabic") and 0 < bgm.relative_entropy(X) <= 1


# ---------------------------------------------------------------- the likelihood ratio test
def test_blrt_rejects_too_few_components_and_keeps_enough():
    """Two Gaussian groups: one component against two is rejected at the smallest p
    19 replicates give (1/20); two against three is not."""
    X = np.random.default_rng(5).normal(0, 1, (400, 1)) + np.repeat([[0.0], [4.0]], 200, 0)
    one, two, three = (bigem.GaussianMixture(k, n_init=2, random_state=0, dtype="float64") for k in (1, 2, 3))
    low = bigem.blrt(one, two, X, n_boot=19, random_state=0)
    assert low.p_value == pytest.approx(1 / 20) and low.statistic > low.bootstrap_statistics.max()
    high = bigem.blrt(two, three, X, n_boot=19, random_state=0)
    assert high.p_value > 0.05  # not rejected at 5%
    assert "BLRT 2 vs 3 components" in str(high) and high.bootstrap_statistics.shape == (19,)


def test_blrt_statistic_is_twice_the_log_likelihood_ratio_of_the_given_fits():
    X = two_groups(300)
    null = bigem.GaussianMixture(1, dtype="float64").fit(X)
    alt = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    before = alt.means_.copy()
    result = bigem.blrt(null, alt, X, n_boot=2, random_state=1)
    assert result.statistic == pytest.approx(2 * (alt.score(X) - null.score(X)) * len(X), rel=1e-12)
    np.testing.assert_array_equal(alt.means_, before)  # the given fits are used, not refitted
    unfitted = bigem.GaussianMixture(2, random_state=0, dtype="float64")
    again = bigem.blrt(null, unfitted, X, n_boot=2, random_state=1)
    assert not hasattr(unfitted, "means_")  # fitted on a copy
    assert again.statistic == pytest.approx(result.statistic, rel=1e-9)
    np.testing.assert_allclose(again.bootstrap_statistics, result.bootstrap_statistics, rtol=1e-9)


def test_blrt_warns_when_the_alternative_fits_worse_than_the_null():
    """A negative statistic means the alternative's fit missed its maximum (it nests the
    null): the p-value (1 here) would say nothing, and nothing said so."""
    X = two_groups(300)
    null = bigem.GaussianMixture(1, dtype="float64").fit(X)
    alt = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
    alt.means_ = alt.means_ + 3.0  # the fitted attributes are the model: a poor one
    with pytest.warns(ConvergenceWarning, match=r"fits X worse than the null \(1\): 2 log LR = -.* larger n_init"):
        result = bigem.blrt(null, alt, X, n_boot=2, random_state=1)
    assert result.statistic < 0 and result.p_value == 1.0
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        assert bigem.blrt(null, bigem.GaussianMixture(2, random_state=0, dtype="float64"), X, n_boot=2,
                          random_state=1).statistic > 0


def test_blrt_of_mixed_columns_draws_named_frames():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(6)
    z = rng.integers(0, 2, 300)
    frame = pd.DataFrame({"g": rng.normal(3.0 * z, 1.0), "b": (rng.random(300) < 0.2 + 0.6 * z).astype(float)})
    families = {"g": "gaussian", "b": "bernoulli"}
    result = bigem.blrt(bigem.MixedMixture(1, families=families), bigem.MixedMixture(2, families=families, random_state=0),
                        frame, n_boot=2, random_state=0)
    assert result.statistic > 0 and np.isfinite(result.bootstrap_statistics).all()


def test_blrt_refuses_what_is_not_a_test():
    X = two_groups(200)
    with pytest.raises(ParameterError, match=r"more components than the null; got 2 against 2"):
        bigem.blrt(bigem.GaussianMixture(2), bigem.GaussianMixture(2), X)
    with pytest.raises(ParameterError, match=r"one family; got GaussianMixture and BernoulliMixture"):
        bigem.blrt(bigem.GaussianMixture(1), bigem.BernoulliMixture(2), X)
    with pytest.raises(ParameterError, match=r"n_boot must be an int >= 1"):
        bigem.blrt(bigem.GaussianMixture(1), bigem.GaussianMixture(2), X, n_boot=0)


def test_a_weighted_fit_bootstraps_its_weights_times_the_draws():
    """The fit's own weights multiply each replicate's draws: rows of weight 0 stay out
    of every replicate (ignoring them would pull each one-component mean halfway to the
    rows left out)."""
    X = two_groups(500, share=0.5)  # 250 rows about 0, 250 about 5
    w = np.r_[np.ones(250), np.zeros(250)]
    gm = bigem.GaussianMixture(1, dtype="float64").fit(X, sample_weight=w)
    result = gm.bootstrap(X, n_boot=20, random_state=2, sample_weight=w)
    assert np.abs(result.replicates["means_"] - gm.means_).max() < 0.3 and abs(gm.means_).max() < 0.2
    with pytest.raises(ParameterError, match=r"sample_weight has 499 weights, but X has 500 rows"):
        gm.bootstrap(X, sample_weight=np.ones(499))
    with pytest.raises(ParameterError, match=r"names a column; the bootstrap multiplies"):
        gm.bootstrap(X, sample_weight="w")


def test_replicates_of_a_file_read_the_columns_the_fit_read(tmp_path):
    """Fitted on columns x and y of a Parquet file with an id column beside: predict and
    score read x and y, and the replicates now do too (they read every column and failed,
    "X has 3 features ... (warm_start continues from the previous fit)"); their draws are
    those of columns= given."""
    import pandas as pd

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(600, 2)), columns=["x", "y"])
    frame.insert(0, "id", np.arange(600))
    path = str(tmp_path / "t.parquet")
    frame.to_parquet(path)
    gm = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(path, columns=["x", "y"])
    found = gm.bootstrap(path, n_boot=2, random_state=0)
    given = gm.bootstrap(path, n_boot=2, random_state=0, columns=["x", "y"])
    assert set(found.replicates) == set(given.replicates) and found.n_boot == 2
    for name in given.replicates:
        np.testing.assert_array_equal(found.replicates[name], given.replicates[name])
