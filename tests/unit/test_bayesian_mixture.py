"""BayesianGaussianMixture beyond scikit-learn's reach: streamed, weighted, on Dask,
checkpointed, accelerated, saved; its invariants; its API where it differs from
GaussianMixture's."""

from __future__ import annotations

import inspect
import warnings

import numpy as np
import pytest
import torch
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture

from bigem import BayesianGaussianMixture, load
from bigem._core.errors import ConvergenceWarning, DataError, ParameterError
from bigem.em.init import from_centres
from tests.conftest import COV_TYPES, make_blobs

FITTED = ("weights_", "means_", "covariances_", "mean_precision_", "degrees_of_freedom_", "mean_prior_",
          "covariance_prior_")


def assert_same_fit(a, b, rtol=1e-9):
    assert a.n_iter_ == b.n_iter_ and a.converged_ == b.converged_
    for name in FITTED:
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol, err_msg=name)
    np.testing.assert_allclose(np.asarray(a.weight_concentration_), np.asarray(b.weight_concentration_), rtol=rtol)
    np.testing.assert_allclose(a.lower_bounds_, b.lower_bounds_, rtol=rtol)


@pytest.fixture(scope="module")
def blobs():
    X, _, _ = make_blobs(5, n_per=150, k=3, d=3)
    return X


def test_unused_components_keep_no_weight(blobs):
    """The "how many clusters" answer: 8 components offered, 3 blobs, 3 components used."""
    bgm = BayesianGaussianMixture(n_components=8, random_state=0, max_iter=300).fit(blobs)
    assert bgm.converged_
    assert int((bgm.weights_ > 0.01).sum()) == 3
    assert bgm.weights_.sum() == pytest.approx(1.0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_never_decreases(blobs, covariance_type, dtype):
    """Coordinate ascent: the bound never falls, beyond the rounding of the kernel's dtype
    (float32's E-step sums rows of about 1e-7 relative error each)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # 40 iterations, converged or not
        bgm = BayesianGaussianMixture(n_components=5, covariance_type=covariance_type, dtype=dtype, random_state=1,
                                      init_params="random", max_iter=40, tol=1e-6).fit(blobs)
    bounds = np.asarray(bgm.lower_bounds_)
    rounding = 1e-6 if dtype == "float32" else 1e-12
    assert bounds[-1] - bounds[0] > 100 * rounding * abs(bounds[0])  # it climbed: a check that can fail
    assert np.all(np.diff(bounds) >= -rounding * np.abs(bounds[1:])), np.diff(bounds).min()
    proba = bgm.predict_proba(blobs)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)


@pytest.mark.parametrize("seed", [2, 4, 5])
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_rows_in_a_subspace_fit_with_reg_covar_on_the_singular_prior(seed, covariance_type):
    # two distinct rows in 2-D, repeated: the data's covariance (every component's prior)
    # is singular, and rounding left it indefinite, so the empty third component failed
    X = np.repeat(np.random.RandomState(seed).randn(2, 2), 20, axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-means: fewer distinct clusters than n_components
        bgm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0).fit(X)
    np.testing.assert_allclose(bgm.covariance_prior_, np.cov(X.T) + 1e-6 * np.eye(2), rtol=0, atol=1e-12)
    covariances = bgm.covariances_ if covariance_type == "full" else bgm.covariances_[None]
    assert np.all(np.linalg.eigvalsh(covariances) > 0)
    np.testing.assert_allclose(np.sort(bgm.weights_), [0.0058, 0.4852, 0.509], atol=2e-3)  # scikit-learn's, near
    # a covariance that is not singular is the prior as it is, scikit-learn's
    Y = np.random.RandomState(seed).randn(40, 2)
    full = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0).fit(Y)
    np.testing.assert_allclose(full.covariance_prior_, np.cov(Y.T), rtol=0, atol=1e-12)


def test_float32_fit_agrees_with_float64(blobs):
    kw = dict(n_components=4, random_state=0, max_iter=200, tol=1e-4)  # float32's bound is good to ~1e-4 here
    single = BayesianGaussianMixture(**kw).fit(blobs)
    double = BayesianGaussianMixture(**kw, dtype="float64").fit(blobs)
    np.testing.assert_allclose(single.means_, double.means_, rtol=1e-4, atol=1e-4)
    assert single.lower_bound_ == pytest.approx(double.lower_bound_, rel=1e-5)


def test_streamed_file_equals_in_memory(blobs, tmp_path):
    np.save(tmp_path / "x.npy", blobs)
    kw = dict(n_components=4, covariance_type="diag", random_state=0, dtype="float64", max_iter=40)
    memory = BayesianGaussianMixture(**kw).fit(blobs)
    streamed = BayesianGaussianMixture(**kw, chunk_size=64).fit(str(tmp_path / "x.npy"))
    assert_same_fit(streamed, memory)
    np.testing.assert_allclose(streamed.predict_proba(str(tmp_path / "x.npy")), memory.predict_proba(blobs), atol=1e-9)


def _start_at(monkeypatch, centres):
    """Start both fits from every row's nearest of fixed centres."""
    def initialise(self, model, engine, source, s, generator, offset):
        return from_centres(model, engine, source, torch.as_tensor(centres))

    monkeypatch.setattr(BayesianGaussianMixture, "_initialise", initialise)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_sample_weights_are_frequencies(blobs, monkeypatch, covariance_type):
    """A weight of 2 is a repeated row: in the statistics, the bound, and the priors taken
    from the data (the weighted mean, the covariance with ddof=1)."""
    w = np.random.default_rng(0).integers(1, 4, len(blobs))
    _start_at(monkeypatch, blobs[:4])
    kw = dict(n_components=4, covariance_type=covariance_type, dtype="float64", max_iter=30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # both stop at the same iteration either way
        weighted = BayesianGaussianMixture(**kw).fit(blobs, sample_weight=w)
        repeated = BayesianGaussianMixture(**kw).fit(np.repeat(blobs, w, axis=0))
    assert_same_fit(weighted, repeated)
    np.testing.assert_allclose(weighted.covariance_prior_, np.cov(np.repeat(blobs, w, axis=0).T)
                               if covariance_type == "full" else np.var(np.repeat(blobs, w, axis=0), 0, ddof=1).mean())


def test_weights_too_small_for_the_data_priors_are_refused(blobs):
    with pytest.raises(DataError, match="sample_weight sums to 1: the priors taken from the data"):
        BayesianGaussianMixture(n_components=2).fit(blobs, sample_weight=np.full(len(blobs), 1 / len(blobs)))
    given = dict(mean_prior=np.zeros(3), covariance_prior=np.eye(3))  # priors given: weights' scale is the user's
    BayesianGaussianMixture(n_components=2, random_state=0, max_iter=300, **given).fit(
        blobs, sample_weight=np.full(len(blobs), 1 / len(blobs)))


def test_resumed_fit_equals_uninterrupted_fit(blobs, tmp_path):
    kw = dict(n_components=5, random_state=3, dtype="float64", max_iter=30, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        whole = BayesianGaussianMixture(**kw).fit(blobs)

        class Stop(Exception):
            pass

        def interrupt(info):
            if info.iteration == 7:
                raise Stop

        path = tmp_path / "fit.ckpt"
        with pytest.raises(Stop):
            BayesianGaussianMixture(**kw).fit(blobs, callback=interrupt, checkpoint=path, checkpoint_every=3)
        assert path.exists()
        resumed = BayesianGaussianMixture(**kw).fit(blobs, checkpoint=path, checkpoint_every=3)
    assert not path.exists()
    assert_same_fit(resumed, whole, rtol=0.0)


def test_squarem_reaches_the_same_bound_in_fewer_passes():
    overlapping, _, _ = make_blobs(6, n_per=300, k=3, d=2, sep=1.2)
    kw = dict(n_components=4, covariance_type="diag", random_state=0, dtype="float64", max_iter=2000, tol=1e-8)
    plain = BayesianGaussianMixture(**kw).fit(overlapping)
    fast = BayesianGaussianMixture(**kw, accelerate="squarem").fit(overlapping)
    assert plain.converged_ and fast.converged_
    assert fast.n_passes_ < plain.n_passes_ / 1.5
    assert fast.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-8)
    assert np.all(np.diff(fast.lower_bounds_) >= 0)  # accepted bounds never fall
    np.testing.assert_allclose(np.sort(fast.weights_), np.sort(plain.weights_), atol=1e-4)


def test_warm_start_continues_and_carries_the_lower_bound(blobs):
    bgm = BayesianGaussianMixture(n_components=4, random_state=0, dtype="float64", max_iter=500, tol=1e-3,
                                  warm_start=True).fit(blobs)
    assert bgm.converged_
    bgm.fit(blobs)  # already converged: one iteration, measured from the last fit's bound
    assert bgm.converged_ and bgm.n_iter_ == 1


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_save_and_load_round_trip(blobs, tmp_path, covariance_type):
    """Every covariance type: a spherical model's scalar prior was written of shape (1,),
    and its own file was refused as damaged."""
    bgm = BayesianGaussianMixture(n_components=3, covariance_type=covariance_type, random_state=0,
                                  max_iter=200).fit(blobs)
    bgm.save(tmp_path / "m.bigem")
    back = load(tmp_path / "m.bigem")
    assert isinstance(back, BayesianGaussianMixture)
    for name in FITTED + ("weight_concentration_prior_", "mean_precision_prior_", "degrees_of_freedom_prior_",
                          "mean_prior_", "covariance_prior_", "lower_bound_", "n_iter_"):
        np.testing.assert_array_equal(getattr(back, name), getattr(bgm, name), err_msg=name)
        assert np.shape(getattr(back, name)) == np.shape(getattr(bgm, name)), name
    assert isinstance(back.weight_concentration_, tuple)
    assert isinstance(back.degrees_of_freedom_, float) == (covariance_type == "tied")  # scikit-learn's types
    np.testing.assert_array_equal(back.predict_proba(blobs), bgm.predict_proba(blobs))


def test_api_is_sklearns(blobs):
    """scikit-learn's parameters with its defaults; no bic, aic or partial_fit (scikit-learn's
    BayesianGaussianMixture has none); online EM's parameters are not accepted."""
    ours = inspect.signature(BayesianGaussianMixture).parameters
    for name, p in inspect.signature(SkBayesianGaussianMixture).parameters.items():
        assert name in ours and ours[name].default == p.default and ours[name].kind == p.kind, name
    bgm = BayesianGaussianMixture(n_components=2, random_state=0, max_iter=300).fit(blobs)
    for name in ("bic", "aic", "partial_fit"):
        assert not hasattr(bgm, name)
    with pytest.raises(AttributeError, match="no attribute 'bic'"):
        bgm.bic(blobs)
    with pytest.raises(TypeError):
        BayesianGaussianMixture(algorithm="online")
    with pytest.raises(DataError, match="a minimum of 2 is required by BayesianGaussianMixture"):
        BayesianGaussianMixture().fit(blobs[:1])


def test_command_line_describes_and_scores_a_model_file(blobs, tmp_path, capsys):
    """bigem info/score/predict on a saved BayesianGaussianMixture: its bound is called a
    total lower bound, not a mean log-likelihood, and no BIC or AIC is claimed for it."""
    import json

    from bigem.cli import main

    bgm = BayesianGaussianMixture(n_components=4, random_state=0, max_iter=300).fit(blobs)
    bgm.save(tmp_path / "m.bigem")
    np.save(tmp_path / "x.npy", blobs)
    assert main(["info", str(tmp_path / "m.bigem")]) == 0
    out = capsys.readouterr().out
    assert "Bayesian Gaussian mixture (dirichlet process prior)" in out and "mean log-likelihood" not in out
    assert f"lower bound {bgm.lower_bound_:.6f} (the variational bound, a total over rows)" in out
    assert main(["score", str(tmp_path / "m.bigem"), str(tmp_path / "x.npy"), "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["mean_log_likelihood"] == pytest.approx(bgm.score(blobs), rel=1e-9)
    assert scored["bic"] is None and scored["aic"] is None
    assert main(["predict", str(tmp_path / "m.bigem"), str(tmp_path / "x.npy"), "-o", str(tmp_path / "p.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), bgm.predict(blobs))


def test_mclusts_stopping_rule_is_refused_as_it_judges_a_likelihood(blobs):
    """stopping='mclust' is mclust's rule on the log-likelihood; applied to the variational
    bound it stopped 30 nats short. It is refused (select's variational rows take 'gain')."""
    with pytest.raises(ParameterError, match=r"'stopping' parameter of BayesianGaussianMixture must be a str among "
                                             r"\{'gain', 'aitken'\}"):
        BayesianGaussianMixture(n_components=2, stopping="mclust").fit(blobs)
    assert "'mclust'" not in BayesianGaussianMixture.__doc__


def test_log_beta_keeps_its_digits_where_the_sum_of_lgammas_cancels():
    from scipy.special import betaln

    from bigem.models.variational import log_beta

    values = np.array([1e-3, 0.5, 1.0, 2.5, 9.99, 10.0, 10.01, 37.0, 1e3, 1e6, 1e8, 1e12, 1e20])
    a, b = np.meshgrid(values, values)
    ours = log_beta(torch.tensor(a), torch.tensor(b)).numpy()
    np.testing.assert_allclose(ours, betaln(a, b), rtol=2e-9, atol=1e-12)  # (scipy's own error: 1e-9 at (1e6, 0.5))
    f64 = dict(dtype=torch.float64)
    assert log_beta(torch.tensor(3.0, **f64), torch.tensor(1e12, **f64)).item() == pytest.approx(-82.1999161672287, abs=1e-12)


@pytest.mark.parametrize("concentration", [1e12, 1e20])
def test_a_large_dirichlet_process_concentration_keeps_scikit_learns_bound(blobs, concentration):
    """lgamma(a) + lgamma(b) - lgamma(a + b) lost 0.004 of the bound at 1e12 and all of its
    term at 1e20 (bigem -109 against scikit-learn's -2883)."""
    X = blobs[:60]
    kw = dict(n_components=3, random_state=0, weight_concentration_prior=concentration)
    ours, theirs = BayesianGaussianMixture(**kw).fit(X), SkBayesianGaussianMixture(**kw).fit(X)
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.lower_bound_ == pytest.approx(theirs.lower_bound_, rel=1e-9)


def test_each_iteration_updates_q_once(blobs, monkeypatch):
    """The bound the driver reads and the M-step that follows are one update of q: the
    posterior was computed twice per iteration, the same result at twice the M-step's cost."""
    from bigem.models.variational import VariationalMixture

    calls = []
    real = VariationalMixture.posterior
    monkeypatch.setattr(VariationalMixture, "posterior", lambda self, stats: calls.append(1) or real(self, stats))
    bgm = BayesianGaussianMixture(n_components=4, random_state=0, max_iter=30, tol=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        bgm.fit(blobs)
    assert bgm.n_iter_ == 30 and len(calls) <= bgm.n_iter_ + 2
