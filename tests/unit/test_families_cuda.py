"""The discrete and mixed-type mixtures on a CUDA device equal the CPU fits. Skipped
where no GPU is present."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from bigem import BernoulliMixture, CategoricalMixture, MixedMixture, PoissonMixture

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
    pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning"),  # fixed iteration counts
]


CDF = np.array([[0.7, 0.8, 0.9], [0.1, 0.2, 0.9], [0.1, 0.8, 0.85]])  # each class's categories, cumulated


def _data(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 3, n)
    return pd.DataFrame({
        "c": np.array(["a", "b", "c", "d"])[(rng.random(n)[:, None] > CDF[z]).sum(1)],
        "x": rng.normal(z, 1.0),
        "k": rng.poisson(1 + 2 * z),
        "f": (rng.random(n) < 0.2 + 0.3 * z).astype(float),
    }), z


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-9), ("float32", 1e-4)])
@pytest.mark.parametrize("make", [
    lambda df: (CategoricalMixture, df[["c"]], {}),
    lambda df: (BernoulliMixture, df[["f"]].to_numpy(), {}),
    lambda df: (PoissonMixture, df[["k"]], {}),
    lambda df: (MixedMixture, df, {"families": {"k": "poisson", "f": "bernoulli"}}),
], ids=["categorical", "bernoulli", "poisson", "mixed"])
def test_cuda_fit_equals_cpu_fit(make, dtype, rtol):
    df, z = _data()
    cls, X, extra = make(df)
    y = np.where(np.arange(len(z)) % 10 == 0, z, -1)
    kw = dict(n_components=3, random_state=0, dtype=dtype, max_iter=20, tol=0.0, unlabeled_weight=1.0, **extra)
    cpu = cls(**kw).fit(X, y)
    gpu = cls(**kw, device="cuda").fit(X, y)
    np.testing.assert_allclose(gpu.weights_, cpu.weights_, rtol=rtol, atol=1e-6)
    np.testing.assert_allclose(gpu.lower_bounds_, cpu.lower_bounds_, rtol=rtol)
    np.testing.assert_allclose(gpu.score_samples(X), cpu.score_samples(X), rtol=rtol, atol=1e-5)
    np.testing.assert_array_equal(gpu.predict(X), cpu.predict(X))
