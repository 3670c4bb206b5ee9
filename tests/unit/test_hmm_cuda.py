"""Hidden Markov models on a CUDA device give the CPU's answers. Skipped where no GPU is present."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from bigem import CategoricalHMM, GaussianHMM

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning"),  # fixed iteration counts
]


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_cuda_gaussian_hmm_equals_cpu_in_float64(covariance_type):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(m, 1.0, (300, 2)) for m in (0.0, 5.0, -5.0)] * 4)
    lengths = [1200, 1, 1000, 1399]  # the 1399 is cut into segments on both devices
    cov = np.ones((3, 2)) if covariance_type == "diag" else np.tile(np.eye(2), (3, 1, 1))
    fits = []
    for device in ("cpu", "cuda"):
        m = GaussianHMM(3, covariance_type=covariance_type, init_params="", n_iter=5, tol=0.0, dtype="float64", device=device)
        m.startprob_, m.transmat_ = np.full(3, 1 / 3), np.full((3, 3), 0.1) + np.eye(3) * 0.7
        m.means_, m.covars_ = np.array([[0.5, 0.5], [4.0, 4.0], [-4.0, -4.0]]), cov
        fits.append(m.fit(X, lengths))
    cpu, gpu = fits
    np.testing.assert_allclose(gpu.monitor_.history, cpu.monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(gpu.means_, cpu.means_, rtol=1e-9)
    np.testing.assert_allclose(gpu.transmat_, cpu.transmat_, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(gpu.predict(X, lengths), cpu.predict(X, lengths))


def test_cuda_categorical_hmm_runs():
    X = np.random.default_rng(1).integers(0, 3, (2000, 1))
    m = CategoricalHMM(2, n_iter=5, random_state=0, device="cuda").fit(X, [1000, 1000])
    assert np.isfinite(m.emissionprob_).all()
    np.testing.assert_allclose(m.transmat_.sum(1), 1.0)


def test_cuda_poisson_and_gmm_hmm_equal_cpu_in_float64():
    from bigem import GMMHMM, PoissonHMM

    rng = np.random.default_rng(2)
    counts = np.concatenate([rng.poisson(lam, (400, 2)) for lam in (1.0, 8.0, 3.0)] * 3)
    X = np.concatenate([rng.normal(m, 1.0, (400, 2)) for m in (0.0, 4.0)] * 3)
    fits = {}
    for device in ("cpu", "cuda"):
        p = PoissonHMM(3, n_iter=5, tol=0.0, random_state=0, dtype="float64", device=device).fit(counts, [1200, 2400])
        g = GMMHMM(2, n_mix=2, n_iter=5, tol=0.0, random_state=0, dtype="float64", device=device).fit(X, [1000, 1400])
        fits[device] = (p, g)
    for cpu, gpu in zip(fits["cpu"], fits["cuda"]):
        np.testing.assert_allclose(gpu.monitor_.history, cpu.monitor_.history, rtol=1e-9)
        np.testing.assert_allclose(gpu.transmat_, cpu.transmat_, rtol=1e-8, atol=1e-12)
    np.testing.assert_array_equal(fits["cuda"][0].decode(counts, [1200, 2400])[1], fits["cpu"][0].decode(counts, [1200, 2400])[1])


def test_cuda_long_sequence_viterbi_and_sampling():
    m = GaussianHMM(3, n_iter=3, random_state=0, device="cuda")
    X = np.random.default_rng(3).normal(0, 1, (200_000, 2)) + np.repeat(np.arange(200) % 3, 1000)[:, None] * 4
    m.fit(X)
    logprob, path = m.decode(X)
    assert np.isfinite(logprob) and path.shape == (200_000,)
    drawn, states = m.sample(1000, random_state=0)
    assert drawn.shape == (1000, 2) and states.shape == (1000,)


def test_cuda_multinomial_hmm_equals_cpu_in_float64():
    from bigem import MultinomialHMM

    rng = np.random.default_rng(3)
    X = np.concatenate([rng.multinomial(6, p, 500) for p in ([0.7, 0.2, 0.1], [0.1, 0.3, 0.6])] * 2)
    fits = [MultinomialHMM(2, n_trials=6, n_iter=5, tol=-np.inf, random_state=0, dtype="float64", device=device)
            .fit(X, [700, 1300]) for device in ("cpu", "cuda")]
    np.testing.assert_allclose(fits[1].monitor_.history, fits[0].monitor_.history, rtol=1e-10)
    np.testing.assert_allclose(fits[1].emissionprob_, fits[0].emissionprob_, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("params", ["stmc", "stm"])
def test_cuda_mends_a_collapsed_state_as_the_cpu_does(params):
    """9 rows with constant features: min_covar mends the collapsed covariances on both
    devices (and a fit that keeps the covariances checks them on the device too)."""
    rng = np.random.default_rng(0)
    X = np.c_[rng.normal(size=(9, 1)), np.ones((9, 1)), np.zeros((9, 1))]
    fits = []
    for device in ("cpu", "cuda"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fits.append(GaussianHMM(3, covariance_type="full", params=params, random_state=0, dtype="float64",
                                    device=device).fit(X))
    np.testing.assert_allclose(fits[1].covars_, fits[0].covars_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(fits[1].monitor_.history, fits[0].monitor_.history, rtol=1e-8)


def test_cuda_pieces_of_a_long_sequence_equal_the_cpu_and_the_whole_sequence():
    """A sequence longer than a batch, cut into linked pieces on the GPU (fit, score,
    Viterbi): the CPU's pieces and the GPU's whole sequence to rounding."""
    rng = np.random.default_rng(3)
    X = np.concatenate([rng.normal(m, 1.0, (400, 2)) for m in (0.0, 4.0, -3.0)] * 5)
    lengths = [5000, 1000]
    fits = {}
    for device, budget in (("cpu", 150_000), ("cuda", 150_000), ("cuda", None)):
        m = GaussianHMM(3, n_iter=5, tol=0.0, random_state=0, dtype="float64", device=device, memory_budget=budget)
        fits[device, budget] = m.fit(X, lengths)
    cpu, gpu, whole = fits["cpu", 150_000], fits["cuda", 150_000], fits["cuda", None]
    for other in (cpu, whole):
        np.testing.assert_allclose(gpu.monitor_.history, other.monitor_.history, rtol=1e-10)
        np.testing.assert_allclose(gpu.transmat_, other.transmat_, rtol=1e-8, atol=1e-12)
        assert gpu.score(X, lengths) == pytest.approx(other.score(X, lengths), rel=1e-10)
        np.testing.assert_array_equal(gpu.predict(X, lengths), other.predict(X, lengths))
