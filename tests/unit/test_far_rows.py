"""A far row does not cost other rows their digits: in float32 the rows lose a shift
before the cast. At inference that shift is the fitted model's centre, not the mean of
the rows scored; in a fit it is the first rows' mean, unless a far row has pulled the
mean out of their bulk (then their median)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import bigem
from bigem.sources.arrays import choose_shift


def _two_clusters(seed=0):
    rng = np.random.default_rng(seed)
    return np.r_[rng.normal(size=(300, 2)), rng.normal(size=(300, 2)) + 5]


def test_scores_of_a_row_do_not_depend_on_the_rows_scored_beside_it():
    X = _two_clusters()
    gm = bigem.GaussianMixture(2, random_state=0).fit(X)  # float32, the default
    alone = gm.score_samples(X[:5])
    far = np.r_[X[:5], [[1e10, -1e10]]]
    np.testing.assert_array_equal(gm.score_samples(far)[:5], alone)
    np.testing.assert_array_equal(gm.predict_proba(far)[:5], gm.predict_proba(X[:5]))
    exact = bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X).score_samples(X[:5])
    np.testing.assert_allclose(alone, exact, rtol=0, atol=1e-4)


def test_hmm_posteriors_of_a_sequence_do_not_depend_on_another_far_one():
    X = _two_clusters()
    hmm = bigem.GaussianHMM(2, random_state=0).fit(X)
    alone = hmm.predict_proba(X[:20])
    beside = hmm.predict_proba(np.r_[X[:20], [[1e9, -1e9]]], lengths=[20, 1])[:20]
    np.testing.assert_array_equal(beside, alone)


def _offset_with_a_far_row():
    rng = np.random.default_rng(0)
    X = (_two_clusters() + 1e6)[rng.permutation(600)]
    X[3] = [1e12, -1e12]  # among the first rows, which set a fit's shift
    return X


@pytest.mark.parametrize("source", ["array", "npy"])
def test_a_far_row_among_the_first_does_not_cost_a_float32_fit_its_digits(source, tmp_path):
    X = _offset_with_a_far_row()
    data = X
    if source == "npy":
        data = str(tmp_path / "x.npy")
        np.save(data, X)
    # float32 used to shift by the mean (1e9 from every other row): means 42 off, the
    # two clusters merged, and a lower bound of +11.97, impossible for this data
    # the far row's own component is held to float32's spacing at 1e12, and the fit says so
    with pytest.warns(bigem.errors.PrecisionWarning, match=r"\(mean 1e\+12\) to a spacing of 6.55e\+04"):
        single = bigem.GaussianMixture(3, random_state=0).fit(data)
    exact = bigem.GaussianMixture(3, random_state=0, dtype="float64").fit(X)
    order, exact_order = np.argsort(single.means_[:, 0]), np.argsort(exact.means_[:, 0])
    np.testing.assert_allclose(single.means_[order][:2], exact.means_[exact_order][:2], rtol=0, atol=1e-3)
    np.testing.assert_allclose(single.weights_[order], exact.weights_[exact_order], rtol=0, atol=1e-4)
    assert abs(single.lower_bound_ - exact.lower_bound_) < 1e-5


@pytest.mark.parametrize("rows", [
    np.random.default_rng(1).exponential(size=(1024, 3)) * 1e8,  # skewed
    (np.random.default_rng(2).random((1024, 3)) < 0.1) * 1e9,  # mostly one value
    np.random.default_rng(3).standard_t(3, size=(1024, 3)) + 1e7,  # heavy tails
])
def test_ordinary_data_keeps_the_first_rows_mean_bit_for_bit(rows):
    shift = choose_shift(rows, rows.dtype, torch.float32, "auto")
    assert torch.equal(shift, torch.from_numpy(rows).sum(0) / rows.shape[0])


def test_a_feature_with_a_far_row_alone_takes_the_median():
    rows = np.random.default_rng(4).normal(size=(1024, 2)) + 1e6
    rows[7, 1] = 1e15
    shift = choose_shift(rows, rows.dtype, torch.float32, "auto")
    assert shift[0] == torch.from_numpy(rows[:, 0]).sum() / 1024  # the mean, as before
    assert shift[1] == float(np.median(rows[:, 1]))


@pytest.mark.parametrize("cls", [bigem.GaussianMixture, bigem.BayesianGaussianMixture])
def test_posteriors_of_a_row_too_far_to_resolve_still_sum_to_one(cls):
    """A tied model's K log-joints of a row 1e20 away round to one value (the shared
    quadratic term swamps the linear one that differs): predict_proba gave each component
    probability 1 (rows summing to K, as scikit-learn's do). Its score stays exact."""
    rng = np.random.default_rng(3)
    X = np.r_[rng.normal(0, 1, (200, 2)), rng.normal(1e3, 1, (200, 2)), rng.normal(-1e3, 1, (200, 2))]
    gm = cls(n_components=3, covariance_type="tied", random_state=0, dtype="float64").fit(X)
    far = np.array([[1e20, 0.0], [0.0, 1e25], [1e3, 1.0]])
    proba = gm.predict_proba(far)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-15)
    assert np.isfinite(gm.score_samples(far)).all() and proba[2].max() > 0.999
