"""The multinomial's E-step on a GPU reads nothing back once a chunk.

On a GPU the sparse kernels run in torch (no scipy, no numba). Two steps used to wait on
the device once a chunk: the rows' log multinomial coefficients selected the counts above
1 (a ``nonzero``), and the re-seeding candidates gathered sparse rows (a gather reads its
rows' total to size its arrays). Both now work on every entry. Here the GPU's paths are
taken on the CPU (``defers_reads`` forced, the compiled and scipy kernels off) and the
read-backs counted (with boolean-mask indexing and ``nonzero``, which wait as well): a
fit over 60 chunks reads as often as one over 6, and fits as the CPU's own paths do.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from scipy.special import gammaln

from bigem import MultinomialMixture
from bigem._core import jit, numerics
from bigem._core.sparse import SparseRows
from bigem.models import multinomial as kernels

from ..unit.reads import counting_device_reads

N, V = 3000, 40


def _counts(seed: int = 0, empty: bool = True) -> sp.csr_matrix:
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, N)
    rates = np.where(np.arange(V) < V // 2, 0.2 + 1.5 * z[:, None], 0.2 + 1.5 * (1 - z[:, None]))
    X = rng.poisson(rates).astype(np.float64)
    if empty:
        X[::11] = 0  # empty documents
    X[7, 3] = 5000.0  # a count beyond the log-factorial table
    return sp.csr_matrix(X)


def _rows(X: sp.csr_matrix) -> SparseRows:
    return SparseRows(torch.from_numpy(X.indptr.astype(np.int64)), torch.from_numpy(X.indices.astype(np.int32)),
                      torch.from_numpy(X.data), X.shape[1])


def test_the_gpus_log_coefficients_are_the_closed_form():
    X = _counts()
    dense = X.toarray()
    expected = gammaln(dense.sum(1) + 1) - gammaln(dense + 1).sum(1)
    got = kernels._log_coefficients_torch(_rows(X)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-9)
    np.testing.assert_allclose(got, kernels._log_coefficients_numpy(_rows(X)).numpy(), rtol=1e-12, atol=1e-9)
    empty = SparseRows.empty(V)
    assert kernels._log_coefficients_torch(empty).shape == (0,)


def test_dense_rows_are_the_gathered_rows():
    X = _counts()
    rows = _rows(X)
    pick = torch.tensor([7, 0, 2999, 11, 5])  # a large count, empty documents, the last row
    np.testing.assert_array_equal(rows.dense_rows(pick).numpy(), X[pick.numpy()].toarray())
    assert rows.dense_rows(torch.tensor([], dtype=torch.int64)).shape == (0, V)


@pytest.fixture
def gpu_paths(monkeypatch):
    """A GPU's paths on the CPU: checks deferred, the sparse kernels in torch."""
    monkeypatch.setattr(numerics, "defers_reads", lambda device: True)
    monkeypatch.setattr(kernels, "_scipy_kernels", lambda: None)
    monkeypatch.setattr(kernels, "_log_coefficients_numpy", kernels._log_coefficients_torch)
    with jit.off():
        yield


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_a_fit_reads_back_as_often_for_60_chunks_as_for_6(gpu_paths, monkeypatch):
    X = _counts()
    reads, fits = [], []
    for rows in (N // 6, N // 60):
        with counting_device_reads({}) as counts:  # boolean-mask indexing and nonzero count too
            fits.append(MultinomialMixture(2, max_iter=4, tol=0, random_state=0, chunk_size=rows).fit(X))
        reads.append(counts["n"])
    assert reads[0] == reads[1]
    monkeypatch.setattr(numerics, "defers_reads", lambda device: False)
    plain = MultinomialMixture(2, max_iter=4, tol=0, random_state=0, chunk_size=N // 60).fit(X)
    for fit in fits:
        np.testing.assert_allclose(fit.lower_bounds_, plain.lower_bounds_, rtol=1e-10)
        np.testing.assert_allclose(fit.probabilities_, plain.probabilities_, rtol=1e-8, atol=1e-12)


@pytest.mark.filterwarnings("ignore::bigem.errors.ConvergenceWarning")
def test_a_dead_component_is_reseeded_from_dense_candidates_as_from_sparse_ones(monkeypatch):
    """Re-seeding reads its candidates densely where reads are deferred: the same fit."""
    from bigem.errors import ComponentReseededWarning

    X = _counts(3, empty=False).tolil()
    X[:, V - 1] = 0  # a word no document uses: the component made of it explains nothing (nor
    # does an empty document take its share of the weight)
    X = X.tocsr()
    theta = np.full((3, V), 1.0 / V)
    theta[2] = 1e-12
    theta[2, V - 1] = 1.0
    theta /= theta.sum(1, keepdims=True)
    fits = []
    for deferring in (False, True):
        monkeypatch.setattr(numerics, "defers_reads", lambda device: deferring)
        with pytest.warns(ComponentReseededWarning):
            fits.append(MultinomialMixture(3, max_iter=6, tol=0, chunk_size=500, probabilities_init=theta,
                                           weights_init=np.full(3, 1 / 3)).fit(X))
    np.testing.assert_allclose(fits[0].lower_bounds_, fits[1].lower_bounds_, rtol=1e-12)
    np.testing.assert_allclose(fits[0].probabilities_, fits[1].probabilities_, rtol=1e-10, atol=1e-14)
