"""MultinomialHMM: hmmlearn 0.3's answers from the same start, per iteration, in float64."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from bigem import MultinomialHMM, load
from bigem._core.errors import DataError, ParameterError

hmm = pytest.importorskip("hmmlearn.hmm")

K, D = 3, 4


@pytest.fixture(autouse=True)
def _quiet_hmmlearn():
    """hmmlearn logs a notice each time a MultinomialHMM is made."""
    logging.getLogger("hmmlearn").setLevel(logging.ERROR)
    yield
    logging.getLogger("hmmlearn").setLevel(logging.NOTSET)


def _case(n_trials, seed=0):
    rng = np.random.default_rng(seed)
    true = hmm.MultinomialHMM(K, n_trials=n_trials, init_params="")
    true.startprob_ = np.array([0.6, 0.3, 0.1])
    true.transmat_ = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    true.emissionprob_ = rng.dirichlet(np.ones(D), K)
    X, _ = true.sample(500, random_state=seed + 1)
    start = dict(startprob_=np.full(K, 1 / K), transmat_=rng.dirichlet(np.full(K, 5.0), K),
                 emissionprob_=rng.dirichlet(np.ones(D), K))
    return X, start


def _model(cls, start, **kw):
    m = cls(K, init_params="", n_iter=8, tol=-np.inf, **kw)
    for name, value in start.items():
        setattr(m, name, value.copy())
    return m


LENGTHS = [100, 1, 399]


def test_multinomial_hmm_matches_hmmlearn_per_iteration():
    X, start = _case(5)
    ref = _model(hmm.MultinomialHMM, start, n_trials=5).fit(X, LENGTHS)
    ours = _model(MultinomialHMM, start, n_trials=5, dtype="float64").fit(X, LENGTHS)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-6, atol=1e-10, err_msg=name)
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), ref.predict(X, LENGTHS))
    np.testing.assert_allclose(ours.predict_proba(X, LENGTHS), ref.predict_proba(X, LENGTHS), atol=1e-8)
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    assert ours.aic(X, LENGTHS) == pytest.approx(ref.aic(X, LENGTHS), rel=1e-10)
    assert ours.bic(X, LENGTHS) == pytest.approx(ref.bic(X, LENGTHS), rel=1e-10)


def test_rows_with_their_own_trials_match_hmmlearn_with_n_trials_unset_or_per_row():
    X, start = _case(5)
    X = np.r_[X[:250], 3 * X[250:]]  # two different totals
    ref = _model(hmm.MultinomialHMM, start, n_trials=None).fit(X, LENGTHS)
    for trials in (None, X.sum(1)):
        ours = _model(MultinomialHMM, start, n_trials=trials, dtype="float64").fit(X, LENGTHS)
        np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
        np.testing.assert_allclose(ours.emissionprob_, ref.emissionprob_, rtol=1e-6, atol=1e-10)


def test_rows_of_other_totals_score_on_their_own_as_in_hmmlearn():
    """n_trials binds the rows of fit only: hmmlearn scores any row on its own total."""
    X, start = _case(5)
    other, _ = _case(8, seed=1)
    ref = _model(hmm.MultinomialHMM, start, n_trials=5).fit(X)
    for trials in (5, np.full(X.shape[0], 5)):
        ours = _model(MultinomialHMM, start, n_trials=trials, dtype="float64").fit(X)
        assert ours.score(other[:70]) == pytest.approx(ref.score(other[:70]), rel=1e-10)
        np.testing.assert_array_equal(ours.predict(other[:70]), ref.predict(other[:70]))
        np.testing.assert_allclose(ours.predict_proba(other), ref.predict_proba(other), atol=1e-8)


def test_float32_and_a_fit_from_scratch_agree_with_float64():
    X, start = _case(7, seed=3)
    f64 = _model(MultinomialHMM, start, n_trials=7, dtype="float64").fit(X)
    f32 = _model(MultinomialHMM, start, n_trials=7).fit(X)
    np.testing.assert_allclose(f32.emissionprob_, f64.emissionprob_, atol=1e-4)
    fresh = MultinomialHMM(K, n_trials=7, n_iter=20, random_state=0).fit(X)
    assert fresh.emissionprob_.shape == (K, D)
    assert np.all(np.diff(fresh.monitor_.history) > -1e-6 * abs(fresh.monitor_.history[0]))


def test_counts_that_do_not_add_up_to_n_trials_are_refused_naming_the_row():
    X, _ = _case(5)
    X[37, 0] += 1
    with pytest.raises(DataError, match=r"X row 37 counts 6 trials but n_trials says 5"):
        MultinomialHMM(K, n_trials=5).fit(X)
    with pytest.raises(DataError, match="n_trials holds 3 rows' trials but X has 500 rows"):
        MultinomialHMM(K, n_trials=[5, 5, 5]).fit(X)
    X[37, 0] = -1
    with pytest.raises(DataError, match=r"X row 37, column 0 holds -1: MultinomialHMM models counts"):
        MultinomialHMM(K).fit(X)
    for bad in (0, 2.5, "5", [[5]]):
        with pytest.raises(ParameterError, match="n_trials"):
            MultinomialHMM(K, n_trials=bad).fit(np.abs(X))


def test_sampling_draws_n_trials_per_row_and_needs_one_n_trials(tmp_path):
    X, start = _case(5)
    ours = _model(MultinomialHMM, start, n_trials=5, dtype="float64").fit(X)
    sample, states = ours.sample(4000, random_state=0)
    assert sample.dtype == np.int64 and (sample.sum(1) == 5).all()
    for k in range(K):  # each state's category frequencies are its probabilities
        np.testing.assert_allclose(sample[states == k].mean(0) / 5, ours.emissionprob_[k], atol=0.05)
    ours.save(tmp_path / "m.bigem")
    loaded = load(tmp_path / "m.bigem")
    np.testing.assert_array_equal(loaded.emissionprob_, ours.emissionprob_)
    assert loaded.score(X) == ours.score(X)
    X[0, 0] += 1  # rows of different totals: no one number of trials to draw
    ours = _model(MultinomialHMM, start, dtype="float64").fit(X)
    assert ours.n_trials_ is None
    with pytest.raises(ParameterError, match="a single n_trials must be given"):
        ours.sample(3)
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError, match="This MultinomialHMM instance is not fitted yet"):
        MultinomialHMM(2).sample(3)  # hmmlearn's error, before the one about n_trials


def test_sampling_after_a_fit_without_n_trials_draws_the_rows_common_total_as_hmmlearn(tmp_path):
    """hmmlearn's fit sets n_trials to the rows' sums, so that sample() then works where
    every row drew as many; bigem keeps that total in n_trials_ (and in its file)."""
    X, start = _case(5)
    ours = _model(MultinomialHMM, start, dtype="float64").fit(X)
    theirs = _model(hmm.MultinomialHMM, start).fit(X)
    assert ours.n_trials is None and ours.n_trials_ == 5 and np.unique(theirs.n_trials).tolist() == [5]
    for name in ("startprob_", "transmat_", "emissionprob_"):
        setattr(theirs, name, getattr(ours, name))
    sample, states = ours.sample(50, random_state=3)
    np.testing.assert_array_equal(sample, theirs.sample(50, random_state=3)[0])
    ours.save(tmp_path / "m.bigem")
    loaded = load(tmp_path / "m.bigem")
    assert loaded.n_trials_ == 5
    np.testing.assert_array_equal(loaded.sample(50, random_state=3)[0], sample)
    ours.set_params(n_trials=7)  # a given n_trials wins
    assert (ours.sample(20, random_state=0)[0].sum(1) == 7).all()


def test_a_set_emissionprob_is_overwritten_without_a_log_as_in_hmmlearn(caplog):
    """hmmlearn's MultinomialHMM reads init_params itself and logs nothing for 'e' (its
    other HMMs log "Even though the ... attribute is set"); bigem logged it."""
    X, _ = _case(5)
    logged = []
    for cls in (hmm.MultinomialHMM, MultinomialHMM):
        m = cls(K, n_trials=5, n_iter=2, random_state=0)
        m.emissionprob_ = np.full((K, D), 1 / D)
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            m.fit(X)
        logged.append([r.getMessage() for r in caplog.records if "Even though" in r.getMessage()])
    assert logged == [[], []]
