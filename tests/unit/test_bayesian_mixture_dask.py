"""BayesianGaussianMixture on the Dask engine: its statistics are the Gaussian mixture's,
reduced across workers, so the fit equals the local one to rounding (weighted too)."""

from __future__ import annotations

import numpy as np
import pytest

dask = pytest.importorskip("dask")
da = pytest.importorskip("dask.array")
distributed = pytest.importorskip("distributed")

from bigem import BayesianGaussianMixture  # noqa: E402

from ..conftest import make_blobs  # noqa: E402

FITTED = ("weights_", "means_", "covariances_", "mean_precision_", "degrees_of_freedom_", "mean_prior_",
          "covariance_prior_")


@pytest.fixture(scope="module")
def client():
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0"
    ) as cluster, distributed.Client(cluster, set_as_default=False) as c:
        yield c


@pytest.mark.parametrize("covariance_type,prior_type", [("full", "dirichlet_process"),
                                                        ("diag", "dirichlet_distribution")])
def test_dask_fit_equals_local_fit(client, covariance_type, prior_type):
    X, _, _ = make_blobs(3, n_per=200, k=3, d=3)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    kw = dict(n_components=5, covariance_type=covariance_type, weight_concentration_prior_type=prior_type,
              random_state=0, dtype="float64", max_iter=200)
    local = BayesianGaussianMixture(**kw).fit(X, sample_weight=w)
    dist = BayesianGaussianMixture(**kw, client=client).fit(da.from_array(X, chunks=137),
                                                           sample_weight=da.from_array(w, chunks=137))
    assert dist.n_iter_ == local.n_iter_ and dist.converged_
    for name in FITTED:
        np.testing.assert_allclose(getattr(dist, name), getattr(local, name), rtol=1e-9, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(np.ravel(dist.weight_concentration_), np.ravel(local.weight_concentration_), rtol=1e-9)
    np.testing.assert_allclose(dist.lower_bounds_, local.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(dist.predict_proba(da.from_array(X, chunks=137)).compute(), local.predict_proba(X),
                               atol=1e-9)
