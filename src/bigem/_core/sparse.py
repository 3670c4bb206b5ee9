"""Rows of a sparse matrix: the chunk of count data (bags of words) every layer passes.

:class:`SparseRows` is a CSR block (row pointers, column indices, values) of torch
tensors on the compute device. It is what ``Chunk.x`` holds for sparse sources: it has
the few things the generic layers ask of a chunk's rows (``shape``, ``device``,
``dtype``, row slices, row gathers, ``to``, concatenation), so a mixture's E-step, its
re-seeding candidates and online EM's mini-batches carry it as they carry a dense
tensor; only a component that reads sparse rows looks inside. Slicing rows shares the
column indices and values (a view); gathering rows copies them.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch import Tensor


@dataclass(frozen=True, slots=True, eq=False)
class SparseRows:
    """(n, D) rows in CSR layout.

    indptr (n + 1,) int64, starting at 0: row i holds entries indptr[i]:indptr[i + 1];
    indices (nnz,) int32 or int64: the column of each entry; values (nnz,) float: the
    entry (zeros may be stored; duplicates in a row are not); n_features: D.
    ``memo``: what a model derived from these rows once and may read again on the next
    pass, when the source hands out the same rows again (a source that keeps its chunks
    in memory does; a streamed one hands out the memo of the rows it reads again,
    ``sources.counts.RowMemos``): derived values only, never part of the data.
    """

    indptr: Tensor
    indices: Tensor
    values: Tensor
    n_features: int
    memo: dict = field(default_factory=dict, repr=False)

    # ------------------------------------------------------------------ what a chunk's rows have
    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.indptr.shape[0]) - 1, int(self.n_features))

    @property
    def device(self) -> torch.device:
        return self.values.device

    @property
    def dtype(self) -> torch.dtype:
        return self.values.dtype

    @property
    def nnz(self) -> int:
        return int(self.values.shape[0])

    @property
    def nbytes(self) -> int:
        return sum(t.element_size() * t.numel() for t in (self.indptr, self.indices, self.values))

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, key) -> SparseRows:
        """Rows by a slice (a view of the entries) or by index (a copy, in that order)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                return self[torch.arange(start, stop, step, device=self.device)]
            if start == 0 and stop >= self.shape[0]:
                return self  # all rows: the same object, memo included
            stop = max(start, stop)
            ptr = self.indptr[start : stop + 1]
            lo, hi = int(ptr[0]), int(ptr[-1])
            return SparseRows(ptr - lo, self.indices[lo:hi], self.values[lo:hi], self.n_features)
        rows = torch.as_tensor(key, device=self.indptr.device).reshape(-1).long()
        starts, stops = self.indptr[rows], self.indptr[rows + 1]
        lengths = stops - starts
        ptr = torch.zeros(rows.shape[0] + 1, dtype=torch.int64, device=self.indptr.device)
        torch.cumsum(lengths, 0, out=ptr[1:])
        total = int(ptr[-1])
        # the position of each gathered entry in the source: its row's start plus its rank
        pos = torch.arange(total, device=self.indptr.device) + torch.repeat_interleave(starts - ptr[:-1], lengths,
                                                                                    output_size=total)
        pos = pos.to(self.values.device)
        return SparseRows(ptr, self.indices[pos], self.values[pos], self.n_features)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> SparseRows:
        """The rows on ``device`` with values in ``dtype`` (itself when nothing changes)."""
        if isinstance(device, torch.dtype):  # to(dtype), as a tensor takes it
            device, dtype = None, device
        device = self.device if device is None else torch.device(device)
        dtype = self.dtype if dtype is None else dtype
        if device == self.device and dtype == self.dtype:
            return self
        return SparseRows(self.indptr.to(device), self.indices.to(device), self.values.to(device, dtype),
                          self.n_features)

    def double(self) -> SparseRows:
        return self.to(dtype=torch.float64)

    def cpu(self) -> SparseRows:
        return self.to("cpu")

    # ------------------------------------------------------------------ derived
    def row_ids(self) -> Tensor:
        """The row of each entry: (nnz,) int64."""
        n = self.shape[0]
        lengths = self.indptr[1:] - self.indptr[:-1]
        return torch.repeat_interleave(torch.arange(n, device=self.indptr.device), lengths, output_size=self.nnz)

    def row_sums(self) -> Tensor:
        """Each row's sum of values, (n,) float64."""
        out = torch.zeros(self.shape[0], dtype=torch.float64, device=self.device)
        if self.nnz:
            out.index_add_(0, self.row_ids().to(self.device), self.values.double())
        return out

    def dense_rows(self, rows: Tensor) -> Tensor:
        """Rows ``rows`` (m,) as a dense (m, D) tensor, every entry scattered (those of
        other rows into a row that is dropped), so that nothing is read back: a sparse
        gather must read its rows' total to size its arrays, a wait on a GPU. O(nnz):
        for a handful of rows out of a chunk (re-seeding candidates)."""
        m, dev = rows.shape[0], self.device
        slot = torch.full((self.shape[0],), m, dtype=torch.int64, device=dev)
        slot[rows.to(dev)] = torch.arange(m, device=dev)
        out = torch.zeros(m + 1, self.n_features, dtype=self.dtype, device=dev)
        if self.nnz:
            out.index_put_((slot[self.row_ids().to(dev)], self.indices.long().to(dev)), self.values, accumulate=True)
        return out[:m]

    def to_dense(self) -> Tensor:
        """The rows as a dense (n, D) tensor: for small blocks only (tests, a handful of rows)."""
        out = torch.zeros(self.shape, dtype=self.dtype, device=self.device)
        if self.nnz:
            out.index_put_((self.row_ids().to(self.device), self.indices.long().to(self.device)), self.values,
                           accumulate=True)
        return out

    def csr(self) -> Tensor:
        """The rows as a torch sparse CSR tensor (shared memory), for torch's sparse kernels."""
        return sparse_csr_tensor(self.indptr.to(self.indices.dtype), self.indices, self.values, self.shape)

    @classmethod
    def from_dense(cls, x: Tensor, index_dtype: torch.dtype = torch.int32) -> SparseRows:
        """The non-zero entries of a dense (n, D) tensor, row by row."""
        rows, cols = torch.nonzero(x, as_tuple=True)
        ptr = torch.zeros(x.shape[0] + 1, dtype=torch.int64, device=x.device)
        if rows.numel():
            torch.cumsum(torch.bincount(rows, minlength=x.shape[0]), 0, out=ptr[1:])
        return cls(ptr, cols.to(index_dtype), x[rows, cols], int(x.shape[1]))

    @classmethod
    def empty(cls, n_features: int, dtype: torch.dtype = torch.float64, device: torch.device | str = "cpu") -> SparseRows:
        return cls(torch.zeros(1, dtype=torch.int64, device=device), torch.zeros(0, dtype=torch.int32, device=device),
                   torch.zeros(0, dtype=dtype, device=device), n_features)

    @staticmethod
    def cat(parts: Sequence[SparseRows]) -> SparseRows:
        """The rows of ``parts`` one after the other (one width; on the first part's device)."""
        first = parts[0]
        if len(parts) == 1:
            return first
        dev = first.device
        ptrs, offset = [first.indptr.new_zeros(1).to(dev)], 0
        for p in parts:
            ptrs.append(p.indptr[1:].to(dev) + offset)
            offset += p.nnz
        index_dtype = torch.int64 if any(p.indices.dtype == torch.int64 for p in parts) else first.indices.dtype
        return SparseRows(torch.cat(ptrs), torch.cat([p.indices.to(dev, index_dtype) for p in parts]),
                          torch.cat([p.values.to(dev, first.dtype) for p in parts]), first.n_features)


def is_sparse(x: object) -> bool:
    return isinstance(x, SparseRows)


def cat_rows(parts: Sequence[Tensor | SparseRows]) -> Tensor | SparseRows:
    """Rows one after the other, dense or sparse alike (re-seeding candidates, mini-batches)."""
    if isinstance(parts[0], SparseRows):
        return SparseRows.cat(parts)
    return torch.cat(list(parts))


_CSR_LOCK = threading.Lock()
_CSR_QUIET = False


def sparse_csr_tensor(indptr: Tensor, indices: Tensor, values: Tensor, shape: tuple[int, int]) -> Tensor:
    """torch.sparse_csr_tensor without invariant checks (the sources check the entries).

    torch warns once per process that sparse CSR support is in beta; that warning says
    nothing about the user's data, so the first construction is made with it silenced
    (under a lock, since warning filters are process-wide)."""
    global _CSR_QUIET
    if not _CSR_QUIET:
        with _CSR_LOCK, warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            out = torch.sparse_csr_tensor(indptr, indices, values, size=shape, check_invariants=False)
            _CSR_QUIET = True
        return out
    return torch.sparse_csr_tensor(indptr, indices, values, size=shape, check_invariants=False)
