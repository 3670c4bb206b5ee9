"""The HMM forward-backward pass as compiled CPU kernels (numba, ``bigem[fast]``). Math only.

:func:`bigem.models.hmm.forward_backward` sends its work here when
:func:`bigem._core.jit.runs_on` its device; this computes the same quantities as its
tensor path (scaled recursion, the log-space fallback left to the caller) without
packing sequences into lanes and without a Python step per time step:

* **Rows in chunk order, per sequence.** A sequence is a contiguous range of rows. The
  scaled emissions ``exp(log b_t - max_k log b_t)`` come in (torch's vectorised exp,
  or a categorical emission's per-symbol table) and are overwritten by the
  posteriors; the forward and backward vectors are float64, normalised at a
  sequence's first and last rows and every ``_EVERY`` rows (the mass only shrinks
  between); the log-likelihood is the sum of ``log c_t + shift_t``. The posteriors and
  the expected transitions divide by the per-row ``r_t = alpha_t . beta_t`` as the
  tensor path does; the transitions' sums are BLAS products of alpha with
  ``w = eb beta / (c r)`` over runs of rows that stay in cache. The per-row products
  are written as dot products into scalar accumulators: with (K,) scratch arrays as
  accumulators every multiply-add went through memory, 1.7x slower (measured, K=8).
* **Underflow and impossible sequences as there.** A sequence whose normaliser falls
  under 2^-1000 or is not finite (a zero-probability transition, an emission of
  probability 0 in every state) is marked: its rows are not counted and the caller
  redoes it in log space (impossible if that gives -inf).
* **Parts fixed by the data.** Short sequences are grouped into parts by the window
  of ``_PART_ROWS`` rows they start in; each part's counts go to a slot of their own and the slots are
  added in order, so the bits do not depend on the number of threads
  (:mod:`bigem._core.parallel` spreads the parts over ``parallel.threads()``).
* **One long sequence on every core.** A sequence longer than ``2 * _SEGMENT_ROWS`` is
  cut into segments. Every segment's forward pass runs at once from a guessed entering
  vector (uniform); then, segment by segment, the true entering vector (the previous
  segment's last alpha @ A) is carried in and the rows recomputed only until a
  normalised row equals the stored one in every bit: from there every later row is
  the same computation on the same numbers. A segment that never matches is
  recomputed whole, which is the sequential recursion, so the posteriors are always
  exactly the sequential ones (the sums of the log-likelihood and the counts aside,
  which add the segments' parts in order). The backward pass likewise from the other
  end. On the benchmark's sticky 8-state chain the fix-up took 60-125 rows per
  segment of 65,536. Measured at 1e6 steps, K=8, float64, 2 threads (the first
  version of these kernels, exp inside, on a quiet machine): 0.10 s against 0.18 s for
  one sequential pass, and 0.21 s for the tensor path with its transfer matrices
  (K^3 per step before the ordinary pass).

Shapes: N rows, K states, B sequences, G segments (sequences or pieces of them).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from .._core import jit, parallel
from .._core.workspace import Workspace

_WS = Workspace()

# Short sequences are grouped into parts by windows of this many rows (one slot of
# counts each: the sequences that start in the window); sequences longer than twice the segment are cut into segments of about this
# many rows. Both fixed, so the parts and their sums do not depend on the thread count.
_PART_ROWS = 1 << 15
_SEGMENT_ROWS = 1 << 16
# Normalise the forward and backward vectors every this many rows: the mass only shrinks
# between (emissions <= 1, stochastic rows), and one normalisation per row put a sum and
# a division on every step's dependency chain. Both vectors may be this many rows from
# their last normalisation at once, so r = alpha . beta can be 2 x 7 rows' loss below
# 1 and 1 / (c r) 15 rows' above: at 8 the float64 range holds wherever the tensor
# path's does (its in-range transitions, down to about 2^-57 a row at K=3), and a
# sequence beyond it is redone in log space (at 16, r underflowed there).
_EVERY = 8
_CROSS_ROWS = 8192  # rows per product of the expected transitions (both operands stay in cache)
_TINY = 2.0**-1000  # a normaliser under this ran out of range: the caller redoes the sequence in log space


# ---------------------------------------------------------------------------- kernels
@jit.helper
def _normalise_into(v, out, t):  # pragma: no cover - compiled
    """out[t] = v / sum(v). Returns (the sum, whether out[t] held exactly these values
    already): a recomputed segment stops where it meets its guessed run."""
    s = 0.0
    for k in range(v.shape[0]):
        s += v[k]
    same = True
    for k in range(v.shape[0]):
        x = v[k] / s
        if x != out[t, k]:
            same = False
        out[t, k] = x
    return s, same


@jit.kernel
def _forward(shift, eb, alpha, c, pi, AT, seg_lo, seg_hi, seq_lo, seq_hi, g0, g1, mode, shift_sum, every):  # pragma: no cover - compiled
    """Forward pass over segments g0..g1-1, rows seg_lo[g]..seg_hi[g]-1, normalised at a
    sequence's first and last rows and every ``every`` rows from its first (c = 1
    between), so the log-likelihood is the sum of log c and the shifts.

    eb: the scaled emissions exp(log b - shift) of every row. mode 0: from the true
    entering vector (pi at a sequence's first row, else the previous row's alpha @ A),
    adding up shift_sum[g]; mode 1: the same from a guessed (uniform) entering vector
    where a segment does not start its sequence; mode 2: from the true entering vector,
    stopping after the first normalised row whose alpha equals the stored one (every
    later row is then the same computation on the same numbers).
    AT: the transitions transposed. Returns the rows computed (mode 2: how far the
    fix-up went)."""
    K = AT.shape[0]
    pre = np.empty(K)
    done = 0
    for g in range(g0, g1):
        lo, hi, first, last = seg_lo[g], seg_hi[g], seq_lo[g], seq_hi[g] - 1
        total = 0.0
        since = (lo - first) % every  # rows since the last normalised one (no division per row)
        for t in range(lo, hi):
            if t == first:
                for k in range(K):
                    pre[k] = pi[k] * eb[t, k]
            elif t == lo and mode == 1:
                for k in range(K):
                    pre[k] = eb[t, k]
            else:  # pre_k = alpha_{t-1} . A[:, k]: a scalar accumulator each (held in a register)
                for k in range(K):
                    acc = 0.0
                    for i in range(K):
                        acc += alpha[t - 1, i] * AT[k, i]
                    pre[k] = acc * eb[t, k]
            if mode != 2:
                total += shift[t]
            done += 1
            normalise = since == 0 or t == last
            since = since + 1 if since + 1 < every else 0
            if not normalise:
                c[t] = 1.0
                for k in range(K):
                    alpha[t, k] = pre[k]
                continue
            c[t], same = _normalise_into(pre, alpha, t)
            if mode == 2 and same:
                break
        if mode != 2:
            shift_sum[g] = total
    return done


@jit.kernel
def _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g0, g1, mode, every):  # pragma: no cover - compiled
    """Backward pass over segments g0..g1-1 (each from its last row down), beta
    normalised every ``every`` rows from a sequence's last row (the posteriors divide
    by alpha . beta, so its scale is free). mode 0: from the true vector (ones at a
    sequence's last row, else from the next row's beta); mode 1: from ones (a guess) at
    every segment's last row; mode 2: the true vector, stopping after the first
    normalised row whose beta equals the stored one. Returns the rows computed."""
    K = A.shape[0]
    v = np.empty(K)
    nb = np.empty(K)
    done = 0
    for g in range(g0, g1):
        lo, hi, last = seg_lo[g], seg_hi[g], seq_hi[g] - 1
        since = (last - (hi - 1)) % every
        for t in range(hi - 1, lo - 1, -1):
            done += 1
            normalise = since == 0
            since = since + 1 if since + 1 < every else 0
            if t == last or (t == hi - 1 and mode == 1):
                for k in range(K):
                    beta[t, k] = 1.0
                continue
            for k in range(K):
                v[k] = eb[t + 1, k] * beta[t + 1, k]
            for i in range(K):  # nb = A @ v: a scalar accumulator each
                acc = 0.0
                for k in range(K):
                    acc += A[i, k] * v[k]
                nb[i] = acc
            if not normalise:
                for k in range(K):
                    beta[t, k] = nb[k]
                continue
            _, same = _normalise_into(nb, beta, t)
            if mode == 2 and same:
                break
    return done


@jit.kernel
def _posteriors(eb, alpha, beta, c, seg_lo, seg_hi, seq_lo, g0, g1, slot, log_c, ok, start, tiny):  # pragma: no cover - compiled
    """Row by row: the posteriors alpha beta / r (r = alpha . beta) over eb, and
    w = eb beta / (c r) over beta (0 at a sequence's first row), whose products with
    the previous rows' alpha sum to the expected transitions (:func:`_cross`); the sum
    of log c per segment, whether every normaliser stayed in range (if not, w and alpha
    are 0 over the segment), and the first-state sums added to start[slot]."""
    K = eb.shape[1]
    st = np.zeros(K)
    for g in range(g0, g1):
        lo, hi = seg_lo[g], seg_hi[g]
        good = True
        lc = 0.0
        for k in range(K):
            st[k] = 0.0
        for t in range(lo, hi):
            r = 0.0
            for k in range(K):
                r += alpha[t, k] * beta[t, k]
            ct = c[t]
            if not (ct > tiny and ct < np.inf and r > 2.2250738585072014e-308 and r < np.inf):
                good = False
                break
            if ct != 1.0:
                lc += np.log(ct)
            inv_r = 1.0 / r
            inv_cr = 0.0 if t == seq_lo[g] else inv_r / ct
            for k in range(K):
                b = beta[t, k]
                beta[t, k] = eb[t, k] * b * inv_cr
                eb[t, k] = alpha[t, k] * b * inv_r
            if t == seq_lo[g]:
                for k in range(K):
                    st[k] += eb[t, k]
        ok[g] = good
        log_c[g] = lc
        if good:
            for k in range(K):
                start[slot, k] += st[k]
        else:  # alpha too: out of range it may hold inf or NaN, and NaN * 0 is NaN in the cross sums
            for t in range(lo, hi):
                for k in range(K):
                    beta[t, k] = 0.0
                    alpha[t, k] = 0.0
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
    first_g = np.concatenate([first_g, [len(seg_seq)]])
    is_long = n_seg > 1
    runs = _runs(starts, is_long)
    short_parts = [(int(first_g[a]), int(first_g[b])) for a, b in runs if not is_long[a]]
    long_runs = [(int(first_g[a]), int(first_g[b])) for a, b in runs if is_long[a]]
    return seg_lo, seg_hi, starts[seg_seq], ends[seg_seq], seg_seq, short_parts, long_runs


def scale(log_b: Tensor) -> tuple[Tensor, Tensor]:
    """(exp(log b - shift) (N, K) in log_b's dtype, shift (N,) float64): shift is each
    row's largest log b (0 where none is finite), so the best state's entry is exactly
    1. torch's vectorised kernels (a scalar exp per entry in a kernel took 3x as long)."""
    log_b = log_b.detach()
    shift = torch.nan_to_num_(log_b.amax(1), nan=0.0, posinf=0.0, neginf=0.0)
    return torch.sub(log_b, shift[:, None]).exp_(), shift.double()


def _runs(starts: np.ndarray, alone: np.ndarray | None = None) -> list[tuple[int, int]]:
    """Runs (b0, b1) of consecutive sequences whose first rows lie in the same window of
    ``_PART_ROWS`` rows (a sequence marked ``alone`` is a run of its own): parts fixed
    by the data, found without a Python step per sequence."""
    B = len(starts)
    if B == 0:
        return []
    key = starts // _PART_ROWS
    new = np.ones(B, dtype=np.bool_)
    new[1:] = key[1:] != key[:-1]
    if alone is not None:
        new[1:] |= alone[1:] | alone[:-1]
    bounds = np.concatenate([np.flatnonzero(new), [B]])
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]


def forward_backward(scaled: tuple[Tensor, Tensor], lengths: np.ndarray, startprob: Tensor, transmat: Tensor,
                     need_trans: bool = True) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The scaled forward-backward pass of :func:`bigem.models.hmm.forward_backward` on
    the CPU, rows in chunk order, from ``scaled = (eb, shift)`` (see :func:`scale`; eb is
    overwritten by the posteriors): (gamma (N, K) in eb's dtype, start (K,), trans
    (K, K), loglik (B,), bad (B,) bool). Sequences marked ``bad`` ran out of the scaled
    range: their gamma rows, counts and log-likelihoods are left for the caller to redo
    in log space (their counts are not included).

    Long sequences: guessed-start segments and a fix-up (see the module's notes), not
    the tensor path's transfer matrices, which cost K^3 per step (K times a forward
    step) and still need the ordinary pass after them.
    """
    gamma, shift_rows = scaled
    N, K = gamma.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    B = len(lengths)
    eb = gamma.contiguous().numpy()
    lb = shift_rows.contiguous().numpy()
    alpha = _WS.get("alpha", (N, K), torch.float64, torch.device("cpu")).numpy()
    beta = _WS.get("beta", (N, K), torch.float64, torch.device("cpu")).numpy()
    c = _WS.get("c", (N,), torch.float64, torch.device("cpu")).numpy()
    pi = startprob.detach().double().cpu().numpy()
    A = np.ascontiguousarray(transmat.detach().double().cpu().numpy())
    AT = np.ascontiguousarray(A.T)
    seg_lo, seg_hi, seq_lo, seq_hi, seg_seq, short_parts, long_runs = _layout(lengths)
    G = len(seg_lo)
    shift = np.zeros(G)
    log_c = np.zeros(G)
    ok = np.zeros(G, dtype=np.bool_)
    n_slots = len(short_parts) + sum(g1 - g0 for g0, g1 in long_runs)
    start_s = np.zeros((n_slots, K))
    cross_s = np.zeros((n_slots, K, K))
    w = beta  # the posteriors kernel turns beta into w in place
    seq_first = np.zeros(N + 1, dtype=np.bool_)
    seq_first[np.cumsum(lengths) - lengths] = True
    workers = parallel.threads()

    def spread(count, task):
        parallel.fold_in_order(count, lambda i, _: task(i), lambda i, _: None, lambda: None, workers)

    def cross(slot: int, lo: int, hi: int) -> None:
        """The slot's sum of alpha_{t-1}^T w_t over rows lo..hi-1 (w is 0 at sequences'
        first rows, so pairs across sequences add nothing): products over runs of
        ``_CROSS_ROWS`` rows that stay in cache, added in order in float64."""
        if not need_trans:
            return
        start_row = lo if lo == 0 or seq_first[lo] else lo - 1  # a cut segment pairs with the row before it
        for i in range(start_row, hi - 1, _CROSS_ROWS):
            j = min(i + _CROSS_ROWS, hi - 1)
            cross_s[slot] += alpha[i:j].T @ w[i + 1 : j + 1]

    def short(i):
        g0, g1 = short_parts[i]
        _forward(lb, eb, alpha, c, pi, AT, seg_lo, seg_hi, seq_lo, seq_hi, g0, g1, 0, shift, _EVERY)
        _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g0, g1, 0, _EVERY)
        _posteriors(eb, alpha, beta, c, seg_lo, seg_hi, seq_lo, g0, g1, i, log_c, ok, start_s, _TINY)
        cross(i, int(seg_lo[g0]), int(seg_hi[g1 - 1]))

    def segment(slot, g):
        _posteriors(eb, alpha, beta, c, seg_lo, seg_hi, seq_lo, g, g + 1, slot, log_c, ok, start_s, _TINY)
        cross(slot, int(seg_lo[g]), int(seg_hi[g]))

    if short_parts:
        spread(len(short_parts), short)
    slot = len(short_parts)
    for g0, g1 in long_runs:
        spread(g1 - g0, lambda i: _forward(lb, eb, alpha, c, pi, AT, seg_lo, seg_hi, seq_lo, seq_hi, g0 + i,
                                           g0 + i + 1, 1, shift, _EVERY))
        for g in range(g0 + 1, g1):  # the true entering vectors, carried in order
            _forward(lb, eb, alpha, c, pi, AT, seg_lo, seg_hi, seq_lo, seq_hi, g, g + 1, 2, shift, _EVERY)
        spread(g1 - g0, lambda i: _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g0 + i, g0 + i + 1, 1, _EVERY))
        for g in range(g1 - 2, g0 - 1, -1):
            _backward(eb, beta, A, seg_lo, seg_hi, seq_hi, g, g + 1, 2, _EVERY)
        spread(g1 - g0, lambda i, s=slot: segment(s + i, g0 + i))
        slot += g1 - g0
    # per sequence: in range in every segment, log-likelihood the segments' sums in order
    loglik, bad = _per_sequence(shift + log_c, ok, seg_seq, B)
    # slots of counts: a short part's hold only its good sequences; a long sequence's
    # segments hold theirs, dropped whole when the sequence is bad
    keep = np.ones(n_slots, dtype=np.bool_)
    slot = len(short_parts)
    for g0, g1 in long_runs:
        keep[slot : slot + g1 - g0] = not bad[seg_seq[g0]]
        slot += g1 - g0
    start = _in_order(start_s[keep])
    trans = A * _in_order(cross_s[keep])
    return (gamma, torch.from_numpy(start), torch.from_numpy(trans), torch.from_numpy(loglik),
            torch.from_numpy(bad))


@jit.kernel
def _log_c(c, seg_lo, seg_hi, g0, g1, log_c, ok, tiny):  # pragma: no cover - compiled
    """Per segment: the sum of log c and whether every normaliser stayed in range."""
    for g in range(g0, g1):
        lc = 0.0
        good = True
        for t in range(seg_lo[g], seg_hi[g]):
            ct = c[t]
            if not (ct > tiny and ct < np.inf):
                good = False
                break
            if ct != 1.0:
                lc += np.log(ct)
        log_c[g] = lc
        ok[g] = good
    return 0


def log_likelihood(scaled: tuple[Tensor, Tensor], lengths: np.ndarray, startprob: Tensor,
                   transmat: Tensor) -> tuple[Tensor, Tensor]:
    """The forward pass alone, as :func:`forward_backward` runs it: (loglik (B,) float64,
    bad (B,) bool), bad marking the sequences left for the caller to redo in log space
    (their loglik is 0 here). What scoring needs: no backward pass, no posteriors."""
    eb_t, shift_rows = scaled
    N, K = eb_t.shape
    lengths = np.asarray(lengths, dtype=np.int64)
    eb, lb = eb_t.contiguous().numpy(), shift_rows.contiguous().numpy()
    alpha = _WS.get("alpha", (N, K), torch.float64, torch.device("cpu")).numpy()
    c = _WS.get("c", (N,), torch.float64, torch.device("cpu")).numpy()
    pi = startprob.detach().double().cpu().numpy()
    AT = np.ascontiguousarray(transmat.detach().double().cpu().numpy().T)
    seg_lo, seg_hi, seq_lo, seq_hi, seg_seq, short_parts, long_runs = _layout(lengths)
    G = len(seg_lo)
    shift, log_c, ok = np.zeros(G), np.zeros(G), np.zeros(G, dtype=np.bool_)
    workers = parallel.threads()

    def spread(count, task):
        parallel.fold_in_order(count, lambda i, _: task(i), lambda i, _: None, lambda: None, workers)

    def short(i):
        g0, g1 = short_parts[i]
        _forward(lb, eb, alpha, c, pi, AT, seg_lo, seg_hi, seq_lo, seq_hi, g0, g1, 0, shift, _EVERY)
        _log_c(c, seg_lo, seg_hi, g0, g1, log_c, ok, _TINY)

    if short_parts:
        spread(len(short_parts), short)
    for g0, g1 in long_runs:
        spread(g1 - g0, lambda i: _forward(lb, eb, alpha, c, pi, AT, seg_lo, seg_hi, seq_lo, seq_hi, g0 + i,
                                           g0 + i + 1, 1, shift, _EVERY))
        for g in range(g0 + 1, g1):
            _forward(lb, eb, alpha, c, pi, AT, seg_lo, seg_hi, seq_lo, seq_hi, g, g + 1, 2, shift, _EVERY)
        spread(g1 - g0, lambda i: _log_c(c, seg_lo, seg_hi, g0 + i, g0 + i + 1, log_c, ok, _TINY))
    loglik, bad = _per_sequence(shift + log_c, ok, seg_seq, len(lengths))
    return torch.from_numpy(loglik), torch.from_numpy(bad)


def _per_sequence(seg_ll: np.ndarray, ok: np.ndarray, seg_seq: np.ndarray, B: int) -> tuple[np.ndarray, np.ndarray]:
    """Each sequence's log-likelihood (its segments' sums added in order; 0 where bad) and
    whether it ran out of range in any segment."""
    if len(seg_ll) == B:  # no sequence was cut
        loglik, bad = seg_ll, ~ok
    else:
        loglik = np.zeros(B)
        np.add.at(loglik, seg_seq, seg_ll)  # in segment order (unbuffered, sequential)
        bad = np.zeros(B, dtype=np.bool_)
        np.logical_or.at(bad, seg_seq, ~ok)
    bad |= ~np.isfinite(loglik)
    loglik[bad] = 0.0
    return loglik, bad


def _in_order(parts: np.ndarray) -> np.ndarray:
    """The sum of parts (P, ...) added one after another in index order."""
    total = np.zeros(parts.shape[1:])
    for p in parts:
        total += p
    return total


# ---------------------------------------------------------------------------- Viterbi
@jit.kernel
def _viterbi(x, log_pi, log_A, starts, b0, b1, back, path, logprob):  # pragma: no cover - compiled
    """Max-product over sequences b0..b1-1 (rows starts[b]..starts[b+1]-1 of x, float64
    log-emissions): each state's best predecessor (the highest index on ties, as
    hmmlearn's backtracking keeps the larger (score, state) pair) into back, the best
    path into path (its last state the lowest index on ties, hmmlearn's max_element)
    and its log-probability into logprob; the same operations as the tensor path
    (max_i (delta_i + log A_ij), then + x_j)."""
    K = log_A.shape[0]
    delta = np.empty(K)
    nxt = np.empty(K)
    for b in range(b0, b1):
        lo, hi = starts[b], starts[b + 1]
        for k in range(K):
            delta[k] = log_pi[k] + x[lo, k]
        for t in range(lo + 1, hi):
            for j in range(K):
                best = delta[0] + log_A[0, j]
                arg = 0
                for i in range(1, K):
                    v = delta[i] + log_A[i, j]
                    if v >= best:
                        best, arg = v, i
                nxt[j] = best + x[t, j]
                back[t, j] = arg
            for k in range(K):
                delta[k] = nxt[k]
        best, arg = delta[0], 0
        for k in range(1, K):
            if delta[k] > best:
                best, arg = delta[k], k
        logprob[b] = best
        path[hi - 1] = arg
        for t in range(hi - 1, lo, -1):
            path[t - 1] = back[t, path[t]]
    return 0


def viterbi(log_b: Tensor, lengths: np.ndarray, startprob: Tensor, transmat: Tensor) -> tuple[Tensor, Tensor]:
    """:func:`bigem.models.hmm.viterbi` on the CPU, one pass per sequence: (log-probability
    of each sequence's best path (B,) float64, states (N,) int64). Sequences are spread
    over the threads in parts of whole sequences fixed by the data (a sequence's result
    is its own: the same bits on any thread count); a long sequence is one pass on one
    thread, its back-pointers (N, K) int32."""
    lengths = np.asarray(lengths, dtype=np.int64)
    N, K = log_b.shape
    x = log_b.detach().double().contiguous().numpy()
    with np.errstate(divide="ignore"):
        log_pi = np.log(startprob.detach().double().cpu().numpy())
        log_A = np.ascontiguousarray(np.log(transmat.detach().double().cpu().numpy()))
    starts = np.concatenate([[0], np.cumsum(lengths)])
    back = _WS.get("back", (N, K), torch.int32, torch.device("cpu")).numpy()
    path = torch.empty(N, dtype=torch.int64)
    logprob = torch.empty(len(lengths), dtype=torch.float64)
    parts = _runs(starts[:-1])
    p, lp = path.numpy(), logprob.numpy()
    parallel.fold_in_order(len(parts), lambda i, _: _viterbi(x, log_pi, log_A, starts, *parts[i], back, p, lp),
                           lambda i, _: None, lambda: None, parallel.threads())
    return logprob, path
