"""The multinomial component: K distributions over a vocabulary of D words. Math only.

A row is a bag of words, the count of each word in one document. Component k draws
each of the document's N = sum_j x_j tokens from the probabilities theta_k (D,):

    log p_k(x) = log N! - sum_j log x_j!  +  sum_j x_j log theta_kj.

The first two terms, the log multinomial coefficient, are the same for every component:
they shift each row's log-likelihood but no responsibility. The model conditions on the
length N (it does not fit it); each component's mean length is kept for sampling only.

Statistics are the responsibility mass n_k and the responsibility-weighted word counts
sums_kj = sum_n r_nk x_nj (float64, added run by run of a few thousand rows, each run's
product taken in the compute dtype); the M-step is the Dirichlet MAP
theta_kj = (sums_kj + alpha) / (sum_j sums_kj + D alpha), scikit-learn's MultinomialNB
smoothing, so no word ever has probability 0 (log-probability -inf).

Rows arrive as :class:`~bigem._core.sparse.SparseRows` (a dense tensor is converted a
block at a time), and the E-step of a block is two sparse-dense products in the compute
dtype: X @ (log(theta) - c)^T (n x K), c each word's mean log-probability over the
components, and X^T @ R (D x K, added to float64 sums); each row's x . c and log
coefficient are added in float64 (see ``MultinomialComponent.prepare``), and the
log-joints are float64. On the CPU
both run through scipy's CSR kernels in place, which release the GIL: blocks of rows go
to the threads of :mod:`~bigem._core.parallel` (torch's thread count), each thread
with one (D, K) scratch for its runs of X^T @ R. The runs are fixed by the rows alone
and added in their order, so the statistics are the same bits on any number of
threads. Elsewhere (CUDA) through torch's sparse CSR products (cuSPARSE). A dense
(n, D) copy of the data is never made. Between the two products, on the CPU with numba
(``bigem[fast]``), each row's log coefficient, log-sum-exp, responsibilities and their
masses come from one compiled pass over the rows (:mod:`.multinomial_fused`, the
component's ``expect``) instead of a dozen tensor operations and a pass of numpy's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import torch
from torch import Tensor

from .._core import jit, parallel
from .._core.sparse import SparseRows
from .._core.stats import additive
from .._core.workspace import Workspace
from . import multinomial_fused as fused
from .mixture import _EXP_FLOOR, MixtureModel

# Rows per block. On the CPU a chunk is one block: the sparse products stream through
# the chunk's entries at the same speed whatever the block, and a whole chunk lets its
# rows' log multinomial coefficients be kept with the chunk (``SparseRows.memo``) for
# sources that keep their chunks in memory or hand their memos out again. On a GPU,
# blocks bound the scratch.
_CPU_BLOCK_ROWS = 1 << 30
_GPU_BLOCK_ROWS = 1 << 16
# Rows per float32 run of the statistics' product, each run added in float64: about
# 1e6 entries at 100 words per document, so the (D, K) addition costs a few percent.
RUN_ROWS = 8192
# Entries per thread below which a product stays on fewer threads (a hand-over costs
# tens of microseconds; 65536 entries x K = 20 take about half a millisecond).
_MIN_PART_ENTRIES = 1 << 16
# Blocks of rows a thread of X @ W takes, one after another as it comes free: a thread
# that shares its core (a file decoding beside, another process) then takes fewer, where
# one block a thread would make the others wait for it.
_PIECES_PER_THREAD = 4
# Entries per word of the vocabulary in a float64 run of X^T @ R (see run_rows).
_RUN_WORDS = 4
# The per-thread (D, K) scratches of X^T @ R together stay within this: fewer threads
# for vast vocabularies (2**20 words x K = 50 in float32 is 200 MB a thread).
_SCRATCH_BYTES = 256 << 20
# Counts below this are looked up in a table of log-factorials (exact in float64).
_TABLE = 1 << 12
# float32 holds every whole number up to 2**24: sums of counts below it are exact.
_EXACT32 = 1 << 24


def _scipy_kernels():
    """scipy's in-place CSR kernels, or None without scipy (torch's products then serve)."""
    try:
        from scipy.sparse import _sparsetools
    except ImportError:  # pragma: no cover - scipy is in the 'text' extra
        return None
    return _sparsetools if hasattr(_sparsetools, "csr_matvecs") and hasattr(_sparsetools, "csc_matvecs") else None


# ---------------------------------------------------------------------------- kernels
def _parts(nnz: int) -> int:
    """Threads for a CPU product over ``nnz`` entries: as many as allowed
    (:func:`~bigem._core.parallel.threads`), each with at least ``_MIN_PART_ENTRIES``."""
    return max(1, min(parallel.threads(), nnz // _MIN_PART_ENTRIES))


def product(rows: SparseRows, w: Tensor, out: Tensor, use_scipy: bool = True) -> Tensor:
    """out = X @ w for sparse rows X (n, D) and a dense (D, K) matrix, into ``out`` (n, K)
    of w's dtype (values cast to it).

    On the CPU, blocks of rows with about equal numbers of entries (``_PIECES_PER_THREAD``
    a thread) go to the threads of :mod:`~bigem._core.parallel` as they come free: each
    output row is one thread's sum over its entries in order, so ``out`` is the same bit
    for bit on any number of threads."""
    n, D = rows.shape
    values = rows.values if rows.dtype == w.dtype else rows.values.to(w.dtype)
    kernels = _scipy_kernels() if use_scipy and w.device.type == "cpu" else None
    if kernels is not None and not out.is_contiguous():  # scipy writes a flat view: give it one
        return out.copy_(product(rows, w, torch.empty(out.shape, dtype=out.dtype), use_scipy))
    if kernels is not None:
        if not rows.nnz:
            return out.zero_()
        K = w.shape[1]
        ptr = rows.indptr.to(rows.indices.dtype).numpy()
        idx, val, flat_w, dest = rows.indices.numpy(), values.numpy(), w.contiguous().numpy().reshape(-1), out.numpy()

        workers = _parts(rows.nnz)
        pieces = 1 if workers == 1 else min(rows.nnz // _MIN_PART_ENTRIES, _PIECES_PER_THREAD * workers)
        bounds = parallel.balanced_rows(ptr, pieces)
        cuts = [(a, b) for a, b in zip(bounds, bounds[1:]) if b > a]

        def block(i: int, _) -> None:
            a, b = cuts[i]
            part = dest[a:b].reshape(-1)
            part.fill(0)
            kernels.csr_matvecs(b - a, D, K, ptr[a : b + 1], idx, val, flat_w, part)

        parallel.each(len(cuts), block, lambda: None, workers)
        return out
    if rows.nnz == 0:
        return out.zero_()
    csr = SparseRows(rows.indptr, rows.indices, values, D).csr()
    return out.copy_(torch.mm(csr, w))


def transposed_product(rows: SparseRows, r: Tensor, into: Tensor, use_scipy: bool = True,
                       ws: Workspace | None = None) -> None:
    """into += X^T @ r for sparse rows X (n, D) and r (n, K); ``into`` is (D, K) float64,
    contiguous. Every entry adds r's row times its value to its word's row.

    The rows go in runs (:func:`run_rows`): each run's product is taken in r's dtype into
    a (D, K) scratch and added to ``into`` in float64. In float32 this bounds the float32
    rounding to one run (as the Gaussian's float32 moments do over 256 rows), and the
    float32 product costs half the float64 one (measured: 128 against 276 ms over 4.4e6
    entries, K = 20, one thread). On the CPU the runs are spread over the threads of
    :mod:`~bigem._core.parallel`, each with its own scratch (``ws``: a per-thread
    workspace that keeps it), and added in run order: runs are fixed by the rows alone,
    so ``into`` comes out the same bit for bit on any number of threads. A float64 block
    that makes one run is added straight into ``into``. Elsewhere (CUDA): float64 in one
    product, float32 by runs."""
    n, D = rows.shape
    if rows.nnz == 0:
        return
    K = r.shape[1]
    kernels = _scipy_kernels() if use_scipy and r.device.type == "cpu" else None
    if kernels is None:
        _torch_transposed_product(rows, r, into, ws)
        return
    values = rows.values if rows.dtype == r.dtype else rows.values.to(r.dtype)
    ptr = rows.indptr.to(rows.indices.dtype).numpy()
    idx, val, flat_r, total = rows.indices.numpy(), values.numpy(), r.contiguous().numpy(), into.numpy()
    step = run_rows(n, D, rows.nnz, r.dtype)
    starts = [s for s in range(0, n, step) if ptr[min(s + step, n)] > ptr[s]]  # runs with entries

    def product_into(a: int, dest: np.ndarray) -> None:
        b = min(a + step, n)
        kernels.csc_matvecs(D, b - a, K, ptr[a : b + 1], idx, val, flat_r[a:b].reshape(-1), dest.reshape(-1))

    if r.dtype == torch.float64 and step >= n:
        product_into(0, total)
        return

    def scratch() -> np.ndarray:
        buf = torch.empty(D, K, dtype=r.dtype) if ws is None else ws.get("run_sums", (D, K), r.dtype, r.device)
        return buf.numpy()

    def compute(i: int, part: np.ndarray) -> None:
        part.fill(0)
        product_into(starts[i], part)

    add = fused.add_into if jit.runs_on(r.device) else lambda t, p: np.add(t, p, out=t)

    def combine(i: int, part: np.ndarray) -> None:
        add(total.reshape(-1), part.reshape(-1))

    scratches = max(1, _SCRATCH_BYTES // (D * K * r.element_size()))  # each thread holds one
    parallel.fold_in_order(len(starts), compute, combine, scratch, min(_parts(rows.nnz), scratches))


def baseline(rows: SparseRows, centre: Tensor) -> Tensor:
    """X @ centre (n,) float64 for sparse rows X (n, D) and a (D,) float64 vector: the
    compiled kernel where it runs, else torch (a GPU's, every entry widened)."""
    if jit.runs_on(rows.device):
        return fused.baseline(rows, centre, _parts(rows.nnz))
    out = torch.zeros(rows.shape[0], dtype=torch.float64, device=rows.device)
    if rows.nnz:
        terms = rows.values.double() * centre.to(rows.device)[rows.indices.long()]
        out.index_add_(0, rows.row_ids().to(rows.device), terms)
    return out


def run_rows(n: int, D: int, nnz: int, dtype: torch.dtype) -> int:
    """Rows per run of :func:`transposed_product`, from the block's shape alone (never
    from the thread count). float32: ``RUN_ROWS``, which bounds its rounding. float64:
    at least ``RUN_ROWS`` and enough rows for about ``_RUN_WORDS`` entries per word of
    the vocabulary, so that clearing and adding a run's (D, K) scratch stays a small
    part of its product (a vocabulary of 2**20 words makes runs of whole chunks)."""
    if dtype != torch.float64 or nnz == 0:
        return RUN_ROWS
    return max(RUN_ROWS, -(-_RUN_WORDS * D * n // nnz))


def _torch_transposed_product(rows: SparseRows, r: Tensor, into: Tensor, ws: Workspace | None) -> None:
    """:func:`transposed_product` through torch's sparse products (CUDA, or no scipy)."""
    n, D = rows.shape
    values = rows.values if rows.dtype == r.dtype else rows.values.to(r.dtype)
    rows = SparseRows(rows.indptr, rows.indices, values, D)
    r = r.contiguous()
    if r.dtype == torch.float64:
        into += torch.mm(rows.csr().t(), r)  # X^T: X's arrays read column-wise (CSC), made CSR by torch
        return
    scratch = torch.empty(D, r.shape[1], dtype=r.dtype, device=r.device) if ws is None else \
        ws.get("run_sums", (D, r.shape[1]), r.dtype, r.device)
    for start in range(0, n, RUN_ROWS):
        run = rows[start : start + RUN_ROWS]
        if run.nnz:
            scratch.zero_()
            scratch += torch.mm(run.csr().t(), r[start : start + RUN_ROWS])
            into += scratch


_LOG_FACTORIALS: dict[torch.device, Tensor] = {}


def _log_factorials(device: torch.device) -> Tensor:
    """log k! for k < ``_TABLE``, float64 on ``device`` (made once a device)."""
    table = _LOG_FACTORIALS.get(device)
    if table is None:
        table = _LOG_FACTORIALS[device] = torch.lgamma(torch.arange(_TABLE, dtype=torch.float64, device=device) + 1.0)
    return table


def log_coefficients(rows: SparseRows) -> Tensor:
    """log N! - sum_j log x_j! of each row (n,) float64: the number of orders of its tokens.

    Counts of 0 and 1 add nothing (log 1! = 0); the rest come from a table of exact
    log-factorials (counts below 4096) or lgamma. On the CPU with numba, by the kernel the
    fused E-step derives them with (:func:`.multinomial_fused.log_coefficients`)."""
    dev = rows.device
    if jit.runs_on(dev):
        return fused.log_coefficients(rows, _log_factorials(dev), _parts(rows.nnz))
    if dev.type == "cpu":
        return _log_coefficients_numpy(rows)
    return _log_coefficients_torch(rows)


def _log_coefficients_torch(rows: SparseRows) -> Tensor:
    """:func:`log_coefficients` in torch (a GPU's): every entry is looked up (0! = 1! = 1
    add 0), since selecting those above 1 would read their number back, a wait on the
    device once a chunk."""
    dev = rows.device
    out = torch.lgamma(rows.row_sums() + 1.0)
    if rows.nnz:
        v = rows.values.double()
        looked = _log_factorials(dev)[v.clamp(0, _TABLE - 1).long()]
        terms = torch.where(v < _TABLE, looked, torch.lgamma(v + 1.0))
        out.index_add_(0, rows.row_ids().to(dev), -terms)
    return out


def _log_coefficients_numpy(rows: SparseRows) -> Tensor:
    """:func:`log_coefficients` on the CPU through numpy's segment sums (reduceat), row
    blocks on the threads of :mod:`~bigem._core.parallel` (each row's value is one
    thread's, so the same on any number of threads). Rows' totals are summed in the
    values' dtype when that is exact (whole counts, every total below 2**24 in float32),
    and only entries above 1 are looked up. On 1.5e7 entries, one thread: 55 ms against
    90 ms for the totals in float64 and a bincount of the looked-up terms by row."""
    n = rows.shape[0]
    ptr = rows.indptr.numpy()
    v = rows.values.numpy()
    table = _log_factorials(rows.device)
    totals = np.zeros(n, dtype=np.float64)
    terms = np.zeros(n, dtype=np.float64)  # sum_j log x_j! of each row

    def block(a: int, b: int) -> None:
        p = ptr[a : b + 1]
        lo, hi = int(p[0]), int(p[-1])
        filled = np.flatnonzero(p[1:] > p[:-1])  # a segment runs to the next start given (empty rows: none)
        if not len(filled):
            return
        mine = v[lo:hi]
        sums = np.add.reduceat(mine, p[filled] - lo)
        if sums.dtype != np.float64 and sums.max() >= _EXACT32:  # a partial sum may have rounded
            sums = np.add.reduceat(mine, p[filled] - lo, dtype=np.float64)
        totals[a + filled] = sums
        big = np.flatnonzero(mine > 1)  # counts of 0 and 1 add nothing (log 1! = 0)
        if not len(big):
            return
        vb = mine[big]
        looked = table.numpy()[np.minimum(vb, _TABLE - 1).astype(np.int64)]
        small = vb < _TABLE
        if not small.all():
            looked = np.where(small, looked, torch.lgamma(torch.from_numpy(vb.astype(np.float64)) + 1.0).numpy())
        at = np.searchsorted(big, p - lo)  # each row's first entry above 1 (in big)
        has = np.flatnonzero(at[1:] > at[:-1])
        terms[a + has] = np.add.reduceat(looked, at[has])

    bounds = parallel.balanced_rows(ptr, _parts(rows.nnz))
    parallel.run([partial(block, a, b) for a, b in zip(bounds, bounds[1:]) if b > a])
    out = torch.lgamma(torch.from_numpy(totals) + 1.0)
    out -= torch.from_numpy(terms)
    return out


# ---------------------------------------------------------------------------- parameters
@dataclass(frozen=True, slots=True)
class MultinomialParams:
    """probabilities (K, D): row k is component k's distribution over the words, float64;
    lengths (K,): the mean number of tokens of the documents of each component (sampling
    only: the likelihood conditions on each document's length)."""

    probabilities: Tensor
    lengths: Tensor

    @property
    def n_components(self) -> int:
        return int(self.probabilities.shape[0])

    def to(self, device: torch.device | str) -> MultinomialParams:
        return MultinomialParams(self.probabilities.to(device), self.lengths.to(device))


@additive
@dataclass(frozen=True, slots=True)
class MultinomialStats:
    """n_k (K,): responsibility mass; sums (K, D): responsibility-weighted word counts; float64."""

    n_k: Tensor
    sums: Tensor

    def rebase(self, like: MultinomialStats) -> MultinomialStats:
        return self


@dataclass(slots=True)
class _Prepared:
    log_probs_t: Tensor  # (D, K) compute dtype, contiguous: each word's K log-probabilities less its centre
    centre: Tensor  # (D,) float64: each word's mean log-probability over the components
    use_scipy: bool
    directions: Tensor | None = field(default=None)  # (D, K) theta_k / |theta_k|, made on first use

    @property
    def dtype(self) -> torch.dtype:
        """The log-joints' dtype: float64 whatever the products' (see ``prepare``)."""
        return torch.float64

    @property
    def product_dtype(self) -> torch.dtype:
        return self.log_probs_t.dtype

    @property
    def n_components(self) -> int:
        return int(self.log_probs_t.shape[1])


@dataclass(slots=True)
class _Block:
    rows: SparseRows  # (n, D) counts on the compute device

    @property
    def coef(self) -> Tensor:
        """(n,) float64 log multinomial coefficients, derived once and kept in the rows' memo."""
        coef = self.rows.memo.get("log_coefficients")
        if coef is None:
            coef = self.rows.memo["log_coefficients"] = log_coefficients(self.rows)
        return coef


class _Sums:
    """n_k and X^T R accumulated in float64, in the (D, K) layout of the scatter; the
    product takes the responsibilities in ``dtype`` (the compute dtype)."""

    def __init__(self, K: int, D: int, device: torch.device, ws: Workspace, use_scipy: bool,
                 dtype: torch.dtype) -> None:
        self.n_k = torch.zeros(K, dtype=torch.float64, device=device)
        self.sums_t = torch.zeros(D, K, dtype=torch.float64, device=device)
        self.ws, self.use_scipy, self.dtype = ws, use_scipy, dtype

    def add(self, block: _Block, rw: Tensor, w: Tensor | None) -> None:
        n, K = rw.shape[1], rw.shape[0]
        self.n_k += rw.sum(1, dtype=torch.float64)
        r = rw.T  # (n, K): the responsibilities are a transposed view of a row-major scratch
        if rw.dtype != self.dtype:  # float64 posteriors to a float32 product: below its normal range, 0
            tiny = torch.finfo(self.dtype).tiny
            r = self.ws.get("resp", (n, K), self.dtype, rw.device).copy_(r.masked_fill(r < tiny, 0.0))
        elif not r.is_contiguous():  # weighted: a fresh (K, n) product
            r = self.ws.get("resp", (n, K), rw.dtype, rw.device).copy_(rw.T)
        transposed_product(block.rows, r, self.sums_t, self.use_scipy, self.ws)

    def result(self) -> MultinomialStats:
        """The statistics, ``sums`` a (K, D) view of the (D, K) sums (the M-step reads it
        as it is: no copy a chunk)."""
        return MultinomialStats(self.n_k, self.sums_t.T)


class MultinomialComponent:
    """K multinomial distributions over a vocabulary (its size is the rows' width), with pseudo-counts ``alpha``
    (a Dirichlet(alpha + 1) prior, of which the M-step is the MAP)."""

    letters = "e"
    translatable = False  # counts, not positions

    def __init__(self, alpha: float = 1.0, dtype: torch.dtype = torch.float32,
                 advice: str = "increase alpha or lower n_components", use_scipy: bool = True) -> None:
        self.alpha = float(alpha)
        self.dtype = self.row_dtype = dtype  # counts are exact in float32 up to 2**24 (the sources check)
        self.advice = advice
        self.failure = "every component lost its documents"
        self.use_scipy = use_scipy and _scipy_kernels() is not None
        self._ws = Workspace()

    @property
    def regularised(self) -> bool:
        return self.alpha != 0.0

    def translate(self, p: MultinomialParams, offset: Tensor) -> MultinomialParams:
        return p

    def location(self, p: MultinomialParams) -> None:
        return None

    def make_params(self, probabilities: Tensor, lengths: Tensor | None = None) -> MultinomialParams:
        probabilities = probabilities.to(torch.float64)
        if lengths is None:
            lengths = torch.ones(probabilities.shape[0], dtype=torch.float64, device=probabilities.device)
        return MultinomialParams(probabilities, lengths.to(device=probabilities.device, dtype=torch.float64))

    # ------------------------------------------------------------------ E-step
    def _log(self, probabilities: Tensor) -> Tensor:
        """log of the probabilities, remembered for the last ones asked (by identity): a
        pass's E-step and the prior's gain after its M-step take the log of the same
        parameters, once, not three times an iteration."""
        return self._ws.derived("log_probabilities", probabilities, probabilities.device,
                                lambda: torch.log(probabilities))

    def prepare(self, p: MultinomialParams, device: torch.device) -> _Prepared:
        """The log-probabilities for the products, each word's less its mean over the
        components (its centre). x . log theta_k of a document of 1e6 tokens is about
        -1e7, which float32 sums to within a few nats, and components a hair apart then
        swapped their posteriors (score_samples 22 nats off). Less the centre, the
        products hold only the components' differences, small beside it; x . centre,
        the same for every component, is added per row in float64 (:func:`baseline`),
        with the coefficient, and the log-joints are float64."""
        log_probs = self._log(p.probabilities.to(device))
        centre = log_probs.mean(0)
        log_probs_t = (log_probs - centre).T.to(self.dtype).contiguous()
        return _Prepared(log_probs_t, centre, self.use_scipy and device.type == "cpu")

    def block_rows(self, K: int, D: int, device: torch.device) -> int:
        return _CPU_BLOCK_ROWS if device.type == "cpu" else _GPU_BLOCK_ROWS

    def block(self, p: _Prepared, x) -> _Block:
        """The rows as sparse rows; their log multinomial coefficients are derived when
        first read (the fused E-step derives them in its own pass)."""
        return _Block(x if isinstance(x, SparseRows) else SparseRows.from_dense(x))

    def log_joint(self, p: _Prepared, block: _Block, log_w: Tensor, into: Tensor | None = None) -> Tensor:
        """log w_k + log p_k(x), float64: (K, n) (a transposed view of a row-major scratch),
        or (n, K) into ``into``."""
        n, K = block.rows.shape[0], p.n_components
        device = p.log_probs_t.device
        products = product(block.rows, p.log_probs_t, self._ws.get("joint", (n, K), p.product_dtype, device),
                           p.use_scipy)
        out = into if into is not None else self._ws.get("joint64", (n, K), torch.float64, device)
        out.copy_(products)
        out += (block.coef + baseline(block.rows, p.centre)).to(out)[:, None]
        out += log_w.to(out)
        return out if into is not None else out.T

    def accumulator(self, p: _Prepared) -> _Sums:
        return _Sums(p.n_components, p.log_probs_t.shape[0], p.log_probs_t.device, self._ws, p.use_scipy,
                     p.product_dtype)

    def expect(self, p: _Prepared, block: _Block, log_w: Tensor, barred: Tensor | None, w: Tensor | None,
               log_norm: Tensor, acc: _Sums, floor: float) -> bool:
        """A block's E-step with its per-row work in one compiled pass, where compiled
        kernels run (the CPU with numba; False, having done nothing, elsewhere): the
        products X @ log(theta)^T, then :func:`.multinomial_fused.normalise` (log
        coefficients where not kept, log weights, the components ``barred`` (K, n) bars,
        log-sum-exp with exp's argument floored at ``floor``, times the weights ``w``:
        each row's log-likelihood into ``log_norm``), then X^T @ R into ``acc``. The same
        quantities as log_joint, normalise_log and ``acc.add``."""
        if not jit.runs_on(p.log_probs_t.device):
            return False
        rows = block.rows
        n, K = rows.shape[0], p.n_components
        joint = self._ws.get("joint", (n, K), p.product_dtype, p.log_probs_t.device)
        kept = rows.memo.get("log_coefficients")
        coef = np.empty(n) if kept is None else kept.numpy()
        product(rows, p.log_probs_t, joint, p.use_scipy)
        base = fused.baseline(rows, p.centre, _parts(rows.nnz)).numpy()
        # the posteriors go to the product in its dtype: floored where it keeps them normal
        floor = max(floor, _EXP_FLOOR[p.product_dtype])
        acc.n_k += fused.normalise(rows, joint, log_w, coef, kept is not None, _log_factorials(rows.device), barred,
                                   w, floor, log_norm, base)
        transposed_product(rows, joint, acc.sums_t, acc.use_scipy, acc.ws)
        if kept is None:
            rows.memo["log_coefficients"] = torch.from_numpy(coef)
        return True

    # ------------------------------------------------------------------ initialisation
    def embed(self, x: Tensor) -> Tensor:
        """Dense rows (a Dask partition's) in the space initial centres live in: the counts
        as they are (``at`` normalises them)."""
        return x

    def at(self, centres: Tensor) -> MultinomialParams:
        """Components whose word distributions point along ``centres`` (K, D), non-negative
        (spherical k-means centres): each normalised, mixed with a little of the uniform
        distribution so that every word stays possible."""
        c = centres.to(torch.float64).clamp(min=0)
        total = c.sum(1, keepdim=True)
        D = c.shape[1]
        probs = torch.where(total > 0, c / torch.where(total > 0, total, 1.0), 1.0 / D)
        probs = 0.99 * probs + 0.01 / D
        return self.make_params(probs)

    def nearest(self, p: _Prepared, block: _Block) -> tuple[Tensor, Tensor]:
        """Each row's component by cosine similarity of its counts to the component's
        probabilities (spherical k-means' assignment); the score is that similarity."""
        if p.directions is None:
            theta = torch.exp(p.log_probs_t.double() + p.centre[:, None])
            p.directions = (theta / theta.norm(dim=0, keepdim=True)).to(p.product_dtype).contiguous()
        n, K = block.rows.shape[0], p.n_components
        sims = product(block.rows, p.directions, torch.empty(n, K, dtype=p.product_dtype, device=p.directions.device),
                       p.use_scipy)
        norms = torch.sqrt(torch.zeros(n, dtype=torch.float64, device=sims.device).index_add_(
            0, block.rows.row_ids().to(sims.device), block.rows.values.double().square())).clamp(min=1e-300)
        score, labels = torch.max(sims, 1)
        return labels, (score.double() / norms).to(p.dtype)

    # ------------------------------------------------------------------ M-step
    def m_step(self, s: MultinomialStats, old: MultinomialParams | None, update: str = "e") -> tuple[MultinomialParams, Tensor]:
        """(sums + alpha) / (tokens + D alpha) per component; each component's mean length
        is its tokens over its mass. With alpha = 0 a component without tokens keeps its
        old distribution (the mixture re-seeds it when it lost its support)."""
        valid = torch.ones(s.n_k.shape[0], dtype=torch.bool)
        if "e" not in update:
            return old, valid
        D = s.sums.shape[1]
        tokens = s.sums.sum(1)
        numerator = s.sums + self.alpha
        denom = (tokens + D * self.alpha)[:, None]
        empty = denom <= 0
        probs = numerator / torch.where(empty, torch.ones_like(denom), denom)
        if bool(empty.any()):
            fallback = old.probabilities if old is not None else torch.full_like(probs, 1.0 / D)
            probs = torch.where(empty, fallback, probs)
        lengths = tokens / s.n_k.clamp(min=torch.finfo(torch.float64).tiny)
        return MultinomialParams(probs, lengths), valid

    def prior_gain(self, new: MultinomialParams, old: MultinomialParams) -> float:
        """The Dirichlet(alpha + 1) prior's: alpha sum_kj (log new - log old)."""
        if self.alpha == 0.0 or new.probabilities is old.probabilities:
            return 0.0
        before = self._log(old.probabilities)  # the last E-step's, remembered
        gain = (self._log(new.probabilities) - before).sum()  # remembered for the next E-step
        return float(self.alpha * gain)

    def reseed(self, params: MultinomialParams, dead: list[int], rows, weights: Tensor) -> MultinomialParams:
        """Each dead component moves onto one poorly explained document: half its word
        frequencies, half the mixture's average distribution (so its other words stay likely)."""
        dense = (rows.to_dense() if isinstance(rows, SparseRows) else rows).to(torch.float64)
        dense = dense.to(params.probabilities.device)
        background = weights.to(params.probabilities) @ params.probabilities
        probs, lengths = params.probabilities.clone(), params.lengths.clone()
        for i, k in enumerate(dead):
            x = dense[i]
            n = float(x.sum())
            probs[k] = background if n <= 0 else 0.5 * x / n + 0.5 * background
            lengths[k] = max(n, 1.0)
        return MultinomialParams(probs / probs.sum(1, keepdim=True), lengths)

    def decrease_tolerance(self, params: MultinomialParams, weights: Tensor, value: float) -> float:
        """Rounding of the per-row sums x . log theta in the compute dtype."""
        eps = torch.finfo(self.dtype).eps
        return 100 * eps * (1.0 + abs(value))

    # ------------------------------------------------------------------ the rest
    def sample(self, p: MultinomialParams, labels: Tensor, generator: torch.Generator) -> SparseRows:
        """One document per label: a Poisson number of tokens around its component's mean
        length, each drawn from the component's words. Counts as sparse rows, float64."""
        probs, lengths = p.probabilities.cpu(), p.lengths.cpu()
        labels = labels.cpu()
        n, D = labels.shape[0], probs.shape[1]
        sizes = torch.poisson(lengths[labels], generator=generator).long()
        doc_of, words = [], []
        for k in torch.unique(labels).tolist():
            docs = torch.nonzero(labels == k).reshape(-1)
            counts = sizes[docs]
            total = int(counts.sum())
            if total:
                words.append(torch.multinomial(probs[k], total, replacement=True, generator=generator))
                doc_of.append(torch.repeat_interleave(docs, counts))
        if not words:
            return SparseRows(torch.zeros(n + 1, dtype=torch.int64), torch.zeros(0, dtype=torch.int32),
                              torch.zeros(0, dtype=torch.float64), D)
        key = torch.cat(doc_of) * D + torch.cat(words)
        unique, counts = torch.unique(key, return_counts=True)  # sorted: by document, then word
        docs = unique // D
        ptr = torch.zeros(n + 1, dtype=torch.int64)
        torch.cumsum(torch.bincount(docs, minlength=n), 0, out=ptr[1:])
        return SparseRows(ptr, (unique % D).to(torch.int32), counts.to(torch.float64), D)

    def n_free_parameters(self, K: int, D: int) -> int:
        return K * (D - 1)

    def to_tensors(self, p: MultinomialParams) -> dict[str, Tensor]:
        return {"probabilities": p.probabilities, "lengths": p.lengths}

    def from_tensors(self, tensors: Mapping[str, Tensor]) -> MultinomialParams:
        return self.make_params(tensors["probabilities"], tensors.get("lengths"))

    def flatten(self, p: MultinomialParams) -> Tensor:
        """Each component's logits: log theta less its mean over the words."""
        log_p = torch.log(p.probabilities)
        return (log_p - log_p.mean(1, keepdim=True)).reshape(-1)

    def unflatten(self, vector: Tensor, like: MultinomialParams) -> MultinomialParams:
        return MultinomialParams(torch.softmax(vector.reshape(like.probabilities.shape), 1), like.lengths)


def multinomial_mixture(n_components: int, alpha: float, dtype: torch.dtype, advice: str | None = None) -> MixtureModel:
    """A mixture of ``n_components`` multinomials with pseudo-counts ``alpha``."""
    component = MultinomialComponent(alpha, dtype, **({} if advice is None else {"advice": advice}))
    return MixtureModel(component, n_components, dtype)

