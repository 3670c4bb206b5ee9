"""The same fits on a CUDA device as on the CPU. Skipped where no GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem import GaussianMixture
from tests.conftest import COV_TYPES, init_kwargs, make_blobs

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning"),  # fixed iteration counts
]


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


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_cuda_float32_fit_equals_cpu_float32_fit(covariance_type):
    X, _, _ = make_blobs(2, n_per=3000, d=5)
    kw = init_kwargs(X, 3, covariance_type) | dict(max_iter=20, tol=0.0)
    cpu = GaussianMixture(**kw).fit(X)
    gpu = GaussianMixture(**kw, device="cuda").fit(X)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(gpu.covariances_, cpu.covariances_, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(gpu.lower_bound_, cpu.lower_bound_, rtol=1e-5)


def test_cuda_streams_files_and_writes_predictions(tmp_path):
    X, _, _ = make_blobs(3, n_per=5000, d=4)
    np.save(tmp_path / "x.npy", X)
    kw = init_kwargs(X, 3, "diag") | dict(dtype="float64", max_iter=10, tol=0.0, device="cuda")
    memory = GaussianMixture(**kw).fit(X)
    streamed = GaussianMixture(**kw, chunk_size=1000).fit(str(tmp_path / "x.npy"))
    np.testing.assert_allclose(streamed.means_, memory.means_, rtol=1e-9)
    out = streamed.predict_proba(str(tmp_path / "x.npy"), out=str(tmp_path / "p.npy"))
    np.testing.assert_allclose(np.load(out), memory.predict_proba(X), rtol=1e-7, atol=1e-12)


def test_cuda_weights_online_sampling_and_save_load(tmp_path):
    X, _, _ = make_blobs(4, n_per=4000, d=3)
    w = np.random.default_rng(0).uniform(0.5, 2.0, len(X))
    kw = init_kwargs(X, 3, "full") | dict(dtype="float64", max_iter=10, tol=0.0)
    cpu = GaussianMixture(**kw).fit(X, sample_weight=w)
    gpu = GaussianMixture(**kw, device="cuda").fit(X, sample_weight=w)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-9)
    online = GaussianMixture(3, device="cuda", algorithm="online", batch_size=1000, random_state=0).fit(X)
    assert np.isfinite(online.means_).all() and online.score(X) > cpu.score(X) - 0.05
    drawn, labels = gpu.sample(500)
    assert drawn.shape == (500, 3) and labels.shape == (500,)
    gpu.save(tmp_path / "m.bigem")
    from bigem import load

    back = load(tmp_path / "m.bigem")
    np.testing.assert_allclose(back.score_samples(X), gpu.score_samples(X), rtol=1e-9)


@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_cuda_squarem_takes_the_cpu_steps(covariance_type, tmp_path):
    """SQUAREM touches parameters only: on the GPU it makes the CPU's accept/reject
    decisions and lands on the same optimum; a checkpoint written there resumes."""
    X, _, _ = make_blobs(2, n_per=400, d=3, sep=1.5)
    kw = dict(n_components=3, covariance_type=covariance_type, dtype="float64", max_iter=200, tol=1e-10,
              random_state=0, accelerate="squarem")
    cpu = GaussianMixture(**kw).fit(X)
    gpu = GaussianMixture(**kw, device="cuda")

    class Stop(Exception):
        pass

    def interrupt(info):
        if info.iteration == 13:
            raise Stop

    with pytest.raises(Stop):
        gpu.fit(X, checkpoint=tmp_path / "fit.ckpt", checkpoint_every=5, callback=interrupt)
    gpu.fit(X, checkpoint=tmp_path / "fit.ckpt", checkpoint_every=5)  # resumed from iteration 10
    assert gpu.history_[0]["accepted"] == cpu.history_[0]["accepted"]
    assert gpu.lower_bound_ == pytest.approx(cpu.lower_bound_, rel=1e-10)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-7, atol=1e-9)
