"""Same answers as hmmlearn 0.3 from the same initial parameters, in float64.

hmmlearn is the reference: its per-iteration log-likelihood (monitor_.history), its
final parameters, its posteriors and its Viterbi paths.
"""

from __future__ import annotations

import numpy as np
import pytest

from bigem import CategoricalHMM, GaussianHMM

hmm = pytest.importorskip("hmmlearn.hmm")

COV_TYPES = ("diag", "full", "tied", "spherical")
RTOL = 1e-6


def gaussian_case(covariance_type: str, seed: int = 0):
    """Sequences sampled from a 3-state model, and initial parameters away from the truth."""
    rng = np.random.default_rng(seed)
    K, D = 3, 2
    true = hmm.GaussianHMM(K, covariance_type="full", init_params="")
    true.startprob_ = np.array([0.6, 0.3, 0.1])
    true.transmat_ = np.array([[0.8, 0.1, 0.1], [0.15, 0.8, 0.05], [0.1, 0.2, 0.7]])
    true.means_ = np.array([[0.0, 0.0], [4.0, 1.0], [-3.0, 3.0]])
    true.covars_ = np.stack([np.eye(D), np.array([[1.0, 0.4], [0.4, 0.8]]), np.eye(D) * 1.5])
    X, _ = true.sample(700, random_state=seed)
    lengths = [120, 1, 250, 329]  # includes a one-step sequence (no transitions)
    init = dict(
        startprob_=np.full(K, 1.0 / K),
        transmat_=rng.dirichlet(np.full(K, 5.0), K),
        means_=true.means_ + rng.normal(0, 0.7, (K, D)),
        covars_={
            "diag": np.full((K, D), 1.5),
            "full": np.stack([np.eye(D) * 1.5] * K),
            "tied": np.eye(D) * 1.5,
            "spherical": np.full(K, 1.5),
        }[covariance_type],
    )
    return X, lengths, init


def set_params(model, init: dict):
    for name, value in init.items():
        setattr(model, name, value.copy())
    return model


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_gaussian_hmm_matches_hmmlearn_per_iteration(covariance_type):
    X, lengths, init = gaussian_case(covariance_type)
    n_iter = 6
    ref = set_params(hmm.GaussianHMM(3, covariance_type=covariance_type, init_params="", n_iter=n_iter, tol=-np.inf), init)
    ref.fit(X, lengths)
    ours = set_params(
        GaussianHMM(3, covariance_type=covariance_type, init_params="", n_iter=n_iter, tol=0.0, dtype="float64"), init
    )
    ours.fit(X, lengths)
    np.testing.assert_allclose(ours.monitor_.history, list(ref.monitor_.history), rtol=RTOL)
    assert len(ours.monitor_.history) == n_iter
    np.testing.assert_allclose(ours.startprob_, ref.startprob_, rtol=RTOL, atol=1e-10)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, rtol=RTOL, atol=1e-10)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=RTOL, atol=1e-10)
    # _covars_ in hmmlearn's own layout (spherical: one variance repeated in D columns), read by its tutorials
    assert ours._covars_.shape == ref._covars_.shape
    np.testing.assert_allclose(ours._covars_, ref._covars_, rtol=RTOL, atol=1e-10)
    if covariance_type != "spherical":  # hmmlearn's spherical covars_ is malformed after fit
        np.testing.assert_allclose(ours.covars_, ref.covars_, rtol=RTOL, atol=1e-10)
    # inference on the fitted model
    np.testing.assert_allclose(ours.score(X, lengths), ref.score(X, lengths), rtol=RTOL)
    np.testing.assert_allclose(ours.predict_proba(X, lengths), ref.predict_proba(X, lengths), atol=1e-8)
    lp_ours, path_ours = ours.decode(X, lengths)
    lp_ref, path_ref = ref.decode(X, lengths)
    np.testing.assert_array_equal(path_ours, path_ref)
    np.testing.assert_allclose(lp_ours, lp_ref, rtol=RTOL)
    lp_map, path_map = ours.decode(X, lengths, algorithm="map")
    np.testing.assert_array_equal(path_map, ref.decode(X, lengths, algorithm="map")[1])


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_gaussian_hmm_with_priors_and_partial_params_matches_hmmlearn(covariance_type):
    X, lengths, init = gaussian_case(covariance_type, seed=1)
    kw = dict(
        covariance_type=covariance_type,
        init_params="",
        params="tm",  # start probabilities and covariances stay fixed
        startprob_prior=2.0,
        transmat_prior=np.full((3, 3), 1.5),
        means_prior=0.5,
        means_weight=2.0,
        n_iter=4,
    )
    ref = set_params(hmm.GaussianHMM(3, **kw, tol=-np.inf), init).fit(X, lengths)
    ours = set_params(GaussianHMM(3, **kw, tol=0.0, dtype="float64"), init).fit(X, lengths)
    np.testing.assert_allclose(ours.monitor_.history, list(ref.monitor_.history), rtol=RTOL)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, rtol=RTOL)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=RTOL)
    np.testing.assert_array_equal(ours.startprob_, init["startprob_"])


def test_categorical_hmm_matches_hmmlearn():
    rng = np.random.default_rng(3)
    true = hmm.CategoricalHMM(2, init_params="")
    true.startprob_ = np.array([0.7, 0.3])
    true.transmat_ = np.array([[0.9, 0.1], [0.2, 0.8]])
    true.emissionprob_ = np.array([[0.6, 0.3, 0.1, 0.0], [0.05, 0.15, 0.3, 0.5]])
    true.n_features = 4
    X, _ = true.sample(800, random_state=0)
    lengths = [300, 200, 300]
    init = dict(
        startprob_=np.array([0.5, 0.5]),
        transmat_=np.array([[0.6, 0.4], [0.3, 0.7]]),
        emissionprob_=rng.dirichlet(np.ones(4), 2),
    )
    ref = set_params(hmm.CategoricalHMM(2, init_params="", n_iter=8, tol=-np.inf, n_features=4), init).fit(X, lengths)
    ours = set_params(CategoricalHMM(2, init_params="", n_iter=8, tol=0.0, n_features=4, dtype="float64"), init)
    ours.fit(X, lengths)
    np.testing.assert_allclose(ours.monitor_.history, list(ref.monitor_.history), rtol=RTOL)
    np.testing.assert_allclose(ours.emissionprob_, ref.emissionprob_, rtol=RTOL, atol=1e-12)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, rtol=RTOL)
    np.testing.assert_allclose(ours.startprob_, ref.startprob_, rtol=RTOL, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X, lengths), ref.predict(X, lengths))
    np.testing.assert_allclose(ours.score(X, lengths), ref.score(X, lengths), rtol=RTOL)


def test_viterbi_paths_identical_on_long_noisy_sequences():
    """Many decisions close to ties: every state of every path must agree."""
    X, lengths, init = gaussian_case("diag", seed=4)
    X = X + np.random.default_rng(0).normal(0, 2.0, X.shape)  # blur the states
    ref = set_params(hmm.GaussianHMM(3, covariance_type="diag", init_params=""), init)
    ours = set_params(GaussianHMM(3, covariance_type="diag", init_params="", dtype="float64"), init)
    np.testing.assert_array_equal(ours.decode(X, lengths)[1], ref.decode(X, lengths)[1])


@pytest.mark.parametrize("compiled", [True, False], ids=["kernel", "tensors"])
def test_viterbi_breaks_ties_as_hmmlearn(compiled):
    """Paths of equal log-probability: hmmlearn's backtracking keeps the larger (score,
    state) pair, so a predecessor tie goes to the highest state, and the last state's
    to the lowest (max_element). bigem took the lowest for both."""
    import contextlib

    from bigem._core import jit

    rng = np.random.RandomState(3)
    K, lengths = 3, [60, 90, 50]
    start, trans = rng.dirichlet(np.ones(K)), rng.dirichlet(np.ones(K), size=K)
    X = rng.randint(0, 4, size=(sum(lengths), 1))
    emission = rng.dirichlet(np.ones(4), size=K)
    kw = dict(n_iter=5, init_params="", params="e", tol=0, emissionprob_prior=np.array([[1, 2, 1, 1.5]] * K))
    ref, ours = hmm.CategoricalHMM(K, **kw), CategoricalHMM(K, dtype="float64", **kw)
    flat = [hmm.CategoricalHMM(K, init_params=""), CategoricalHMM(K, init_params="", dtype="float64")]
    with contextlib.nullcontext() if compiled else jit.off():
        for m in (ref, ours):
            m.startprob_, m.transmat_, m.emissionprob_ = start, trans, emission
            m.fit(X, lengths)  # to a model where two paths of the middle sequence tie
        for m in flat:  # every path ties
            m.startprob_, m.transmat_, m.emissionprob_ = np.full(K, 1 / K), np.full((K, K), 1 / K), np.full((K, 4), .25)
        for a, b in ((ours, ref), tuple(flat)):
            (lp, path), (ref_lp, ref_path) = a.decode(X, lengths), b.decode(X, lengths)
            assert lp == pytest.approx(ref_lp, rel=1e-12)
            np.testing.assert_array_equal(path, ref_path)


def test_posteriors_of_a_sequence_with_a_huge_log_likelihood_sum_to_one():
    """A state of variance 1e-8 that the rows miss by ~5 gives a log-likelihood near -4e9,
    whose ulp (1e-6) the lane's normaliser put into every posterior (rows summed to
    1 + 1.4e-6, off hmmlearn by as much; hmmlearn's log implementation normalises each
    row by its own sum)."""
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(10, 1, 50), rng.normal(5, 1, 50)][:, None]
    start, trans = np.array([1.0, 0, 0]), np.array([[0.9, 0.1, 0], [0, 0.9, 0.1], [0, 0, 1.0]])
    means, covars = np.array([[0.0], [5.0], [10.0]]), np.array([[1e-8], [1.0], [1.0]])
    ref = hmm.GaussianHMM(3, "diag", implementation="log", init_params="")
    ours = GaussianHMM(3, "diag", init_params="", dtype="float64")
    for m in (ref, ours):
        m.startprob_, m.transmat_, m.means_, m.covars_ = start, trans, means, covars
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-12) and ours.score(X) < -1e9
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), rtol=0, atol=1e-12)
    # what remains is both libraries' rounding of log-probabilities near -4e9 (ulp 5e-7)
    assert np.abs(ours.predict_proba(X).sum(1) - 1).max() < 1e-7


def test_a_spherical_covars_keeps_hmmlearns_layout_through_a_refit_that_leaves_it():
    """hmmlearn's M-step repeats a spherical variance in D columns, and a fit without 'c'
    in params leaves _covars_ as it was: a tutorial's _covars_[:, 0] works after both."""
    X, lengths, _ = gaussian_case("spherical")
    ours = GaussianHMM(3, covariance_type="spherical", n_iter=5, random_state=0, dtype="float64").fit(X, lengths)
    ref = hmm.GaussianHMM(3, covariance_type="spherical", n_iter=5, random_state=0).fit(X, lengths)
    for step in ({"init_params": "", "params": "stm"}, {"init_params": "", "params": "stmc"}):
        ours.set_params(**step).fit(X, lengths)
        ref.set_params(**step).fit(X, lengths)
        assert ours._covars_.shape == ref._covars_.shape == (3, X.shape[1])
        np.testing.assert_allclose(ours._covars_[:, 0], ref._covars_[:, 0], rtol=1e-6)
