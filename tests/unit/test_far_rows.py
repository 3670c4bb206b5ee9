"""A far row does not cost other rows their digits at inference: in float32 the rows
lose a shift before the cast, and that shift is the fitted model's centre, not the mean
of the rows scored."""

from __future__ import annotations

import numpy as np

import bigem


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
