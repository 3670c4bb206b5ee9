"""Same answers as scikit-learn from the same initial parameters (issue: 1e-6 in float64, 1e-4 in float32)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from bigem import GaussianMixture
from tests.conftest import COV_TYPES, init_kwargs, make_blobs

TOL = {"float64": 1e-6, "float32": 1e-4}


def rel_err(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))) / max(np.max(np.abs(b)), 1e-300))


def fit_both(X, covariance_type, dtype, chunk_size=None, max_iter=25):
    kw = init_kwargs(X, 3, covariance_type) | dict(max_iter=max_iter, tol=1e-12)
    ours = GaussianMixture(**kw, dtype=dtype, chunk_size=chunk_size)
    ref = SkGaussianMixture(**kw)
    with warnings.catch_warnings():
        # both fits stop at max_iter on purpose; their ConvergenceWarnings are expected
        warnings.filterwarnings("ignore", message=".*did not converge")
        ours.fit(X)
        ref.fit(X)
    return ours, ref


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_parameters_and_lower_bound_match_sklearn(covariance_type, dtype):
    X, _, _ = make_blobs(1, n_per=150, d=4, offset=50.0)
    ours, ref = fit_both(X, covariance_type, dtype, chunk_size=97)
    tol = TOL[dtype]
    assert ours.n_iter_ == ref.n_iter_
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert rel_err(getattr(ours, name), getattr(ref, name)) < tol, name
    assert abs(ours.lower_bound_ - ref.lower_bound_) / abs(ref.lower_bound_) < tol


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_inference_methods_match_sklearn(covariance_type):
    X, _, _ = make_blobs(2, n_per=120, d=3)
    ours, ref = fit_both(X, covariance_type, "float64")
    Xt = X[:50] + 0.3
    np.testing.assert_allclose(ours.score_samples(Xt), ref.score_samples(Xt), rtol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(Xt), ref.predict_proba(Xt), atol=1e-7)
    np.testing.assert_array_equal(ours.predict(Xt), ref.predict(Xt))
    assert ours.score(Xt) == pytest.approx(ref.score(Xt), rel=1e-6)
    assert ours.bic(X) == pytest.approx(ref.bic(X), rel=1e-6)
    assert ours.aic(X) == pytest.approx(ref.aic(X), rel=1e-6)


def test_history_matches_sklearn_lower_bounds():
    X, _, _ = make_blobs(3, n_per=100, d=2)
    ours, ref = fit_both(X, "full", "float64", max_iter=10)
    if hasattr(ref, "lower_bounds_"):
        np.testing.assert_allclose(ours.lower_bounds_, ref.lower_bounds_, rtol=1e-9)
    assert len(ours.lower_bounds_) == ours.n_iter_


def test_converged_fit_agrees_with_sklearn_default_tol():
    X, _, _ = make_blobs(4, n_per=200, d=2)
    kw = init_kwargs(X, 3, "full")
    ours = GaussianMixture(**kw, dtype="float64").fit(X)
    ref = SkGaussianMixture(**kw).fit(X)
    assert ours.converged_ and ref.converged_
    assert ours.n_iter_ == ref.n_iter_
    assert rel_err(ours.means_, ref.means_) < 1e-6
