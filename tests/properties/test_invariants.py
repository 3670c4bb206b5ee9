"""Invariants that hold for any data: EM never lowers the likelihood, responsibilities
and weights sum to one, covariances stay positive definite, chunking changes nothing."""

from __future__ import annotations

import warnings

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bigem import GaussianMixture
from bigem._core.stats import lowest_first, tree_sum
from bigem._core.types import Chunk
from bigem.models.gaussian import gaussian_mixture as GaussianMixtureModel
from tests.conftest import COV_TYPES, mixture_stats

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def datasets(draw):
    seed = draw(st.integers(0, 2**31 - 1))
    n = draw(st.integers(8, 120))
    d = draw(st.integers(1, 4))
    k = draw(st.integers(1, 4))
    scale = draw(st.sampled_from([1e-2, 1.0, 1e3]))
    offset = draw(st.sampled_from([0.0, 1e3]))
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (k, d))
    X = centres[rng.integers(0, k, n)] + rng.normal(0, 1, (n, d))
    return X * scale + offset, min(k, n), seed


@SETTINGS
@given(data=datasets(), covariance_type=st.sampled_from(COV_TYPES), dtype=st.sampled_from(["float32", "float64"]))
def test_em_invariants(data, covariance_type, dtype):
    X, k, seed = data
    gm = GaussianMixture(k, covariance_type=covariance_type, dtype=dtype, random_state=seed, max_iter=15, chunk_size=37)
    seen = []
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*did not converge")
        warnings.filterwarnings("ignore", message=".*re-seeded")
        gm.fit(X, callback=seen.append)
    model = GaussianMixtureModel(k, covariance_type, gm.reg_covar, torch.float32 if dtype == "float32" else torch.float64)
    # the log-likelihood of each iteration's parameters is >= the previous one's, up to the
    # model's own rounding bound; re-seeded parameters are exempt (a re-seed is not an EM step)
    for before, after in zip(seen, seen[1:]):
        if before.report.exact:
            floor = before.log_likelihood - model.decrease_tolerance(before.params, before.log_likelihood)
            assert after.log_likelihood >= floor
    assert np.all(np.isfinite(gm.lower_bounds_))
    proba = gm.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, rtol=1e-6)
    assert abs(gm.weights_.sum() - 1) < 1e-12
    assert np.all(gm.weights_ >= 0)
    cov = gm.covariances_
    if covariance_type in ("full", "tied"):
        assert np.all(np.linalg.eigvalsh(cov) > 0)
        np.testing.assert_allclose(cov, np.swapaxes(cov, -1, -2), atol=1e-12 * np.abs(cov).max())
    else:
        assert np.all(cov > 0)
    assert np.all(np.isfinite(gm.score_samples(X)))


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    cuts=st.lists(st.integers(1, 99), min_size=1, max_size=5),
    covariance_type=st.sampled_from(COV_TYPES),
    weighted=st.booleans(),
)
def test_statistics_add_up_in_any_grouping(seed, cuts, covariance_type, weighted):
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.normal(0, 2, (100, 3)) + 10)
    w = torch.from_numpy(rng.uniform(0, 2, 100)) if weighted else None
    model = GaussianMixtureModel(2, covariance_type, 1e-6, torch.float64)
    cov = {"full": torch.eye(3).expand(2, 3, 3), "tied": torch.eye(3), "diag": torch.ones(2, 3), "spherical": torch.ones(2)}
    params = model.make_params(torch.tensor([0.3, 0.7]), torch.from_numpy(rng.normal(10, 2, (2, 3))), cov[covariance_type])
    whole = model.e_step(params, Chunk(x, w, 0))
    bounds = [0, *sorted(set(cuts)), 100]
    parts = [
        model.e_step(params, Chunk(x[a:b], None if w is None else w[a:b], a)) for a, b in zip(bounds, bounds[1:])
    ]
    for combined in (tree_sum(parts), sum(parts[1:], parts[0]), sum(reversed(parts[:-1]), parts[-1])):
        got, want = mixture_stats(combined), mixture_stats(whole)
        for name in ("resp_sum", "sum_x", "sum_xx", "loglik", "weight_sum"):
            torch.testing.assert_close(got[name], want[name], rtol=1e-10, atol=1e-9)
        assert combined.rows == 100
        torch.testing.assert_close(got["worst_ll"].sort().values, want["worst_ll"].sort().values)


@SETTINGS
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.one_of(st.integers(0, 3000), st.integers(30_000, 80_000)),  # a sort, two top-m; the grouped search
    m=st.integers(1, 20),
    levels=st.integers(2, 10_000),
)
def test_lowest_first_are_the_m_smallest_ties_to_the_first_places(seed, n, m, levels):
    """Every search returns the m smallest (value, place) pairs: the m smallest values,
    and among values tied at the cut the first places (few levels make many ties)."""
    rng = np.random.default_rng(seed)
    values = torch.from_numpy(rng.integers(0, levels, n).astype(np.float32))
    idx = lowest_first(values, m)
    assert len(set(idx.tolist())) == len(idx) == min(n, m)
    assert set(idx.tolist()) == set(np.lexsort((np.arange(n), values.numpy()))[:m].tolist())
