"""The compiled per-gap step of full and tied Gaussians (models/gaussian_gaps_fused.py)
against the tensor path (jit.off()) and against the brute-force EM step of
tests/unit/test_missing.py, and the same bits on any number of threads."""

import numpy as np
import pytest
import torch

from bigem._core import jit, parallel
from bigem._core.types import Chunk
from bigem.models import gaussian_gaps, gaussian_gaps_fused
from tests.unit.test_missing import exact_em_step, observed_log_joint, random_model, with_gaps

pytest.importorskip("numba")


@pytest.fixture(autouse=True)
def kernels_on(monkeypatch):
    """The kernels run even where BIGEM_JIT=0 turns them off for the rest of the suite."""
    monkeypatch.setitem(jit._STATE, "off", False)


@pytest.fixture
def small_blocks(monkeypatch):
    """Blocks of 64 rows (many blocks, runs of every length) cut into parts of 8 rows."""
    monkeypatch.setattr(gaussian_gaps_fused, "_MIN_PART_ROWS", 8)
    return lambda model: monkeypatch.setattr(model.component, "block_rows", lambda K, D, device: 64)


def _stats(model, p, x):
    s = model.e_step(p, Chunk(x, None, 0))
    return s, [s.component.n_k, s.component.sum_x, s.component.sum_xx]


def _rel(a, b):
    return float((a.double() - b.double()).abs().max() / b.double().abs().max().clamp(min=1e-300))


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("d", [5, 12])
@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_equals_the_tensor_path(covariance_type, d, dtype, small_blocks):
    """Statistics, log-likelihood and log-densities, rows missing 0 to d coordinates."""
    rng = np.random.default_rng(d)
    model, p, _ = random_model(rng, covariance_type, 3, d, dtype=dtype)
    small_blocks(model)
    x = torch.tensor(with_gaps(rng, 700, d, rate=0.35)).to(dtype)
    assert int(torch.isnan(x).sum(1).max()) == d and len(set(torch.isnan(x).sum(1).tolist())) >= 5
    compiled, got = _stats(model, p, x)
    with jit.off():
        tensor, want = _stats(model, p, x)
    tol = 1e-12 if dtype == torch.float64 else 3e-6
    for a, b in zip(got, want):
        assert _rel(a, b) <= tol
    assert float(compiled.loglik) == pytest.approx(float(tensor.loglik), rel=tol)
    lj = model.log_joint(p, x)
    with jit.off():
        lj_tensor = model.log_joint(p, x)
    assert _rel(lj, lj_tensor) <= tol


@pytest.mark.parametrize("covariance_type", ["full", "tied"])
def test_compiled_em_step_is_the_exact_em_step(covariance_type, small_blocks):
    """Against brute force (per-row conditional moments), half the entries missing."""
    rng = np.random.default_rng(7)
    model, p, (w, means, covs) = random_model(rng, covariance_type, 3, 6)
    small_blocks(model)
    x = with_gaps(rng, 200, 6, rate=0.5)
    stats = model.e_step(p, Chunk(torch.tensor(x), None, 0))
    new = model.m_step(stats, p).params
    ll, w2, mu2, cov2 = exact_em_step(x, w, means, covs, covariance_type, 1e-6)
    assert float(stats.loglik) == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(new.weights.numpy(), w2, rtol=1e-10)
    np.testing.assert_allclose(new.means.numpy(), mu2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(new.covariances.numpy(), cov2, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(model.log_joint(p, torch.tensor(x)).numpy(), observed_log_joint(x, w, means, covs),
                               rtol=1e-10, atol=1e-10)


def test_imputations_equal_the_tensor_path(small_blocks):
    """Conditional means and draws, which read the gaps' offsets the E-step skips."""
    rng = np.random.default_rng(3)
    model, p, _ = random_model(rng, "full", 3, 7)
    small_blocks(model)
    x = torch.tensor(with_gaps(rng, 300, 7, rate=0.4))
    chunk = Chunk(x, None, 0)
    uniforms, normals = torch.rand(300, dtype=torch.float64), torch.randn(300, 7, dtype=torch.float64)
    means, draws = model.impute(p, chunk), model.impute(p, chunk, uniforms, normals)
    with jit.off():
        means_t, draws_t = model.impute(p, chunk), model.impute(p, chunk, uniforms, normals)
    observed = ~torch.isnan(x)
    assert torch.equal(means[observed], x[observed]) and not torch.isnan(means).any()
    torch.testing.assert_close(means, means_t, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(draws, draws_t, rtol=1e-12, atol=1e-12)


def test_same_bits_on_any_number_of_threads(small_blocks):
    """The per-gap pass cut into 1, 2 or 3 ranges per run writes the same completed rows."""
    rng = np.random.default_rng(5)
    model, p, _ = random_model(rng, "full", 4, 9, dtype=torch.float32)
    x = torch.tensor(with_gaps(rng, 900, 9, rate=0.3)).float()
    prep = model.component.prepare(p.component, x.device)
    mask = torch.isnan(x)
    order = torch.argsort(mask.sum(1), stable=True)  # as the mixture's E-step reads them
    x, mask = x[order], mask[order]
    prep.gaps.cache.expect(mask)
    completed = []
    for threads in (1, 2, 3):
        with parallel.keeping(threads):
            feats = gaussian_gaps.centred_features(prep, x, mask, model.component._ws)
            gb = gaussian_gaps.complete(prep.gaps, feats, mask, prep.dtype, model.component._ws)
            completed.append(gb.completed.clone())
    assert torch.equal(completed[0], completed[1]) and torch.equal(completed[0], completed[2])
    with jit.off():
        feats = gaussian_gaps.centred_features(prep, x, mask, model.component._ws)
        want = gaussian_gaps.complete(prep.gaps, feats, mask, prep.dtype, model.component._ws).completed
    torch.testing.assert_close(completed[0], want, rtol=2e-5, atol=2e-5)
