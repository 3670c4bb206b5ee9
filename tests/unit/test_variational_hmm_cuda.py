"""The variational HMMs on a CUDA device give the CPU's answers. Skipped where no GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem import VariationalCategoricalHMM, VariationalGaussianHMM

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _gaussian(covariance_type, device, dtype="float64"):
    m = VariationalGaussianHMM(3, covariance_type=covariance_type, init_params="", n_iter=5, tol=-np.inf, dtype=dtype,
                               device=device)
    K, D = 3, 2
    m.startprob_prior_, m.transmat_prior_ = np.full(K, 1 / K), np.full((K, K), 1 / K)
    m.startprob_posterior_, m.transmat_posterior_ = np.array([1.0, 1.5, 1.5]), np.full((K, K), 100.0) + 500 * np.eye(K)
    m.means_prior_, m.beta_prior_ = np.zeros((K, D)), np.ones(K)
    m.means_posterior_, m.beta_posterior_ = np.array([[0.5, 0.5], [4.0, 4.0], [-4.0, -4.0]]), np.full(K, 1000.0)
    tied = covariance_type == "tied"
    m.dof_prior_, m.dof_posterior_ = (2.0, 3000.0) if tied else (np.full(K, 2.0), np.full(K, 1000.0))
    unit = {"full": np.tile(np.eye(D), (K, 1, 1)), "tied": np.eye(D), "diag": np.ones((K, D)),
            "spherical": np.ones(K)}[covariance_type]
    m.scale_prior_, m.scale_posterior_ = 1e-3 * unit, 1000.0 * unit
    return m


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_cuda_variational_gaussian_hmm_equals_cpu_in_float64(covariance_type):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1.0, (300, 2)) for m in (0.0, 5.0, -5.0)] * 4)
    lengths = [1200, 1, 1000, 1399]  # the 1399 is cut into segments on both devices
    cpu = _gaussian(covariance_type, "cpu").fit(X, lengths)
    gpu = _gaussian(covariance_type, "cuda").fit(X, lengths)
    np.testing.assert_allclose(gpu.monitor_.history, cpu.monitor_.history, rtol=1e-10)
    for name in ("means_posterior_", "scale_posterior_", "dof_posterior_", "transmat_posterior_"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_array_equal(gpu.predict(X, lengths), cpu.predict(X, lengths))
    f32 = _gaussian(covariance_type, "cuda", "float32").fit(X, lengths)
    np.testing.assert_allclose(f32.monitor_.history, cpu.monitor_.history, rtol=1e-5)


def test_cuda_variational_categorical_hmm_equals_cpu():
    rng = np.random.default_rng(1)
    X = rng.integers(0, 4, (3000, 1))
    fits = [VariationalCategoricalHMM(3, n_iter=5, tol=-np.inf, random_state=0, device=d).fit(X, [1000, 2000])
            for d in ("cpu", "cuda")]
    np.testing.assert_allclose(fits[1].monitor_.history, fits[0].monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(fits[1].emissionprob_posterior_, fits[0].emissionprob_posterior_, rtol=1e-9)
