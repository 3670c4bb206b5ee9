"""StructuralModel: the stepwise estimators of distal outcomes and covariates against
known generating parameters, their invariants, their inputs and their errors. (Their
agreement with StepMix is tests/reference/test_stepmix_structural.py.)"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.errors import DataError, NotFittedError, ParameterError

K = 3
ITEMS = np.array([[.8, .8, .8, .2, .2, .2], [.2, .2, .8, .8, .8, .2], [.2, .2, .2, .2, .8, .8]])
MEANS = np.array([0.0, 1.0, 2.0])


def data(n=20_000, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, K, n)
    X = (rng.random((n, 6)) < ITEMS[z]).astype(float)
    return rng, z, X


@pytest.fixture(scope="module")
def fitted():
    rng, z, X = data()
    Y = rng.normal(MEANS[z], 1.0)[:, None]
    measurement = bigem.BernoulliMixture(K, n_init=3, random_state=0, tol=1e-8, max_iter=500,
                                         dtype="float64").fit(X)
    # the generating class of each fitted one: the item its probabilities put highest first
    order = [int(np.argmax(ITEMS @ p)) for p in measurement.probabilities_]
    return X, Y, z, measurement, np.array(order)


@pytest.mark.parametrize("n_steps,correction", [(2, None), (3, "BCH"), (3, "ML")])
def test_the_corrected_estimates_find_the_generating_means_the_naive_one_misses(fitted, n_steps, correction):
    """Assignments misclassify about one row in five here: the naive three-step means
    shrink towards each other by more than 0.15; BCH, ML and two steps stay within a few
    standard errors (0.012) of the truth."""
    X, Y, _, measurement, order = fitted
    naive = bigem.StructuralModel(measurement, "gaussian", n_steps=3).fit(X, Y)
    assert np.abs(naive.means_[:, 0] - MEANS[order]).max() > 0.15
    m = bigem.StructuralModel(measurement, "gaussian", n_steps=n_steps, correction=correction).fit(X, Y)
    np.testing.assert_allclose(m.means_[:, 0], MEANS[order], atol=0.05)
    np.testing.assert_allclose(m.covariances_[:, 0], 1.0, atol=0.08)
    np.testing.assert_array_equal(m.weights_, measurement.weights_)  # the classes' weights stay the measurement's


def test_the_classification_error_is_the_assignments_against_the_posteriors(fitted):
    X, Y, _, measurement, _ = fitted
    m = bigem.StructuralModel(measurement, "gaussian", n_steps=3, correction="BCH").fit(X, Y)
    post = measurement.predict_proba(X)
    modal = np.eye(K)[post.argmax(1)]
    expected = (post.T @ modal) / post.sum(0)[:, None]
    np.testing.assert_allclose(m.classification_error_, expected, atol=1e-12)
    np.testing.assert_allclose(m.classification_error_.sum(1), 1.0, atol=1e-12)
    soft = bigem.StructuralModel(measurement, "gaussian", n_steps=3, correction="BCH", assignment="soft").fit(X, Y)
    np.testing.assert_allclose(soft.classification_error_, (post.T @ post) / post.sum(0)[:, None], atol=1e-12)


def test_covariate_effects_are_recovered(fitted):
    """Classes drawn from a multinomial logit of two covariates: the ML three-step and the
    two-step estimates find its log odds within 0.15."""
    rng, _, _ = data(1, 1)
    n = 20_000
    Z = rng.normal(size=(n, 2))
    truth = np.array([[0.0, 0.0, 0.0], [0.5, 1.0, -1.0], [-0.5, -1.0, 1.5]])  # intercept, z1, z2 per class
    logits = np.c_[np.ones(n), Z] @ truth.T
    p = np.exp(logits - logits.max(1, keepdims=True))
    z = (rng.random(n)[:, None] > np.cumsum(p / p.sum(1, keepdims=True), 1)).sum(1)
    X = (rng.random((n, 6)) < ITEMS[z]).astype(float)
    measurement = bigem.BernoulliMixture(K, n_init=3, random_state=0, tol=1e-8, max_iter=500, dtype="float64").fit(X)
    order = np.array([int(np.argmax(ITEMS @ q)) for q in measurement.probabilities_])
    for n_steps, correction in [(2, None), (3, "ML"), (3, "BCH")]:
        m = bigem.StructuralModel(measurement, "covariate", n_steps=n_steps, correction=correction).fit(X, Z)
        beta = np.c_[m.intercept_, m.coef_]
        fitted_odds = beta - beta[order == 0]
        true_odds = truth[order] - truth[0]
        np.testing.assert_allclose(fitted_odds, true_odds, atol=0.15)
        assert m.converged_
    # without an intercept the classes' logits are the covariates' alone
    m = bigem.StructuralModel(measurement, "covariate", n_steps=2, intercept=False).fit(X, Z)
    assert m.coef_.shape == (K, 2) and np.all(m.intercept_ == 0)


@pytest.mark.parametrize("n_steps,correction,assignment", [(2, None, "modal"), (3, None, "soft"),
                                                          (3, "BCH", "modal"), (3, "ML", "soft")])
def test_a_row_of_weight_two_is_that_row_twice(n_steps, correction, assignment):
    rng, z, X = data(600, 2)
    Y = np.c_[rng.normal(MEANS[z], 1.0), rng.integers(0, 3, 600)]
    counts = rng.integers(0, 3, 600)
    # one measurement model for both: the structural steps' weighting is the point here
    measurement = bigem.BernoulliMixture(K, random_state=0, tol=1e-10, max_iter=1000, dtype="float64").fit(
        X, sample_weight=counts)
    kw = dict(n_steps=n_steps, correction=correction, assignment=assignment, structural=["gaussian", "categorical"])
    weighted = bigem.StructuralModel(measurement, **kw).fit(X, Y, sample_weight=counts)
    repeated = bigem.StructuralModel(measurement, **kw).fit(np.repeat(X, counts, 0), np.repeat(Y, counts, 0))
    np.testing.assert_allclose(weighted.means_, repeated.means_, atol=1e-8)
    np.testing.assert_allclose(weighted.covariances_, repeated.covariances_, atol=1e-8)
    np.testing.assert_allclose(weighted.probabilities_[0], repeated.probabilities_[0], atol=1e-8)
    if correction is not None:
        np.testing.assert_allclose(weighted.classification_error_, repeated.classification_error_, atol=1e-12)


def test_an_unfitted_measurement_model_is_fitted_on_a_copy_and_a_fitted_one_is_kept(fitted, tmp_path):
    X, Y, _, measurement, _ = fitted
    fresh = bigem.BernoulliMixture(K, n_init=3, random_state=0, tol=1e-8, max_iter=500, dtype="float64")
    m = bigem.StructuralModel(fresh, n_steps=3, correction="ML").fit(X, Y)
    assert not hasattr(fresh, "weights_")
    np.testing.assert_allclose(m.measurement_.probabilities_, measurement.probabilities_, atol=1e-10)
    kept = bigem.StructuralModel(measurement, n_steps=3, correction="ML").fit(X, Y)
    assert kept.measurement_ is measurement
    np.testing.assert_allclose(kept.means_, m.means_, atol=1e-8)
    # X streamed from a file: the same estimates
    path = tmp_path / "items.npy"
    np.save(path, X)
    from_file = bigem.StructuralModel(measurement, n_steps=3, correction="ML").fit(str(path), Y)
    np.testing.assert_allclose(from_file.means_, kept.means_, atol=1e-12)


def test_mixed_outcomes_by_name_and_the_posteriors(fitted):
    X, Y, z, measurement, _ = fitted
    rng = np.random.default_rng(3)
    frame = pd.DataFrame({"score": Y[:, 0], "passed": (rng.random(len(z)) < np.array([.2, .5, .9])[z]).astype(float),
                          "visits": rng.poisson(np.array([1.0, 3.0, 6.0])[z])})
    m = bigem.StructuralModel(measurement, {"score": "gaussian", "passed": "bernoulli", "visits": "poisson"},
                              n_steps=2).fit(X, frame)
    assert m.families_ == ["gaussian", "bernoulli", "poisson"]
    order = np.array([int(np.argmax(ITEMS @ p)) for p in measurement.probabilities_])
    np.testing.assert_allclose(m.bernoulli_probabilities_[:, 0], np.array([.2, .5, .9])[order], atol=0.03)
    np.testing.assert_allclose(m.lambdas_[:, 0], np.array([1.0, 3.0, 6.0])[order], atol=0.1)
    post = m.predict_proba(X, frame)
    np.testing.assert_allclose(post.sum(1), 1.0, atol=1e-12)
    # the posterior given x and y sharpens the one given x alone: it agrees with the truth more often
    assert (order[m.predict(X, frame)] == z).mean() > (order[measurement.predict(X)] == z).mean() + 0.05
    # the two-step fit ends where its log-likelihood is the score of its own rows
    assert m.score(X, frame) == pytest.approx(m.lower_bound_, abs=1e-8)


def test_the_two_step_likelihood_never_falls(fitted, monkeypatch):
    X, Y, _, measurement, _ = fitted
    seen = []
    from bigem.estimators import structural

    original = structural.fit_em

    def watching(*args, **kw):
        best, runs = original(*args, **kw)
        seen.extend(best.history)
        return best, runs

    monkeypatch.setattr(structural, "fit_em", watching)
    bigem.StructuralModel(measurement, "gaussian", n_steps=2, tol=1e-12).fit(X, Y)
    assert len(seen) > 3 and np.all(np.diff(seen) >= -1e-12)


def test_errors_say_what_and_how(fitted):
    X, Y, _, measurement, _ = fitted
    M = bigem.StructuralModel
    with pytest.raises(ParameterError, match="n_steps"):
        M(measurement, n_steps=4).fit(X, Y)
    with pytest.raises(ParameterError, match="correction='BCH' applies to three steps"):
        M(measurement, n_steps=1, correction="BCH").fit(X, Y)
    with pytest.raises(ParameterError, match="correction='ML' applies to three steps"):
        M(measurement, n_steps=2, correction="ML").fit(X, Y)
    with pytest.raises(ParameterError, match="a bigem mixture"):
        M(object()).fit(X, Y)
    with pytest.raises(ParameterError, match="a family is one of"):
        M(measurement, "normal").fit(X, Y)
    with pytest.raises(ParameterError, match="which Y does not have"):
        M(measurement, {"age": "gaussian"}).fit(X, pd.DataFrame({"score": Y[:, 0]}))
    with pytest.raises(ParameterError, match="one per column"):
        M(measurement, ["gaussian", "poisson"]).fit(X, Y)
    with pytest.raises(DataError, match="Y has 10"):
        M(measurement).fit(X, Y[:10])
    bad = Y.copy()
    bad[7, 0] = np.inf
    with pytest.raises(DataError, match="infinite value at row 7, column 0"):
        M(measurement).fit(X, bad)
    bad[7, 0] = np.nan
    with pytest.raises(DataError, match="covariate with a missing value at row 7"):
        M(measurement, "covariate").fit(X, bad)
    with pytest.raises(DataError, match="no observed value"):
        M(measurement).fit(X, np.full_like(Y, np.nan))
    with pytest.raises(DataError, match="codes 0, 1"):
        M(measurement, "categorical").fit(X, Y)
    with pytest.raises(DataError, match="other than 0 and 1"):
        M(measurement, "bernoulli").fit(X, Y)
    with pytest.raises(ParameterError, match="Y is required"):
        M(measurement).fit(X, None)
    with pytest.raises(NotFittedError, match="not fitted"):
        M(measurement).predict_proba(X, Y)
    m = M(measurement).fit(X, Y)
    with pytest.raises(DataError, match="fitted with 1"):
        m.predict(X, np.c_[Y, Y])


def test_bch_says_when_its_negative_weights_give_an_impossible_estimate():
    """Two barely separated classes: D is nearly singular, D^-1 has large negative entries,
    and a class's share of a rare category comes out negative (clipped, with a warning);
    ML's estimates stay admissible. A negative variance has no admissible value: an error."""
    rng = np.random.default_rng(1)
    n = 300
    z = rng.integers(0, 2, n)
    X = (rng.random((n, 3)) < np.array([[.6, .6, .6], [.4, .4, .4]])[z]).astype(float)
    Y = np.where(rng.random(n) < 0.03, 2, rng.integers(0, 2, n))[:, None]
    measurement = bigem.BernoulliMixture(2, random_state=0, dtype="float64").fit(X)
    with pytest.warns(bigem.errors.DegenerateFitWarning, match=r"columns \['0'\].*correction='ML'"):
        m = bigem.StructuralModel(measurement, "categorical", n_steps=3, correction="BCH").fit(X, Y)
    # clipped to the mixtures' floor, the smallest normal float64: a row of that value keeps a density
    assert np.any(m.probabilities_[0] == np.finfo(np.float64).tiny) and np.all(m.probabilities_[0] > 0)
    two = np.c_[Y, rng.integers(0, 3, n)]  # a second categorical column: its rows' one-hot products met 0 * log 0
    with pytest.warns(bigem.errors.DegenerateFitWarning, match=r"columns \['0'\]"):
        both = bigem.StructuralModel(measurement, "categorical", n_steps=3, correction="BCH").fit(X, two)
    assert np.isfinite(both.predict_proba(X, two)).all() and np.isfinite(both.score(X, two))
    with pytest.warns(bigem.errors.DegenerateFitWarning, match=r"columns \['grp'\] of Y"):  # a name, quoted once
        bigem.StructuralModel(measurement, "categorical", n_steps=3, correction="BCH").fit(
            X, pd.DataFrame({"grp": Y[:, 0]}))
    np.testing.assert_allclose(both.predict_proba(X, two).sum(1), 1.0)
    ml = bigem.StructuralModel(measurement, "categorical", n_steps=3, correction="ML").fit(X, Y)
    assert np.all(ml.probabilities_[0] > 0)
    rare = (Y[:, 0] == 2).astype(float)[:, None]  # the same rare value, as ones and as counts
    for family, values in (("bernoulli", rare), ("poisson", 3 * rare)):
        with pytest.warns(bigem.errors.DegenerateFitWarning, match=r"columns \['0'\]"):
            bigem.StructuralModel(measurement, family, n_steps=3, correction="BCH").fit(X, values)
    spike = np.where(Y[:, 0] == 2, 50.0, 0.0)[:, None]  # a rare outlier value
    with pytest.raises(bigem.errors.NumericalError, match="variance.*correction='ML'"):
        bigem.StructuralModel(measurement, "gaussian", n_steps=3, correction="BCH").fit(X, spike)
    with warnings.catch_warnings():  # a column far from 0 with a spread well above rounding: admissible
        warnings.simplefilter("error")
        bigem.StructuralModel(measurement, "gaussian", n_steps=3, correction="BCH").fit(X, 1e6 + 10 * X[:, :1] +
                                                                                        rng.normal(size=(n, 1)))


def test_one_step_fits_everything_at_once_from_the_measurement_fit(fitted):
    X, Y, _, measurement, order = fitted
    before = measurement.probabilities_.copy()
    m = bigem.StructuralModel(measurement, "gaussian", n_steps=1).fit(X, Y)
    np.testing.assert_array_equal(measurement.probabilities_, before)  # the given model is left as it was
    assert m.measurement_ is not measurement
    np.testing.assert_allclose(m.means_[:, 0], MEANS[order], atol=0.05)
    two = bigem.StructuralModel(measurement, "gaussian", n_steps=2).fit(X, Y)
    # the joint optimum is at least as likely as the two-step one, which holds the measurement fixed
    assert m.lower_bound_ >= two.lower_bound_ - 1e-12
    assert m.score(X, Y) == pytest.approx(m.lower_bound_, abs=1e-8)
    np.testing.assert_allclose(m.measurement_.weights_, m.weights_)


@pytest.mark.parametrize("init_params, weighted", [("random", True), ("kmeans", False)])
def test_one_step_with_covariates_leaves_the_rows_mean_posterior_as_the_measurement_weights(init_params, weighted):
    """The covariates give each row's class probabilities, so the joint fit has no weights
    of its own: measurement_ holds the rows' (weighted) mean posterior, as StepMix's
    M-step leaves weights_. It held the weights of the start: a one-iteration fit's
    (0.49999915, 0.50000085) from the random table, a given weights_init unchanged."""
    rng = np.random.default_rng(1)
    z = rng.normal(size=1000)
    cls = (rng.random(1000) < 1 / (1 + np.exp(-2 * z))).astype(int)
    X = (rng.random((1000, 6)) < np.where(cls[:, None] == 1, 0.85, 0.15)).astype(float)
    w = rng.uniform(0.5, 2.0, 1000) if weighted else None
    for weights_init in (None, [0.3, 0.7]):
        measurement = bigem.BernoulliMixture(2, init_params=init_params, weights_init=weights_init, alpha=0.0,
                                             random_state=0)
        m = bigem.StructuralModel(measurement, "covariate", n_steps=1).fit(X, z[:, None], sample_weight=w)
        posterior = m.predict_proba(X, z[:, None])
        np.testing.assert_allclose(m.measurement_.weights_, np.average(posterior, axis=0, weights=w), atol=1e-12)
        assert abs(m.measurement_.weights_[0] - 0.5) > 0.01
        # given z, the measurement weights cancel: the score is the joint fit's (the
        # covariates' M-step is one Newton step, the bound's last gains up to 1e-7)
        assert np.average(m.score_samples(X, z[:, None]), weights=w) == pytest.approx(m.lower_bound_, abs=1e-5)


def test_one_step_with_a_gaussian_measurement_model_far_from_the_origin():
    """float32 rows far from the origin arrive shifted (the measurement model's source):
    the joint fit works on them and moves its parameters back, as in float64."""
    rng = np.random.default_rng(6)
    z = rng.integers(0, 2, 3000)
    X = 1e4 + rng.normal(np.array([[0.0, 0.0], [3.0, 3.0]])[z], 1.0)
    Y = rng.normal(np.array([0.0, 2.0])[z], 1.0)
    fits = {}
    for dtype in ("float32", "float64"):
        measurement = bigem.GaussianMixture(2, covariance_type="diag", random_state=0, dtype=dtype)
        fits[dtype] = bigem.StructuralModel(measurement, "gaussian", n_steps=1, tol=1e-10).fit(X, Y)
    a, b = fits["float32"], fits["float64"]
    np.testing.assert_allclose(a.measurement_.means_, b.measurement_.means_, atol=1e-3)
    assert np.all(np.abs(a.measurement_.means_ - 1e4) < 5)
    np.testing.assert_allclose(a.means_, b.means_, atol=1e-3)


@pytest.mark.parametrize("n_steps,correction", [(1, None), (3, "BCH"), (3, "ML")])
def test_bootstrap_standard_errors_match_closed_forms_on_separated_classes(n_steps, correction):
    """Classes that 8 items of 0.95 / 0.05 all but reveal: a class mean's standard error is
    sigma / sqrt(n w); the log odds of a class on a covariate independent of it, 2 /
    sqrt(n var z) at even odds."""
    rng = np.random.default_rng(7)
    n = 4000
    z = rng.integers(0, 2, n)
    X = (rng.random((n, 8)) < np.array([[.95] * 8, [.05] * 8])[z]).astype(float)
    Y = np.c_[rng.normal(np.array([0.0, 1.0])[z], 1.0), rng.normal(size=n)]
    m = bigem.StructuralModel(bigem.BernoulliMixture(2, random_state=0, dtype="float64"),
                              ["gaussian", "covariate"], n_steps=n_steps, correction=correction).fit(X, Y)
    boot = m.bootstrap(X, Y, n_boot=150, random_state=0)
    assert boot.converged.all() and boot.replicates["means_"].shape == (150, 2, 1)
    np.testing.assert_allclose(boot.se()["means_"][:, 0], 1.0 / np.sqrt(n * m.weights_), rtol=0.2)
    log_odds = boot.replicates["coef_"][:, 1, 0] - boot.replicates["coef_"][:, 0, 0]
    assert log_odds.std(ddof=1) == pytest.approx(2.0 / np.sqrt(n), rel=0.2)
    low, high = boot.ci(0.95)["means_"]
    assert np.all(low[:, 0] < m.means_[:, 0]) and np.all(m.means_[:, 0] < high[:, 0])
    with pytest.raises(ParameterError, match="not drawn from a model"):
        m.bootstrap(X, Y, n_boot=5, method="parametric")


def test_weights_by_column_name_are_read_with_the_rows(fitted, tmp_path, monkeypatch):
    X, Y, _, measurement, _ = fitted
    w = np.random.default_rng(4).uniform(0.5, 2.0, len(X))
    path = tmp_path / "weighted.parquet"
    pd.DataFrame(X, columns=[f"q{j}" for j in range(6)]).assign(income=Y[:, 0], w=w).to_parquet(path)
    fresh = bigem.BernoulliMixture(K, n_init=2, random_state=0, tol=1e-8, dtype="float64")
    by_column = bigem.StructuralModel(fresh, n_steps=2).fit(str(path), "income", sample_weight="w")
    by_array = bigem.StructuralModel(fresh, n_steps=2).fit(X, Y, sample_weight=w)
    assert list(by_column.measurement_.feature_names_in_) == [f"q{j}" for j in range(6)]  # the weights are no item
    np.testing.assert_allclose(by_column.means_, by_array.means_, atol=1e-10)
    monkeypatch.setattr(bigem.BernoulliMixture, "fit", lambda *a, **k: pytest.fail("X was read before the refusal"))
    with pytest.raises(DataError, match="sample_weight has 3 values"):
        bigem.StructuralModel(fresh).fit(X, Y, sample_weight=[1.0, 2.0, 3.0])


def test_outcomes_missing_at_random_are_marginalised(fitted):
    """A third of the outcome missing completely at random: the estimates stay at the
    truth, and a row without its outcome has the posterior of its items alone."""
    X, Y, _, measurement, order = fitted
    holed = Y.copy()
    gone = np.random.default_rng(8).random(len(Y)) < 0.3
    holed[gone] = np.nan
    for kw in (dict(n_steps=2), dict(n_steps=3, correction="BCH"), dict(n_steps=3, correction="ML")):
        m = bigem.StructuralModel(measurement, "gaussian", **kw).fit(X, holed)
        np.testing.assert_allclose(m.means_[:, 0], MEANS[order], atol=0.06)
    post = m.predict_proba(X, holed)
    np.testing.assert_allclose(post[gone], measurement.predict_proba(X)[gone], atol=1e-10)


def test_permuting_classes_renumbers_every_part_alike():
    """Class k becomes the fitted class perm[k]: the posteriors' columns, the outcome's
    means, the covariate rows, D's rows and columns; a tied covariance stays shared."""
    rng = np.random.default_rng(9)
    z = rng.integers(0, 3, 2000)
    X = rng.normal(np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])[z], 1.0)
    Y = np.c_[rng.normal(np.array([0.0, 1.0, 2.0])[z], 1.0), rng.normal(size=2000)]
    measurement = bigem.GaussianMixture(3, covariance_type="tied", random_state=0, dtype="float64")
    m = bigem.StructuralModel(measurement, ["gaussian", "covariate"], n_steps=3, correction="ML").fit(X, Y)
    before = dict(post=m.predict_proba(X, Y), means=m.means_.copy(), coef=m.coef_.copy(),
                  D=m.classification_error_.copy(), cov=m.measurement_.covariances_.copy())
    perm = np.array([1, 2, 0])
    m.permute_classes(perm)
    np.testing.assert_allclose(m.predict_proba(X, Y), before["post"][:, perm], atol=1e-12)
    np.testing.assert_array_equal(m.means_, before["means"][perm])
    np.testing.assert_array_equal(m.coef_, before["coef"][perm])
    np.testing.assert_array_equal(m.classification_error_, before["D"][np.ix_(perm, perm)])
    np.testing.assert_array_equal(m.measurement_.covariances_, before["cov"])
    with pytest.raises(ParameterError, match="permutation"):
        m.permute_classes([0, 1])


@pytest.mark.parametrize("kw", [dict(n_steps=3, correction="ML"), dict(n_steps=1), dict(n_steps=3, correction="BCH")])
def test_a_model_file_gives_back_the_same_model(fitted, tmp_path, kw):
    """save, then bigem.load: the same parameters, D, posteriors and scores, for outcomes
    of every family with gaps and a covariate, with the measurement model as the part."""
    X, Y, z, measurement, _ = fitted
    rng = np.random.default_rng(10)
    frame = pd.DataFrame({"score": Y[:, 0], "grade": rng.integers(0, 3, len(z)).astype(float),
                          "passed": (rng.random(len(z)) < 0.5).astype(float), "visits": rng.poisson(2.0, len(z)),
                          "age": rng.normal(size=len(z)), "unit": rng.normal(size=len(z))})
    frame.loc[::7, "score"] = np.nan
    families = {"score": "gaussian", "grade": "categorical", "passed": "bernoulli", "visits": "poisson",
                "age": "covariate", "unit": "gaussian_unit"}
    m = bigem.StructuralModel(measurement, families, **kw).fit(X, frame)
    path = tmp_path / "structural.bigem"
    m.save(path)
    back = bigem.load(path)
    assert isinstance(back, bigem.StructuralModel) and back.families_ == m.families_
    for name in ("weights_", "means_", "covariances_", "bernoulli_probabilities_", "lambdas_", "coef_", "intercept_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(m, name), err_msg=name)
    np.testing.assert_array_equal(back.probabilities_[0], m.probabilities_[0])
    if m.classification_error_ is None:
        assert back.classification_error_ is None
    else:
        np.testing.assert_array_equal(back.classification_error_, m.classification_error_)
    np.testing.assert_allclose(back.predict_proba(X, frame), m.predict_proba(X, frame), atol=1e-12)
    assert back.score(X, frame) == pytest.approx(m.score(X, frame), abs=1e-12)
    assert back.n_iter_ == m.n_iter_ and back.converged_ == m.converged_


def test_a_damaged_structural_model_file_is_named(fitted, tmp_path):
    from bigem.errors import ModelFileError
    from bigem.io import read_model_file, write_model_file

    X, Y, _, measurement, _ = fitted
    path = tmp_path / "m.bigem"
    bigem.StructuralModel(measurement, "gaussian", n_steps=2).fit(X, Y).save(path)
    tensors, meta = read_model_file(path)
    tensors["means"] = tensors["means"][:, :0]
    write_model_file(tmp_path / "bad.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match="bad.bigem.*gaussian parameters"):
        bigem.load(tmp_path / "bad.bigem")
    tensors, meta = read_model_file(path)
    meta["fitted"]["families_"] = ["normal"]
    write_model_file(tmp_path / "worse.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match="families_"):
        bigem.load(tmp_path / "worse.bigem")


def test_outcomes_named_as_columns_of_a_dataframe_or_a_parquet_file(fitted, tmp_path):
    """Y may name columns of X: read alone from the file (a null as a gap), and left out
    of the measurement model's features; the same fit as with arrays."""
    X, Y, _, _, _ = fitted
    holed = Y[:, 0].copy()
    holed[::9] = np.nan
    frame = pd.DataFrame(X, columns=[f"q{j}" for j in range(6)]).assign(income=holed)
    path = tmp_path / "survey.parquet"
    frame.to_parquet(path)
    kw = dict(n_steps=3, correction="ML")
    fresh = bigem.BernoulliMixture(K, n_init=3, random_state=0, tol=1e-8, max_iter=500, dtype="float64")
    by_array = bigem.StructuralModel(fresh, "gaussian", **kw).fit(X, holed)
    by_frame = bigem.StructuralModel(fresh, "gaussian", **kw).fit(frame, "income")
    by_file = bigem.StructuralModel(fresh, {"income": "gaussian"}, **kw).fit(str(path), ["income"])
    assert list(by_frame.measurement_.feature_names_in_) == [f"q{j}" for j in range(6)]
    for m in (by_frame, by_file):
        np.testing.assert_allclose(m.means_, by_array.means_, atol=1e-10)
        np.testing.assert_allclose(m.predict_proba(frame, "income"), by_array.predict_proba(X, holed), atol=1e-10)
    with pytest.raises(DataError, match="no column 'salary'"):
        bigem.StructuralModel(fresh).fit(frame, "salary")
    with pytest.raises(DataError, match="X has no column names"):
        bigem.StructuralModel(fresh).fit(X, "income")


def test_a_mixed_mixture_with_families_by_list_saves_and_loads(tmp_path):
    """A list of family names is text in the model file (it was read as numbers and
    failed), as is a dict of them by column name."""
    rng = np.random.default_rng(11)
    X = np.c_[rng.normal(size=200), rng.integers(0, 2, 200)].astype(float)
    m = bigem.MixedMixture(2, families=["gaussian", "bernoulli"], random_state=0).fit(X)
    m.save(tmp_path / "m.bigem")
    back = bigem.load(tmp_path / "m.bigem")
    assert back.families == ["gaussian", "bernoulli"]
    np.testing.assert_allclose(back.predict_proba(X), m.predict_proba(X), atol=1e-7)
    frame = pd.DataFrame({"h": X[:, 0], "f": X[:, 1]})
    bigem.MixedMixture(2, families={"f": "bernoulli"}, random_state=0).fit(frame).save(tmp_path / "d.bigem")
    assert bigem.load(tmp_path / "d.bigem").families == {"f": "bernoulli"}


def test_samples_follow_the_fitted_model_class_by_class(fitted):
    X, Y, z, measurement, _ = fitted
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({"score": Y[:, 0], "passed": (rng.random(len(z)) < np.array([.2, .5, .9])[z]).astype(float),
                          "grade": rng.integers(0, 3, len(z)).astype(float), "visits": rng.poisson(2.0, len(z))})
    m = bigem.StructuralModel(measurement, {"score": "gaussian", "passed": "bernoulli", "grade": "categorical",
                                            "visits": "poisson"}, n_steps=2).fit(X, frame)
    n = 80_000
    Xs, Ys, labels = m.sample(n, random_state=0)
    assert Xs.shape == (n, 6) and Ys.shape == (n, 4)
    np.testing.assert_array_equal(m.sample(n, random_state=0)[1], Ys)  # a seed gives the same draws
    share = np.bincount(labels, minlength=K) / n
    assert np.all(np.abs(share - m.weights_) < 4 * np.sqrt(m.weights_ / n))
    for k in range(K):
        rows = labels == k
        c = rows.sum()
        se = lambda p: 4 * np.sqrt(p * (1 - p) / c) + 1e-12  # noqa: E731
        p = measurement.probabilities_[k]
        assert np.all(np.abs(Xs[rows].mean(0) - p) < se(p))
        assert abs(Ys[rows, 0].mean() - m.means_[k, 0]) < 4 * np.sqrt(m.covariances_[k, 0] / c)
        p = m.bernoulli_probabilities_[k, 0]
        assert abs(Ys[rows, 1].mean() - p) < se(p)
        p = m.probabilities_[0][k]
        assert np.all(np.abs(np.bincount(Ys[rows, 2].astype(int), minlength=3) / c - p) < se(p))
        assert abs(Ys[rows, 3].mean() - m.lambdas_[k, 0]) < 4 * np.sqrt(m.lambdas_[k, 0] / c)
    given = np.array([1, 0, 2])
    np.testing.assert_array_equal(m.sample(labels=given, random_state=1)[2], given)
    with pytest.raises(ParameterError, match="classes 0..2"):
        m.sample(labels=[[0, 1]])
    with pytest.raises(ParameterError, match="n_samples"):
        m.sample(-1)
    covariates = bigem.StructuralModel(measurement, "covariate", n_steps=2).fit(X, rng.normal(size=(len(z), 1)))
    with pytest.raises(ParameterError, match="predict_proba"):
        covariates.sample(5)


@pytest.mark.parametrize("kw", [dict(n_steps=2), dict(n_steps=3, correction="BCH"), dict(n_steps=3, correction="ML"),
                                dict(n_steps=3, assignment="soft"), dict(n_steps=1)],
                         ids=["two-step", "BCH", "ML", "naive-soft", "one-step"])
def test_structural_columns_of_files_stream_with_the_rows_chunk_by_chunk(fitted, tmp_path, kw):
    """Y named in X's files is read with X's rows, chunk by chunk (here 997 rows a chunk,
    from three files), never whole: the same fit and posteriors as Y given as an array,
    and sample weights ride with the rows."""
    X, Y, z, _, _ = fitted
    rng = np.random.default_rng(8)
    outcome = Y[:, 0].copy()
    outcome[rng.random(len(z)) < 0.05] = np.nan
    passed = (rng.random(len(z)) < np.array([.2, .5, .9])[z]).astype(float)
    age = rng.normal(0.4 * z, 1.0)
    frame = pd.DataFrame(X, columns=[f"q{j}" for j in range(6)]).assign(income=outcome, passed=passed)
    folder = tmp_path / "survey"
    folder.mkdir()
    for i, part in enumerate(np.array_split(np.arange(len(z)), 3)):
        frame.iloc[part].to_parquet(folder / f"part{i}.parquet")
    weights = rng.uniform(0.5, 2.0, len(z))
    fresh = bigem.BernoulliMixture(K, n_init=2, random_state=0, tol=1e-8, max_iter=500, dtype="float64",
                                   chunk_size=997)
    families = {"income": "gaussian", "passed": "bernoulli"}
    by_array = bigem.StructuralModel(fresh, ["gaussian", "bernoulli"], **kw).fit(X, np.c_[outcome, passed],
                                                                                sample_weight=weights)
    by_file = bigem.StructuralModel(fresh, families, **kw).fit(str(folder), ["income", "passed"],
                                                               sample_weight=weights)
    assert by_file.structural_names_ == ["income", "passed"]
    for name in ("means_", "covariances_", "bernoulli_probabilities_", "weights_"):
        np.testing.assert_allclose(getattr(by_file, name), getattr(by_array, name), atol=1e-10, err_msg=name)
    np.testing.assert_allclose(by_file.predict_proba(str(folder), ["income", "passed"]),
                               by_array.predict_proba(X, np.c_[outcome, passed]), atol=1e-10)
    if kw["n_steps"] == 2:  # covariates stream the same way
        single = tmp_path / "single.parquet"
        frame.iloc[:, :6].assign(age=age).to_parquet(single)
        cov_file = bigem.StructuralModel(fresh, "covariate", n_steps=2).fit(str(single), "age")
        cov_array = bigem.StructuralModel(fresh, "covariate", n_steps=2).fit(X, age)
        np.testing.assert_allclose(cov_file.coef_, cov_array.coef_, atol=1e-8)


def test_a_bad_value_in_a_streamed_structural_column_is_named_with_its_row(fitted, tmp_path):
    X, Y, _, _, _ = fitted
    items = pd.DataFrame(X, columns=[f"q{j}" for j in range(6)])
    income = Y[:, 0].copy()
    income[1234] = np.inf
    grade = np.ones(len(X))
    grade[77] = 1.5
    fresh = bigem.BernoulliMixture(K, random_state=0, dtype="float64", chunk_size=500)
    cases = [("income", income, "gaussian", "infinite value at row 1234"),
             ("grade", grade, "categorical", "'grade' is categorical but holds values other than the codes"),
             ("label", np.array(["a"] * len(X), dtype=object), "gaussian", "'label' is not numeric")]
    for name, values, family, message in cases:
        path = tmp_path / f"{name}.parquet"
        items.assign(**{name: values}).to_parquet(path)
        with pytest.raises(DataError, match=message):
            bigem.StructuralModel(fresh, family).fit(str(path), name)


def test_files_that_fit_the_cache_budget_are_decoded_once(fitted, tmp_path, monkeypatch):
    """A structural fit reads X's files many times; within the measurement model's
    cache_budget the decoded chunks (Y's kept columns with them) are kept after the
    first pass, as a fit keeps them, and later passes read no file."""
    from bigem.sources.tables import TableSource

    X, Y, _, _, _ = fitted
    path = tmp_path / "survey.parquet"
    pd.DataFrame(X, columns=[f"q{j}" for j in range(6)]).assign(income=Y[:, 0]).to_parquet(path)
    reads = []
    batches = TableSource._batches
    monkeypatch.setattr(TableSource, "_batches", lambda self, *a, **k: reads.append(1) or batches(self, *a, **k))
    fits = {}
    for budget in ("1GB", 0):
        measurement = bigem.BernoulliMixture(K, n_init=2, random_state=0, dtype="float64", tol=1e-8,
                                             cache_budget=budget).fit(pd.DataFrame(X, columns=[f"q{j}" for j in
                                                                                               range(6)]))
        reads.clear()
        fits[budget] = bigem.StructuralModel(measurement, n_steps=2).fit(str(path), "income")
        fits[budget].reads = len(reads)
    assert fits["1GB"].reads == 1 < fits[0].reads  # one pass decodes; the others read the kept chunks
    np.testing.assert_allclose(fits["1GB"].means_, fits[0].means_, atol=1e-12)


@pytest.mark.parametrize("kw", [dict(n_steps=2), dict(n_steps=3, correction="ML")], ids=["two-step", "ML"])
def test_squarem_reaches_the_optimum_in_fewer_passes(kw):
    """Poorly separated classes make EM slow; SQUAREM's passes reach at least plain EM's
    log-likelihood, and the same estimates, in a fraction of the passes."""
    rng = np.random.default_rng(0)
    n = 6000
    z = rng.integers(0, K, n)
    X = (rng.random((n, 6)) < np.array([[.7] * 3 + [.4] * 3, [.4] * 3 + [.7] * 3, [.55] * 6])[z]).astype(float)
    Y = rng.normal(np.array([0.0, 0.5, 1.0])[z], 1.0)[:, None]
    measurement = bigem.BernoulliMixture(K, n_init=2, random_state=0, dtype="float64", tol=1e-10,
                                         max_iter=3000, accelerate="squarem").fit(X)
    plain = bigem.StructuralModel(measurement, tol=1e-11, max_iter=20_000, **kw).fit(X, Y)
    fast = bigem.StructuralModel(measurement, tol=1e-11, max_iter=20_000, accelerate="squarem", **kw).fit(X, Y)
    assert fast.converged_ and fast.n_iter_ < plain.n_iter_ / 2, (fast.n_iter_, plain.n_iter_)
    assert fast.lower_bound_ >= plain.lower_bound_ - 1e-12
    np.testing.assert_allclose(fast.means_, plain.means_, atol=2e-3)
    for steps in (dict(n_steps=1), dict(n_steps=3, correction="BCH")):  # no EM to extrapolate, or left to plain EM
        with pytest.raises(ParameterError, match="applies to the EM of two steps and of ML three steps"):
            bigem.StructuralModel(measurement, accelerate="squarem", **steps).fit(X, Y)


def test_squarem_accelerates_a_covariate_model():
    """The covariate model's Newton step is no exact M-step but no jump either: SQUAREM
    extrapolates it (it reset its cycle every pass, and so did nothing), to the same
    optimum in fewer passes."""
    rng = np.random.default_rng(4)
    n = 4000
    z = rng.normal(size=(n, 1))
    c = (rng.random(n) < 1 / (1 + np.exp(-8.0 * z[:, 0]))).astype(int)
    X = (rng.random((n, 6)) < np.where(c[:, None] == 1, 0.75, 0.3)).astype(float)
    measurement = bigem.BernoulliMixture(2, alpha=0.0, tol=1e-10, max_iter=2000, random_state=0, dtype="float64").fit(X)
    fits = [bigem.StructuralModel(measurement, structural="covariate", n_steps=3, correction="ML", max_iter=300,
                                  tol=1e-10, accelerate=a).fit(X, z) for a in (None, "squarem")]
    plain, fast = fits
    assert plain.converged_ and fast.converged_
    assert fast.n_iter_ <= plain.n_iter_ / 2
    np.testing.assert_allclose(fast.lower_bound_, plain.lower_bound_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(fast.coef_, plain.coef_, rtol=0, atol=2e-3)


def test_one_step_warns_of_its_own_fit_not_of_the_measurement_start():
    """n_steps=1 starts its joint fit from the measurement model fitted alone: that fit is
    a start, whose ConvergenceWarning said nothing of the answer (StepMix runs no such fit
    and warns of none); the joint fit still says when it does not converge."""
    rng, z, X = data(3000, seed=2)
    Y = rng.normal(MEANS[z], 1.0)[:, None]
    start = bigem.BernoulliMixture(K, max_iter=3, random_state=0, dtype="float64")
    with pytest.warns(bigem.errors.ConvergenceWarning):
        bigem.BernoulliMixture(**start.get_params()).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error", bigem.errors.ConvergenceWarning)
        m = bigem.StructuralModel(start, "gaussian", n_steps=1, tol=1e-8).fit(X, Y)
    assert m.converged_
    with pytest.warns(bigem.errors.ConvergenceWarning):
        bigem.StructuralModel(start, "gaussian", n_steps=1, max_iter=2).fit(X, Y)


def test_read_only_outcomes_are_read_without_a_warning():
    """Y read-only (a data frame's values under copy-on-write, a memory map): read as it
    is, without torch's "the given NumPy array is not writable" warning."""
    rng, z, X = data(2000, seed=3)
    Y = rng.normal(MEANS[z], 1.0)[:, None]
    Y.setflags(write=False)
    measurement = bigem.BernoulliMixture(K, random_state=0, dtype="float64").fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = bigem.StructuralModel(measurement, "gaussian", n_steps=3, correction="BCH").fit(X, Y)
        assert np.isfinite(m.predict_proba(X, Y)).all()


@pytest.mark.parametrize("family", ["gaussian", "bernoulli", "categorical", "poisson"])
def test_a_missing_outcome_at_prediction_is_marginalised_though_the_fit_had_none(fitted, family):
    """Fitted on a Y without gaps, a row whose Y is missing computed NaN log-densities:
    predict_proba was NaN and predict said class 0, without a word. Its class now rests
    on what it observed: x alone for a row missing all of Y (the measurement's posterior)."""
    X, Y, z, measurement, _ = fitted
    rng = np.random.default_rng(4)
    outcome = {"gaussian": Y, "bernoulli": (Y > 0).astype(float), "categorical": np.clip(np.round(Y), 0, 3),
               "poisson": np.abs(np.round(Y))}[family]
    m = bigem.StructuralModel(measurement, family, n_steps=3, correction="ML").fit(X, outcome)
    gapped = outcome.copy()
    rows = rng.choice(len(X), 20, replace=False)
    gapped[rows] = np.nan
    proba = m.predict_proba(X, gapped)
    np.testing.assert_allclose(proba[rows], measurement.predict_proba(X[rows]), atol=1e-12)
    others = np.setdiff1d(np.arange(len(X)), rows)
    np.testing.assert_allclose(proba[others], m.predict_proba(X, outcome)[others], rtol=1e-12)
    assert np.isfinite(m.score(X, gapped))
    np.testing.assert_array_equal(m.predict(X, gapped), proba.argmax(1))


def test_a_missing_covariate_at_prediction_is_refused_by_row(fitted):
    X, _, _, measurement, _ = fitted
    Z = np.random.default_rng(5).normal(size=(len(X), 2))
    m = bigem.StructuralModel(measurement, "covariate", n_steps=3, correction="ML").fit(X, Z)
    Z[7, 1] = np.nan
    with pytest.raises(DataError, match=r"^Y has a missing value \(NaN\) in a covariate column at row 7: the "
                                        r"covariates give the class probabilities and cannot be missing"):
        m.predict(X, Z)


def test_a_covariate_bootstrap_is_reproducible_whatever_the_measurements_random_state():
    """Replicates refit from the fit: the covariate start of a measurement model fitted
    beforehand draws nothing (a draw from numpy's global stream, the measurement's
    random_state=None, made two calls of the same bootstrap differ by 2e-7)."""
    rng, z, X = data(n=1500, seed=2)
    Z = rng.normal(z, 1.0)[:, None]
    measurement = bigem.BernoulliMixture(K, init_params="random", alpha=0.0, tol=1e-6, max_iter=5000, dtype="float64",
                                         n_init=3)
    model = bigem.StructuralModel(measurement, "covariate", n_steps=2).fit(X, Z)
    first, second = (model.bootstrap(X, Z, n_boot=3, random_state=0) for _ in range(2))
    np.testing.assert_array_equal(first.se()["coef_"], second.se()["coef_"])
