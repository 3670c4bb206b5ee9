"""Count data (bags of words) as chunks of sparse rows, from memory or files. I/O only.

Every source here yields chunks whose ``x`` is a :class:`~bigem._core.sparse.SparseRows`
in the compute dtype: a dense (n, D) copy of more than one chunk is never made.

* scipy.sparse matrices in memory: CSR rows are read in place, a chunk a view of its
  rows; CSC and COO are read by row blocks through a row order computed once (one
  index per stored value), never converted whole; other formats are converted to CSR.
* dense arrays, tensors, DataFrames and files of count columns (Parquet, CSV, .npy):
  read as for any family, each chunk's non-zero entries taken as it is read.
* ``.npz`` files written by ``scipy.sparse.save_npz`` (:mod:`.npz`) and Parquet or Arrow
  files with a list column of token ids and one of counts (:mod:`.tokens`), streamed.

Counts are checked where they are read, before any cast: finite, non-negative, whole,
column (word) within the vocabulary, and at most 2**24 in float32, 2**53 in float64 (each
holds every integer only up to there). Every error names the row and the column, and the fix. An
all-zero row (an empty document) is allowed: its likelihood is 1 under every component.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError, ParameterError
from .._core.sparse import SparseRows
from .._core.types import READ_AHEAD, Chunk
from . import identity
from .parts import CutByRows

FLOAT32_EXACT = 2**24  # the largest count float32 holds exactly (with every integer below it)
FLOAT64_EXACT = 2**53  # and float64
_COUNTS_HINT = ("counts must be whole numbers >= 0 (how often each word occurs in each document); pass raw counts "
                "(CountVectorizer's output), not tf-idf or normalised frequencies")


def is_scipy_sparse(x: object) -> bool:
    """A scipy.sparse matrix or array, without importing scipy."""
    return type(x).__module__.startswith("scipy.sparse") and hasattr(x, "nnz") and hasattr(x, "tocsr")


def is_torch_sparse(x: object) -> bool:
    return isinstance(x, Tensor) and x.layout in (torch.sparse_coo, torch.sparse_csr, torch.sparse_csc)


# ---------------------------------------------------------------------------- checks
def check_counts(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, row_start: int, n_features: int,
                 dtype: torch.dtype, where: str = "X") -> None:
    """Refuse a CSR block of raw counts with an entry that is not a count, a column beyond
    ``n_features``, or a count float32 cannot hold; the message names row and column."""
    def at(mask: np.ndarray) -> tuple[int, int, object]:
        pos = int(np.argmax(mask))
        row = row_start + int(np.searchsorted(indptr, pos, side="right")) - 1
        return row, int(indices[pos]) if pos < len(indices) else -1, data[pos] if pos < len(data) else None

    if len(indices) and (int(indices.min()) < 0 or int(indices.max()) >= n_features):
        row, col, _ = at((indices < 0) | (indices >= n_features))
        raise DataError(
            f"{where}: row {row} has a word (column) id {col}, outside the vocabulary of {n_features} words "
            f"(ids 0..{n_features - 1}); give the vocabulary size that covers every id, or drop that word"
        )
    if not len(data):
        return
    if data.dtype.kind not in "fiub":
        raise DataError(f"{where}: counts of dtype {data.dtype} are not numbers; {_COUNTS_HINT}")
    if data.dtype.kind == "f":
        finite = np.isfinite(data)
        if not finite.all():
            row, col, value = at(~finite)
            value = "NaN" if np.isnan(value) else value  # spelt as pandas and scikit-learn spell it
            raise DataError(
                f"{where}: row {row}, column {col} holds {value}; {_COUNTS_HINT} (bigem does not model missing "
                "values: drop the document or set the count)"
            )
    if data.dtype.kind in "if" and (data < 0).any():
        row, col, value = at(data < 0)
        raise DataError(f"{where}: row {row}, column {col} holds a negative count {value} (Negative values in "
                        f"data); {_COUNTS_HINT}")
    if data.dtype.kind == "f":
        fractional = data != np.floor(data)
        if fractional.any():
            row, col, value = at(fractional)
            raise DataError(f"{where}: row {row}, column {col} holds {value}, not a whole number; {_COUNTS_HINT}")
    exact, bits = (FLOAT32_EXACT, 24) if dtype == torch.float32 else (FLOAT64_EXACT, 53)
    if data.dtype.kind in "iuf" and len(data) and data.max() > exact:
        row, col, value = at(data > exact)
        fix = "pass dtype='float64'" if bits == 24 else "counts that large are rounded by any float arithmetic"
        raise DataError(
            f"{where}: row {row}, column {col} holds the count {value}, beyond 2**{bits}, which "
            f"{'float32' if bits == 24 else 'float64'} cannot hold exactly; {fix}"
        )


def check_index_dtype(indices: np.ndarray) -> np.ndarray:
    return indices if indices.dtype in (np.int32, np.int64) else indices.astype(np.int64)


def to_rows(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_features: int, dtype: torch.dtype,
            device: torch.device, owned: bool = False) -> SparseRows:
    """Raw CSR arrays (indptr may start above 0) as SparseRows in ``dtype`` on ``device``.

    ``owned``: the arrays are the caller's to give away (just read from a file): they
    are used as they are, and counts of an integer type as wide as ``dtype`` (int32 for
    float32) are converted in their own memory. On 1.5e7 entries that costs 2 ms
    against 10 for a fresh array, which must also be mapped in (measured, one thread)."""
    indptr = np.asarray(indptr, dtype=np.int64)
    base = int(indptr[0])
    ptr = torch.from_numpy(indptr - base if base else indptr if owned else indptr.copy())
    lo, hi = base, int(indptr[-1])
    idx = indices[lo:hi] if len(indices) != hi - lo or lo else indices
    val = data[lo:hi] if len(data) != hi - lo or lo else data
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    if owned and val.dtype != np_dtype and val.dtype.kind in "iu" and val.dtype.itemsize == np.dtype(np_dtype).itemsize \
            and val.flags.c_contiguous and val.flags.writeable:
        converted = val.view(np_dtype)
        np.copyto(converted, val, casting="unsafe")  # element by element in place (numpy allows exact overlap)
        val = converted
    values = torch.from_numpy(_writable(np.ascontiguousarray(val, dtype=np_dtype)))
    index = torch.from_numpy(_writable(np.ascontiguousarray(idx if idx.dtype in (np.int32, np.int64) else
                                                            idx.astype(np.int64))))
    # asynchronous (the engine orders the copies before the E-step): a blocking copy waits
    # on a GPU, three times a chunk
    return SparseRows(ptr.to(device, non_blocking=True), index.to(device, non_blocking=True),
                      values.to(device, non_blocking=True), int(n_features))


# A streamed source keeps what models derive from its rows (RowMemos) within this share
# of its memory budget: 16 MB of 256 MB, the coefficients of 2e6 documents.
MEMO_SHARE = 16


class RowMemos:
    """What models derived from a streamed source's rows (``SparseRows.memo``), handed
    out again with the same rows on later passes while it stays within ``limit`` bytes.

    A streamed pass reads its rows anew, but what a model derives from the rows alone
    need not be derived again: the multinomial's log multinomial coefficients (8 bytes a
    document) took 24 ms of CPU a pass over 2e5 documents of 100 tokens, a third of one
    sparse product over them (one thread).
    Rows are known by their first row and count (a change of chunk size starts afresh);
    once the memos kept reach the limit, later rows get fresh ones each pass."""

    def __init__(self, limit: int) -> None:
        self.limit = int(limit)
        self._memos: dict[tuple[int, int], dict] = {}

    def attach(self, rows: SparseRows, start: int) -> SparseRows:
        """``rows`` (from row ``start``) with the memo these rows had on earlier passes."""
        key = (int(start), rows.shape[0])
        memo = self._memos.get(key)
        if memo is None:
            memo = {}
            if self.nbytes() < self.limit:
                self._memos[key] = memo
        return dataclasses.replace(rows, memo=memo)

    def nbytes(self) -> int:
        return sum(v.element_size() * v.numel() for memo in self._memos.values() for v in memo.values()
                   if isinstance(v, Tensor))


def _writable(a: np.ndarray) -> np.ndarray:
    """A read-only array (Arrow's zero-copy buffers, a file's bytes) copied: torch shares
    only writable memory without a warning, and bigem never writes to its input anyway."""
    return a if a.flags.writeable else a.copy()


def sparse_from_dense(block: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The non-zero entries of a dense (n, D) block as CSR arrays (indptr, indices, data)."""
    rows, cols = np.nonzero(block)
    indptr = np.zeros(block.shape[0] + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=block.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int32), block[rows, cols]


# ---------------------------------------------------------------------------- scipy in memory
class ScipySparseSource(CutByRows):
    """Rows of a scipy.sparse matrix (or array) in memory, as chunks of sparse rows.

    CSR is read in place. CSC and COO are read by row blocks: a stable order of their
    entries by row (or none, for a COO already sorted by row) is computed once, and each
    chunk gathers its entries and sums duplicates (scipy's semantics). Other formats
    (LIL, DOK, BSR, DIA) are converted to CSR once.
    """

    decodes = False
    weight_blocks = None
    shift = None
    feature_names = None

    def __init__(self, X, dtype: torch.dtype, device: torch.device, chunk_rows: int,
                 weight: Tensor | None = None, name: str = "X", cache_bytes: int = 0) -> None:
        fmt = getattr(X, "format", None)
        if fmt not in ("csr", "csc", "coo"):
            X = X.tocsr()
            fmt = "csr"
        self.X, self.format, self.name = X, fmt, name
        self.n_rows, self.n_features = (int(s) for s in X.shape)
        self.dtype, self.device = dtype, device
        self.chunk_rows = max(1, int(chunk_rows))
        self.weight = weight
        self._order = self._row_starts = None
        if fmt == "csr":
            # (scipy's has_sorted_indices holds with duplicates: each row is checked)
            if not _canonical_rows(X.indptr, X.indices):
                # duplicates in a row, summed as scipy reads them; in a type wide enough
                # for their sum (uint8's 200 + 100 wrapped to 44)
                X = X.astype(_wide_numpy(X.dtype))
                X.sum_duplicates()
                self.X = X
        else:
            rows = X.row if fmt == "coo" else X.indices
            ordered = bool(np.all(rows[1:] >= rows[:-1])) if len(rows) > 1 else True
            self._order = None if ordered else np.argsort(rows, kind="stable")
            sorted_rows = rows if ordered else rows[self._order]
            self._row_starts = np.searchsorted(sorted_rows, np.arange(self.n_rows + 1))
        self.nnz = int(X.nnz)
        self.first_row = 0  # a part's rows are X's [first_row, first_row + n_rows) (see part)
        self.cache_bytes = cache_bytes
        # the converted chunks (a cast of the values, row blocks of CSC and COO) are kept
        # when they fit, so later passes convert nothing and see the same rows (SparseRows.memo)
        self.caching = 0 < stored_bytes(self.n_rows, self.nnz, dtype) <= cache_bytes
        self._cache: list[Chunk] | None = None

    @property
    def weighted(self) -> bool:
        return self.weight is not None

    def read_in(self, rows: int) -> None:
        self.chunk_rows = max(1, int(rows))

    def fingerprint(self) -> dict:
        X = self.X
        parts = [np.asarray(getattr(X, a)) for a in (("indptr", "indices", "data") if self.format != "coo"
                                                     else ("row", "col", "data"))]
        head = [p[:4096] for p in parts] + [p[-4096:] for p in parts]
        return {"rows": self.n_rows, "nnz": self.nnz, "first_row": self.first_row,
                "digest": identity.digest(*(torch.from_numpy(np.ascontiguousarray(h)) for h in head),
                                          self.weight)}

    # ------------------------------------------------------------------ parts (engine='torch')
    def boundaries(self) -> None:
        """Any row is a free cut: a part reads its own rows of the matrix in memory."""
        return None

    def part(self, start: int, stop: int) -> ScipySparseSource:
        """Rows [start, stop) of this source: the same matrix, read over those rows only;
        its chunks say where their rows lie in the whole matrix."""
        part = copy.copy(self)
        part.first_row, part.n_rows = self.first_row + int(start), int(stop) - int(start)
        part.weight = None if self.weight is None else self.weight[start:stop]
        part.nnz = self._entries(part.first_row, part.first_row + part.n_rows)
        part.caching = 0 < stored_bytes(part.n_rows, part.nnz, self.dtype) <= self.cache_bytes
        part._cache = None
        return part


    def _entries(self, start: int, stop: int) -> int:
        """Stored entries of rows [start, stop) of the matrix."""
        starts = self.X.indptr if self.format == "csr" else self._row_starts
        return int(starts[stop]) - int(starts[start])

    def block(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Rows start..stop as raw CSR arrays (indptr may start above 0 for CSR views)."""
        X = self.X
        if self.format == "csr":
            return X.indptr[start : stop + 1], X.indices, X.data
        lo, hi = int(self._row_starts[start]), int(self._row_starts[stop])
        sel = slice(lo, hi) if self._order is None else self._order[lo:hi]
        if self.format == "coo":
            rows, cols = X.row[sel], X.col[sel]
        else:  # CSC: an entry's column is the one whose pointer range holds its position
            pos = np.arange(lo, hi) if self._order is None else sel
            rows, cols = X.indices[sel], np.searchsorted(X.indptr, pos, side="right") - 1
        return _csr_of(rows - start, cols, X.data[sel], stop - start, self.n_features)

    def chunks(self) -> Iterator[Chunk]:
        if self._cache is not None and self._cache_rows == self.chunk_rows:
            yield from self._cache
            return
        kept: list[Chunk] | None = [] if self.caching else None
        first, end = self.first_row, self.first_row + self.n_rows
        for s in range(first, end, self.chunk_rows):
            e = min(s + self.chunk_rows, end)
            indptr, indices, data = self.block(s, e)
            w = None if self.weight is None else self.weight[s - first : e - first]
            chunk = Chunk(to_rows(indptr, indices, data, self.n_features, self.dtype, self.device), w, s)
            if kept is not None:
                kept.append(chunk)
            yield chunk
        if kept is not None:
            self._cache, self._cache_rows = kept, self.chunk_rows

    def check(self) -> None:
        """Every count, once (in memory: before any work), chunk by chunk."""
        end = self.first_row + self.n_rows
        for s in range(self.first_row, end, self.chunk_rows):
            e = min(s + self.chunk_rows, end)
            indptr, indices, data = self.block(s, e)
            lo, hi = int(indptr[0]), int(indptr[-1])
            check_counts(np.asarray(indptr) - lo, indices[lo:hi], data[lo:hi], s, self.n_features, self.dtype, self.name)

    def take(self, rows: Tensor) -> SparseRows:
        idx = rows.cpu().numpy().astype(np.int64) + self.first_row
        if self.format == "csr":
            sub = self.X[idx]
            return to_rows(sub.indptr, sub.indices, sub.data, self.n_features, self.dtype, self.device)
        parts = [self.block(int(r), int(r) + 1) for r in idx]
        return SparseRows.cat([to_rows(*p, self.n_features, self.dtype, self.device) for p in parts]) if parts \
            else SparseRows.empty(self.n_features, self.dtype, self.device)


def canonical(indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, n_features: int):
    """CSR arrays (``indptr`` from 0) whose rows name each column once, in order: a row
    that repeats a column id (scipy sums such duplicates) or lists its ids out of order is
    summed and sorted, so that per-row terms (a document's multinomial coefficient) see
    each count once. Arrays already so are returned as they are."""
    if _canonical_rows(indptr, indices):
        return indptr, indices, data
    rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
    return _csr_of(rows, np.asarray(indices, dtype=np.int64), data, len(indptr) - 1, int(n_features))


def _canonical_rows(indptr: np.ndarray, indices: np.ndarray) -> bool:
    """Whether each row's column ids strictly increase (no duplicates), in one pass."""
    if len(indices) < 2:
        return True
    rises = indices[1:] > indices[:-1]
    starts = indptr[1:-1]
    starts = starts[(starts > 0) & (starts < len(indices))]
    rises[starts - 1] = True  # a new row may start anywhere
    return bool(rises.all())


def _csr_of(rows: np.ndarray, cols: np.ndarray, data: np.ndarray, n: int, D: int):
    """CSR arrays of (row, col, value) entries (rows in 0..n-1), sorted, duplicates summed."""
    key = rows.astype(np.int64) * D + cols
    if len(key) > 1 and not bool(np.all(key[1:] > key[:-1])):
        order = np.argsort(key, kind="stable")
        key, data = np.unique(key[order], return_index=True), data[order]
        key, first = key
        data = np.add.reduceat(data, first)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // D, minlength=n), out=indptr[1:])
    return indptr, (key % D).astype(np.int32 if D < 2**31 else np.int64), data


# ---------------------------------------------------------------------------- dense counts
class DenseCounts(CutByRows):
    """A source of dense rows (any of bigem's: arrays, DataFrames, Parquet/CSV/.npy files)
    read as counts: each chunk's non-zero entries are taken as it is read and checked on
    the first pass."""

    def __init__(self, inner, dtype: torch.dtype, device: torch.device, name: str = "X") -> None:
        self.inner, self.dtype, self.device, self.name = inner, dtype, device, name
        self.checked = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _rows(self, x: Tensor, row_start: int, check: bool) -> SparseRows:
        block = x.detach().cpu().numpy()
        indptr, indices, data = sparse_from_dense(block)
        if check:
            check_counts(indptr, indices, data, row_start, block.shape[1], self.dtype, self.name)
        return to_rows(indptr, indices, data, block.shape[1], self.dtype, self.device)

    def chunks(self) -> Iterator[Chunk]:
        check = not self.checked
        for chunk in self.inner.chunks():
            w = None if chunk.weight is None else chunk.weight.to(self.device)
            yield dataclasses.replace(chunk, x=self._rows(chunk.x, chunk.row_start, check), weight=w)
        self.checked = True

    def take(self, rows: Tensor) -> SparseRows:
        return self._rows(self.inner.take(rows), 0, False)

    def part(self, start: int, stop: int) -> DenseCounts:
        """Rows [start, stop): the dense source's part, read as counts."""
        return DenseCounts(self.inner.part(start, stop), self.dtype, self.device, self.name)



# ---------------------------------------------------------------------------- first pass
class CountsFirstPass(CutByRows):
    """A streamed count source: checked on its first complete pass (the source does it
    as it reads), and kept in memory from then on when its chunks fit ``cache_bytes``."""

    def __init__(self, inner, cache_bytes: int = 0) -> None:
        self.inner, self.cache_bytes = inner, cache_bytes
        self.caching = 0 < inner.stored_bytes() <= cache_bytes
        self._cache: list[Chunk] | None = None

    def __getattr__(self, name):
        return getattr(self.inner, name)

    @property
    def decodes(self) -> bool:
        return self._cache is None and getattr(self.inner, "decodes", False)

    @property
    def cached(self) -> bool:
        return self._cache is not None

    def chunks(self) -> Iterator[Chunk]:
        if self._cache is not None:
            yield from self._cache
            return
        kept: list[Chunk] | None = [] if self.caching else None
        for chunk in self.inner.chunks():
            if kept is not None:
                kept.append(chunk)
            yield chunk
        self.inner.checked = True  # only a complete pass counts
        self._cache = kept

    def take(self, rows: Tensor) -> SparseRows:
        return self.inner.take(rows)

    def part(self, start: int, stop: int) -> CountsFirstPass:
        """Rows [start, stop), checked and kept as this source's are (its own first pass)."""
        return CountsFirstPass(self.inner.part(start, stop), self.cache_bytes)



def chunk_rows_for(memory_budget: int, nnz_per_row: float, raw_bytes_per_entry: int, itemsize: int,
                   in_flight: int = READ_AHEAD + 1, scratch_per_row: int = 0) -> int:
    """Rows per chunk of a sparse source: ``in_flight`` converted chunks (values in the
    compute dtype, int32 or int64 ids; a streamed source's chunk computing and the
    READ_AHEAD decoded ahead of it), the raw batch being read and ``scratch_per_row``
    bytes a row (the E-step's) fit the budget."""
    per_entry = in_flight * (itemsize + 8) + raw_bytes_per_entry
    per_row = max(1.0, nnz_per_row) * per_entry + 8 * (in_flight + 1) + scratch_per_row
    return max(256, int(memory_budget // per_row))


# ---------------------------------------------------------------------------- the entry point
@dataclass(frozen=True)
class Tokens:
    """Documents stored as lists of word ids in a Parquet or Arrow file.

    Parameters
    ----------
    path : str, path-like or list
        A file, a folder, a glob, or a list of them.
    tokens : str, default='tokens'
        The list column of word ids (integers from 0).
    counts : str or None, default='counts'
        The list column of how often each id occurs (the same lengths row by row), or
        None when every listed id counts once (a tokenised document; repeated ids add up).
    vocabulary_size : int or None, default=None
        The number of words, ids 0..vocabulary_size-1. None finds it in one pass over
        the ids (the largest + 1); give it when later data may hold larger ids, as with
        HashingVectorizer's n_features.
    """

    path: object
    tokens: str = "tokens"
    counts: str | None = "counts"
    vocabulary_size: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.tokens, str) or not (self.counts is None or isinstance(self.counts, str)):
            raise ParameterError(f"Tokens(tokens=..., counts=...) must be column names (counts may be None); got "
                                 f"{self.tokens!r}, {self.counts!r}")
        if self.tokens == self.counts:
            raise ParameterError(f"Tokens: tokens and counts name the same column {self.tokens!r}; name two columns")
        v = self.vocabulary_size
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1):
            raise ParameterError(f"Tokens(vocabulary_size=...) must be an int >= 1 or None; got {v!r}")


def open_counts(
    X: object,
    *,
    dtype: torch.dtype,
    device: torch.device,
    memory_budget: int,
    chunk_size: int | None = None,
    sample_weight: object | None = None,
    min_rows: int = 1,
    columns: list[str] | None = None,
    keep: list[str] | None = None,
    cache_bytes: int = 0,
    n_features: int | None = None,
    labels=None,
    scratch_per_row: int = 0,
    hold_on_host: bool = False,
):
    """A source of count rows (sparse chunks) over X: a scipy.sparse matrix, a torch sparse
    tensor, a dense array/tensor/DataFrame of counts, a ``.npz`` file of a sparse matrix,
    a :class:`Tokens` spec (or a Parquet/Arrow path whose ``columns`` are a tokens list
    column and optionally a counts one), or files of dense count columns.

    ``n_features``: the vocabulary a fitted model expects (token ids beyond it are
    refused by the files that list ids; other inputs say their own width).
    ``scratch_per_row``: bytes of the E-step's scratch a row of a chunk takes (a sparse
    matrix in memory, whose converted chunks are kept, is cut into chunks by it and its
    own entries only). ``hold_on_host`` (a process of a torch group) changes nothing
    here: counts always stay on the host until a chunk is converted. ``labels``:
    class codes of semi-supervised fitting, as ``inputs.open_source`` takes them (an
    (n,) int64 array, -1 unlabelled; or a ``LabelColumn``, for count columns only).
    """
    from .inputs import Files, check_sample_weight, describe_input, is_file_input, open_source
    from .validate import check_shape

    name = describe_input(X)
    itemsize = torch.finfo(dtype).bits // 8
    if is_torch_sparse(X):
        X = _scipy_of_torch(X)
    if is_scipy_sparse(X):
        if columns is not None or keep or isinstance(sample_weight, str):
            raise DataError("columns=, id columns and a sample_weight column select by name, but X is a sparse "
                            "matrix without column names; pass the weights as an array (one per row)")
        if len(X.shape) != 2:
            raise DataError(f"X has shape {X.shape}; expected a 2-D (documents, words) matrix")
        check_shape(tuple(int(s) for s in X.shape), name=name, min_rows=min_rows)
        weight = None if sample_weight is None else check_sample_weight(sample_weight, X.shape[0], torch.float64, device)
        nnz_per_row = X.nnz / max(1, X.shape[0])
        # converted chunks that are all kept (cache_bytes) are read by no thread ahead: the
        # only chunk in flight is the one computing, with its scratch; fewer, larger chunks
        # then cost each pass less (one E-step's fixed costs and thread hand-overs a chunk)
        kept = 0 < stored_bytes(int(X.shape[0]), int(X.nnz), dtype) <= cache_bytes
        rows = chunk_size or chunk_rows_for(memory_budget, nnz_per_row, 0, itemsize,
                                            **({"in_flight": 1, "scratch_per_row": scratch_per_row} if kept else {}))
        source = ScipySparseSource(X, dtype, device, rows, weight, name, cache_bytes)
        source.check()
        return _labelled(source, labels, name)
    if isinstance(X, Tokens) or _is_npz(X) or is_file_input(X):
        from .npz import NpzSource, is_npz_path
        from .tokens import TokenSource, list_columns

        path = X.path if isinstance(X, (Tokens, Files)) else X
        if not isinstance(X, Tokens) and is_npz_path(path):
            if columns is not None or keep or isinstance(sample_weight, str):
                raise DataError(f"{name}: a .npz file holds a matrix without column names, so columns=, id columns "
                                "and a sample_weight column do not apply; pass the weights as an array")
            source = NpzSource(os.fspath(path[0] if isinstance(path, (list, tuple)) else path), dtype, device,
                               memory_budget, chunk_size)
            check_shape((source.n_rows, source.n_features), name=name, min_rows=min_rows)
            if sample_weight is not None:
                source.weight = check_sample_weight(sample_weight, source.n_rows, torch.float64, device)
            return _labelled(CountsFirstPass(source, cache_bytes), labels, name)
        spec = X if isinstance(X, Tokens) else _tokens_spec(X, columns, list_columns)
        if spec is not None:
            if n_features is not None and spec.vocabulary_size is None:
                spec = dataclasses.replace(spec, vocabulary_size=int(n_features))
            source = TokenSource(spec, dtype, device, memory_budget, chunk_size, keep=keep or [],
                                 weight_column=sample_weight if isinstance(sample_weight, str) else None)
            check_shape((source.n_rows, source.n_features), name=name, min_rows=min_rows)
            if sample_weight is not None and not isinstance(sample_weight, str):
                source.weight = check_sample_weight(sample_weight, source.n_rows, torch.float64, device)
            return _labelled(CountsFirstPass(source, cache_bytes), labels, name)
    # dense counts: read as any family reads rows, each chunk made sparse as it arrives;
    # arrays in memory are checked first, so that a bad count is named by row and column
    if isinstance(X, (np.ndarray, Tensor)) and X.ndim == 2:
        _check_dense(X, dtype, name)
    inner = open_source(X, dtype=torch.float64, device=torch.device("cpu"), memory_budget=memory_budget,
                        chunk_size=chunk_size, sample_weight=sample_weight, min_rows=min_rows, columns=columns,
                        keep=keep, cache_bytes=0, missing_values=None,  # a count is never missing
                        **({} if labels is None else {"labels": labels}))
    return DenseCounts(inner, dtype, device, name)


def reads_count_columns(X: object, columns: list[str] | None = None) -> bool:
    """Whether ``open_counts`` reads X as named dense count columns (arrays, DataFrames,
    files of count columns), where a column of X may hold labels or weights; False for
    sparse matrices, ``.npz`` files and token lists."""
    from .inputs import is_file_input
    from .npz import is_npz_path
    from .tokens import list_columns

    if is_torch_sparse(X) or is_scipy_sparse(X) or isinstance(X, Tokens) or _is_npz(X):
        return False
    if is_file_input(X):
        from .inputs import Files

        path = X.path if isinstance(X, Files) else X
        return not is_npz_path(path) and _tokens_spec(X, columns, list_columns) is None
    return True


def _labelled(source, labels, name: str):
    """A sparse source with in-memory class codes on its chunks. A label column does not
    apply: these inputs name no columns (the caller refuses it before reading X)."""
    from .labels import LabelColumn, LabelledSource

    if labels is None:
        return source
    if isinstance(labels, LabelColumn):
        raise DataError(f"y={labels.name!r} names a column, but {name} holds no named label column; pass y as an "
                        "array of labels (one per row, -1 unlabelled)")
    codes = np.asarray(labels, dtype=np.int64)
    if codes.shape != (source.n_rows,):
        raise DataError(f"y has {codes.shape[0]} labels but X has {source.n_rows} rows; pass one label per row of X "
                        "(-1 for an unlabelled row)")
    return LabelledSource(source, codes)


def _check_dense(X, dtype: torch.dtype, name: str, rows: int = 1 << 16) -> None:
    """Every count of a dense (n, D) array or tensor, a block of rows at a time."""
    for s in range(0, X.shape[0], rows):
        block = X[s : s + rows]
        block = block.detach().cpu().numpy() if isinstance(block, Tensor) else np.asarray(block)
        if block.dtype.kind not in "fiub":
            return  # not numbers: open_source says so, naming the column
        indptr, indices, data = sparse_from_dense(block)
        check_counts(indptr, indices, data, s, X.shape[1], dtype, name)


def _is_npz(X: object) -> bool:
    from .npz import is_npz_path

    return is_npz_path(X)


def _tokens_spec(X, columns, list_columns) -> Tokens | None:
    """A Parquet/Arrow path read as token lists: ``columns`` = [tokens] or [tokens, counts]
    when they name list columns; else the file's own list columns when it has them (one:
    tokens; more: the caller must say which). None: the file holds dense count columns."""
    from .inputs import Files

    path = X.path if isinstance(X, Files) else X
    lists = list_columns(path)
    if lists is None:  # CSV, .npy: no list columns
        return None
    wanted = list(columns) if columns is not None else (list(X.columns) if isinstance(X, Files) and X.columns else None)
    if wanted is not None:
        listed = [c for c in wanted if c in lists]
        if not listed:
            return None  # dense count columns, chosen by name
        if len(wanted) > 2 or listed[0] != wanted[0] or len(listed) != len(wanted):
            raise DataError(
                f"columns={wanted}: token lists are read from columns=[tokens] or columns=[tokens, counts], both "
                f"list columns (the file's list columns are {lists})"
            )
        return Tokens(path, wanted[0], wanted[1] if len(wanted) == 2 else None)
    if not lists:
        return None
    if len(lists) == 1:
        return Tokens(path, lists[0], None)
    raise DataError(
        f"{path}: has list columns {lists}; say which holds the word ids and which their counts with "
        f"columns=['{lists[0]}', '{lists[1]}'] (or bigem.Tokens(path, tokens=..., counts=...))"
    )


def _wide_numpy(dtype: np.dtype) -> np.dtype:
    """A type in which counts of ``dtype`` add without wrapping or rounding: int64 for
    narrower integers and booleans, float64 for narrower floats (others as they are)."""
    dtype = np.dtype(dtype)
    if dtype.kind in "biu" and not (dtype.kind == "u" and dtype.itemsize == 8):
        return np.dtype(np.int64)
    return np.dtype(np.float64) if dtype.kind == "f" else dtype


def _scipy_of_torch(X: Tensor):
    """A torch sparse tensor's entries as a scipy CSR matrix (CPU, the same values; an
    uncoalesced tensor's duplicates summed in a type wide enough, see ``_wide_numpy``)."""
    import scipy.sparse as sp

    if X.dim() != 2:
        raise DataError(f"X is a sparse tensor of shape {tuple(X.shape)}; expected 2-D (documents, words)")
    X = X.detach().cpu()
    if X.dtype.is_floating_point:
        X = X.to(torch.float64)
    elif X.dtype != torch.uint64 and not X.dtype.is_complex:
        X = X.to(torch.int64)
    csr = X.to_sparse_csr()
    return sp.csr_matrix((csr.values().numpy(), csr.col_indices().numpy(), csr.crow_indices().numpy()),
                         shape=tuple(X.shape))


def stored_bytes(n_rows: int, nnz: int, dtype: torch.dtype) -> int:
    """Bytes of a data set held as SparseRows in ``dtype`` (values, int32 ids, row pointers)."""
    return nnz * (torch.finfo(dtype).bits // 8 + 4) + 8 * (n_rows + 1)


# ---------------------------------------------------------------------------- Dask
def checked_dask_counts(X, dtype: torch.dtype, columns: list[str] | None = None, skip: tuple = (),
                        name: str = "X"):
    """A dask collection (or Parquet/CSV path(s), read as a dask.dataframe) whose every
    partition has its counts checked by the worker that computes it, before any cast:
    the same refusals as in this process, naming the row (of the whole array; of the
    partition for a dataframe, whose partitions' lengths are unknown). The check rides
    in the graph, so a persisted collection is checked once. ``skip``: the columns that
    are not counts (the sample weights, the class labels); ``columns``: the count
    columns, when chosen."""
    from .dask import _read_files, is_dask_collection

    if not is_dask_collection(X):
        X, name = _read_files(X)
    if hasattr(X, "columns") and hasattr(X, "dtypes"):  # dask.dataframe
        counted = [str(c) for c in X.columns if str(c) not in skip] if columns is None else [str(c) for c in columns]
        return X.map_partitions(_checked_frame, counted, dtype, name, meta=X._meta)
    if X.ndim == 2 and len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})  # whole rows, so that a column id is the word's
    return X.map_blocks(_checked_block, dtype, name, dtype=X.dtype, meta=getattr(X, "_meta", None))


def _checked_block(block, dtype: torch.dtype, name: str, block_info=None):
    """One dask array block, checked as counts (its first row's index from ``block_info``)."""
    where = (block_info or {}).get(0)
    start = int(where["array-location"][0][0]) if where else 0
    check_dense_counts(np.asarray(block), start, dtype, name)
    return block


def _checked_frame(part, counted: list[str], dtype: torch.dtype, name: str, partition_info=None):
    """One dask.dataframe partition, its count columns checked (non-numeric columns are
    left for the source to refuse, by name)."""
    cols = [c for c in part.columns if str(c) in counted and getattr(part[c].dtype, "kind", "O") in "fiub"]
    if cols:
        where = name if partition_info is None else \
            f"{name}, partition {partition_info['number']} (rows counted from its start)"
        check_dense_counts(part[cols].to_numpy(dtype=np.float64, na_value=np.nan), 0, dtype, where)
    return part


def check_dense_counts(block: np.ndarray, row_start: int, dtype: torch.dtype, name: str) -> None:
    """A dense (n, D) block of counts: a vectorised scan finds the first row that holds a
    bad entry, which :func:`check_counts` then names (row and column) with the fix."""
    if block.ndim != 2 or block.dtype.kind not in "fiu" or not block.size:
        return
    bad = block < 0 if block.dtype.kind != "u" else np.zeros(block.shape, dtype=bool)
    if block.dtype.kind == "f":
        with np.errstate(invalid="ignore"):
            bad |= ~np.isfinite(block) | (block != np.floor(block))
    if dtype == torch.float32:
        bad |= block > FLOAT32_EXACT
    rows = np.flatnonzero(bad.any(1))
    if len(rows):
        r = int(rows[0])
        indptr, indices, data = sparse_from_dense(block[r : r + 1])
        check_counts(indptr, indices, data, row_start + r, block.shape[1], dtype, name)
