"""The per-row part of the multinomial E-step in one compiled pass (numba, CPU).

Between its two sparse products (X @ log(theta)^T for the sums x . log theta_k, and
X^T @ R for the word counts; scipy's kernels, see :mod:`.multinomial`) the E-step's
work is per row: add the row's log multinomial coefficient and the log weights, take
the log-sum-exp over the K components, the responsibilities, times the row's weight,
and their masses n_k. The tensor path does these as a dozen whole-block tensor
operations (each a pass over the (n, K) block) and derives the coefficients in a pass
of their own; here one loop over the rows does them all, reading each row's K products
once and its entries' counts once (only where no earlier pass kept the coefficients:
streamed sources derive them every pass).

Arithmetic is float64 (the products are read in the compute dtype), so in float64 it
is the tensor path's to rounding and in float32 it is more exact. exp is a polynomial
the compiler vectorises (within an ulp or two of the correctly rounded value), where
the C library's exp is called one number at a time.

Measured by CPU time on one thread, in units of one X @ W over the data (float32,
K = 20; 5e4 documents, 3.7e6 entries; a shared machine): the whole E-step takes 2.14
against the tensor path's 2.27 with the coefficients kept (in memory), 2.55 against
2.85 when each pass derives them (streamed); the two products are about 1 each. A
kernel that also does both products in the same pass over the entries was tried and
dropped: 4.4 against 2.5 (2e5 documents, 1e7 entries), since its two random-access (D, K)
tables then compete for the same cache and numba's loops over K were slower than scipy's;
so was running each run of rows whole (product, this pass, X^T @ R) on one thread: 2.30
against 2.14.

Parallel and reproducible: rows are cut into parts of ``PART_ROWS`` (from the row count
alone, never the thread count), which the threads take as they come free; each row's
outputs are its own, and the parts' masses n_k are added in part order, so everything
is the same bits on any number of threads.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from .._core import jit, parallel

# Rows per part: the parts' masses are added in their order (a part of 4096 rows at
# K = 20 takes about a quarter of a millisecond; handing one to a thread, microseconds).
PART_ROWS = 4096


@jit.kernel
def _exp(d, bits):
    """exp of every entry of ``d`` in place, for d in [-708, 0] or NaN: d = m log 2 + r
    with |r| <= log(2) / 2, exp(r) by its Taylor polynomial to r**13 (remainder below
    1e-17), times 2**m made from its bits (``bits``: an int64 scratch as long as d).
    A plain loop the compiler vectorises, where the C library's exp takes one number
    at a time."""
    for t in range(d.shape[0]):
        x = d[t]
        m = math.floor(x * 1.4426950408889634 + 0.5)
        r = (x - m * 6.93147180369123816490e-01) - m * 1.90821492927058770002e-10
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
        d[t] = p * r + 1.0
        bits[t] = (np.int64(m) + 1023) << 52 if x == x else 0  # NaN stays NaN (times 0)
    scales = bits.view(np.float64)
    for t in range(d.shape[0]):
        d[t] *= scales[t]


@jit.kernel
def _log_coefficients(a, b, indptr, values, log_factorials, coef):
    """log N! - sum_j log x_j! of rows a..b-1 into ``coef``: counts below the table's
    length are looked up (log 0! = log 1! = 0 there), larger ones through lgamma."""
    last = log_factorials.shape[0] - 1
    for i in range(a, b):
        total = 0.0
        terms = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            x = np.float64(values[e])
            total += x
            if x > last:  # rare: beyond the table
                terms += math.lgamma(x + 1.0)
            else:  # counts of 0 and 1 (and below) add log 0! = 0
                terms += log_factorials[int(x) if x > 1.0 else 0]
        coef[i] = math.lgamma(total + 1.0) - terms


@jit.kernel
def _log_ratios(a, joint, log_w, coef, base, barred, has_barred, floor, ratios, peaks):
    """Rows a..a+len(peaks)-1: each row's log-joints log w_k + coefficient + baseline +
    product (-inf for the components ``barred`` (K, n) bars) less the row's largest (0
    when that is not finite), floored at ``floor``, into ``ratios`` (row-major); that
    largest into ``peaks``."""
    K = joint.shape[1]
    for t in range(peaks.shape[0]):
        i = a + t
        c = coef[i] + base[i]
        peak = -np.inf
        for k in range(K):
            v = (np.float64(joint[i, k]) + c) + log_w[k]
            if has_barred and barred[k, i]:
                v = -np.inf
            ratios[t * K + k] = v
            if v > peak or v != v:
                peak = v
        peaks[t] = peak
        shift = peak if math.isfinite(peak) else 0.0
        for k in range(K):
            d = ratios[t * K + k] - shift
            ratios[t * K + k] = floor if d < floor else d


@jit.kernel
def _responsibilities(a, ratios, peaks, weights, has_weights, joint, log_norm, n_k):
    """Rows a..: from the exps of their log-ratios, each row's responsibilities times its
    weight into ``joint`` and added to ``n_k`` (rows in order), its log-likelihood (-inf
    for a row no component explains) into ``log_norm``."""
    K = joint.shape[1]
    for t in range(peaks.shape[0]):
        i = a + t
        norm = 0.0
        for k in range(K):
            norm += ratios[t * K + k]
        weight = np.float64(weights[i]) if has_weights else 1.0
        for k in range(K):
            r = ratios[t * K + k] / norm
            if has_weights:
                r *= weight
            n_k[k] += r
            joint[i, k] = r
        peak = peaks[t]
        log_norm[i] = -np.inf if peak == -np.inf else math.log(norm) + (peak if math.isfinite(peak) else 0.0)


@jit.kernel
def add_into(total, part):
    """total += part, element by element (flat arrays; a float32 part is widened to
    float64 exactly, so the sums are numpy's bit for bit). A loop the compiler vectorises:
    57 against 134 microseconds for numpy's add of a (2e4, 20) float32 run into float64,
    which casts through a buffer (one thread). Each run of X^T @ R is added so, in order."""
    for i in range(total.shape[0]):
        total[i] += part[i]


class RowPass:
    """The per-row steps of one block (:meth:`run`), in parts (:meth:`part`) that may run
    on any thread: each row's outputs are its own.

    rows: the block's :class:`~bigem._core.sparse.SparseRows` (their counts give the
    coefficients); joint (n, K) row-major: each row's products x . log theta_k, replaced
    by its responsibilities times its weight; log_w: (K,) log weights; coef (n,) float64:
    the rows' log multinomial coefficients, derived here unless ``have_coef``; barred:
    (K, n) bool, the components each row may not belong to, or None; weights: (n,) the
    rows' weights, or None; floor: the floor of exp's argument; log_norm (n,): each
    row's log-likelihood, written; base (n,) float64: each row's baseline, added to every
    component's product (see :func:`baseline`).
    """

    def __init__(self, rows, joint: Tensor, log_w: Tensor, coef: np.ndarray, have_coef: bool,
                 log_factorials: Tensor, barred: Tensor | None, weights: Tensor | None, floor: float,
                 log_norm: Tensor, base: np.ndarray) -> None:
        self.ptr, self.val = rows.indptr.numpy(), rows.values.numpy()
        self.out, self.joint = log_norm.numpy(), joint.numpy()
        self.log_w = log_w.to(torch.float64).numpy()
        self.factorials = log_factorials.numpy()
        self.coef, self.have_coef = coef, have_coef
        self.barred = np.zeros((1, 1), dtype=np.bool_) if barred is None else barred.numpy()
        self.has_barred = barred is not None
        self.weights = np.zeros(1, dtype=self.joint.dtype) if weights is None else weights.numpy()
        self.has_weights = weights is not None
        self.floor = floor
        self.base = base

    def run(self, n: int) -> np.ndarray:
        """Rows 0..n-1 in parts of ``PART_ROWS`` on the threads of
        :mod:`~bigem._core.parallel`; their masses (K,) float64, the parts' added in order
        (the same bits on any number of threads)."""
        K = self.joint.shape[1]
        starts = list(range(0, n, PART_ROWS))
        masses = np.zeros((len(starts), K))
        size = min(PART_ROWS, n)

        def scratch() -> tuple[np.ndarray, np.ndarray, np.ndarray]:  # one thread's, for all its parts
            return np.empty(size * K), np.empty(size * K, dtype=np.int64), np.empty(size)

        def one(i: int, buffers) -> None:
            self.part(starts[i], min(starts[i] + PART_ROWS, n), *buffers, masses[i])

        parallel.each(len(starts), one, scratch, parallel.threads())  # parts to threads as they come free
        n_k = np.zeros(K)
        for mass in masses:  # in part order
            n_k += mass
        return n_k

    def part(self, a: int, b: int, ratios: np.ndarray, bits: np.ndarray, peaks: np.ndarray, mass: np.ndarray) -> None:
        """Rows a..b-1 (at most ``PART_ROWS``), their masses added to ``mass`` (K,);
        ratios, bits, peaks: scratch of at least (b - a) * K, (b - a) * K, b - a."""
        if not self.have_coef:
            _log_coefficients(a, b, self.ptr, self.val, self.factorials, self.coef)
        m = (b - a) * self.joint.shape[1]
        _log_ratios(a, self.joint, self.log_w, self.coef, self.base, self.barred, self.has_barred, self.floor,
                    ratios[:m], peaks[: b - a])
        _exp(ratios[:m], bits[:m])
        _responsibilities(a, ratios[:m], peaks[: b - a], self.weights, self.has_weights, self.joint, self.out, mass)


def normalise(rows, joint: Tensor, log_w: Tensor, coef: np.ndarray, have_coef: bool, log_factorials: Tensor,
              barred: Tensor | None, weights: Tensor | None, floor: float, log_norm: Tensor,
              base: np.ndarray) -> Tensor:
    """Responsibilities of a block, in place in ``joint`` (n, K) row-major, and the rest
    as :class:`RowPass` says, its parts on the threads of :mod:`~bigem._core.parallel`.
    Returns the masses n_k (K,) float64, the parts' added in order (the same bits on any
    number of threads)."""
    n = joint.shape[0]
    return torch.from_numpy(RowPass(rows, joint, log_w, coef, have_coef, log_factorials, barred, weights, floor,
                                    log_norm, base).run(n))


@jit.kernel
def _baseline(a, b, indptr, indices, values, centre, out):
    """out[i] = sum of values * centre[indices] over row i's entries, rows a..b-1, in float64."""
    for i in range(a, b):
        total = 0.0
        for e in range(indptr[i], indptr[i + 1]):
            total += np.float64(values[e]) * centre[indices[e]]
        out[i] = total


def baseline(rows, centre: Tensor, parts: int) -> Tensor:
    """X @ centre (n,) float64 for sparse rows X and a (D,) float64 vector, each row's
    sum in float64 in entry order (the same bits on any number of threads), the rows cut
    into ``parts`` blocks of about equal entries on the threads of :mod:`~bigem._core.parallel`."""
    n = rows.shape[0]
    ptr, idx, val = rows.indptr.numpy(), rows.indices.numpy(), rows.values.numpy()
    c = centre.to(torch.float64).contiguous().numpy()
    out = np.zeros(n)
    bounds = parallel.balanced_rows(ptr, parts)
    parallel.run([lambda a=a, b=b: _baseline(a, b, ptr, idx, val, c, out)
                  for a, b in zip(bounds, bounds[1:]) if b > a] or [lambda: None])
    return torch.from_numpy(out)


def log_coefficients(rows, log_factorials: Tensor, parts: int) -> Tensor:
    """log N! - sum_j log x_j! of each row (n,) float64, by the same kernel as
    :func:`normalise` (so every pass derives the same bits), the rows cut into ``parts``
    blocks of about equal entries on the threads of :mod:`~bigem._core.parallel`."""
    n = rows.shape[0]
    ptr, val = rows.indptr.numpy(), rows.values.numpy()
    factorials = log_factorials.numpy()
    coef = np.empty(n)
    bounds = parallel.balanced_rows(ptr, parts)
    parallel.run([lambda a=a, b=b: _log_coefficients(a, b, ptr, val, factorials, coef)
                  for a, b in zip(bounds, bounds[1:]) if b > a] or [lambda: None])
    return torch.from_numpy(coef)
