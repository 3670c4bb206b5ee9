"""hmmlearn's API to the letter: the behaviours users' code relies on, each checked
against hmmlearn 0.3 itself (same parameters, same data) or its documented rule."""

from __future__ import annotations

import logging
import re
import warnings

import numpy as np
import pytest

from bigem import GMMHMM, CategoricalHMM, GaussianHMM, PoissonHMM
from bigem._core.errors import CollapsedStateWarning, ParameterError

hmm = pytest.importorskip("hmmlearn.hmm")

K, D = 3, 2


def _gaussian_params(covariance_type: str, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return dict(
        startprob_=np.array([0.5, 0.3, 0.2]),
        transmat_=rng.dirichlet(np.full(K, 4.0), K),
        means_=rng.normal(0, 2, (K, D)),
        covars_={"diag": np.full((K, D), 1.3), "full": np.stack([np.eye(D) * 1.3] * K),
                 "tied": np.eye(D) * 1.3, "spherical": np.full(K, 1.3)}[covariance_type],
    )


def _with(model, params: dict, n_features: int | None = None):
    for name, value in params.items():
        setattr(model, name, np.array(value, copy=True))
    if n_features is not None:
        model.n_features = n_features
    return model


def _data(n: int = 240, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(0, 2, (n, D))


LENGTHS = [40, 1, 120, 79]


# ------------------------------------------------------------------ aic / bic
@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied", "spherical"])
def test_gaussian_hmm_aic_and_bic_equal_hmmlearns(covariance_type):
    X, p = _data(), _gaussian_params(covariance_type)
    ref = _with(hmm.GaussianHMM(K, covariance_type=covariance_type, init_params=""), p, D)
    ours = _with(GaussianHMM(K, covariance_type=covariance_type, init_params="", dtype="float64"), p, D)
    assert ours.aic(X, LENGTHS) == pytest.approx(ref.aic(X, LENGTHS), rel=1e-10)
    assert ours.bic(X, LENGTHS) == pytest.approx(ref.bic(X, LENGTHS), rel=1e-10)


def test_aic_and_bic_of_categorical_poisson_and_gmm_hmms_equal_hmmlearns():
    rng = np.random.default_rng(2)
    base = dict(startprob_=np.array([0.5, 0.3, 0.2]), transmat_=rng.dirichlet(np.full(K, 4.0), K))
    symbols = rng.integers(0, 4, (200, 1))
    cat = dict(base, emissionprob_=rng.dirichlet(np.ones(4), K))
    counts = rng.poisson(3.0, (200, D))
    pois = dict(base, lambdas_=rng.uniform(1, 5, (K, D)))
    M = 2
    gmm = dict(base, weights_=rng.dirichlet(np.ones(M), K), means_=rng.normal(0, 2, (K, M, D)),
               covars_=np.full((K, M, D), 1.5))
    X = _data(200)
    cases = [
        (hmm.CategoricalHMM(K, init_params=""), CategoricalHMM(K, init_params="", dtype="float64"), cat, symbols, 4),
        (hmm.PoissonHMM(K, init_params=""), PoissonHMM(K, init_params="", dtype="float64"), pois, counts, D),
        (hmm.GMMHMM(K, M, covariance_type="diag", init_params=""),
         GMMHMM(K, M, covariance_type="diag", init_params="", dtype="float64"), gmm, X, D),
    ]
    for ref, ours, params, data, n_features in cases:
        _with(ref, params, n_features)
        _with(ours, params, n_features)
        lengths = [50, 150]
        assert ours.aic(data, lengths) == pytest.approx(ref.aic(data, lengths), rel=1e-10), type(ours).__name__
        assert ours.bic(data, lengths) == pytest.approx(ref.bic(data, lengths), rel=1e-10), type(ours).__name__


def test_aic_and_bic_pick_the_generating_number_of_states():
    true = _with(hmm.GaussianHMM(2, init_params=""), dict(
        startprob_=np.array([0.5, 0.5]), transmat_=np.array([[0.9, 0.1], [0.1, 0.9]]),
        means_=np.array([[0.0, 0.0], [5.0, 5.0]]), covars_=np.ones((2, 2))))
    X, _ = true.sample(600, random_state=0)
    fits = {k: GaussianHMM(k, n_iter=30, random_state=0, dtype="float64").fit(X) for k in (1, 2, 4)}
    assert min(fits, key=lambda k: fits[k].bic(X)) == 2
    assert fits[2].aic(X) < fits[1].aic(X)


# ------------------------------------------------------------------ logging
def test_init_params_overwriting_a_set_attribute_is_logged_in_hmmlearns_words(caplog):
    """hmmlearn speaks through ``logging`` here, not ``warnings``: users' log filters see it."""
    X = _data()
    with caplog.at_level(logging.WARNING):
        ref = hmm.GaussianHMM(K, n_iter=1, random_state=0)
        ref.means_ = np.zeros((K, D))
        ref.fit(X)
        theirs = [r.getMessage() for r in caplog.records if "overwritten" in r.getMessage()]
        caplog.clear()
        ours = GaussianHMM(K, n_iter=1, random_state=0)
        ours.means_ = np.zeros((K, D))
        with warnings.catch_warnings():
            warnings.filterwarnings("error", message=".*overwritten")
            ours.fit(X)
        mine = [r for r in caplog.records if "overwritten" in r.getMessage()]
    assert [r.getMessage() for r in mine] == theirs == [
        "Even though the 'means_' attribute is set, it will be overwritten during initialization because "
        "'init_params' contains 'm'"]
    assert mine[0].levelno == logging.WARNING and mine[0].name.startswith("bigem")


def test_the_covariance_set_by_its_property_is_overwritten_with_a_log_too(caplog):
    ours = GaussianHMM(K, n_iter=1, random_state=0)
    ours.covars_ = np.ones((K, D))
    with caplog.at_level(logging.WARNING):
        ours.fit(_data())
    assert any("'covars_' attribute is set, it will be overwritten" in r.getMessage() for r in caplog.records)


# ------------------------------------------------------------------ parameters
def test_categorical_hmm_honours_n_features_beyond_the_symbols_seen():
    rng = np.random.default_rng(3)
    X = rng.integers(0, 3, (150, 1))
    start = dict(startprob_=np.array([0.6, 0.4]), transmat_=np.array([[0.8, 0.2], [0.3, 0.7]]),
                 emissionprob_=rng.dirichlet(np.ones(6), 2))
    ref = _with(hmm.CategoricalHMM(2, n_features=6, init_params="", n_iter=5, tol=-np.inf), start).fit(X)
    ours = _with(CategoricalHMM(2, n_features=6, init_params="", n_iter=5, tol=-np.inf, dtype="float64"), start)
    ours.fit(X)
    assert ours.n_features == 6 and ours.emissionprob_.shape == (2, 6)
    np.testing.assert_allclose(ours.emissionprob_, ref.emissionprob_, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-8)
    fresh = CategoricalHMM(2, n_features=6, n_iter=2, random_state=0).fit(X)
    assert fresh.emissionprob_.shape == (2, 6)
    np.testing.assert_array_equal(fresh.emissionprob_[:, 3:], 0.0)  # symbols never seen: in the alphabet, unlikely


@pytest.mark.parametrize("shape", [(K,), (K, 1), (K, D)])
def test_spherical_covars_in_every_shape_hmmlearn_accepts(shape):
    X, p = _data(), _gaussian_params("spherical")
    variances = np.array([0.7, 1.3, 2.1])
    p["covars_"] = np.broadcast_to(variances.reshape(K, *[1] * (len(shape) - 1)), shape).copy()
    ref = _with(hmm.GaussianHMM(K, covariance_type="spherical", init_params=""), p)
    ours = _with(GaussianHMM(K, covariance_type="spherical", init_params="", dtype="float64"), p, D)
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-10)
    np.testing.assert_allclose(ours.covars_, variances[:, None, None] * np.eye(D))


def test_spherical_covars_that_differ_across_columns_are_refused_with_the_fix():
    p = _gaussian_params("spherical")
    p["covars_"] = np.array([[1.0, 1.0], [1.0, 2.0], [3.0, 3.0]])
    ours = _with(GaussianHMM(K, covariance_type="spherical", init_params=""), p, D)
    with pytest.raises(ParameterError, match=r"must repeat one variance per state.*row 1 .*pass shape \(3,\)"):
        ours.score(_data())


@pytest.mark.parametrize("cls", ["GaussianHMM", "CategoricalHMM", "PoissonHMM", "GMMHMM", "MultinomialHMM"])
def test_hmmlearns_implementation_parameter_is_accepted_by_every_hmm(cls):
    import bigem

    ours, theirs = getattr(bigem, cls), getattr(hmm, cls)
    assert ours().implementation == theirs().implementation == "log"
    assert ours(implementation="scaling").get_params()["implementation"] == "scaling"
    with pytest.raises(ParameterError, match="implementation"):
        ours(implementation="fast")._settings()


def test_both_implementations_give_hmmlearns_answers():
    X, p = _data(), _gaussian_params("full")
    ref = _with(hmm.GaussianHMM(K, covariance_type="full", init_params="", n_iter=4, tol=-np.inf,
                                implementation="scaling"), p).fit(X, LENGTHS)
    for implementation in ("log", "scaling"):
        ours = _with(GaussianHMM(K, covariance_type="full", init_params="", n_iter=4, tol=-np.inf, dtype="float64",
                                 implementation=implementation), p, D).fit(X, LENGTHS)
        np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)


@pytest.mark.parametrize("tol", [-1.0, -np.inf])
def test_a_negative_or_minus_infinite_tol_runs_every_iteration_as_hmmlearn(tol):
    X, p = _data(), _gaussian_params("diag")
    ref = _with(hmm.GaussianHMM(K, init_params="", n_iter=7, tol=tol), p).fit(X, LENGTHS)
    ours = _with(GaussianHMM(K, init_params="", n_iter=7, tol=tol, dtype="float64"), p, D).fit(X, LENGTHS)
    assert len(ours.monitor_.history) == len(ref.monitor_.history) == 7
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-8)


@pytest.mark.parametrize("tol", [float("nan"), "0.1", True])
def test_tol_that_is_not_a_float_is_refused(tol):
    with pytest.raises(ParameterError, match="tol"):
        GaussianHMM(2, tol=tol).fit(_data())


def test_gmmhmm_initialisation_does_not_depend_on_lengths():
    """hmmlearn's GMMHMM initialises from the rows alone; so does ours, whatever the
    sequences and however they are batched (to the rounding of the data covariance's
    sums, gathered batch by batch)."""
    rng = np.random.default_rng(4)
    X = np.r_[rng.normal(0, 1, (400, D)), rng.normal(6, 1, (400, D))]
    rng.shuffle(X)
    uneven = list(rng.multinomial(800 - 40, np.ones(40) / 40) + 1)
    fits = [GMMHMM(2, n_mix=3, n_iter=0, random_state=3, dtype="float64", memory_budget=budget).fit(X, lengths)
            for lengths in (None, [800], uneven, uneven[::-1]) for budget in (None, 20_000)]
    for other in fits[1:]:
        for name in ("startprob_", "transmat_", "weights_", "means_", "covars_"):
            np.testing.assert_allclose(getattr(other, name), getattr(fits[0], name), rtol=1e-12, err_msg=name)


# ------------------------------------------------------------------ robustness
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_tiny_data_with_constant_columns_fits_thanks_to_min_covar(dtype):
    """9 rows, 3 states, full covariances, two constant features: hmmlearn fits it; so
    do we, adding min_covar to the diagonal of a state whose covariance collapses."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(9, 1)), np.ones((9, 1)), np.zeros((9, 1))]
    hmm.GaussianHMM(3, covariance_type="full", random_state=0).fit(X)  # the reference fits
    with pytest.warns(CollapsedStateWarning, match=r"min_covar=0.001 was added to its diagonal"):
        ours = GaussianHMM(3, covariance_type="full", random_state=0, dtype=dtype).fit(X)
    assert np.isfinite(ours.score(X))
    assert np.all(np.linalg.eigvalsh(ours.covars_) > 0)
    np.testing.assert_allclose(ours.startprob_.sum(), 1.0, rtol=1e-6)
    assert (ours.predict(X) >= 0).all()


def test_collapsed_states_without_min_covar_still_raise_with_the_fix():
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(9, 1)), np.ones((9, 1)), np.zeros((9, 1))]
    with pytest.raises(Exception, match=r"increase min_covar \(now 0\)"):
        GaussianHMM(3, covariance_type="full", random_state=0, min_covar=0.0, covars_prior=0.0).fit(X)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full", "tied"])
def test_a_huge_outlier_from_given_parameters_fits_as_hmmlearns(covariance_type):
    """One row at 1e4 among N(0, 1) rows, a 2-state model started from init_params='':
    the far state takes the outlier alone; hmmlearn's log implementation fits it."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(101, 1))
    X[50] = 1e4
    p = dict(startprob_=np.array([0.5, 0.5]), transmat_=np.array([[0.9, 0.1], [0.1, 0.9]]),
             means_=np.array([[0.0], [1.0]]),
             covars_={"diag": np.ones((2, 1)), "spherical": np.ones(2), "full": np.ones((2, 1, 1)),
                      "tied": np.ones((1, 1))}[covariance_type])
    ref = _with(hmm.GaussianHMM(2, covariance_type=covariance_type, init_params="", n_iter=10,
                                implementation="log"), p).fit(X)
    ours = _with(GaussianHMM(2, covariance_type=covariance_type, init_params="", n_iter=10, dtype="float64"), p, 1)
    ours.fit(X)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-6)
    np.testing.assert_allclose(ours.covars_, ref.covars_, rtol=1e-6)
    assert ours.score(X) == pytest.approx(ref.score(X), rel=1e-8)


@pytest.mark.parametrize("seed", range(4))
def test_the_diag_model_fits_100_rows_with_3_states_by_default(seed):
    X = np.random.default_rng(seed).normal(size=(100, D))
    ours = GaussianHMM(3, random_state=seed).fit(X)
    ref = hmm.GaussianHMM(3, random_state=seed).fit(X)
    assert np.isfinite(ours.score(X))
    # a local optimum of the same likelihood: not worse than hmmlearn's by more than chance
    assert ours.score(X) > ref.score(X) - 0.05 * abs(ref.score(X))


def test_verbose_reports_are_hmmlearns_lines_on_stderr(capsys):
    """hmmlearn's monitor prints each iteration to stderr; bigem printed the same lines to
    stdout, where code that separates the two streams looked for them in vain."""
    X = np.r_[np.random.default_rng(0).normal(0, 1, (300, D)), np.random.default_rng(1).normal(4, 1, (300, D))]
    hmm.GaussianHMM(2, random_state=0, verbose=True, n_iter=4).fit(X)
    theirs = capsys.readouterr()
    GaussianHMM(2, random_state=0, verbose=True, n_iter=4, dtype="float64").fit(X)
    ours = capsys.readouterr()
    assert theirs.out == ours.out == ""
    rows = [[line.split() for line in text.err.splitlines()] for text in (theirs, ours)]
    assert [len(r) for r in rows[1]] == [3] * 4 and [r[0] for r in rows[1]] == ["1", "2", "3", "4"]
    assert [len(line) for line in ours.err.splitlines()] == [len(line) for line in theirs.err.splitlines()]
    np.testing.assert_allclose([float(r[1]) for r in rows[1]], [float(r[1]) for r in rows[0]], rtol=1e-10)


def test_stationary_distribution_is_hmmlearns():
    """hmmlearn's public get_stationary_distribution was missing (AttributeError)."""
    X = np.r_[np.random.default_rng(0).normal(0, 1, (300, D)), np.random.default_rng(1).normal(4, 1, (300, D))]
    ref = hmm.GaussianHMM(3, random_state=0, n_iter=5).fit(X)
    ours = GaussianHMM(3, random_state=0, n_iter=5, dtype="float64").fit(X)
    pi = ours.get_stationary_distribution()
    np.testing.assert_allclose(pi, ref.get_stationary_distribution(), rtol=1e-8)
    np.testing.assert_allclose(pi @ ours.transmat_, pi, atol=1e-12)  # stationary: pi A = pi
    assert pi.sum() == pytest.approx(1.0) and (pi > 0).all()
    with pytest.raises(Exception, match="not fitted yet"):
        GMMHMM(2).get_stationary_distribution()


@pytest.mark.parametrize("base", ["hmmlearn", "bigem"])
def test_a_monitor_set_before_fit_decides_when_it_stops(base):
    """hmmlearn's documented recipe for another stopping rule: replace ``monitor_`` by a
    subclass whose ``converged`` says when to stop. bigem had no ``monitor_`` before a
    fit (AttributeError), and its fit kept its own rule."""
    from hmmlearn.base import ConvergenceMonitor as Theirs

    from bigem.estimators.hmm import ConvergenceMonitor as Ours

    class ThresholdMonitor(Theirs if base == "hmmlearn" else Ours):
        @property
        def converged(self):
            return self.iter == self.n_iter or self.history[-1] >= self.tol

    X = np.r_[np.random.default_rng(0).normal(0, 1, (300, D)), np.random.default_rng(1).normal(4, 1, (300, D))]
    fits = []
    for cls, extra in ((hmm.GaussianHMM, {}), (GaussianHMM, dict(dtype="float64"))):
        m = cls(2, tol=-2300.0, n_iter=50, random_state=0, **extra)
        assert (m.monitor_.tol, m.monitor_.n_iter, m.monitor_.iter) == (-2300.0, 50, 0)
        m.monitor_ = ThresholdMonitor(m.monitor_.tol, m.monitor_.n_iter, m.monitor_.verbose)
        fits.append(m.fit(X))
    ref, ours = fits
    assert 1 < ours.monitor_.iter == ref.monitor_.iter < 50  # the threshold, not tol's gain rule, stopped it
    assert ours.monitor_.history[-1] >= -2300.0 > ours.monitor_.history[-2]
    np.testing.assert_allclose(list(ours.monitor_.history), list(ref.monitor_.history), rtol=1e-10)
    again = ours.fit(X)  # the monitor stays, reset for the new fit
    assert isinstance(again.monitor_, ThresholdMonitor) and again.monitor_.iter == ref.monitor_.iter


# ------------------------------------------------------------------ hmmlearn's rules for user-set parameters
@pytest.mark.parametrize("make, init_params, given", [
    (lambda m, **k: m.GaussianHMM(K, covariance_type="full", **k), "mc", ("startprob_",)),
    (lambda m, **k: m.GaussianHMM(K, **k), "", ("startprob_", "transmat_")),  # means_, covars_ unset: initialised
    (lambda m, **k: m.GaussianHMM(K, covariance_type="tied", **k), "s", ("means_",)),
], ids=["transmat-unset", "emission-unset", "covars-unset"])
def test_parameters_left_unset_are_initialised_as_hmmlearn_does(make, init_params, given):
    """hmmlearn initialises a parameter that is not set whatever init_params says: the
    same fit, from the same int random_state, with the same parameters given."""
    X, p = _data(), _gaussian_params("full")
    p["means_"] = p["means_"] + 0.5
    kw = dict(init_params=init_params, n_iter=6, random_state=3)
    ref = _with(make(hmm, **kw), {n: p[n] for n in given})
    ours = _with(make(__import__("bigem"), dtype="float64", **kw), {n: p[n] for n in given})
    ref.fit(X, LENGTHS)
    ours.fit(X, LENGTHS)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-9)
    for name in ("startprob_", "transmat_", "means_", "covars_"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=1e-7, atol=1e-9, err_msg=name)


def test_variational_posteriors_left_unset_are_initialised_as_hmmlearn_does():
    vhmm = pytest.importorskip("hmmlearn.vhmm")
    from bigem import VariationalGaussianHMM

    X = _data()
    ref = vhmm.VariationalGaussianHMM(K, init_params="", n_iter=5, random_state=2).fit(X, LENGTHS)
    ours = VariationalGaussianHMM(K, init_params="", n_iter=5, random_state=2).fit(X, LENGTHS)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-9)
    np.testing.assert_allclose(ours.means_posterior_, ref.means_posterior_, rtol=1e-7, atol=1e-9)


@pytest.mark.parametrize("off", [0.0, 4e-6, -9e-6])
def test_probabilities_within_hmmlearns_tolerance_are_used_as_given(off):
    """hmmlearn checks the rows with np.allclose (1e-5 relative): float32 or rounded rows
    pass, and score with the values as given."""
    X, p = _data(), _gaussian_params("diag")
    p["startprob_"] = np.array([1 / 3 + off, 1 / 3, 1 / 3], dtype=np.float64)
    p["transmat_"] = p["transmat_"].astype(np.float32)
    ref = _with(hmm.GaussianHMM(K, init_params=""), p)
    ours = _with(GaussianHMM(K, init_params="", dtype="float64"), p)
    assert ours.score(X, LENGTHS) == pytest.approx(ref.score(X, LENGTHS), rel=1e-12)


def test_probabilities_beyond_hmmlearns_tolerance_are_refused_with_the_fix():
    p = _gaussian_params("diag")
    p["startprob_"] = np.array([0.34, 1 / 3, 1 / 3])
    with pytest.raises(ParameterError, match="startprob_ sums to 1.00666.*normalise it"):
        _with(GaussianHMM(K, init_params=""), p).score(_data())


def test_map_decoding_returns_hmmlearns_sum_of_the_largest_posteriors():
    X, p = _data(), _gaussian_params("diag")
    ref = _with(hmm.GaussianHMM(K, init_params="", algorithm="map"), p)
    ours = _with(GaussianHMM(K, init_params="", dtype="float64", algorithm="map"), p)
    got, want = ours.decode(X, LENGTHS), ref.decode(X, LENGTHS)
    assert got[0] == pytest.approx(want[0], rel=1e-10)
    assert 0 < got[0] <= len(X)  # a sum of probabilities, not a log-probability
    np.testing.assert_array_equal(got[1], want[1])


def test_poisson_hmm_prior_is_applied_as_hmmlearn_applies_it():
    """hmmlearn weighs the Gamma prior against every row's posterior mass, not the state's."""
    rng = np.random.default_rng(5)
    X = rng.poisson([[1.0, 3.0]] * 150 + [[6.0, 0.5]] * 150)
    start = dict(startprob_=np.array([0.5, 0.3, 0.2]), transmat_=rng.dirichlet(np.full(K, 4.0), K),
                 lambdas_=np.array([[1.0, 2.0], [5.0, 1.0], [0.5, 0.5]]))
    kw = dict(lambdas_prior=2.0, lambdas_weight=5.0, init_params="", n_iter=8, tol=-np.inf)
    ref = _with(hmm.PoissonHMM(K, **kw), start).fit(X, [300])
    ours = _with(PoissonHMM(K, dtype="float64", **kw), start).fit(X, [300])
    np.testing.assert_allclose(ours.lambdas_, ref.lambdas_, rtol=1e-9)
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-10)


FULL = np.array([[[2.0, 0.5], [0.5, 1.0]], [[1.0, 0.0], [0.0, 3.0]], [[0.5, 0.1], [0.1, 0.7]]])


@pytest.mark.parametrize("covariance_type, shape", [("diag", (K, D)), ("tied", (D, D)), ("spherical", (K,))])
def test_full_matrices_another_type_cannot_hold_are_refused_with_its_shape(covariance_type, shape):
    """hmmlearn refuses (K, D, D) for these types; bigem takes the matrices its own
    ``covars_`` returns, but never silently drops what the type cannot hold."""
    p = {**_gaussian_params(covariance_type), "covars_": FULL}
    ours = _with(GaussianHMM(K, covariance_type=covariance_type, init_params=""), p)
    with pytest.raises(ValueError):
        _with(hmm.GaussianHMM(K, covariance_type=covariance_type, init_params=""), p).score(_data())
    with pytest.raises(ParameterError, match=rf"covariance_type='{covariance_type}' takes only .* shape {re.escape(str(shape))}"):
        ours.score(_data())


@pytest.mark.parametrize("covariance_type", ["diag", "tied", "spherical"])
def test_the_full_matrices_covars_returns_can_be_set_back(covariance_type):
    p = _gaussian_params(covariance_type)
    ref = _with(hmm.GaussianHMM(K, covariance_type=covariance_type, init_params=""), p)
    ours = _with(GaussianHMM(K, covariance_type=covariance_type, init_params="", dtype="float64"), p)
    ours.covars_ = ours.covars_  # full matrices, as hmmlearn's getter returns them
    assert ours.covars_.shape == (K, D, D)
    assert ours.score(_data(), LENGTHS) == pytest.approx(ref.score(_data(), LENGTHS), rel=1e-12)


@pytest.mark.parametrize("covariance_type, value", [
    ("tied", np.ones(K)), ("tied", np.ones((K, 1))), ("diag", 2.0), ("spherical", np.ones((2, 2))),
    ("full", np.ones((K, D))),
])
def test_a_covars_of_the_wrong_shape_is_a_value_error_naming_the_shape(covariance_type, value):
    m = GaussianHMM(K, covariance_type=covariance_type, init_params="")
    m.means_ = np.zeros((K, D))
    m.covars_ = value
    with pytest.raises(ParameterError, match="'covars_' should have the shape of"):
        m.covars_
    assert issubclass(ParameterError, ValueError)


def test_an_n_features_set_by_hand_that_x_contradicts_is_refused_as_in_hmmlearn():
    X = _data()
    for m in (hmm.GaussianHMM(K), GaussianHMM(K)):
        m.n_features = 5
        with pytest.raises(ValueError, match="Unexpected number of dimensions, got 2 but expected 5"):
            m.fit(X)


def test_emission_parameters_of_another_width_than_n_features_are_refused_as_in_hmmlearn():
    """A torch RuntimeError escaped in the M-step; hmmlearn raises a ValueError."""
    X = np.random.default_rng(0).integers(0, 4, (50, 1))
    for cls in (hmm.CategoricalHMM, CategoricalHMM):
        m = _with(cls(2, n_features=6, init_params="", n_iter=2),
                  dict(startprob_=[.5, .5], transmat_=[[.9, .1], [.2, .8]], emissionprob_=np.full((2, 4), .25)))
        with pytest.raises(ValueError, match="emissionprob_"):
            m.fit(X)
    with pytest.raises(ParameterError, match="emissionprob_ holds 4 columns but n_features is 6"):
        m.fit(X)
    # GaussianHMM has no n_features to set: the message names X's width
    m = _with(GaussianHMM(2, init_params="", n_iter=2),
              dict(startprob_=[.5, .5], transmat_=[[.9, .1], [.2, .8]], means_=np.zeros((2, 2)), covars_=np.ones((2, 2))))
    with pytest.raises(ParameterError, match=r"^means_, covars_ hold 2 columns but X has 3 features: give them 3 "
                                             r"columns, or fit on 2 of X's columns$"):
        m.fit(np.random.default_rng(0).normal(size=(50, 3)))


@pytest.mark.parametrize("params", ["st", "stm"])
@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied", "spherical"])
def test_a_prior_the_updates_do_not_read_is_not_read(covariance_type, params):
    """hmmlearn reads covars_prior/covars_weight only to update covars_, and the means'
    prior only to update means_ or covars_: a value it never reads cannot fail a fit
    (bigem's prior term raised a torch RuntimeError or TypeError)."""
    X = _data()
    weight = {"st": np.ones(K + 1), "stm": 0.5}[params]  # (K+1,) broadcasts to nothing
    kw = dict(means_weight=weight, covars_prior=np.ones((5, 7)), covars_weight=np.arange(1.0, 5.0))
    ref, ours = (_with(cls(K, covariance_type, init_params="", params=params, n_iter=4, tol=-np.inf, **kw, **more),
                       _gaussian_params(covariance_type)).fit(X, LENGTHS)
                 for cls, more in ((hmm.GaussianHMM, {}), (GaussianHMM, {"dtype": "float64"})))
    np.testing.assert_allclose(ours.monitor_.history, ref.monitor_.history, rtol=1e-9)
    np.testing.assert_allclose(ours.means_, ref.means_, rtol=1e-7, atol=1e-10)


def test_a_prior_is_read_by_the_fit_alone_as_in_hmmlearn():
    """The prior check ran on every read of the parameters: a fitted model whose prior
    was then set to another shape no longer predicted (hmmlearn reads priors in fit)."""
    X = _data()
    for cls in (hmm.GaussianHMM, GaussianHMM):
        m = cls(K, n_iter=3, random_state=0).fit(X)
        states = m.predict(X)
        m.set_params(means_prior=np.ones((5, 5)))
        np.testing.assert_array_equal(m.predict(X), states)
    with pytest.raises(ParameterError, match=r"means_prior has shape \(5, 5\)"):
        m.fit(X)
    ours = _with(GaussianHMM(K, "diag", init_params="", n_iter=3, tol=-np.inf, covars_weight=np.array([2.0]),
                             dtype="float64"), _gaussian_params("diag")).fit(X)
    ref = _with(hmm.GaussianHMM(K, "diag", init_params="", n_iter=3, tol=-np.inf, covars_weight=np.array([2.0])),
                _gaussian_params("diag")).fit(X)
    np.testing.assert_allclose(ours.covars_, ref.covars_, rtol=1e-8)


@pytest.mark.parametrize("covariance_type, name, value, match", [
    ("diag", "means_weight", np.ones(K), r"means_weight has shape \(3,\), which does not broadcast to \(3, 2\)"),
    ("diag", "means_prior", np.ones((2, 2)), r"means_prior has shape \(2, 2\)"),
    ("full", "means_weight", np.ones((K, D)), r"give a number, or one per state \(shape \(3, 1\)\)"),
    ("diag", "covars_prior", np.ones((K, D, D)), r"covars_prior has shape \(3, 2, 2\).*give a number, or an array of shape \(3, 2\)"),
    ("tied", "covars_prior", np.ones((K, D, D)), r"an array of shape \(2, 2\)"),
    ("full", "covars_weight", np.ones(K), r"covars_weight has shape \(3,\).*give one number"),
])
def test_a_prior_of_a_shape_the_updates_cannot_use_is_a_value_error_naming_it(covariance_type, name, value, match):
    """hmmlearn fails there with numpy's broadcasting error (but for a tied covars_prior
    of one matrix per state, where it leaves covars_ one matrix per state); bigem's
    failed in torch."""
    X = _data()
    m = _with(GaussianHMM(K, covariance_type, init_params="", n_iter=2, **{name: value}),
              _gaussian_params(covariance_type))
    with pytest.raises(ParameterError, match=match):
        m.fit(X)
    if covariance_type == "tied":
        return
    with pytest.raises(ValueError):
        _with(hmm.GaussianHMM(K, covariance_type, init_params="", n_iter=2, **{name: value}),
              _gaussian_params(covariance_type)).fit(X)


def test_the_monitor_history_is_hmmlearns_deque():
    X = _data()
    ref, ours = hmm.GaussianHMM(K, n_iter=3, random_state=0).fit(X), GaussianHMM(K, n_iter=3, random_state=0).fit(X)
    assert type(ours.monitor_.history) is type(ref.monitor_.history)


def test_the_monitor_prints_as_hmmlearns():
    """repr(monitor_) was bigem's one-liner, without hmmlearn's history and verbose."""
    X = _data()
    ref, ours = (cls(K, n_iter=3, tol=1e-12, random_state=0).fit(X).monitor_ for cls in (hmm.GaussianHMM, GaussianHMM))
    ours.history = type(ref.history)(ref.history)  # the text, not the digits of the two fits
    assert repr(ours) == repr(ref) and repr(ours).count("\n") == 6
    assert repr(GaussianHMM(verbose=True).monitor_) == repr(hmm.GaussianHMM(verbose=True).monitor_)


@pytest.mark.parametrize("name", ["GaussianHMM", "GMMHMM", "CategoricalHMM", "PoissonHMM", "MultinomialHMM",
                                  "VariationalGaussianHMM", "VariationalCategoricalHMM"])
def test_every_hmm_has_hmmlearns_monitor_from_construction(name):
    """The variational HMMs had no monitor_ before a fit (AttributeError), so the
    recipe of replacing it before fitting failed on them alone."""
    import hmmlearn.vhmm as vhmm

    import bigem

    theirs = getattr(vhmm if name.startswith("Variational") else hmm, name)(n_iter=7, tol=0.5)
    ours = getattr(bigem, name)(n_iter=7, tol=0.5)
    assert (ours.monitor_.tol, ours.monitor_.n_iter, ours.monitor_.iter) == (0.5, 7, 0)
    assert repr(ours.monitor_) == repr(theirs.monitor_)


def test_a_count_where_a_poisson_rate_is_zero_is_impossible_as_in_hmmlearn(caplog):
    """It scored about -709 an entry (the rate read as the smallest float64), with no
    warning, where hmmlearn (and bigem's categorical HMMs) give -inf."""
    from bigem.errors import ImpossibleSequenceWarning

    rng = np.random.default_rng(0)
    X = rng.poisson(3, (200, 2))
    X[:, 1] = 0  # every rate of column 1 is 0 after the fit
    later = np.array([[3, 0], [2, 1], [4, 0]])
    ours = PoissonHMM(2, random_state=0, dtype="float64").fit(X)
    theirs = hmm.PoissonHMM(2, random_state=0).fit(X)
    assert (ours.lambdas_[:, 1] == 0).all() and (theirs.lambdas_[:, 1] == 0).all()
    with pytest.warns(ImpossibleSequenceWarning):
        assert ours.score(later) == theirs.score(later) == -np.inf
    assert ours.score(X) == pytest.approx(theirs.score(X), rel=1e-10)  # possible rows: unchanged
    # a zero rate in one state only: the row is possible through the other
    ours.lambdas_ = theirs.lambdas_ = np.array([[3.0, 0.0], [3.0, 1.0]])
    assert np.isfinite(ours.score(later)) and ours.score(later) == pytest.approx(theirs.score(later), rel=1e-10)
    np.testing.assert_array_equal(ours.predict(later), theirs.predict(later))
    assert ours.predict(later)[1] == 1  # the count in column 1 only state 1 can emit


def test_init_params_letters_of_other_models_are_ignored_as_in_hmmlearn():
    """Code shared between a GMMHMM and a GaussianHMM passes 'stmcw' to both; bigem
    refused the 'w'. params= keeps refusing them (hmmlearn fails on them too)."""
    rng = np.random.default_rng(4)
    X = np.r_[rng.normal(0, 1, (150, 2)), rng.normal(4, 1, (150, 2))]
    ours = GaussianHMM(2, init_params="stmcw", n_iter=5, random_state=0, dtype="float64").fit(X)
    theirs = hmm.GaussianHMM(2, init_params="stmcw", n_iter=5, random_state=0).fit(X)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-8)
    assert ours.init_params == "stmcw"
    with pytest.raises(ParameterError, match="'params' parameter of GaussianHMM must be a string of letters"):
        GaussianHMM(2, params="stmcw").fit(X)
