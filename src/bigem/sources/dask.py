"""Dask collections, and Parquet/CSV files read by Dask workers, as partitions of rows.

Nothing here runs on the client except bookkeeping: every partition is converted
(to the compute dtype, one C-contiguous block) and checked (column set, numeric
columns, NaN/inf, length) by the worker that holds or reads it. Dask is imported
lazily: ``import bigem`` works without it.
"""

from __future__ import annotations

import copy
import glob
import math
import os
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError, ParameterError
from .._core.types import Chunk
from .arrays import chunk_rows_for_budget
from .arrays import PROBE_ROWS, choose_shift
from .paths import expand_paths
from .validate import (ColumnsSeen, NonNumericDataError, check_shape, check_values, check_weight_not_a_feature,
                       column_label, files_disagree, raise_not_finite)

_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}
DASK_FILE_SUFFIXES = (".parquet", ".pq", ".csv")


def is_dask_collection(x: object) -> bool:
    """True for a dask.array / dask.dataframe collection, without importing dask."""
    return type(x).__module__.split(".")[0] in ("dask", "dask_expr") and hasattr(x, "__dask_graph__")


def read_paths(X: object) -> list[str]:
    """The local paths a Dask collection reads: read_parquet's path (a file, folder or
    glob) as its expression names it, and the files its tasks open (read_csv's, and
    read_parquet's pieces), however the collection was derived from them (``.values``,
    ``to_dask_array``, a selection). For refusing an output that would replace its own
    input; [] where none is found (a collection made from memory, or a Dask whose tasks
    hold them elsewhere: the check is then the local engine's alone). Remote paths
    (s3://, ...) are left out."""
    found: list[str] = []
    budget = [200_000]  # objects visited at most: the walk stays small beside the work

    def visit(value, depth: int, key: object = None) -> None:
        budget[0] -= 1
        if depth > 16 or budget[0] < 0:
            return
        if isinstance(value, str):
            if key == "piece":  # read_parquet's task argument: {"piece": (path, row groups, ...)}
                found.append(value)
            return
        path = getattr(value, "path", None)
        if isinstance(path, str) and hasattr(value, "fs"):  # an fsspec OpenFile (read_csv's blocks)
            found.append(path)
        elif isinstance(value, dict):
            for k, item in value.items():
                visit(item[0] if k == "piece" and isinstance(item, (list, tuple)) and item else item, depth + 1, k)
        elif isinstance(value, (list, tuple)):
            for item in value:
                visit(item, depth + 1)
        elif hasattr(value, "dependencies") and hasattr(value, "key"):  # a task (dask._task_spec)
            for name in ("args", "kwargs", "value", "target"):
                inner = getattr(value, name, None)
                if inner is not None and not callable(inner) or isinstance(inner, (list, tuple, dict)):
                    visit(inner, depth + 1)

    try:
        expr = getattr(X, "expr", None)
        for node in expr.walk() if expr is not None and hasattr(expr, "walk") else ():
            if "path" in getattr(node, "_parameters", ()):
                value = node.operand("path")
                found += [os.fspath(v) for v in (value if isinstance(value, (list, tuple)) else [value])
                          if isinstance(v, (str, os.PathLike))]
        for task in dict(X.__dask_graph__()).values():
            visit(task, 0)
    except Exception:  # another Dask's layout: the paths found so far, and no failure for it
        pass
    local = [p[len("file://"):] if p.startswith("file://") else p for p in found]
    return list(dict.fromkeys(p for p in local if "://" not in p))


@dataclass(frozen=True, slots=True)
class PartitionReader:
    """Runs on a worker: an evaluated block (n, D) -> chunks of at most ``chunk_rows`` rows.

    ``weighted``: the block's column D holds the rows' sample weights; ``labelled``: its
    last column holds their class codes (semi-supervised fitting; -1 unlabelled). The
    rows, weights and labels are split into contiguous tensors, laid out as a local
    source's, so that sums over them (a weighted log-likelihood is a dot product, whose
    rounding depends on the stride) equal the local engine's bit for bit. ``schema``: a
    family's column rules (``sources.schema``), checked on every chunk here, where the
    rows are (a message names the row in the whole data set)."""

    dtype: torch.dtype
    device: str
    chunk_rows: int
    weighted: bool = False
    labelled: bool = False
    schema: object = None

    def __call__(self, block: np.ndarray, row_start: int) -> Iterator[Chunk]:
        block = torch.from_numpy(block)
        label = None
        if self.labelled:
            label = block[:, -1].to(device=self.device, dtype=torch.int64).contiguous()
            block = block[:, :-1]
        if self.weighted:  # a float64 block: the weights stay float64
            w = block[:, -1].to(device=self.device, dtype=torch.float64).contiguous()
            x = block[:, :-1].to(device=self.device, dtype=self.dtype).contiguous()
        else:
            w, x = None, block.to(device=self.device, dtype=self.dtype).contiguous()
        if self.schema is not None:
            self.schema.check(x, row_start, "X")
        for s in range(0, x.shape[0], self.chunk_rows):
            e = s + self.chunk_rows
            yield Chunk(x[s:e], None if w is None else w[s:e], row_start + s, label=None if label is None else label[s:e])


@dataclass(frozen=True)
class Place:
    """Where a partition's rows lie in X, for messages: its index, and its first row's
    position (None where Dask does not know the partitions' lengths, as after a boolean
    selection: rows are then counted from the partition's start)."""

    index: int | None = None
    start: int | None = None

    @classmethod
    def of(cls, block_info) -> Place:
        """The place of ``map_blocks``' block (its ``block_info``)."""
        info = (block_info or {}).get(0) or {}
        index = info.get("chunk-location", (None,))[0]
        start = info.get("array-location", [(None, None)])[0][0]
        known = start is not None and not (isinstance(start, float) and math.isnan(start))
        return cls(None if index is None else int(index), int(start) if known else None)

    def row(self, row: int) -> int:
        """A row counted from the partition's start, counted from X's where that is known."""
        return row if self.start is None else self.start + row

    @property
    def within(self) -> str:
        """What rows are counted in: X, or the partition."""
        if self.start is not None:
            return "X"
        partition = "one partition" if self.index is None else f"partition {self.index}"
        return f"{partition} of X (counted from its start)"


def partition_rows(block, weighted: bool, device, dtype: torch.dtype,
                   shift: Tensor | None = None, gaps: bool = False,
                   offer_fiml: bool = True, place: Place = Place(),
                   names: list[str] | None = None) -> tuple[Tensor, Tensor | None]:
    """One partition's rows (less ``shift``, in float64) and weights (its last column when
    ``weighted``), checked: finite rows (or NaN, a missing value, with ``gaps``), finite
    non-negative weights. Runs on a worker, for scoring and prediction; messages name
    the partition and the row in X at ``place`` (see :class:`Place`), a column by its name
    in ``names`` (a frame's), and missing_values='fiml' only with ``offer_fiml`` (the
    estimator has it)."""
    block = np.asarray(block, dtype=np.float64)
    rows = torch.from_numpy(np.ascontiguousarray(block[:, :-1] if weighted else block))
    x = (rows if shift is None else rows - shift).to(device=device, dtype=dtype)
    found = check_values(x, 0, gaps)
    if found:
        where = (" in one partition" if place.index is None else f" in partition {place.index}") + (
            "; row counted from its start" if place.start is None else "")
        raise_not_finite(found[0], found[1], place.row(found[2]), "X", where, offer_fiml,
                         column=column_label(names, found[3]))
    if not weighted:
        return x, None
    w = torch.from_numpy(np.ascontiguousarray(block[:, -1])).to(device=device, dtype=torch.float64)
    bad = ~torch.isfinite(w) | (w < 0)
    if bool(bad.any()):
        row = int(bad.int().argmax())
        raise DataError(f"X: sample_weight has {float(w[row])} at row {place.row(row)} of {place.within}; weights "
                        "must be finite and non-negative")
    return x, w


def _frame_block(part, columns: list[str], expected: list[str], index: int, dtype,
                 shift: np.ndarray | None = None, schema=None, labels=None) -> np.ndarray:
    """A pandas partition -> (n, D) array of the selected columns; runs on a worker.
    With ``schema`` the first D columns are the features read by it (categories as
    codes) and the rest numeric (the weights); with ``labels`` (a LabelColumn) the class
    codes of its column are appended last."""
    have = [str(c) for c in part.columns]
    if have != expected:
        missing = [c for c in expected if c not in have]
        extra = [c for c in have if c not in expected]
        raise DataError(
            f"partition {index} has columns {have}, but the collection declares {expected} "
            f"(missing {missing}, unexpected {extra}); give every partition/file the same columns"
        )
    if schema is not None or labels is not None:
        return _coded_frame_block(part, columns, index, schema, labels)
    part = part[columns]
    bad = [str(c) for c, dt in part.dtypes.items() if getattr(dt, "kind", "O") not in "fiub"]
    if bad:
        raise NonNumericDataError(
            f"partition {index}: non-numeric column(s) {bad}; encode or drop them, or choose numeric columns "
            "with columns=[...]"
        )
    if shift is None:
        return np.ascontiguousarray(part.to_numpy(dtype=dtype, na_value=np.nan))
    return _shifted(part.to_numpy(dtype=np.float64, na_value=np.nan), dtype, shift)


def _coded_frame_block(part, columns: list[str], index: int, schema, labels) -> np.ndarray:
    """A float64 block: the features (read by ``schema``, or as numbers), the other
    ``columns`` as numbers (the weights), and the label codes last."""
    D = len(columns) if schema is None else schema.n_features
    where = f"partition {index} (rows counted from its start)"
    feats = part[columns[:D]]
    x = schema.encode_frame(feats, where) if schema is not None else feats.to_numpy(dtype=np.float64, na_value=np.nan)
    parts = [x] + [part[[c]].to_numpy(dtype=np.float64, na_value=np.nan) for c in columns[D:]]
    if labels is not None:
        parts.append(labels.codes(part[labels.name], 0, where).astype(np.float64)[:, None])
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def _array_block(part, dtype, shift: np.ndarray | None = None, schema=None) -> np.ndarray:
    if schema is not None and schema.encodes():  # category values -> codes (the weights and labels, after D, stay)
        block = np.array(part, dtype=np.float64)
        D = schema.n_features
        block[:, :D] = schema.encode_array(block[:, :D])
        return block if dtype == np.float64 else block.astype(dtype)
    if shift is None:
        return np.ascontiguousarray(np.asarray(part, dtype=dtype))
    return _shifted(np.asarray(part, dtype=np.float64), dtype, shift)


def _shifted(block: np.ndarray, dtype, shift: np.ndarray) -> np.ndarray:
    """A new block: the features less the shift, in float64, then cast (a weight column,
    past the shift's length, stays as it is). The input may be a partition's own data."""
    out = np.empty(block.shape, dtype)
    D = shift.shape[0]
    np.subtract(block[:, :D], shift, out=out[:, :D], casting="unsafe")
    out[:, D:] = block[:, D:]
    return out


def _head(X) -> np.ndarray:
    """The first rows of a dask collection's first partition, computed (the shift's probe)."""
    if hasattr(X, "columns"):
        with warnings.catch_warnings():  # a first partition shorter than the probe is fine
            warnings.simplefilter("ignore", UserWarning)
            head = X.head(PROBE_ROWS, npartitions=1)
    else:  # the first block's (a slice needs known chunk sizes, which a filtered array lacks)
        head = X.blocks[0].compute()[:PROBE_ROWS] if X.numblocks[0] else np.zeros((0,) + X.shape[1:])
    return np.asarray(head, dtype=np.float64)


def _inspect_block(block: np.ndarray, weighted: bool = False, gaps: bool = False, labelled: bool = False) -> tuple:
    """(rows, NaN count, inf count, first bad row in the block or -1, weight total, first
    bad weight's row or -1, its value, values seen per column, the first bad row's first
    bad column or -1); runs on a worker. Weights (the column after the features when
    ``weighted``) must be finite and non-negative; with ``gaps`` a NaN is a missing value,
    not a bad one (the per-column counts are None without); labels (the last column when
    ``labelled``) are the sources' own codes."""
    if labelled:
        block = block[:, :-1]
    x, w = (block[:, :-1], block[:, -1]) if weighted else (block, np.ones(0))
    nonfinite = ~np.isfinite(w)
    bad_w = nonfinite if nonfinite.any() else w < 0  # a local fit's order: NaN and infinity before negatives
    first_w = int(np.argmax(bad_w)) if bad_w.any() else -1
    weights = (float(w[np.isfinite(w)].sum()), first_w, float(w[first_w]) if first_w >= 0 else 0.0)
    seen = (~np.isnan(x)).sum(0) if gaps else None
    finite = np.isfinite(x) | np.isnan(x) if gaps else np.isfinite(x)
    if finite.all():
        return (block.shape[0], 0, 0, -1, *weights, seen, -1)
    n_nan = 0 if gaps else int(np.isnan(x).sum())
    first = int(np.argmin(finite.all(1)))
    return (block.shape[0], n_nan, int((~finite).sum()) - n_nan, first, *weights, seen, int(np.argmin(finite[first])))


def _take_block(block: np.ndarray, local_rows: np.ndarray, n_features: int) -> np.ndarray:
    return block[local_rows, :n_features]


def stream_partitions(client, partitions, row_starts, reader, wait=None) -> Iterator:
    """What ``reader`` makes of each partition, in order, through this process: the
    cluster evaluates the next partition while this one is used (see
    :meth:`DaskSource.chunks`)."""
    parts = iter(zip(partitions, row_starts))
    pending: deque = deque()

    def ask() -> None:
        part = next(parts, None)
        if part is not None:
            pending.append((client.compute(part[0]), part[1]))

    ask()
    try:
        while pending:
            future, start = pending.popleft()
            block = future.result() if wait is None else wait(future)
            ask()
            yield from reader(block, start)
    finally:
        # released, not cancelled: a cancel ends the key for every future of this client,
        # and the next pass, asking for the same partition at once (a start that read the
        # first rows), found it cancelled ("lost dependencies"); a released key unwanted
        # by anyone is dropped by the scheduler all the same
        for future, _ in pending:
            future.release()


class DaskSource:
    """Rows held by Dask partitions; each iteration the workers evaluate them where they live.

    ``partitions`` are delayed (n_i, D) blocks in the compute dtype; :meth:`inspect`
    computes their lengths and checks them once on the workers; ``persist`` swaps in
    partitions held in worker memory.
    """

    weight: Tensor | None = None  # weights, when ``weighted``, travel in the partitions' last column

    def __init__(
        self,
        partitions: Sequence[object],
        n_features: int,
        feature_names: list[str] | None,
        dtype: torch.dtype,
        device: torch.device,
        chunk_rows: int,
        client,
        name: str,
        weighted: bool = False,
        shift: Tensor | None = None,
        gaps: bool = False,
        every_column: bool = False,
        labelled: bool = False,
        schema=None,
        offer_fiml: bool = True,
    ) -> None:
        self.shift = shift  # the workers subtract it from every row before the cast (None: none)
        self.gaps, self.every_column = gaps, every_column  # NaN: missing; refuse a column no row observes
        self.offer_fiml = offer_fiml  # else a NaN's error names missing_values='fiml' only where it exists
        self.partitions = list(partitions)
        self.n_features = n_features
        self.feature_names = feature_names
        self.weighted = weighted
        self.labelled = labelled
        self.reader = PartitionReader(dtype, str(device), max(1, int(chunk_rows)), weighted, labelled, schema)
        self.client = client
        self.name = name
        self.row_starts: list[int] = []
        self.n_rows = 0
        self.column_labels: list | None = None  # a frame's column labels, for messages (any type)

    def inspect(self, min_rows: int = 1, by: str | None = None) -> None:
        """Lengths of every partition, and the NaN/inf check, in one pass on the workers."""
        from dask import delayed

        checks = [delayed(_inspect_block, pure=True)(p, self.weighted, self.gaps, self.labelled) for p in self.partitions]
        try:
            found = self.client.gather(self.client.compute(checks))
        except ValueError as exc:  # the first pass reads the files: Dask's CSV reader fails in its own words
            if "Mismatched dtypes found in `pd.read_csv`" not in str(exc):
                raise
            table = "\n".join(line for line in str(exc).splitlines() if line.startswith(("+", "|")))
            raise NonNumericDataError(
                f"{self.name}: a CSV file holds values of another type than Dask read in the first rows of the "
                f"first file:\n{table}\nFix or drop those values, or leave the column(s) out with columns= (the "
                "local engine names the file and row)") from None
        lengths = [f[0] for f in found]
        self.row_starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int).tolist() if lengths else []
        self.n_rows = int(sum(lengths))
        # empty partitions are dropped: they contribute nothing and cost a task each
        keep = [i for i, n in enumerate(lengths) if n > 0]
        n_nan = sum(f[1] for f in found)
        n_inf = sum(f[2] for f in found)
        if n_nan or n_inf:
            first, column, part = min((self.row_starts[i] + f[3], f[8], i) for i, f in enumerate(found) if f[3] >= 0)
            name, file_row = self.name, None
            where = self.name.file_of(first, part, self.row_starts) if isinstance(self.name, FilesName) else None
            if where is not None:
                name, file_row = where  # the file the local engine would name
            raise_not_finite(n_nan, n_inf, first, name, offer_fiml=self.offer_fiml,
                             column=column_label(self.column_labels or self.feature_names, column), file_row=file_row)
        if self.weighted:
            self._check_weights(found)
        check_shape((self.n_rows, self.n_features), name=self.name, min_rows=min_rows, by=by)
        if self.gaps and self.every_column:
            seen = ColumnsSeen(self.n_features)
            seen.add_counts(torch.from_numpy(np.sum([f[7] for f in found], axis=0).astype(np.int64).reshape(-1)))
            seen.check(self.feature_names, self.name)
        self.partitions = [self.partitions[i] for i in keep]
        self.row_starts = [self.row_starts[i] for i in keep]

    def _check_weights(self, found: list[tuple]) -> None:
        bad = [(self.row_starts[i] + f[5], f[6]) for i, f in enumerate(found) if f[5] >= 0]
        if bad:  # in the words and order of a local fit (scikit-learn's): any NaN or infinity first
            row, value = min([b for b in bad if not np.isfinite(b[1])] or bad)
            if not np.isfinite(value):
                raise DataError(f"Input sample_weight contains NaN or infinity (first at row {row}).")
            raise DataError(f"Negative values in data passed to `sample_weight` (first at row {row}).")
        if sum(f[4] for f in found) == 0:
            raise DataError("Sample weights must contain at least one non-zero number: sample_weight sums to zero; "
                            "give at least one row a positive weight.")

    decodes = False  # the workers decode; this process only computes
    weight_blocks = None  # weights live with the rows, on the workers

    def nbytes(self) -> int:
        return self.n_rows * self.n_features * (torch.finfo(self.reader.dtype).bits // 8)

    def fingerprint(self) -> dict:
        """Rows, partitions, and the graph keys of the first and last (deterministic for
        the same collection built the same way)."""
        keys = [str(getattr(p, "key", "")) for p in (self.partitions[0], self.partitions[-1])] if self.partitions else []
        return {"rows": self.n_rows, "partitions": len(self.partitions), "keys": keys}

    def with_partitions(self, partitions: Sequence[object]) -> DaskSource:
        """The same rows over other handles (persisted ones): a new source, this one unchanged."""
        other = copy.copy(self)
        other.partitions = list(partitions)
        return other

    def chunks(self, wait=None) -> Iterator[Chunk]:
        """Chunks in row order through this process (online EM, local use), one partition
        at a time: the cluster evaluates the next partition while this one is used, so
        at most two are here or in flight. An early stop cancels the one ahead.
        ``wait(future)`` gives a partition's result (the engine's, which gives up on a
        cluster left without workers); by default ``future.result()``."""
        return stream_partitions(self.client, self.partitions, self.row_starts, self.reader, wait)

    def take(self, rows: Tensor) -> Tensor:
        """Rows by global index: each partition's worker picks its own, only they travel."""
        from dask import delayed

        rows_np = rows.cpu().numpy()
        which = np.searchsorted(np.asarray(self.row_starts), rows_np, side="right") - 1
        picks = []
        for i in np.unique(which):
            local = rows_np[which == i] - self.row_starts[i]
            picks.append(delayed(_take_block, pure=True)(self.partitions[i], local, self.n_features))
        blocks = self.client.gather(self.client.compute(picks))
        x = np.concatenate(blocks) if blocks else np.empty((0, self.n_features), _NUMPY[self.reader.dtype])
        return torch.from_numpy(x).to(device=self.reader.device, dtype=self.reader.dtype)


def open_dask_source(
    X: object,
    *,
    client,
    dtype: torch.dtype,
    device: torch.device,
    memory_budget: int,
    chunk_size: int | None = None,
    columns: list[str] | None = None,
    min_rows: int = 1,
    by: str | None = None,
    sample_weight: object | None = None,
    shift: object = None,
    missing_values: str | None = "error",
    every_column: bool = False,
    schema=None,
    labels=None,
) -> DaskSource:
    """A checked source over a dask.array, a dask.dataframe, or Parquet/CSV path(s) read by workers.

    ``sample_weight``: a column name (dataframes and files), or one weight per row of a
    dask array (a numpy or dask array). Weights travel as the partitions' last column,
    so each worker reads its rows' weights with its rows. ``shift``: as for local
    sources (``arrays.choose_shift``); "auto" computes the first rows of the first
    partition here, and each worker subtracts the shift as it converts. ``schema`` (see
    ``sources.schema``): the workers read category columns as codes and check the column
    rules. ``labels``: class codes (semi-supervised fitting), a ``LabelColumn`` of a
    dask.dataframe or, for a dask array, one code per row (numpy or dask array); they
    travel as the partitions' last column."""
    from .labels import LabelColumn

    from dask import delayed

    np_dtype = _NUMPY[dtype]
    name = getattr(X, "bigem_path", "X")  # a .npy file's rows (npy_rows) are named by the file
    if isinstance(X, (str, os.PathLike)) or (isinstance(X, (list, tuple)) and X and isinstance(X[0], (str, os.PathLike))):
        extras = [c for c in (sample_weight, getattr(labels, "name", None)) if isinstance(c, str)]
        X, name = _read_files(X, None if columns is None else [str(c) for c in columns] + extras)
    if not is_dask_collection(X):
        raise DataError(f"expected a dask.array or dask.dataframe collection, got {type(X).__name__}")
    labelled = labels is not None
    if hasattr(X, "columns") and hasattr(X, "dtypes"):  # dask.dataframe
        named = all(isinstance(c, str) for c in X.columns)  # other labels (0, 1, ...) are not feature names
        original = {str(c): c for c in X.columns}  # messages name a column by its label, whatever its type
        if not named:  # columns are compared and selected by their names as strings, here and on the workers
            X = X.rename(columns={c: str(c) for c in X.columns})
        declared = [str(c) for c in X.columns]
        if labelled and not isinstance(labels, LabelColumn):
            raise DataError(f"{name} is a dask.dataframe: give its labels as one of its columns, y='<column>' (an "
                            "array of labels cannot be aligned with partitions of unknown length)")
        label_name = labels.name if labelled else None
        if label_name is not None and label_name not in declared:
            raise DataError(f"y={label_name!r}: {name} has no such column; it has {declared}")
        chosen, weight = _frame_columns([c for c in declared if c != label_name], columns, sample_weight, name)
        if label_name is not None and label_name in chosen:
            raise DataError(f"y={label_name!r} is also in columns=; the labels are a column of their own")
        read = chosen + ([weight] if weight else [])  # the weights: the blocks' last column
        categorical = set() if schema is None else {chosen[j] for j in schema.columns_of("category")}
        _check_numeric(X, [c for c in read if c not in categorical], name)
        weighted = weight is not None
        coded = schema is not None or labelled
        # (pandas' nullable dtypes, Int64 and Float64, by their numpy types)
        stored = np.result_type(*[getattr(X.dtypes[c], "numpy_dtype", X.dtypes[c]) for c in chosen
                                  if c not in categorical] or [np.float32])
        offset = None if coded else choose_shift(
            _head(X[chosen]) if shift == "auto" and dtype == torch.float32 else None, stored, dtype, shift)
        parts = [
            # weighted blocks stay float64, for the weights' sake (a model normalises them)
            delayed(_frame_block, pure=True)(p, read, declared, i, np.float64 if weighted else np_dtype,
                                             None if offset is None else offset.numpy(), schema,
                                             labels if labelled else None)
            for i, p in enumerate(X.to_delayed())
        ]
        names = chosen if named else None
        labels_of_columns = [original[c] for c in chosen]
        n_features = len(chosen)
    else:  # dask.array
        if columns is not None:
            raise DataError("columns= selects DataFrame columns; X is a dask array (slice it instead: X[:, idx])")
        check_shape(tuple(0 if np.isnan(s) else s for s in X.shape[:1]) + tuple(X.shape[1:]), name=name, min_rows=0)
        if X.dtype.kind not in "fiub":
            raise NonNumericDataError(f"{name} is not numeric (dtype {X.dtype}); encode or drop non-numeric columns")
        n_features = int(X.shape[1])
        weighted = sample_weight is not None
        if isinstance(labels, LabelColumn):
            raise DataError(f"y={labels.name!r} names a column, but {name} is a dask array without column names; "
                            "pass the labels as an array (one per row, -1 unlabelled)")
        coded = schema is not None or labelled
        offset = None if coded else choose_shift(_head(X) if shift == "auto" and dtype == torch.float32 else None,
                                                 X.dtype, dtype, shift)
        if weighted:
            X = _with_weight_column(X, sample_weight, name)
        if labelled:
            X = _with_label_column(X, labels, name)
        if len(X.chunks[1]) > 1:
            X = X.rechunk({1: -1})  # a partition is a block of whole rows
        parts = [
            delayed(_array_block, pure=True)(p, np.float64 if weighted or labelled else np_dtype,
                                             None if offset is None else offset.numpy(), schema)
            for p in X.to_delayed()[:, 0]
        ]
        names = None
    chunk_rows = chunk_size or chunk_rows_for_budget(memory_budget, n_features, 3 * (torch.finfo(dtype).bits // 8))
    if schema is not None and schema.n_features != n_features:
        raise DataError(f"{name} has {n_features} features, but {schema.owner} is expecting {schema.n_features} "
                        "features as input.")
    source = DaskSource(parts, n_features, names, dtype, device, chunk_rows, client, name, weighted, offset,
                        missing_values == "fiml", every_column, labelled, schema, missing_values is not None)
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        source.column_labels = labels_of_columns
    source.inspect(min_rows, by)
    return source


def _with_label_column(X, codes, name: str):
    """A dask array with one class code per row appended as its last column, partitioned as X."""
    import dask.array as da

    if any(np.isnan(c) for c in X.chunks[0]):
        raise DataError(f"{name} has partitions of unknown length: call X.compute_chunk_sizes() first, so the "
                        "labels can be aligned with its rows")
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape != (X.shape[0],):
        raise DataError(f"y has {codes.shape[0]} labels but X has {X.shape[0]} rows; pass one label per row of X "
                        "(-1 for an unlabelled row)")
    y = da.from_array(codes, chunks=(X.chunks[0],))
    return da.concatenate([X.astype(np.float64), y.astype(np.float64)[:, None]], axis=1)


def _partition_values(part, columns: list[str], label_column: str | None, index: int):
    """Runs on a worker: the distinct values of some columns and the classes of the label
    column of one partition (a pandas frame, or a numpy block whose columns are indices)."""
    from .labels import learn_classes
    from .schema import observed

    where = f"partition {index}"
    if hasattr(part, "columns"):
        found = {c: observed(part[c], f"{where}: column {c!r}") for c in columns}
        classes = set() if label_column is None else learn_classes(part[label_column], f"{where}: column {label_column!r}")
        return found, classes
    block = np.asarray(part)
    return {c: observed(block[:, int(c)], f"{where}: column {c}") for c in columns}, set()


def distinct_values(X, names: list[str] | None, categorical: list[int], label_column: str | None, client
                    ) -> tuple[dict[int, set], set]:
    """The distinct values of the ``categorical`` features (by index) and the classes of
    the ``label_column`` of a dask collection (or Parquet/CSV paths), computed on the
    workers partition by partition; only the sets travel."""
    from dask import delayed

    if _paths(X):
        X, _ = _read_files(X, None if names is None else list(names) + ([label_column] if label_column else []))
    frame = hasattr(X, "columns") and hasattr(X, "dtypes")
    if label_column is not None and not frame:  # the local engine's words for an array
        raise DataError(f"y={label_column!r} names a label column, but X is a dask array, whose columns have no "
                        "names; pass y as labels, one per row (-1 where unlabelled), or X as a dask DataFrame or a "
                        "Parquet or CSV file holding that column")
    keys = [names[j] for j in categorical] if frame else [str(j) for j in categorical]
    if not categorical and label_column is None:
        return {}, set()
    if not frame and len(X.chunks[1]) > 1:
        X = X.rechunk({1: -1})
    parts = X.to_delayed() if frame else X.to_delayed()[:, 0]
    tasks = [delayed(_partition_values, pure=True)(p, keys, label_column, i) for i, p in enumerate(parts)]
    found = client.gather(client.compute(tasks))
    cats = {j: set().union(*(f[0][k] for f in found)) for j, k in zip(categorical, keys)}
    return cats, set().union(*(f[1] for f in found)) if found else set()


def plain_paths(X, columns, chunk_rows: int | None = None):
    """(X, columns) as the workers read them: a :class:`Files` as its paths and columns
    (Parquet or CSV by extension, with their defaults; other options are refused, naming
    them), and a .npy file as a dask array of its chosen columns (:func:`npy_rows`, in
    partitions of ``chunk_rows`` rows), its columns then taken."""
    from .inputs import Files

    if isinstance(X, Files):
        if X.format not in (None, "parquet", "csv", "npy") or X.delimiter is not None or not X.header:
            raise ParameterError(f"{X.path}: with engine='dask' the workers read Parquet, comma-separated CSV files "
                                 "with a header, or a .npy file; Files(format='ipc', delimiter=, header=False) apply "
                                 "to engine='local' only: pass the path, or read the files with dask.dataframe "
                                 "yourself and pass the DataFrame")
        if X.columns is not None and columns is not None and list(X.columns) != list(columns):
            raise ParameterError(f"Files(columns={list(X.columns)}) and columns={list(columns)} differ; give one of "
                                 "them")
        X, columns, fmt = X.path, columns if X.columns is None else list(X.columns), X.format
    elif _paths(X):
        fmt = None
    else:
        return X, columns
    if any("://" in os.fspath(p) for p in ([X] if isinstance(X, (str, os.PathLike)) else X)):
        return X, columns  # the workers list and read an object store's files themselves
    files, fmt = expand_paths(X, fmt)
    if fmt != "npy":
        return X, columns
    if len(files) > 1:
        raise DataError(f"{files[0]} and {len(files) - 1} more .npy files: bigem reads one .npy file at a time; "
                        "concatenate them or write Parquet")
    return npy_rows(files[0], columns, chunk_rows), None


class NpyRows:
    """A .npy file's rows for ``dask.array.from_array``: the graph carries the path, not
    the bytes, and each task maps the file on its worker and copies its own rows (the
    workers read the path, as they read Parquet files)."""

    ndim = 2

    def __init__(self, path: str, shape: tuple[int, int], dtype) -> None:
        self.path, self.shape, self.dtype = path, tuple(shape), np.dtype(dtype)

    def __getitem__(self, key) -> np.ndarray:
        return np.array(np.load(self.path, mmap_mode="r", allow_pickle=False)[key])


def npy_rows(path: str, columns, chunk_rows: int | None = None):
    """A .npy file as a dask array of its columns chosen by 0-based index (None: every
    column), in partitions of ``chunk_rows`` rows (None: about 64 MB of the file each).
    The file is checked here as a local fit checks it (a numeric 2-D array, the columns
    within it), and read by the workers."""
    import dask.array as da
    from dask.base import tokenize

    from .npy import NpySource

    checked = NpySource(path, torch.float64, torch.device("cpu"), 1, columns)
    mm = checked._mm
    rows = chunk_rows or max(1, (64 << 20) // max(1, mm.shape[1] * mm.dtype.itemsize))
    stat = os.stat(path)
    name = "bigem-npy-" + tokenize(os.path.realpath(path), stat.st_size, stat.st_mtime_ns, rows)
    X = da.from_array(NpyRows(path, mm.shape, mm.dtype), chunks=(rows, -1), name=name, lock=False,
                      meta=np.empty((0, 0), mm.dtype))
    X = X if checked.columns is None else X[:, checked.columns]
    X.bigem_path = path  # messages name the file, as a local fit's do (see open_dask_source)
    return X


def _paths(X) -> bool:
    return isinstance(X, (str, os.PathLike)) or (isinstance(X, (list, tuple)) and bool(X)
                                                  and isinstance(X[0], (str, os.PathLike)))


def describe_columns(X, columns: list[str] | None, exclude: tuple[str, ...] = ()) -> tuple[list[str] | None, list[str]]:
    """(feature names or None, coarse types) of a dask collection or Parquet/CSV paths, from its metadata."""
    from .schema import coarse_type

    if _paths(X):
        X, _ = _read_files(X, None if columns is None else [str(c) for c in columns] + list(exclude))
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        have = {str(c): dt for c, dt in X.dtypes.items()}
        names = [c for c in have if c not in exclude] if columns is None else [str(c) for c in columns]
        missing = [n for n in names if n not in have]
        if missing:
            raise DataError(f"X: column(s) {missing} not found; the data has columns {list(have)}")
        return names, [coarse_type(have[n]) for n in names]
    if columns is not None:
        raise DataError("columns= selects DataFrame columns; X is a dask array (slice it instead: X[:, idx])")
    return None, [coarse_type(X.dtype)] * int(X.shape[1])


def _weight_column(sample_weight: object, declared: list[str], columns: list[str] | None, name: str) -> str | None:
    """The weight column of a dask.dataframe, checked against its columns and ``columns``."""
    if sample_weight is None:
        return None
    if not isinstance(sample_weight, str):
        raise DataError(
            f"{name} is a dask.dataframe: give its weights as one of its columns, sample_weight='<column>' "
            "(an array of weights cannot be aligned with partitions of unknown length)"
        )
    if sample_weight not in declared:
        raise DataError(f"sample_weight={sample_weight!r}: {name} has no such column; it has {declared}")
    check_weight_not_a_feature(sample_weight, columns)
    return sample_weight


def feature_columns(X, columns, sample_weight: object, name: str = "X") -> list[str] | None:
    """The names of the features :func:`rows_with_weights` reads from a dask.dataframe, in
    its order (None for a dask array): for messages about the array it makes."""
    if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
        return None
    original = {str(c): c for c in X.columns}  # by its label, whatever its type (a frame's 20, not '20')
    return [original[c] for c in _frame_columns(list(original), columns, sample_weight, name)[0]]


def _frame_columns(declared: list[str], columns, sample_weight: object, name: str) -> tuple[list[str], str | None]:
    """(feature columns, weight column or None) of a dask.dataframe, checked."""
    weight = _weight_column(sample_weight, declared, columns, name)
    chosen = [c for c in declared if c != weight] if columns is None else [str(c) for c in columns]
    unknown = [c for c in chosen + ([weight] if weight else []) if c not in declared]
    if unknown:
        raise DataError(f"{name}: column(s) {unknown} not found; the data has columns {declared}")
    if not chosen:
        raise DataError(f"{name}: columns=[] selects nothing; name at least one numeric column")
    return chosen, weight


def _check_numeric(X, read: list[str], name: str) -> None:
    kinds = {str(c): getattr(dt, "kind", "O") for c, dt in X.dtypes.items()}
    bad = [c for c in read if kinds[c] not in "fiub"]
    if bad:
        raise NonNumericDataError(
            f"{name} has non-numeric column(s) {bad}: encode or drop these columns, or choose numeric "
            "columns with columns=[...]"
        )


class PartitionIds:
    """A Dask DataFrame's id column, partition by partition, for an output file: each
    partition's values (computed by the caller beside its outputs) as Arrow arrays of one
    type, the column's declared one (or the first partition's that has a type), so that
    every partition writes the same schema."""

    def __init__(self, X, name: str) -> None:
        if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
            raise DataError(f"id_column={name!r} selects a column by name, but X is a dask array with no column "
                            "names; pass a Dask DataFrame, or leave id_column out")
        label = {str(c): c for c in X.columns}
        if name not in label:
            raise DataError(f"X has no column {name!r} (the id_column); it has {list(label)}")
        self.name = name
        self.series = X[label[name]]
        import pyarrow as pa

        declared = pa.Schema.from_pandas(self.series._meta.to_frame(name=name), preserve_index=False).field(name).type
        self.type = None if pa.types.is_null(declared) else declared

    def values(self, part):
        """One computed partition's ids (a pandas Series) as an Arrow array of the column's type."""
        import pyarrow as pa

        from .inputs import _id_values

        values = _id_values(self.name, part)
        if self.type is None and not pa.types.is_null(values.type):
            self.type = values.type
        if self.type is not None and values.type != self.type:
            try:
                values = values.cast(self.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise DataError(f"id column {self.name!r} holds values of type {values.type} in one partition and "
                                f"{self.type} in another ({exc}); convert it first, e.g. "
                                f"X[{self.name!r}].astype(str)") from None
        return values


def rows_with_weights(X, columns: list[str] | None, sample_weight: object, schema=None,
                      name: str = "X") -> tuple[object, bool]:
    """(a dask array of X's feature columns, partitioned as X, with the weights as its last
    column when given; whether they are): for work mapped over partitions, such as scoring.
    The weights are checked on the workers, where they are read; with ``schema`` the
    workers read category columns as codes."""
    if hasattr(X, "columns") and hasattr(X, "dtypes"):  # dask.dataframe
        label = {str(c): c for c in X.columns}  # names are compared as strings, selected as given
        chosen, weight = _frame_columns(list(label), columns, sample_weight, name)
        read = chosen + ([weight] if weight else [])
        categorical = set() if schema is None else {chosen[j] for j in schema.columns_of("category")}
        _check_numeric(X, [c for c in read if c not in categorical], name)
        frame = X[[label[c] for c in read]]
        # pandas' nullable columns (Int64, Float64, boolean) as float64, a missing value NaN
        # (their blocks would hold pd.NA, which no float reads)
        nullable = {label[c]: "float64" for c in read
                    if c not in categorical and hasattr(X.dtypes[label[c]], "numpy_dtype")}
        if nullable:
            frame = frame.astype(nullable)
        if categorical:
            import pandas as pd

            meta = pd.DataFrame({c: pd.Series([], dtype=np.float64) for c in read})
            frame = frame.map_partitions(_encoded_partition, schema, read, meta=meta)
        # the partitions' lengths from the array itself: Dask 2026.8 fuses small Parquet files
        # into fewer tasks once columns are projected, and to_dask_array(lengths=True) then
        # counted the frame's partitions, not the array's ("lengths does not match")
        return frame.to_dask_array().compute_chunk_sizes(), weight is not None
    if columns is not None:
        raise DataError("columns= selects DataFrame columns; X is a dask array (slice it instead: X[:, idx])")
    if schema is not None and schema.encodes():
        X = X.map_blocks(_array_block, np.float64, None, schema, dtype=np.float64)
    if sample_weight is None:
        return X, False
    return _with_weight_column(X, sample_weight, name), True


def _encoded_partition(part, schema, read: list[str], partition_info=None):
    """Runs on a worker: a partition's features read by ``schema`` (categories as codes),
    the weight column after them as numbers, as a float64 frame (Dask passes
    ``partition_info``: messages name the partition, as the fit's do)."""
    import pandas as pd

    D = schema.n_features
    index = None if partition_info is None else partition_info.get("number")
    where = "X (one partition; rows counted from its start)" if index is None else \
        f"X, partition {index} (rows counted from its start)"
    x = schema.encode_frame(part[read[:D]], where)
    rest = [part[[c]].to_numpy(dtype=np.float64, na_value=np.nan) for c in read[D:]]
    return pd.DataFrame(np.concatenate([x, *rest], axis=1), columns=read, index=part.index)


def _with_weight_column(X, sample_weight: object, name: str):
    """A dask array with one weight per row appended as its last column, partitioned as X."""
    import dask.array as da

    if isinstance(sample_weight, str):
        raise DataError(f"sample_weight={sample_weight!r} names a column, but {name} is a dask array without "
                        "column names; pass the weights as an array (one per row)")
    if any(np.isnan(c) for c in X.chunks[0]):
        raise DataError(f"{name} has partitions of unknown length: call X.compute_chunk_sizes() first, so the "
                        "weights can be aligned with its rows")
    if is_dask_collection(sample_weight):
        w = sample_weight
        if w.ndim != 1 or w.shape[0] != X.shape[0]:
            raise DataError(f"sample_weight.shape == {tuple(w.shape)}, expected ({X.shape[0]},)! Pass one weight "
                            "per row of X.")
        w = w.rechunk((X.chunks[0],))
    else:
        from .inputs import check_sample_weight

        w = check_sample_weight(sample_weight, int(X.shape[0]), torch.float64, torch.device("cpu")).numpy()
        w = da.from_array(w, chunks=(X.chunks[0],))
    return da.concatenate([X.astype(np.float64), w.astype(np.float64)[:, None]], axis=1)


def _same_columns(files: list[str], columns_of, used: list[str] | None) -> None:
    """Refuse files that the local engine refuses, by its words, naming the file, before
    any worker reads it (a worker's read failed with pandas' KeyError, naming no file):
    with ``used`` None (the features are the first file's columns) a file with another
    set of columns; else one that lacks a column in ``used``; and a used column whose
    kind differs from the first file's. ``columns_of`` gives a file's {name: kind} from
    its metadata or header (kind None: not known)."""
    if used is not None:
        twice = sorted({c for c in used if used.count(c) > 1})
        if twice:
            raise DataError(f"columns lists {twice} more than once; name each feature once")
    first = columns_of(files[0])
    for path in files[1:] if used is None else files:
        have = first if path == files[0] else columns_of(path)
        if used is None:
            missing, extra = [c for c in first if c not in have], [c for c in have if c not in first]
            if missing or extra:
                raise files_disagree(files[0], list(first), path, list(have), missing, extra)
        else:
            missing = [c for c in used if c not in have]
            if missing:
                raise DataError(f"{path}: no column(s) {missing}; the file has {list(have)}. Check the spelling (names "
                                "are case-sensitive) or the columns= you passed")
        kinds = [c for c in (first if used is None else used)
                 if c in first and None not in (first[c], have[c]) and first[c] != have[c]]
        if kinds:
            c = kinds[0]
            raise DataError(f"{path}: column {c!r} holds {have[c]} values, where {files[0]} holds {first[c]}: give "
                            "every file the same column types")


class FilesName(str):
    """The name of a collection read from local files (its path, or the first and a
    count) in messages, with where each file's rows lie, so that a bad value's row of the
    data set names its file, as the local engine does: by the rows of each file (a
    Parquet footer says them; Dask may fuse small files' partitions) or by the partitions
    of each (a CSV file's blocks, which never span two files)."""

    rows: tuple[tuple[str, int], ...] = ()  # (path, rows), in the order Dask reads them
    parts: tuple[tuple[str, int], ...] = ()  # (path, partitions), likewise

    @classmethod
    def of(cls, label: str, rows=(), parts=()) -> FilesName:
        name = cls(label)
        name.rows, name.parts = tuple(rows), tuple(parts)
        return name

    def file_of(self, row: int, partition: int, starts: list[int]) -> tuple[str, int] | None:
        """(path, the row within it) of ``row`` of the data set, in ``partition`` (whose
        first rows are ``starts``); None where not known, or where one file is the data
        set (its name is the collection's, its rows the data set's)."""
        if len(self.rows) + len(self.parts) <= 1:
            return None
        for path, n in self.rows:
            if row < n:
                return path, row
            row -= n
        first = 0
        if sum(n for _, n in self.parts) != len(starts):  # another partitioning than the one counted
            return None
        for path, n in self.parts:
            if partition < first + n:
                return path, row - starts[first]
            first += n
        return None


def _csv_blocks(path: str, blocksize: int) -> int:
    """The partitions Dask's read_csv cuts an uncompressed file into (read_bytes' blocks:
    whole ``blocksize``s, the spare bytes spread among them; none for an empty file). A
    count that disagrees with the collection's is not used (see FilesName.file_of)."""
    size = os.path.getsize(path)
    return 0 if size == 0 else max(1, size // blocksize)


def _parquet_rows(path: str) -> int:
    import pyarrow.parquet as pq

    return pq.read_metadata(path).num_rows


def _parquet_columns(path: str) -> dict[str, str | None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    def kind(t) -> str | None:
        t = t.value_type if pa.types.is_dictionary(t) else t
        if pa.types.is_null(t):  # a column with no value in this file: any kind
            return None
        if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_decimal(t):
            return "numeric"
        return "text" if pa.types.is_string(t) or pa.types.is_large_string(t) else str(t)

    try:
        schema = pq.read_schema(path)
    except Exception as exc:  # pyarrow's errors for a damaged or non-Parquet file
        raise DataError(f"{path}: cannot be read as Parquet ({exc})") from None
    return {name: kind(schema.field(name).type) for name in schema.names}


def _csv_columns(path: str, delimiter: str) -> dict[str, None]:
    """A CSV file's header (compressed files decompressed as pyarrow reads them)."""
    import csv

    import pyarrow as pa

    with pa.input_stream(path, compression="detect") as stream:
        head = stream.read(1 << 20)  # the header line, within its first megabyte
    if not head:
        raise DataError(f"{path}: cannot be read (Empty CSV file); is it complete and in the format its name says?")
    line = head.split(b"\n", 1)[0].decode("utf-8-sig", errors="replace").rstrip("\r")
    return dict.fromkeys(next(csv.reader([line], delimiter=delimiter), []))


_CSV_BLOCK = 64_000_000  # bytes of a CSV file per partition (Dask's "64MB")


def _read_files(paths, used: list[str] | None = None) -> tuple[object, str]:
    """Parquet/CSV file(s), folder(s) or glob(s) as a lazy dask.dataframe; the workers read
    the bytes. Local paths name the files the local engine would read (a folder's data
    files, hidden ones and writers' markers skipped, and one format: a folder of CSV
    files is read as CSV, .tsv with tabs, compressed CSV whole), checked as it checks
    them (``used``: the columns the fit reads, None for every column of the first
    file), so both engines read the same rows; remote ones go to Dask as given."""
    import dask.dataframe as dd

    from .paths import expand_paths
    from .tables import CsvOptions

    items = [os.fspath(p) for p in (paths if isinstance(paths, (list, tuple)) else [paths])]
    label = items[0] if len(items) == 1 else f"{items[0]} (+{len(items) - 1} more)"
    if not any("://" in p for p in items):
        files, fmt = expand_paths(items)
        if fmt == "parquet":
            _same_columns(files, _parquet_columns, used)
            return dd.read_parquet(files), FilesName.of(label, rows=[(f, _parquet_rows(f)) for f in files])
        if fmt == "csv":
            delimiters = {CsvOptions().delimiter_of(f) for f in files}
            if len(delimiters) > 1:
                raise DataError(f"{label}: mixes .tsv and comma-separated files; give files of one kind")
            sep = delimiters.pop()
            headers = {f: _csv_columns(f, sep) for f in files}
            _same_columns(files, headers.__getitem__, used)
            compressed = {f.lower().endswith((".gz", ".bz2", ".zst")) for f in files}
            order = list(headers[files[0]]) if used is None else list(used)
            if compressed == {False} and all(list(h) == list(headers[files[0]]) for h in headers.values()):
                return (dd.read_csv(files, sep=sep, blocksize=_CSV_BLOCK),
                        FilesName.of(label, parts=[(f, _csv_blocks(f, _CSV_BLOCK)) for f in files]))
            # one read per file where one read of all cannot take them: compression inferred
            # from the first file's name, or columns in another order (read by name here)
            frames = [dd.read_csv(f, sep=sep, blocksize=None if f.lower().endswith((".gz", ".bz2", ".zst"))
                                  else _CSV_BLOCK, compression="infer")[order] for f in files]
            return ((frames[0] if len(frames) == 1 else dd.concat(frames)),
                    FilesName.of(label, parts=[(f, frame.npartitions) for f, frame in zip(files, frames)]))
        kind = {"ipc": "Arrow (.arrow, .feather, .ipc)", "npy": ".npy"}.get(fmt, fmt)
        raise DataError(f"{label}: {kind} files are read by the local engine only; with engine='dask' bigem reads "
                        "Parquet and CSV files (convert them, or fit with engine='local')")
    for p in items:
        if not glob.glob(p) and "://" not in p:
            raise DataError(f"{p}: no such file or folder (nothing matches this path or glob); check the path")
    suffixes = {os.path.splitext(p.rstrip("/*"))[1].lower() for p in items}
    if suffixes <= {".csv"}:
        return dd.read_csv(items, blocksize=_CSV_BLOCK), label
    if suffixes <= {".parquet", ".pq", ""}:
        return dd.read_parquet(items), label
    raise DataError(
        f"{label}: unsupported file type {sorted(suffixes)}; with engine='dask' bigem reads Parquet (.parquet) "
        "or CSV (.csv) files, or a folder of Parquet files"
    )
