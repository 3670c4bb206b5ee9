"""GMMHMM gives hmmlearn 0.3's fit, to the digit, in float64: its priors, its M-step,
its stopping rule; and a prior's means move with the rows where float32 needs a shift.
"""

from __future__ import annotations

import inspect
import logging

import numpy as np
import pytest

import bigem
from bigem._core.errors import CollapsedStateWarning, ParameterError

hmm = pytest.importorskip("hmmlearn.hmm")

COV_TYPES = ("diag", "full", "tied", "spherical")
K, M, D = 2, 2, 2


def case(seed: int = 0):
    """Rows of a 2-state HMM whose states emit 2-Gaussian mixtures, and a start away
    from the truth (hmmlearn's layouts per covariance type)."""
    true = hmm.GMMHMM(K, n_mix=M, covariance_type="full", init_params="")
    true.startprob_, true.transmat_ = np.array([0.7, 0.3]), np.array([[0.9, 0.1], [0.2, 0.8]])
    true.weights_ = np.array([[0.6, 0.4], [0.3, 0.7]])
    true.means_ = np.array([[[0.0, 0.0], [3.0, 1.0]], [[-3.0, 3.0], [1.0, 5.0]]])
    true.covars_ = np.stack([np.stack([np.eye(D), np.array([[1.0, 0.3], [0.3, 0.6]])])] * K)
    X, _ = true.sample(900, random_state=seed)
    rng = np.random.default_rng(seed)
    start = dict(
        startprob_=np.full(K, 1.0 / K),
        transmat_=np.array([[0.6, 0.4], [0.4, 0.6]]),
        weights_=np.full((K, M), 1.0 / M),
        means_=true.means_ + rng.normal(0, 0.8, (K, M, D)),
    )
    covars = {"full": np.tile(np.eye(D) * 1.5, (K, M, 1, 1)), "tied": np.tile(np.eye(D) * 1.5, (K, 1, 1)),
              "diag": np.full((K, M, D), 1.5), "spherical": np.full((K, M), 1.5)}
    return X, [400, 1, 499], start, covars


def fitted(cls, covariance_type: str, X, lengths, start, covars, **kw):
    model = cls(K, n_mix=M, covariance_type=covariance_type, init_params="", **kw)
    for name, value in dict(start, covars_=covars[covariance_type]).items():
        setattr(model, name, value.copy())
    return model.fit(X, lengths)


def assert_same_fit(ours, ref, rtol=1e-10, atol=1e-8):
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=rtol)
    for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
        np.testing.assert_allclose(np.asarray(getattr(ours, name)), np.asarray(getattr(ref, name)), atol=atol,
                                   rtol=rtol, err_msg=name)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_default_priors_give_hmmlearns_fit_iteration_by_iteration(covariance_type):
    """Before: bigem's M-step was maximum likelihood plus min_covar on every variance, and
    its fits parted from hmmlearn's after the first iteration (1e-4 to 6e-2 in score)."""
    X, lengths, start, covars = case()
    kw = dict(n_iter=25, tol=-np.inf)
    ref = fitted(hmm.GMMHMM, covariance_type, X, lengths, start, covars, **kw)
    ours = fitted(bigem.GMMHMM, covariance_type, X, lengths, start, covars, dtype="float64", **kw)
    assert_same_fit(ours, ref)


PRIORS = {
    "full": dict(covars_prior=np.array([[0.5, 0.1], [0.1, 0.4]]), covars_weight=np.array([[2.0, 3.0], [1.0, 4.0]])),
    "tied": dict(covars_prior=np.eye(D) * 0.8, covars_weight=np.array([3.0, 5.0])),
    "diag": dict(covars_prior=np.array([1.0, 2.0]), covars_weight=0.5),
    "spherical": dict(covars_prior=0.7, covars_weight=np.array([[0.3, 0.2], [0.1, 0.4]])),
}


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_every_prior_gives_hmmlearns_fit(covariance_type):
    """weights_prior, means_prior, means_weight, covars_prior and covars_weight, as arrays
    hmmlearn broadcasts; before, GMMHMM refused them with a TypeError."""
    X, lengths, start, covars = case(1)
    kw = dict(n_iter=15, tol=-np.inf, weights_prior=np.array([[2.0, 1.5], [3.0, 1.0]]),
              means_prior=np.array([[[0.0, 0.0], [1.0, 1.0]], [[-1.0, 2.0], [0.0, 4.0]]]),
              means_weight=np.array([[2.0, 0.5], [1.0, 3.0]]), **PRIORS[covariance_type])
    ref = fitted(hmm.GMMHMM, covariance_type, X, lengths, start, covars, **kw)
    ours = fitted(bigem.GMMHMM, covariance_type, X, lengths, start, covars, dtype="float64", **kw)
    assert_same_fit(ours, ref)


@pytest.mark.parametrize("params", ["stmc", "stw", "mcw"])
def test_a_partial_m_step_is_hmmlearns(params):
    X, lengths, start, covars = case(2)
    kw = dict(n_iter=10, tol=-np.inf, params=params, means_prior=0.5, means_weight=1.0)
    ref = fitted(hmm.GMMHMM, "full", X, lengths, start, covars, **kw)
    ours = fitted(bigem.GMMHMM, "full", X, lengths, start, covars, dtype="float64", **kw)
    assert_same_fit(ours, ref)


@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied"])
def test_the_likelihood_never_falls_under_the_default_priors(covariance_type):
    """hmmlearn's update takes each covariance about the E-step's means: an ECM step, so
    still an ascent (invariant), with maximum likelihood's fixed points."""
    X, lengths, _, _ = case(3)
    for rs in range(3):
        m = bigem.GMMHMM(K, n_mix=M, covariance_type=covariance_type, n_iter=40, tol=-np.inf, random_state=rs,
                         dtype="float64").fit(X, lengths)
        history = np.array(m.monitor_.history)  # hmmlearn's deque, which does not slice
        steps = np.diff(history)
        assert (steps >= -1e-9 * np.abs(history[1:])).all(), (rs, steps.min())


@pytest.mark.parametrize("kind", ["GaussianHMM", "GMMHMM"])
def test_a_means_prior_moves_with_the_rows_in_float32(kind):
    """Rows 1e3 from the origin, stored in float64, fitted in float32: bigem fits them
    less a shift, and the prior's means must move by it too. Before, GaussianHMM's
    means_prior stayed put, and its fit's means were 22 away from hmmlearn's."""
    X, lengths, start, covars = case(4)
    X = X + 1e3
    kw = dict(n_iter=8, tol=-np.inf, means_prior=1e3 + 1.0, means_weight=50.0)
    if kind == "GMMHMM":
        start = dict(start, means_=start["means_"] + 1e3)
        ref = fitted(hmm.GMMHMM, "diag", X, lengths, start, covars, **kw)
        ours = fitted(bigem.GMMHMM, "diag", X, lengths, start, covars, dtype="float32", **kw)
    else:
        g = dict(startprob_=start["startprob_"], transmat_=start["transmat_"], means_=start["means_"][:, 0] + 1e3,
                 covars_=np.full((K, D), 1.5))

        def gaussian(cls, **extra):
            m = cls(K, covariance_type="diag", init_params="", **kw, **extra)
            for name, value in g.items():
                setattr(m, name, value.copy())
            return m.fit(X, lengths)

        ref, ours = gaussian(hmm.GaussianHMM), gaussian(bigem.GaussianHMM, dtype="float32")
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-7)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-6)


def test_a_fall_under_a_prior_stops_the_fit_and_is_logged_in_hmmlearns_words(caplog):
    """A prior far from the rows trades likelihood for prior density: hmmlearn's monitor
    stops at the first fall (its rule is gain < tol, not |gain| < tol) and logs it.
    Before, bigem went on iterating, to another fit."""
    X, lengths, start, _ = case(5)
    g = dict(startprob_=start["startprob_"], transmat_=start["transmat_"], means_=start["means_"][:, 0],
             covars_=np.full((K, D), 1.5))
    kw = dict(covariance_type="diag", init_params="", n_iter=10, means_prior=30.0, means_weight=200.0)
    fits = []
    for cls, extra in ((hmm.GaussianHMM, {}), (bigem.GaussianHMM, dict(dtype="float64"))):
        m = cls(K, **kw, **extra)
        for name, value in g.items():
            setattr(m, name, value.copy())
        with caplog.at_level(logging.WARNING):
            caplog.clear()
            fits.append(m.fit(X, lengths))
            logged = [r.getMessage() for r in caplog.records if "not converging" in r.getMessage()]
        assert len(logged) == 1 and logged[0].startswith("Model is not converging.  Current: ")
    ref, ours = fits
    assert len(ref.monitor_.history) < 10 and ours.monitor_.converged
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-10)


@pytest.mark.parametrize("name, value, shape", [
    ("weights_prior", np.ones(3), r"\(2, 2\)"),
    ("means_prior", np.zeros((3, D)), r"\(2, 2, 2\)"),
    ("covars_prior", np.ones((3, 3)), r"\(2, 2, 2, 2\)"),
])
def test_a_prior_of_the_wrong_shape_is_refused_before_any_pass(name, value, shape):
    X, lengths, _, _ = case()
    m = bigem.GMMHMM(K, n_mix=M, covariance_type="full", **{name: value})
    with pytest.raises(ParameterError, match=rf"{name} must broadcast to shape {shape}.*n_features=2"):
        m.fit(X, lengths)
    assert not hasattr(m, "means_") and m.monitor_.iter == 0  # nothing initialised, no iteration


def test_a_collapsed_gaussian_gets_min_covar_with_a_warning():
    """Rows with constant features: a Gaussian's covariance is singular. hmmlearn's
    M-step has no floor; bigem adds min_covar to the diagonal of the collapsed Gaussians
    alone, as GaussianHMM does for its states, or raises with min_covar=0."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(30, 1)), np.ones((30, 1))]
    with pytest.warns(CollapsedStateWarning, match=r"min_covar=0.001 was added to the diagonal of its collapsed"):
        m = bigem.GMMHMM(2, n_mix=2, covariance_type="full", random_state=0, n_iter=5).fit(X)
    assert np.isfinite(m.score(X))
    assert (np.linalg.eigvalsh(m.covars_) > 0).all()
    with pytest.raises(ValueError, match=r"set min_covar > 0 \(now 0\)"):
        bigem.GMMHMM(2, n_mix=2, covariance_type="full", random_state=0, n_iter=5, min_covar=0.0).fit(X)


@pytest.mark.parametrize("name", ["GaussianHMM", "GMMHMM", "CategoricalHMM", "PoissonHMM", "MultinomialHMM"])
def test_positional_arguments_are_hmmlearns(name):
    """hmmlearn's users pass arguments by position too: its parameters, in its order,
    come first (bigem's own follow)."""
    theirs = list(inspect.signature(getattr(hmm, name).__init__).parameters)[1:]
    ours = list(inspect.signature(getattr(bigem, name).__init__).parameters)[1:]
    assert ours[: len(theirs)] == theirs


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_a_covariance_that_is_not_symmetric_is_refused_as_hmmlearn_refuses_it(covariance_type):
    """A Cholesky factor reads the lower triangle alone: [[1, .9], [0, 1]] was scored as
    the identity, without a word (hmmlearn: "... is not symmetric")."""
    X, lengths, start, covars = case()
    bent = np.array([[1.0, 0.9], [0.0, 1.0]])
    covars = np.tile(bent, (K, M, 1, 1)) if covariance_type == "full" else np.tile(bent, (K, 1, 1))
    for cls, kw in ((hmm.GMMHMM, {}), (bigem.GMMHMM, dict(dtype="float64"))):
        model = cls(K, n_mix=M, covariance_type=covariance_type, init_params="", **kw)
        for name, value in {**start, "covars_": covars}.items():
            setattr(model, name, value)
        with pytest.raises(ValueError, match=r"^Covariance of state #0(, mixture #0)? is not symmetric$"):
            model.score(X, lengths)


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_a_covariance_symmetric_to_eight_digits_is_taken_as_hmmlearn_takes_it(covariance_type):
    """hmmlearn's test is numpy's allclose (rtol 1e-5): a matrix typed or read back to 8
    digits was refused ("must be symmetric, positive-definite"), and a later state's
    asymmetry is named as hmmlearn names it."""
    X, lengths, start, _ = case()
    typed = np.array([[1.0, 0.3 * (1 + 1e-7)], [0.3, 0.6]])
    covars = np.tile(typed, (K, M, 1, 1)) if covariance_type == "full" else np.tile(typed, (K, 1, 1))
    scores = []
    for cls, kw in ((hmm.GMMHMM, {}), (bigem.GMMHMM, dict(dtype="float64"))):
        model = cls(K, n_mix=M, covariance_type=covariance_type, init_params="", **kw)
        for name, value in {**start, "covars_": covars}.items():
            setattr(model, name, value)
        scores.append(model.score(X, lengths))
    assert scores[1] == pytest.approx(scores[0], rel=1e-12)
    bent = covars.copy()
    bent[-1, ..., 0, 1] += 0.5
    model = bigem.GMMHMM(K, n_mix=M, covariance_type=covariance_type, init_params="", dtype="float64")
    for name, value in {**start, "covars_": bent}.items():
        setattr(model, name, value)
    where = f"state #{K - 1}" + (", mixture #0" if covariance_type == "full" else "")
    with pytest.raises(ValueError, match=rf"^Covariance of {where} is not symmetric$"):
        model.score(X, lengths)


def test_fewer_rows_than_states_times_mixtures_fit_as_in_hmmlearn():
    """hmmlearn needs n_samples >= n_components only: a state with fewer rows than n_mix
    draws its means about the centres (bigem refused 5 rows of 2 states of 3 mixtures)."""
    X = np.random.RandomState(0).normal(size=(5, 2))
    model = bigem.GMMHMM(2, n_mix=3, random_state=0, n_iter=3, dtype="float64").fit(X)
    assert model.means_.shape == (2, 3, 2) and np.isfinite(model.score(X))
    with pytest.raises(ValueError, match="n_samples >= n_components = 2"):
        bigem.GMMHMM(2, n_mix=3).fit(X[:1])


def test_means_of_another_rank_are_named_in_hmmlearns_words():
    X, lengths, start, covars = case()
    for cls in (hmm.GMMHMM, bigem.GMMHMM):
        model = cls(K, n_mix=M, covariance_type="diag", init_params="")
        for name, value in {**start, "means_": start["means_"][:, 0], "covars_": covars["diag"]}.items():
            setattr(model, name, value)
        with pytest.raises(ValueError, match=r"means_ must have shape \(n_components, n_mix, n_features\)"):
            model.fit(X, lengths)
