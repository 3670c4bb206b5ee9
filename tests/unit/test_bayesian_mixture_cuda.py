"""BayesianGaussianMixture on a CUDA device gives the CPU's fit. Skipped without a GPU."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem import BayesianGaussianMixture
from tests.conftest import COV_TYPES, make_blobs

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning"),  # fixed iteration counts
]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_cuda_fit_equals_cpu_fit_in_float64(covariance_type):
    X, _, _ = make_blobs(0, n_per=500, d=4)
    kw = dict(n_components=5, covariance_type=covariance_type, dtype="float64", max_iter=30, tol=0.0,
              random_state=0, init_params="random_from_data")
    cpu = BayesianGaussianMixture(**kw).fit(X)
    gpu = BayesianGaussianMixture(**kw, device="cuda").fit(X)
    assert gpu.n_iter_ == cpu.n_iter_
    for name in ("weights_", "means_", "covariances_", "mean_precision_", "degrees_of_freedom_"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-9)


def test_cuda_float32_tensor_input():
    X, _, _ = make_blobs(1, n_per=2000, d=3)
    gpu = BayesianGaussianMixture(n_components=6, device="cuda", random_state=0, max_iter=300).fit(
        torch.from_numpy(X).cuda())
    cpu = BayesianGaussianMixture(n_components=6, random_state=0, max_iter=300, dtype="float64").fit(X)
    assert gpu.converged_ and int((gpu.weights_ > 0.01).sum()) == 3
    np.testing.assert_allclose(np.sort(gpu.weights_), np.sort(cpu.weights_), atol=1e-3)
