"""The CPU sparse kernels on several threads: the same results as on one thread (bit for
bit for the kernels; to 1e-12 for fits, whose torch operations may round differently with
torch's thread count), and right against independent references (scipy, dense numpy)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.special import gammaln

from bigem import MultinomialMixture
from bigem._core import parallel
from bigem._core.sparse import SparseRows
from bigem.models import multinomial as kernels

from .conftest import make_documents

pytestmark = pytest.mark.filterwarnings("ignore::bigem._core.errors.ConvergenceWarning")

THREADS = (1, 2, 3, 4)


@pytest.fixture
def small_parts(monkeypatch):
    """Parts small enough that test-sized data splits into many (runs of 64 rows, 512
    entries a thread), and a record of how many tasks each parallel call ran."""
    monkeypatch.setattr(kernels, "RUN_ROWS", 64)
    monkeypatch.setattr(kernels, "_MIN_PART_ENTRIES", 512)
    calls: list[int] = []
    run = parallel.run

    def recorded(tasks):
        calls.append(len(tasks))
        return run(tasks)

    monkeypatch.setattr(parallel, "run", recorded)
    return calls


@pytest.fixture
def threads():
    """Set torch's thread count (which the kernels follow); restored afterwards."""
    before = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(before)


def random_counts(seed=0, n=1500, V=200, density=0.08, empty_every=7):
    """CSR counts with some empty rows and some counts above 1."""
    X = sp.random(n, V, density=density, format="csr", random_state=seed,
                  data_rvs=lambda k: np.random.default_rng(seed).geometric(0.4, size=k).astype(np.float64))
    X = X.tolil()
    X[::empty_every] = 0  # empty documents, runs of rows without entries
    X = X.tocsr()
    X.eliminate_zeros()
    return X


def as_rows(X, dtype):
    return SparseRows(torch.from_numpy(X.indptr.astype(np.int64)), torch.from_numpy(X.indices.astype(np.int32)),
                      torch.from_numpy(X.data).to(dtype), X.shape[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_products_are_the_same_bits_on_any_thread_count_and_right(small_parts, threads, dtype):
    X = random_counts()
    rows = as_rows(X, dtype)
    n, V = X.shape
    rng = np.random.default_rng(1)
    w = torch.from_numpy(rng.standard_normal((V, 5))).to(dtype)
    r = torch.from_numpy(rng.random((n, 5))).to(dtype)
    results = {}
    for t in THREADS:
        threads(t)
        out = kernels.product(rows, w, torch.empty(n, 5, dtype=dtype))
        into = torch.full((V, 5), 0.5, dtype=torch.float64)  # adds to what is there
        kernels.transposed_product(rows, r, into)
        results[t] = (out, into)
    assert max(small_parts) == max(THREADS)  # the work was split as far as allowed
    for t in THREADS[1:]:
        assert torch.equal(results[t][0], results[1][0]), t
        assert torch.equal(results[t][1], results[1][1]), t
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    np.testing.assert_allclose(results[1][0].numpy(), X @ w.double().numpy(), rtol=tol, atol=tol)
    np.testing.assert_allclose(results[1][1].numpy(), 0.5 + X.T @ r.double().numpy(), rtol=tol, atol=tol)


def test_log_coefficients_are_the_same_bits_on_any_thread_count_and_exact(small_parts, threads):
    X = random_counts(seed=2).tolil()
    X[3, 4] = 5000  # beyond the table of log-factorials
    X = X.tocsr()
    dense = X.toarray()
    expected = gammaln(dense.sum(1) + 1) - gammaln(dense + 1).sum(1)
    for dtype in (torch.float32, torch.float64):
        got = {}
        for t in THREADS:
            threads(t)
            got[t] = kernels.log_coefficients(as_rows(X, dtype))
        for t in THREADS[1:]:
            assert torch.equal(got[t], got[1])
        np.testing.assert_allclose(got[1].numpy(), expected, rtol=1e-13, atol=1e-12)


def test_float32_row_totals_beyond_2_to_the_24_are_summed_exactly():
    """Each count fits float32 exactly, but their sum does not: the totals are redone in float64."""
    big = 2**23 + 1
    X = sp.csr_matrix(np.array([[big, big, big, 0], [1, 2, 0, 3]], dtype=np.float64))
    expected = gammaln(X.toarray().sum(1) + 1) - gammaln(X.toarray() + 1).sum(1)
    got = kernels.log_coefficients(as_rows(X, torch.float32)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-14)


@pytest.mark.parametrize("streamed", [False, True])
def test_fit_and_score_agree_with_one_thread_on_any_thread_count(small_parts, threads, tmp_path, streamed):
    X, _, _, _ = make_documents(seed=4, n=1200, V=80)
    X = sp.csr_matrix(X)
    data = X
    if streamed:  # decoded on the read-ahead thread while the kernels run on several
        data = str(tmp_path / "docs.npz")
        sp.save_npz(data, X, compressed=False)
    kw = dict(random_state=0, dtype="float64", max_iter=6, tol=0.0, chunk_size=500, cache_budget=0)
    fits = {}
    for t in THREADS:
        threads(t)
        est = MultinomialMixture(3, **kw).fit(data)
        fits[t] = (est, est.score(data), est.score_samples(X))
    assert max(small_parts) > 1
    ref, score, samples = fits[1]
    for t in THREADS[1:]:
        est, s, ss = fits[t]
        np.testing.assert_allclose(est.probabilities_, ref.probabilities_, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(est.weights_, ref.weights_, rtol=1e-12)
        np.testing.assert_allclose(est.history_[0]["log_likelihood"], ref.history_[0]["log_likelihood"], rtol=1e-12)
        assert s == pytest.approx(score, rel=1e-12)
        np.testing.assert_allclose(ss, samples, rtol=1e-12)


# ---------------------------------------------------------------------------- the pool itself
def test_run_returns_results_in_task_order():
    def task(i):
        def go():
            time.sleep(0.002 * (5 - i))  # later tasks finish first
            return i
        return go

    assert parallel.run([task(i) for i in range(5)]) == list(range(5))


def test_fold_in_order_combines_in_index_order_whatever_finishes_first():
    order, names = [], set()

    def compute(i, part):
        time.sleep(0.001 * ((7 * i) % 5))  # parts finish out of order
        part[0] = i
        names.add(threading.current_thread().name)

    def combine(i, part):
        assert part[0] == i
        order.append(i)

    parallel.fold_in_order(40, compute, combine, lambda: [None], workers=4)
    assert order == list(range(40))
    assert len(names) > 1  # really on several threads


def test_a_failing_part_raises_its_own_error_and_stops_the_others():
    combined = []

    def compute(i, part):
        if i == 3:
            raise ValueError("part 3 is bad")
        time.sleep(0.002)

    def combine(i, part):
        combined.append(i)

    with pytest.raises(ValueError, match="part 3 is bad"):
        parallel.fold_in_order(50, compute, combine, lambda: None, workers=3)
    assert combined == list(range(len(combined))) and len(combined) <= 3 + 3  # in order, then stopped


def test_each_runs_every_part_once_on_threads_as_they_come_free():
    """A slow thread takes fewer parts; every part runs once, with its thread's scratch."""
    done, by = [0] * 60, {}

    def task(i, scratch):
        scratch.append(i)
        done[i] += 1
        by[i] = threading.current_thread().name
        time.sleep(0.004 if threading.current_thread() is threading.main_thread() else 0.0005)

    parallel.each(60, task, list, workers=3)
    assert done == [1] * 60
    names = list(by.values())
    counts = [names.count(name) for name in set(names)]
    assert len(counts) > 1  # really on several threads
    assert names.count(threading.main_thread().name) < max(counts)  # the slow (main) thread took fewer

    def failing(i, _):
        if i == 7:
            raise ValueError("part 7 is bad")

    with pytest.raises(ValueError, match="part 7"):
        parallel.each(40, failing, lambda: None, workers=2)


@pytest.mark.parametrize("pieces", [1, 4])
def test_products_are_the_same_bits_however_many_blocks_a_thread_takes(small_parts, threads, monkeypatch, pieces):
    X = random_counts(seed=3)
    rows = as_rows(X, torch.float32)
    w = torch.from_numpy(np.random.default_rng(2).standard_normal((X.shape[1], 5))).float()
    threads(1)
    one = kernels.product(rows, w, torch.empty(X.shape[0], 5))
    threads(3)
    monkeypatch.setattr(kernels, "_PIECES_PER_THREAD", pieces)
    assert torch.equal(kernels.product(rows, w, torch.empty(X.shape[0], 5)), one)


def test_balanced_rows_cut_by_entries():
    indptr = np.array([0, 100, 100, 101, 102, 103, 200, 200])
    bounds = parallel.balanced_rows(indptr, 2)
    assert bounds[0] == 0 and bounds[-1] == 7 and len(bounds) == 3
    a = bounds[1]
    assert abs(int(indptr[a]) - 100) <= 3  # each half about 100 entries
    assert parallel.balanced_rows(indptr, 1) == [0, 7]
    assert parallel.balanced_rows(np.array([0]), 4) == [0, 0]


def test_vast_vocabularies_use_fewer_threads_for_their_scratches(small_parts, threads, monkeypatch):
    """Each thread of X^T @ R holds a (D, K) scratch: their total stays within the budget
    (here room for two), and the sums do not change."""
    X = random_counts(seed=5)
    rows = as_rows(X, torch.float32)
    r = torch.from_numpy(np.random.default_rng(0).random((X.shape[0], 3))).float()
    threads(4)
    full = torch.zeros(X.shape[1], 3, dtype=torch.float64)
    kernels.transposed_product(rows, r, full)
    assert small_parts[-1] == 4
    monkeypatch.setattr(kernels, "_SCRATCH_BYTES", 2 * X.shape[1] * 3 * 4)
    capped = torch.zeros(X.shape[1], 3, dtype=torch.float64)
    kernels.transposed_product(rows, r, capped)
    assert small_parts[-1] == 2
    assert torch.equal(capped, full)


def test_float64_runs_cover_about_four_entries_per_word():
    assert kernels.run_rows(100_000, 50, 5_000_000, torch.float32) == kernels.RUN_ROWS
    assert kernels.run_rows(100_000, 50, 5_000_000, torch.float64) == kernels.RUN_ROWS  # 4 rows would do
    rows = kernels.run_rows(100_000, 2**20, 5_000_000, torch.float64)  # 50 entries a row
    assert rows == -(-4 * 2**20 // 50)


def test_beside_a_decoding_source_torch_leaves_a_core_but_the_sparse_kernels_keep_them_all(threads):
    from bigem.engines.local import sharing_cores

    class Decoding:
        decodes = True

    class Plain:
        decodes = False

    threads(3)
    with sharing_cores(Decoding()):
        assert torch.get_num_threads() == 2
        assert parallel.threads() == 3
    assert torch.get_num_threads() == 3 and parallel.threads() == 3
    with sharing_cores(Plain()):
        assert torch.get_num_threads() == 3 and parallel.threads() == 3
    with pytest.raises(RuntimeError), sharing_cores(Decoding()):
        raise RuntimeError("the loop failed")
    assert torch.get_num_threads() == 3 and parallel.threads() == 3  # restored on errors too
    seen = []
    with sharing_cores(Decoding()):
        other = threading.Thread(target=lambda: seen.append((parallel.threads(), torch.get_num_threads())))
        other.start()
        other.join()
    assert seen[0][0] == seen[0][1]  # kept for the calling thread only: another follows torch's count


def test_torch_on_one_thread_keeps_the_kernels_count_and_restores_both(threads):
    threads(3)
    with pytest.raises(RuntimeError, match="inside"):
        with parallel.torch_on_one_thread():
            assert torch.get_num_threads() == 1 and parallel.threads() == 3
            raise RuntimeError("inside")
    assert torch.get_num_threads() == 3 and parallel.threads() == 3


def test_a_fit_runs_torch_on_one_thread_beside_the_kernels_on_all(monkeypatch, threads):
    """torch's team would spin after each of its small operations, on the cores the
    kernels then need: a CPU fit keeps torch on one thread and the kernels on every one,
    and gives both back afterwards."""
    threads(2)
    seen = []
    product = kernels.product

    def spy(*args, **kw):
        seen.append((torch.get_num_threads(), parallel.threads()))
        return product(*args, **kw)

    monkeypatch.setattr(kernels, "product", spy)
    X, _, _, _ = make_documents(n=1000)  # 1000 x 60: more than SMALL_WORK
    MultinomialMixture(2, max_iter=3, random_state=0).fit(sp.csr_matrix(X))
    assert seen and set(seen) == {(1, 2)}
    assert torch.get_num_threads() == 2 and parallel.threads() == 2
    seen.clear()  # small data: the whole fit on one thread, the kernels too
    MultinomialMixture(2, max_iter=3, random_state=0).fit(sp.csr_matrix(X[:300]))
    assert seen and set(seen) == {(1, 1)}
    assert torch.get_num_threads() == 2 and parallel.threads() == 2
