"""Hidden Markov models: Baum-Welch E-step, M-step, Viterbi and sampling. Math only.

The E-step of a batch of whole sequences (:class:`SequenceChunk`) returns
:class:`HMMStats`: expected start counts, expected transition counts, the emission's
posterior-weighted statistics and the log-likelihood, all float64 and additive, so
the EM driver and engines run HMMs exactly as they run mixtures.

How the forward-backward pass is organised (measured choices, see BENCHMARKS.md):

* **Scaled probabilities on max-shifted emissions.** Each step's emission
  likelihoods are ``exp(log b_t - max_k log b_t)`` (the largest is exactly 1), and
  the forward vector is renormalised at every step; ``log c_t + max_k log b_t`` sum
  to the log-likelihood. This is Rabiner's scaling, so a step is one (lanes x K) @
  (K x K) product and three elementwise operations, against a logsumexp over a
  (lanes, K, K) tensor in log space (about 4x the work and temporaries). Outliers
  cannot underflow it: the shift keeps the best state's emission at 1. A sequence
  whose normaliser still underflows to 0 (a zero-probability transition, or
  emission gaps of more than ~700 nats next to forbidden transitions) is recomputed
  by the log-space reference :func:`forward_backward_log`; only if that also gives
  -inf is it impossible, and it is left out of the statistics (counted, so the
  caller can warn).
* **Packed lanes, one batched operation per time step.** Sequences (or segments of
  them, below) are lanes sorted by length, laid out time-major so that the lanes
  alive at step t are one contiguous block: every step is one product over all
  lanes, and padding costs nothing. Python runs once per time step of the longest
  lane, not once per sequence.
* **Long sequences are cut into segments.** A sequence of T steps becomes
  ~sqrt(T) lanes of ~sqrt(T) steps (only where a batch has few long sequences: with
  many lanes per step there are few Python steps to save, see ``_MAX_CUT_SEQUENCES``). One pass computes each segment's transfer
  matrix prod_t A diag(b_t) (K x K, renormalised every step), a short sequential
  pass over segments chains them into the exact filtered distribution entering
  each segment and the backward vector leaving it, then the ordinary batched
  forward-backward runs on all segments at once. The result equals the unsegmented
  recursion to rounding (per-step normalisation makes the boundary scale
  irrelevant; see :func:`_normalisers`). We chose this over an associative scan
  in the log semiring: the scan costs O(T K^3 log T) with (T, K, K) temporaries,
  segments cost O(T K^3) once plus O(T K^2) with (T, K) temporaries and about
  3 sqrt(T) Python steps; at T = 1e6, K = 8 that is ~3000 batched steps.
* **A sequence longer than a batch is cut into pieces**, each a batch of its own,
  linked across batches the same way (:mod:`bigem.models.hmm_pieces`): memory stays
  bounded by the batch however long the sequence.
* **Statistics in a few large products.** The expected transition counts are
  A * (alpha_{t-1}^T @ w_t) summed over all lanes and steps as one GEMM; emission
  statistics are posterior-weighted GEMMs over all rows (the emission's component).

On the CPU with numba (``bigem[fast]``), :func:`forward_backward` and :func:`viterbi`
hand their work to compiled kernels (:mod:`bigem.models.hmm_kernels`: rows in chunk
order, no lanes, the same quantities); what follows describes the tensor path, which
GPUs (and CPUs without numba, or with ``BIGEM_JIT=0``) take.

Shapes: N rows in a chunk, K states, S lanes, D features.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._core import jit, parallel
from .._core.errors import ImpossibleSequenceWarning, NumericalError
from .._core import numerics
from .._core.numerics import matmul
from .._core.protocols import Note, Objective, Report, Step
from .._core.stats import additive, counted, least
from .._core.types import SequenceChunk
from .._core.workspace import Workspace
from . import components, hmm_kernels, hmm_pieces

# Per-thread scratch for the (N, K) recursions: fresh large allocations cost page
# faults every iteration (docs/architecture.md, Speed).
_WS = Workspace()

# Lanes no longer than this are never split; longer sequences are cut into segments
# of about sqrt(rows in the chunk) steps (at least this many).
_MIN_SEGMENT = 256
# At most this many sequences of a batch are cut, its longest. Cutting saves Python
# steps but its transfer-matrix pass does K times a forward step's work per lane; with
# many lanes the work outweighs the steps saved (measured, K=8: 1000 sequences of 1000
# steps ran 2x faster uncut, 100 of 10,000 broke even, 20 of 50,000 ran 3x faster cut).
_MAX_CUT_SEQUENCES = 64


def _upload(a: np.ndarray, device: torch.device) -> Tensor:
    """Host data (a layout built from the batch's lengths) on ``device``. Without waiting:
    a blocking copy to a GPU waits for everything queued before it, and the host's copy
    of pageable memory is staged before the call returns, so the array may go at once."""
    return torch.from_numpy(np.ascontiguousarray(a)).to(device, non_blocking=True)


# Rows between normalisations must keep c * r (the smallest product the scaled recursion
# divides by) above this power of two when no possible sequence may leave the range
# (float32's normal range ends at 2^-126, float64's at 2^-1022; margins for rounding).
_RANGE_FLOOR = {torch.float32: -118.0, torch.float64: -1000.0}
_range_checked: list = [None]  # (startprob, transmat, dtype, answer) of the last check


def _keeps_in_range(startprob: Tensor, transmat: Tensor, dtype: torch.dtype) -> bool:
    """Whether no sequence of positive probability can leave the scaled recursion's range
    under these start and transition probabilities, whatever the emissions: then a row
    the recursion cannot represent belongs to an impossible sequence, and the log-space
    redo would only confirm it (nothing to read back, nothing to redo).

    With m the smallest start or transition probability, every state receives at least
    m of the mass entering a step, and the state with the row's best emission weighs
    exactly 1 after the shift (a cut sequence's segments start from the exact entering
    distribution times A, and end on backward vectors of the same kind, so the same holds
    for them); so between two normalisations (every E steps) the forward
    mass c falls at most to m^E, each normalised backward entry is at least m/K and falls
    by at most m a step, and alpha . beta = r >= m^(E+1)/K, c r >= m^(E+2)/K. The check
    asks for c r above ``_RANGE_FLOOR``: with K = 8, float32 needs m >= ~2^-19 (1.7e-6),
    float64 m >= ~2^-55 (2.4e-17). One read-back per set of parameters (kept for the next batch).
    """
    held = _range_checked[0]
    if held is not None and held[0] is startprob and held[1] is transmat and held[2] == dtype:
        return held[3]
    K = int(startprob.shape[0])
    smallest = float(torch.minimum(startprob.to(dtype).min(), transmat.to(dtype).min()))
    every = _EVERY[dtype]
    answer = smallest > 0 and (every + 2) * math.log2(smallest) - math.log2(K) >= _RANGE_FLOOR[dtype]
    _range_checked[0] = (startprob, transmat, dtype, answer)
    return answer


@dataclass(frozen=True, slots=True)
class HMMParams:
    """startprob (K,), transmat (K, K), float64; emission: the emission's parameters."""

    startprob: Tensor
    transmat: Tensor
    emission: Any

    @property
    def n_components(self) -> int:
        return int(self.startprob.shape[0])

    def to(self, device: torch.device | str) -> HMMParams:
        return HMMParams(self.startprob.to(device), self.transmat.to(device), self.emission.to(device))


@additive
@dataclass(frozen=True, slots=True)
class HMMStats:
    """Additive E-step statistics, float64.

    start (K,): expected first states; trans (K, K): expected transitions; emission:
    the emission's statistics; loglik: sum of the possible sequences' log-likelihoods;
    rows / sequences: their steps and count; impossible: sequences of zero probability
    (left out), first_impossible: the smallest such sequence index (or -1). The counts
    are Python ints on the CPU; on an accelerator 0-d tensors on the device, so a pass
    reads nothing back per batch (the M-step reads them once).
    """

    start: Tensor
    trans: Tensor
    emission: Any
    loglik: Tensor
    rows: int | Tensor = counted()
    sequences: int | Tensor = counted()
    impossible: int | Tensor = counted()
    first_impossible: int | Tensor = least()


@additive
@dataclass(frozen=True, slots=True)
class HMMScore:
    """Additive totals that score sequences: the log-likelihood of the possible ones,
    and how many are impossible (-inf) with the first of them (-1: none). A batch's are
    tensors on its device, so a pass over a GPU reads nothing back per batch;
    :meth:`settled` reads them once."""

    loglik: Tensor | float
    impossible: Tensor | int = counted()
    first_impossible: Tensor | int = least()

    def settled(self) -> HMMScore:
        """The totals as Python numbers (one read-back)."""
        values = [self.loglik, self.impossible, self.first_impossible]
        tensors = [v for v in values if isinstance(v, Tensor)]
        if tensors:
            device = tensors[0].device
            read = iter(torch.stack([v.to(device, torch.float64).reshape(()) for v in tensors]).tolist())
            values = [next(read) if isinstance(v, Tensor) else v for v in values]
        return HMMScore(float(values[0]), int(values[1]), int(values[2]))


# ---------------------------------------------------------------------------- layout
@dataclass(frozen=True)
class Lanes:
    """Time-major packed layout of a batch of sequences, cut into lanes (segments).

    Lanes are sorted by length (longest first); packed row ``offsets[t] + i`` is step t
    of lane i, and ``counts[t]`` lanes are alive at step t. ``perm[p]`` is the chunk
    row of packed row p. Lanes of a sequence cut into segments are chained through
    ``chain`` ((n_long, max_segments) lane indices, -1 where a sequence has fewer).
    """

    perm: Tensor  # (N,) int32 (int64 past 2^31 rows)
    inverse: Tensor  # (N,) same: packed row of each chunk row
    counts: list[int]  # lanes alive at each step
    offsets: list[int]
    lane_len: np.ndarray  # (S,)
    lane_seq: Tensor  # (S,) int64 sequence of each lane
    lane_first: Tensor  # (S,) bool: first segment of its sequence
    lane_last: Tensor  # (S,) bool: last segment of its sequence
    row_seq: Tensor  # (N,) int32 (as perm): sequence of each packed row
    chain: np.ndarray  # (n_long, max_segments) lane indices or -1
    uniform: bool  # every lane has the same length
    transposed: bool  # lane i covers rows i*L .. (i+1)*L - 1: packing is a transpose
    last_rows: Tensor  # (S,) packed row of each lane's last step

    def pack(self, rows: Tensor, out: Tensor | None = None) -> Tensor:
        """Chunk-row order -> packed (time-major) order (into ``out`` if given)."""
        if out is None:
            out = torch.empty_like(rows)
        if self.transposed:
            S, L = self.n_lanes, int(self.lane_len[0])
            out.view(L, S, -1).copy_(rows.view(S, L, -1).transpose(0, 1))
            return out
        return torch.index_select(rows, 0, self.perm, out=out)

    def unpack(self, packed: Tensor) -> Tensor:
        """Packed order -> chunk-row order."""
        if self.transposed:  # a copy always: with one lane (or one step) a reshape would be a view of
            S, L = self.n_lanes, int(self.lane_len[0])  # ``packed``, often a reused buffer
            out = torch.empty((S * L,) + tuple(packed.shape[1:]), dtype=packed.dtype, device=packed.device)
            out.view(S, L, -1).copy_(packed.view(L, S, -1).transpose(0, 1))
            return out
        return torch.index_select(packed, 0, self.inverse)

    @property
    def n_lanes(self) -> int:
        return int(self.lane_len.shape[0])


def make_lanes(lengths: np.ndarray, device: torch.device, segment: int | None = None) -> Lanes:
    """Packed layout of sequences of ``lengths``; sequences longer than ``segment`` are cut."""
    lengths = np.asarray(lengths, dtype=np.int64)
    n_rows = int(lengths.sum())
    if segment is None:
        # never shorter than the longest uncut sequence: its steps run anyway
        uncut = np.sort(lengths)[-_MAX_CUT_SEQUENCES - 1] if len(lengths) > _MAX_CUT_SEQUENCES else 0
        segment = max(_MIN_SEGMENT, int(math.ceil(math.sqrt(n_rows))), int(uncut))
    seq_start = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    n_seg = np.maximum(1, -(-lengths // segment))
    seq_of = np.repeat(np.arange(len(lengths)), n_seg)
    seg_idx = np.arange(len(seq_of)) - np.repeat(np.cumsum(n_seg) - n_seg, n_seg)
    base, extra = lengths[seq_of] // n_seg[seq_of], lengths[seq_of] % n_seg[seq_of]
    lane_len = base + (seg_idx < extra)
    lane_start_in_seq = seg_idx * base + np.minimum(seg_idx, extra)
    lane_start = seq_start[seq_of] + lane_start_in_seq
    order = np.argsort(-lane_len, kind="stable")
    lane_len, lane_start = lane_len[order], lane_start[order]
    seq_of, seg_idx = seq_of[order], seg_idx[order]
    n_lanes, t_max = len(lane_len), int(lane_len[0])
    # lanes alive at step t: those longer than t (lane_len sorted descending)
    counts = _alive(lane_len, t_max)
    offsets = np.concatenate([[0], np.cumsum(counts)[:-1]])
    t_of = np.repeat(np.arange(t_max), counts)
    lane_of = np.arange(n_rows) - np.repeat(offsets, counts)
    perm = lane_start[lane_of] + t_of
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(n_rows)
    first = seg_idx == 0
    last = seg_idx == n_seg[seq_of] - 1
    long_seqs = np.nonzero(n_seg > 1)[0]
    chain = np.full((len(long_seqs), int(n_seg.max()) if len(long_seqs) else 0), -1, dtype=np.int64)
    if len(long_seqs):
        where = np.searchsorted(long_seqs, seq_of)
        is_long = n_seg[seq_of] > 1
        chain[where[is_long], seg_idx[is_long]] = np.nonzero(is_long)[0]
    as_t = lambda a: _upload(a, device)  # noqa: E731
    uniform = bool(lane_len[-1] == lane_len[0])
    transposed = uniform and bool(np.array_equal(lane_start, np.arange(n_lanes) * t_max))
    last_rows = offsets[lane_len - 1] + np.arange(n_lanes)
    # per-row indices in int32 where they fit: the E-step keeps a batch's layout between
    # iterations, and int64 would hold 24 bytes per row of every cached batch
    index = np.int32 if n_rows < 2**31 else np.int64
    return Lanes(
        perm=as_t(perm.astype(index)),
        inverse=as_t(inverse.astype(index)),
        counts=[int(c) for c in counts],
        offsets=[int(o) for o in offsets],
        lane_len=lane_len,
        lane_seq=as_t(seq_of),
        lane_first=as_t(first),
        lane_last=as_t(last),
        row_seq=as_t(seq_of[lane_of].astype(index)),
        chain=chain,
        uniform=uniform,
        transposed=transposed,
        last_rows=as_t(last_rows),
    )


def _alive(lane_len: np.ndarray, t_max: int) -> np.ndarray:
    """Lanes longer than t for every t (lane_len sorted descending)."""
    hist = np.bincount(lane_len, minlength=t_max + 1)
    return len(lane_len) - np.cumsum(hist)[:t_max]


# ---------------------------------------------------------------------------- kernels
@dataclass
class Posteriors:
    """What one forward-backward pass gives: per-row posteriors (chunk row order),
    expected counts, and per-sequence log-likelihoods (-inf: impossible)."""

    gamma: Tensor  # (N, K) compute dtype, zero rows for impossible sequences
    start: Tensor  # (K,) float64
    trans: Tensor  # (K, K) float64
    loglik: Tensor  # (B,) float64


def forward_backward(
    log_b: Tensor, lengths: np.ndarray, startprob: Tensor, transmat: Tensor, *, segment: int | None = None,
    need_trans: bool = True, lanes: Lanes | None = None, recompute: Callable[[], Tensor] | None = None,
    log_enter: Tensor | None = None, log_leave: Tensor | None = None,
) -> Posteriors:
    """Posteriors of a batch of sequences (scaled recursion, log-space fallback). log_b: (N, K).

    With ``lanes`` given, log_b is already in their packed order and so are the returned
    posteriors (the E-step computes emissions and statistics in packed order, saving two
    (N, K) transposes). The posteriors then live in a reused buffer: use them before
    the next call on this thread. With ``recompute`` given too, log_b is overwritten
    (the scaled emissions take its memory, one (N, K) array less at the peak) and
    ``recompute()`` gives it again if a sequence needs the log-space fallback.
    On the CPU with compiled kernels (:mod:`bigem._core.jit`) and neither ``lanes`` nor
    ``segment``, the pass runs in :mod:`bigem.models.hmm_kernels` instead (the same
    quantities, rows in chunk order).

    ``log_enter`` / ``log_leave`` ((K,) float64 logs, a batch of one sequence): the
    batch is a piece of a longer sequence (:mod:`bigem.models.hmm_pieces`).
    ``log_enter``: the filtered distribution at the row before the piece (normalised;
    its transition into the piece is counted here, and no start); ``log_leave``: the
    backward vector at the piece's last row (any scale). The log-likelihood is then the
    piece's given the rows before it: the pieces' add up to the sequence's. They come
    as logs so that the log-space redo loses none of their range.
    """
    piece = log_enter is not None or log_leave is not None
    if piece and len(lengths) != 1:
        raise ValueError("log_enter / log_leave describe a batch of one sequence (a piece of a longer one)")
    enter = None if log_enter is None else torch.exp(log_enter.double())
    leave = None if log_leave is None else torch.exp(log_leave.double() - log_leave.double().max())
    if lanes is None and segment is None and not piece and _compiled(log_b.device):
        return _forward_backward_compiled(hmm_kernels.scale(log_b), lambda: log_b, lengths, startprob, transmat,
                                          need_trans)
    N, K = log_b.shape
    dtype, device = log_b.dtype, log_b.device
    packed = lanes is not None
    if lanes is None:
        lanes = make_lanes(lengths, device, segment)
    A = transmat.to(dtype)
    pi = startprob.to(dtype)
    # packed (N, K) in a reused buffer, then in place: exp(log b - max_k log b)
    if packed and recompute is not None and log_b.is_contiguous():
        eb, log_b = log_b, None
    elif packed:
        eb = _WS.get("eb", (N, K), dtype, device).copy_(log_b)
    else:
        eb = lanes.pack(log_b, out=_WS.get("eb", (N, K), dtype, device))
    shift = eb.amax(1)  # (N,) packed order
    shift = torch.nan_to_num_(shift, nan=0.0, posinf=0.0, neginf=0.0)  # a row with no finite emission: 0
    eb.sub_(shift[:, None]).exp_()  # the best state's emission is exactly 1
    with _single_thread(device):
        pre, end, boundary = _chain(lanes, eb, pi, A, enter, leave)
        alpha, c = _forward(lanes, eb, pre, A)
        w, beta = _backward(lanes, eb, end, A)  # w overwrites eb: eb * beta
    del eb
    gamma = beta.mul_(alpha)  # unnormalised posteriors, in beta's memory
    r = _row_sums(gamma)  # (N,) alpha_t . beta_t: the per-row normaliser of gamma and xi
    # log-likelihood: sum of the normalisers applied, plus each lane's remaining mass
    tiny = _TINY[dtype]
    rest = alpha[lanes.last_rows].sum(1)
    B = len(lengths)
    row_ok = torch.isfinite(r) & (r > 0) & (c > tiny)
    # On an accelerator the rows out of range are found with masks. Under start and
    # transition probabilities that keep every possible sequence in range, such a row means
    # an impossible sequence: it is masked on the device, and nothing is read back or redone
    # (see _keeps_in_range). Otherwise one read a batch says whether a sequence needs the redo.
    masked = numerics.defers_reads(device)
    # a piece's entering and leaving vectors are not bounded below as startprob is: its
    # rows out of range are found by one read (a piece is a whole batch of rows)
    deferred = masked and not piece and _keeps_in_range(startprob, transmat, dtype)
    any_bad_row = not masked and not bool(row_ok.all())
    w.div_((c * r)[:, None])
    c.log_().add_(shift)
    loglik = torch.zeros(B, dtype=torch.float64, device=device)
    loglik.index_add_(0, lanes.row_seq, c.double())
    loglik.index_add_(0, lanes.lane_seq, torch.log(rest).double())
    del c, shift
    # rows whose scaling ran out of range: recompute their sequences in log space
    if masked:  # masks, not indices: no data-dependent shapes either
        out = torch.zeros(B, dtype=torch.float64, device=device)
        out.index_add_(0, lanes.row_seq, (~row_ok).double())
        out.index_add_(0, lanes.lane_seq, (~(rest > tiny)).double())
        bad_seq = ~torch.isfinite(loglik) | (out > 0)
        del out
        if deferred:
            loglik = loglik.masked_fill_(bad_seq, -math.inf)  # what the log-space redo finds for them
    else:
        bad_seq = ~torch.isfinite(loglik)
        bad_seq[lanes.lane_seq[~(rest > tiny)]] = True
        if any_bad_row:
            bad_seq[lanes.row_seq[~row_ok]] = True
    any_bad = deferred or bool(bad_seq.any())
    if any_bad:
        ok_rows = ~bad_seq[lanes.row_seq]
        r = torch.where(ok_rows, r, torch.ones_like(r))
    gamma.div_(r[:, None])
    if any_bad:
        w = w.masked_fill_(~ok_rows[:, None], 0.0)
        gamma = gamma.masked_fill_(~ok_rows[:, None], 0.0)
        alpha = alpha.masked_fill_(~ok_rows[:, None], 0.0)
        boundary = boundary.masked_fill(bad_seq[lanes.lane_seq][:, None], 0.0)
    trans = torch.zeros(K, K, dtype=torch.float64, device=device)
    if need_trans:
        trans = _transition_counts(lanes, alpha, w, boundary, A)
    del alpha, w
    start = gamma[_first_lanes(lanes)].double().sum(0)  # lane i's step 0 is packed row i
    if enter is not None:  # a later piece: its first row starts nothing
        start = torch.zeros_like(start)
    if not packed:
        gamma = lanes.unpack(gamma)
    if any_bad and not deferred:
        gamma, start, trans, loglik = _redo_in_log_space(
            recompute() if log_b is None else log_b, lengths, startprob, transmat, bad_seq, gamma, start, trans, loglik, need_trans,
            lanes.inverse if packed else None, log_enter=log_enter, log_leave=log_leave,
        )
    return Posteriors(gamma, start, trans, loglik)


def _first_lanes(lanes: Lanes) -> Tensor | slice:
    """The lanes that start a sequence (ascending), from the host's layout: all of them
    unless a sequence was cut into segments."""
    if lanes.chain.shape[0] == 0:
        return slice(0, lanes.n_lanes)
    later = lanes.chain[:, 1:]
    return _upload(np.setdiff1d(np.arange(lanes.n_lanes), later[later >= 0]), lanes.perm.device)


def _last_lanes(lanes: Lanes) -> Tensor | slice:
    """The lanes that end a sequence (ascending), from the host's layout."""
    if lanes.chain.shape[0] == 0:
        return slice(0, lanes.n_lanes)
    last = (lanes.chain >= 0).sum(1) - 1
    earlier = lanes.chain[np.arange(lanes.chain.shape[1])[None, :] < last[:, None]]
    return _upload(np.setdiff1d(np.arange(lanes.n_lanes), earlier[earlier >= 0]), lanes.perm.device)


def _compiled(device: torch.device) -> bool:
    """Whether the HMM passes on ``device`` take the compiled kernels
    (:mod:`bigem.models.hmm_kernels`): the CPU with numba, unless turned off, and never
    where the checks are deferred to the device (the tests that simulate an accelerator
    on the CPU take the tensor path, as an accelerator does)."""
    return jit.runs_on(device) and not numerics.defers_reads(device)


def _forward_backward_compiled(scaled: tuple[Tensor, Tensor], log_b: Callable[[], Tensor], lengths: np.ndarray,
                               startprob: Tensor, transmat: Tensor, need_trans: bool) -> Posteriors:
    """:func:`forward_backward` through the compiled kernels from the scaled emissions
    (:func:`hmm_kernels.scale`); the sequences that ran out of the scaled range are
    redone in log space from ``log_b()``, as there."""
    gamma, start, trans, loglik, bad = hmm_kernels.forward_backward(scaled, lengths, startprob, transmat, need_trans)
    if bool(bad.any()):
        gamma, start, trans, loglik = _redo_in_log_space(log_b(), lengths, startprob, transmat, bad, gamma, start,
                                                         trans, loglik, need_trans)
    return Posteriors(gamma, start, trans, loglik)


def _row_sums(t: Tensor) -> Tensor:
    """t.sum(1) of an (N, K) tensor; on the CPU as a product with ones through numpy's
    BLAS, as the per-step loops normalise (250k x 8 float64: 0.25 against 0.98 ms)."""
    if t.device.type != "cpu" or not t.is_contiguous():
        return t.sum(1)
    a = t.numpy()
    return torch.from_numpy(a @ np.ones(a.shape[1], dtype=a.dtype))


# Normalise the scaled vectors every this many steps (and at every lane's first step):
# between normalisations the mass can only shrink (emissions <= 1, stochastic rows),
# and a row whose normaliser falls under _TINY is recomputed in log space, so the
# spacing trades Python steps for range, never for accuracy.
_EVERY = {torch.float32: 4, torch.float64: 16}
_TINY = {torch.float32: 2.0**-100, torch.float64: 2.0**-1000}


def _single_thread(device: torch.device):
    """One intra-op thread on CPU for the per-step loop: its operations are far too small
    to share, and waking a second thread per operation cost ms each under load (the
    small-work rule of :func:`bigem._core.parallel.one_thread_when_small`, whatever the size)."""
    return parallel.one_thread_when_small(0, device)


class _blas_one_thread:
    """numpy's BLAS held to one thread during a CPU E-step, through threadpoolctl when it
    is installed (``bigem[threads]``; without it, nothing changes but the speed).

    The E-step sends its long thin products and the per-step loops through numpy (see
    :func:`bigem._core.numerics.matmul` and :func:`_backend`), and torch's threads do
    the elementwise work in between; on 2 cores, OpenBLAS's second thread spinning after
    each product competed with torch's. Interleaved A/B runs
    (benchmarks/bench_hmm_blas.py, BENCHMARKS.md): 5-20% less time per iteration on
    the HMM benchmark's cases, limiting only the per-step loops gave nothing. The
    libraries are looked up once (about 1 ms); a limit costs about 25 us.

    The limit is process-wide while E-steps may overlap (Dask's worker threads): the
    first E-step in sets it, the last one out restores what the process had. Each
    setting its own would let the first one out lift the limit under the others, and
    the last one out restore the limit itself, for good.
    """

    _controller: list = []  # [threadpoolctl's controller of the loaded BLAS libraries, or None]
    _lock = threading.Lock()
    _inside = 0  # E-steps now running under the limit
    _limit = None  # threadpoolctl's limiter, holding the limits to restore

    def __init__(self, device: torch.device) -> None:
        self.cpu = device.type == "cpu"

    @classmethod
    def _blas(cls):
        if not cls._controller:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:  # optional: the results are the same either way
                cls._controller.append(None)
            else:
                cls._controller.append(ThreadpoolController().select(user_api="blas"))
        return cls._controller[0]

    def __enter__(self):
        if not self.cpu:
            return
        cls = type(self)
        with cls._lock:
            if cls._inside == 0 and cls._blas() is not None:
                cls._limit = cls._blas().limit(limits=1)
            cls._inside += 1

    def __exit__(self, *exc):
        if not self.cpu:
            return
        cls = type(self)
        with cls._lock:
            cls._inside -= 1
            if cls._inside == 0 and cls._limit is not None:
                cls._limit.restore_original_limits()
                cls._limit = None


def _chain(lanes: Lanes, eb: Tensor, pi: Tensor, A: Tensor, enter: Tensor | None = None,
           leave: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Per lane: the factor before step 0 (pi, or the entering distribution @ A), the
    backward vector at its last step, and the distribution entering it (0 for first
    segments). Cut sequences get exact boundaries from transfer matrices. ``enter`` / ``leave``:
    a piece's vectors, linear (see :func:`forward_backward`), for a batch of one sequence."""
    S, K = lanes.n_lanes, pi.shape[0]
    dev, dt = eb.device, eb.dtype
    pre = pi.expand(S, K).clone()
    end = torch.ones(S, K, dtype=dt, device=dev)
    boundary = torch.zeros(S, K, dtype=dt, device=dev)
    first = pi if enter is None else enter.to(dev, torch.float64) @ A.to(torch.float64)  # before the first row
    last = torch.ones(K, dtype=torch.float64, device=dev) if leave is None else leave.to(dev, torch.float64)
    if lanes.chain.shape[0] == 0:
        if enter is not None:  # one lane: the piece's
            pre[0], boundary[0] = first.to(dt), enter.to(dt)
        if leave is not None:
            end[0] = last.to(dt)
        return pre, end, boundary
    V_t = _transfers(lanes, eb, A)
    _chain_segments(lanes.chain, V_t.permute(2, 1, 0), eb[:S], first, A, pre, end, boundary, last)  # lane i's step 0: row i
    if enter is not None:  # the sequence's first segment (lane chain[0, 0]) enters from the piece before
        lane = int(lanes.chain[0, 0])
        pre[lane], boundary[lane] = first.to(dt), enter.to(dt)
    return pre, end, boundary


def _transfers(lanes: Lanes, eb: Tensor, A: Tensor) -> Tensor:
    """Every lane's transfer matrix U_s = prod_{t=1}^{len-1} A diag(eb_t), rescaled every
    few steps (only directions matter), lanes innermost: (K, K, S) with [m, i, s] = U_s[i, m]."""
    S, K = lanes.n_lanes, A.shape[0]
    dev, dt = eb.device, eb.dtype
    every = _EVERY[dt]
    # Transfer matrices lanes-innermost: V[m, i, s] = U_s[i, m]. A step is then one
    # (K x K) @ (K x K*lanes) product and a scaling along contiguous lanes; lanes
    # outermost, the same step was a (lanes*K x K) @ (K x K) product and a broadcast
    # over rows of K, 2-3x slower (measured, K=8, 1000 lanes, numpy).
    V_t = torch.eye(K, dtype=dt, device=dev)[:, :, None].repeat(1, 1, S)
    tmp_t = torch.empty(K, K, S, dtype=dt, device=dev)
    ones_t = torch.ones(K * K, dtype=dt, device=dev)
    norm_t = torch.empty(S, dtype=dt, device=dev)
    xp, (V, tmp, ones, norm, e, at_mat) = _backend(V_t, tmp_t, ones_t, norm_t, eb, A.T.contiguous())
    # (K, N): each step's emissions along contiguous lanes
    eT = _transposed(e) if xp is np else e.T.contiguous()
    with np.errstate(all="ignore"):  # underflow shows as NaN/0 downstream and is handled there
        # transfer U_s = prod_{t=1}^{len-1} A diag(eb_t) of every lane, rescaled every few steps
        V2, tmp2 = V.reshape(K, K * S), tmp.reshape(K, K * S)
        for t in range(1, len(lanes.counts)):
            n, o = lanes.counts[t], lanes.offsets[t]
            Vt = V[:, :, :n]
            if n == S:
                xp.matmul(at_mat, V2, out=tmp2)  # (U_s A)[i, j] at [j, i, s]
                prod = tmp
            else:  # the alive lanes only (a copy: they are not contiguous in V)
                prod = xp.matmul(at_mat, Vt.reshape(K, K * n)).reshape(K, K, n)
            xp.multiply(prod[:, :, :n], eT[:, None, o : o + n], out=Vt)
            if t % every == 0:
                xp.matmul(ones[None, :], V.reshape(K * K, S)[:, :n], out=norm[None, :n])
                xp.divide(Vt, norm[None, None, :n], out=Vt)
    return V_t


def _transposed(a: np.ndarray) -> np.ndarray:
    """a.T as a contiguous array, copied a block of rows at a time (about 256 kB): one
    strided copy of a long (N, K) array ran at a third of the speed (1e6 x 8 float64:
    27 against 10 ms; K=16: 114 against 26 ms)."""
    out = np.empty(a.shape[::-1], dtype=a.dtype)
    rows = max(1, (256 << 10) // max(1, a.shape[1] * a.itemsize))
    for i in range(0, a.shape[0], rows):
        out[:, i : i + rows] = a[i : i + rows].T
    return out


def _chain_segments(
    chain: np.ndarray, U: Tensor, eb0: Tensor, pi: Tensor, A: Tensor, pre: Tensor, end: Tensor, boundary: Tensor,
    last_end: Tensor | None = None,
) -> None:
    """Exact boundaries of cut sequences from their segments' transfer matrices U (S, K, K).

    With M_j = A diag(eb_j0) U_j (segment j's first emission and its transfer), the
    distribution leaving segment j is a_j ~ a_0 M_1 ... M_j and the backward vector
    leaving segment j-1 is b_{j-1} ~ M_j ... M_last 1. Both are prefix (suffix) products,
    computed as a log-depth scan of batched (K x K) products in float64 (each product
    renormalised; only directions matter), not as a Python loop over segments: at
    1e6 steps, about 20 batched products instead of 2000 loop turns.
    Writes pre (the factor before a lane's step 0), end and boundary in place.
    ``pi``: the factor before each sequence's first row; ``last_end``: the backward
    vector at each sequence's last row (ones unless the batch is a piece of a longer
    sequence).
    """
    dev, dt, f64 = U.device, U.dtype, torch.float64
    n_long, n_seg = chain.shape
    K = pi.shape[0]
    valid = chain >= 0
    last = valid.sum(1) - 1
    on_dev = lambda v: _upload(v, dev)  # noqa: E731
    lane_at = on_dev(np.where(valid, chain, 0))
    Uc, e0 = U[lane_at].to(f64), eb0[lane_at].to(f64)  # (n_long, n_seg, K, K), (n_long, n_seg, K)
    A64 = A.to(f64)
    eye = torch.eye(K, dtype=f64, device=dev)
    M = (A64 * e0[:, :, None, :]) @ Uc
    # each scaled by a power of two to a sum in [1/2, 1) (exact: only directions matter, and
    # the scan's products of transfers far below 1 would underflow float64 before ``unit``)
    M = torch.ldexp(M, -torch.frexp(M.sum((-2, -1), keepdim=True)).exponent)
    past = on_dev(np.arange(n_seg)[None, :] > last[:, None])  # slots after a sequence's last segment
    M = torch.where(past[:, :, None, None], eye, M)
    M[:, 0] = eye  # slot 0 enters no scan
    unit = lambda t, dims: t / t.sum(dims, keepdim=True)  # noqa: E731
    P, Q, d = M, M, 1
    while d < n_seg:  # inclusive scans: P[j] = M_1..M_j, Q[j] = M_j..M_last
        P = torch.cat([P[:, :d], unit(P[:, :-d] @ P[:, d:], (-2, -1))], 1)
        Q = torch.cat([unit(Q[:, :-d] @ Q[:, d:], (-2, -1)), Q[:, -d:]], 1)
        d *= 2
    a0 = (pi.to(f64) * e0[:, 0])[:, None, None, :] @ Uc[:, :1]  # (n_long, 1, 1, K)
    a = unit((a0 @ P)[:, :, 0], -1)  # (n_long, n_seg, K): a_j
    final = torch.ones(K, dtype=f64, device=dev) if last_end is None else last_end.to(f64)
    b = unit((Q @ final[:, None])[..., 0], -1)  # b_{j-1} at slot j
    ends = torch.ones(n_long, n_seg, K, dtype=f64, device=dev)
    ends[:, :-1] = b[:, 1:]
    ends = torch.where(on_dev(np.arange(n_seg)[None, :] == last[:, None])[:, :, None], final, ends)
    ends = torch.where(past[:, :, None], 1.0, ends)
    later = valid.copy()
    later[:, 0] = False  # first segments keep pi before them and no boundary
    # integer indices from the host's masks (a boolean mask on the device would be read back)
    seq, seg = np.nonzero(later)
    rows, entering = on_dev(chain[later]), a[on_dev(seq), on_dev(seg - 1)]  # a_{j-1} enters segment j
    boundary[rows] = entering.to(dt)
    pre[rows] = (entering @ A64).to(dt)
    seq, seg = np.nonzero(valid)
    end[on_dev(chain[valid])] = ends[on_dev(seq), on_dev(seg)].to(dt)


def _backend(*tensors: Tensor):
    """The per-step loops run on numpy views on CPU and on torch elsewhere.

    Their operations are tiny ((lanes x K) @ (K x K), elementwise on lanes x K), so
    per-call overhead decides: on this machine np.matmul into a view of a numpy
    array took 5 us against torch.mm's 15 us (and building a numpy view per slice
    costs more than the product), so CPU loops slice numpy arrays that share the
    tensors' memory. Both modules spell the operations alike (matmul, multiply,
    divide with ``out=``), so one loop serves both.
    """
    if tensors[0].device.type == "cpu":
        return np, [t.numpy() for t in tensors]
    return torch, list(tensors)


def _forward(lanes: Lanes, eb: Tensor, pre: Tensor, A: Tensor) -> tuple[Tensor, Tensor]:
    """Scaled forward recursion over packed lanes: alpha (N, K) and the normaliser c (N,)
    applied at each row (1 between normalisations)."""
    every = _EVERY[eb.dtype]
    alpha = _WS.get("alpha", tuple(eb.shape), eb.dtype, eb.device)
    c = _WS.get("c", (eb.shape[0],), eb.dtype, eb.device).fill_(1.0)
    n0 = lanes.counts[0]
    torch.mul(pre[:n0], eb[:n0], out=alpha[:n0])
    torch.sum(alpha[:n0], 1, out=c[:n0])
    alpha[:n0].div_(c[:n0, None])
    ones = torch.ones(A.shape[0], dtype=eb.dtype, device=eb.device)
    xp, (al, e, cc, a, one) = _backend(alpha, eb, c, A.contiguous(), ones)
    po = 0
    with np.errstate(all="ignore"):  # an underflow to 0 shows as c = 0 and is handled by the caller
        for t in range(1, len(lanes.counts)):
            n, o = lanes.counts[t], lanes.offsets[t]
            blk = al[o : o + n]
            xp.matmul(al[po : po + n], a, out=blk)
            xp.multiply(blk, e[o : o + n], out=blk)
            if t % every == 0:
                xp.matmul(blk, one, out=cc[o : o + n])
                xp.divide(blk, cc[o : o + n, None], out=blk)
            po = o
    return alpha, c


def _backward(lanes: Lanes, eb: Tensor, end: Tensor, A: Tensor) -> tuple[Tensor, Tensor]:
    """Backward recursion, rescaled every few steps by its own factors (the per-row
    normaliser r = alpha . beta absorbs them); returns (eb * beta in eb's memory, beta)."""
    every = _EVERY[eb.dtype]
    beta = _WS.get("beta", tuple(eb.shape), eb.dtype, eb.device)
    norm = _WS.get("norm", (eb.shape[0],), eb.dtype, eb.device)
    ones = torch.ones(A.shape[0], dtype=eb.dtype, device=eb.device)
    xp, (bt, e, en, at, one, nrm) = _backend(beta, eb, end.contiguous(), A.T.contiguous(), ones, norm)
    T = len(lanes.counts)
    n_next, o_next = 0, 0
    with np.errstate(all="ignore"):
        for t in range(T - 1, -1, -1):
            n, o = lanes.counts[t], lanes.offsets[t]
            if n_next:
                nxt = e[o_next : o_next + n_next]
                xp.multiply(nxt, bt[o_next : o_next + n_next], out=nxt)
                blk = bt[o : o + n_next]
                xp.matmul(nxt, at, out=blk)
                if t % every == 0:
                    xp.matmul(blk, one, out=nrm[o : o + n_next])
                    xp.divide(blk, nrm[o : o + n_next, None], out=blk)
            if n > n_next:
                bt[o + n_next : o + n] = en[n_next:n]
            n_next, o_next = n, o
    eb[: lanes.counts[0]].mul_(beta[: lanes.counts[0]])
    return eb, beta


def _transition_counts(lanes: Lanes, alpha: Tensor, w: Tensor, boundary: Tensor, A: Tensor) -> Tensor:
    """sum over t of xi_t = A * (sum_t alpha_{t-1}^T w_t), as one GEMM over all lanes."""
    S = lanes.n_lanes
    if lanes.uniform:
        prev, nxt = alpha[:-S], w[S:]
    else:
        prev_rows = torch.cat(
            [torch.arange(lanes.offsets[t - 1], lanes.offsets[t - 1] + lanes.counts[t]) for t in range(1, len(lanes.counts))]
        ) if len(lanes.counts) > 1 else torch.zeros(0, dtype=torch.int64)
        prev, nxt = alpha[prev_rows.to(alpha.device, non_blocking=True)], w[S:]
    acc = _cross_sums(prev, nxt) if prev.shape[0] else torch.zeros_like(A, dtype=torch.float64)
    acc += (boundary.T @ w[:S]).double()
    return A.double() * acc


# Rows per partial product of :func:`_cross_sums` on the CPU: both operands' runs stay
# in cache while BLAS packs them.
_CROSS_ROWS = 8192


def _cross_sums(a: Tensor, b: Tensor) -> Tensor:
    """a^T b in float64 for (n, K) a and b. On the CPU, partial products over runs of
    ``_CROSS_ROWS`` rows added in float64: one product over every row had OpenBLAS pack
    both long operands through memory, 3.4 against 1.0 ms per 250k rows (K=8, float64,
    one thread); float32 partials are also added in float64. Elsewhere one product."""
    if a.device.type != "cpu" or a.dtype != b.dtype or a.dtype not in (torch.float32, torch.float64):
        return matmul(a.T, b).double()
    an, bn = a.numpy(), b.numpy()
    total = np.zeros((an.shape[1], bn.shape[1]), dtype=np.float64)
    part = np.empty_like(total, dtype=an.dtype)
    for i in range(0, an.shape[0], _CROSS_ROWS):
        np.matmul(an[i : i + _CROSS_ROWS].T, bn[i : i + _CROSS_ROWS], out=part)
        total += part
    return torch.from_numpy(total)


def _redo_in_log_space(log_b, lengths, startprob, transmat, bad_seq, gamma_rows, start, trans, loglik, need_trans,
                       where=None, log_enter=None, log_leave=None):
    """Recompute the sequences whose scaled recursion underflowed, in log space.
    ``where``: the packed row of each chunk row when log_b and gamma are packed;
    ``log_enter`` / ``log_leave``: a piece's (see :func:`forward_backward`)."""
    seq_idx = torch.nonzero(bad_seq).reshape(-1).cpu().numpy()
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    rows = np.concatenate([np.arange(starts[i], starts[i] + lengths[i]) for i in seq_idx])
    rows_t = torch.from_numpy(rows).to(log_b.device)
    if where is not None:
        rows_t = where[rows_t]
    sub = forward_backward_log(log_b[rows_t], np.asarray(lengths)[seq_idx], startprob, transmat,
                               log_enter=log_enter, log_leave=log_leave)
    ok = torch.isfinite(sub.loglik)
    row_ok = torch.repeat_interleave(ok, torch.as_tensor(np.asarray(lengths)[seq_idx], device=ok.device))
    gamma_rows[rows_t] = torch.where(row_ok[:, None], sub.gamma.to(gamma_rows.dtype), torch.zeros_like(sub.gamma, dtype=gamma_rows.dtype))
    loglik = loglik.clone()
    loglik[torch.from_numpy(seq_idx).to(loglik.device)] = sub.loglik
    return gamma_rows, start + sub.start, trans + (sub.trans if need_trans else 0), loglik


def forward_backward_log(log_b: Tensor, lengths: np.ndarray, startprob: Tensor, transmat: Tensor,
                         log_enter: Tensor | None = None, log_leave: Tensor | None = None) -> Posteriors:
    """Reference forward-backward in log space (logsumexp per step), one lane per sequence.

    Used for sequences the scaled recursion cannot represent and by the tests as the
    independent reference. Impossible sequences get loglik -inf and contribute nothing.
    ``log_enter`` / ``log_leave``: a piece's, as for :func:`forward_backward` (one sequence).
    """
    N, K = log_b.shape
    device = log_b.device
    lb = log_b.double()
    lanes = make_lanes(lengths, device, segment=int(max(lengths)) + 1)
    with np.errstate(divide="ignore"):
        log_pi = torch.log(startprob.double())
        log_A = torch.log(transmat.double())
        log_enter = None if log_enter is None else log_enter.to(device, torch.float64)
        log_leave = None if log_leave is None else log_leave.to(device, torch.float64)
    if log_enter is not None:
        log_pi = torch.logsumexp(log_enter[:, None] + log_A, 0)
    x = lb[lanes.perm]
    la = torch.empty_like(x)
    n0 = lanes.counts[0]
    la[:n0] = log_pi + x[:n0]
    po = 0
    for t in range(1, len(lanes.counts)):
        n, o = lanes.counts[t], lanes.offsets[t]
        la[o : o + n] = torch.logsumexp(la[po : po + n, :, None] + log_A, 1) + x[o : o + n]
        po = o
    lb_ = torch.empty_like(x)
    n_next, o_next = 0, 0
    for t in range(len(lanes.counts) - 1, -1, -1):
        n, o = lanes.counts[t], lanes.offsets[t]
        if n_next:
            nxt = x[o_next : o_next + n_next] + lb_[o_next : o_next + n_next]
            lb_[o : o + n_next] = torch.logsumexp(log_A + nxt[:, None, :], 2)
        lb_[o + n_next : o + n] = 0.0 if log_leave is None else log_leave
        n_next, o_next = n, o
    # log-likelihood per lane from the last step of each lane
    last_rows = torch.tensor(
        [lanes.offsets[int(L) - 1] + i for i, L in enumerate(lanes.lane_len)], dtype=torch.int64, device=device
    )
    lane_ll = torch.logsumexp(la[last_rows], 1)
    B = len(lengths)
    loglik = torch.empty(B, dtype=torch.float64, device=device)
    loglik[lanes.lane_seq] = lane_ll
    # each row's normaliser: the log-likelihood, and with a piece's leaving vector the
    # mass that vector keeps
    lane_norm = lane_ll if log_leave is None else torch.logsumexp(la[last_rows] + lb_[last_rows], 1)
    ll_row = lane_norm[_lane_of_rows(lanes)]
    # each row normalised by its own sum, the same number as the lane's but rounded at
    # the row's scale: a log-likelihood of -4e9 has an ulp of 1e-6, which the lane's
    # normaliser put into every posterior (rows summing to 1 + 1e-6)
    row_norm = torch.logsumexp(la + lb_, 1)
    fine = torch.isfinite(ll_row) & torch.isfinite(row_norm)
    safe_ll = torch.where(fine, row_norm, torch.zeros_like(row_norm))
    gamma = torch.exp(la + lb_ - safe_ll[:, None]).masked_fill_(~fine[:, None], 0.0)
    S = lanes.n_lanes
    trans = torch.zeros(K, K, dtype=torch.float64, device=device)
    if len(lanes.counts) > 1:
        prev_rows = torch.cat(
            [torch.arange(lanes.offsets[t - 1], lanes.offsets[t - 1] + lanes.counts[t]) for t in range(1, len(lanes.counts))]
        ).to(device)
        log_xi = la[prev_rows][:, :, None] + log_A + (x + lb_)[S:][:, None, :]
        norm = torch.logsumexp(log_xi.flatten(1), 1)  # each step's own, as the rows'
        norm = torch.where(fine[S:] & torch.isfinite(norm), norm, torch.zeros_like(norm))
        xi = torch.exp(log_xi - norm[:, None, None]).masked_fill_(~fine[S:, None, None], 0.0)
        trans = xi.sum(0)
    start = gamma[:S].sum(0)
    if log_enter is not None:  # a later piece: the transition into its first row, and no start
        if bool(fine[0]):
            into = log_enter[:, None] + log_A + (x + lb_)[0][None, :]
            trans = trans + torch.exp(into - torch.logsumexp(into.flatten(), 0))
        start = torch.zeros_like(start)
    return Posteriors(gamma[lanes.inverse], start, trans, loglik)


def _lane_of_rows(lanes: Lanes) -> Tensor:
    """Lane index of every packed row."""
    counts = torch.tensor(lanes.counts, dtype=torch.int64)
    offsets = torch.tensor(lanes.offsets, dtype=torch.int64)
    n = int(counts.sum())
    return (torch.arange(n) - torch.repeat_interleave(offsets, counts)).to(lanes.perm.device)


# ---------------------------------------------------------------------------- Viterbi
def viterbi(
    log_b: Tensor, lengths: np.ndarray, startprob: Tensor, transmat: Tensor, *, segment: int | None = None
) -> tuple[Tensor, Tensor]:
    """Most likely state path of every sequence (max-product in log space, float64).

    Returns (log-probability of each sequence's best path (B,), states (N,) int64).
    Ties break as hmmlearn's backtracking breaks them: the last state goes to the lowest
    index, a predecessor to the highest (hmmlearn keeps the larger (score, state) pair).
    Where a sequence is cut into segments (``segment``, long sequences on a GPU), a
    segment's boundary state is chosen from its transfer matrix, and among exactly tied
    paths that can be another one than hmmlearn's (of the same log-probability).
    Batched over lanes like the forward-backward pass; long sequences are cut into
    segments whose max-plus transfer matrices are chained first, which fixes the state
    at every segment boundary, then all segments are decoded at once between their
    fixed ends. On the CPU with compiled kernels (:mod:`bigem._core.jit`) and no
    ``segment``, each sequence is one pass in :func:`bigem.models.hmm_kernels.viterbi`
    instead (the same operations).
    """
    if segment is None and _compiled(log_b.device):
        return hmm_kernels.viterbi(log_b, lengths, startprob, transmat)
    N, K = log_b.shape
    device = log_b.device
    lanes = make_lanes(lengths, device, segment)
    with np.errstate(divide="ignore"):
        log_pi = torch.log(startprob.double())
        log_A = torch.log(transmat.double())
    from_last = log_A.flip(0)  # predecessors in reverse: torch.max's first is then the highest index
    x = lanes.pack(log_b.double())
    S = lanes.n_lanes
    init = (log_pi + x[:S]).clone()  # lane i's step 0 is packed row i
    fixed_end = torch.full((S,), -1, dtype=torch.int64, device=device)
    chained_ll = torch.full((S,), -math.inf, dtype=torch.float64, device=device)
    if lanes.chain.shape[0]:
        _viterbi_chain(lanes, x, log_pi, log_A, init, fixed_end, chained_ll)
    delta = torch.empty_like(x)
    back = torch.empty(N, K, dtype=torch.int64, device=device)
    n0 = lanes.counts[0]
    delta[:n0] = init
    po = 0
    with _single_thread(device):
        for t in range(1, len(lanes.counts)):
            n, o = lanes.counts[t], lanes.offsets[t]
            best, arg = torch.max(delta[po : po + n].flip(1)[:, :, None] + from_last, 1)
            delta[o : o + n] = best + x[o : o + n]
            back[o : o + n] = (K - 1) - arg
            po = o
        best_ll, state = torch.max(delta[lanes.last_rows], 1)
        state = torch.where(fixed_end >= 0, fixed_end, state)
        path = torch.empty(N, dtype=torch.int64, device=device)
        cur = torch.empty(S, dtype=torch.int64, device=device)
        for t in range(len(lanes.counts) - 1, -1, -1):
            n, o = lanes.counts[t], lanes.offsets[t]
            n_next = lanes.counts[t + 1] if t + 1 < len(lanes.counts) else 0
            if n_next:
                o_next = lanes.offsets[t + 1]
                cur[:n_next] = torch.gather(back[o_next : o_next + n_next], 1, cur[:n_next, None])[:, 0]
            cur[n_next:n] = state[n_next:n]
            path[o : o + n] = cur[:n]
    cut = lanes.lane_last & (fixed_end >= 0)
    lane_ll = torch.where(cut, chained_ll, best_ll)
    logprob = torch.empty(len(lengths), dtype=torch.float64, device=device)
    keep = _last_lanes(lanes)
    logprob[lanes.lane_seq[keep]] = lane_ll[keep]
    return logprob, lanes.unpack(path[:, None])[:, 0]


def _best_transfers(lanes: Lanes, x: Tensor, log_A: Tensor, total: bool = False) -> Tensor:
    """Every lane's max-plus transfer (S, K, K): M_s[i, j], the best score from state i
    at the lane's step 0 to j at its last step (step 0's emission excluded); with
    ``total``, the log of the sum over paths instead (the transfer in log space)."""
    S, K = lanes.n_lanes, log_A.shape[0]
    M = torch.full((S, K, K), -math.inf, dtype=x.dtype, device=x.device)
    M.diagonal(dim1=1, dim2=2).fill_(0.0)
    # a sparse chain (a left-right one) reaches each state from few: each step gathers
    # only its predecessors, (K, d) of them, instead of all K (K = 8 left-right: d = 2)
    into = torch.isfinite(log_A)
    d = int(into.sum(0).max())
    sparse = d < K
    if sparse:
        order = torch.argsort((~into).to(torch.int8), dim=0, stable=True)[:d].T  # (K, d): j with A[j, k] > 0 first
        weight = torch.gather(log_A.T, 1, order)  # (K, d), -inf where k has fewer than d
    with _single_thread(x.device):
        for t in range(1, len(lanes.counts)):  # M_s[i, j]: best score from i at step 0 to j at step t
            n, o = lanes.counts[t], lanes.offsets[t]
            paths = M[:n][:, :, order] + weight if sparse else M[:n, :, :, None] + log_A
            reduce = 3 if sparse else 2
            if not total:
                best = paths.amax(reduce)
            elif sparse and d == 2:  # one fused operation (torch.logsumexp over 2 took 3x as long)
                best = torch.logaddexp(paths[..., 0], paths[..., 1])
            else:
                best = torch.logsumexp(paths, reduce)
            M[:n] = best + x[o : o + n, None, :]
    return M


def _viterbi_chain(lanes: Lanes, x: Tensor, log_pi: Tensor, log_A: Tensor, init: Tensor, fixed_end: Tensor,
                   chained_ll: Tensor) -> None:
    """Boundary states of cut sequences from max-plus transfer matrices (in place:
    ``init`` of later segments, ``fixed_end`` of every segment, ``chained_ll`` of last ones)."""
    K = log_A.shape[0]
    M = _best_transfers(lanes, x, log_A)
    # which sequences have a segment j, as integer indices from the host's layout (a
    # boolean mask on the device would be read back to size the result)
    chain = lanes.chain
    n_long, n_seg = chain.shape
    dev = x.device
    live_at = [np.nonzero(chain[:, j] >= 0)[0] for j in range(n_seg)]
    live_dev = [_upload(live, dev) for live in live_at]
    lanes_at = [_upload(chain[live, j], dev) for j, live in enumerate(live_at)]
    enter = torch.zeros(n_long, K, dtype=x.dtype, device=dev)  # score at the lane's step 0
    start_arg = torch.zeros(n_long, n_seg, K, dtype=torch.int64, device=dev)  # best step-0 state per end state
    cross_arg = torch.zeros(n_long, n_seg, K, dtype=torch.int64, device=dev)  # best previous end per step-0 state
    ends = torch.zeros(n_long, K, dtype=x.dtype, device=dev)
    for j in range(n_seg):
        live, idx = live_dev[j], lanes_at[j]
        if j == 0:
            enter[live] = log_pi + x[idx]
        else:
            best, arg = torch.max(ends[live].flip(1)[:, :, None] + log_A.flip(0), 1)  # ties: the highest
            enter[live] = best + x[idx]
            cross_arg[live, j] = (K - 1) - arg
        best, arg = torch.max(enter[live].flip(1)[:, :, None] + M[idx].flip(1), 1)
        ends[live] = best
        start_arg[live, j] = (K - 1) - arg
    n_segs = (chain >= 0).sum(1)
    end_state = torch.argmax(ends, 1)
    chained_ll[_upload(chain[np.arange(n_long), n_segs - 1], dev)] = ends.max(1).values
    for j in range(n_seg - 1, -1, -1):
        live, lane = live_dev[j], lanes_at[j]
        e = end_state[live]  # argmax of the final scores, or the boundary chosen by segment j + 1
        fixed_end[lane] = e
        s0 = start_arg[live, j].gather(1, e[:, None])[:, 0]
        if j > 0:
            row = torch.full((len(live_at[j]), K), -math.inf, dtype=x.dtype, device=dev)
            row.scatter_(1, s0[:, None], 0.0)
            init[lane] = row
            end_state[live] = cross_arg[live, j].gather(1, s0[:, None])[:, 0]


# A piece's leaving vector weighs its last emission on the compiled path: below this
# log-ratio to its largest entry a weight cannot be undone in the log-likelihood (nor an
# entering probability kept, the start being linear there).
_LEAVE_FLOOR = -600.0


# ---------------------------------------------------------------------------- model
@dataclass(frozen=True)
class Mend:
    """What the M-step does with states whose emission collapsed, instead of raising.

    ``collapsed(params)``: a (K,) mask of states whose new parameters are valid but
    numerically degenerate (a covariance singular to working precision); with the
    states the emission's M-step could not estimate at all, ``fix(params, bad)`` mends
    them. ``what`` says how, in the estimator's words (for the warning, of
    ``category``); ``slack(params, value=...)``: how far rounding may move the mean
    log-likelihood near such a collapse (the monotonicity check allows it).
    """

    fix: Callable[[Any, Tensor], Any]
    collapsed: Callable[[Any], Tensor]
    slack: Callable[..., float]
    what: str
    category: type[Warning]


class HMMModel:
    """Baum-Welch for any emission (a component, see ``components``): e_step on sequence
    batches, m_step from the statistics alone, with hmmlearn's Dirichlet MAP priors and
    ``params`` letters (what the M-step updates)."""

    def __init__(
        self,
        emission: Any,
        n_components: int,
        dtype: torch.dtype,
        *,
        params: str = "st",
        startprob_prior: Tensor | float = 1.0,
        transmat_prior: Tensor | float = 1.0,
        advice: str | None = None,
        mend: Mend | None = None,
    ) -> None:
        self.emission = emission
        self.n_components = n_components
        self.dtype = dtype
        self.params = params
        self.startprob_prior = startprob_prior
        self.transmat_prior = transmat_prior
        self.advice = advice or emission.advice
        self.mend = mend
        self._ws = Workspace()

    def _lanes(self, lengths: np.ndarray, device: torch.device) -> Lanes:
        """The layout of a batch, kept for the next iteration (same batches every iteration)."""
        key = (lengths.tobytes(), str(device))
        cache = self.__dict__.setdefault("_lanes_cache", {})
        lanes = cache.get(key)
        if lanes is None:
            if len(cache) >= 4:  # streaming many batches: keep memory bounded
                cache.clear()
            lanes = cache[key] = make_lanes(lengths, device)
        return lanes

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_lanes_cache", None)  # layouts are rebuilt where the model runs
        return state

    # the run's stopping and decrease checks stay on the likelihood, hmmlearn's monitor
    # (whose Poisson update under a prior is no MAP of it: the penalised objective may dip)
    likelihood_rule = True

    def prior_gain(self, new: HMMParams, old: HMMParams) -> float:
        """The priors' log-density at ``new`` less at ``old`` (hmmlearn's Dirichlet priors of
        startprob and transmat, and the emission's): with the log-likelihood, the objective
        a MAP step increases, on which an extrapolated point (SQUAREM) is judged. Judged on
        the likelihood alone, extrapolations under a prior stopped short of the MAP,
        'converged'."""
        return (_dirichlet_gain(self.startprob_prior, new.startprob, old.startprob)
                + _dirichlet_gain(self.transmat_prior, new.transmat, old.transmat)
                + self.emission.prior_gain(new.emission, old.emission))

    def decrease_tolerance(self, params: HMMParams, log_likelihood: float) -> float:
        """Rounding of the per-step log-likelihood; MAP priors may trade likelihood for prior."""
        eps = 1e-6 if self.dtype == torch.float32 else 1e-11
        slack = eps * (abs(log_likelihood) + 1.0)
        if not (_is_one(self.startprob_prior) and _is_one(self.transmat_prior)) or self.emission.regularised:
            slack += 1e-3 * (abs(log_likelihood) + 1.0)
        if self.mend is not None:
            slack += self.mend.slack(params.emission, value=log_likelihood)
        rounding = getattr(self.emission, "log_density_rounding", None)  # an emission whose terms cancel
        if rounding is not None:
            slack += rounding(params.emission, None)
        return slack

    def log_emission(self, params: HMMParams, x: Tensor) -> Tensor:
        """log b_k(x_t) of every row: (N, K)."""
        return components.log_prob(self.emission, params.emission, x.to(self.emission.row_dtype),
                                   self._prepared(params, x.device))

    def _prepared(self, params: HMMParams, device: torch.device) -> Any:
        """The emission's parameters prepared for the kernels once a pass, not once a batch
        (a preparation's factors, and with gaps its pattern bookkeeping, are the same for
        every batch; a GPU would wait on the bookkeeping once a batch)."""
        return self._ws.derived("emission", params.emission, torch.device(device),
                                lambda: self.emission.prepare(params.emission, device))

    def _scaled_emission(self, params: HMMParams, x: Tensor) -> tuple[Tensor, Tensor]:
        """(exp(log b - shift), shift) of every row for the compiled kernels: from the
        emission's own ``scaled_log_prob`` where it has one (a categorical column looks
        both up in a per-symbol table), else from :meth:`log_emission`."""
        own = getattr(self.emission, "scaled_log_prob", None)
        scaled = own(params.emission, x) if own is not None else None
        return scaled if scaled is not None else hmm_kernels.scale(self.log_emission(params, x))

    def _log_likelihood(self, params: HMMParams, chunk: SequenceChunk, startprob: Tensor | None = None) -> Tensor:
        """Each sequence's log-likelihood by the compiled forward pass alone; sequences
        that ran out of its range are redone in log space (-inf: impossible).
        ``startprob``: another start (a piece's: its entering distribution @ A)."""
        startprob = params.startprob if startprob is None else startprob
        with _blas_one_thread(chunk.x.device):
            x = chunk.x.to(self.emission.row_dtype)
            lengths = chunk.lengths.numpy()
            loglik, bad = hmm_kernels.log_likelihood(self._scaled_emission(params, x), lengths, startprob,
                                                     params.transmat)
            if bool(bad.any()):
                idx = torch.nonzero(bad).reshape(-1)
                starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
                rows = torch.from_numpy(np.concatenate([np.arange(starts[i], starts[i] + lengths[i])
                                                        for i in idx.tolist()]))
                sub = forward_backward_log(self.log_emission(params, x)[rows], lengths[idx.numpy()],
                                           startprob, params.transmat)
                loglik[idx] = sub.loglik
            return loglik

    # ------------------------------------------------------------ pieces (hmm_pieces)
    def transfers(self, params: HMMParams, chunk: SequenceChunk) -> Tensor:
        """(P, K, K) float64: a piece's log transfer at its index, zeros elsewhere (a pass
        over every batch sums them: see :mod:`bigem.models.hmm_pieces`)."""
        K = self.n_components
        out = torch.zeros(chunk.n_pieces, K, K, dtype=torch.float64, device=chunk.x.device)
        if chunk.piece >= 0:
            with _blas_one_thread(chunk.x.device):
                x = chunk.x.to(self.emission.row_dtype)
                rows = lambda a, b: self.log_emission(params, x[a:b]).to(self.dtype)  # noqa: E731
                out[chunk.piece] = hmm_pieces.transfer(rows, chunk.n_rows, params.startprob, params.transmat,
                                                       chunk.first)
        return out

    def link(self, transfers: Tensor, first) -> hmm_pieces.Links:
        """The pieces' entering and leaving vectors from their summed :meth:`transfers`."""
        return hmm_pieces.link(transfers, first)

    def _ends(self, chunk: SequenceChunk, links: hmm_pieces.Links | None, device) -> tuple[Tensor | None, Tensor | None]:
        """A piece's (log_enter, log_leave) vectors on ``device`` (None, None for whole sequences)."""
        if chunk.piece < 0:
            return None, None
        if links is None:
            raise ValueError("a piece of a sequence needs its links (the transfers pass); see models.hmm_pieces")
        log_enter = None if chunk.first else links.log_enter[chunk.piece].to(device, non_blocking=True)
        log_leave = None if chunk.last else links.log_leave[chunk.piece].to(device, non_blocking=True)
        return log_enter, log_leave

    def _piece_posteriors(self, params: HMMParams, chunk: SequenceChunk, links, need_trans: bool,
                          x: Tensor | None = None) -> Posteriors:
        """A piece's forward-backward from its links; a piece of an impossible sequence
        gets loglik -inf and zero posteriors, as an impossible sequence does."""
        x = chunk.x.to(self.emission.row_dtype) if x is None else x
        log_b = self.log_emission(params, x)
        log_enter, log_leave = self._ends(chunk, links, x.device)
        K = self.n_components
        if links.dead[chunk.piece]:
            zero = torch.zeros(K, dtype=torch.float64, device=x.device)
            return Posteriors(torch.zeros_like(log_b), zero, zero[:, None] * zero,
                              torch.full((1,), -math.inf, dtype=torch.float64, device=x.device))
        # the kernels start from a linear distribution: an entering state far below the
        # others (a chain that cannot forget it) would round to zero there, and their
        # log-space redo would start without it; the tensor path's redo keeps the logs
        tiny = log_enter is not None and bool(((log_enter > -math.inf) & (log_enter < _LEAVE_FLOOR)).any())
        if _compiled(x.device) and not tiny:
            return self._piece_compiled(params, x, chunk, log_enter, log_leave, need_trans)
        return forward_backward(log_b, chunk.lengths.numpy(), params.startprob, params.transmat, need_trans=need_trans,
                                log_enter=log_enter, log_leave=log_leave)

    def _piece_compiled(self, params: HMMParams, x: Tensor, chunk: SequenceChunk, log_enter: Tensor | None,
                        log_leave: Tensor | None, need_trans: bool) -> Posteriors:
        """A piece through the compiled kernels, which know only whole sequences: the
        entering distribution becomes the start (enter @ A), the leaving vector weighs
        the last row's emission (beta there is 1), and then the transition into the piece
        comes back from its first row's posterior (xi = enter A gamma_0 / start, by
        rows), the start is dropped, and the log-likelihood loses the leaving vector's
        weights (sum_k gamma_last,k / leave_k). Where a weight is below ``_LEAVE_FLOOR``
        of the largest (it could not be undone: a left-right chain's leaving vectors
        span thousands of nats), the piece's own forward pass gives its log-likelihood
        instead; a weight that underflows costs the posteriors nothing in range, and a
        piece left without any is redone in log space from the exact weights."""
        enter = None if log_enter is None else torch.exp(log_enter.double())
        log_w = None if log_leave is None else log_leave.double() - log_leave.double().max()
        leave = None if log_w is None else torch.exp(log_w)
        A = params.transmat.double()
        pi = params.startprob if enter is None else enter.double() @ A
        eb, shift = self._scaled_emission(params, x)
        if leave is not None:
            eb[-1] *= leave.to(eb.dtype)

        def log_b() -> Tensor:
            lb = self.log_emission(params, x)
            if log_w is not None:
                lb[-1] += log_w.to(lb.dtype)
            return lb

        post = _forward_backward_compiled((eb, shift), log_b, chunk.lengths.numpy(), pi, A, need_trans)
        loglik, start, trans = post.loglik, post.start, post.trans
        if leave is not None and bool((log_w > _LEAVE_FLOOR).all()):
            loglik = loglik + torch.log((post.gamma[-1].double() / leave).sum())
        elif leave is not None and hmm_pieces.forgets(A):
            loglik = self._log_likelihood(params, replace(chunk, x=x), pi)
        elif leave is not None:  # the forward pass alone could miss an underflow (see score_totals)
            loglik = _forward_backward_compiled(self._scaled_emission(params, x), lambda: self.log_emission(params, x),
                                                chunk.lengths.numpy(), pi, A, False).loglik
        if enter is not None:
            ratio = torch.where(pi > 0, post.gamma[0].double() / pi, torch.zeros_like(pi))
            if need_trans:
                trans = trans + enter.double()[:, None] * A * ratio[None, :]
            start = torch.zeros_like(start)
        return Posteriors(post.gamma, start, trans, loglik)

    def posteriors(self, params: HMMParams, chunk: SequenceChunk, need_trans: bool = True,
                   links: hmm_pieces.Links | None = None) -> Posteriors:
        """Posteriors in chunk-row order (for inference)."""
        with _blas_one_thread(chunk.x.device):
            if chunk.piece >= 0:
                return self._piece_posteriors(params, chunk, links, need_trans)
            log_b = self.log_emission(params, chunk.x)
            lengths = chunk.lengths.numpy()
            return forward_backward(log_b, lengths, params.startprob, params.transmat, need_trans=need_trans)

    def state_posteriors(self, params: HMMParams, chunk: SequenceChunk, host: bool = False,
                         links: hmm_pieces.Links | None = None) -> tuple[Tensor, Tensor]:
        """(log-likelihood of each sequence (B,), posteriors (n, K)), float64 on the batch's
        device (the caller reads them back in groups; ``host``: on the CPU, for results
        that travel between processes); the rows of a sequence impossible under the model
        (-inf) have NaN posteriors. A piece gives its log-likelihood given the rows
        before it (its sequence's is the sum over its pieces)."""
        post = self.posteriors(params, chunk, need_trans=False, links=links)
        loglik, gamma = post.loglik.double(), post.gamma.double()
        bad = ~torch.isfinite(loglik)
        if numerics.defers_reads(bad.device) or bool(bad.any()):  # on the CPU a read is free and spares the mask
            lengths = chunk.lengths.to(bad.device, non_blocking=True)
            rows = torch.repeat_interleave(bad, lengths, output_size=gamma.shape[0])  # sized here: nothing read back
            gamma = gamma.masked_fill_(rows[:, None], float("nan"))
        return (loglik.cpu(), gamma.cpu()) if host else (loglik, gamma)

    def decode(self, params: HMMParams, chunk: SequenceChunk, host: bool = False,
               links: hmm_pieces.Path | None = None) -> tuple[Tensor, Tensor]:
        """Viterbi: (log-probability of each sequence's best path (B,), states (n,)) on the
        batch's device (``host``: on the CPU), as :meth:`state_posteriors`. A piece is
        decoded between the states its ``links`` (:meth:`best_path`) fix at its ends,
        and gives its part of its path's log-probability."""
        log_b = self.log_emission(params, chunk.x)
        startprob = params.startprob
        if chunk.piece >= 0:
            if links is None:
                raise ValueError("a piece of a sequence needs its links (the transfers pass); see models.hmm_pieces")
            enter, end = int(links.enter[chunk.piece]), int(links.end[chunk.piece])
            if enter >= 0:  # from the state the path leaves the piece before in
                startprob = params.transmat[enter]
            if end >= 0:  # to the state the next piece takes the path from
                keep = torch.arange(log_b.shape[1], device=log_b.device) == end
                log_b[-1] = torch.where(keep, log_b[-1], torch.full_like(log_b[-1], -math.inf))
        lp, path = viterbi(log_b, chunk.lengths.numpy(), startprob, params.transmat)
        return (lp.cpu(), path.cpu()) if host else (lp, path)

    def best_transfers(self, params: HMMParams, chunk: SequenceChunk) -> Tensor:
        """Viterbi's :meth:`transfers`: (P, K, K) float64, a piece's max-plus transfer at
        its index (:func:`hmm_pieces.best_transfer`), zeros elsewhere."""
        K = self.n_components
        out = torch.zeros(chunk.n_pieces, K, K, dtype=torch.float64, device=chunk.x.device)
        if chunk.piece >= 0:
            x = chunk.x.to(self.emission.row_dtype)
            rows = lambda a, b: self.log_emission(params, x[a:b])  # noqa: E731
            out[chunk.piece] = hmm_pieces.best_transfer(rows, chunk.n_rows, params.startprob, params.transmat,
                                                        chunk.first)
        return out

    def best_path(self, transfers: Tensor, first) -> hmm_pieces.Path:
        """Where the best paths cross between pieces, from the summed :meth:`best_transfers`."""
        return hmm_pieces.best_path(transfers, first)

    def score_totals(self, params: HMMParams, chunk: SequenceChunk, links: hmm_pieces.Links | None = None) -> HMMScore:
        """One batch's :class:`HMMScore` (forward-backward without transition counts; on
        the CPU with compiled kernels, the forward pass alone). A piece counts its
        sequence as impossible on its last piece only."""
        if chunk.piece >= 0:
            loglik = self.posteriors(params, chunk, need_trans=False, links=links).loglik
            bad = ~torch.isfinite(loglik)
            if not chunk.last:  # its sequence is counted once, on its last piece
                return HMMScore(torch.where(bad, torch.zeros_like(loglik), loglik).sum(), 0, -1)
            bad = bad | bool(links.dead[chunk.piece])
            first = torch.where(bad.any(), chunk.seq_start, -1)
            return HMMScore(torch.where(bad, torch.zeros_like(loglik), loglik).sum(), bad.sum(), first)
        # the forward pass alone cannot tell a state's probability that underflowed and
        # cannot come back (a chain that never forgets, such as a left-right one) from a
        # negligible one: there the backward pass's check decides (see hmm_pieces.forgets)
        alone = _compiled(chunk.x.device) and hmm_pieces.forgets(params.transmat)
        loglik = (self._log_likelihood(params, chunk) if alone
                  else self.posteriors(params, chunk, need_trans=False).loglik)
        bad = ~torch.isfinite(loglik)
        first = torch.where(bad.any(), bad.to(torch.uint8).argmax() + chunk.seq_start, -1)  # argmax: the first
        return HMMScore(torch.where(bad, torch.zeros_like(loglik), loglik).sum(), bad.sum(), first)

    def e_step(self, params: HMMParams, chunk: SequenceChunk, links: hmm_pieces.Links | None = None) -> HMMStats:
        with _blas_one_thread(chunk.x.device):
            return self._e_step(params, chunk, links)

    def _e_step(self, params: HMMParams, chunk: SequenceChunk, links: hmm_pieces.Links | None = None) -> HMMStats:
        lengths_np = chunk.lengths.numpy()
        if chunk.piece >= 0:  # a piece of a longer sequence: rows in chunk order, from its links
            lanes, x = None, chunk.x.to(self.emission.row_dtype)
            post = self._piece_posteriors(params, chunk, links, "t" in self.params, x)
            return self._piece_stats(params, chunk, links, x, post)
        if _compiled(chunk.x.device):  # compiled kernels take rows in chunk order
            lanes, x = None, chunk.x.to(self.emission.row_dtype)
            post = _forward_backward_compiled(self._scaled_emission(params, x), lambda: self.log_emission(params, x),
                                              lengths_np, params.startprob, params.transmat, "t" in self.params)
        else:
            lanes = self._lanes(lengths_np, chunk.x.device)
            x = lanes.pack(chunk.x.to(self.emission.row_dtype))  # statistics are sums: packed order serves as well
            post = forward_backward(
                self.log_emission(params, x), lengths_np, params.startprob, params.transmat,
                need_trans="t" in self.params, lanes=lanes, recompute=lambda: self.log_emission(params, x),
            )
        ok = torch.isfinite(post.loglik)
        if numerics.defers_reads(x.device):  # the counts stay on the device: read once a pass, by the M-step
            lengths = chunk.lengths.to(x.device, non_blocking=True)
            bad = ~ok
            # rows of impossible sequences carry no weight (their posteriors are zero)
            estats = components.statistics(self.emission, params.emission, x, post.gamma, ok[lanes.row_seq].to(x.dtype),
                                           self._prepared(params, x.device))
            return HMMStats(
                start=post.start, trans=post.trans, emission=estats,
                loglik=torch.where(ok, post.loglik, torch.zeros_like(post.loglik)).sum(),
                rows=(lengths * ok).sum(), sequences=ok.sum(), impossible=bad.sum(),
                first_impossible=torch.where(bad.any(), bad.to(torch.uint8).argmax() + chunk.seq_start, -1),
            )
        n_bad = int((~ok).sum())
        first_bad = int(torch.nonzero(~ok)[0]) + chunk.seq_start if n_bad else -1
        lengths = chunk.lengths.to(post.loglik.device)
        # rows of impossible sequences carry no weight (their posteriors are zero)
        w = None
        if n_bad:
            row_ok = ok[lanes.row_seq] if lanes is not None else torch.repeat_interleave(ok, lengths)
            w = row_ok.to(x.dtype)
        own = getattr(self.emission, "compiled_statistics", None) if lanes is None else None
        estats = own(params.emission, x, post.gamma) if own is not None else None  # gamma is 0 where impossible
        if estats is None:
            estats = components.statistics(self.emission, params.emission, x, post.gamma, w,
                                           self._prepared(params, x.device))
        return HMMStats(
            start=post.start,
            trans=post.trans,
            emission=estats,
            loglik=post.loglik[ok].sum(),
            rows=int(lengths[ok].sum()),
            sequences=int(ok.sum()),
            impossible=n_bad,
            first_impossible=first_bad,
        )

    def _piece_stats(self, params: HMMParams, chunk: SequenceChunk, links, x: Tensor, post: Posteriors) -> HMMStats:
        """A piece's statistics: its rows' (zero for an impossible sequence), and its
        sequence counted once, on its last piece."""
        ok = torch.isfinite(post.loglik) & (not bool(links.dead[chunk.piece]))
        estats = components.statistics(self.emission, params.emission, x, post.gamma, None,
                                       self._prepared(params, x.device))  # gamma is 0 where impossible
        good = bool(ok)  # one read a piece (a piece is a whole batch of rows)
        counts = dict(rows=chunk.n_rows if good else 0, sequences=int(good and chunk.last),
                      impossible=int(not good and chunk.last),
                      first_impossible=chunk.seq_start if not good and chunk.last else -1)
        if numerics.defers_reads(x.device):  # 0-d device counts, as a batch of whole sequences gives them there:
            # one layout on every process (torch.distributed's one all-reduce, not a gather of pickles)
            counts = {k: torch.full((), v, dtype=torch.int64, device=x.device) for k, v in counts.items()}
        return HMMStats(
            start=post.start, trans=post.trans, emission=estats,
            loglik=post.loglik.sum() if good else torch.zeros((), dtype=torch.float64, device=x.device), **counts)

    def objective(self, stats: HMMStats) -> Objective:
        """The log-likelihood of the possible sequences, per time step."""
        loglik, rows = _numbers(stats.loglik, stats.rows)
        return Objective(loglik, rows)

    def m_step(self, stats: HMMStats, params: HMMParams) -> Step[HMMParams]:
        rows, impossible, first_impossible = _numbers(stats.rows, stats.impossible, stats.first_impossible)
        stats = replace(stats, rows=int(rows), impossible=int(impossible), first_impossible=int(first_impossible))
        if stats.rows == 0:
            raise NumericalError(
                "every sequence is impossible under the current parameters (zero-probability start or "
                "transitions); give startprob_/transmat_ non-zero entries where the data needs them"
            )
        startprob, transmat = params.startprob, params.transmat
        if "s" in self.params:
            startprob = _dirichlet_map(stats.start, self.startprob_prior, params.startprob)
        if "t" in self.params:
            transmat = _dirichlet_map(stats.trans, self.transmat_prior, params.transmat)
        emission, valid = self.emission.m_step(stats.emission, params.emission, self.params)
        notes, exact = (), True
        if self.mend is not None:
            valid = valid.reshape(-1).cpu() & ~self.mend.collapsed(emission).cpu()
        if not bool(valid.all()):
            bad = torch.nonzero(~valid.reshape(-1)).reshape(-1).tolist()
            if self.mend is None:
                raise NumericalError(f"the emission parameters of state {bad[0]} cannot be estimated from its rows "
                                     f"(a covariance that is not positive definite); {self.advice}")
            # a jump, not an ascent: the next likelihood may fall (as after a re-seed)
            emission, exact = self.mend.fix(emission, ~valid.reshape(-1)), False
            notes = (Note(self.mend.category, f"the covariance of state(s) {bad} collapsed {{when}} (singular: a "
                                              f"constant feature, or fewer rows than features); "
                                              f"{self.mend.what}", once=True),)
        if stats.impossible:
            notes += (Note(
                ImpossibleSequenceWarning,
                f"{stats.impossible} sequence(s) are impossible under the current parameters (first: sequence "
                f"{stats.first_impossible}): a zero-probability start, transition or emission; they are left out of "
                "this fit. Give startprob_/transmat_/emission parameters non-zero entries where the data needs them.",
                once=True,
            ),)
        gain = self.prior_gain(HMMParams(startprob, transmat, emission), params)
        report = Report(exact=exact, notes=notes, total=float(stats.loglik), prior_gain=gain / stats.rows)
        return Step(HMMParams(startprob, transmat, emission), report)

    def translate(self, params: HMMParams, offset: Tensor | None) -> HMMParams:
        """The parameters of the same HMM for rows moved by ``offset`` (None: none)."""
        if offset is None:
            return params
        return HMMParams(params.startprob, params.transmat, self.emission.translate(params.emission, offset))

    def moved(self, offset: Tensor | None) -> HMMModel:
        """The same HMM for rows moved by ``offset`` (None: none): where the emission's
        prior has a location (hmmlearn's ``means_prior``), it moves with the rows, so a fit
        on rows less a shift (``sources.arrays.choose_shift``) is the fit on the rows."""
        if offset is None or not self.emission.translatable:
            return self
        return HMMModel(self.emission.moved(offset), self.n_components, self.dtype, params=self.params,
                        startprob_prior=self.startprob_prior, transmat_prior=self.transmat_prior, advice=self.advice,
                        mend=self.mend)

    def to_tensors(self, params: HMMParams) -> dict[str, Tensor]:
        return {"startprob": params.startprob, "transmat": params.transmat, **self.emission.to_tensors(params.emission)}

    def from_tensors(self, tensors) -> HMMParams:
        return HMMParams(tensors["startprob"].double(), tensors["transmat"].double(), self.emission.from_tensors(tensors))

    def flatten(self, params: HMMParams) -> Tensor:
        """[start logits, transition logits row by row, the emission's vector]; zero
        probabilities (structural zeros) stay zero through :meth:`unflatten`."""
        log_pi = torch.log(params.startprob)
        log_a = torch.log(params.transmat)
        return torch.cat([_centred(log_pi), _centred(log_a).reshape(-1), self.emission.flatten(params.emission)])

    def unflatten(self, vector: Tensor, like: HMMParams) -> HMMParams:
        K = like.n_components
        pi = _softmax_keeping_zeros(vector[:K], like.startprob)
        A = _softmax_keeping_zeros(vector[K : K + K * K].reshape(K, K), like.transmat)
        return HMMParams(pi, A, self.emission.unflatten(vector[K + K * K :], like.emission))

    def sample(self, params: HMMParams, n: int, generator: torch.Generator,
               first: int | None = None) -> tuple[Tensor, Tensor]:
        """One sequence of n steps: (X (n, D), states (n,)). CPU, float64. ``first``: the
        first step's state (else drawn from the start probabilities)."""
        u = torch.rand(n, generator=generator, dtype=torch.float64).numpy()
        cdf_start = np.cumsum(params.startprob.double().cpu().numpy())
        cdf = np.cumsum(params.transmat.double().cpu().numpy(), 1)
        states = np.empty(n, dtype=np.int64)
        K = len(cdf_start)
        s = min(int(np.searchsorted(cdf_start, u[0] * cdf_start[-1], side="right")), K - 1) if first is None else first
        states[0] = s
        rows = [list(r) for r in cdf]
        import bisect

        for t in range(1, n):
            row = rows[s]
            s = min(bisect.bisect_right(row, u[t] * row[-1]), K - 1)
            states[t] = s
        st = torch.from_numpy(states)
        return self.emission.sample(params.emission, st, generator).cpu(), st


def _numbers(*values: Tensor | float) -> list[float]:
    """Numbers and 0-d tensors as Python floats, the tensors read back in one copy."""
    tensors = [v for v in values if isinstance(v, Tensor)]
    if not tensors:
        return [float(v) for v in values]
    device = tensors[0].device
    read = iter(torch.stack([v.to(device, torch.float64).reshape(()) for v in tensors]).tolist())
    return [next(read) if isinstance(v, Tensor) else float(v) for v in values]


def _centred(log_p: Tensor) -> Tensor:
    """Log-probabilities as logits: each row's finite entries centred at zero; a zero
    probability's entry is 0 (it stays zero through :func:`_softmax_keeping_zeros`)."""
    finite = torch.isfinite(log_p)
    count = finite.sum(-1, keepdim=True).clamp(min=1)
    zeros = torch.zeros_like(log_p)
    mean = torch.where(finite, log_p, zeros).sum(-1, keepdim=True) / count
    return torch.where(finite, log_p - mean, zeros)


def _softmax_keeping_zeros(logits: Tensor, like: Tensor) -> Tensor:
    """Softmax over each row's entries that are non-zero in ``like``."""
    masked = torch.where(like > 0, logits, torch.full_like(logits, -torch.inf))
    return torch.softmax(masked, -1)


def _is_one(prior) -> bool:
    return bool(torch.all(torch.as_tensor(prior) == 1.0))


def _dirichlet_gain(prior, new: Tensor, old: Tensor) -> float:
    """How much a step from ``old`` to ``new`` probabilities raised the log-density of a
    Dirichlet(prior) on each row: sum (prior - 1) (log new - log old), over the entries
    that moved (so a zero that stays zero adds nothing). +inf where a prior below 1 lets
    an entry reach 0."""
    a = torch.broadcast_to(torch.as_tensor(prior, dtype=torch.float64, device=new.device) - 1.0, new.shape)
    moved = (new != old) & (a != 0)
    if not bool(moved.any()):
        return 0.0
    return float((a[moved] * (torch.log(new[moved].double()) - torch.log(old[moved].double()))).sum())


def _dirichlet_map(counts: Tensor, prior, old: Tensor) -> Tensor:
    """hmmlearn's MAP update: max(prior - 1 + counts, 0), zero where old is zero, rows
    normalised. A row with no mass (a state never visited) keeps its old values, so
    rows always sum to 1 (hmmlearn leaves such a row all zero)."""
    prior = torch.as_tensor(prior, dtype=torch.float64, device=counts.device)
    new = torch.clamp(prior - 1.0 + counts, min=0.0)
    new = torch.where(old == 0, torch.zeros_like(new), new)
    total = new.sum(-1, keepdim=True)
    return torch.where(total > 0, new / torch.where(total > 0, total, torch.ones_like(total)), old)
