"""The compiled per-row pass of the multinomial E-step (numba): the same statistics as
the tensor path (``jit.off()``) and as a dense brute-force E-step written here, the
same bits on any thread count, and the same fits in memory, streamed, online and
semi-supervised."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.special import gammaln, logsumexp

from bigem import MultinomialMixture, Tokens
from bigem._core import jit
from bigem._core.sparse import SparseRows
from bigem._core.types import Chunk
from bigem.models import multinomial as kernels
from bigem.models import multinomial_fused as fused
from bigem.models.multinomial import multinomial_mixture

from .conftest import make_documents

pytestmark = [pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning"),
              pytest.mark.skipif(not jit.available(), reason="compiled kernels off (numba absent, or BIGEM_JIT=0)")]

K, V = 4, 50


def counts(seed: int = 0, n: int = 700) -> sp.csr_matrix:
    """Counts with empty rows, large counts (beyond the log-factorial table) and one row
    made only of words component 0 never saw (see ``parameters``)."""
    rng = np.random.default_rng(seed)
    X = sp.random(n, V, density=0.15, format="lil", random_state=seed,
                  data_rvs=lambda k: rng.geometric(0.35, size=k).astype(np.float64))
    X[::9] = 0  # empty documents
    X[5] = 0
    X[5, V - 3 :] = [2, 1, 4]  # words component 0 has (nearly) no mass on
    X[7, 2] = 5000  # beyond the table of log-factorials
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def parameters(alpha_floor: float = 1e-12, seed: int = 1):
    """Weights and word probabilities; component 0 puts ``alpha_floor`` on the last three words."""
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(V), size=K)
    probs[0, V - 3 :] = alpha_floor
    probs /= probs.sum(1, keepdims=True)
    weights = rng.dirichlet(np.full(K, 3.0))
    return weights, probs


def rows_of(X: sp.csr_matrix, dtype: torch.dtype) -> SparseRows:
    return SparseRows(torch.from_numpy(X.indptr.astype(np.int64)), torch.from_numpy(X.indices.astype(np.int32)),
                      torch.from_numpy(X.data).to(dtype), X.shape[1])


def e_step(X, weights, probs, dtype, w=None, label=None, classes=None, off=False):
    """One E-step's statistics (fresh rows each time: no coefficients kept from another call)."""
    model = multinomial_mixture(K, 1.0, dtype)
    if classes is not None:
        model = model.with_classes(torch.tensor(classes), 0.5)
    params = model.make_params(torch.from_numpy(weights), torch.from_numpy(probs))
    chunk = Chunk(rows_of(X, dtype), None if w is None else torch.from_numpy(w).to(torch.float64), 0,
                  label=None if label is None else torch.from_numpy(label))
    if off:
        with jit.off():
            return model.e_step(params, chunk)
    return model.e_step(params, chunk)


def brute_force(X, weights, probs, w=None, barred=None):
    """n_k, sums (K, V) and sum_n w_n log p(x_n), dense float64 from the model's definition."""
    D = X.toarray()
    coef = gammaln(D.sum(1) + 1) - gammaln(D + 1).sum(1)
    joint = D @ np.log(probs).T + np.log(weights) + coef[:, None]
    if barred is not None:
        joint = np.where(barred, -np.inf, joint)
    norm = logsumexp(joint, axis=1)
    w = np.ones(X.shape[0]) if w is None else w
    resp = np.exp(joint - norm[:, None]) * w[:, None]
    return resp.sum(0), resp.T @ D, float(w @ norm)


@pytest.fixture
def spy(monkeypatch):
    """How many blocks went through the compiled pass."""
    calls = []
    original = fused.normalise

    def recorded(*args):
        calls.append(args[1].shape[0])
        return original(*args)

    monkeypatch.setattr(fused, "normalise", recorded)
    return calls


def assert_same_stats(a, b, rtol):
    np.testing.assert_allclose(a.component.n_k.numpy(), b.component.n_k.numpy(), rtol=rtol)
    np.testing.assert_allclose(a.component.sums.numpy(), b.component.sums.numpy(), rtol=rtol, atol=rtol * 1e-3)
    np.testing.assert_allclose(float(a.loglik), float(b.loglik), rtol=rtol)
    assert float(a.weight) == float(b.weight) and a.rows == b.rows


@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 2e-5)])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_compiled_pass_gives_the_tensor_paths_and_the_brute_force_statistics(spy, dtype, rtol, weighted):
    X = counts()
    weights, probs = parameters()
    w = np.random.default_rng(3).uniform(0.0, 3.0, X.shape[0]) if weighted else None
    if w is not None:
        w[::13] = 0.0  # rows of weight 0 count nothing
    got = e_step(X, weights, probs, dtype, w)
    assert spy, "the compiled pass did not run"
    assert_same_stats(got, e_step(X, weights, probs, dtype, w, off=True), rtol)
    n_k, sums, loglik = brute_force(X, weights, probs, w)
    np.testing.assert_allclose(got.component.n_k.numpy(), n_k, rtol=rtol)
    np.testing.assert_allclose(got.component.sums.numpy(), sums, rtol=rtol, atol=rtol * 1e-3)
    assert float(got.loglik) == pytest.approx(loglik, rel=rtol)
    assert np.isfinite(float(got.loglik))  # the row of words unseen by component 0 stays finite


def test_labelled_rows_keep_their_class_and_unlabelled_rows_weigh_less(spy):
    X = counts(seed=2)
    weights, probs = parameters()
    classes = [0, 0, 1, 2]  # two components for class 0
    label = np.full(X.shape[0], -1, dtype=np.int64)
    label[::4] = np.arange(0, X.shape[0], 4) % 3
    got = e_step(X, weights, probs, torch.float64, label=label, classes=classes)
    assert spy
    assert_same_stats(got, e_step(X, weights, probs, torch.float64, label=label, classes=classes, off=True), 1e-12)
    barred = (label[:, None] >= 0) & (np.array(classes)[None, :] != label[:, None])
    w = np.where(label < 0, 0.5, 1.0)
    n_k, sums, loglik = brute_force(X, weights, probs, w, barred)
    np.testing.assert_allclose(got.component.n_k.numpy(), n_k, rtol=1e-12)
    np.testing.assert_allclose(got.component.sums.numpy(), sums, rtol=1e-12, atol=1e-15)
    assert float(got.loglik) == pytest.approx(loglik, rel=1e-12)


def test_a_row_no_component_explains_is_reported_as_on_the_tensor_path():
    """With a word of probability 0 under every component (alpha = 0), a row using it has
    log-likelihood -inf: both paths name the same first such row."""
    X = counts()
    weights, probs = parameters()
    probs[:, 0] = 0.0
    probs /= probs.sum(1, keepdims=True)
    got, ref = (e_step(X, weights, probs, torch.float64, off=off) for off in (False, True))
    first = int(np.flatnonzero(X[:, 0].toarray().ravel() > 0)[0])
    assert int(got.unexplained) == int(ref.unexplained) == first


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_statistics_are_the_same_bits_on_any_thread_count(monkeypatch, dtype):
    monkeypatch.setattr(fused, "PART_ROWS", 32)  # many parts on test-sized data
    monkeypatch.setattr(kernels, "_MIN_PART_ENTRIES", 256)
    monkeypatch.setattr(kernels, "RUN_ROWS", 64)
    X = counts(seed=4, n=1500)
    weights, probs = parameters()
    w = np.random.default_rng(5).uniform(0.5, 2.0, X.shape[0])
    before = torch.get_num_threads()
    results = {}
    try:
        for t in (1, 2, 3, 4):
            torch.set_num_threads(t)
            results[t] = e_step(X, weights, probs, dtype, w)
    finally:
        torch.set_num_threads(before)
    for t in (2, 3, 4):
        assert torch.equal(results[t].component.n_k, results[1].component.n_k), t
        assert torch.equal(results[t].component.sums, results[1].component.sums), t
        assert torch.equal(results[t].loglik, results[1].loglik), t


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_word_counts_added_run_by_run_are_numpys_sums_bit_for_bit(monkeypatch, dtype):
    """X^T @ R in runs of 64 rows, each run added into float64 by the compiled loop: the
    same bits as numpy's addition of the runs (the tensor path), and within float32's
    rounding of one run of the exact float64 product."""
    monkeypatch.setattr(kernels, "RUN_ROWS", 64)
    X = counts(seed=7, n=1500)
    rows = rows_of(X, dtype)
    r = torch.from_numpy(np.random.default_rng(8).random((X.shape[0], K))).to(dtype)
    compiled = torch.zeros(V, K, dtype=torch.float64)
    kernels.transposed_product(rows, r, compiled)
    with jit.off():
        plain = torch.zeros(V, K, dtype=torch.float64)
        kernels.transposed_product(rows, r, plain)
    assert torch.equal(compiled, plain)
    exact = X.T @ r.double().numpy()
    np.testing.assert_allclose(compiled.numpy(), exact, rtol=1e-12 if dtype == torch.float64 else 1e-5)


def test_coefficients_are_exact_and_the_same_whether_kept_or_derived(monkeypatch):
    X = counts(seed=6).tolil()
    X[3, 4] = 2**23 + 1  # with the row's other counts, its total passes 2**24 (float32 rounds there)
    X = X.tocsr()
    D = X.toarray()
    expected = gammaln(D.sum(1) + 1) - gammaln(D + 1).sum(1)
    # a difference of terms as large as log N!: rounding is relative to that
    slack = 1e-12 + 1e-15 * gammaln(D.sum(1) + 1)
    for dtype in (torch.float32, torch.float64):
        rows = rows_of(X, dtype)
        got = kernels.log_coefficients(rows).numpy()
        assert np.all(np.abs(got - expected) <= slack)
        with jit.off():
            assert np.all(np.abs(kernels.log_coefficients(rows).numpy() - got) <= slack)
    # a block's pass derives them when nothing kept them, and keeps them: the same bits
    weights, probs = parameters()
    model = multinomial_mixture(K, 1.0, torch.float64)
    params = model.make_params(torch.from_numpy(weights), torch.from_numpy(probs))
    rows = rows_of(X, torch.float64)
    model.e_step(params, Chunk(rows, None, 0))
    assert torch.equal(rows.memo["log_coefficients"], kernels.log_coefficients(rows_of(X, torch.float64)))


def test_exp_is_within_an_ulp_or_two_over_its_range():
    d = np.concatenate([-np.random.default_rng(0).uniform(0, 690, 100_000), [0.0, -690.0, -1e-300, -0.34657359028]])
    got = d.copy()
    fused._exp(got, np.empty(len(d), dtype=np.int64))
    np.testing.assert_allclose(got, np.exp(d), rtol=5e-16, atol=0)
    nan = np.array([np.nan, -1.0])
    fused._exp(nan, np.empty(2, dtype=np.int64))
    assert np.isnan(nan[0]) and nan[1] == pytest.approx(np.exp(-1.0), rel=1e-15)


# ---------------------------------------------------------------------------- whole fits
KW = dict(random_state=0, dtype="float64", max_iter=5, tol=0.0, chunk_size=300)


def _close(a, b):
    np.testing.assert_allclose(a.probabilities_, b.probabilities_, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(a.weights_, b.weights_, rtol=1e-12)
    np.testing.assert_allclose(a.history_[0]["log_likelihood"], b.history_[0]["log_likelihood"], rtol=1e-12)


def _both(make, *args, **kwargs):
    fit = make().fit(*args, **kwargs)
    with jit.off():
        ref = make().fit(*args, **kwargs)
    return fit, ref


def test_fits_in_memory_streamed_and_from_token_lists_equal_the_tensor_paths(spy, tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X, _, _, _ = make_documents(seed=7, n=900, V=60)
    S = sp.csr_matrix(X)
    w = np.random.default_rng(8).uniform(0.5, 2.0, S.shape[0])
    npz = str(tmp_path / "docs.npz")
    sp.save_npz(npz, S, compressed=False)
    parquet = str(tmp_path / "docs.parquet")
    ids = [S.indices[S.indptr[i] : S.indptr[i + 1]].tolist() for i in range(S.shape[0])]
    n = [S.data[S.indptr[i] : S.indptr[i + 1]].tolist() for i in range(S.shape[0])]
    pq.write_table(pa.table({"ids": ids, "n": n}), parquet)
    tokens = Tokens(parquet, "ids", "n", vocabulary_size=S.shape[1])
    make = lambda: MultinomialMixture(3, cache_budget=0, **KW)  # noqa: E731
    for data, kw in ((S, {}), (S, {"sample_weight": w}), (npz, {}), (tokens, {})):
        calls = len(spy)
        fit, ref = _both(make, data, **kw)
        assert len(spy) > calls
        _close(fit, ref)


def test_online_em_and_semi_supervised_fits_equal_the_tensor_paths(spy):
    X, z, _, _ = make_documents(seed=9, n=800, V=60)
    S = sp.csr_matrix(X)
    y = np.where(np.arange(len(z)) % 5 == 0, z, -1)
    calls = len(spy)
    fit, ref = _both(lambda: MultinomialMixture(4, unlabeled_weight=0.3, **KW), S, y)  # 4 components, 3 classes
    assert len(spy) > calls
    _close(fit, ref)
    assert fit.classes_.tolist() == [0, 1, 2]
    parts = []
    for off in (False, True):
        est = MultinomialMixture(3, random_state=0, dtype="float64")
        with jit.off() if off else nullcontext():
            for start in range(0, 800, 200):
                est.partial_fit(S[start : start + 200])
        parts.append(est)
    np.testing.assert_allclose(parts[0].probabilities_, parts[1].probabilities_, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(parts[0].weights_, parts[1].weights_, rtol=1e-12)
    assert spy


def test_a_dask_fit_takes_the_compiled_pass_on_the_workers_and_equals_the_tensor_paths(spy):
    da = pytest.importorskip("dask.array")
    distributed = pytest.importorskip("distributed")
    X, _, _, _ = make_documents(seed=10, n=600, V=60)
    start = np.random.default_rng(5).dirichlet(np.ones(60), size=3)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster, set_as_default=False) as client:
        fit, ref = _both(lambda: MultinomialMixture(3, probabilities_init=start, client=client, **KW),
                         da.from_array(X, chunks=(137, -1)))
    assert spy  # the workers' E-steps (threads of this process) took it
    _close(fit, ref)
