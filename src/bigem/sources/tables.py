"""Parquet, Arrow IPC (Feather v2) and CSV files, streamed batch by batch with pyarrow.

One reader per format knows three things: the file's schema, its row count, and how to
yield record batches of selected columns. Everything else (column checks, re-chunking
into fixed-size blocks, nulls, take) is shared. Chunks have exactly ``chunk_rows`` rows
whatever the files' row groups or batches, so a fit's arithmetic, and hence its result,
does not depend on how the data was split into files.

Files are opened one at a time while streaming (a data set may have thousands), read
with plain reads rather than memory maps (mapped pages count as resident memory), and
every pyarrow error is re-raised as a DataError that names the file.
"""

from __future__ import annotations

import re

import contextlib
import copy
import os
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.optional import require
from .._core.types import READ_AHEAD, Chunk
from . import identity
from .arrays import PROBE_ROWS, choose_shift
from .buffers import BufferPool
from .parts import CutByRows
from .remote import is_url, opened
from .schema import BOOLEAN_TEXT, text_as, text_categories
from .validate import NonNumericDataError, check_weight_not_a_feature, files_disagree, missing_fix


def import_pyarrow():
    return require("pyarrow", "reading Parquet, CSV or Arrow files")


@contextmanager
def file_errors(path: str):
    """Re-raise pyarrow's and the OS's errors as DataErrors that name the file."""
    pa = import_pyarrow()
    try:
        yield
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; check the path") from None
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc}); bigem reads text files as UTF-8: re-encode it, for "
                        f"instance with iconv -f latin1 -t utf-8") from None
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise DataError(f"{path}: cannot be read ({_first_line(exc)}); is it complete and in the format its name says?") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


@dataclass
class CsvOptions:
    """How to parse CSV files: the delimiter (None: a tab for .tsv files, else a comma),
    and whether the first line names the columns (if not, columns are called f0, f1, ...)."""

    delimiter: str | None = None
    header: bool = True

    def delimiter_of(self, path: str) -> str:
        if self.delimiter is not None:
            return self.delimiter
        name = path.lower()
        for suffix in (".gz", ".bz2", ".zst"):
            name = name[: -len(suffix)] if name.endswith(suffix) else name
        return "\t" if name.endswith(".tsv") else ","


def _usable_cores() -> int:
    """The cores this process may run on (its affinity, where the OS reports it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# ---------------------------------------------------------------------------- readers
# A Parquet row group stored in more than this many bytes (and more than a batch read
# from it holds) is read page by page through a buffer, not pre-buffered whole.
_STREAM_ABOVE = 64 << 20
_STREAM_BUFFER = 1 << 20
_TAKE_BATCH_ROWS = 1 << 16  # rows a sample's read of such a group holds at once


class _ParquetReader:
    def __init__(self, path: str) -> None:
        self.path = path
        with self._open() as f:
            self.schema = f.schema_arrow
            meta = f.metadata
            self.group_rows = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.n_rows = sum(self.group_rows)

    @contextmanager
    def _open(self, streamed: bool = False):
        """The file as a pq.ParquetFile, its errors naming the file: pre-buffering whatever
        row groups a read asks for, or (``streamed``) reading each column chunk through a
        buffer of ``_STREAM_BUFFER`` bytes, page by page."""
        import pyarrow.parquet as pq

        options = dict(pre_buffer=False, buffer_size=_STREAM_BUFFER) if streamed else dict(pre_buffer=True)
        with file_errors(self.path), opened(self.path) as src, pq.ParquetFile(src, **options) as f:
            yield f

    def _group_bytes(self, f, group: int, columns: list[str]) -> int:
        """The stored (compressed) bytes of ``columns`` in row group ``group``."""
        meta = f.metadata.row_group(group)

        def of(path: str) -> bool:  # a leaf of a wanted column (names may hold dots: 'x.1', 'doc.ids')
            return any(path == c or path.startswith(c + ".") for c in columns)

        return sum(meta.column(j).total_compressed_size for j in range(meta.num_columns)
                   if of(meta.column(j).path_in_schema))

    def batches(self, columns: list[str], batch_rows: int, threads: bool = True, groups: range | None = None) -> Iterator:
        """Record batches of at most ``batch_rows`` rows, one row group at a time: batches
        that span row groups make pyarrow concatenate them, a copy that cost 1.3-2.5x a
        plain read pass (1.4M-row batches of 1M-row groups, measured).

        Each row group is pre-buffered on its own: its column chunks arrive in a few
        coalesced reads (what object stores need), and no more than the group is held.
        pyarrow's default pre-buffers every row group of the file at once, so memory
        grew with the file (peak RSS 1.78 GB over a 1.46 GB file, against 0.40 GB one
        group at a time), and without pre-buffering the reads are many and small (more
        system time: 0.8-0.9 s against 0.7 s over 4e7 page-cached rows, measured).
        ``threads``: decode columns on pyarrow's thread pool (see TableSource);
        ``groups``: the row groups to read (default: all).

        A row group much larger than the batches read from it (a writer's one group of a
        whole file: Spark's, DuckDB's and pandas' often are) is streamed page by page
        instead, or pre-buffering held all of it whatever the budget (peak RSS 2.0 GB
        over an 859 MB file of one group, at a 32 MB budget; streamed, a 261 MB group
        read in 65,536-row batches peaked at 124 MB against 366 MB)."""
        batch_rows = min(batch_rows, max(self.group_rows, default=batch_rows)) or batch_rows
        with self._open() as f, contextlib.ExitStack() as stack:
            streamed = None
            for group in range(len(self.group_rows)) if groups is None else groups:
                reader = f
                batch_bytes = batch_rows * max(len(columns), 1) * 8
                if self._group_bytes(f, group, columns) > max(_STREAM_ABOVE, batch_bytes):
                    streamed = streamed or stack.enter_context(self._open(streamed=True))
                    reader = streamed
                yield from reader.iter_batches(batch_size=batch_rows, row_groups=[group], columns=columns,
                                               use_threads=threads)

    def take(self, columns: list[str], local: np.ndarray):
        """Rows at sorted file-local indices: reads only the row groups that hold them (a
        large group in batches, taking their rows batch by batch: read whole, a sample
        from a file of one 261 MB group held it all, 964 MB of peak RSS)."""
        import pyarrow as pa

        parts, start = [], 0
        with self._open() as f:
            for g, n in enumerate(self.group_rows):
                lo, hi = np.searchsorted(local, [start, start + n])
                if hi > lo and self._group_bytes(f, g, columns) > _STREAM_ABOVE:
                    at = start
                    for batch in self.batches(columns, _TAKE_BATCH_ROWS, groups=range(g, g + 1)):
                        a, b = np.searchsorted(local, [at, at + batch.num_rows])
                        if b > a:
                            parts.append(batch.take(pa.array(local[a:b] - at)))
                        at += batch.num_rows
                elif hi > lo:
                    parts.append(f.read_row_group(g, columns=columns).take(pa.array(local[lo:hi] - start)))
                start += n
        return parts


class _IpcReader:
    def __init__(self, path: str) -> None:
        pa = import_pyarrow()
        self.path = path
        with file_errors(path):
            # Counting through a memory map touches only the batches' headers, not their data.
            with opened(path) as src, (pa.PythonFile(src, mode="r") if is_url(path) else pa.memory_map(src)) as source:
                self.stream = not _is_ipc_file(source)
                reader = pa.ipc.open_stream(source) if self.stream else pa.ipc.open_file(source)
                self.schema = reader.schema
                if self.stream:
                    self.n_rows = sum(b.num_rows for b in reader)
                else:
                    self.n_rows = sum(reader.get_batch(i).num_rows for i in range(reader.num_record_batches))

    def batches(self, columns: list[str], batch_rows: int) -> Iterator:
        pa = import_pyarrow()
        with file_errors(self.path), opened(self.path) as src, _arrow_input(pa, self.path, src) as source:
            if self.stream:
                for batch in pa.ipc.open_stream(source):
                    yield batch.select(columns)
            else:
                reader = pa.ipc.open_file(source)
                for i in range(reader.num_record_batches):
                    yield reader.get_batch(i).select(columns)


def _arrow_input(pa, path: str, src):
    """pyarrow's input over what :func:`opened` gave: plain reads of a local file (a
    memory map's pages would count as resident memory), a wrapper of a URL's file object."""
    return pa.PythonFile(src, mode="r") if is_url(path) else pa.OSFile(src)


def _is_ipc_file(source) -> bool:
    head = source.read(6)
    source.seek(0)
    return head == b"ARROW1"


# A CSV field read as a missing value: pandas.read_csv's defaults (pyarrow's, with
# 'None' and '<NA>'), so a file reads as pandas (and the Dask engine, through it) reads it
CSV_NULLS = ["", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
             "NA", "NULL", "NaN", "None", "n/a", "nan", "null"]


class _CsvReader:
    def __init__(self, path: str, options: CsvOptions) -> None:
        import pyarrow.csv as pcsv

        self.path, self.options = path, options
        with file_errors(path), opened(path, compression="infer") as src:
            try:
                reader = pcsv.open_csv(src, read_options=self._read_options(), parse_options=self._parse_options(),
                                       convert_options=pcsv.ConvertOptions(null_values=CSV_NULLS))
            except Exception as exc:
                raise self._explain(exc, []) from None
            self.schema = reader.schema
        self.n_rows: int | None = None  # CSV has no row count: counted by count_rows()

    def _read_options(self, block_bytes: int | None = None):
        import pyarrow.csv as pcsv

        kw = {} if block_bytes is None else {"block_size": block_bytes}
        return pcsv.ReadOptions(autogenerate_column_names=not self.options.header, **kw)

    def _parse_options(self):
        import pyarrow.csv as pcsv

        return pcsv.ParseOptions(delimiter=self.options.delimiter_of(self.path))

    def _convert_options(self, columns: list[str], numeric: list[str], text: list[str]):
        import pyarrow as pa
        import pyarrow.csv as pcsv

        types = {c: pa.bool_() if self._reads_booleans(c) else pa.float64() for c in numeric}
        return pcsv.ConvertOptions(include_columns=columns, column_types={**types, **{c: pa.string() for c in text}},
                                   strings_can_be_null=True, null_values=CSV_NULLS)

    def _reads_booleans(self, name: str) -> bool:
        """Whether a numeric column is read as booleans: its first rows are true/false (as
        pandas writes a bool column), which float64 would refuse."""
        import pyarrow as pa

        return name in self.schema.names and pa.types.is_boolean(self.schema.field(name).type)

    def batches(self, columns: list[str], batch_rows: int, numeric: list[str] | None = None,
                text: list[str] = ()) -> Iterator:
        """Record batches of ``columns``: the ``numeric`` ones (default: all) as float64 (or
        booleans, see :meth:`_reads_booleans`), the ``text`` ones as strings, the others
        typed as pyarrow guesses from the file's first block."""
        import pyarrow.csv as pcsv

        numeric = columns if numeric is None else numeric
        with file_errors(self.path), opened(self.path, compression="infer") as src:
            try:
                reader = pcsv.open_csv(
                    src,
                    read_options=self._read_options(),
                    parse_options=self._parse_options(),
                    convert_options=self._convert_options(columns, numeric, list(text)),
                )
                yield from reader
            except Exception as exc:
                raise self._explain(exc, numeric) from None

    def count_rows(self, column: str) -> int:
        """The file's rows, read through one column as text (any column has rows as text;
        a category column, say, is no number)."""
        self.n_rows = sum(b.num_rows for b in self.batches([column], 0, numeric=[], text=[column]))
        return self.n_rows

    def _explain(self, exc: Exception, numeric: list[str]) -> Exception:
        """A conversion error names the column and value, but not the row: find it."""
        message = _first_line(exc)
        if "conversion error" not in message:
            if "Expected" in message and "columns" in message:
                ragged = self._first_ragged_row()
                where = "" if ragged is None else (
                    f": data row {ragged[0]} (0-based, header not counted; line {ragged[1]} of the file) has "
                    f"{ragged[2]} field{'s' if ragged[2] != 1 else ''} where the "
                    f"{'header' if self.options.header else 'first row'} has {ragged[3]}")
                return DataError(f"{self.path}: a row has the wrong number of fields{where} ({message}); "
                                 "every row needs one value per column")
            return exc
        for name in numeric:
            booleans = self._reads_booleans(name)
            row = self._first_non_number(name, booleans)
            if row is not None:
                line, value = row
                what = (f"holds true/false values, and {value!r} at data row {line} is none" if booleans else
                        f"has a non-numeric value {value!r} at data row {line}")
                # one column whose name holds another delimiter: the file is not comma-separated
                other = next((d for d in ";\t|" if d in name), None) if len(self.schema.names) == 1 else None
                other = None if other == self.options.delimiter_of(self.path) else other
                hint = (f"; its one column's name holds {other!r}: if that separates the columns, read the file "
                        f"with delimiter={other!r} (bigem.Files)" if other else "")
                if not booleans and re.fullmatch(r"\s*[-+]?\d*,\d+\s*", value):
                    hint += ("; it looks like a decimal comma: bigem reads numbers with a decimal point, so write the "
                             "file with one (pandas: to_csv(decimal='.'))")
                return NonNumericDataError(
                    f"{self.path}: column {name!r} {what} (0-based, header not counted){hint}; fix or drop it, or "
                    "leave the column out with columns="
                )
        return DataError(f"{self.path}: {message}")

    def _first_ragged_row(self) -> tuple[int, int, int, int] | None:
        """(data row, line, its fields, the fields of the first row) of the first row whose
        width differs from the first row's (the header's), found by Python's csv module
        (pyarrow's error names no row; blank lines are skipped, as pyarrow skips them)."""
        import csv
        import io

        import pyarrow as pa

        with opened(self.path, compression="infer") as src:
            raw = pa.input_stream(src, compression="detect") if isinstance(src, str) else src
            with io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="") as text:
                rows = csv.reader(text, delimiter=self.options.delimiter_of(self.path))
                width, row = None, -1 if self.options.header else 0
                for fields in rows:
                    if not fields:
                        continue
                    if width is None:
                        width = len(fields)
                    elif len(fields) != width:
                        return row, rows.line_num, len(fields), width
                    row += 1
        return None

    def _first_non_number(self, name: str, booleans: bool = False) -> tuple[int, str] | None:
        """(data row, value) of the column's first value that is no number (``booleans``:
        no true/false value, as pyarrow reads them), or None."""
        import pyarrow.csv as pcsv

        with opened(self.path, compression="infer") as src:
            reader = pcsv.open_csv(
                src,
                read_options=self._read_options(),
                parse_options=self._parse_options(),
                convert_options=self._convert_options([name], [], [name]),  # pyarrow's nulls (NA, ...) as None
            )
            start = 0
            for batch in reader:
                for i, v in enumerate(batch.column(0).to_pylist()):
                    if v is None or v == "":
                        continue
                    if booleans:
                        if v not in BOOLEAN_TEXT:
                            return start + i, v
                        continue
                    try:
                        float(v)
                    except ValueError:
                        return start + i, v
                start += batch.num_rows
        return None


# ---------------------------------------------------------------------------- the source
_NUMERIC_HINT = "encode or drop them, or choose numeric columns with columns=[...]"


class TableSource(CutByRows):
    """Rows of one or more Parquet, Arrow IPC or CSV files (in the order given).

    ``columns`` are the features (all columns but the weight column when None: then
    every one must be numeric); ``keep`` are extra columns carried through to
    ``Chunk.extra`` untouched (an id column for prediction output). Sample weights come
    from ``weight`` (in memory, one per row) or are read from ``weight_column`` with the
    features, checked as they stream (non-negative, finite; not all zero, found at the
    end of a pass). Integer, boolean and decimal columns are read as floats; nulls are
    refused with their count and first row.
    """

    decodes = True  # decoding a batch costs about what the E-step on it does: the engine overlaps them
    encodes_categories = True  # category columns (sources.schema) become codes as they are read
    shift: Tensor | None = None  # subtracted from every row in float64 before the cast

    def set_shift(self, shift) -> None:
        """Choose the shift (see ``arrays.choose_shift``) from the first rows, read in float64."""
        pa = import_pyarrow()
        stored = np.float32
        for reader in self._readers:
            for name in self.feature_names:
                t = reader.schema.field(name).type
                wide = pa.types.is_float64(t) or pa.types.is_decimal(t) or pa.types.is_string(t) or (
                    pa.types.is_integer(t) and t.bit_width > 16)
                stored = np.float64 if wide else stored
        self.shift = None
        first = None
        if isinstance(shift, str) and stored == np.float64 and self.dtype == torch.float32:
            first = self._take(torch.arange(min(self.n_rows, PROBE_ROWS)), np.float64).T
        self.shift = choose_shift(first, stored, self.dtype, shift)

    def read_in(self, rows: int) -> None:
        self.chunk_rows = max(1, int(rows))

    def fingerprint(self) -> dict:
        weights = None if self.weight is None else identity.digest(self.weight)
        return {"files": identity.files(self.files), "columns": self.feature_names, "weight_column": self.weight_column,
                "weights": weights, **({"label_column": self.label_column} if self.label_column else {})}

    def __init__(
        self,
        files: list[str],
        fmt: str,
        *,
        dtype: torch.dtype,
        device: torch.device,
        chunk_rows: int,
        columns: list[str] | None = None,
        keep: list[str] | None = None,
        csv: CsvOptions | None = None,
        weight: Tensor | None = None,
        weight_column: str | None = None,
        gaps: bool = False,
        schema=None,
        labels=None,
        offer_fiml: bool = True,
    ) -> None:
        import_pyarrow()
        self._unchanged = identity.Unchanged(files)  # stamped before the first read (each pass checks them)
        self.gaps = gaps  # a null feature value is a missing value (NaN in the rows), not an error
        self.offer_fiml = offer_fiml  # else a null's error names missing_values='fiml' only where it exists
        self.files, self.format = list(files), fmt
        self.dtype, self.device = dtype, device
        self.chunk_rows = max(1, int(chunk_rows))
        self._buffers = BufferPool.for_device(READ_AHEAD + 2, device)  # the chunks in flight, and one filling
        # Parquet decodes on pyarrow's thread pool, except where the E-step needs every
        # core but the decoder's: on 2 cores computing on the CPU, pool threads beside
        # the compute cost an exact iteration over 4e7 rows 13% (5.5-6.3 s against
        # 4.8-5.0 s, alternating runs, measured). With more cores one decoding thread
        # would bound the pass, so the pool decodes (not measured here: this machine has
        # 2); with a GPU computing, the cores are the decoder's.
        self._decode_threads = device.type != "cpu" or _usable_cores() > 2
        open_reader: Callable[[str], object] = {
            "parquet": _ParquetReader,
            "ipc": _IpcReader,
            "csv": lambda p: _CsvReader(p, csv or CsvOptions()),
        }[fmt]
        self._readers = [open_reader(f) for f in self.files]
        first = self._readers[0]
        with file_errors(self.files[0]):  # pyarrow decodes a CSV header's names here
            names = list(first.schema.names)
        self.weight, self.weight_column = weight, weight_column
        # semi-supervised fitting: the column of class labels (sources.labels.LabelColumn), read with the rows
        self.labels = labels
        self.label_column = None if labels is None else labels.name
        self._label_columns = [] if labels is None else [labels.name]
        self.keep = list(keep or [])
        self.feature_names = self._choose_columns(names, columns)
        self._inferred = columns is None  # the features are the first file's columns
        self._weight_columns = [] if weight_column is None else [weight_column]
        if self.label_column is not None and self.label_column in self.feature_names + self._weight_columns:
            raise DataError(f"y={self.label_column!r} is also a feature or the sample_weight column; the labels are a "
                            "column of their own: leave it out of columns=")
        for reader in self._readers:
            self._check_columns(reader, self.feature_names + self.keep + self._weight_columns + self._label_columns)
        self.schema = schema  # how non-numeric feature columns are read (sources.schema), or None
        if schema is not None and schema.n_features != len(self.feature_names):
            raise DataError(f"{self.files[0]}: {len(self.feature_names)} feature columns, but {schema.owner} is "
                            f"expecting {schema.n_features}; pick the model's columns with columns=")
        self._categorical = set() if schema is None else {self.feature_names[j] for j in schema.columns_of("category")}
        self._check_numeric()
        if fmt == "csv":
            for reader in self._readers:
                reader.count_rows(self.feature_names[0])
        self.file_rows = [int(r.n_rows) for r in self._readers]
        self.n_rows = sum(self.file_rows)
        self.first_row = 0  # a part of the data set starts here (see part)
        self.whole = True  # False for a part: the all-zero weights check is the whole's
        self.n_features = len(self.feature_names)
        if self.n_rows == 0:
            where = self.files[0] if len(self.files) == 1 else f"{len(self.files)} files ({self.files[0]}, ...)"
            raise DataError(f"{where}: no rows; the data set is empty")

    @property
    def id_candidates(self) -> list[tuple[int, str]]:
        """Features that could be row identifiers: integer columns (in every file), when
        the features were not named (see :mod:`.identifiers`)."""
        if not self._inferred:
            return []
        pa = import_pyarrow()
        return [(j, name) for j, name in enumerate(self.feature_names)
                if all(pa.types.is_integer(r.schema.field(name).type) for r in self._readers)]

    # ------------------------------------------------------------ checks
    def _choose_columns(self, names: list[str], columns: list[str] | None) -> list[str]:
        if columns is None:  # every column but the weights, the labels and the ids carried beside
            return [n for n in names if n not in (self.weight_column, self.label_column, *self.keep)]
        columns = [str(c) for c in columns]
        check_weight_not_a_feature(self.weight_column, columns)
        if not columns:
            raise DataError("columns=[] selects no features; name at least one column")
        duplicated = sorted({c for c in columns if columns.count(c) > 1})
        if duplicated:
            raise DataError(f"columns lists {duplicated} more than once; name each feature once")
        return columns

    def _check_columns(self, reader, wanted: list[str]) -> None:
        names = list(reader.schema.names)
        missing = [c for c in wanted if c not in names]
        inferred = [c for c in missing if self._inferred and c in self.feature_names]
        first = self._readers[0]
        # a later file's extra column would be silently left out of the features
        extra = [c for c in names if c not in first.schema.names] if self._inferred else []
        if inferred or extra:
            raise files_disagree(first.path, list(first.schema.names), reader.path, names, inferred, extra)
        if missing:
            raise DataError(
                f"{reader.path}: no column(s) {missing}; the file has {names}. "
                f"Check the spelling (names are case-sensitive) or the {self._asked_by(missing)} you passed"
            )
        check_unique(reader.path, names, wanted)

    def _asked_by(self, missing: list[str]) -> str:
        """The arguments that named the ``missing`` columns, for a message (``columns=``
        for the features; an id, weight or label column by its own argument)."""
        roles = [(self.feature_names, "columns="), (self.keep, "id_column="), (self._weight_columns, "sample_weight="),
                 (self._label_columns, "y=")]
        found = [arg for names, arg in roles if any(c in names for c in missing)]
        return " and the ".join(found) or "columns="

    def _check_numeric(self) -> None:
        pa = import_pyarrow()
        for reader in self._readers:
            bad = []
            for name in self.feature_names + self._weight_columns:
                if name in self._categorical:
                    continue  # read as categories: any type
                t = reader.schema.field(name).type
                ok = pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                ok = ok or pa.types.is_decimal(t) or pa.types.is_null(t)
                # CSV types are guesses from the first block: a stray word makes a column
                # "string"; reading it as float then finds the row (see _CsvReader._explain)
                ok = ok or isinstance(reader, _CsvReader) and pa.types.is_string(t)
                if not ok and name == self.weight_column:
                    raise NonNumericDataError(
                        f"{reader.path}: sample_weight column {name!r} is not numeric ({t}); "
                        "weights must be numbers, one per row"
                    )
                if not ok:
                    bad.append(f"{name} ({t})")
            if bad:
                raise NonNumericDataError(f"{reader.path}: non-numeric column(s) {bad}; {_NUMERIC_HINT}")

    # ------------------------------------------------------------ streaming
    def _np_dtype(self):
        return np.float32 if self.dtype == torch.float32 else np.float64

    def _batches(self, wanted: list[str] | None = None) -> Iterator[tuple[object, int, int]]:
        """(record batch, index of the file, first row of the batch in the data set) of the
        ``wanted`` columns (default: features, kept columns, the weight and label columns),
        over this source's rows: a part reads only the Parquet row groups (the CSV and
        Arrow files) that hold its rows, and skips the rest of the batches that straddle
        its ends."""
        self._unchanged.check()
        numeric = [n for n in self.feature_names if n not in self._categorical] + self._weight_columns
        if wanted is None:  # each once: a kept id column may be a feature too, and a batch names its columns once
            wanted = list(dict.fromkeys(self.feature_names + self._weight_columns + self._label_columns + self.keep))

        def batches(i: int, reader, groups: range | None):
            if isinstance(reader, _CsvReader):  # category columns as text (see _fill)
                return reader.batches(wanted, self.chunk_rows, numeric=[c for c in numeric if c in wanted],
                                      text=[c for c in wanted if c in self._categorical])
            if isinstance(reader, _ParquetReader):
                part = {} if groups is None else {"groups": groups}
                return reader.batches(wanted, self.chunk_rows, threads=self._decode_threads, **part)
            return reader.batches(wanted, self.chunk_rows)

        yield from row_window(self._readers, self.file_rows, self.first_row, self.first_row + self.n_rows, batches)

    def _check_nulls(self, batch, file_index: int, first_row: int) -> None:
        checked = [n for n in (self._weight_columns if self.gaps else self.feature_names + self._weight_columns)
                   if n in batch.schema.names]
        if not any(batch.column(name).null_count for name in checked):
            return
        firsts = {
            n: int(np.argmax(batch.column(n).is_null().to_numpy(zero_copy_only=False)))
            for n in checked
            if batch.column(n).null_count
        }
        name = min(firsts, key=lambda n: (firsts[n], checked.index(n)))
        row = first_row + firsts[name]
        total = self._count_all_nulls()
        path = self.files[file_index]
        fix = ("a row's weight cannot be missing: drop the row or give it a weight" if name in self._weight_columns
               else f"Drop or impute them first{missing_fix(self.offer_fiml)}")
        several = len(self.files) > 1
        where = "in the data set" if several else "in the file"
        at = f"row {row} of the data set (row {row - sum(self.file_rows[:file_index])} of this file)" if several else (
            f"row {row}")
        raise DataError(
            f"{path}: {sum(total.values())} null (missing) value(s) {where}, in column(s) {sorted(total)}; "
            f"the first in column {name!r} at {at}. {fix}"
        )

    def _count_all_nulls(self) -> dict[str, int]:
        """Null counts per refused column over every file (error path only: one more pass)."""
        total: dict[str, int] = {}
        for batch, _, _ in self._batches():
            for n in self._weight_columns if self.gaps else self.feature_names + self._weight_columns:
                if batch.column(n).null_count:
                    total[n] = total.get(n, 0) + batch.column(n).null_count
        return total

    def _fill(self, out: np.ndarray, batch, names: list[str] | None = None, first_row: int = 0) -> None:
        """Write the batch's features (or the ``names`` columns) into ``out``, a (D, n)
        column-major block: each column is one contiguous copy (a row-major target would
        make D strided passes, 3-5x slower); the rows come out of :meth:`_rows`. The
        features lose the shift, if any, in float64 before the cast; category columns
        become codes (``first_row``: the data-set row of the batch's first, for messages)."""
        pa = import_pyarrow()
        shift = self.shift.numpy() if names is None and self.shift is not None else None
        for j, name in enumerate(self.feature_names if names is None else names):
            col = batch.column(name)
            if names is None and name in self._categorical:
                where = self.file_of_row(first_row) if first_row < sum(self.file_rows) else self.files[0]
                local = first_row - sum(self.file_rows[: self.files.index(where)])
                if self.format == "csv":  # read as text: in the type of the column's categories
                    col = text_as(col, self.schema.categories[j])
                out[j] = self.schema.encode_column(j, col, local, where)
                continue
            if pa.types.is_decimal(col.type) or pa.types.is_null(col.type) or col.null_count:
                col = col.cast(pa.float64())  # and a null becomes NaN, whatever the column's type
            values = col.to_numpy(zero_copy_only=False)
            # a value beyond the buffer's range (1e300 into float32) becomes inf, which the
            # finiteness check names with its row; numpy's overflow warning would say less
            with np.errstate(over="ignore"):
                if shift is None:
                    out[j] = values
                else:
                    np.subtract(values, shift[j], out=out[j], dtype=np.float64, casting="unsafe")

    def _rows(self, buf: np.ndarray, n: int) -> Tensor:
        """The first n columns of a pooled (D, rows) buffer -> the (n, D) tensor of rows, as
        a transposed view.

        No copy: the E-step's kernels take strided operands at the same speed (they copy
        each block of rows into their workspace anyway), and a transposing copy here
        would cost as much as decoding the file.
        """
        return self._buffers.lend(buf, buf[:, :n]).t()

    def blocks(self) -> Iterator[tuple[Tensor, Tensor | None, dict | None, int]]:
        """(rows as an (n, D) CPU tensor, their weights or None, kept columns, first row),
        ``chunk_rows`` rows each."""
        pa = import_pyarrow()
        rows, D = self.chunk_rows, self.n_features
        pool = self._buffers
        new_weights = (lambda: pool.array((1, rows), np.float64)) if self.weight_column else (lambda: None)
        new_labels = (lambda: np.empty(rows, np.int64)) if self.label_column else (lambda: None)
        buf, wbuf, lbuf, pos, start = pool.array((D, rows), self._np_dtype()), new_weights(), new_labels(), 0, self.first_row
        kept: list = []
        total = _WeightTotal(self)
        for batch, file_index, first_row in self._batches():
            self._check_nulls(batch, file_index, first_row)
            off, n = 0, batch.num_rows
            while off < n:
                take = min(n - off, rows - pos)
                part = batch.slice(off, take)
                self._fill(buf[:, pos : pos + take], part, first_row=first_row + off)
                if wbuf is not None:
                    self._fill(wbuf[:, pos : pos + take], part, self._weight_columns)
                if lbuf is not None:
                    lbuf[pos : pos + take] = self._label_codes(part, first_row + off)
                if self.keep:
                    kept.append(part.select(self.keep))
                pos += take
                off += take
                if pos == rows:
                    yield (self._rows(buf, rows), total.add(self._weights(wbuf, start, rows), start), self._merge(pa, kept),
                           start, None if lbuf is None else torch.from_numpy(lbuf))
                    # other buffers: the consumer (or a cache) may still hold the last ones
                    buf, wbuf, pos, start, kept = pool.array((D, rows), self._np_dtype()), new_weights(), 0, start + rows, []
                    lbuf = new_labels()
        if pos:
            yield (self._rows(buf, pos), total.add(self._weights(wbuf, start, pos), start), self._merge(pa, kept), start,
                   None if lbuf is None else torch.from_numpy(lbuf[:pos]))
        total.check()

    def _label_codes(self, part, first_row: int) -> np.ndarray:
        where = self.file_of_row(first_row)
        local = first_row - sum(self.file_rows[: self.files.index(where)])
        return self.labels.codes(part.column(self.label_column), local, where)

    def _weights(self, wbuf: np.ndarray | None, start: int, n: int) -> Tensor | None:
        if wbuf is not None:
            return self._buffers.lend(wbuf, wbuf[0, :n])
        return None if self.weight is None else self.weight[start - self.first_row : start - self.first_row + n]

    @property
    def weighted(self) -> bool:
        return self.weight is not None or self.weight_column is not None

    def weight_blocks(self) -> Iterator[tuple[Tensor, int]]:
        """(weights, first row) over the data set, reading the weight column only:
        weighted row sampling needs them without the features."""
        if self.weight_column is None:
            yield from ([] if self.weight is None else [(self.weight.cpu(), 0)])
            return
        total = _WeightTotal(self)
        for batch, file_index, first_row in self._batches(self._weight_columns):
            self._check_nulls(batch, file_index, first_row)
            w = np.empty((1, batch.num_rows), np.float64)
            self._fill(w, batch, self._weight_columns)
            yield total.add(torch.from_numpy(w[0]), first_row), first_row
        total.check()

    def _merge(self, pa, kept: list) -> dict | None:
        if not self.keep:
            return None
        table = pa.Table.from_batches(kept)
        return {name: table.column(name).combine_chunks() for name in self.keep}

    def chunks(self) -> Iterator[Chunk]:
        for block, weight, kept, start, label in self.blocks():
            # asynchronous from pinned blocks (see buffers): the engine orders them before the E-step
            w = None if weight is None else weight.to(self.device, torch.float64, non_blocking=True)
            label = None if label is None else label.to(self.device, non_blocking=True)
            yield Chunk(block.to(self.device, non_blocking=True), w, start, kept, label)

    def boundaries(self) -> list[int]:
        """Rows where a part can start without reading rows it does not hold (see
        :func:`free_cuts`)."""
        return free_cuts(self._readers, self.file_rows, self.first_row, self.n_rows)

    def part(self, start: int, stop: int) -> TableSource:
        """Rows [start, stop) of this source, reading only the row groups (files) that hold them."""
        part = copy.copy(self)
        part.first_row, part.n_rows, part.whole = self.first_row + start, stop - start, False
        part.weight = None if self.weight is None else self.weight[start:stop]
        part._buffers = BufferPool.for_device(READ_AHEAD + 2, self.device)
        return part


    def file_of_row(self, row: int) -> str:
        """The file that holds data-set row ``row`` (for messages)."""
        return self.files[self._file_index(row)]

    def row_in_file(self, row: int) -> int:
        """Data-set row ``row`` counted in the file that holds it (for messages)."""
        return row - sum(self.file_rows[: self._file_index(row)])

    def _file_index(self, row: int) -> int:
        return int(np.searchsorted(np.cumsum(self.file_rows), row, side="right"))

    def take(self, rows: Tensor) -> Tensor:
        return torch.from_numpy(self._take(rows + self.first_row, self._np_dtype())).t().contiguous().to(self.device)

    def _take(self, rows: Tensor, np_dtype) -> np.ndarray:
        """The rows at sorted indices as a (D, n) array of ``np_dtype``."""
        idx = rows.cpu().numpy().astype(np.int64)
        out = np.empty((self.n_features, len(idx)), np_dtype)
        done, start = 0, 0
        for i, reader in enumerate(self._readers):
            lo, hi = np.searchsorted(idx, [start, start + self.file_rows[i]])
            if hi > lo:
                local = idx[lo:hi] - start
                if isinstance(reader, _ParquetReader):
                    for part in reader.take(self.feature_names, local):
                        self._fill(out[:, done : done + part.num_rows], part)
                        done += part.num_rows
                else:
                    done = self._take_streamed(reader, local, out, done)
            start += self.file_rows[i]
        return out

    def _take_streamed(self, reader, local: np.ndarray, out: np.ndarray, done: int) -> int:
        numeric = [n for n in self.feature_names if n not in self._categorical]
        text = [n for n in self.feature_names if n in self._categorical]
        kw = {"numeric": numeric, "text": text} if isinstance(reader, _CsvReader) else {}
        start = 0
        for batch in reader.batches(self.feature_names, self.chunk_rows, **kw):
            lo, hi = np.searchsorted(local, [start, start + batch.num_rows])
            if hi > lo:
                import pyarrow as pa

                part = batch.take(pa.array(local[lo:hi] - start))
                self._fill(out[:, done : done + part.num_rows], part)
                done += part.num_rows
            start += batch.num_rows
            if hi == len(local):
                break
        return done


def free_cuts(readers: list, file_rows: list[int], first_row: int, n_rows: int) -> list[int]:
    """Rows of the part [first_row, first_row + n_rows) of files read by ``readers`` where
    a part can start without reading rows it does not hold: between the row groups of
    Parquet files, between CSV or Arrow files (counted from the part's first row)."""
    ends, start = [], 0
    for reader, n in zip(readers, file_rows):
        if isinstance(reader, _ParquetReader):
            ends.extend((start + np.cumsum(reader.group_rows)).tolist())
        else:
            ends.append(start + n)
        start += n
    return [0] + [e - first_row for e in ends if first_row < e < first_row + n_rows]


def row_window(readers: list, file_rows: list[int], lo: int, hi: int, batches) -> Iterator[tuple[object, int, int]]:
    """(record batch, index of the file, first row of the batch in the data set) over rows
    [lo, hi) of files read by ``readers``: only the Parquet row groups (the other files)
    that hold them are read, and the batches that straddle the ends are sliced.
    ``batches(i, reader, groups)`` opens file i's batches (``groups``: the row groups to
    read of a Parquet file, else None)."""
    start = 0
    for i, reader in enumerate(readers):
        end = start + file_rows[i]
        if end <= lo or start >= hi:
            start = end
            continue
        pos, groups = start, None
        if isinstance(reader, _ParquetReader):
            ends = np.cumsum([0] + reader.group_rows) + start
            first = max(int(np.searchsorted(ends, lo, side="right")) - 1, 0)
            last = min(int(np.searchsorted(ends, hi, side="left")), len(reader.group_rows))
            pos = int(ends[first])
            groups = None if (first, last) == (0, len(reader.group_rows)) else range(first, last)
        it = batches(i, reader, groups)
        with closing(it):
            for batch in it:
                n = batch.num_rows
                a, b = max(lo - pos, 0), min(hi - pos, n)
                if b > a:
                    yield (batch if a == 0 and b == n else batch.slice(a, b - a)), i, pos + a
                pos += n
                if pos >= hi:
                    break
        start = end
        if start >= hi:
            return


class _WeightTotal:
    """Checks a weight column as it streams: every weight finite and non-negative (the
    error names the file and row), and, at the end of a pass, not all zero."""

    def __init__(self, source: TableSource) -> None:
        self.source, self.sum = source, 0.0

    def add(self, w: Tensor | None, start: int) -> Tensor | None:
        if w is None or self.source.weight_column is None:
            return w
        bad = ~torch.isfinite(w) | (w < 0)
        if bool(bad.any()):
            row = start + int(torch.nonzero(bad)[0])
            value = float(w[row - start])
            where = self.source.file_of_row(row)
            local = row - sum(self.source.file_rows[: self.source.files.index(where)])
            raise DataError(
                f"{where}: sample_weight column {self.source.weight_column!r} has {value!r} at row {row} of the "
                f"data set (row {local} of this file); weights must be finite and non-negative"
            )
        self.sum += float(w.sum())
        return w

    def check(self) -> None:
        if self.source.whole and self.source.weight_column is not None and self.sum == 0:
            raise DataError(
                f"sample_weight column {self.source.weight_column!r} is zero in every row; "
                "give at least one row a positive weight"
            )


def check_unique(path: str, names: list[str], wanted: list[str]) -> None:
    """Columns are read by name: a wanted name the file has twice is an error naming both."""
    twice = sorted({c for c in wanted if names.count(c) > 1})
    if twice:
        where = ", ".join(f"{c!r} at positions {[i for i, n in enumerate(names) if n == c]}" for c in twice)
        raise DataError(
            f"{path}: more than one column is named {where}; bigem reads columns by name, so rename them, or pick "
            "other columns with columns= (a CSV read with header=False names its columns f0, f1, ...)"
        )


# ---------------------------------------------------------------------------- one column
def _open_reader(path: str, fmt: str, csv: CsvOptions | None):
    if fmt == "csv":
        return _CsvReader(path, csv or CsvOptions())
    return {"parquet": _ParquetReader, "ipc": _IpcReader}[fmt](path)


def column_names(path: str, fmt: str, csv: CsvOptions | None = None) -> list[str]:
    """The columns of a file, from its schema."""
    return list(_open_reader(path, fmt, csv).schema.names)


def column_batches(files: list[str], fmt: str, column: str, *, csv: CsvOptions | None = None,
                   batch_rows: int = 1 << 16) -> Iterator[tuple[object, str, int]]:
    """The values of one column, in row order, without reading any other column: yields
    (an Arrow array, as the file holds it, the file, the first row of the batch in that
    file); a missing column raises with the file's columns."""
    for path in files:
        reader = _open_reader(path, fmt, csv)
        names = list(reader.schema.names)
        if column not in names:
            raise DataError(
                f"{path}: no column {column!r}; the file has {names}. "
                "Check the spelling (names are case-sensitive) of the column you passed"
            )
        check_unique(path, names, [column])
        kw = {"numeric": []} if isinstance(reader, _CsvReader) else {}
        first = 0
        for batch in reader.batches([column], batch_rows, **kw):
            yield batch.column(0), path, first
            first += batch.num_rows


def column_values(
    files: list[str], fmt: str, column: str, *, csv: CsvOptions | None = None, batch_rows: int = 1 << 16,
    nulls: bool = False,
) -> Iterator[tuple[np.ndarray, str, int]]:
    """:func:`column_batches` as numpy arrays: values keep their type (integers, strings,
    ...); a null raises with its file and row (with ``nulls``, numbers come as floats and
    a null as NaN).
    """
    pa = import_pyarrow()
    for values, path, first in column_batches(files, fmt, column, csv=csv, batch_rows=batch_rows):
        if values.null_count and nulls:
            values = values.cast(pa.float64())
        elif values.null_count:
            row = first + int(np.argmax(values.is_null().to_numpy(zero_copy_only=False)))
            raise DataError(
                f"{path}: column {column!r} has a null (missing) value at row {row} of this file "
                "(0-based); every row needs a value in this column"
            )
        if pa.types.is_dictionary(values.type):
            values = values.dictionary_decode()
        yield values.to_numpy(zero_copy_only=False), path, first


# ---------------------------------------------------------------------------- distinct values
def distinct_values(files: list[str], fmt: str, columns: list[str], *, label_column: str | None = None,
                    csv: CsvOptions | None = None, batch_rows: int = 1 << 16) -> dict[str, set]:
    """The distinct values of some columns (categories) and of the label column (classes,
    unlabelled entries left out), in one pass that reads those columns only."""
    from .labels import learn_classes
    from .schema import observed

    wanted = list(columns) + ([label_column] if label_column else [])
    found: dict[str, set] = {name: set() for name in wanted}
    for path in files:
        reader = _open_reader(path, fmt, csv)
        names = list(reader.schema.names)
        missing = [c for c in wanted if c not in names]
        if missing:
            raise DataError(f"{path}: no column(s) {missing}; the file has {names}. "
                            "Check the spelling (names are case-sensitive) or the columns= you passed")
        check_unique(path, names, wanted)
        kw = {"numeric": [], "text": list(columns)} if isinstance(reader, _CsvReader) else {}
        for batch in reader.batches(wanted, batch_rows, **kw):
            for name in wanted:
                values = batch.column(name)
                where = f"{path}: column {name!r}"
                found[name] |= learn_classes(values, where) if name == label_column else observed(values, where)
    if fmt == "csv":  # the categories were read as text (see TableSource._fill): typed from all their values
        where = files[0] if len(files) == 1 else f"{files[0]} (and the other files)"
        found.update({name: text_categories(found[name], f"{where}: column {name!r}") for name in columns})
    return found


def column_types(path: str, fmt: str, columns: list[str] | None, csv: CsvOptions | None = None) -> dict[str, str]:
    """Each column's coarse type (``schema.coarse_type``) from the first file's schema (a
    CSV's types are pyarrow's guesses from its first block)."""
    from .schema import coarse_type

    schema = _open_reader(path, fmt, csv).schema
    names = list(schema.names) if columns is None else list(columns)
    return {name: coarse_type(schema.field(name).type) for name in names if name in schema.names}
