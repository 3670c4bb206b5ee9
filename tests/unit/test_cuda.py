"""The same fits on a CUDA device as on the CPU. Skipped where no GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem import GaussianMixture
from tests.conftest import COV_TYPES, init_kwargs, make_blobs

pytestmark = [pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_cuda_fit_equals_cpu_fit_in_float64(covariance_type):
    X, _, _ = make_blobs(0, n_per=500, d=4)
    kw = init_kwargs(X, 3, covariance_type) | dict(dtype="float64", max_iter=30, tol=1e-10)
    cpu = GaussianMixture(**kw).fit(X)
    gpu = GaussianMixture(**kw, device="cuda").fit(X)
    assert gpu.n_iter_ == cpu.n_iter_
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=1e-9)


def test_cuda_tensor_input_and_default_init():
    X, _, _ = make_blobs(1, n_per=2000, d=3)
    gm = GaussianMixture(3, device="cuda", random_state=0).fit(torch.from_numpy(X).cuda())
    assert gm.converged_ and np.isfinite(gm.means_).all()
    labels = gm.predict(torch.from_numpy(X).cuda())
    assert labels.shape == (len(X),)
    cpu = GaussianMixture(3, random_state=0).fit(X)
    np.testing.assert_allclose(np.sort(gm.means_, axis=0), np.sort(cpu.means_, axis=0), atol=1e-3)
