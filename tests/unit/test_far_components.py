"""float64 Gaussians whose components float64 cannot resolve about one centre (one
~1e8 standard deviations from the others, a 1e30 outlier, a cluster of spread 1e-7 of
its distance from the centre): the kernels take each component about its own mean,
and the answers are the closed form's."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal

import bigem
from bigem.errors import ComponentReseededWarning
from bigem.models.gaussian import GaussianComponent, GaussianParams

F64 = dict(dtype="float64", random_state=0)

# k-means finds two distinct clusters among three with a 1e30 row; tol=0 never converges
pytestmark = pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")


def _closed_form(gm, X):
    dens = [w * multivariate_normal(m, np.diag(c) if np.ndim(c) == 1 else c).pdf(X)
            for w, m, c in zip(gm.weights_, gm.means_, _full(gm))]
    return np.log(np.sum(dens, 0))


def _full(gm):
    c = np.asarray(gm.covariances_)
    if gm.covariance_type == "spherical":
        return [np.eye(gm.means_.shape[1]) * v for v in c]
    if gm.covariance_type == "tied":
        return [c] * len(gm.weights_)
    return list(c)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical"])
@pytest.mark.parametrize("far", [1e8, 1e12])
def test_log_densities_beside_a_far_component_are_the_closed_forms(covariance_type, far):
    D = 3
    means = np.array([np.zeros(D), np.full(D, far), np.full(D, far + 5.0)])
    cov = {"full": np.array([np.eye(D)] * 3), "diag": np.ones((3, D)), "spherical": np.ones(3)}[covariance_type]
    prec = {"full": cov, "diag": cov, "spherical": cov}[covariance_type]  # unit: its own inverse
    gm = bigem.GaussianMixture(3, covariance_type=covariance_type, weights_init=[0.5, 0.25, 0.25], means_init=means,
                               precisions_init=prec, max_iter=0, **F64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", bigem.errors.ConvergenceWarning)
        gm.fit(means)  # max_iter=0: the given parameters, as fitted
    X = np.r_[means, means + 0.3]
    # rows by the far components are the ones that lost their digits: 1.5 nats at 1e8 before
    np.testing.assert_allclose(gm.score_samples(X), np.log(np.exp(_closed_form(gm, X))), rtol=0, atol=1e-6)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_float64_keeps_its_digits_for_components_1e6_apart(covariance_type):
    """About their common centre the expanded form lost eps * 1e12 = 2e-4 nats a row
    (1e-4 of the covariances), which its old allowance of 1e-3 a row let through; a
    float64 model now allows 1e-9, and takes each component about its own mean beyond."""
    rng = np.random.default_rng(5)
    X = np.r_[rng.normal(size=(500, 2)), rng.normal(size=(500, 2)) + 1e6]
    gm = bigem.GaussianMixture(2, covariance_type=covariance_type, tol=1e-10, **F64).fit(X)
    np.testing.assert_allclose(gm.score_samples(X), _closed_form(gm, X), rtol=0, atol=1e-9)


@pytest.mark.parametrize("far", [1e8, 1e12])
@pytest.mark.parametrize("D", [2, 12])  # the expanded form, and tied's own form of many features
def test_a_tied_covariance_beside_a_far_component_is_the_pooled_within_scatter(far, D):
    """Summed about one centre, the scatter carried the components' squared distances
    from it and lost the covariance to their rounding: at 1e8 the fit's log-likelihood
    was -1e6 a row, with no warning."""
    rng = np.random.default_rng(3)
    mix = np.linalg.cholesky(np.eye(D) + 0.5)
    A, B = rng.normal(size=(1000, D)), rng.normal(size=(1000, D)) @ mix.T + far
    X = np.r_[A, B]
    A, B = X[:1000], X[1000:]  # as float64 holds them
    pooled = (np.cov(A.T, bias=True) + np.cov(B.T, bias=True)) / 2
    gm = bigem.GaussianMixture(2, covariance_type="tied", means_init=[A.mean(0), B.mean(0)], reg_covar=0.0,
                               tol=1e-10, **F64).fit(X)
    close = 1e-9 if far < 1e9 else 1e-5  # rows meet their mean in a difference: eps * 1e12 = 2e-4 a row
    np.testing.assert_allclose(gm.covariances_, pooled, rtol=close, atol=close)
    np.testing.assert_allclose(gm.means_[1] - far, B.mean(0) - far, atol=1e-9 * far)
    truth = np.log(gm.weights_[0] * multivariate_normal(gm.means_[0], gm.covariances_).pdf(X[:5]))
    np.testing.assert_allclose(gm.score_samples(X[:5]), truth, rtol=0, atol=1e-6)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "full"])
def test_a_1e30_outlier_costs_the_other_components_nothing(covariance_type):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(2000, 3))
    X[:1000] += 4
    X[0] = 1e30
    gm = bigem.GaussianMixture(3, covariance_type=covariance_type, max_iter=200, tol=1e-6, **F64).fit(X)
    history = gm.history_[0]["log_likelihood"]
    assert np.all(np.diff(history[1:]) >= -1e-9)
    bulk = np.argsort(gm.means_[:, 0])[:2]
    # the two clusters are the fit of the rows without the outlier
    alone = bigem.GaussianMixture(2, covariance_type=covariance_type, max_iter=200, tol=1e-6, **F64).fit(X[1:])
    order = np.argsort(alone.means_[:, 0])
    np.testing.assert_allclose(gm.means_[bulk], alone.means_[order], rtol=0, atol=1e-3)
    rows = X[1:]  # the reported likelihood is the closed form's at the fitted parameters
    np.testing.assert_allclose(gm.score_samples(rows), _closed_form(gm, rows), rtol=0, atol=1e-8)


def test_a_tight_cluster_keeps_its_variance_without_reg_covar():
    # sd 1e-7 at distance 3: about the centre its variance is below float64's rounding
    # (it was taken for a collapse and re-seeded ten times); about its own mean it is not
    rng = np.random.default_rng(9)
    tight = 3 + rng.normal(0, 1e-7, (200, 2))
    X = np.r_[rng.normal(0, 1, (500, 2)), tight]
    with warnings.catch_warnings():
        warnings.simplefilter("error", ComponentReseededWarning)
        gm = bigem.GaussianMixture(2, covariance_type="diag", weights_init=[0.5, 0.5], means_init=[[0, 0], [3, 3]],
                                   precisions_init=np.ones((2, 2)), max_iter=30, tol=0, reg_covar=0.0,
                                   **F64).fit(X)
    k = int(np.argmax(gm.means_[:, 0]))
    np.testing.assert_allclose(gm.weights_[k], 200 / 700, atol=1e-6)
    np.testing.assert_allclose(gm.covariances_[k], tight.var(0), rtol=0.05)


def test_a_collapsed_component_is_still_reseeded_once():
    """Once; the worst-explained rows it is re-seeded at are the repeated ones, so it
    collapses again, and the fit then fails with scikit-learn's message (it had cycled
    through a re-seed every few iterations, its lower bound falling at each)."""
    from bigem.errors import NumericalError

    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, (300, 2)), np.full((50, 2), 20.0)]
    with pytest.warns(ComponentReseededWarning) as warned, pytest.raises(
            NumericalError, match=r"ill-defined empirical covariance .*turned invalid again after being re-seeded"):
        bigem.GaussianMixture(2, covariance_type="diag", means_init=[[0, 0], [20, 20]], reg_covar=0.0, max_iter=20,
                              **F64).fit(X)
    assert len(warned) == 1


def test_the_diagonal_decrease_tolerance_is_not_the_spread_across_features():
    # variances 1e45 and 1e-6 side by side: their ratio is no rounding bound (it allowed a
    # fall of 6.6e39 nats, hiding a 59-nat fall); each feature's own resolution is
    component = GaussianComponent("diag", 1e-6, torch.float64)
    cov = torch.tensor([[1e45, 1e-6, 1.0], [1.0, 1.0, 1.0]], dtype=torch.float64)
    means = torch.tensor([[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]], dtype=torch.float64)
    params = GaussianParams(means, cov, cov.rsqrt())
    assert component.decrease_tolerance(params, torch.tensor([0.5, 0.5]), -10.0) < 1.0


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_rounding_of_clusters_far_apart_is_no_decrease(covariance_type):
    """Two unit clusters 1e7 apart, float64: the moments about the centre round to a fall
    of 4e-11 a row, which the full and tied structures' tolerance (the condition number
    alone) called "a bug in bigem"; the diagonal ones already counted the distance."""
    from bigem.errors import LikelihoodDecreaseWarning

    rng = np.random.default_rng(9)
    X = np.r_[rng.normal(0, 1, (1000, 2)), rng.normal(0, 1, (1000, 2)) + 1e7]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gm = bigem.GaussianMixture(2, covariance_type=covariance_type, random_state=0, dtype="float64").fit(X)
    assert not [w for w in caught if issubclass(w.category, LikelihoodDecreaseWarning)]
    np.testing.assert_allclose(np.sort(gm.means_[:, 0]), [0, 1e7], atol=0.1)


def test_float32_says_when_its_rows_cannot_hold_components_far_apart():
    """Two unit clusters 1e7 apart: one shift leaves the far one's rows rounded to a
    float32 spacing of up to 1, which inflated its variances by up to 9% silently
    (float64 and scikit-learn: 1.09 and 1.00; float32: 1.17 and 1.09). The fit now
    says so, and by how much; 1e4 apart, or in float64, it has nothing to say."""
    from bigem.errors import PrecisionWarning

    rng = np.random.default_rng(9)
    X = np.r_[rng.normal(0, 1, (1000, 2)), rng.normal(0, 1, (1000, 2)) + 1e7]
    with pytest.warns(PrecisionWarning, match=r"^float32 rows hold component \d's values in feature \d \(mean "
                                               r"1e\+07\) to a spacing of [\d.]+: rounding adds [\d.]+% to its "
                                               r"variance \([\d.]+\) and may move its mean by up to") as w:
        bigem.GaussianMixture(2, random_state=0).fit(X)
    assert "fit with dtype='float64'" in str(w[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bigem.GaussianMixture(2, random_state=0, dtype="float64").fit(X)
        near = np.r_[rng.normal(0, 1, (1000, 2)), rng.normal(0, 1, (1000, 2)) + 1e4] + 1e7
        for covariance_type in ("full", "tied", "diag", "spherical", "EII", "VEV"):
            bigem.GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(near)


def test_a_bayesian_mixture_in_float32_says_so_too_where_it_resolves_the_clusters():
    """BayesianGaussianMixture's default priors (the data's covariance) swamp unit
    clusters 1e7 apart; with a unit covariance prior and a flat mean prior it resolves
    them, and its float32 rows inflate the far one's variances as GaussianMixture's do."""
    from bigem.errors import PrecisionWarning

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + 1e7]
    kw = dict(n_components=2, random_state=0, covariance_prior=np.eye(2), mean_precision_prior=1e-20, dtype="float32")
    with pytest.warns(PrecisionWarning, match=r"^float32 rows hold component \d's values in feature \d") as w:
        bigem.BayesianGaussianMixture(**kw).fit(X)
    assert w[0].filename == __file__  # the caller's line
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bigem.BayesianGaussianMixture(**{**kw, "dtype": "float64"}).fit(X)


def test_a_bayesian_mixtures_data_prior_is_summed_in_float64_whatever_the_rows_dtype():
    """Clusters 1e7 apart along (1, 1): the data's covariance, every component's prior, is
    singular to 4e-14, and float32 sums made it indefinite: the float32 fit failed where
    scikit-learn's and the float64 fit succeed."""
    from sklearn.mixture import BayesianGaussianMixture as Reference

    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(size=(2000, 2)), rng.normal(size=(2000, 2)) + 1e7]
    ours = bigem.BayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    theirs = Reference(n_components=3, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(ours.weights_), np.sort(theirs.weights_), atol=1e-4)


def _bulk_and_two_outliers():
    rng = np.random.default_rng(0)
    return np.r_[rng.normal(size=(1000, 2)), rng.normal(size=(1000, 2)) + 3, [[2e6, -5e5], [2.1e6, -5.1e5]]]


def test_a_float32_mixture_scores_the_bulk_beside_a_far_outlier_component_as_float64_does():
    """A component that took two outliers 1e6 away moved the centre float64 rows lose
    before the float32 cast (the mean of the means) off the bulk, whose rows then lost
    their digits: predict_proba 0.026 from float64's. The centre is the means' weighted
    median now, which stays with the bulk (found by an audit, on an HMM's states)."""
    X = _bulk_and_two_outliers()
    gm = bigem.GaussianMixture(3, means_init=[[0, 0], [3, 3], [2e6, -5e5]], **F64).fit(X)
    assert gm.weights_[2] < 2e-3
    want, want_scores = gm.predict_proba(X[:2000]), gm.score_samples(X[:2000])
    gm.set_params(dtype="float32")
    np.testing.assert_allclose(gm.predict_proba(X[:2000]), want, atol=1e-5)
    np.testing.assert_allclose(gm.score_samples(X[:2000]), want_scores, atol=1e-4)


def test_a_float32_hmm_scores_the_bulk_beside_a_far_outlier_state_as_float64_does():
    """The same for an HMM's states, whose centre is their means' median weighted by each
    state's expected share of a long sequence (hmmlearn's float64 answer as the truth)."""
    hmmlearn = pytest.importorskip("hmmlearn.hmm")
    X = _bulk_and_two_outliers()[:2000]
    params = dict(startprob_=np.array([0.5, 0.5, 0.0]),
                  transmat_=np.array([[0.9, 0.0999, 1e-4], [0.0999, 0.9, 1e-4], [0.5, 0.5, 0.0]]),
                  means_=np.array([[0.0, 0.0], [1.0, 1.0], [2e6, -5e5]]),
                  covars_=np.array([[1.0, 1.0], [1.0, 1.0], [1e12, 2.5e11]]))
    ref = hmmlearn.GaussianHMM(3, covariance_type="diag", init_params="")
    ours = bigem.GaussianHMM(3, covariance_type="diag", init_params="", dtype="float32")
    for model in (ref, ours):
        model.n_features = 2
        for name, value in params.items():
            setattr(model, name, value)
    np.testing.assert_allclose(ours.predict_proba(X), ref.predict_proba(X), atol=1e-3)
    assert abs(ours.score(X) - ref.score(X)) < 0.1  # 2000 rows: 5e-5 a row (it was 1.07)
