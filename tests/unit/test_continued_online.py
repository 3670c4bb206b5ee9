"""partial_fit after fit continues the fit (its statistics are the running average, its
rows the steps taken), instead of replacing it by the first batch's; and partial_fit
keeps the fitted feature names, as scikit-learn's does."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.errors import DataError


def test_one_gaussian_continues_by_the_next_step_of_the_schedule():
    # K = 1 is closed form: the fit's statistics are the data's moments, and a batch
    # moves them by gamma = (t + offset) ** -decay, t the steps of the fit's rows plus one
    rng = np.random.default_rng(0)
    X = rng.normal([1.0, -2.0], [1.0, 3.0], size=(5000, 2))
    batch = rng.normal([4.0, 0.0], 1.0, size=(40, 2))
    gm = bigem.GaussianMixture(1, covariance_type="full", dtype="float64", reg_covar=0.0, batch_size=1000,
                               learning_decay=0.7, learning_offset=10.0, random_state=0).fit(X)
    assert not hasattr(gm, "n_steps_")
    gm.partial_fit(batch)
    t = math.ceil(len(X) / 1000) + 1
    gamma = (t + 10.0) ** -0.7
    mean = (1 - gamma) * X.mean(0) + gamma * batch.mean(0)
    second = (1 - gamma) * (X.T @ X) / len(X) + gamma * (batch.T @ batch) / len(batch)
    np.testing.assert_allclose(gm.means_[0], mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_[0], second - np.outer(mean, mean), rtol=0, atol=1e-9)
    assert gm.n_steps_ == t


def test_a_small_batch_barely_moves_a_converged_mixture():
    rng = np.random.default_rng(1)
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6]], float)
    X = np.concatenate([rng.normal(c, 1.0, size=(3000, 2)) for c in centres])
    held_out = np.concatenate([rng.normal(c, 1.0, size=(500, 2)) for c in centres])
    gm = bigem.GaussianMixture(4, dtype="float64", random_state=0).fit(X)
    before = gm.score(held_out)
    gm.partial_fit(X[rng.choice(len(X), 30, replace=False)])
    # the batch is blended in by the schedule's next step (12 ** -0.7 = 0.18), not
    # substituted for the fit (which cost 0.73 nats here, and weights of 0.13 to 0.40)
    assert before - gm.score(held_out) < 0.05
    np.testing.assert_allclose(gm.weights_, 0.25, atol=0.05)


def test_partial_fit_keeps_the_fitted_feature_names():
    rng = np.random.default_rng(2)
    df = pd.DataFrame({"a": rng.normal(0, 1, 400), "b": rng.normal(100, 1, 400)})
    gm = bigem.GaussianMixture(1, random_state=0)
    gm.partial_fit(df)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        gm.partial_fit(df.to_numpy())
    assert list(gm.feature_names_in_) == ["a", "b"]
    with pytest.raises(DataError, match="Feature names must be in the same order"):
        gm.partial_fit(df[["b", "a"]])
    np.testing.assert_allclose(gm.means_[0], [0, 100], atol=0.3)
