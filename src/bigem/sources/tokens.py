"""Documents as lists of word ids in Parquet or Arrow files, streamed as sparse rows.

Each row holds a list of word ids (``tokens``) and, optionally, a list of how often each
occurs (``counts``, the same length row by row): the shape of a CountVectorizer or
HashingVectorizer matrix written row by row, and of tokenised text in a data lake.
Without ``counts`` every listed id counts once, so a tokenised document [5, 9, 5] has
word 5 twice. Within a row, ids may come in any order and repeat: they are summed.

A list column is read as Arrow holds it, an offsets array and one flat array of values,
so a batch of rows becomes CSR arrays without a copy per document. Chunks have exactly
``chunk_rows`` rows whatever the files' row groups (a fit does not depend on how the
documents were split into files). The vocabulary size is given, or found by one pass
over the ids before the fit (the largest id + 1).
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.sparse import SparseRows
from .._core.types import Chunk
from . import identity
from .counts import MEMO_SHARE, RowMemos, _canonical_rows, _csr_of, check_counts, chunk_rows_for, stored_bytes, to_rows
from .parts import CutByRows
from .paths import expand_paths
from .tables import _IpcReader, _ParquetReader, check_unique, file_errors, free_cuts, import_pyarrow, row_window


def _reader(path: str, fmt: str):
    return _ParquetReader(path) if fmt == "parquet" else _IpcReader(path)


def _is_list(pa, t) -> bool:
    return pa.types.is_list(t) or pa.types.is_large_list(t)


def list_columns(path) -> list[str] | None:
    """The list columns of a Parquet or Arrow data set (its first file's schema); None
    for formats that hold none (CSV, .npy)."""
    files, fmt = expand_paths(path)
    if fmt not in ("parquet", "ipc"):
        return None
    pa = import_pyarrow()
    schema = _reader(files[0], fmt).schema
    return [f.name for f in schema if _is_list(pa, f.type)]


class TokenSource(CutByRows):
    """Rows of token-list files as chunks of sparse counts (see the module's docstring)."""

    shift = None
    feature_names = None
    decodes = True

    def __init__(self, spec, dtype: torch.dtype, device: torch.device, memory_budget: int,
                 chunk_size: int | None = None, keep: list[str] | None = None, weight_column: str | None = None) -> None:
        pa = import_pyarrow()
        self.files, fmt = expand_paths(spec.path)
        self._unchanged = identity.Unchanged(self.files)  # each pass checks the files are as they were
        if fmt not in ("parquet", "ipc"):
            raise DataError(f"{self.files[0]}: token lists are read from Parquet or Arrow files, not {fmt} files")
        self.format, self.spec = fmt, spec
        self.dtype, self.device = dtype, device
        self.tokens, self.counts = spec.tokens, spec.counts
        self.keep = list(keep or [])
        self.weight_column = weight_column
        self.weight: Tensor | None = None
        self.checked = False
        self._readers = [_reader(f, fmt) for f in self.files]
        for reader in self._readers:
            self._check_schema(pa, reader)
        self.file_rows = [int(r.n_rows) for r in self._readers]
        self.n_rows = sum(self.file_rows)
        self.first_row = 0  # a part's rows are the data set's [first_row, first_row + n_rows) (see part)
        if self.n_rows == 0:
            raise DataError(f"{self.files[0]}: no rows; the data set is empty")
        if spec.vocabulary_size is None:
            self.n_features = self._discover()
        else:
            self.n_features = int(spec.vocabulary_size)
        self.nnz_per_row = self._mean_length()
        itemsize = torch.finfo(dtype).bits // 8
        self.chunk_rows = max(1, int(chunk_size or chunk_rows_for(memory_budget, self.nnz_per_row, 16, itemsize)))
        self._memo_limit = memory_budget // MEMO_SHARE
        self._memos = RowMemos(self._memo_limit)

    # ------------------------------------------------------------------ checks
    def _check_schema(self, pa, reader) -> None:
        names = list(reader.schema.names)
        wanted = [self.tokens] + ([self.counts] if self.counts else []) + self.keep + (
            [self.weight_column] if self.weight_column else [])
        missing = [c for c in wanted if c not in names]
        if missing:
            plain = (" (token lists without a counts column, each id once per occurrence: Tokens(..., "
                     "counts=None))" if self.counts in missing else "")
            raise DataError(f"{reader.path}: no column(s) {missing}; the file has {names}. Check the spelling "
                            f"(names are case-sensitive){plain}")
        check_unique(reader.path, names, wanted)
        t = reader.schema.field(self.tokens).type
        if not (_is_list(pa, t) and pa.types.is_integer(t.value_type)):
            raise DataError(f"{reader.path}: column {self.tokens!r} is {t}, not a list of integer word ids; name the "
                            "column of token ids (a list<int> column)")
        if self.counts:
            c = reader.schema.field(self.counts).type
            if not (_is_list(pa, c) and (pa.types.is_integer(c.value_type) or pa.types.is_floating(c.value_type))):
                raise DataError(f"{reader.path}: column {self.counts!r} is {c}, not a list of counts; name the column "
                                "of counts (a list of numbers, one per token id)")
        if self.weight_column:
            w = reader.schema.field(self.weight_column).type
            if not (pa.types.is_integer(w) or pa.types.is_floating(w)):
                raise DataError(f"{reader.path}: sample_weight column {self.weight_column!r} is {w}, not numeric")

    def _discover(self) -> int:
        """One pass over the token ids: the vocabulary size (largest id + 1)."""
        import_pyarrow()
        import pyarrow.compute as pc

        top = -1
        for batch, path, first in self._batches([self.tokens], 1 << 16):
            col = batch.column(0)
            values = pc.list_flatten(col)
            if len(values):
                low = pc.min(values).as_py()
                if low is not None and low < 0:
                    raise DataError(f"{path}: column {self.tokens!r} holds the negative word id {low}; ids run from 0 "
                                    "(the column of each word in the vocabulary)")
                high = pc.max(values).as_py()
                top = max(top, -1 if high is None else int(high))
        if top < 0:
            raise DataError(f"{self.files[0]}: column {self.tokens!r} holds no token ids at all; every document is empty")
        return top + 1

    def _mean_length(self) -> float:
        """Token ids per row in the first rows (for sizing chunks)."""
        for batch, _, _ in self._batches([self.tokens], 4096):
            col = batch.column(0)
            offsets = col.offsets.to_numpy()
            return float(offsets[-1] - offsets[0]) / max(1, len(col))
        return 1.0

    # ------------------------------------------------------------------ reading
    def _batches(self, columns: list[str], batch_rows: int) -> Iterator[tuple[object, str, int]]:
        """(record batch, its file, its first row in the data set) of ``columns`` over this
        source's rows: a part reads only the Parquet row groups (the Arrow files) that hold
        them (``tables.row_window``)."""
        self._unchanged.check()

        def batches(i: int, reader, groups: range | None):
            with file_errors(self.files[i]):
                yield from reader.batches(columns, batch_rows, **({} if groups is None else {"groups": groups}))

        rows = row_window(self._readers, self.file_rows, self.first_row, self.first_row + self.n_rows, batches)
        for batch, i, first in rows:
            yield batch, self.files[i], first

    def _lists(self, col, name: str, path: str, first: int) -> tuple[np.ndarray, np.ndarray]:
        """A list column of a batch as (offsets from 0, flat values)."""
        if col.null_count:
            row = first + int(np.argmax(col.is_null().to_numpy(zero_copy_only=False)))
            raise DataError(f"{path}: column {name!r} is null at row {row} of the data set; an empty document is an "
                            "empty list: fill the nulls with [] or drop those rows")
        offsets = col.offsets.to_numpy().astype(np.int64)
        values = col.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        if values.null_count:
            pos = int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
            row = first + int(np.searchsorted(offsets - offsets[0], pos, side="right")) - 1
            raise DataError(f"{path}: column {name!r} holds a null inside the list at row {row}; every entry needs a "
                            "value")
        return offsets - offsets[0], values.to_numpy(zero_copy_only=False)

    def _csr(self, batch, path: str, first: int, check: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """A batch's rows as CSR arrays: ids sorted within rows, repeats summed, checked."""
        ptr, ids = self._lists(batch.column(self.tokens), self.tokens, path, first)
        if self.counts:
            cptr, counts = self._lists(batch.column(self.counts), self.counts, path, first)
            if not np.array_equal(ptr, cptr):
                lengths, clengths = np.diff(ptr), np.diff(cptr)
                row = int(np.argmax(lengths != clengths))
                raise DataError(
                    f"{path}: row {first + row} has {lengths[row]} token ids but {clengths[row]} counts; the lists "
                    f"{self.tokens!r} and {self.counts!r} must have the same length in every row"
                )
        else:
            counts = np.ones(len(ids), dtype=np.int64)
        if check:
            check_counts(ptr, ids, counts, first, self.n_features, self.dtype, path)
        if not _canonical_rows(ptr, ids):
            rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
            ptr, ids, counts = _csr_of(rows, ids.astype(np.int64), counts, len(ptr) - 1, self.n_features)
        return ptr, ids, counts

    def _weights(self, batch, path: str, first: int) -> np.ndarray | None:
        if self.weight_column is None:
            return None
        col = batch.column(self.weight_column)
        w = col.to_numpy(zero_copy_only=False).astype(np.float64)
        bad = ~np.isfinite(w) | (w < 0)  # a null reads as NaN
        if bad.any():
            row = int(np.argmax(bad))
            raise DataError(f"{path}: sample_weight column {self.weight_column!r} has {w[row]!r} at row {first + row} "
                            "of the data set; weights must be finite and non-negative")
        return w

    def blocks(self, check: bool) -> Iterator[tuple[int, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, dict | None]]:
        """(first row, indptr, indices, data, weights, kept columns) of exactly ``chunk_rows``
        rows each (the last may be shorter)."""
        pa = import_pyarrow()
        columns = [self.tokens] + ([self.counts] if self.counts else []) + self.keep + (
            [self.weight_column] if self.weight_column else [])
        rows = self.chunk_rows
        pending: list[tuple] = []
        have, start, total_weight = 0, self.first_row, 0.0
        for batch, path, first in self._batches(columns, rows):
            off = 0
            while off < batch.num_rows:
                take = min(batch.num_rows - off, rows - have)
                part = batch.slice(off, take)
                ptr, ids, counts = self._csr(part, path, first + off, check)
                w = self._weights(part, path, first + off)
                total_weight += 0.0 if w is None else float(w.sum())
                pending.append((ptr, ids, counts, w, part.select(self.keep) if self.keep else None))
                have, off = have + take, off + take
                if have == rows:
                    yield (start, *self._join(pa, pending))
                    pending, have, start = [], 0, start + rows
        if pending:
            yield (start, *self._join(pa, pending))
        if self.weight_column is not None and total_weight == 0 and self.n_rows == sum(self.file_rows):  # whole
            raise DataError(f"sample_weight column {self.weight_column!r} is zero in every row; give at least one "
                            "row a positive weight")

    def _join(self, pa, parts: list[tuple]):
        if len(parts) == 1:
            ptr, ids, counts, w, kept = parts[0]
        else:
            offsets = np.cumsum([0] + [len(p[1]) for p in parts[:-1]])
            ptr = np.concatenate([parts[0][0][:1]] + [p[0][1:] + o for p, o in zip(parts, offsets)])
            ids = np.concatenate([p[1] for p in parts])
            counts = np.concatenate([p[2] for p in parts])
            w = None if parts[0][3] is None else np.concatenate([p[3] for p in parts])
            kept = pa.Table.from_batches([p[4] for p in parts]) if self.keep else None
        extra = None if kept is None else {k: kept.column(k).combine_chunks() if hasattr(kept.column(k), "combine_chunks")
                                           else kept.column(k) for k in self.keep}
        return ptr, ids, counts, w, extra

    def chunks(self) -> Iterator[Chunk]:
        for start, ptr, ids, counts, w, extra in self.blocks(not self.checked):
            n = len(ptr) - 1
            if w is not None:
                weight = torch.from_numpy(w).to(self.device)
            else:
                at = start - self.first_row
                weight = None if self.weight is None else self.weight[at : at + n]
            rows = to_rows(ptr, ids, counts, self.n_features, self.dtype, self.device)
            yield Chunk(self._memos.attach(rows, start), weight, start, extra)

    def take(self, rows: Tensor) -> SparseRows:
        """Rows by sorted index, from the blocks that hold them (one pass at most); before
        the first complete pass (an initialisation's sample) the blocks read are checked."""
        idx = rows.cpu().numpy().astype(np.int64) + self.first_row
        parts = []
        for start, ptr, ids, counts, _, _ in self.blocks(not self.checked):
            n = len(ptr) - 1
            local = idx[(idx >= start) & (idx < start + n)] - start
            if len(local):
                parts.append(to_rows(ptr, ids, counts, self.n_features, self.dtype, self.device)[torch.from_numpy(local)])
            if start + n > (idx[-1] if len(idx) else -1):
                break
        return SparseRows.cat(parts) if parts else SparseRows.empty(self.n_features, self.dtype, self.device)

    # ------------------------------------------------------------------ the rest of the protocol
    @property
    def weighted(self) -> bool:
        return self.weight is not None or self.weight_column is not None

    def weight_blocks(self) -> Iterator[tuple[Tensor, int]]:
        """(weights, first row), reading the weight column alone (weighted sampling)."""
        if self.weight_column is None:
            yield from ([] if self.weight is None else [(self.weight.cpu(), 0)])
            return
        for batch, path, first in self._batches([self.weight_column], 1 << 16):
            yield torch.from_numpy(self._weights(batch, path, first)), first - self.first_row

    def read_in(self, rows: int) -> None:
        self.chunk_rows = max(1, int(rows))
        self._memos = RowMemos(self._memo_limit)

    def fingerprint(self) -> dict:
        return {"files": identity.files(self.files), "tokens": self.tokens, "counts": self.counts,
                "vocabulary": self.n_features, "weight_column": self.weight_column,
                "weights": None if self.weight is None else identity.digest(self.weight)}

    def stored_bytes(self) -> int:
        return stored_bytes(self.n_rows, int(self.nnz_per_row * self.n_rows), self.dtype)

    # ------------------------------------------------------------------ parts (engine='torch')
    def boundaries(self) -> list[int]:
        """Rows where a part can start without reading rows it does not hold: between
        Parquet row groups, between Arrow files (``tables.free_cuts``)."""
        return free_cuts(self._readers, self.file_rows, self.first_row, self.n_rows)

    def part(self, start: int, stop: int) -> TokenSource:
        """Rows [start, stop) of this source, reading only the row groups that hold them;
        its chunks say where their rows lie in the data set."""
        part = copy.copy(self)
        part.first_row, part.n_rows = self.first_row + int(start), int(stop) - int(start)
        part.weight = None if self.weight is None else self.weight[start:stop]
        part.checked, part._memos = False, RowMemos(self._memo_limit)
        return part


    def file_of_row(self, row: int) -> str:
        ends = np.cumsum(self.file_rows)
        return self.files[int(np.searchsorted(ends, row, side="right"))]

