"""Missing values (#17): the E-step reads a chunk's rows by number of gaps, each row keeps
its own answers, and the per-pattern inverses are exact. References are brute force in
float64 (scipy), written here."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from bigem._core.types import Chunk
from bigem.models.gaps import any_set, empty_rows, pack
from bigem.models.gaussian import gaussian_mixture
from bigem.models.gaussian_gaps import _SWEEP_MAX, _inverse


def observed_log_likelihood(x, w, means, covs):
    """log sum_k w_k N(x_O | mu_k,O, Sigma_k,OO) of every row (0 where nothing is observed)."""
    out = np.zeros(len(x))
    for i, row in enumerate(x):
        o = ~np.isnan(row)
        if o.any():
            out[i] = logsumexp([np.log(w[k]) + multivariate_normal(means[k][o], covs[k][np.ix_(o, o)]).logpdf(row[o])
                                for k in range(len(w))])
    return out


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_rows_read_by_number_of_gaps_keep_their_own_log_likelihood(covariance_type, monkeypatch):
    """Outliers with 0, 1 and 3 gaps, far apart in the chunk, read in blocks of 16 rows
    by number of gaps: the E-step's worst-explained rows are theirs, with their values,
    and the total is the brute-force sum."""
    rng = np.random.default_rng(7)
    k, d = 3, 10  # the E-step keeps the k worst rows
    model = gaussian_mixture(k, covariance_type, 1e-6, torch.float64, gaps=True)
    a = rng.normal(size=(k, d, d))
    covs = a @ a.transpose(0, 2, 1) + np.eye(d)
    if covariance_type == "tied":
        covs = np.stack([covs[0]] * k)
    w, means = np.array([0.3, 0.3, 0.4]), rng.normal(0, 3, (k, d))
    p = model.make_params(torch.tensor(w), torch.tensor(means), torch.tensor(covs if covariance_type == "full" else covs[0]))
    x = means[rng.integers(0, k, 200)] + rng.normal(size=(200, d))
    gaps = rng.random(x.shape) < 0.2
    gaps[[3, 77, 150]] = False
    gaps[77, [1, 4, 8]] = True
    gaps[150, 2] = True
    x[gaps] = np.nan
    x[[3, 77, 150]] += 40.0  # the worst-explained rows, with 0, 3 and 1 gaps
    monkeypatch.setattr(model.component, "block_rows", lambda K, D, device: 16)
    stats = model.e_step(p, Chunk(torch.tensor(x), None, 0))
    truth = observed_log_likelihood(x, w, means, covs)
    assert float(stats.loglik) == pytest.approx(truth.sum(), rel=1e-12)
    got = sorted(stats.worst.values.tolist())[:3]
    np.testing.assert_allclose(got, np.sort(truth[[3, 77, 150]]), rtol=1e-10)
    rows = stats.worst.rows.numpy()
    for r in (3, 77, 150):
        assert any(np.array_equal(np.isnan(row), np.isnan(x[r])) and np.allclose(np.nan_to_num(row), np.nan_to_num(x[r]))
                   for row in rows)


@pytest.mark.parametrize("u", [1, 2, 3, _SWEEP_MAX, _SWEEP_MAX + 2])
def test_inverse_by_sweeps_and_by_cholesky_factors_is_exact(u):
    rng = np.random.default_rng(u)
    a = rng.normal(size=(3, 5, u, u))
    lam = a @ a.transpose(0, 1, 3, 2) + 0.1 * np.eye(u)
    inverse, log_det = _inverse(torch.tensor(lam))
    np.testing.assert_allclose(inverse.numpy(), np.linalg.inv(lam), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(log_det.numpy(), np.linalg.slogdet(lam)[1], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("d", [3, 16, 24, 30, 70])
def test_mask_helpers_agree_with_their_definitions(d):
    rng = np.random.default_rng(d)
    mask = torch.tensor(rng.random((500, d)) < 0.3)
    mask[:5] = True
    mask[5:9] = False
    codes, count = pack(mask, counts=True)
    assert torch.equal(count, mask.sum(1))
    if d <= 62:
        assert torch.equal(codes, (mask.long() << torch.arange(d)).sum(1)) and torch.equal(pack(mask), codes)
    else:
        assert codes is None
    assert torch.equal(empty_rows(mask), mask.all(1))
    assert any_set(mask) and not any_set(mask[5:9]) and not any_set(mask[:0])
