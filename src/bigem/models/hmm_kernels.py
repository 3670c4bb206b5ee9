"""The HMM forward-backward pass as compiled CPU kernels (numba, ``bigem[fast]``). Math only.

:func:`bigem.models.hmm.forward_backward` sends its work here when
:func:`bigem._core.jit.runs_on` its device; this computes the same quantities as its
tensor path (scaled recursion, the log-space fallback left to the caller) without
packing sequences into lanes and without a Python step per time step:

* **Rows in chunk order, per sequence.** A sequence is a contiguous range of rows of
  log_b (N, K); one pass per row computes the shifted emissions
  ``exp(log b_t - max_k log b_t)`` (kept in the posteriors' buffer until the posterior
  overwrites them), the forward vector normalised at every step in float64, and the
  log-likelihood as the sum of ``log c_t + shift_t``. The backward vectors are
  normalised at every step too; the posteriors and the expected transitions divide by
  the per-row ``r_t = alpha_t . beta_t`` as the tensor path does.
* **Underflow and impossible sequences as there.** A sequence whose normaliser falls
  under 2^-1000 or is not finite (a zero-probability transition, an emission of
  probability 0 in every state) is marked: its rows are not counted and the caller
  redoes it in log space (impossible if that gives -inf).
* **Parts fixed by the data.** Short sequences are grouped into parts of about
  ``_PART_ROWS`` rows; each part's counts go to a slot of their own and the slots are
  added in order, so the bits do not depend on the number of threads
  (:mod:`bigem._core.parallel` spreads the parts).
* **One long sequence on every core.** A sequence longer than ``2 * _SEGMENT_ROWS`` is
  cut into segments. Every segment's forward pass runs at once from a guessed entering
  vector (uniform); then, segment by segment, the true entering vector (the previous
  segment's last alpha @ A) is carried in and the steps recomputed only until the
  recomputed normalised vector equals the stored one in every bit: from there every
  later step is the same computation on the same numbers. A segment that never
  matches is recomputed whole, which is the sequential recursion, so the result is
  always exactly the sequential one (the log-likelihood's sum aside, which adds the
  segments' partial sums). The backward pass is done likewise from the other end.
  Mixing chains agree within tens of steps, so the sequential fix-up is a few hundred
  steps in a million. Measured (1e6 steps, K=8, float64, 2 cores), see
  :func:`forward_backward`'s notes and BENCHMARKS.md.

Shapes: N rows, K states, B sequences, G segments (sequences or pieces of them).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._core import jit, parallel
from .._core.workspace import Workspace

_WS = Workspace()

# Short sequences are grouped into parts of at least this many rows (one slot of counts
# each); sequences longer than twice the segment are cut into segments of about this
# many rows. Both fixed, so the parts and their sums do not depend on the thread count.
_PART_ROWS = 1 << 15
_SEGMENT_ROWS = 1 << 16
_TINY = 2.0**-1000  # a normaliser under this ran out of range: the caller redoes the sequence in log space


# ---------------------------------------------------------------------------- kernels
@jit.kernel
def _forward(log_b, eb, alpha, c, pi, A, seg_lo, seg_hi, seq_lo, g0, g1, mode, shift_sum):  # pragma: no cover - compiled
    """Forward pass over segments g0..g1-1, rows seg_lo[g]..seg_hi[g]-1.

    mode 0: from the true entering vector (pi at a sequence's first row, else the
    previous row's alpha @ A), computing eb = exp(log_b - shift) and shift_sum[g];
    mode 1: the same from a guessed (uniform) entering vector where a segment does not
    start its sequence; mode 2: from the true entering vector, eb as stored, stopping
    after the first row whose normalised alpha equals the stored one.
    Returns the rows computed (mode 2: how far the fix-up went)."""
    K = A.shape[0]
    pre = np.empty(K)
    done = 0
    for g in range(g0, g1):
        lo, hi = seg_lo[g], seg_hi[g]
        total = 0.0
        for t in range(lo, hi):
            if t == seq_lo[g]:
                for k in range(K):
                    pre[k] = pi[k]
            elif t == lo and mode == 1:
                for k in range(K):
                    pre[k] = 1.0
            else:
                for k in range(K):
                    pre[k] = 0.0
                for i in range(K):
                    a = alpha[t - 1, i]
                    for k in range(K):
                        pre[k] += a * A[i, k]
            if mode != 2:
                shift = -np.inf
                for k in range(K):
                    if log_b[t, k] > shift:
                        shift = log_b[t, k]
                if not np.isfinite(shift):
                    shift = 0.0
                total += shift
                for k in range(K):
                    eb[t, k] = np.exp(log_b[t, k] - shift)
            s = 0.0
            for k in range(K):
                pre[k] *= eb[t, k]
                s += pre[k]
            c[t] = s
            done += 1
            if mode == 2:
                same = True
                for k in range(K):
                    v = pre[k] / s
                    if v != alpha[t, k]:
                        same = False
                    alpha[t, k] = v
                if same:
                    break
            else:
                for k in range(K):
                    alpha[t, k] = pre[k] / s
        if mode != 2:
            shift_sum[g] = total
    return done


@jit.kernel
def _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g0, g1, mode):  # pragma: no cover - compiled
    """Backward pass over segments g0..g1-1 (each from its last row down), beta
    normalised at every row. mode 0: from the true vector (ones at a sequence's last
    row, else from the next row's beta); mode 1: from ones (a guess) at every segment's
    last row; mode 2: the true vector, stopping after the first row whose normalised
    beta equals the stored one. Returns the rows computed."""
    K = A.shape[0]
    v = np.empty(K)
    nb = np.empty(K)
    done = 0
    for g in range(g0, g1):
        lo, hi = seg_lo[g], seg_hi[g]
        for t in range(hi - 1, lo - 1, -1):
            done += 1
            if t == seq_hi[g] - 1 or (t == hi - 1 and mode == 1):
                for k in range(K):
                    beta[t, k] = 1.0
                continue
            for k in range(K):
                v[k] = eb[t + 1, k] * beta[t + 1, k]
                nb[k] = 0.0
            for i in range(K):
                for k in range(K):
                    nb[i] += A[i, k] * v[k]
            s = 0.0
            for k in range(K):
                s += nb[k]
            same = True
            for k in range(K):
                x = nb[k] / s
                if x != beta[t, k]:
                    same = False
                beta[t, k] = x
            if mode == 2 and same:
                break
    return done


@jit.kernel
def _posteriors(eb, alpha, beta, c, seg_lo, seg_hi, seq_lo, g0, g1, slot, log_c, ok, start, cross, tiny):  # pragma: no cover - compiled
    """Posteriors (over eb, row by row), log sum c per segment, whether it stayed in
    range, and the segments' first-state and cross sums sum_t alpha_{t-1}^T w_t added
    to start[slot] and cross[slot] for the segments that stayed in range."""
    K = eb.shape[1]
    w = np.empty(K)
    cr = np.zeros((K, K))
    st = np.zeros(K)
    for g in range(g0, g1):
        lo, hi = seg_lo[g], seg_hi[g]
        good = True
        lc = 0.0
        for i in range(K):
            st[i] = 0.0
            for k in range(K):
                cr[i, k] = 0.0
        for t in range(lo, hi):
            r = 0.0
            for k in range(K):
                r += alpha[t, k] * beta[t, k]
            ct = c[t]
            if not (ct > tiny and np.isfinite(ct) and r > 0.0 and np.isfinite(r)):
                good = False
                break
            lc += np.log(ct)
            cr_ = ct * r
            for k in range(K):
                w[k] = eb[t, k] * beta[t, k] / cr_
                eb[t, k] = alpha[t, k] * beta[t, k] / r
            if t == seq_lo[g]:
                for k in range(K):
                    st[k] += eb[t, k]
            else:
                for i in range(K):
                    a = alpha[t - 1, i]
                    for k in range(K):
                        cr[i, k] += a * w[k]
        ok[g] = good
        log_c[g] = lc
        if good:
            for i in range(K):
                start[slot, i] += st[i]
                for k in range(K):
                    cross[slot, i, k] += cr[i, k]
    return 0


# ---------------------------------------------------------------------------- driver
def _layout(lengths: np.ndarray) -> tuple[np.ndarray, ...]:
    """Segments (lo, hi, sequence's first row, sequence's end) and parts.

    Returns seg_lo, seg_hi, seq_lo, seq_hi, seg_seq (G,) int64; short parts as (g0, g1)
    boundaries of runs of whole sequences; long sequences as (g0, g1) runs of their
    segments. All fixed by ``lengths`` alone."""
    lengths = np.asarray(lengths, dtype=np.int64)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    n_seg = np.where(lengths > 2 * _SEGMENT_ROWS, -(-lengths // _SEGMENT_ROWS), 1)
    seg_seq = np.repeat(np.arange(len(lengths)), n_seg)
    first_g = np.cumsum(n_seg) - n_seg
    j = np.arange(len(seg_seq)) - first_g[seg_seq]
    L, n = lengths[seg_seq], n_seg[seg_seq]
    base, extra = L // n, L % n
    seg_lo = starts[seg_seq] + j * base + np.minimum(j, extra)
    seg_hi = seg_lo + base + (j < extra)
    short_parts, long_runs = [], []
    g, open_at, rows = 0, -1, 0
    for b in range(len(lengths)):
        if n_seg[b] > 1:
            if open_at >= 0:
                short_parts.append((open_at, g))
                open_at, rows = -1, 0
            long_runs.append((g, g + int(n_seg[b])))
        else:
            if open_at < 0:
                open_at = g
            rows += int(lengths[b])
            if rows >= _PART_ROWS:
                short_parts.append((open_at, g + 1))
                open_at, rows = -1, 0
        g += int(n_seg[b])
    if open_at >= 0:
        short_parts.append((open_at, g))
    return seg_lo, seg_hi, starts[seg_seq], ends[seg_seq], seg_seq, short_parts, long_runs


def forward_backward(log_b: Tensor, lengths: np.ndarray, startprob: Tensor, transmat: Tensor,
                     need_trans: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The scaled forward-backward pass of :func:`bigem.models.hmm.forward_backward` on
    the CPU, rows in chunk order: (gamma (N, K) in log_b's dtype, start (K,), trans
    (K, K), loglik (B,), bad (B,) bool). Sequences marked ``bad`` ran out of the scaled
    range: their gamma rows, counts and log-likelihoods are left for the caller to redo
    in log space (their counts are not included).

    Why segments with a fix-up for long sequences, and not the tensor path's transfer
    matrices: a transfer matrix costs K^3 per step (K times a forward step) and still
    needs the ordinary pass after it; the guessed-start segments cost one forward and one
    backward step per row, spread over the threads, plus a short sequential fix-up.
    """
    N, K = log_b.shape
    dtype = log_b.dtype
    lengths = np.asarray(lengths, dtype=np.int64)
    B = len(lengths)
    lb = log_b.detach().contiguous().numpy()
    gamma = torch.empty(N, K, dtype=dtype)
    eb = gamma.numpy()
    alpha = _WS.get("alpha", (N, K), torch.float64, torch.device("cpu")).numpy()
    beta = _WS.get("beta", (N, K), torch.float64, torch.device("cpu")).numpy()
    c = _WS.get("c", (N,), torch.float64, torch.device("cpu")).numpy()
    pi = startprob.detach().double().cpu().numpy()
    A = np.ascontiguousarray(transmat.detach().double().cpu().numpy())
    seg_lo, seg_hi, seq_lo, seq_hi, seg_seq, short_parts, long_runs = _layout(lengths)
    G = len(seg_lo)
    shift = np.zeros(G)
    log_c = np.zeros(G)
    ok = np.zeros(G, dtype=np.bool_)
    n_slots = len(short_parts) + sum(g1 - g0 for g0, g1 in long_runs)
    start_s = np.zeros((n_slots, K))
    cross_s = np.zeros((n_slots, K, K))
    workers = parallel.threads()

    def spread(count, task):
        parallel.fold_in_order(count, lambda i, _: task(i), lambda i, _: None, lambda: None, workers)

    def short(i):
        g0, g1 = short_parts[i]
        _forward(lb, eb, alpha, c, pi, A, seg_lo, seg_hi, seq_lo, g0, g1, 0, shift)
        _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g0, g1, 0)
        _posteriors(eb, alpha, beta, c, seg_lo, seg_hi, seq_lo, g0, g1, i, log_c, ok, start_s, cross_s, _TINY)

    if short_parts:
        spread(len(short_parts), short)
    slot = len(short_parts)
    for g0, g1 in long_runs:
        spread(g1 - g0, lambda i: _forward(lb, eb, alpha, c, pi, A, seg_lo, seg_hi, seq_lo, g0 + i, g0 + i + 1, 1,
                                           shift))
        for g in range(g0 + 1, g1):  # the true entering vectors, carried in order
            _forward(lb, eb, alpha, c, pi, A, seg_lo, seg_hi, seq_lo, g, g + 1, 2, shift)
        spread(g1 - g0, lambda i: _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g0 + i, g0 + i + 1, 1))
        for g in range(g1 - 2, g0 - 1, -1):
            _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g, g + 1, 2)
        spread(g1 - g0, lambda i, s=slot: _posteriors(eb, alpha, beta, c, seg_lo, seg_hi, seq_lo, g0 + i,
                                                      g0 + i + 1, s + i, log_c, ok, start_s, cross_s, _TINY))
        slot += g1 - g0
    # per sequence: in range in every segment, log-likelihood the segments' sums in order
    seg_ll = shift + log_c
    loglik = np.zeros(B)
    np.add.at(loglik, seg_seq, seg_ll)  # in segment order (unbuffered, sequential)
    bad = np.zeros(B, dtype=np.bool_)
    np.logical_or.at(bad, seg_seq, ~ok)
    bad |= ~np.isfinite(loglik)
    # slots of counts: a short part's hold only its good sequences; a long sequence's
    # segments hold theirs, dropped whole when the sequence is bad
    keep = np.ones(n_slots, dtype=np.bool_)
    slot = len(short_parts)
    for g0, g1 in long_runs:
        keep[slot : slot + g1 - g0] = not bad[seg_seq[g0]]
        slot += g1 - g0
    start = _in_order(start_s[keep])
    trans = A * _in_order(cross_s[keep]) if need_trans else np.zeros((K, K))
    loglik[bad] = 0.0
    return (gamma, torch.from_numpy(start), torch.from_numpy(trans), torch.from_numpy(loglik),
            torch.from_numpy(bad))


def _in_order(parts: np.ndarray) -> np.ndarray:
    """The sum of parts (P, ...) added one after another in index order."""
    total = np.zeros(parts.shape[1:])
    for p in parts:
        total += p
    return total
