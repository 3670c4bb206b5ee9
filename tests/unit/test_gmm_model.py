"""The mixture math against closed forms (scipy) and its edge cases."""

from __future__ import annotations

import math
import warnings
from dataclasses import replace

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

from bigem import GaussianMixture
from bigem._core.errors import ComponentReseededWarning
from bigem._core.types import Chunk
from bigem.models.gaussian import gaussian_mixture as GaussianMixtureModel
from tests.conftest import COV_TYPES, mixture_stats


def random_params(model, rng, k, d):
    a = rng.normal(size=(k, d, d))
    full = torch.from_numpy(a @ a.transpose(0, 2, 1) + np.eye(d))
    cov = {"full": full, "tied": full[0], "diag": torch.diagonal(full, dim1=1, dim2=2).clone(), "spherical": full[:, 0, 0]}
    w = torch.from_numpy(rng.dirichlet(np.ones(k)))
    return model.make_params(w, torch.from_numpy(rng.normal(0, 3, (k, d))), cov[model.component.covariance_type])


def dense_cov(ct, cov, k, d):
    cov = np.asarray(cov)
    if ct == "full":
        return cov
    if ct == "tied":
        return np.stack([cov] * k)
    if ct == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([np.eye(d) * c for c in cov])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_log_joint_equals_scipy(covariance_type, dtype):
    rng = np.random.default_rng(0)
    k, d = 3, 4
    model = GaussianMixtureModel(k, covariance_type, 0.0, dtype)
    p = random_params(model, rng, k, d)
    x = rng.normal(0, 3, (50, d)) + 100.0
    p = model.make_params(p.weights, p.means + 100.0, p.covariances)
    got = model.log_joint(p, torch.from_numpy(x).to(dtype)).double().numpy()
    covs = dense_cov(covariance_type, p.covariances.numpy(), k, d)
    want = np.stack(
        [np.log(p.weights[j].item()) + multivariate_normal(p.means[j].numpy(), covs[j]).logpdf(x) for j in range(k)], 1
    )
    np.testing.assert_allclose(got, want, rtol=1e-10 if dtype == torch.float64 else 2e-5)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_m_step_of_one_hot_responsibilities_is_the_sample_moments(covariance_type):
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (300, 3)) + 7
    labels = rng.integers(0, 2, 300)
    model = GaussianMixtureModel(2, covariance_type, 0.0, torch.float64)
    p = random_params(model, rng, 2, 3)

    def given(chunk):
        return torch.nn.functional.one_hot(torch.from_numpy(labels[chunk.row_start : chunk.row_start + chunk.n_rows]), 2).double()

    stats = model.e_step_given(p, Chunk(torch.from_numpy(x), None, 0), given)
    new = model.m_step(stats).params
    for j in range(2):
        np.testing.assert_allclose(new.means[j].numpy(), x[labels == j].mean(0), rtol=1e-12)
    np.testing.assert_allclose(new.weights.numpy(), np.bincount(labels) / 300, rtol=1e-12)
    covs = [np.cov(x[labels == j].T, bias=True) for j in range(2)]
    want = {
        "full": np.stack(covs),
        "tied": sum(c * (labels == j).sum() for j, c in enumerate(covs)) / 300,
        "diag": np.stack([np.diag(c) for c in covs]),
        "spherical": np.array([np.diag(c).mean() for c in covs]),
    }[covariance_type]
    np.testing.assert_allclose(new.covariances.numpy(), want, rtol=1e-9)


def test_far_point_has_finite_responsibilities_and_log_likelihood():
    gm = GaussianMixture(
        2, weights_init=[0.5, 0.5], means_init=[[0.0], [5.0]], precisions_init=[[[1.0]], [[1.0]]], max_iter=1
    )
    X = np.r_[np.linspace(-2, 7, 50), [1e4]][:, None]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        gm.fit(X[:-1])
    proba = gm.predict_proba([[1e4]])
    assert np.all(np.isfinite(proba)) and proba.sum() == pytest.approx(1.0)
    assert proba[0, 1] == pytest.approx(1.0)  # the nearer component takes it
    assert np.isfinite(gm.score_samples([[1e4]])).all()


def test_textbook_formula_underflows_but_bigem_does_not():
    # exp(log_prob) underflows to 0 for both components at x = 1e4: 0/0 = NaN in the textbook version
    x, means = 1e4, np.array([0.0, 5.0])
    dens = np.exp(-0.5 * (x - means) ** 2) / math.sqrt(2 * math.pi)
    with np.errstate(invalid="ignore"):
        assert np.isnan(dens / dens.sum()).all()


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
def test_component_without_support_is_reseeded_not_nan(covariance_type):
    rng = np.random.default_rng(2)
    X = np.r_[rng.normal(0, 1, (200, 2)), rng.normal(8, 1, (5, 2))]
    d = 2
    prec = {"full": np.stack([np.eye(d)] * 3), "diag": np.ones((3, d)), "spherical": np.ones(3)}[covariance_type]
    gm = GaussianMixture(
        3,
        covariance_type=covariance_type,
        weights_init=[0.5, 0.49, 0.01],
        means_init=[[0, 0], [1, 1], [1e6, 1e6]],  # the third component explains nothing
        precisions_init=prec,
        dtype="float64",
        max_iter=30,
    )
    with pytest.warns(ComponentReseededWarning, match=r"components \[2\] lost their support"):
        gm.fit(X)
    assert np.all(np.isfinite(gm.means_)) and np.all(np.isfinite(gm.covariances_))
    # the re-seeded component moved to the poorly explained cluster near (8, 8)
    assert np.min(np.linalg.norm(gm.means_ - 8, axis=1)) < 1.0


def test_a_component_that_loses_its_support_again_after_a_reseed_is_kept_not_reseeded_in_a_cycle():
    """Three components on one cluster: the third explains nothing and is re-seeded once
    (marked); losing its support again, it is kept with its valid parameters at a weight
    of 10 eps (scikit-learn's floor), and the step is a plain one, so the fit can converge.
    The mark travels through a checkpoint's tensors."""
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.normal(0, 1, (400, 2)))
    model = GaussianMixtureModel(3, "full", 1e-6, torch.float64)
    far = model.make_params(torch.tensor([0.5, 0.49, 0.01], dtype=torch.float64),
                            torch.tensor([[0.0, 0.0], [0.5, 0.5], [1e6, 1e6]], dtype=torch.float64),
                            torch.eye(2, dtype=torch.float64).repeat(3, 1, 1))
    first = model.m_step(model.e_step(far, Chunk(x, None, 0)), far)
    assert not first.report.exact and ["lost their support" in n.text for n in first.report.notes] == [True]
    assert first.params.reseeded.tolist() == [False, False, True]
    again = replace(first.params, component=far.component)  # the third is far again
    second = model.m_step(model.e_step(again, Chunk(x, None, 0)), again)
    assert second.report.exact and second.report.smooth
    [note] = second.report.notes
    assert note.once and note.category is ComponentReseededWarning
    assert "components [2] lost their support again" in note.text
    assert float(second.params.weights[2]) < 1e-13 and second.params.reseeded.tolist() == [False, False, True]
    assert torch.isfinite(second.params.means).all()
    assert torch.linalg.eigvalsh(second.params.covariances[2]).min() > 0
    back = model.from_tensors(model.to_tensors(second.params))
    assert back.reseeded.tolist() == [False, False, True]
    assert model.from_tensors(model.to_tensors(far)).reseeded is None


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_a_component_narrower_than_rounding_is_reseeded_and_no_run_ends_on_a_reseed(dtype):
    """reg_covar=0, two lone outliers: components settle on them with the others'
    responsibilities (e^-700) as their only spread, covariances of 1e-294 that still have
    a Cholesky factor. They were kept (a log-density of +672 at the outlier in float64;
    in float32 the mean rounded off the row, which then scored -2621) and the fit said it
    had converged, on a re-seeding step in float32 (score -23.8 against a lower bound of
    0.83). Such a covariance is now re-seeded as a zero one is, once: the re-seeded
    component settles on an outlier again, and the fit then fails with scikit-learn's
    message (it had cycled, a re-seed every few iterations). A run that runs out of
    iterations on the re-seed returns the parameters it evaluated, whose likelihood is
    its lower bound, and has not converged."""
    import re

    from bigem.errors import ConvergenceWarning, NumericalError

    rng = np.random.default_rng(1)
    X = np.vstack([rng.normal(size=(200, 2)), [[50, 50]], [[-50, 50]]])
    kw = dict(reg_covar=0, init_params="random_from_data", random_state=0, dtype=dtype)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(NumericalError, match=r"^Fitting the mixture model failed because some components have "
                                                 r"ill-defined empirical covariance .*turned invalid again"):
            GaussianMixture(4, **kw).fit(X)
    reseeds = [str(w.message) for w in caught if issubclass(w.category, ComponentReseededWarning)]
    assert len(reseeds) >= 1
    first = int(re.search(r"at iteration (\d+)", reseeds[0]).group(1))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = GaussianMixture(4, max_iter=first, **kw).fit(X)  # ends on that re-seed
    kinds = {w.category for w in caught}
    assert ComponentReseededWarning in kinds
    assert gm.score(X) == pytest.approx(gm.lower_bound_, rel=1e-6, abs=1e-6)
    assert not gm.converged_ and any(issubclass(k, ConvergenceWarning) for k in kinds)


@pytest.mark.parametrize("n", [1, 255, 256, 1000, 70_001])
def test_float32_partial_sums_match_the_float64_product(n):
    """The diag moments' float32 partials, added in float64, equal the float64 product to
    float32 rounding of each input, whatever n is (whole runs, a tail, or only a tail)."""
    from bigem.models.gaussian import weighted_sums

    gen = torch.Generator().manual_seed(n)
    rw = torch.rand(5, n, generator=gen)
    feats = torch.randn(n, 9, generator=gen) * 3 + 10  # an offset: sums that do not cancel
    exact = rw.double() @ feats.double()
    got = weighted_sums(rw, feats)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), exact.numpy(), rtol=1e-6)  # a float32 product: 1e-5 at 7e4 rows
    assert torch.equal(weighted_sums(rw.double(), feats.double()), exact)


@pytest.mark.parametrize("n", [100, 40 * 1024 + 17, 1 << 19])
def test_float32_gram_partials_match_the_float64_product(n):
    """The full-covariance second moments: float32 Gram products over runs of rows, added
    in float64, equal the float64 product (one float32 product over a GPU-sized block
    does not: 6e-6 at 4e4 rows, 2e-5 at 5e5)."""
    from bigem.models.gaussian import gram_sums

    y = torch.randn(3, n, 4, generator=torch.Generator().manual_seed(n)) + 5
    exact = torch.bmm(y.double().transpose(1, 2), y.double())
    got = gram_sums(y)
    assert got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), exact.numpy(), rtol=1e-6)


def test_float32_diag_far_from_the_centre_stays_float32_and_close_to_float64():
    """Components 30 sd apart (each row's squares about 2000x its variance): the
    expanded form still runs in float32, and its fit matches the float64 fit to 1e-4."""
    rng = np.random.default_rng(0)
    centres = rng.normal(0, 30.0, (3, 8))
    X = (centres[rng.integers(0, 3, 50_000)] + rng.normal(0, 1, (50_000, 8))).astype(np.float32)
    kw = dict(n_components=3, covariance_type="diag", means_init=centres, weights_init=np.full(3, 1 / 3),
              precisions_init=np.ones((3, 8)), max_iter=5, tol=0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f64 = GaussianMixture(**kw, dtype="float64").fit(X)
        f32 = GaussianMixture(**kw, dtype="float32").fit(X)
    model = GaussianMixtureModel(3, "diag", 1e-6, torch.float32)
    params = model.make_params(torch.from_numpy(f32.weights_), torch.from_numpy(f32.means_), torch.from_numpy(f32.covariances_))
    assert model.component.kernel_dtype(params.component) == torch.float32
    np.testing.assert_allclose(f32.covariances_, f64.covariances_, rtol=1e-4)
    np.testing.assert_allclose(f32.means_, f64.means_, atol=1e-4)
    np.testing.assert_allclose(f32.lower_bound_, f64.lower_bound_, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_column_major_rows_give_the_same_statistics(covariance_type, dtype):
    """A file source's blocks arrive column-major (a transposed view): the E-step builds
    its features in that layout, and every statistic equals the row-major chunk's."""
    rng = np.random.default_rng(3)
    model = GaussianMixtureModel(4, covariance_type, 1e-6, dtype)
    params = random_params(model, rng, 4, 5)
    x = torch.from_numpy(rng.normal(0, 3, (30_001, 5))).to(dtype)
    cols = x.T.contiguous().T
    assert cols.stride() == (1, x.shape[0]) and torch.equal(cols, x)
    w = torch.from_numpy(rng.uniform(0, 2, x.shape[0])).to(dtype)
    for weight in (None, w):
        a = model.e_step(params, Chunk(x, weight, 0))
        b = model.e_step(params, Chunk(cols, weight, 0))
        tol = dict(rtol=1e-5, atol=1e-6) if dtype == torch.float32 else dict(rtol=1e-12, atol=1e-9)
        fa, fb = mixture_stats(a), mixture_stats(b)
        for name in ("resp_sum", "sum_x", "sum_xx", "loglik", "worst_ll", "worst_x"):
            torch.testing.assert_close(fb[name], fa[name], **tol)


def test_a_row_with_zero_density_everywhere_is_named_never_scored_or_labelled_silently():
    """score floored such a row, score_samples gave -inf, predict_proba NaN and predict
    label 0; all four now refuse it and name it."""
    X = np.random.default_rng(0).normal(size=(200, 1))
    gm = GaussianMixture(2, random_state=0).fit(X)
    Z = np.array([[0.0], [1e20]])
    for method in ("score_samples", "predict_proba", "predict", "score"):
        with pytest.raises(ValueError, match=r"^row 1 of X has zero density under every component in float32"):
            getattr(gm, method)(Z)
    assert np.isfinite(gm.score_samples(Z[:1])).all()


@pytest.mark.parametrize("covariance_type", COV_TYPES)
@pytest.mark.parametrize("where", ["array", "parquet", "dataframe"])
def test_float32_fits_data_far_from_the_origin_as_float64_does(covariance_type, where, tmp_path):
    """Data 1e7 from the origin with unit spread (timestamps, coordinates): cast to float32
    it kept no digit of the spread, and the fit reached -5.386 where float64 reached -4.890,
    with a LikelihoodDecreaseWarning. The rows now lose a shift in float64 before the cast."""
    import pandas as pd

    rng = np.random.default_rng(0)
    centres = rng.normal(0, 3, (3, 2))
    X = centres[rng.integers(0, 3, 3000)] + rng.normal(0, 1, (3000, 2)) + 1e7
    data = X
    if where != "array":
        data = pd.DataFrame(X, columns=["a", "b"])
        if where == "parquet":
            data.to_parquet(tmp_path / "x.parquet")
            data = str(tmp_path / "x.parquet")
    prec = {"full": np.stack([np.eye(2)] * 3), "tied": np.eye(2), "diag": np.ones((3, 2)), "spherical": np.ones(3)}
    kw = dict(n_components=3, covariance_type=covariance_type, means_init=centres + 1e7, weights_init=np.full(3, 1 / 3),
              precisions_init=prec[covariance_type], max_iter=20, tol=0.0)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        f64 = GaussianMixture(**kw, dtype="float64").fit(data)
        f32 = GaussianMixture(**kw, dtype="float32").fit(data)
    assert f32.lower_bound_ == pytest.approx(f64.lower_bound_, rel=1e-5)
    np.testing.assert_allclose(f32.means_, f64.means_, rtol=1e-12, atol=1e-3)
    assert f32.score(data) == pytest.approx(f64.score(data), rel=1e-5)
    np.testing.assert_array_equal(f32.predict(data), f64.predict(data))
