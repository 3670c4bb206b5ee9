"""Sequences longer than a batch: cut into pieces that stream like batches. Math only.

A sequence longer than a batch's rows is cut into consecutive pieces, each a batch of
its own, so that memory stays bounded by the batch however long the sequence is. Two
passes per E-step make each piece's forward-backward exact, both in row order (a
file is never read backwards, and the pieces of one pass are independent, so any
engine runs them as it runs batches):

1. **Transfers.** Each piece j gives its transfer matrix ``N_j = A diag(b_t0) U_j``
   (``U_j = prod_t A diag(b_t)`` over its later rows; the first piece's is
   ``diag(pi * b_t0) U_0``), up to scale: only its direction matters. A chain that
   forgets its start within a few dozen rows has N_j = u v^T to rounding, found from
   the piece's two ends alone (:func:`transfer`); otherwise the segment machinery of
   :mod:`bigem.models.hmm` multiplies it out (the piece cut into ~sqrt(rows) lanes,
   their transfers chained).
2. **Links** (:func:`link`, on the host, in log space): the filtered distribution
   entering each piece, ``a_j ~ a_{j-1} N_j``, and the backward vector leaving it,
   ``b_{j-1} ~ N_j b_j`` (``b_last = 1``): prefix and suffix products of K x K
   matrices, one per piece.
3. **Posteriors.** Each piece's forward-backward starts from the vector entering it
   and ends on the vector leaving it (``forward_backward(enter=, leave=)``); its
   log-likelihood is the piece's given the rows before it, and the pieces' add up to
   the sequence's. The transition into a piece is counted with that piece.

Viterbi does the same in max-plus (:func:`best_transfer`, :func:`best_path`): the
pieces' best-path transfers fix the state where the best path crosses each boundary,
and each piece is decoded between its two fixed states.

This is the segment chaining that :func:`bigem.models.hmm.forward_backward` does
within a batch, lifted across batches; its answer equals the uncut pass to rounding.
The cost is a second pass over the pieces per E-step (a second read of data that is
not held in memory); its work is the two ends' few dozen rows per piece where the
chain forgets, else K times a forward step's per row. On the CPU with numba the
pieces' forward-backward runs in the compiled kernels
(``HMMModel._piece_compiled``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from . import hmm


@dataclass(frozen=True)
class Links:
    """Each piece's entering and leaving vectors (log, float64, on the host), and which
    pieces belong to a sequence impossible under the parameters."""

    log_enter: Tensor  # (P, K); NaN rows for first pieces (they start from startprob)
    log_leave: Tensor  # (P, K); zeros for last pieces
    dead: np.ndarray  # (P,) bool


# Rows of a piece's ends tried for the shortcut of :func:`transfer`, doubled up to a
# quarter of the piece and at most _FORGET_MAX (a Python step a row: a chain that never
# forgets, such as a left-right one, costs those steps before the piece is multiplied out).
_FORGET_ROWS = 64
_FORGET_MAX = 4096
# Vectors from every start agree to this (relative to their largest entry): the chain
# has forgotten where it started, to rounding.
_AGREE = 1e-14


def transfer(rows, n_rows: int, startprob: Tensor, transmat: Tensor, first: bool) -> Tensor:
    """log N_j of a piece of ``n_rows`` rows, float64 (K, K) on the rows' device, scaled
    to a sum near 1: see the module docstring. ``rows(a, b)``: the piece's log
    emissions of rows a..b-1, (b - a, K) (the shortcut below computes only its ends).
    ``first``: the piece that starts its sequence (its rows index the start state).

    A long piece of a chain that forgets its start has a transfer of rank one to
    rounding, N_j = u v^T: every entering state leads to the same distribution v at its
    last row, and every leaving vector to the same backward vector u before its first.
    So the forward pass over its last rows from each of the K states, and the backward
    pass over its first rows, give v and u once the K vectors agree to ``_AGREE`` (the
    kernels' fix-up rests on the same forgetting): a few dozen rows on ordinary
    chains, against K^3 work on every row. A chain that does not forget within a
    quarter of the piece (zero transitions, a short piece) takes the whole product.
    """
    found = _rank_one(rows, n_rows, transmat, first) if n_rows >= 4 * _FORGET_ROWS and forgets(transmat) else None
    return found if found is not None else _full(rows(0, n_rows), startprob, transmat, first)


def forgets(transmat: Tensor) -> bool:
    """Whether the chain forgets where it started, given time: some power of A has no
    zero (A is primitive; then A^n has none for every n from (K-1)^2 + 1 on). A
    reducible or periodic chain, such as a left-right one, never does, and the ends of
    its pieces are not tried."""
    K = int(transmat.shape[0])
    P = (transmat > 0).double()
    for _ in range(max(1, math.ceil(math.log2((K - 1) ** 2 + 1)))):  # P -> the pattern of A^(2^r)
        P = ((P @ P) > 0).double()
    return bool((P > 0).all())


def _rank_one(rows, L: int, transmat: Tensor, first: bool) -> Tensor | None:
    """log (u v^T) where the piece forgets its ends within a quarter of its rows, else None."""
    m = _FORGET_ROWS
    while m <= min(L // 4, _FORGET_MAX):
        v = _forgotten(rows(L - m, L), transmat, forward=True)
        if v is not None:
            break
        m *= 2
    else:
        return None
    if first:  # the rows of the first piece's transfer index the start state: their scale is unused
        u = torch.ones_like(v)
    else:
        m = _FORGET_ROWS
        while m <= min(L // 4, _FORGET_MAX):
            u = _forgotten(rows(0, m), transmat, forward=False)
            if u is not None:
                break
            m *= 2
        else:
            return None
    with np.errstate(divide="ignore"):
        return torch.log(u / u.sum())[:, None] + torch.log(v / v.sum())[None, :]


def _forgotten(log_b: Tensor, transmat: Tensor, forward: bool) -> Tensor | None:
    """From each of the K states: the forward vector at the last of these rows (or the
    backward vector at the first), normalised; their common value if they agree."""
    lb = log_b.double()
    eb = torch.exp(lb - torch.nan_to_num(lb.amax(1, keepdim=True), nan=0.0, posinf=0.0, neginf=0.0))
    A = transmat.to(lb.device, torch.float64)
    K = A.shape[0]
    V = torch.eye(K, dtype=torch.float64, device=lb.device)
    if forward:  # row i: from state i at the row before these
        for t in range(eb.shape[0]):
            V = (V @ A) * eb[t][None, :]
            V = V / V.sum(1, keepdim=True)
    else:  # column i: from state i after the last of these rows
        for t in range(eb.shape[0] - 1, -1, -1):
            V = A @ (eb[t][:, None] * V)
            V = V / V.sum(0, keepdim=True)
        V = V.T
    if not bool(torch.isfinite(V).all()):
        return None
    spread = (V - V[:1]).abs().max()
    return V[0] if bool(spread <= _AGREE * V[0].max()) else None


def _full(log_b: Tensor, startprob: Tensor, transmat: Tensor, first: bool) -> Tensor:
    """log N_j multiplied out over every row of the piece, in float64: the piece cut
    into ~sqrt(rows) lanes (:func:`bigem.models.hmm.make_lanes`), each lane's transfer
    with every row scaled on its own (a log scale per row: an entering state that
    explains the rows far worse than another keeps its row, where one scale for the
    whole matrix would round it to zero, and a left-right chain's links would break),
    then the lanes chained in log space."""
    L, K = log_b.shape
    if bool((transmat == 0).any()):  # zeros the chain cannot come back from: log space at once
        return _full_log(log_b, startprob, transmat, first)
    dev, f64 = log_b.device, torch.float64
    lanes = hmm.make_lanes(np.asarray([L]), dev)
    x = lanes.pack(log_b.to(f64))
    eb = torch.exp(x - torch.nan_to_num(x.amax(1, keepdim=True), nan=0.0, posinf=0.0, neginf=0.0))
    A = transmat.to(dev, f64)
    with np.errstate(divide="ignore"):
        log_A = torch.log(A)
        log_pi = torch.log(startprob.to(dev, f64))
    S, T = lanes.n_lanes, len(lanes.counts)
    V = torch.eye(K, dtype=f64, device=dev).repeat(S, 1, 1)  # V[s] ~ prod_{t >= 1} A diag(eb_t) of lane s
    R = torch.zeros(S, K, dtype=f64, device=dev)  # V[s]'s row i is scaled by exp(-R[s, i])
    with hmm._single_thread(dev):
        for t in range(1, T):
            n, o = lanes.counts[t], lanes.offsets[t]
            V[:n] = (V[:n] @ A) * eb[o : o + n, None, :]
            if t % 4 == 0 or t == T - 1:
                _rescale_rows(V[:n], R[:n])
        _rescale_rows(V, R)
    with np.errstate(divide="ignore"):
        log_U = torch.log(V) + R[:, :, None]
    N = _chained(lanes, x, log_pi, log_A, log_U, first, _log_product)
    # an entry far below its row's largest rounds to zero within a lane; where the chain
    # cannot come back from such a zero, the links would carry it on (a state that an
    # outlier at a piece's end makes unlikely, under a left-right chain): a zero that
    # the chain's and the emissions' zeros do not explain sends the piece to log space
    if not bool(torch.isfinite(log_b).all()) or bool((torch.isinf(N) & _reachable(A, L, log_pi, first)).any()):
        return _full_log(log_b, startprob, transmat, first)
    return N


def _reachable(A: Tensor, L: int, log_pi: Tensor, first: bool) -> Tensor:
    """(K, K) bool: where a piece of L rows whose emissions never vanish has a positive
    transfer, from the chain's zeros alone (A's pattern to the power L; the first
    piece's rows are its start states, after L - 1 steps)."""
    step = (A > 0).double()
    power = torch.eye(A.shape[0], dtype=torch.float64, device=A.device)
    n = L - 1 if first else L
    while n:  # the pattern of step^n by squaring
        if n & 1:
            power = ((power @ step) > 0).double()
        step = ((step @ step) > 0).double()
        n >>= 1
    if first:
        power = power * torch.isfinite(log_pi).double()[:, None]
    return power > 0


def _full_log(log_b: Tensor, startprob: Tensor, transmat: Tensor, first: bool, total: bool = True) -> Tensor:
    """:func:`_full` in log space throughout (about three times its work): each lane's
    transfer a logsumexp per step, so no entry rounds to zero. ``total=False``: the
    max-plus transfer instead (Viterbi's, :func:`best_transfer`)."""
    dev = log_b.device
    lanes = hmm.make_lanes(np.asarray([log_b.shape[0]]), dev)
    x = lanes.pack(log_b.double())
    with np.errstate(divide="ignore"):
        log_A = torch.log(transmat.to(dev, torch.float64))
        log_pi = torch.log(startprob.to(dev, torch.float64))
    lane_transfers = hmm._best_transfers(lanes, x, log_A, total=total)  # (S, K, K), a lane's step 0 emission excluded
    return _chained(lanes, x, log_pi, log_A, lane_transfers, first, _log_product if total else _max_plus)


def _chained(lanes, x: Tensor, log_pi: Tensor, log_A: Tensor, lane_transfers: Tensor, first: bool, product) -> Tensor:
    """A piece's transfer from its lanes' (``lane_transfers``, (S, K, K) in log space, a
    lane's step 0 excluded), chained in order by ``product`` (log-sum-exp for the
    forward-backward pass, max-plus for Viterbi): each lane enters by A and its step
    0's emission; the first piece's first lane by the start probabilities."""
    K = log_A.shape[0]
    order = lanes.chain[0][lanes.chain[0] >= 0] if lanes.chain.shape[0] else np.zeros(1, dtype=np.int64)
    head = int(order[0])  # lane s's step 0 is packed row s
    if first:
        N = torch.full((K, K), -torch.inf, dtype=torch.float64, device=x.device)
        N.diagonal().copy_(log_pi + x[head])
    else:
        N = log_A + x[head][None, :]
    N = product(N, lane_transfers[head])
    for s in order[1:].tolist():
        N = product(product(N, log_A + x[s][None, :]), lane_transfers[s])
        top = N.max()
        N = N - torch.where(torch.isfinite(top), top, torch.zeros_like(top))  # no read-back per lane
    return N


def _rescale_rows(V: Tensor, R: Tensor) -> None:
    """Each row of each matrix of V to sum 1, its log scale added to R (in place; a
    zero row stays zero, with scale -inf)."""
    total = V.sum(2)
    with np.errstate(divide="ignore"):
        R.add_(torch.log(total))
    V.div_(torch.where(total > 0, total, torch.ones_like(total))[:, :, None])


def _log_product(P: Tensor, Q: Tensor) -> Tensor:
    """log(exp(P) @ exp(Q)) of (K, K) log matrices (-inf for zeros)."""
    return torch.logsumexp(P[:, :, None] + Q[None, :, :], 1)


def link(log_N: Tensor, first: np.ndarray) -> Links:
    """Every piece's :class:`Links` from the pieces' log transfers (P, K, K) in order
    (``first``: (P,) bool, the pieces that start a sequence)."""
    log_N = log_N.to("cpu", torch.float64)
    P, K = log_N.shape[0], log_N.shape[1]
    enter = torch.full((P, K), float("nan"), dtype=torch.float64)
    leave = torch.zeros((P, K), dtype=torch.float64)
    dead = np.zeros(P, dtype=bool)
    starts = np.flatnonzero(first).tolist() + [P]
    for p0, p1 in zip(starts, starts[1:]):
        a = _unit(torch.logsumexp(log_N[p0], 0))  # 1^T N_0: the filtered distribution leaving piece 0
        ok = not bool(torch.isnan(a).any())  # -inf entries are states it cannot be in; NaN: no state at all
        for p in range(p0 + 1, p1):
            enter[p] = a
            a = _unit(torch.logsumexp(a[:, None] + log_N[p], 0))
            ok = ok and not bool(torch.isnan(a).any())
        b = torch.zeros(K, dtype=torch.float64)
        for p in range(p1 - 1, p0, -1):
            b = _unit(torch.logsumexp(log_N[p] + b[None, :], 1))
            leave[p - 1] = b
            ok = ok and not bool(torch.isnan(b).any())
        dead[p0:p1] = not ok
    return Links(enter, leave, dead)


def _unit(log_v: Tensor) -> Tensor:
    """log v normalised to sum 1 (NaN where v is all zero: an impossible sequence)."""
    top = log_v.max()
    if not bool(torch.isfinite(top)):
        return torch.full_like(log_v, float("nan"))
    return log_v - (top + torch.log(torch.exp(log_v - top).sum()))


# ---------------------------------------------------------------------------- Viterbi
@dataclass(frozen=True)
class Path:
    """Where the best path crosses between pieces: the state at the row before each
    piece (-1 for first pieces) and at its last row (-1 for last pieces: free)."""

    enter: np.ndarray  # (P,) int64
    end: np.ndarray  # (P,) int64


def best_transfer(rows, n_rows: int, startprob: Tensor, transmat: Tensor, first: bool) -> Tensor:
    """Max-plus T_j of a piece, float64 (K, K): T[i, k] is the best log-score of a path
    from state i at the row before the piece to state k at its last row (the first
    piece's rows index its start state), up to a constant. Viterbi's counterpart of
    :func:`transfer`: where the best paths from every state merge within a few dozen
    rows at each end, T = a_i + b_k from those ends alone; else multiplied out."""
    found = (_rank_one_best(rows, n_rows, transmat, first) if n_rows >= 4 * _FORGET_ROWS and forgets(transmat)
             else None)
    return found if found is not None else _full_log(rows(0, n_rows), startprob, transmat, first, total=False)


def _rank_one_best(rows, L: int, transmat: Tensor, first: bool) -> Tensor | None:
    """a_i + b_k where the best paths merge within a quarter of the piece at each end."""
    with np.errstate(divide="ignore"):
        log_A = torch.log(transmat.double())
    b = _ends_merge(rows, L, log_A, forward=False)
    if b is None:
        return None
    a = torch.zeros_like(b) if first else _ends_merge(rows, L, log_A, forward=True)
    if a is None:
        return None
    return a[:, None] + b[None, :]


def _ends_merge(rows, L: int, log_A: Tensor, forward: bool) -> Tensor | None:
    """From each of the K states: the best scores over the piece's first rows (from the
    state at the row before them) or to its last rows' end state (backward); their
    common shape (a_i, or b_k) once every state's scores differ by a constant."""
    m = _FORGET_ROWS
    while m <= min(L // 4, _FORGET_MAX):
        x = rows(0, m).double() if forward else rows(L - m, L).double()
        log_A = log_A.to(x.device)
        K = log_A.shape[0]
        H = torch.full((K, K), -torch.inf, dtype=torch.float64, device=x.device)
        H.diagonal().fill_(0.0)
        if forward:  # H[i, s]: from i before these rows to s at the last of them
            for t in range(m):
                H = (H[:, :, None] + log_A[None]).amax(1) + x[t][None, :]
        else:  # H[k, s]: from s before these rows to k at the last of them
            for t in range(m - 1, -1, -1):
                H = (H[:, None, :] + (log_A + x[t][None, :])[None]).amax(2)
        top = H.amax(1, keepdim=True)
        if bool(torch.isfinite(top).all()):
            shape = H - top  # every start's scores less their best
            scale = 1.0 + float(top.abs().max())
            if bool(torch.isfinite(shape).all()) and float((shape - shape[:1]).abs().max()) <= 1e-9 * scale:
                # forward: the head's scores from i are a_i plus a common shape: a_i = top_i;
                # backward: scores to end state k are a common shape plus b_k: b_k = top_k
                return top[:, 0] - top.max()
        m *= 2
    return None


def _max_plus(P: Tensor, Q: Tensor) -> Tensor:
    return (P[:, :, None] + Q[None, :, :]).amax(1)


def best_path(T: Tensor, first: np.ndarray) -> Path:
    """The states where the best path of each cut sequence crosses between its pieces,
    from the pieces' max-plus transfers (P, K, K) in order (ties as hmmlearn's Viterbi
    breaks them: the last state the lowest, a crossing the highest)."""
    T = T.to("cpu", torch.float64).numpy()
    P = T.shape[0]
    enter = np.full(P, -1, dtype=np.int64)
    end = np.full(P, -1, dtype=np.int64)
    starts = np.flatnonzero(first).tolist() + [P]
    for p0, p1 in zip(starts, starts[1:]):
        delta = [T[p0].max(0)]
        for p in range(p0 + 1, p1):
            delta.append((delta[-1][:, None] + T[p]).max(0))
        state = int(np.argmax(delta[-1]))
        for p in range(p1 - 1, p0, -1):
            before = delta[p - p0 - 1] + T[p][:, state]
            state = len(before) - 1 - int(np.argmax(before[::-1]))
            enter[p] = end[p - 1] = state
    return Path(enter, end)
