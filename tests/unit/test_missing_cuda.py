"""Missing values on a CUDA device give the CPU's answers. Skipped where no GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem import GaussianHMM, GaussianMixture, PoissonHMM
from tests.conftest import COV_TYPES, init_kwargs, make_blobs

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning"),  # fixed iteration counts
]


def gappy(seed: int, rate: float = 0.2) -> np.ndarray:
    X, _, _ = make_blobs(seed, n_per=600, d=5)
    rng = np.random.default_rng(seed)
    X[rng.random(X.shape) < rate] = np.nan
    X[3] = np.nan  # a row with nothing observed
    return X


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_cuda_fiml_fit_predict_and_impute_equal_the_cpu_in_float64(covariance_type):
    X = gappy(0)
    complete = X[~np.isnan(X).any(1)]
    kw = init_kwargs(complete, 3, covariance_type) | dict(dtype="float64", max_iter=15, tol=0.0, missing_values="fiml")
    with pytest.warns(UserWarning, match="every value missing"):
        cpu = GaussianMixture(**kw).fit(X)
    with pytest.warns(UserWarning, match="every value missing"):
        gpu = GaussianMixture(**kw, device="cuda").fit(X)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(gpu, name), getattr(cpu, name), rtol=1e-9, atol=1e-12, err_msg=name)
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=1e-9)
    np.testing.assert_allclose(gpu.impute(X), cpu.impute(X), rtol=1e-9, atol=1e-12)
    draws = gpu.impute(torch.from_numpy(X).cuda(), method="sample", random_state=4)
    np.testing.assert_allclose(draws, cpu.impute(X, method="sample", random_state=4), rtol=1e-9, atol=1e-12)


def test_cuda_fiml_float32_streams_a_file_like_the_cpu(tmp_path):
    X = gappy(1, rate=0.1)
    np.save(tmp_path / "x.npy", X)
    kw = init_kwargs(X[~np.isnan(X).any(1)], 3, "full") | dict(max_iter=10, tol=0.0, missing_values="fiml")
    with pytest.warns(UserWarning, match="every value missing"):
        cpu = GaussianMixture(**kw).fit(X)
    with pytest.warns(UserWarning, match="every value missing"):
        gpu = GaussianMixture(**kw, device="cuda", chunk_size=500, cache_budget=0).fit(str(tmp_path / "x.npy"))
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gpu.covariances_, cpu.covariances_, rtol=1e-3, atol=1e-5)


def test_cuda_hmms_with_gaps_equal_the_cpu():
    rng = np.random.default_rng(2)
    X = np.concatenate([rng.normal(m, 1.0, (200, 2)) for m in (0.0, 5.0, -5.0)] * 2)
    X[rng.random(X.shape) < 0.2] = np.nan
    X[10] = np.nan  # a time step with no observation
    lengths = [700, 500]
    counts = rng.poisson([2.0, 9.0], (1200, 2)).astype(float)
    counts[rng.random(counts.shape) < 0.2] = np.nan
    for make, data in ((lambda d: GaussianHMM(3, covariance_type="full", n_iter=5, tol=0.0, dtype="float64",
                                              missing_values="fiml", random_state=0, device=d), X),
                       (lambda d: PoissonHMM(2, n_iter=5, tol=0.0, dtype="float64", missing_values="fiml",
                                             random_state=0, device=d), counts)):
        cpu, gpu = make("cpu").fit(data, lengths), make("cuda").fit(data, lengths)
        np.testing.assert_allclose(gpu.transmat_, cpu.transmat_, rtol=1e-8, atol=1e-12)
        assert gpu.score(data, lengths) == pytest.approx(cpu.score(data, lengths), rel=1e-9)
        np.testing.assert_allclose(gpu.predict_proba(data, lengths), cpu.predict_proba(data, lengths), atol=1e-9)
