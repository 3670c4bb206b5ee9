"""set_params after a fit (issue #15). As in scikit-learn, a structural hyper-parameter
(n_components, covariance_type, n_mix, a CategoricalHMM's n_features) changed after a fit
takes effect at the next fit: until then predict, score, sample and save use the fitted
structure, and warm_start / partial_fit, which would continue the old fit, refuse."""

from __future__ import annotations

import numpy as np
import pytest

from bigem import GMMHMM, CategoricalHMM, GaussianHMM, GaussianMixture, PoissonHMM, load
from bigem._core.errors import ParameterError
from tests.conftest import make_blobs

X, _, _ = make_blobs(0, n_per=100, k=3, d=2)


def outputs(est) -> dict:
    return dict(label=est.predict(X), proba=est.predict_proba(X), density=est.score_samples(X), score=est.score(X),
                bic=est.bic(X), aic=est.aic(X))


@pytest.mark.parametrize("change", [dict(n_components=5), dict(covariance_type="diag"),
                                    dict(n_components=2, covariance_type="spherical")])
def test_a_mixture_keeps_its_fitted_structure_until_the_next_fit(change, tmp_path):
    gm = GaussianMixture(3, random_state=0).fit(X)
    before, drawn = outputs(gm), gm.sample(50)
    gm.set_params(**change)
    after = outputs(gm)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)
    np.testing.assert_array_equal(gm.sample(50)[0], drawn[0])
    assert gm.get_params()["n_components"] == change.get("n_components", 3)  # set_params did set it
    gm.save(tmp_path / "m.bigem")
    loaded = load(tmp_path / "m.bigem")
    assert (loaded.n_components, loaded.covariance_type) == (3, "full")
    np.testing.assert_array_equal(loaded.predict(X), before["label"])
    gm.fit(X)  # the next fit starts afresh with the new structure
    assert gm.means_.shape[0] == change.get("n_components", 3)
    assert gm.predict_proba(X).shape == (len(X), change.get("n_components", 3))


def test_warm_start_after_a_structural_change_refuses_instead_of_ignoring_it():
    gm = GaussianMixture(3, warm_start=True, random_state=0).fit(X)
    gm.set_params(n_components=5)
    with pytest.raises(ParameterError, match=r"^n_components is 5, but the fitted model's is 3, so warm_start=True "
                                             r"has no fit of that structure to continue from: set warm_start=False"):
        gm.fit(X)
    assert gm.means_.shape == (3, 2)  # the fitted state is untouched
    gm.set_params(warm_start=False).fit(X)
    assert gm.means_.shape == (5, 2)


def test_partial_fit_after_a_structural_change_refuses_and_continues_from_the_last_fit():
    gm = GaussianMixture(3, random_state=0).fit(X)
    gm.set_params(covariance_type="tied")
    with pytest.raises(ParameterError, match=r"^covariance_type is 'tied', but the fitted model's is 'full', so "
                                             r"partial_fit has no fit of that structure to continue: call fit"):
        gm.partial_fit(X)
    gm.fit(X)
    gm.partial_fit(X)
    fit_steps = -(-len(X) // gm.batch_size)  # an exact fit counts as the steps of an online pass over its rows
    assert gm.n_steps_ == fit_steps + 1
    gm.fit(X)  # an exact fit: partial_fit continues from it, not from the online state before it
    gm.partial_fit(X)
    assert gm.n_steps_ == fit_steps + 1 and gm.covariances_.shape == (2, 2)


HMMS = [
    (GaussianHMM, dict(n_components=3), dict(n_components=4)),
    (GaussianHMM, dict(n_components=3, covariance_type="diag"), dict(covariance_type="full")),
    (GMMHMM, dict(n_components=2, n_mix=2), dict(n_mix=3)),
    (GMMHMM, dict(n_components=2, covariance_type="tied"), dict(covariance_type="spherical")),
    (PoissonHMM, dict(n_components=2), dict(n_components=3)),
    (CategoricalHMM, dict(n_components=2), dict(n_features=10)),
]


def hmm_data(kind) -> np.ndarray:
    if kind in (PoissonHMM, CategoricalHMM):
        return np.minimum(np.random.default_rng(0).poisson(2.0, size=(300, 1 if kind is CategoricalHMM else 2)), 7)
    return X


@pytest.mark.parametrize("kind, made, change", HMMS, ids=[f"{k.__name__}-{'-'.join(c)}" for k, _, c in HMMS])
def test_an_hmm_keeps_its_fitted_structure_until_the_next_fit(kind, made, change, tmp_path, caplog):
    data = hmm_data(kind)
    hmm = kind(**made, random_state=0, n_iter=5).fit(data)
    states, ll, proba = hmm.predict(data), hmm.score(data), hmm.predict_proba(data)
    drawn = hmm.sample(20, random_state=1)
    hmm.set_params(**change)
    np.testing.assert_array_equal(hmm.predict(data), states)
    assert hmm.score(data) == ll
    np.testing.assert_array_equal(hmm.predict_proba(data), proba)
    np.testing.assert_array_equal(hmm.sample(20, random_state=1)[0], drawn[0])
    hmm.save(tmp_path / "h.bigem")
    loaded = load(tmp_path / "h.bigem")
    assert all(getattr(loaded, k) == made.get(k, getattr(kind(), k)) for k in change if k != "n_features")
    np.testing.assert_array_equal(loaded.predict(data), states)
    hmm.fit(data)  # starts afresh: init_params holds every letter
    assert any("will be overwritten during initialization" in r.getMessage() for r in caplog.records)  # hmmlearn's log
    for name, value in change.items():
        assert getattr(hmm, name) == value


def test_an_hmm_refit_that_keeps_parameters_of_the_old_structure_says_which_letters_to_add():
    hmm = GaussianHMM(3, random_state=0, n_iter=3).fit(X)
    hmm.set_params(n_components=4, init_params="mc")
    with pytest.raises(ParameterError, match=r"should have the shape of \(4,\), but got \(3,\): n_components is 4, "
                                             r"but the fitted model's is 3, and init_params='mc' keeps"):
        hmm.fit(X)


def test_hmm_parameters_set_by_hand_for_a_new_structure_are_used():
    """hmmlearn's way of making a model: set n_components and the parameters, then predict."""
    hmm = GaussianHMM(3, random_state=0, n_iter=3).fit(X)
    hmm.set_params(n_components=2)
    hmm.startprob_, hmm.transmat_ = np.array([0.5, 0.5]), np.array([[0.9, 0.1], [0.1, 0.9]])
    hmm.means_, hmm.covars_ = np.array([[0.0, 0.0], [5.0, 5.0]]), np.ones((2, 2))
    assert set(np.unique(hmm.predict(X))) <= {0, 1}
    assert hmm.predict_proba(X).shape == (len(X), 2)
