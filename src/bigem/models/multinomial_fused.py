"""The multinomial E-step in one pass over each row's entries: a compiled CPU kernel.

The tensor path (:mod:`.multinomial`) reads every entry of a block twice, in two sparse
products: X @ log(theta)^T for the log-densities, then X^T @ R for the word counts. Here
each row's entries are read once from memory: one loop over them gives the row's K
log-densities (and its log multinomial coefficient when no earlier pass kept it), the
responsibilities follow from a log-sum-exp over K numbers, and a second loop over the
same entries (now in the cache) adds r_k * count to the word counts. The arithmetic is
float64 throughout (the counts and log-probabilities are read in the compute dtype), so
in float64 it is the tensor path's to rounding, and in float32 it is more exact than
the tensor path.

Parallel and reproducible: a block's rows are cut into parts of about ``PART_ENTRIES``
entries (from the rows alone, never from the thread count), each part adds its word
counts into a per-thread (D, K) float64 scratch, and the parts are added into the
chunk's sums one after another in part order (:func:`~bigem._core.parallel.fold_in_order`),
so the sums are the same bits on any number of threads. A part adds only the words it
saw, and clears only those (it keeps their list): a part costs its entries, not the
vocabulary, so parts stay small and the threads stay busy at any vocabulary size.

Memory: each thread keeps one scratch of D * K * 8 bytes (plus D bytes of marks and D
word ids): 3.2 MB at D = 2e4, K = 20, but 160 MB at D = 1e6. The threads that hold a
scratch at once are bounded so that their scratches stay within ``SCRATCH_BYTES``
(at D = 1e6, K = 20: one thread; the results do not change with it).
"""

from __future__ import annotations

import math
import threading

import numpy as np
import torch
from torch import Tensor

from .._core import jit, parallel


def _scipy_kernels():
    try:
        from scipy.sparse import _sparsetools
    except ImportError:
        return None
    return _sparsetools if hasattr(_sparsetools, "csr_matvecs") else None

# Entries per part: a part's bookkeeping (taking a turn, adding the words it saw) costs
# tens of microseconds, a part of 2**17 entries at K = 20 about a millisecond.
PART_ENTRIES = 1 << 17
SCIPY_DOT = False
WORD_ENTRIES = 32
# Per-thread scratches together stay within this (see the module's docstring).
SCRATCH_BYTES = 256 << 20


@jit.kernel
def _expect_rows(a, b, indptr, indices, values, log_probs_t, products, given, log_w, coef, have_coef,
                 log_factorials, barred, has_barred, weights, has_weights, floor, log_norm, sums, n_k, seen, words,
                 n_words):
    """Rows a..b-1 of a block: each row's log-likelihood into ``log_norm`` (its log
    multinomial coefficient into ``coef`` unless ``have_coef``), its responsibilities
    times its weight added to ``n_k`` and, times each count, to its words' rows of
    ``sums``. Words first met since the last fold are listed in ``words`` (``seen``
    marks them); returns their new count. With ``given``, row i's sum x . log theta_k
    is read from ``products[i - a]`` instead of summed here.

    The log-densities and log-sum-exp are summed in float64; the scatter into ``sums``
    runs in its dtype (the compute dtype). The log-sum-exp is normalise_log's: shifted
    by the row's largest log-joint (0 when that is not finite), each log-ratio floored at
    ``floor`` before exp, and -inf as the log-likelihood of a row no component explains.
    Barred components (a labelled row's other classes) have log-joint -inf.
    """
    K = log_probs_t.shape[1]
    table_size = log_factorials.shape[0]
    joint = np.empty(K, np.float64)
    powers = np.empty(K, np.int64)  # 2**m of each exp, as float64 bits
    scales = powers.view(np.float64)
    resp = np.empty(K, sums.dtype)
    count = n_words
    for i in range(a, b):
        lo = indptr[i]
        hi = indptr[i + 1]
        if given:
            for k in range(K):
                joint[k] = np.float64(products[i - a, k])
        else:
            for k in range(K):
                joint[k] = 0.0
            for e in range(lo, hi):
                x = np.float64(values[e])
                j = indices[e]
                for k in range(K):
                    joint[k] += x * np.float64(log_probs_t[j, k])
        if have_coef:
            c = coef[i]
        else:
            total = 0.0
            terms = 0.0
            for e in range(lo, hi):
                x = np.float64(values[e])
                total += x
                if x > 1.0:
                    terms += log_factorials[int(x)] if x < table_size else math.lgamma(x + 1.0)
            c = math.lgamma(total + 1.0) - terms
            coef[i] = c
        for e in range(lo, hi):
            j = indices[e]
            words[count] = j  # listed once: count moves on only when j is new
            count += 1 - seen[j]
            seen[j] = 1
        peak = -np.inf
        for k in range(K):
            v = joint[k] + c + np.float64(log_w[k])
            if has_barred and barred[k, i]:
                v = -np.inf
            joint[k] = v
            if v > peak or v != v:
                peak = v
        shift = peak if math.isfinite(peak) else 0.0
        # exp(d) for d in [floor, 0] (or NaN), vectorisable: d = m log 2 + r, |r| <= log(2)/2,
        # exp(r) by its Taylor polynomial to r**13 (within 1e-17), times 2**m from its bits
        for k in range(K):
            d = joint[k] - shift
            d = floor if d < floor else d
            m = math.floor(d * 1.4426950408889634 + 0.5)
            r = (d - m * 6.93147180369123816490e-01) - m * 1.90821492927058770002e-10
            p = 1.0 / 6227020800.0
            p = p * r + 1.0 / 479001600.0
            p = p * r + 1.0 / 39916800.0
            p = p * r + 1.0 / 3628800.0
            p = p * r + 1.0 / 362880.0
            p = p * r + 1.0 / 40320.0
            p = p * r + 1.0 / 5040.0
            p = p * r + 1.0 / 720.0
            p = p * r + 1.0 / 120.0
            p = p * r + 1.0 / 24.0
            p = p * r + 1.0 / 6.0
            p = p * r + 0.5
            p = p * r + 1.0
            joint[k] = p * r + 1.0
            powers[k] = (np.int64(m) + 1023) << 52 if d == d else 0
        norm = 0.0
        for k in range(K):
            joint[k] *= scales[k]
            norm += joint[k]
        for k in range(K):
            r = joint[k] / norm
            if has_weights:
                r *= np.float64(weights[i])
            n_k[k] += r
            resp[k] = r
        log_norm[i] = -np.inf if peak == -np.inf else math.log(norm) + shift
        for e in range(lo, hi):
            x = values[e]
            j = indices[e]
            for k in range(K):
                sums[j, k] += x * resp[k]
    return count


@jit.kernel
def _fold(total, sums, seen, words, n_words):
    """total[j] += sums[j] for the listed words, which are then cleared (sums and marks)."""
    K = sums.shape[1]
    for t in range(n_words):
        j = words[t]
        for k in range(K):
            total[j, k] += sums[j, k]
            sums[j, k] = 0.0
        seen[j] = 0


class _Scratch:
    """One thread's part: word counts (D, K), mass (K,), marks and list of the words seen.
    Clean (all zero, nothing listed) between parts; ``dirty`` while a part is in it, so
    that a part stopped by an error is wiped before the next."""

    def __init__(self, D: int, K: int, dtype: np.dtype) -> None:
        self.sums = np.zeros((D, K), dtype=dtype)
        self.n_k = np.zeros(K)
        self.seen = np.zeros(D, dtype=np.uint8)
        self.words = np.zeros(D + 1, dtype=np.int64)  # one more: the kernel writes before it counts
        self.n_words = 0
        self.dirty = False
        self.products = np.empty((0, K), dtype=dtype)

    def rows_of_products(self, n: int) -> np.ndarray:
        if self.products.shape[0] < n:
            self.products = np.empty((n, self.sums.shape[1]), dtype=self.sums.dtype)
        return self.products[:n]

    def wipe(self) -> None:
        self.sums.fill(0.0)
        self.n_k.fill(0.0)
        self.seen.fill(0)
        self.n_words = 0
        self.dirty = False


class Scratches:
    """Per-thread scratches, made on first use for a (D, K) and kept (like a Workspace)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, D: int, K: int, dtype: np.dtype) -> _Scratch:
        mine = getattr(self._local, "scratch", None)
        if mine is None or mine.sums.shape != (D, K) or mine.sums.dtype != dtype:
            mine = self._local.scratch = _Scratch(D, K, dtype)
        elif mine.dirty:
            mine.wipe()
        return mine

    def __getstate__(self) -> dict:
        return {}  # scratch: never pickled, never shipped to workers

    def __setstate__(self, state: dict) -> None:
        self._local = threading.local()


def expect(rows, log_probs_t: Tensor, log_w: Tensor, coef: np.ndarray, have_coef: bool,
           log_factorials: Tensor, barred: Tensor | None, weights: Tensor | None, floor: float,
           log_norm: Tensor, n_k: Tensor, sums_t: Tensor, scratches: Scratches) -> None:
    """One block's E-step on the CPU: each row's log-likelihood into ``log_norm`` (n,),
    its log multinomial coefficient into ``coef`` (n,) float64 unless ``have_coef``, and
    the responsibility-weighted sums added to ``n_k`` (K,) and ``sums_t`` (D, K) float64.

    rows: :class:`~bigem._core.sparse.SparseRows` (n, D); log_probs_t: (D, K) log theta^T
    in the compute dtype, contiguous; log_w: (K,) log weights; barred: (K, n) bool, the
    components a row may not belong to, or None; weights: (n,) the rows' weights, or None.
    """
    n, D = rows.shape
    K = int(log_probs_t.shape[1])
    ptr = rows.indptr.numpy()
    idx, val = rows.indices.numpy(), rows.values.numpy()
    table = log_probs_t.numpy()
    lw = log_w.to(torch.float64).numpy()
    factorials = log_factorials.numpy()
    bar = np.zeros((1, 1), dtype=np.bool_) if barred is None else barred.numpy()
    wts = np.zeros(1) if weights is None else weights.numpy()
    out = log_norm.numpy()
    total, mass = sums_t.numpy(), n_k.numpy()
    bounds = parallel.balanced_rows(ptr, max(1, rows.nnz // max(PART_ENTRIES, WORD_ENTRIES * D)))
    parts = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]
    if not parts:
        return

    def scratch() -> _Scratch:
        return scratches.get(D, K, table.dtype)

    kernels = _scipy_kernels() if SCIPY_DOT else None
    if kernels is not None:
        sptr = ptr.astype(idx.dtype, copy=False)
        sval = val.astype(table.dtype, copy=False)
        flat = table.reshape(-1)

    def compute(i: int, part: _Scratch) -> None:
        a, b = parts[i]
        part.dirty = True
        products = part.rows_of_products(b - a) if kernels is not None else part.products
        if kernels is not None:
            products.fill(0)
            kernels.csr_matvecs(b - a, D, K, sptr[a : b + 1], idx, sval, flat, products.reshape(-1))
        part.n_words = _expect_rows(a, b, ptr, idx, val, table, products, kernels is not None, lw, coef, have_coef,
                                    factorials, bar, barred is not None, wts, weights is not None, floor, out,
                                    part.sums, part.n_k, part.seen, part.words, 0)

    def combine(i: int, part: _Scratch) -> None:
        _fold(total, part.sums, part.seen, part.words, part.n_words)
        np.add(mass, part.n_k, out=mass)
        part.n_k.fill(0.0)
        part.n_words = 0
        part.dirty = False

    held = max(1, SCRATCH_BYTES // (D * K * table.itemsize))
    parallel.fold_in_order(len(parts), compute, combine, scratch, min(parallel.threads(), held))
