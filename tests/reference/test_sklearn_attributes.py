"""The fitted attributes are the model, as in scikit-learn: assigned or changed in
place, ``means_``, ``weights_`` and ``precisions_cholesky_`` change what ``predict``
and ``score`` compute (``covariances_`` what ``sample`` draws), and an estimator whose
attributes were all set by hand predicts without a fit. Each case is checked against
scikit-learn's own estimator given the same changes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import bigem
import bigem.errors
from bigem import BayesianGaussianMixture, CategoricalMixture, GaussianMixture, PoissonMixture
from bigem._core.errors import ParameterError

COV_TYPES = ("full", "tied", "diag", "spherical")


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _data(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(m, 1.0, (200, 2)) for m in (0.0, 3.0, 6.0)])


def _pair(covariance_type: str):
    X = _data()
    ref = SkGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    ours = GaussianMixture(3, covariance_type=covariance_type, random_state=0, dtype="float64").fit(X)
    return X, ref, ours


def _same_inference(ref, ours, X) -> None:
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-12)
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), ref.predict(X))


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_assigned_and_in_place_changes_change_the_model_as_in_scikit_learn(covariance_type):
    X, ref, ours = _pair(covariance_type)
    before = ours.score(X)
    for m in (ref, ours):
        m.means_ = m.means_ + 0.7  # assigned
        m.weights_[:] = [0.6, 0.3, 0.1]  # in place
    _same_inference(ref, ours, X)
    assert ours.score(X) < before
    for m in (ref, ours):
        m.precisions_cholesky_ *= 1.2  # what scikit-learn scores with
    _same_inference(ref, ours, X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_covariances_drive_sampling_and_the_precision_factors_scoring_as_in_scikit_learn(covariance_type):
    X, ref, ours = _pair(covariance_type)
    for m in (ref, ours):
        m.covariances_ = m.covariances_ * 4.0
        m.random_state = 3
    _same_inference(ref, ours, X)  # scikit-learn scores with precisions_cholesky_, left as fitted
    np.testing.assert_allclose(ours.sample(50)[0], ref.sample(50)[0], atol=1e-10)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_a_model_set_by_hand_predicts_without_a_fit(covariance_type):
    X, fitted, _ = _pair(covariance_type)
    ref = SkGaussianMixture(3, covariance_type=covariance_type)
    ours = GaussianMixture(3, covariance_type=covariance_type, dtype="float64")
    for m in (ref, ours):
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            setattr(m, name, getattr(fitted, name).copy())
    _same_inference(ref, ours, X)
    assert ours.n_features_in_ == 2


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_arrays_of_another_number_of_components_are_the_model_as_in_scikit_learn(covariance_type):
    X, ref, ours = _pair(covariance_type)
    keep = np.array([True, False, True])  # a component pruned: the arrays say K = 2, not n_components
    for m in (ref, ours):
        m.weights_ = m.weights_[keep] / m.weights_[keep].sum()
        m.means_ = m.means_[keep]
        if covariance_type != "tied":
            m.covariances_, m.precisions_cholesky_ = m.covariances_[keep], m.precisions_cholesky_[keep]
    _same_inference(ref, ours, X)
    assert ours.predict_proba(X).shape == (len(X), 2)
    fresh_ref = SkGaussianMixture(covariance_type=covariance_type)
    fresh = GaussianMixture(covariance_type=covariance_type, dtype="float64")
    for m in (fresh_ref, fresh):  # set by hand on an estimator of the default n_components=1
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            setattr(m, name, getattr(ref, name).copy())
    _same_inference(fresh_ref, fresh, X)


def test_a_pruned_model_continues_the_same_whether_or_not_inference_ran_first():
    """The arrays' K was taken up when inference first read them: a warm fit or a
    partial_fit then did one thing after predict and another without it (continuing the
    old three-component online state)."""
    X = _data()
    results = []
    for infer in (False, True):
        gm = GaussianMixture(3, random_state=0, dtype="float64").fit(X)
        keep = np.array([True, False, True])
        gm.weights_ = gm.weights_[keep] / gm.weights_[keep].sum()
        gm.means_, gm.covariances_ = gm.means_[keep], gm.covariances_[keep]
        gm.precisions_cholesky_ = gm.precisions_cholesky_[keep]
        if infer:
            gm.predict(X)
        with pytest.raises(ParameterError, match=r"n_components is 3, but the fitted model's is 2, so partial_fit"):
            gm.partial_fit(X)
        gm.set_params(n_components=2)
        results.append(gm.partial_fit(X).weights_)
    np.testing.assert_array_equal(results[0], results[1])
    assert results[0].shape == (2,)


def test_categorical_tables_assigned_anew_are_the_model():
    """The live attribute was the private flat array: a new list of tables (pruned, or
    just assigned) was ignored or refused naming an attribute the user never set."""
    rng = np.random.default_rng(0)
    C = rng.integers(0, 3, (300, 2)).astype(str)
    model = CategoricalMixture(3, random_state=0).fit(C)
    keep = np.array([True, False, True])
    model.weights_ = model.weights_[keep] / model.weights_[keep].sum()
    model.probabilities_ = [p[keep] for p in model.probabilities_]
    logs = [np.log(p[:, np.searchsorted(c, C[:, j])]) for j, (p, c) in enumerate(zip(model.probabilities_,
                                                                                   model.categories_))]
    joint = np.log(model.weights_)[:, None] + sum(logs)
    np.testing.assert_allclose(model.predict_proba(C), np.exp(joint - np.logaddexp.reduce(joint, 0)).T, atol=1e-6)


def test_a_mixed_models_categorical_tables_are_the_model(tmp_path):
    """MixedMixture read its private flat array: a categorical table assigned anew, or
    changed in place, left predictions and a warm start on the old tables."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 2, 400)
    X = np.c_[rng.normal(3.0 * z, 1.0), rng.integers(0, 3, 400)]
    model = bigem.MixedMixture(2, families=["gaussian", "categorical"], random_state=0, dtype="float64").fit(X)

    def by_hand(m):
        norm = -0.5 * ((X[:, :1] - m.means_[:, 0]) ** 2 / m.covariances_[:, 0] + np.log(2 * np.pi * m.covariances_[:, 0]))
        joint = np.log(m.weights_) + norm + np.log(m.probabilities_[0][:, X[:, 1].astype(int)].T)
        return np.logaddexp.reduce(joint, 1)

    model.probabilities_ = [np.full((2, 3), 1 / 3)]
    np.testing.assert_allclose(model.score_samples(X), by_hand(model), rtol=1e-12)
    model.probabilities_[0][:] = [[0.5, 0.3, 0.2], [0.2, 0.3, 0.5]]  # in place
    np.testing.assert_allclose(model.score_samples(X), by_hand(model), rtol=1e-12)
    path = str(tmp_path / "mixed.bigem")
    model.save(path)
    np.testing.assert_allclose(bigem.load(path).score_samples(X), by_hand(model), rtol=1e-12)
    start = model.score(X)
    model.set_params(warm_start=True, max_iter=1, tol=0.0)
    with pytest.warns(bigem.errors.ConvergenceWarning):
        model.fit(X)
    # the one iteration's E-step is at the tables set, its M-step a step up from them
    assert model.lower_bound_ == pytest.approx(start, abs=1e-12) and model.score(X) > start


def test_a_model_set_by_hand_saves_and_loads(tmp_path):
    fitted = _pair("diag")[2]
    ours = GaussianMixture(covariance_type="diag", dtype="float64")
    ours.weights_, ours.means_, ours.covariances_ = fitted.weights_, fitted.means_, fitted.covariances_
    path = str(tmp_path / "hand.bigem")
    ours.save(path)  # AttributeError: no converged_
    loaded = bigem.load(path)
    np.testing.assert_array_equal(loaded.predict_proba(_data()), ours.predict_proba(_data()))
    assert loaded.converged_ is False and loaded.n_iter_ == 0


def test_a_model_set_by_hand_from_covariances_alone_finds_its_precision_factors():
    X, fitted, _ = _pair("full")
    ours = GaussianMixture(3, dtype="float64")
    ours.weights_, ours.means_, ours.covariances_ = fitted.weights_, fitted.means_, fitted.covariances_
    _same_inference(fitted, ours, X)


def test_warm_start_continues_from_the_changed_attributes_as_scikit_learn_does():
    X, ref, ours = _pair("full")
    for m in (ref, ours):
        m.set_params(warm_start=True, max_iter=3)
        m.means_ = m.means_[::-1].copy() + 0.3
        m.fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-9)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("name, value, match", [
    ("weights_", np.array([0.7, 0.7, 0.1]), "weights must be non-negative and sum to 1, got sum 1.5"),
    ("means_", np.zeros((2, 2)), "tensor shapes do not match n_components=3"),
    ("precisions_cholesky_", -np.ones((3, 2)), "precisions_cholesky_ must have a positive diagonal"),
])
def test_attributes_that_make_no_model_are_named(name, value, match):
    X, _, ours = _pair("diag")
    setattr(ours, name, value)
    with pytest.raises(ParameterError, match=rf"fitted attributes of this GaussianMixture .* {match}.*or call fit"):
        ours.predict(X)


def test_an_unfitted_estimator_with_some_attributes_is_still_not_fitted():
    from sklearn.exceptions import NotFittedError

    ours = GaussianMixture(3)
    ours.weights_ = np.full(3, 1 / 3)
    with pytest.raises(NotFittedError):
        ours.predict(_data())


def test_the_variational_mixture_reads_its_changed_attributes_as_scikit_learn_does():
    X = _data()
    ref = SkBayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    ours = BayesianGaussianMixture(n_components=3, random_state=0, dtype="float64").fit(X)
    for m in (ref, ours):
        m.means_ = m.means_ + 0.5
        m.degrees_of_freedom_ = m.degrees_of_freedom_ * 2.0
    _same_inference(ref, ours, X)
    for m in (ref, ours):
        m.precisions_cholesky_ = m.precisions_cholesky_ * 0.9  # what scikit-learn scores with
    _same_inference(ref, ours, X)


def test_other_families_read_their_changed_attributes_too():
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.poisson(1.0, (200, 2)), rng.poisson(6.0, (200, 2))])
    m = PoissonMixture(2, random_state=0, dtype="float64").fit(X)
    rates = m.lambdas_.copy()
    m.lambdas_ *= 3.0
    log_rates = np.log(rates * 3.0)
    from scipy.special import gammaln, logsumexp

    joint = X @ log_rates.T - (rates * 3.0).sum(1) - gammaln(X + 1).sum(1, keepdims=True) + np.log(m.weights_)
    np.testing.assert_allclose(m.score_samples(X), logsumexp(joint, axis=1), rtol=1e-10)


@pytest.mark.parametrize("variational", [False, True])
def test_scikit_learns_private_methods_users_call_give_its_answers(variational):
    X = _data()
    if variational:
        ref = SkBayesianGaussianMixture(n_components=3, random_state=0).fit(X)
        ours = BayesianGaussianMixture(n_components=3, random_state=0, dtype="float64").fit(X)
    else:
        ref = SkGaussianMixture(3, random_state=0).fit(X)
        ours = GaussianMixture(3, random_state=0, dtype="float64").fit(X)
    for name in ("_estimate_weighted_log_prob", "_estimate_log_prob"):
        np.testing.assert_allclose(getattr(ours, name)(X), getattr(ref, name)(X), rtol=1e-9, err_msg=name)
    np.testing.assert_allclose(ours._estimate_log_weights(), ref._estimate_log_weights(), rtol=1e-10)
    for a, b in zip(ours._get_parameters(), ref._get_parameters(), strict=True):
        np.testing.assert_allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-6, atol=1e-9)
    if not variational:
        other = GaussianMixture(3, dtype="float64")
        other._set_parameters(ref._get_parameters())
        np.testing.assert_allclose(other.precisions_, ref.precisions_, rtol=1e-12)
        np.testing.assert_allclose(other.score_samples(X), ref.score_samples(X), rtol=1e-10)
