"""Shared fixtures: seeded data with known generating parameters."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch


def pytest_collection_modifyitems(config, items):
    """Under `make test-deferred` (the GPU's strategy forced, see tests/deferred), skip
    the tests of what only the CPU's strategy gives."""
    if not os.environ.get("BIGEM_TEST_DEFERRED"):
        return
    skip = pytest.mark.skip(reason="asserts the CPU's strategy; this run takes the GPU's (make test-deferred)")
    for item in items:
        if item.get_closest_marker("cpu_strategy"):
            item.add_marker(skip)

COV_TYPES = ("full", "tied", "diag", "spherical")


def make_blobs(seed: int, n_per: int = 200, k: int = 3, d: int = 3, sep: float = 6.0, offset: float = 0.0):
    """Rows from k well-separated Gaussians; returns X and the true (weights, means, stds)."""
    rng = np.random.default_rng(seed)
    means = rng.normal(0, sep, (k, d)) + offset
    stds = rng.uniform(0.5, 1.5, (k, d))
    X = np.concatenate([rng.normal(means[i], stds[i], (n_per, d)) for i in range(k)])
    return X[rng.permutation(len(X))], means, stds


def init_kwargs(X: np.ndarray, k: int, covariance_type: str, seed: int = 0) -> dict:
    """Explicit identical initial parameters for bigem and scikit-learn."""
    rng = np.random.default_rng(seed)
    d = X.shape[1]
    prec = {
        "full": np.stack([np.eye(d) * 0.5] * k),
        "tied": np.eye(d) * 0.5,
        "diag": np.full((k, d), 0.5),
        "spherical": np.full(k, 0.5),
    }[covariance_type]
    return dict(
        n_components=k,
        covariance_type=covariance_type,
        weights_init=np.full(k, 1.0 / k),
        means_init=X[rng.choice(len(X), k, replace=False)],
        precisions_init=prec,
    )


@pytest.fixture
def blobs():
    return make_blobs(0)


@pytest.fixture(autouse=True)
def _torch_threads():
    torch.manual_seed(0)
    yield


def mixture_stats(stats) -> dict:
    """A Gaussian mixture's E-step statistics by name: the weights' counts, the moments,
    the log-likelihood and weight totals, and the re-seeding candidates."""
    c = stats.component
    return {"resp_sum": c.n_k, "sum_x": c.sum_x, "sum_xx": c.sum_xx, "loglik": stats.loglik,
            "weight_sum": stats.weight, "worst_ll": stats.worst.values, "worst_x": stats.worst.rows}


class Interrupted(Exception):
    """What :func:`interrupt_at`'s callback raises: a fit cut short, to be resumed."""


def interrupt_at(iteration: int):
    """A fit callback that stops the fit after ``iteration`` (raising :class:`Interrupted`)."""
    def interrupt(info):
        if info.iteration == iteration:
            raise Interrupted

    return interrupt
