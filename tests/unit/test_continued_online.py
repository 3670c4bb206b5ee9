"""partial_fit after fit continues the fit (its statistics are the running average, its
rows the steps taken), instead of replacing it by the first batch's; and partial_fit
keeps the fitted feature names, as scikit-learn's does."""

from __future__ import annotations

import copy
import math

import numpy as np
import pandas as pd
import pytest

import bigem
from bigem.errors import DataError


def test_one_gaussian_continues_by_the_next_step_of_the_schedule():
    # K = 1 is closed form: the fit's statistics are the data's moments, and a batch
    # moves them by gamma = (t + offset) ** -decay, t the steps of the fit's rows plus one,
    # in proportion to its rows against a full batch's (40 of 1000)
    rng = np.random.default_rng(0)
    X = rng.normal([1.0, -2.0], [1.0, 3.0], size=(5000, 2))
    batch = rng.normal([4.0, 0.0], 1.0, size=(40, 2))
    gm = bigem.GaussianMixture(1, covariance_type="full", dtype="float64", reg_covar=0.0, batch_size=1000,
                               learning_decay=0.7, learning_offset=10.0, random_state=0).fit(X)
    assert not hasattr(gm, "n_steps_")
    gm.partial_fit(batch)
    t = math.ceil(len(X) / 1000) + 1
    gamma = (t + 10.0) ** -0.7 * 40 / 1000
    mean = (1 - gamma) * X.mean(0) + gamma * batch.mean(0)
    second = (1 - gamma) * (X.T @ X) / len(X) + gamma * (batch.T @ batch) / len(batch)
    np.testing.assert_allclose(gm.means_[0], mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(gm.covariances_[0], second - np.outer(mean, mean), rtol=0, atol=1e-9)
    assert gm.n_steps_ == t


def test_a_short_last_batch_steps_in_proportion_to_its_rows():
    # one pass of 1000 + 1000 + 1 rows: the 1-row remnant moves the running moments by
    # gamma_3 / 1000, not by the full step a 1000-row batch takes (K = 1: closed form)
    rng = np.random.default_rng(4)
    X = rng.normal([0.0, 5.0], 1.0, size=(2001, 2))
    X[-1] = [40.0, -40.0]
    gm = bigem.GaussianMixture(1, algorithm="online", batch_size=1000, max_iter=1, dtype="float64", reg_covar=0.0,
                               learning_decay=0.7, learning_offset=10.0, random_state=0).fit(X)
    g2, g3 = (2 + 10.0) ** -0.7, (3 + 10.0) ** -0.7 / 1000
    first, second = X[:1000], X[1000:2000]
    mean = (1 - g3) * ((1 - g2) * first.mean(0) + g2 * second.mean(0)) + g3 * X[-1]
    np.testing.assert_allclose(gm.means_[0], mean, rtol=0, atol=1e-10)
    assert gm.n_steps_ == 3
    # partial_fit given batches of its own size (below batch_size) takes the full steps
    streamed = bigem.GaussianMixture(1, dtype="float64", reg_covar=0.0, learning_decay=0.7, learning_offset=10.0)
    for part in (first, second):
        streamed.partial_fit(part)
    np.testing.assert_allclose(streamed.means_[0], (1 - g2) * first.mean(0) + g2 * second.mean(0), rtol=0,
                               atol=1e-10)


def test_a_batch_steps_by_its_weight_not_its_rows():
    """Zero-weight rows add nothing to a batch (a row padded with 99 of them took a full
    step), and a row of weight 100 steps as 100 rows; a new batch_size starts afresh."""
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (300, 2)), rng.normal(6, 1, (300, 2))]
    rng.shuffle(X)

    def moved(batch, weights, **kw):
        gm = bigem.GaussianMixture(2, random_state=0, batch_size=100, dtype="float64")
        gm.partial_fit(X[:100])
        gm.partial_fit(X[100:200])
        gm.set_params(**kw)
        before = gm.weights_.copy()
        gm.partial_fit(batch, sample_weight=weights)
        return np.abs(gm.weights_ - before).max()

    alone = moved(X[[250]], [1.0])
    padded = moved(np.r_[X[[250]], X[300:399]], np.r_[1.0, np.zeros(99)])
    heavy, copies = moved(X[[250]], [100.0]), moved(np.repeat(X[[250]], 100, 0), np.ones(100))
    np.testing.assert_allclose(padded, alone, rtol=1e-9)
    np.testing.assert_allclose(heavy, copies, rtol=1e-9)
    np.testing.assert_allclose(alone, heavy / 100, rtol=0.02)  # a hundredth of the step
    assert moved(X[[250]], [1.0], batch_size=1) == pytest.approx(heavy, rel=0.02)  # a full batch of 1 now


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


def _copy(est):
    import copy

    return copy.deepcopy(est)


@pytest.mark.parametrize("family", ["gaussian", "categorical", "mixed", "poisson", "multinomial"])
def test_partial_fit_after_load_goes_on_as_in_the_saved_estimator(tmp_path, family):
    rng = np.random.default_rng(3)
    z = rng.integers(0, 2, 3000)
    if family == "gaussian":
        X, est = rng.normal(4.0 * z[:, None], 1.0, (3000, 2)), bigem.GaussianMixture(2, dtype="float64")
    elif family == "categorical":
        X, est = rng.binomial(2, np.where(z[:, None] == 1, 0.8, 0.2), (3000, 3)), bigem.CategoricalMixture(2)
    elif family == "mixed":
        X = pd.DataFrame({"x": rng.normal(4.0 * z, 1.0), "c": np.where(rng.random(3000) < 0.2 + 0.6 * z, "a", "b")})
        est = bigem.MixedMixture(2, dtype="float64")
    elif family == "poisson":
        X, est = rng.poisson(np.where(z[:, None] == 1, 6.0, 1.0), (3000, 3)), bigem.PoissonMixture(2, dtype="float64")
    else:
        X, est = rng.poisson(np.where(z[:, None] == 1, [5.0, 1, 1], [1.0, 1, 5]), (3000, 3)), \
            bigem.MultinomialMixture(2, dtype="float64")
    est.set_params(random_state=0)
    batches = [X[:1000], X[1000:1100], X[1100:1130]] if not isinstance(X, pd.DataFrame) else \
        [X.iloc[:1000], X.iloc[1000:1100], X.iloc[1100:1130]]
    est.partial_fit(batches[0])  # an online state from partial_fit ...
    path = tmp_path / "m.bigem"
    est.save(path)
    kept, back = _copy(est), bigem.load(path)
    assert back.n_steps_ == est.n_steps_ == 1  # the attribute too (load left it unset until the next step)
    for batch in batches[1:]:
        kept.partial_fit(batch)
        back.partial_fit(batch)
    assert back.n_steps_ == kept.n_steps_ == 3
    np.testing.assert_array_equal(back.weights_, kept.weights_)
    exact = est.fit(X)  # ... and from an exact fit
    exact.save(path)
    kept, back = _copy(exact), bigem.load(path)
    assert not hasattr(back, "n_steps_") and not hasattr(exact, "n_steps_")
    kept.partial_fit(batches[2])
    back.partial_fit(batches[2])
    np.testing.assert_array_equal(back.weights_, kept.weights_)


@pytest.mark.parametrize("edited", ["means_", "weights_"])
def test_partial_fit_goes_on_from_the_attributes_as_set(tmp_path, edited):
    """The fitted attributes are the model: partial_fit after an edit takes its E-step at
    the edited parameters, as the loaded copy of the edited model does (it went on from
    the fit's own parameters, 3e-4 from the copy's answer)."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1.0, (200, 2)) for m in (0, 4, 8)])
    est = bigem.GaussianMixture(3, random_state=0, dtype="float64").fit(X)
    plain = _copy(est)
    if edited == "means_":
        est.means_ = est.means_ + 0.5
    else:
        est.weights_ = np.array([0.6, 0.2, 0.2])
    est.save(tmp_path / "m.bigem")
    back = bigem.load(tmp_path / "m.bigem")
    for m in (est, back, plain):
        m.partial_fit(X[:100])
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(est, name), getattr(back, name), err_msg=name)
    assert np.abs(est.means_ - plain.means_).max() > 1e-5  # the edit moved the step


def test_a_damaged_online_state_is_named(tmp_path):
    from bigem.errors import ModelFileError
    from bigem.io import read_model_file, write_model_file

    rng = np.random.default_rng(4)
    gm = bigem.GaussianMixture(2, random_state=0).fit(rng.normal(size=(300, 2)))
    path = tmp_path / "m.bigem"
    gm.save(path)
    tensors, meta = read_model_file(path)
    meta["online"]["running"]["class"] = "os:system"
    write_model_file(tmp_path / "bad.bigem", tensors, meta)
    with pytest.raises(ModelFileError, match="invalid online state .*is not one of bigem's statistics"):
        bigem.load(tmp_path / "bad.bigem")


def test_a_partial_fit_that_fails_midway_changes_nothing(monkeypatch):
    # its first mini-batches had stepped the hidden running state: the next partial_fit went
    # on from there (means 0.32 off an estimator that never saw the failed call)
    from bigem.models import mixture

    rng = np.random.default_rng(0)
    X, B, later = (rng.permutation(np.concatenate([rng.normal(m, 1.0, (n, 3)) for m in (0, 3, 6)]))
                   for n in (2000, 1700, 1000))
    clean = bigem.GaussianMixture(3, random_state=0, batch_size=1000).partial_fit(X)
    failed = copy.deepcopy(clean)
    e_step, calls = mixture.MixtureModel.e_step, []

    def third_fails(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise MemoryError("simulated")
        return e_step(self, *args, **kwargs)

    monkeypatch.setattr(mixture.MixtureModel, "e_step", third_fails)
    with pytest.raises(MemoryError):
        failed.partial_fit(B)
    monkeypatch.undo()
    assert failed._online_.steps == clean._online_.steps and failed.n_steps_ == clean.n_steps_
    clean.partial_fit(later)
    failed.partial_fit(later)
    np.testing.assert_array_equal(failed.means_, clean.means_)
    assert failed.n_steps_ == clean.n_steps_


@pytest.mark.parametrize("family", ["gaussian", "bernoulli"])
def test_a_warm_online_fit_goes_on_with_its_running_state(family):
    """warm_start with algorithm='online' started a fresh state: its first step (1) put
    one batch's statistics in place of all it had learnt. Two warm fits of 2 passes
    now equal one of 4, and partial_fit of the same rows."""
    rng = np.random.default_rng(0)
    z = rng.integers(0, 3, 600)
    if family == "gaussian":
        X, make = rng.normal(z[:, None] * 2.0, 1.0, (600, 2)), bigem.GaussianMixture
    else:
        X, make = (rng.random((600, 6)) < 0.2 + 0.3 * z[:, None]).astype(float), bigem.BernoulliMixture
    kw = dict(algorithm="online", batch_size=100, tol=0.0, random_state=0, dtype="float64")
    whole = make(3, max_iter=4, **kw).fit(X)
    warm = make(3, max_iter=2, warm_start=True, **kw).fit(X)
    warm.fit(X)
    assert warm.n_steps_ == whole.n_steps_ == 24
    for name in whole._fitted_arrays:
        np.testing.assert_allclose(getattr(warm, name), getattr(whole, name), rtol=1e-12, atol=1e-14, err_msg=name)


def _online_bernoulli(X, w0, p0, alpha, passes, batch, mass_of):
    """A hand-written online EM for a Bernoulli mixture with Beta(alpha, alpha) pseudo-
    counts: the running statistics per unit weight, and the M-step reading them as
    ``mass_of(pass, rows seen)`` rows."""
    w, p, S, t, seen = w0.copy(), p0.copy(), None, 0, 0
    for done in range(passes):
        for start in range(0, len(X), batch):
            Xb = X[start:start + batch]
            lp = np.log(w) + Xb @ np.log(p).T + (1 - Xb) @ np.log(1 - p).T
            r = np.exp(lp - lp.max(1, keepdims=True))
            r /= r.sum(1, keepdims=True)
            stats = (r.sum(0) / len(Xb), r.T @ Xb / len(Xb))
            t += 1
            gamma = 1.0 if t <= 1 else (t + 10.0) ** -0.7
            S = stats if S is None else tuple((1 - gamma) * a + gamma * b for a, b in zip(S, stats))
            seen += len(Xb)
            mass = mass_of(done, seen)
            nk, ones = S[0] * mass, S[1] * mass
            w, p = nk / nk.sum(), (alpha + ones) / (2 * alpha + nk[:, None])
    return p


def test_partial_fit_weighs_a_prior_against_every_row_seen_however_the_model_started():
    """A fit weighs a prior against one pass's rows; partial_fit after it kept doing so
    for good (audit AU), where a partial_fit stream weighs it against every row seen, so
    that new data outweigh the prior as they come in."""
    rng = np.random.default_rng(0)
    K, N, alpha = 3, 2000, 50.0
    P = rng.uniform(0.1, 0.9, (K, 6))
    X = (rng.uniform(size=(N, 6)) < P[rng.choice(K, N, p=[0.5, 0.3, 0.2])]).astype(float)
    w0, p0 = np.ones(K) / K, np.clip(P + rng.normal(0, 0.1, P.shape), 0.05, 0.95)
    kw = dict(alpha=alpha, dtype="float64", batch_size=400, weights_init=w0, probabilities_init=p0)
    started = bigem.BernoulliMixture(K, algorithm="online", max_iter=1, tol=0, **kw).fit(X)
    started.partial_fit(X)
    started.partial_fit(X)
    streamed = bigem.BernoulliMixture(K, **kw)
    for _ in range(3):
        streamed.partial_fit(X)
    every_row = _online_bernoulli(X, w0, p0, alpha, 3, 400, lambda done, seen: seen)
    np.testing.assert_allclose(started.probabilities_, every_row, atol=1e-12)
    np.testing.assert_allclose(streamed.probabilities_, every_row, atol=1e-12)
    one_pass = _online_bernoulli(X, w0, p0, alpha, 3, 400, lambda done, seen: seen if done == 0 else N)
    fitted = bigem.BernoulliMixture(K, algorithm="online", max_iter=3, tol=0, **kw).fit(X)
    np.testing.assert_allclose(fitted.probabilities_, one_pass, atol=1e-12)  # a fit: one pass's rows
    assert np.abs(one_pass - every_row).max() > 1e-2  # the two rules part
    # after a fit of five passes, the rows seen are its one pass and the rows since: one
    # more row barely moves it (counting the five passes as rows moved it by 0.039)
    five = bigem.BernoulliMixture(K, algorithm="online", max_iter=5, tol=0, **kw).fit(X)
    before = five.probabilities_.copy()
    five.partial_fit(X[:1])
    assert np.abs(five.probabilities_ - before).max() < 2e-3
