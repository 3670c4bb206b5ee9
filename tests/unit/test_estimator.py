"""The estimator's behaviour: streaming is exact, weights are repetitions, inputs of every
kind give the same fit, and known generating parameters are recovered."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch

import bigem
from bigem import GaussianMixture
from tests.conftest import COV_TYPES, init_kwargs, make_blobs


def _fit(X, **kw):
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        return GaussianMixture(**kw).fit(X)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_chunked_fit_equals_one_piece_fit(covariance_type):
    X, _, _ = make_blobs(0, n_per=100, d=3)
    kw = init_kwargs(X, 3, covariance_type) | dict(dtype="float64", max_iter=20, tol=0.0)
    whole = _fit(X, **kw, chunk_size=len(X))
    for chunk in (5, 128):
        part = _fit(X, **kw, chunk_size=chunk)
        for name in ("weights_", "means_", "covariances_"):
            np.testing.assert_allclose(getattr(part, name), getattr(whole, name), rtol=1e-10, atol=1e-12)
        assert part.lower_bound_ == pytest.approx(whole.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_integer_sample_weights_equal_repeated_rows(covariance_type):
    X, _, _ = make_blobs(1, n_per=60, d=2)
    w = np.random.default_rng(0).integers(0, 4, len(X))
    kw = init_kwargs(X, 3, covariance_type) | dict(dtype="float64", max_iter=15, tol=0.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        weighted = GaussianMixture(**kw).fit(X, sample_weight=w)
        repeated = GaussianMixture(**kw).fit(np.repeat(X, w, axis=0))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(weighted, name), getattr(repeated, name), rtol=1e-9)
    assert weighted.lower_bound_ == pytest.approx(repeated.lower_bound_, rel=1e-10)


def test_npy_file_with_sample_weights_streams_to_the_weighted_fit(tmp_path):
    """An array of weights beside a .npy file (it has no weight column): was refused;
    the chunks now carry their rows' weights, in every part the engine cuts."""
    X, _, _ = make_blobs(3, n_per=300, d=3)
    w = np.random.default_rng(1).integers(0, 4, len(X)).astype(float)
    path = tmp_path / "x.npy"
    np.save(path, X)
    kw = dict(n_components=3, random_state=0, dtype="float64", chunk_size=128)
    from_file = GaussianMixture(**kw).fit(path, sample_weight=w)
    in_memory = GaussianMixture(**kw).fit(X, sample_weight=w)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(from_file, name), getattr(in_memory, name), rtol=1e-10, atol=1e-12)
    assert from_file.bic(path) == pytest.approx(in_memory.bic(X), rel=1e-12)
    with pytest.raises(ValueError, match="sample_weight"):
        GaussianMixture(**kw).fit(path, sample_weight=w[:-1])


def test_npy_file_streams_to_the_same_fit(tmp_path):
    X, _, _ = make_blobs(2, n_per=400, d=4)
    path = tmp_path / "x.npy"
    np.save(path, X.astype(np.float32))
    kw = dict(n_components=3, random_state=0, chunk_size=100)
    from_file = GaussianMixture(**kw).fit(path)
    in_memory = GaussianMixture(**kw).fit(X.astype(np.float32))
    np.testing.assert_array_equal(from_file.means_, in_memory.means_)
    np.testing.assert_array_equal(from_file.predict(str(path)), in_memory.predict(X.astype(np.float32)))
    np.testing.assert_allclose(from_file.score_samples(path), in_memory.score_samples(X.astype(np.float32)))


def test_tensor_dataframe_and_array_inputs_agree():
    X, _, _ = make_blobs(3, n_per=100, d=3)
    kw = dict(n_components=3, random_state=0, dtype="float64")
    a = GaussianMixture(**kw).fit(X)
    b = GaussianMixture(**kw).fit(torch.from_numpy(X))
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    c = GaussianMixture(**kw).fit(frame)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.means_, c.means_)
    assert list(c.feature_names_in_) == ["a", "b", "c"]
    assert not hasattr(a, "feature_names_in_")
    np.testing.assert_array_equal(c.predict(frame), a.predict(X))


def test_torch_dtype_and_list_input_accepted():
    X, _, _ = make_blobs(3, n_per=50, d=2)
    gm = GaussianMixture(3, dtype=torch.float64, random_state=0).fit(X.tolist())
    assert gm.means_.shape == (3, 2)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_recovers_known_generating_parameters(seed, covariance_type):
    rng = np.random.default_rng(seed)
    k, d, n = 4, 3, 20000
    means = rng.normal(0, 8, (k, d))
    stds = rng.uniform(0.5, 1.5, (k, d))
    weights = rng.dirichlet(np.full(k, 5.0))
    labels = rng.choice(k, n, p=weights)
    X = means[labels] + stds[labels] * rng.normal(size=(n, d))
    gm = GaussianMixture(k, covariance_type=covariance_type, random_state=seed, n_init=2).fit(X)
    order = [int(np.argmin(np.linalg.norm(gm.means_ - m, axis=1))) for m in means]
    assert sorted(order) == list(range(k))
    np.testing.assert_allclose(gm.means_[order], means, atol=0.1)
    np.testing.assert_allclose(gm.weights_[order], weights, atol=0.02)
    var = gm.covariances_[order] if covariance_type == "diag" else np.diagonal(gm.covariances_[order], axis1=1, axis2=2)
    np.testing.assert_allclose(np.sqrt(var), stds, rtol=0.1)
    assert (gm.predict(X) == np.asarray(order)[labels]).mean() > 0.97


def test_float32_and_float64_fits_agree():
    X, _, _ = make_blobs(4, n_per=500, d=5, offset=1000.0)
    kw = init_kwargs(X, 3, "full") | dict(max_iter=50)
    a, b = _fit(X, **kw, dtype="float32"), _fit(X, **kw, dtype="float64")
    np.testing.assert_allclose(a.means_, b.means_, rtol=1e-5)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=1e-3, atol=1e-4)


def test_fit_predict_and_sample():
    X, _, _ = make_blobs(5, n_per=200, d=2)
    gm = GaussianMixture(3, random_state=0)
    labels = gm.fit_predict(X)
    np.testing.assert_array_equal(labels, gm.predict(X))
    xs, ys = gm.sample(3000)
    assert xs.shape == (3000, 2) and ys.shape == (3000,)
    np.testing.assert_allclose(np.bincount(ys, minlength=3) / 3000, gm.weights_, atol=0.03)
    for j in range(3):
        np.testing.assert_allclose(xs[ys == j].mean(0), gm.means_[j], atol=0.15)
    xs2, _ = gm.sample(3000)
    np.testing.assert_array_equal(xs, xs2)  # random_state fixes the draw, as in scikit-learn


def test_params_round_trip_and_repr():
    gm = GaussianMixture(4, covariance_type="diag", dtype="float64")
    assert gm.get_params()["n_components"] == 4
    assert repr(gm) == "GaussianMixture(covariance_type='diag', dtype='float64', n_components=4)"
    gm.set_params(n_components=2)
    assert gm.n_components == 2
    with pytest.raises(ValueError, match="Invalid parameter 'n_component'"):
        gm.set_params(n_component=3)


def test_import_is_light():
    import subprocess
    import sys

    code = "import bigem, sys; print(sorted(m for m in ('torch', 'sklearn', 'matplotlib', 'pandas') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
    assert bigem.__version__


def test_every_constructor_parameter_is_documented_and_validated():
    import dataclasses
    import inspect

    names = [n for n in inspect.signature(GaussianMixture).parameters]
    for name in names:
        assert f"{name} :" in GaussianMixture.__doc__, name
    # every parameter reaches the validated settings or the initial parameters
    used = {f.name for f in dataclasses.fields(GaussianMixture()._settings())} | {"weights_init", "means_init", "precisions_init", "random_state", "warm_start"}
    assert set(names) <= used


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1e-20, 1e-50, 1e37])
def test_weights_of_any_magnitude_give_the_unweighted_fit(dtype, scale):
    """Only relative weights matter to the fit: an absolute 10 eps floor on the counts,
    and float32 weights, had made 1e-20 weights fit worse (-2211 against -4.83), 1e-50
    raise a raw RuntimeError and 1e37 an 'ill-defined covariance' error."""
    X, _, _ = make_blobs(0, n_per=200, k=3, d=2)
    plain = GaussianMixture(3, random_state=0, dtype=dtype).fit(X, sample_weight=np.ones(len(X)))  # same init path
    scaled = GaussianMixture(3, random_state=0, dtype=dtype).fit(X, sample_weight=np.full(len(X), scale))
    assert scaled.lower_bound_ == pytest.approx(plain.lower_bound_, rel=1e-9)
    np.testing.assert_allclose(scaled.means_, plain.means_, rtol=1e-6, atol=1e-9)
