"""BayesianGaussianMixture gives scikit-learn's answers: from the same initial
responsibilities, the same lower bound at every iteration and the same parameters (the
issue asks 1e-6 in float64), the same priors from the data, the same errors for bad priors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture

import bigem
from bigem import BayesianGaussianMixture
from bigem._core.protocols import Task
from tests.conftest import COV_TYPES, make_blobs

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")
FITTED = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "mean_precision_",
          "degrees_of_freedom_")
PRIORS = ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_", "degrees_of_freedom_prior_",
          "covariance_prior_")


def rel_err(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


class _Rows:
    """The given responsibilities of a chunk's rows."""

    def __init__(self, resp):
        self.resp = resp

    def __call__(self, chunk):
        rows = self.resp[chunk.row_start : chunk.row_start + chunk.n_rows]
        return torch.as_tensor(rows, dtype=chunk.x.dtype, device=chunk.x.device)


def start_from(monkeypatch, resp):
    """Both libraries start from the update of the responsibilities ``resp`` (n, K)."""

    def ours(self, model, engine, source, s, generator, offset):
        K, D = resp.shape[1], source.n_features
        reference = model.params_at(torch.zeros(K, D, dtype=torch.float64))
        stats = engine.reduce(Task(model, "e_step_given", (reference,), {"resp_fn": _Rows(resp)}), source)
        return model.m_step(stats).params

    def theirs(self, X, random_state, xp=None):
        self._initialize(X, resp)

    monkeypatch.setattr(BayesianGaussianMixture, "_initialise", ours)
    monkeypatch.setattr(SkBayesianGaussianMixture, "_initialize_parameters", theirs)


def soft_responsibilities(n, K, seed=0):
    rng = np.random.default_rng(seed)
    return 0.7 * np.eye(K)[rng.integers(0, K, n)] + 0.3 * rng.dirichlet(np.ones(K), n)


def fit_both(X, monkeypatch, chunk_size=None, **kw):
    start_from(monkeypatch, soft_responsibilities(len(X), kw.get("n_components", 4)))
    kw = dict(n_components=4, max_iter=10, tol=0.0) | kw
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")  # both stop at max_iter on purpose
        ref = SkBayesianGaussianMixture(**kw).fit(X)
        ours = BayesianGaussianMixture(**kw, dtype="float64", chunk_size=chunk_size).fit(X)
    return ours, ref


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_lower_bound_per_iteration_and_parameters_match_sklearn(covariance_type, prior_type, monkeypatch):
    X, _, _ = make_blobs(0, n_per=60, d=3, offset=20.0)
    ours, ref = fit_both(X, monkeypatch, chunk_size=97, covariance_type=covariance_type,
                         weight_concentration_prior_type=prior_type)
    assert ours.n_iter_ == ref.n_iter_ == 10 and ours.converged_ == ref.converged_
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(ref.lower_bounds_), rtol=1e-9)
    assert ours.lower_bound_ == pytest.approx(float(np.ravel(ref.lower_bound_)[0]), rel=1e-9)
    assert isinstance(ours.lower_bound_, float)
    for name in FITTED + PRIORS:
        assert rel_err(getattr(ours, name), getattr(ref, name)) < 1e-9, name
        assert np.shape(getattr(ours, name)) == np.shape(getattr(ref, name)), name
    if prior_type == "dirichlet_process":  # a tuple of the sticks' two Beta parameters, as scikit-learn's
        assert isinstance(ours.weight_concentration_, tuple) and len(ours.weight_concentration_) == 2
    for mine, theirs in zip(np.broadcast_arrays(*ours.weight_concentration_), np.broadcast_arrays(*ref.weight_concentration_)):
        assert rel_err(mine, theirs) < 1e-9


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
def test_inference_matches_sklearn(prior_type, monkeypatch):
    X, _, _ = make_blobs(1, n_per=80, d=2)
    ours, ref = fit_both(X, monkeypatch, covariance_type="full", weight_concentration_prior_type=prior_type)
    Xt = X[:40] + 0.3
    np.testing.assert_allclose(ours.score_samples(Xt), ref.score_samples(Xt), rtol=1e-9)
    np.testing.assert_allclose(ours.predict_proba(Xt), ref.predict_proba(Xt), atol=1e-10)
    np.testing.assert_array_equal(ours.predict(Xt), ref.predict(Xt))
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        np.testing.assert_array_equal(ours.fit_predict(X), ref.fit_predict(X))
    assert ours.score(Xt) == pytest.approx(ref.score(Xt), rel=1e-9)


@pytest.mark.parametrize("covariance_type, covariance_prior", [
    ("full", np.array([[2.0, 0.3], [0.3, 1.0]])), ("tied", np.array([[1.0, -0.2], [-0.2, 3.0]])),
    ("diag", np.array([0.5, 2.0])), ("spherical", 1.7),
])
def test_given_priors_match_sklearn(covariance_type, covariance_prior, monkeypatch):
    X, _, _ = make_blobs(2, n_per=80, d=2)
    priors = dict(weight_concentration_prior=0.05, mean_precision_prior=0.3, mean_prior=[1.0, -2.0],
                  degrees_of_freedom_prior=3.5, covariance_prior=covariance_prior)
    ours, ref = fit_both(X, monkeypatch, covariance_type=covariance_type, **priors)
    np.testing.assert_allclose(ours.lower_bounds_, np.ravel(ref.lower_bounds_), rtol=1e-9)
    for name in FITTED + PRIORS:
        assert rel_err(getattr(ours, name), getattr(ref, name)) < 1e-9, name


@pytest.mark.parametrize("init", ["hc", "tree"])
def test_the_hierarchical_start_is_the_update_of_the_trees_classes(init, monkeypatch, tmp_path):
    # 'hc' (bigem's, not scikit-learn's) was accepted and silently ran k-means++ seeds
    X, _, _ = make_blobs(3, n_per=40, d=2)
    tree = bigem.hc(X)
    resp = np.eye(3)[tree.labels(3)]
    monkeypatch.setattr(SkBayesianGaussianMixture, "_initialize_parameters",
                        lambda self, X, random_state, xp=None: self._initialize(X, resp))
    ref = SkBayesianGaussianMixture(n_components=3, max_iter=0).fit(X)
    ours = BayesianGaussianMixture(n_components=3, max_iter=0, init_params="hc" if init == "hc" else tree).fit(X)
    for name in FITTED:
        assert rel_err(getattr(ours, name), getattr(ref, name)) < 1e-9, name
    ours.save(tmp_path / "m.bigem")
    assert bigem.load(tmp_path / "m.bigem").init_params == "hc"  # the method, not the tree's rows


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_fitted_attributes_have_scikit_learns_types(covariance_type, tmp_path):
    X, _, _ = make_blobs(2, n_per=60, d=3)
    ref = SkBayesianGaussianMixture(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    ours = BayesianGaussianMixture(n_components=2, covariance_type=covariance_type, random_state=0).fit(X)
    ours.save(tmp_path / "m.bigem")
    for model in (ours, bigem.load(tmp_path / "m.bigem")):
        for name in ("degrees_of_freedom_prior_", "covariance_prior_", "weight_concentration_prior_",
                     "mean_precision_prior_", "lower_bound_"):
            assert type(getattr(model, name)) is type(getattr(ref, name)), name
        assert {type(v) for v in model.lower_bounds_} == {type(v) for v in ref.lower_bounds_}
    given = BayesianGaussianMixture(n_components=2, degrees_of_freedom_prior=4.5, random_state=0).fit(X)
    assert given.degrees_of_freedom_prior_ == 4.5


def test_converged_fit_stops_where_sklearns_does(monkeypatch):
    """tol applies to the change of the total lower bound, as in scikit-learn."""
    X, _, _ = make_blobs(3, n_per=100, d=2)
    ours, ref = fit_both(X, monkeypatch, max_iter=500, tol=1e-3, n_components=5)
    assert ours.converged_ and ref.converged_ and ours.n_iter_ == ref.n_iter_
    assert rel_err(ours.means_, ref.means_) < 1e-6


def test_default_dtype_stops_where_sklearns_does(monkeypatch):
    """tol is on the bound's total (2e4 here), whose float32 rounding (about 0.004 an
    iteration) stopped a default fit after 229 iterations where scikit-learn takes 461,
    weights 0.03 apart: the default dtype is float64."""
    rng = np.random.RandomState(5)
    X = np.concatenate([rng.normal(m, s, (2000, 4)) for m, s in ((0, 1), (3, 0.7), (6, 1.5))])
    start_from(monkeypatch, soft_responsibilities(len(X), 6, seed=1))
    kw = dict(n_components=6, covariance_type="tied", max_iter=1000)
    ref = SkBayesianGaussianMixture(**kw).fit(X)
    ours = BayesianGaussianMixture(**kw).fit(X)
    assert ours.converged_ and ref.converged_ and ours.n_iter_ == ref.n_iter_
    np.testing.assert_allclose(ours.weights_, ref.weights_, atol=1e-8)


@pytest.mark.parametrize("kw, message", [
    (dict(degrees_of_freedom_prior=1.5), r"The parameter 'degrees_of_freedom_prior' should be greater than 2, but got 1.500\."),
    (dict(mean_prior=[0.0, 1.0]), r"The parameter 'means' should have the shape of \(3,\), but got \(2,\)"),
    (dict(covariance_prior=np.eye(2)), r"The parameter 'full covariance_prior' should have the shape of \(3, 3\), but got \(2, 2\)"),
    (dict(covariance_prior=-np.eye(3)), r"'full precision' should be symmetric, positive-definite"),
    (dict(covariance_type="diag", covariance_prior=[1.0, -1.0, 1.0]), r"'diag precision' should be positive"),
    (dict(covariance_type="spherical", covariance_prior=-1.0), r"The 'covariance_prior' parameter of BayesianGaussianMixture must be"),
    (dict(weight_concentration_prior=0.0), r"^The 'weight_concentration_prior' parameter of BayesianGaussianMixture must be "
                                           r"None or a float in the range \(0\.0, inf\)\. Got 0\.0 instead\.$"),
    (dict(mean_precision_prior=-1), r"^The 'mean_precision_prior' parameter of BayesianGaussianMixture must be None or a "
                                    r"float in the range \(0\.0, inf\)\. Got -1 instead\.$"),
    (dict(degrees_of_freedom_prior=float("nan")), r"^The 'degrees_of_freedom_prior' parameter of BayesianGaussianMixture "
                                                  r"must be None or a float in the range \(0\.0, inf\)\. Got nan instead\.$"),
    (dict(weight_concentration_prior_type="dirichlet"), r"The 'weight_concentration_prior_type' parameter of BayesianGaussianMixture must be"),
])
def test_bad_priors_are_refused_with_sklearns_messages(kw, message):
    X, _, _ = make_blobs(4, n_per=20, d=3)
    with pytest.raises(ValueError, match=message):
        SkBayesianGaussianMixture(n_components=2, **kw).fit(X)
    with pytest.raises(ValueError, match=message):
        BayesianGaussianMixture(n_components=2, **kw).fit(X)


@pytest.mark.parametrize("prior", [np.array(2.0), [2.0], np.float64(2.0), np.array([[2.0]])])
def test_a_spherical_covariance_prior_may_be_an_array_of_one(prior):
    """scikit-learn takes a 0-d array or a list of one for a spherical prior; bigem
    refused them, in a message that said an array-like was allowed."""
    X, _, _ = make_blobs(3, n_per=30, d=2)
    kw = dict(n_components=3, covariance_type="spherical", covariance_prior=prior, random_state=0, max_iter=20)
    ref = SkBayesianGaussianMixture(**kw).fit(X)
    ours = BayesianGaussianMixture(dtype="float64", **kw).fit(X)
    assert ours.lower_bound_ == pytest.approx(ref.lower_bound_, abs=1e-8)
    assert float(ours.covariance_prior_) == 2.0


@pytest.mark.parametrize("prior, message", [
    ([0.0], r"should be greater than 0\., but got 0\.000 \(in \[0\.0\]\)\.$"),
    (np.array([[np.inf]]), r"should be finite and greater than 0\., but got inf \(in array\(\[\[inf\]\]\)\)\.$"),
    (np.array([1.0, 2.0]), r"should be one number greater than 0 \(a float, or an array of one\); got an array of "
                           r"shape \(2,\)$"),
])
def test_a_spherical_covariance_prior_array_that_is_no_positive_number_says_so(prior, message):
    """It said "must be None, an array-like or a float ..." of an array-like."""
    X, _, _ = make_blobs(3, n_per=30, d=2)
    with pytest.raises(ValueError, match=r"^The parameter 'spherical covariance_prior' " + message):
        BayesianGaussianMixture(n_components=3, covariance_type="spherical", covariance_prior=prior).fit(X)


def test_scikit_learns_fitted_arrays_set_by_hand_predict_without_the_priors(tmp_path):
    """The arrays scikit-learn scores with make a model (the priors are only read to
    fit on); saving one without its priors says what it lacks."""
    X, _, _ = make_blobs(2, n_per=25, d=2)
    ref = SkBayesianGaussianMixture(n_components=2, random_state=0).fit(X)
    ours = BayesianGaussianMixture(n_components=2)
    for name in ("weight_concentration_", "mean_precision_", "means_", "degrees_of_freedom_", "precisions_cholesky_",
                 "covariances_", "weights_", "precisions_"):
        setattr(ours, name, getattr(ref, name))
    np.testing.assert_allclose(ours.score_samples(X), ref.score_samples(X), rtol=1e-10)
    path = tmp_path / "hand.bigem"
    with pytest.raises(ValueError, match="has no weight_concentration_prior_, .*covariance_prior_: a model file holds"):
        ours.save(str(path))
    assert not path.exists()
    for name in ("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_", "degrees_of_freedom_prior_",
                 "covariance_prior_"):
        setattr(ours, name, getattr(ref, name))
    ours.save(str(path))
    np.testing.assert_allclose(bigem.load(str(path)).score_samples(X), ref.score_samples(X), rtol=1e-10)
