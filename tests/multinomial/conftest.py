"""Bags of words with known generating parameters, and a brute-force reference EM."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import gammaln, logsumexp


def make_documents(seed: int = 0, n: int = 600, K: int = 3, V: int = 60, length: int = 40, concentration: float = 0.2):
    """n documents from K multinomials over V words (Poisson lengths around ``length``);
    returns the dense counts (int64), the labels, the weights and the word probabilities."""
    rng = np.random.default_rng(seed)
    theta = rng.dirichlet(np.full(V, concentration), size=K)
    weights = rng.dirichlet(np.full(K, 5.0))
    z = rng.choice(K, size=n, p=weights)
    sizes = rng.poisson(length, size=n)
    X = np.stack([rng.multinomial(sizes[i], theta[z[i]]) for i in range(n)]).astype(np.int64)
    return X, z, weights, theta


def reference_em(X: np.ndarray, weights: np.ndarray, theta: np.ndarray, alpha: float, n_iter: int,
                 sample_weight: np.ndarray | None = None) -> list[float]:
    """Mean log-likelihood entering each of ``n_iter`` EM iterations, dense float64,
    written from the model's definition: log p(x | k) = log N! - sum log x_j! + x . log theta_k."""
    X = X.astype(np.float64)
    w = np.ones(X.shape[0]) if sample_weight is None else np.asarray(sample_weight, dtype=np.float64)
    coef = gammaln(X.sum(1) + 1) - gammaln(X + 1).sum(1)
    history = []
    for _ in range(n_iter):
        joint = X @ np.log(theta).T + np.log(weights) + coef[:, None]
        norm = logsumexp(joint, axis=1)
        history.append(float(w @ norm / w.sum()))
        resp = np.exp(joint - norm[:, None]) * w[:, None]
        n_k = resp.sum(0)
        sums = resp.T @ X
        theta = (sums + alpha) / (sums.sum(1, keepdims=True) + X.shape[1] * alpha)
        weights = n_k / n_k.sum()
    return history


def aligned(estimated: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """The order of the estimated components that best matches the true ones (by
    cross-entropy), so that estimated[order[k]] is truth[k]."""
    from scipy.optimize import linear_sum_assignment

    cost = -(truth @ np.log(estimated).T)  # (K_true, K_est)
    _, order = linear_sum_assignment(cost)
    return order


@pytest.fixture(scope="module")
def documents():
    return make_documents()
