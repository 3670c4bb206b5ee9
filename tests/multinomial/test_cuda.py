"""The multinomial mixture on a CUDA device (torch's sparse CSR products, cuSPARSE) fits
as on the CPU (scipy's kernels). Skipped where no GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from bigem import MultinomialMixture
from bigem._core.sparse import SparseRows
from bigem.models.multinomial import log_coefficients

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning"),  # fixed iteration counts
]


def _start(V: int, K: int = 3):
    return dict(weights_init=np.full(K, 1 / K), probabilities_init=np.random.default_rng(3).dirichlet(np.ones(V), K))


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 1e-4)])
def test_cuda_fit_equals_cpu_fit(documents, dtype, rtol):
    X = sp.csr_matrix(documents[0])
    kw = dict(n_components=3, dtype=dtype, max_iter=15, tol=0.0, **_start(X.shape[1]))
    cpu = MultinomialMixture(**kw).fit(X)
    gpu = MultinomialMixture(**kw, device="cuda").fit(X)
    np.testing.assert_allclose(gpu.history_[0]["log_likelihood"], cpu.history_[0]["log_likelihood"], rtol=rtol)
    np.testing.assert_allclose(gpu.probabilities_, cpu.probabilities_, rtol=100 * rtol, atol=1e-9)
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=rtol)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))


def test_a_streamed_npz_fits_on_cuda_as_in_memory(tmp_path, documents):
    X = sp.csr_matrix(documents[0])
    path = str(tmp_path / "docs.npz")
    sp.save_npz(path, X, compressed=False)
    kw = dict(n_components=3, dtype="float64", max_iter=10, tol=0.0, device="cuda", chunk_size=97,
              cache_budget=0, **_start(X.shape[1]))
    np.testing.assert_allclose(MultinomialMixture(**kw).fit(path).probabilities_,
                               MultinomialMixture(**kw).fit(X).probabilities_, rtol=1e-9)


def test_default_initialisation_online_em_and_sampling_on_cuda(documents):
    X = sp.csr_matrix(documents[0])
    est = MultinomialMixture(3, device="cuda", random_state=0).fit(X)
    cpu = MultinomialMixture(3, random_state=0).fit(X)
    assert abs(est.score(X) - cpu.score(X)) < 1e-3 * abs(cpu.score(X))
    online = MultinomialMixture(3, device="cuda", algorithm="online", batch_size=100, random_state=0).fit(X)
    assert np.isfinite(online.score(X))
    docs, labels = est.sample(20)
    assert docs.shape == (20, X.shape[1]) and labels.shape == (20,)


def test_log_multinomial_coefficients_on_cuda_equal_the_cpus():
    counts = np.array([[0, 1, 5000, 3], [2, 0, 0, 0], [0, 0, 0, 0], [7, 7, 1, 4095]], dtype=np.float64)
    rows = SparseRows.from_dense(torch.from_numpy(counts))
    cpu = log_coefficients(rows)
    gpu = log_coefficients(rows.to("cuda", torch.float64)).cpu()
    np.testing.assert_allclose(gpu, cpu, rtol=1e-12)


def test_semi_supervised_fit_on_cuda_equals_the_cpu_fit(documents):
    """Labels ride on the chunks to the device; the start from the labelled rows and the
    fixed responsibilities are the CPU's."""
    X, z = sp.csr_matrix(documents[0]), documents[1]
    y = np.where(np.random.default_rng(0).random(len(z)) < 0.1, z, -1)
    kw = dict(n_components=3, unlabeled_weight=0.3, dtype="float64", max_iter=15, tol=0.0, random_state=0)
    cpu = MultinomialMixture(**kw).fit(X, y)
    gpu = MultinomialMixture(**kw, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.probabilities_, cpu.probabilities_, rtol=1e-7, atol=1e-12)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))
