"""VariationalGaussianHMM and VariationalCategoricalHMM: hmmlearn 0.3's answers from the
same start, per iteration, in float64 (the bound and every posterior)."""

from __future__ import annotations

import numpy as np
import pytest

from bigem import VariationalCategoricalHMM, VariationalGaussianHMM

vhmm = pytest.importorskip("hmmlearn.vhmm")

K = 3
# a length-1 sequence (no transitions), and one longer than the shortest segment the
# forward-backward pass cuts sequences into (256 steps): its boundaries chain sub-normalised
# transitions
LENGTHS = [300, 1, 99]
ITERATIONS = 4
COMMON = ("startprob_prior_", "startprob_posterior_", "transmat_prior_", "transmat_posterior_")
GAUSSIAN = COMMON + ("means_prior_", "means_posterior_", "beta_prior_", "beta_posterior_", "dof_prior_",
                     "dof_posterior_", "scale_prior_", "scale_posterior_")
CATEGORICAL = COMMON + ("emissionprob_prior_", "emissionprob_posterior_")


def _gaussian_data(seed=0):
    rng = np.random.default_rng(seed)
    means = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    states = [0]
    for _ in range(sum(LENGTHS) - 1):
        states.append(rng.choice(K, p=A[states[-1]]))
    X = means[states] + rng.normal(size=(len(states), 2)) @ np.array([[1.0, 0.3], [0.0, 0.7]])
    return X + 100.0  # away from the origin: the rows arrive less a shift, the posteriors move back


def _categorical_data(seed=0):
    rng = np.random.default_rng(seed)
    E = np.array([[0.7, 0.2, 0.05, 0.05], [0.05, 0.1, 0.8, 0.05], [0.1, 0.1, 0.1, 0.7]])
    A = np.array([[0.9, 0.05, 0.05], [0.1, 0.8, 0.1], [0.05, 0.15, 0.8]])
    states = [0]
    for _ in range(sum(LENGTHS) - 1):
        states.append(rng.choice(K, p=A[states[-1]]))
    return np.array([[rng.choice(4, p=E[s])] for s in states])


def _start(ref_cls, names, X, warm=0, **kw):
    """hmmlearn's own initialisation (n_iter=0 runs only it), then ``warm`` of its iterations."""
    ref = ref_cls(K, n_iter=warm, tol=-np.inf, random_state=1, **kw).fit(X, LENGTHS)
    return {name: np.copy(getattr(ref, name)) for name in names}


def _set(model, start):
    for name, value in start.items():
        setattr(model, name, value.item() if value.ndim == 0 else value.copy())
    return model


def _recording(ref_cls, names):
    """hmmlearn's class, keeping its posteriors after every M-step (one fit gives every
    iteration: its initialisation runs k-means even when init_params is empty)."""

    class Recording(ref_cls):
        def _do_mstep(self, stats):
            super()._do_mstep(stats)
            self.steps_.append({name: np.copy(getattr(self, name)) for name in names})

    return Recording


def _check_per_iteration(ref_cls, ours_cls, names, X, warm=0, **kw):
    start = _start(ref_cls, names, X, warm, **{k: v for k, v in kw.items() if k != "params"})
    seen = []
    ours = _set(ours_cls(K, init_params="", n_iter=ITERATIONS, tol=-np.inf, dtype="float64", **kw), start)
    ours.fit(X, LENGTHS, callback=lambda info: seen.append(info.params))
    ref = _set(_recording(ref_cls, names)(K, init_params="", n_iter=ITERATIONS, tol=-np.inf, **kw), start)
    ref.steps_ = []
    ref.fit(X, LENGTHS)
    assert len(seen) == len(ref.steps_) == ITERATIONS
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-9, err_msg="lower bound")
    # the sub-normalised parameters of the posteriors the last step started from, as hmmlearn leaves them
    subnorm = [n for n in ("startprob_subnorm_", "transmat_subnorm_", "emissionprob_log_subnorm_") if hasattr(ref, n)]
    assert len(subnorm) == (3 if "emissionprob_posterior_" in names else 2)
    for name in subnorm:
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-6, atol=1e-9, err_msg=name)
    assert not np.allclose(ours.transmat_subnorm_, ours.transmat_)  # exp E[log p], not the posterior mean
    for i, (q, theirs) in enumerate(zip(seen, ref.steps_), 1):
        model = ours_cls(K, init_params="", n_iter=0, dtype="float64", **kw)  # iteration i's posteriors, as attributes
        model.n_features = ours.n_features
        model._fit_end(q)
        for name in names:
            np.testing.assert_allclose(np.asarray(getattr(model, name), dtype=float), theirs[name], rtol=1e-6,
                                       atol=1e-9, err_msg=f"{name} after iteration {i}")
    return ours, ref


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_variational_gaussian_hmm_matches_hmmlearn_per_iteration(covariance_type):
    X = _gaussian_data()
    ours, ref = _check_per_iteration(vhmm.VariationalGaussianHMM, VariationalGaussianHMM, GAUSSIAN, X,
                                     covariance_type=covariance_type)
    for name in ("startprob_", "transmat_", "means_", "covars_", "_covars_"):  # _covars_: its layout too
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-6, atol=1e-9, err_msg=name)
        assert np.shape(getattr(ours, name)) == np.shape(getattr(ref, name)), name
    np.testing.assert_allclose(ours.predict_proba(X, LENGTHS), ref.predict_proba(X, LENGTHS), atol=1e-8)
    np.testing.assert_array_equal(ours.predict(X, LENGTHS), ref.predict(X, LENGTHS))
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-9)


def test_variational_categorical_hmm_matches_hmmlearn_per_iteration():
    X = _categorical_data()
    ours, ref = _check_per_iteration(vhmm.VariationalCategoricalHMM, VariationalCategoricalHMM, CATEGORICAL, X)
    for name in ("startprob_", "transmat_", "emissionprob_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-6, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(ours.predict_proba(X, LENGTHS), ref.predict_proba(X, LENGTHS), atol=1e-8)
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-9)


def test_gaussian_params_without_m_keep_hmmlearn_raw_moment_update():
    """'c' without 'm': hmmlearn's covariance update then uses the old means on raw second
    moments; bigem's (about the E-step's means) equals it. Near the origin and from a
    posterior a few full iterations in: elsewhere hmmlearn's update leaves the scale
    indefinite (it adds (n + beta0 - beta) times the outer product of the raw means)."""
    X = _gaussian_data(1) - 100.0
    _check_per_iteration(vhmm.VariationalGaussianHMM, VariationalGaussianHMM, GAUSSIAN, X, warm=3,
                         covariance_type="diag", params="stc")


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_initial_priors_and_shapes_are_hmmlearn_s(covariance_type):
    """What fit initialises: the deterministic priors equal hmmlearn's, every posterior has
    its shape (the random draws and k-means differ)."""
    X = _gaussian_data()
    ref = vhmm.VariationalGaussianHMM(K, covariance_type=covariance_type, n_iter=0, random_state=0).fit(X, LENGTHS)
    ours = VariationalGaussianHMM(K, covariance_type=covariance_type, n_iter=0, random_state=0).fit(X, LENGTHS)
    for name in ("startprob_prior_", "transmat_prior_", "means_prior_", "beta_prior_", "dof_prior_", "scale_prior_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-12, err_msg=name)
    for name in GAUSSIAN:
        assert np.shape(getattr(ours, name)) == np.shape(getattr(ref, name)), name
    np.testing.assert_allclose(ours.startprob_posterior_.sum(), len(LENGTHS))
    np.testing.assert_allclose(ours.transmat_posterior_.sum(), sum(LENGTHS))
    # hmmlearn's scale posterior: the data's covariance plus 1e-3 I, times the posterior dof
    dof = np.asarray(ours.dof_posterior_)
    covars = ours.scale_posterior_ / (dof if covariance_type == "tied" else dof.reshape(-1, *[1] * (
        ours.scale_posterior_.ndim - 1)))
    cv = np.cov(X.T) + 1e-3 * np.eye(2)
    expected = {"full": cv, "tied": cv, "diag": np.diag(cv), "spherical": cv.mean()}[covariance_type]
    np.testing.assert_allclose(covars if covariance_type == "tied" else covars[0], expected, rtol=1e-10)


def test_categorical_initial_priors_are_hmmlearn_s():
    X = _categorical_data()
    ref = vhmm.VariationalCategoricalHMM(K, n_iter=0, random_state=0).fit(X, LENGTHS)
    ours = VariationalCategoricalHMM(K, n_iter=0, random_state=0).fit(X, LENGTHS)
    for name in ("startprob_prior_", "transmat_prior_", "emissionprob_prior_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-12, err_msg=name)
    assert ours.emissionprob_posterior_.shape == ref.emissionprob_posterior_.shape
    np.testing.assert_allclose(ours.emissionprob_posterior_.sum(), sum(LENGTHS))


def test_constructor_names_and_defaults_are_hmmlearn_s():
    import inspect

    for ours, ref in ((VariationalGaussianHMM, vhmm.VariationalGaussianHMM),
                      (VariationalCategoricalHMM, vhmm.VariationalCategoricalHMM)):
        theirs = inspect.signature(ref).parameters
        mine = inspect.signature(ours).parameters
        for name, p in theirs.items():
            assert name in mine and mine[name].default == p.default, name
        assert list(mine)[: len(theirs)] == list(theirs)  # positional order too


@pytest.mark.parametrize("seed", [1, 11])
def test_a_random_start_with_vanishing_concentrations_fits_as_hmmlearn_s(seed):
    """Unused symbols (n_features=6 over symbols 0..3): the default prior's random start
    draws concentrations of ~1e-20 (seed 1: an emission; 11: a transition), whose
    E[log phi] ~ -1e20 has an exp of 0. bigem raised "the mean log-likelihood became
    -inf" where hmmlearn's bound is finite and recovers; now the bounds agree."""
    X = np.random.default_rng(0).integers(0, 4, (200, 1))
    ref = vhmm.VariationalCategoricalHMM(3, n_features=6, random_state=seed, n_iter=10, tol=0).fit(X)
    ours = VariationalCategoricalHMM(3, n_features=6, random_state=seed, n_iter=10, tol=0).fit(X)
    assert min(ref.monitor_.history) < -1e8  # the vanishing start, in hmmlearn's bound too
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-9)
    np.testing.assert_allclose(ours.emissionprob_posterior_, ref.emissionprob_posterior_, rtol=1e-6)
