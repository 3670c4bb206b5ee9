"""The same int random_state, the same fit: bigem's starts draw the numbers that
scikit-learn's and hmmlearn's draw, from numpy's RandomState in their order (k-means++
seeds, random responsibilities, restarts one after another; Dirichlet transition rows,
random emissions, Gamma rates, each k-means from a new RandomState), so that a fit from
``random_state=0`` is theirs, in the same component order, to rounding. Before, only
fits from the same initial parameters agreed."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import bigem
from bigem._core.errors import ParameterError

hmm = pytest.importorskip("hmmlearn.hmm")
vhmm = pytest.importorskip("hmmlearn.vhmm")

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def clusters(k: int, per: int, spacing: float, d: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(spacing * i, 1.0, size=(per, d)) for i in range(k)])


@pytest.fixture(autouse=True)
def quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # both sides' ConvergenceWarnings, hmmlearn's deprecations
        yield


@pytest.mark.parametrize("init_params", ["kmeans", "random"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_mixture_is_scikit_learns_fit_from_the_same_random_state(covariance_type, init_params):
    """Overlapping clusters (k-means has several optima) and three restarts: each restart
    draws on from the last one's RandomState, as scikit-learn's do."""
    x = clusters(4, 100, 2.0, d=3)
    for rs in range(3):
        kw = dict(n_components=4, covariance_type=covariance_type, init_params=init_params, random_state=rs,
                  max_iter=500)
        ref = SkGaussianMixture(**kw).fit(x)
        ours = bigem.GaussianMixture(dtype="float64", **kw).fit(x)
        assert ours.n_iter_ == ref.n_iter_
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-10)
        np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-8)  # the same order
        np.testing.assert_array_equal(ours.predict(x), ref.predict(x))


def test_the_random_start_is_scikit_learns_beyond_twenty_thousand_rows():
    """'random' draws scikit-learn's whole (rows, K) table while it holds at most 2**24
    numbers; before, a source of more than 20 000 rows took bigem's own draws."""
    x = clusters(3, 20_000, 2.0, d=2, seed=2)
    kw = dict(n_components=3, covariance_type="diag", init_params="random", random_state=0, max_iter=5)
    ref = SkGaussianMixture(**kw).fit(x)
    ours = bigem.GaussianMixture(dtype="float64", **kw).fit(x)
    np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-8)


def test_restarts_draw_one_after_another_as_scikit_learns():
    """n_init=3: the best of three restarts, each from the RandomState the last one left."""
    x = clusters(5, 80, 1.5, d=3, seed=1)
    for rs in range(3):
        kw = dict(n_components=5, n_init=3, random_state=rs, max_iter=500)
        ref = SkGaussianMixture(**kw).fit(x)
        ours = bigem.GaussianMixture(dtype="float64", **kw).fit(x)
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-10)
        state = np.random.RandomState(rs)  # the restarts one by one, from one RandomState
        bounds = [SkGaussianMixture(n_components=5, random_state=state, max_iter=500).fit(x).lower_bound_
                  for _ in range(3)]
        np.testing.assert_allclose([h["log_likelihood"][-1] for h in ours.history_], bounds, atol=1e-10)


@pytest.mark.parametrize("prior_type", ["dirichlet_process", "dirichlet_distribution"])
def test_bayesian_gaussian_mixture_is_scikit_learns_fit_from_the_same_random_state(prior_type):
    """A Dirichlet process's sticks depend on the components' order: equal only if the
    start puts them in scikit-learn's order."""
    x = clusters(3, 100, 2.5)
    for rs in range(3):
        kw = dict(n_components=5, weight_concentration_prior_type=prior_type, random_state=rs, max_iter=500)
        ref = SkBayesianGaussianMixture(**kw).fit(x)
        ours = bigem.BayesianGaussianMixture(dtype="float64", **kw).fit(x)
        assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-8)
        np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-8)
        np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-8)


def _same_hmm_fit(ref, ours, x, lengths):
    assert ours.score(x, lengths) == pytest.approx(ref.score(x, lengths), abs=1e-8)
    np.testing.assert_allclose(ours.transmat_, ref.transmat_, atol=1e-8)
    np.testing.assert_allclose(ours.startprob_, ref.startprob_, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_hmm_is_hmmlearns_fit_from_the_same_random_state(covariance_type):
    """Dirichlet start and transition rows, then hmmlearn's KMeans(n_init=10) from a new
    RandomState, and its initial covariances (spherical: the mean of every entry of the
    data's covariance, its covariances included, as hmmlearn takes it)."""
    x, lengths = clusters(4, 100, 2.0), [100] * 4
    for rs in range(3):
        kw = dict(covariance_type=covariance_type, n_iter=30, random_state=rs)
        ref = hmm.GaussianHMM(3, **kw).fit(x, lengths)
        ours = bigem.GaussianHMM(3, dtype="float64", **kw).fit(x, lengths)
        _same_hmm_fit(ref, ours, x, lengths)
        np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-8)


def test_discrete_hmms_are_hmmlearns_fits_from_the_same_random_state():
    """CategoricalHMM's and MultinomialHMM's emissions (uniform draws, rows normalised)
    and PoissonHMM's rates (Gamma draws with the mean and variance of all of X)."""
    rng = np.random.default_rng(0)
    lengths = [100] * 4
    symbols = rng.integers(0, 4, size=(400, 1))
    counts = rng.poisson(3.0, size=(400, 2))
    trials = rng.multinomial(5, [0.2, 0.3, 0.5], size=400)
    for rs in range(3):
        ref = hmm.CategoricalHMM(3, n_iter=20, random_state=rs).fit(symbols, lengths)
        ours = bigem.CategoricalHMM(3, n_iter=20, random_state=rs, dtype="float64").fit(symbols, lengths)
        _same_hmm_fit(ref, ours, symbols, lengths)
        np.testing.assert_allclose(ours.emissionprob_, ref.emissionprob_, atol=1e-8)
        ref = hmm.PoissonHMM(3, n_iter=20, random_state=rs).fit(counts, lengths)
        ours = bigem.PoissonHMM(3, n_iter=20, random_state=rs, dtype="float64").fit(counts, lengths)
        _same_hmm_fit(ref, ours, counts, lengths)
        np.testing.assert_allclose(ours.lambdas_, ref.lambdas_, atol=1e-8)
        ref = hmm.MultinomialHMM(3, n_trials=5, n_iter=20, random_state=rs).fit(trials, lengths)
        ours = bigem.MultinomialHMM(3, n_trials=5, n_iter=20, random_state=rs, dtype="float64").fit(trials, lengths)
        _same_hmm_fit(ref, ours, trials, lengths)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gmmhmm_is_hmmlearns_fit_from_the_same_random_state(covariance_type):
    """k-means of the states, then of each state's rows, each from a new RandomState;
    hmmlearn's start and transition draws; then hmmlearn's M-step, to the digit."""
    x, lengths = clusters(4, 100, 2.0), [100] * 4
    for rs in range(2):
        kw = dict(n_mix=2, covariance_type=covariance_type, n_iter=20, random_state=rs)
        ref = hmm.GMMHMM(2, **kw).fit(x, lengths)
        ours = bigem.GMMHMM(2, dtype="float64", **kw).fit(x, lengths)
        np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
        np.testing.assert_allclose(ours.means_, ref.means_, atol=1e-8)
        np.testing.assert_allclose(np.asarray(ours.covars_), np.asarray(ref.covars_), atol=1e-8)
        np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-8)
        np.testing.assert_allclose(ours.transmat_, ref.transmat_, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_variational_hmms_are_hmmlearns_fits_from_the_same_random_state(covariance_type):
    x, lengths = clusters(4, 100, 2.0), [100] * 4
    for rs in range(2):
        kw = dict(covariance_type=covariance_type, n_iter=20, random_state=rs)
        ref = vhmm.VariationalGaussianHMM(3, **kw).fit(x, lengths)
        ours = bigem.VariationalGaussianHMM(3, **kw).fit(x, lengths)
        np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
        np.testing.assert_allclose(ours.means_posterior_, ref.means_posterior_, atol=1e-8)
    symbols = np.random.default_rng(0).integers(0, 4, size=(400, 1))
    ref = vhmm.VariationalCategoricalHMM(3, n_iter=20, random_state=0).fit(symbols, lengths)
    ours = bigem.VariationalCategoricalHMM(3, n_iter=20, random_state=0).fit(symbols, lengths)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(ours.emissionprob_posterior_, ref.emissionprob_posterior_, atol=1e-8)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mixture_samples_are_scikit_learns_from_the_same_random_state(covariance_type):
    """sample(): the counts per component by multinomial, then each component's rows."""
    x = clusters(4, 100, 2.0, d=3)
    for ref_cls, ours_cls in ((SkGaussianMixture, bigem.GaussianMixture),
                              (SkBayesianGaussianMixture, bigem.BayesianGaussianMixture)):
        kw = dict(n_components=4, covariance_type=covariance_type, random_state=3)
        ref, ours = ref_cls(**kw).fit(x), ours_cls(dtype="float64", **kw).fit(x)
        (x_ref, y_ref), (x_ours, y_ours) = ref.sample(500), ours.sample(500)
        np.testing.assert_allclose(x_ours, x_ref, atol=1e-9)
        np.testing.assert_array_equal(y_ours, y_ref)


def test_hmm_samples_are_hmmlearns_from_the_same_random_state():
    """sample(): a rand against the cumulated start or transition row, then the state's
    row, step after step; ``currstate`` starts from a given state. (hmmlearn's fit of a
    CategoricalHMM, PoissonHMM or MultinomialHMM replaces its random_state by a part-used
    RandomState, so there the two agree on an explicit sample(random_state=...).)"""
    x, lengths = clusters(4, 100, 2.0), [100] * 4
    rng = np.random.default_rng(0)
    symbols, counts = rng.integers(0, 4, size=(400, 1)), rng.poisson(3.0, size=(400, 2))
    trials = rng.multinomial(5, [0.2, 0.3, 0.5], size=400)
    for covariance_type in ("full", "diag", "tied"):  # spherical: see the next test
        kw = dict(covariance_type=covariance_type, n_iter=5, random_state=1)
        ref, ours = hmm.GaussianHMM(3, **kw).fit(x, lengths), bigem.GaussianHMM(3, dtype="float64", **kw).fit(x, lengths)
        for args in (dict(), dict(random_state=7, currstate=2)):
            (x_ref, s_ref), (x_ours, s_ours) = ref.sample(300, **args), ours.sample(300, **args)
            np.testing.assert_allclose(x_ours, x_ref, atol=1e-9)
            np.testing.assert_array_equal(s_ours, s_ref)
        ref = hmm.GMMHMM(2, n_mix=2, covariance_type=covariance_type, n_iter=5, random_state=1).fit(x, lengths)
        ours = bigem.GMMHMM(2, n_mix=2, covariance_type=covariance_type, init_params="", params="", n_iter=1,
                            dtype="float64")  # hmmlearn's fitted parameters, kept as they are
        ours.startprob_, ours.transmat_, ours.weights_ = ref.startprob_, ref.transmat_, ref.weights_
        ours.means_, ours.covars_ = ref.means_, ref.covars_
        ours.fit(x, lengths)
        (x_ref, s_ref) = ref.sample(200, random_state=4)
        (x_ours, s_ours) = ours.sample(200, random_state=4)
        np.testing.assert_allclose(x_ours, x_ref, atol=1e-9)
        np.testing.assert_array_equal(s_ours, s_ref)
    for ref_cls, ours_cls, data, extra in ((hmm.CategoricalHMM, bigem.CategoricalHMM, symbols, {}),
                                           (hmm.PoissonHMM, bigem.PoissonHMM, counts, {}),
                                           (hmm.MultinomialHMM, bigem.MultinomialHMM, trials, dict(n_trials=5))):
        ref = ref_cls(3, n_iter=5, random_state=1, **extra).fit(data, lengths)
        ours = ours_cls(3, n_iter=5, random_state=1, dtype="float64", **extra).fit(data, lengths)
        (x_ref, s_ref), (x_ours, s_ours) = ref.sample(300, random_state=5), ours.sample(300, random_state=5)
        np.testing.assert_array_equal(x_ours, x_ref)
        np.testing.assert_array_equal(s_ours, s_ref)


def test_spherical_hmm_samples_each_state_with_its_own_variance():
    """Different on purpose: hmmlearn's spherical covars_ repeats each state's matrix
    (n_components * n_features of them), so its sample draws a state's rows with another
    state's variance; bigem's states keep their own, and the states drawn are the same."""
    x, lengths = clusters(4, 100, 2.0), [100] * 4
    kw = dict(covariance_type="spherical", n_iter=5, random_state=1)
    ref, ours = hmm.GaussianHMM(3, **kw).fit(x, lengths), bigem.GaussianHMM(3, dtype="float64", **kw).fit(x, lengths)
    assert ref.covars_.shape == (3 * 2, 2, 2) and ours.covars_.shape == (3, 2, 2)
    (x_ref, s_ref), (x_ours, s_ours) = ref.sample(300), ours.sample(300)
    np.testing.assert_array_equal(s_ours, s_ref)
    first = s_ours == 0  # state 0 has its own matrix first in both
    np.testing.assert_allclose(x_ours[first], x_ref[first], atol=1e-9)
    assert not np.allclose(x_ours[~first], x_ref[~first])


def test_currstate_starts_the_sample_and_is_checked():
    """hmmlearn's ``sample(n, currstate=...)``: the first step is in the given state, with
    bigem's own draws too (random_state=None); a state outside [0, K) is refused."""
    x, lengths = clusters(4, 100, 2.0), [100] * 4
    fit = bigem.GaussianHMM(3, n_iter=5, random_state=1, dtype="float64").fit(x, lengths)
    fit.random_state = None
    for state in range(3):
        _, states = fit.sample(20, currstate=state)
        assert states[0] == state
    for bad in (3, -1, 1.0, True):
        with pytest.raises(ParameterError, match=r"currstate must be a state, an int in \[0, 2\]"):
            fit.sample(5, currstate=bad)


# ------------------------------------------------------------------ a RandomState, or None
@pytest.mark.parametrize("init_params", ["kmeans", "random"])
def test_a_random_state_instance_gives_scikit_learns_fit_and_leaves_it_where_scikit_learn_does(init_params):
    X = clusters(3, 300, 3.0)
    theirs, ours = np.random.RandomState(3), np.random.RandomState(3)
    ref = SkGaussianMixture(4, random_state=theirs, init_params=init_params, max_iter=5, n_init=2).fit(X)
    got = bigem.GaussianMixture(4, random_state=ours, init_params=init_params, max_iter=5, n_init=2,
                                dtype="float64").fit(X)
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-10)
    assert theirs.randint(2**31) == ours.randint(2**31)  # the same numbers taken from it
    np.testing.assert_allclose(got.sample(7)[0], ref.sample(7)[0], atol=1e-10)  # and it goes on from there


def test_random_state_none_draws_from_numpys_global_state_as_scikit_learn_does():
    X = clusters(3, 300, 3.0)
    np.random.seed(11)
    ref = SkGaussianMixture(4, init_params="random", max_iter=5).fit(X)
    after_theirs = np.random.randint(2**31)
    np.random.seed(11)
    got = bigem.GaussianMixture(4, init_params="random", max_iter=5, dtype="float64").fit(X)
    assert np.random.randint(2**31) == after_theirs
    np.testing.assert_allclose(got.means_, ref.means_, atol=1e-10)


def test_a_random_state_instance_gives_hmmlearns_fit_and_samples():
    X = clusters(3, 300, 3.0)
    theirs, ours = np.random.RandomState(2), np.random.RandomState(2)
    ref = hmm.GaussianHMM(3, covariance_type="full", random_state=theirs, n_iter=5).fit(X, [300] * 3)
    got = bigem.GaussianHMM(3, covariance_type="full", random_state=ours, n_iter=5, dtype="float64").fit(X, [300] * 3)
    np.testing.assert_allclose(got.monitor_.history, ref.monitor_.history, rtol=1e-9)
    np.testing.assert_allclose(got.sample(6, random_state=ours)[0], ref.sample(6, random_state=theirs)[0], atol=1e-9)


def test_fits_from_one_random_state_differ_even_where_bigem_draws_the_start_itself():
    """A PoissonMixture starts from bigem's own draws (scikit-learn has no such model):
    the RandomState still moves on, so the next fit from it is another draw."""
    X = np.random.default_rng(0).poisson(3, (400, 3))
    rs = np.random.RandomState(0)
    first = bigem.PoissonMixture(3, max_iter=2, random_state=rs).fit(X).weights_
    second = bigem.PoissonMixture(3, max_iter=2, random_state=rs).fit(X).weights_
    again = bigem.PoissonMixture(3, max_iter=2, random_state=np.random.RandomState(0)).fit(X).weights_
    assert not np.allclose(first, second)
    np.testing.assert_array_equal(first, again)


def test_poisson_hmm_keeps_hmmlearns_smallest_gamma_draws():
    """Over-dispersed counts (rates 1, 5 and 0.2): the Gamma's shape is below 1 and a draw
    fell to 4e-6, which bigem raised to 1e-3 of the mean, so the fits parted (2 nats at
    the first iteration, 26 of 450 states)."""
    rng = np.random.default_rng(3)
    lengths = [100, 200, 150]
    counts = np.column_stack([rng.poisson(1.0, 450), rng.poisson(5.0, 450), rng.poisson(0.2, 450)])
    ref = hmm.PoissonHMM(3, n_iter=20, random_state=1).fit(counts, lengths)
    ours = bigem.PoissonHMM(3, n_iter=20, random_state=1, dtype="float64").fit(counts, lengths)
    _same_hmm_fit(ref, ours, counts, lengths)
    np.testing.assert_allclose(ours.lambdas_, ref.lambdas_, atol=1e-8)
    np.testing.assert_array_equal(ours.predict(counts, lengths), ref.predict(counts, lengths))
