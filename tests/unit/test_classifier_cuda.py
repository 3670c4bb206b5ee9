"""MixtureClassifier on a CUDA device equals the CPU fit (EDDA and MclustDA, arrays and a
tensor already on the device). Skipped where no GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bigem import MixtureClassifier

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = np.r_[rng.normal(size=(300, 3)), rng.normal(size=(200, 3)) * [2, 1, 0.5] + 1.5,
              rng.normal(size=(150, 3)) + [0, 3, 0]]
    return X, np.repeat(["a", "b", "c"], [300, 200, 150])


@pytest.mark.parametrize("model, grid", [("EDDA", {}), ("MclustDA", {"n_components": [1, 2]})])
def test_cuda_fit_equals_cpu(model, grid):
    X, y = _data()
    common = dict(covariance_types=["VVV", "EEE", "VVI"], dtype="float64", random_state=0, **grid)
    cpu = MixtureClassifier(model, **common).fit(X, y)
    gpu = MixtureClassifier(model, device="cuda", **common).fit(X, y)
    assert gpu.covariance_types_ == cpu.covariance_types_ and gpu.n_components_ == cpu.n_components_
    assert gpu.bic_ == pytest.approx(cpu.bic_, rel=1e-9)
    np.testing.assert_allclose(gpu.predict_proba(X), cpu.predict_proba(X), atol=1e-8)
    on_device = torch.as_tensor(X, device="cuda")
    np.testing.assert_allclose(gpu.predict_proba(on_device), cpu.predict_proba(X), atol=1e-8)
    assert gpu.score(on_device, y) == cpu.score(X, y)


def test_cuda_tensor_input_fits():
    X, y = _data(1)
    on_device = torch.as_tensor(X, device="cuda")
    clf = MixtureClassifier("MclustDA", n_components=[1, 2], covariance_types="VVV", device="cuda",
                            random_state=0).fit(on_device, y)
    ref = MixtureClassifier("MclustDA", n_components=[1, 2], covariance_types="VVV", random_state=0).fit(X, y)
    assert clf.n_components_ == ref.n_components_
    assert clf.score(X, y) == pytest.approx(ref.score(X, y), abs=0.01)
