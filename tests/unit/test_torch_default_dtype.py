"""torch's default dtype changes nothing: pomegranate's users run
``torch.set_default_dtype(torch.float64)``, and every fit, with gaps or without, must
give the answer it gives under torch's own float32 default (a tensor built without a
dtype took float64 there and met a float32 one: "addmv input tensors must have the same
dtype", in every full or tied fit with gaps)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import bigem

RNG = np.random.default_rng(0)
G = np.r_[RNG.normal(size=(150, 3)), RNG.normal(size=(150, 3)) + 3]
B = (G > 1).astype(float)
P = RNG.poisson(2.0, (300, 3)).astype(float)
C = RNG.integers(0, 3, (300, 3)).astype(float)
M = np.c_[G[:, :2], C[:, :1], P[:, :1], B[:, :1]]
MIXED = {0: "gaussian", 1: "gaussian", 2: "categorical", 3: "poisson", 4: "bernoulli"}

CASES = [(bigem.GaussianMixture, G, dict(covariance_type=c)) for c in ("full", "tied", "diag", "spherical")] + [
    (bigem.BernoulliMixture, B, {}), (bigem.PoissonMixture, P, {}), (bigem.CategoricalMixture, C, {}),
    (bigem.MixedMixture, M, dict(families=MIXED)), (bigem.MixedMixture, M, dict(families=MIXED, covariance_type="full")),
    (bigem.GaussianHMM, G, dict(covariance_type="full")), (bigem.GaussianHMM, G, dict(covariance_type="diag")),
]


def with_gaps(X: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(1)
    X = X.copy()
    hole = rng.random(X.shape) < 0.1
    hole[:, 0] &= ~hole[:, 1:].all(1)  # every row keeps a value
    X[hole] = np.nan
    return X


def fitted(cls, X, kw, missing):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = cls(2, random_state=0, dtype="float64", missing_values=missing, **kw).fit(X)
    return model.score(X), model.predict(X)


@pytest.fixture
def float64_default():
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(before)


@pytest.mark.parametrize("missing", ["error", "fiml"])
@pytest.mark.parametrize("cls, X, kw", CASES, ids=[f"{c.__name__}-{kw.get('covariance_type', '')}" for c, _, kw in CASES])
def test_a_float64_default_gives_the_same_fit(cls, X, kw, missing, float64_default):
    X = with_gaps(X) if missing == "fiml" else X
    got = fitted(cls, X, kw, missing)
    torch.set_default_dtype(torch.float32)
    want = fitted(cls, X, kw, missing)
    assert got[0] == pytest.approx(want[0], abs=1e-10)
    np.testing.assert_array_equal(got[1], want[1])
