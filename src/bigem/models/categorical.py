"""The categorical component: K distributions over the categories of D columns, each
column with its own alphabet (latent class analysis). Math only.

A row holds one code per column (0..M_j-1, stored as floats like every other row; -1
is an entry that carries no information, such as a category unknown to a fitted model
read with ``handle_unknown='ignore'``, or with ``gaps`` a NaN: a missing value). The M_j of every column lie side by side in
one axis of T = sum_j M_j: parameters are ``probabilities`` (K, T), whose segment j
sums to one. Each entry contributes its own log-probability, a sum over columns, so an
entry that is missing simply contributes nothing.

Kernels: one column (hmmlearn's CategoricalHMM) gathers from the (K, M)
log-probabilities; several columns turn a block of rows into its one-hot matrix
(n, T + 1), whose last column takes the codes -1, and both the log-densities and the
statistics are one product with it. The M-step is the Dirichlet MAP,
max(prior - 1 + counts, 0) normalised within each column: ``prior`` is hmmlearn's
concentration (1: none), a mixture's pseudo-count alpha is ``prior = 1 + alpha``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core import jit, numerics, parallel
from .._core.numerics import squared_distances
from .._core.stats import additive
from .._core.workspace import Workspace
from .gaps import coordinate_uniforms, drawn_components, observed_distances

_BLOCK_ROWS = 1 << 16  # one column: rows per block
_BLOCK_BYTES = 4 << 20  # several columns: the one-hot block in a few MB


@dataclass(frozen=True, slots=True)
class CategoricalParams:
    """probabilities (K, T): row k holds component k's distribution over each column's
    categories, the columns' segments side by side. ``log_probabilities`` (K, T), where
    given, are what the E-step takes instead of their logarithm: a variational HMM's
    exp(E[log phi]) underflows to 0 where a Dirichlet's concentration is ~1e-20 (its
    log, ~-1e20, stays finite, as hmmlearn keeps it)."""

    probabilities: Tensor
    log_probabilities: Tensor | None = None

    @property
    def n_components(self) -> int:
        return int(self.probabilities.shape[0])

    def to(self, device: torch.device | str) -> CategoricalParams:
        logs = None if self.log_probabilities is None else self.log_probabilities.to(device)
        return CategoricalParams(self.probabilities.to(device), logs)


@additive
@dataclass(frozen=True, slots=True)
class CategoricalStats:
    """n_k (K,): responsibility mass; counts (K, T): the responsibility mass of each
    category of each column in each component; float64."""

    n_k: Tensor
    counts: Tensor

    def rebase(self, like: CategoricalStats) -> CategoricalStats:
        return self


@dataclass(frozen=True, slots=True)
class _Prepared:
    log_probs: Tensor  # (K, T + 1) kernel dtype; log 0 = -inf (impossible there); the last column 0 (code -1)
    centres: Tensor  # (K, T) kernel dtype: the probabilities, for nearest-centre assignment
    # (T + 1, K): log_probs transposed and contiguous, the table one column's rows gather
    # from (a gather from the strided view log_probs.T took 7.5x as long: 5.1 against
    # 0.68 ms per 65,536 rows, K=8, one thread)
    by_code: Tensor

    @property
    def dtype(self) -> torch.dtype:
        return self.log_probs.dtype

    @property
    def n_components(self) -> int:
        return int(self.log_probs.shape[0])


class _Counts:
    """Responsibility mass per component and category. One column: every row's mass lies
    in one of the T + 1 categories (the last: code -1), so n_k is the counts' row sum,
    not a second pass over the rows."""

    def __init__(self, K: int, T: int, device: torch.device, single: bool) -> None:
        self.n_k = torch.zeros(K, dtype=torch.float64, device=device)
        self.counts = torch.zeros(K, T + 1, dtype=torch.float64, device=device)
        self.single = single

    def add(self, block: Tensor, rw: Tensor, w: Tensor | None) -> None:
        if self.single:  # block: the (n,) codes, -1 mapped to T
            self.counts.index_add_(1, block, rw.double())
        else:  # block: the (n, T + 1) one-hot rows
            self.n_k += rw.sum(1, dtype=torch.float64)
            self.counts += (rw @ block).double()

    def result(self) -> CategoricalStats:
        n_k = self.counts.sum(1) if self.single else self.n_k
        return CategoricalStats(n_k, self.counts[:, :-1].contiguous())


_PART_ROWS = 1 << 16  # rows per part of the compiled one-column kernels (fixed: sums do not depend on threads)


def _parts(n: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + _PART_ROWS, n)) for lo in range(0, max(n, 1), _PART_ROWS)]


def _check_codes(bad: list[int], T: int) -> None:
    first = next((b for b in bad if b >= 0), -1)
    if first >= 0:
        raise ValueError(f"row {first} holds a symbol outside 0..{T - 1}; the model has {T} symbols")


@jit.helper
def _table_row(v, T):  # pragma: no cover - compiled
    """The row of a per-symbol table (T + 1 rows) for the code ``v``: v itself, the
    last row T for a negative code or NaN (a missing value), or -1 where v is T or
    more (out of range)."""
    if not (v >= 0):
        return T
    if v >= T:
        return -1
    return int(v)


@jit.kernel
def _lookup(x, scaled, shift, eb, rows, lo, hi):  # pragma: no cover - compiled
    """Rows lo..hi-1 of one column of codes: eb[t] = scaled[code], rows[t] = shift[code]
    (a negative code or NaN: the last entry). Returns the first row whose code is out
    of range, or -1."""
    T = scaled.shape[0] - 1
    K = scaled.shape[1]
    for t in range(lo, hi):
        code = _table_row(x[t, 0], T)
        if code < 0:
            return t
        for k in range(K):
            eb[t, k] = scaled[code, k]
        rows[t] = shift[code]
    return -1


@jit.kernel
def _count(x, resp, counts, slot, lo, hi):  # pragma: no cover - compiled
    """counts[slot, code, k] += resp[t, k] over rows lo..hi-1 (a negative code or NaN:
    the last entry). Returns the first row whose code is out of range, or -1."""
    T = counts.shape[1] - 1
    K = counts.shape[2]
    for t in range(lo, hi):
        code = _table_row(x[t, 0], T)
        if code < 0:
            return t
        for k in range(K):
            counts[slot, code, k] += resp[t, k]
    return -1


# the least probability a mixture's M-step gives (see CategoricalComponent's ``floor``)
PROBABILITY_FLOOR = torch.finfo(torch.float64).tiny


class CategoricalComponent:
    """K categorical distributions over each of the columns' categories (``sizes``: M_j
    per column; an int is one column of that many symbols), with a Dirichlet prior of
    concentration ``prior`` (1: none; a float, or an array broadcasting to (K, T)).
    ``floor``: the least probability the M-step gives (0: none). A mixture sets the
    smallest normal float64, as StepMix clips at 1e-15: with no prior, a start from hard
    assignments can give a row's category probability 0 in every component, and the row
    no density at all; the floor keeps it explained and moves no other probability."""

    letters = "e"
    translatable = False  # codes, not positions
    failure = "Fitting the categorical mixture failed: every component lost its support"

    def __init__(self, sizes: int | Sequence[int], prior: Tensor | float = 1.0, dtype: torch.dtype = torch.float64,
                 advice: str = "check the symbols", floor: float = 0.0, gaps: bool = False) -> None:
        self.floor = float(floor)
        self.sizes = (int(sizes),) if isinstance(sizes, int) else tuple(int(m) for m in sizes)
        self.n_symbols = sum(self.sizes)  # T: every column's categories side by side
        self.prior = prior
        self.dtype = self.row_dtype = dtype  # codes beyond 2**24 in float32 are refused by the estimators
        self.advice = advice
        self._offsets = torch.tensor([0, *self.sizes[:-1]], dtype=torch.int64).cumsum(0)
        self._columns: Tensor | None = None  # made on first use: a size is checked before memory is spent on it
        self._ws = Workspace()
        # a NaN code is missing: read as the code -1 (log-density 0, marginalised; counted nowhere)
        self.gaps = gaps

    @property
    def _column(self) -> Tensor:
        """The column of each of the T categories, (T,) int64, for per-column sums."""
        if self._columns is None:
            sizes = torch.tensor(self.sizes, dtype=torch.int64)
            self._columns = torch.repeat_interleave(torch.arange(len(self.sizes)), sizes)
        return self._columns

    @property
    def n_columns(self) -> int:
        return len(self.sizes)

    @property
    def regularised(self) -> bool:
        return not bool(torch.all(torch.as_tensor(self.prior) == 1.0))

    def translate(self, p: CategoricalParams, offset: Tensor) -> CategoricalParams:
        return p

    def location(self, p: CategoricalParams) -> None:
        return None

    def make_params(self, probabilities: Tensor) -> CategoricalParams:
        return CategoricalParams(probabilities.to(torch.float64))

    # ------------------------------------------------------------------ E-step
    def prepare(self, p: CategoricalParams, device: torch.device) -> _Prepared:
        probs = p.probabilities.to(device)
        log_probs = torch.log(probs) if p.log_probabilities is None else p.log_probabilities.to(device, probs.dtype)
        padded = torch.cat([log_probs, log_probs.new_zeros(log_probs.shape[0], 1)], 1)
        padded = padded.to(self.dtype)
        return _Prepared(padded, probs.to(self.dtype), padded.T.contiguous())

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        if self.n_columns == 1:
            return _BLOCK_ROWS
        itemsize = torch.finfo(self.dtype).bits // 8
        return max(1024, _BLOCK_BYTES // ((self.n_symbols + 1 + K) * itemsize))

    def _codes(self, x: Tensor) -> Tensor:
        """(n, D) codes -> (n, D) int64 positions in the T + 1 axis (-1 -> T). A code outside
        its column's 0..M_j-1 goes to T too: rows a GPU's first pass has not yet refused
        (their check is read once the pass ends) must not index past the table."""
        if self.gaps and x.is_floating_point():
            x = torch.nan_to_num(x, nan=-1.0)  # a gap: the code that carries no information
        codes = x.long()
        T = self.n_symbols
        offsets, sizes = self._ws.derived(  # copied to the device once, not once a block
            "bounds", self._offsets, codes.device,
            lambda: (self._offsets.to(codes.device), torch.tensor(self.sizes, dtype=torch.int64, device=codes.device)))
        return torch.where((codes < 0) | (codes >= sizes), T, codes + offsets)

    def block(self, p: _Prepared, x: Tensor) -> Tensor:
        """One column: the (n,) positions; several: the (n, T + 1) one-hot rows (a reused buffer)."""
        idx = self._codes(x)
        if self.n_columns == 1:
            return idx[:, 0]
        onehot = self._ws.get("onehot", (x.shape[0], self.n_symbols + 1), p.dtype, x.device)
        onehot.zero_()
        return onehot.scatter_(1, idx, 1.0)

    def log_joint(self, p: _Prepared, block: Tensor, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        if self.n_columns == 1:
            if into is not None:
                return torch.index_select(p.by_code, 0, block, out=into).add_(log_w)
            return p.log_probs[:, block] + log_w[:, None]
        if into is not None:
            return torch.addmm(log_w[None, :], block, p.log_probs.T, out=into)
        return torch.addmm(log_w[:, None], p.log_probs, block.T)

    def scaled_log_prob(self, p: CategoricalParams, x: Tensor) -> tuple[Tensor, Tensor] | None:
        """One column on the CPU with compiled kernels: (exp(log p_k(x) - s(x)) (n, K),
        s(x) (n,) float64) with s(x) the largest log p_k(x) (0 where no component gives
        x any probability), looked up in a (T + 1, K) table built once: what an HMM's
        compiled forward-backward pass takes, in one pass over the rows instead of
        codes, a gather, a maximum and an exponential over (n, K). Otherwise None (the
        caller scales :func:`components.log_prob`)."""
        if self.n_columns != 1 or not jit.runs_on(x.device) or not x.is_floating_point():
            return None
        table = self.prepare(p, x.device).by_code  # (T + 1, K); the last row (code -1): zeros
        shift = torch.nan_to_num(table.amax(1), nan=0.0, posinf=0.0, neginf=0.0)
        scaled = torch.exp(table - shift[:, None])
        n, K = x.shape[0], table.shape[1]
        eb = torch.empty(n, K, dtype=table.dtype)
        rows = torch.empty(n, dtype=torch.float64)
        xs = x.contiguous().numpy()
        args = (scaled.numpy(), shift.double().numpy(), eb.numpy(), rows.numpy())
        bounds = _parts(n)
        bad = parallel.run([lambda lo=lo, hi=hi: _lookup(xs, *args, lo, hi) for lo, hi in bounds])
        _check_codes(bad, self.n_symbols)
        return eb, rows

    def compiled_statistics(self, p: CategoricalParams, x: Tensor, resp: Tensor) -> CategoricalStats | None:
        """One column on the CPU with compiled kernels: the statistics of rows x with
        responsibilities resp (n, K) in one pass (no codes, no transposed copy), parts
        fixed by the rows added in order (the same bits on any thread count). Otherwise
        None (the caller takes :func:`components.statistics`)."""
        if self.n_columns != 1 or not jit.runs_on(x.device) or not x.is_floating_point():
            return None
        n, K = resp.shape
        T = self.n_symbols
        bounds = _parts(n)
        counts = np.zeros((len(bounds), T + 1, K))
        xs, rs = x.contiguous().numpy(), resp.detach().contiguous().numpy()
        bad = parallel.run([lambda i=i, lo=lo, hi=hi: _count(xs, rs, counts, i, lo, hi)
                            for i, (lo, hi) in enumerate(bounds)])
        _check_codes(bad, T)
        total = np.zeros((T + 1, K))
        for part in counts:  # in part order
            total += part
        total_t = torch.from_numpy(total.T.copy())  # (K, T + 1)
        return CategoricalStats(total_t.sum(1), total_t[:, :-1].contiguous())

    def accumulator(self, p: _Prepared) -> _Counts:
        return _Counts(p.n_components, self.n_symbols, p.log_probs.device, self.n_columns == 1)

    # ------------------------------------------------------------------ initialisation
    def embed(self, x: Tensor) -> Tensor:
        """Rows in the space k-means seeds in: one-hot (n, T), so that a squared distance
        is twice the number of columns that differ, and a mean is each column's
        category frequencies (a probability row). With gaps, a missing column's entries
        are NaN: k-means leaves them out (k-POD), as it leaves out any gap."""
        idx = self._codes(x)
        out = torch.zeros(x.shape[0], self.n_symbols + 1, dtype=x.dtype if x.is_floating_point() else torch.float64,
                          device=x.device)
        out = out.scatter_(1, idx, 1.0)[:, :-1]
        if self.gaps and x.is_floating_point():
            gap = torch.isnan(x)
            if numerics.defers_reads(x.device) or bool(gap.any()):  # a GPU asks nothing: no gap, same answer
                out = out.masked_fill(gap[:, self._column.to(x.device)], float("nan"))
        return out

    def centres_of(self, p: CategoricalParams) -> Tensor:
        return p.probabilities

    def at(self, centres: Tensor) -> CategoricalParams:
        """Components whose probabilities are k-means centres of one-hot rows (K, T),
        normalised within each column."""
        c = centres.to(torch.float64).clamp(min=0.0)
        total = self._segment_sums(c)
        return CategoricalParams(torch.where(total > 0, c / torch.where(total > 0, total, 1.0), 1.0 / self._size_of(c)))

    def nearest(self, p: _Prepared, block: Tensor) -> tuple[Tensor, Tensor]:
        """The nearest centre by squared distance in the one-hot space, over each row's
        observed columns (with gaps, a missing column's code is the last, T)."""
        rows = torch.nn.functional.one_hot(block, self.n_symbols + 1).to(p.dtype) if self.n_columns == 1 else block
        if self.gaps:  # column j is observed where its one-hot entries hold the row's 1
            column = self._column.to(rows.device)
            seen = torch.zeros(rows.shape[0], self.n_columns, dtype=rows.dtype, device=rows.device)
            seen = seen.index_add_(1, column, rows[:, :-1])[:, column]
            best, labels = observed_distances(rows[:, :-1], p.centres, seen == 0).min(1)
        else:
            best, labels = squared_distances(rows[:, :-1], p.centres).min(1)
        return labels, best.neg_()

    # ------------------------------------------------------------------ M-step
    def _segment_sums(self, values: Tensor) -> Tensor:
        """Each entry's column total: (K, T) -> (K, T)."""
        column = self._column.to(values.device)
        totals = torch.zeros(values.shape[0], self.n_columns, dtype=values.dtype, device=values.device)
        return totals.index_add_(1, column, values)[:, column]

    def _size_of(self, values: Tensor) -> Tensor:
        """M_j of each entry's column, (T,)."""
        return torch.tensor(self.sizes, dtype=values.dtype, device=values.device)[self._column.to(values.device)]

    def m_step(self, s: CategoricalStats, old: CategoricalParams | None, update: str = "e") -> tuple[CategoricalParams, Tensor]:
        """max(prior - 1 + counts, 0), normalised within each column, at least ``floor``; a
        column of a component with nothing to estimate from keeps its ``old`` probabilities."""
        valid = torch.ones(s.counts.shape[0], dtype=torch.bool)
        if "e" not in update:
            return old, valid
        prior = torch.as_tensor(self.prior, dtype=torch.float64, device=s.counts.device)
        new = torch.clamp(prior - 1.0 + s.counts, min=0.0)
        total = self._segment_sums(new)
        fallback = old.probabilities.to(new) if old is not None else 1.0 / self._size_of(new).expand_as(new)
        probabilities = torch.where(total > 0, new / torch.where(total > 0, total, 1.0), fallback)
        if self.floor > 0:
            probabilities = probabilities.clamp(min=self.floor)
        return CategoricalParams(probabilities), valid

    def prior_gain(self, new: CategoricalParams, old: CategoricalParams) -> float:
        """The Dirichlet prior's: sum (prior - 1) (log new - log old) over the entries that moved."""
        a = torch.broadcast_to(torch.as_tensor(self.prior, dtype=torch.float64, device=new.probabilities.device) - 1.0,
                               new.probabilities.shape)
        moved = (new.probabilities != old.probabilities) & (a != 0)
        if not bool(moved.any()):
            return 0.0
        return float((a[moved] * (torch.log(new.probabilities[moved]) - torch.log(old.probabilities[moved]))).sum())

    def reseed(self, p: CategoricalParams, dead: list[int], rows: Tensor, weights: Tensor) -> CategoricalParams:
        """Dead components move near ``rows``: half the row's categories, half the live
        components' average distribution of each column."""
        live = torch.ones(p.n_components, dtype=torch.bool, device=p.probabilities.device)
        live[dead] = False
        lw = weights[live].to(p.probabilities)
        average = (lw[:, None] * p.probabilities[live]).sum(0) / lw.sum()
        probs = p.probabilities.clone()
        onehot = self.embed(rows.to(probs))
        for j, k in enumerate(dead):  # a missing column (NaN): the average alone
            probs[k] = torch.where(torch.isnan(onehot[j]), average, 0.5 * onehot[j] + 0.5 * average)
        return CategoricalParams(probs / self._segment_sums(probs))

    def impute(self, p: _Prepared, x: Tensor, resp: Tensor, uniforms: Tensor | None = None,
               normals: Tensor | None = None) -> Tensor:
        """x (n, columns) of codes with every gap completed, (n, columns) float64: the most
        probable category given the row's observed values (of sum_k r_k p_kj), or with
        ``uniforms`` (n,) and ``normals`` (n, columns) a draw (a component by its posterior
        ``resp`` (K, n), then each gap by the inverse of its column's distribution). An
        unknown category (code -1, ``handle_unknown='ignore'``) is no information, as in the
        density: it is completed as a gap is."""
        out, gap = x.double(), torch.isnan(x) | (x < 0)
        if not bool(gap.any()):
            return out
        probs = p.centres.double()  # (K, T)
        picked = None if uniforms is None else probs[drawn_components(resp, uniforms)]  # (n, T)
        u = None if normals is None else coordinate_uniforms(normals)
        for j, (start, size) in enumerate(zip(self._offsets.tolist(), self.sizes)):
            rows = gap[:, j]
            if not bool(rows.any()):
                continue
            if picked is None:
                code = (resp.double().T[rows] @ probs[:, start : start + size]).argmax(1).double()
            else:
                cdf = torch.cumsum(picked[rows, start : start + size], 1)
                code = (cdf < u[rows, j, None] * cdf[:, -1:]).sum(1).clamp_(max=size - 1).double()
            out[rows, j] = code
        return out

    def expected_log_density(self, p: CategoricalParams, s: CategoricalStats) -> Tensor:
        """sum_k sum_n r_nk log p_k(x_n) from the statistics alone (0-d, float64): each
        category's mass times its log-probability. For fixed responsibilities
        (``MixtureModel.restate``)."""
        return torch.special.xlogy(s.counts, p.probabilities.to(s.counts.device, torch.float64)).sum()

    def decrease_tolerance(self, p: CategoricalParams, weights: Tensor, value: float) -> float:
        """Rounding of the kernel's sums: the mean log-likelihood carries about eps of its size."""
        return 100 * torch.finfo(self.dtype).eps * (1.0 + abs(value))

    # ------------------------------------------------------------------ the rest
    def sample(self, p: CategoricalParams, labels: Tensor, generator: torch.Generator) -> Tensor:
        """One code per column for component ``labels[i]`` of each row (float64)."""
        probs = p.probabilities.cpu()[labels.cpu()]
        out = torch.empty(labels.shape[0], self.n_columns, dtype=torch.float64)
        for j, (start, size) in enumerate(zip(self._offsets.tolist(), self.sizes)):
            cdf = torch.cumsum(probs[:, start : start + size], 1)
            u = torch.rand(labels.shape[0], 1, generator=generator, dtype=torch.float64) * cdf[:, -1:]
            out[:, j] = torch.searchsorted(cdf.contiguous(), u, right=True).clamp_(max=size - 1)[:, 0]
        return out

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * (self.n_symbols - self.n_columns)

    def to_tensors(self, p: CategoricalParams) -> dict[str, Tensor]:
        return {"probabilities": p.probabilities}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> CategoricalParams:
        return self.make_params(tensors["probabilities"])

    def flatten(self, p: CategoricalParams) -> Tensor:
        """Each column's logits (log p minus its mean over the possible categories; 0 where p = 0)."""
        probs = p.probabilities
        positive = probs > 0
        log_p = torch.where(positive, torch.log(torch.where(positive, probs, torch.ones_like(probs))), 0.0)
        count = self._segment_sums(positive.to(probs.dtype)).clamp(min=1)
        return torch.where(positive, log_p - self._segment_sums(log_p) / count, 0.0).reshape(-1)

    def unflatten(self, vector: Tensor, like: CategoricalParams) -> CategoricalParams:
        """A softmax within each column, over the categories possible in ``like``."""
        logits = vector.reshape(like.probabilities.shape)
        allowed = like.probabilities > 0
        logits = torch.where(allowed, logits, -torch.inf)
        column = self._column.to(logits.device)
        peak = torch.full((logits.shape[0], self.n_columns), -torch.inf, dtype=logits.dtype, device=logits.device)
        peak = peak.scatter_reduce(1, column.expand_as(logits), logits, "amax")[:, column]
        e = torch.exp(logits - torch.where(torch.isfinite(peak), peak, 0.0))
        return CategoricalParams(e / self._segment_sums(e))


def softmax_where(logits: Tensor, allowed: Tensor) -> Tensor:
    """Softmax over the last axis, over the ``allowed`` entries only (the rest: 0)."""
    return torch.softmax(torch.where(allowed, logits, torch.full_like(logits, -torch.inf)), -1)


def _logits(p: Tensor) -> Tensor:
    """Row-centred log-probabilities, 0 where a probability is 0 (one distribution per row)."""
    positive = p > 0
    log_p = torch.where(positive, torch.log(torch.where(positive, p, torch.ones_like(p))), torch.zeros_like(p))
    mean = log_p.sum(-1, keepdim=True) / positive.sum(-1, keepdim=True).clamp(min=1)
    return torch.where(positive, log_p - mean, torch.zeros_like(p))
