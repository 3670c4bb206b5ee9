"""Where per-row outputs go when they should not be held in memory: .npy, Parquet, CSV.

A sink receives blocks of named columns in row order and writes them as they come. It
writes to a hidden temporary file beside the target and renames it into place only on
:meth:`Sink.commit`, so an error half-way (bad data, a full disk, Ctrl-C) never leaves a
half-written output behind, and an existing file is replaced whole or not at all.
"""

from __future__ import annotations

import numpy as np

from .._core.errors import DataError
from .._core.optional import require
from ..io import files
from .dask import is_dask_collection, read_paths
from .inputs import input_files, refuse_read_later
from .paths import format_of


OUTPUT_FORMATS = (".npy", ".csv", ".parquet")


def check_output_path(out: object, X: object = None) -> str:
    """The output path of per-row outputs, checked before any computing (``io.files``),
    pyarrow included for .parquet and .csv: a missing install is said before the work.
    X is the input the outputs are computed from: the output is none of its files, nor
    where a later read of it would find it (:func:`~.inputs.refuse_read_later`); a Dask
    collection's are the files its expression reads (:func:`~.dask.read_paths`)."""
    if is_dask_collection(X):
        X = read_paths(X) or None
    path = files.check_output_path(out, OUTPUT_FORMATS, input_files(X))
    refuse_read_later(path, X)
    if format_of(path) != "npy":
        require("pyarrow", f"{path}: writing .{format_of(path)} files")
    return path


class Sink:
    """Writes blocks of named columns to ``path``; nothing appears there until commit().

    A 2-D block becomes one column per component (``proba_0``, ``proba_1``, ...) in
    Parquet and CSV, or takes the names ``matrix_names`` gives it (a class's label);
    a .npy file holds exactly one (1-D or 2-D) output.
    """

    def __init__(self, path: str, n_rows: int, matrix_names: dict[str, list[str]] | None = None) -> None:
        self.matrix_names = dict(matrix_names or {})
        self.path = check_output_path(path)
        self.format = format_of(self.path)
        self.n_rows = n_rows
        self._part = files.Partial(self.path)
        self._tmp = self._part.tmp
        self._writer = None
        self._file = None
        self._written = 0

    # ------------------------------------------------------------ writing
    def write(self, columns: dict[str, object]) -> None:
        """Append one block: a dict of equally long columns (numpy or pyarrow arrays)."""
        with self._part.naming_errors():  # a full disk names the output
            if self.format == "npy":
                self._write_npy(columns)
            else:
                self._write_arrow(columns)

    def _write_npy(self, columns: dict[str, object]) -> None:
        if len(columns) != 1:
            raise DataError(
                f"{self.path}: a .npy file holds one array, but the output has columns {list(columns)}; "
                "write to .parquet or .csv, or ask for one output"
            )
        block = np.ascontiguousarray(next(iter(columns.values())))
        if self._file is None:
            self._file = open(self._tmp, "wb")  # noqa: SIM115 - closed in commit/abort
            header = {
                "descr": np.lib.format.dtype_to_descr(block.dtype),
                "fortran_order": False,
                "shape": (self.n_rows, *block.shape[1:]),
            }
            np.lib.format.write_array_header_2_0(self._file, header)
        self._file.write(block.tobytes())
        self._written += len(block)

    def _write_arrow(self, columns: dict[str, object]) -> None:
        import pyarrow as pa

        flat: dict[str, object] = {}
        for name, col in columns.items():
            if isinstance(col, np.ndarray) and col.ndim == 2:  # a matrix: one column per component
                names = self.matrix_names.get(name) or [f"{name}_{k}" for k in range(col.shape[1])]
                flat.update({n: col[:, k] for k, n in enumerate(names)})
            else:
                flat[name] = col
        table = pa.table({name: _arrow_column(col) for name, col in flat.items()})
        if self._writer is None:
            if self.format == "parquet":
                import pyarrow.parquet as pq

                self._writer = pq.ParquetWriter(self._tmp, table.schema)
            else:
                import pyarrow.csv as pcsv

                self._writer = pcsv.CSVWriter(self._tmp, table.schema)
        self._writer.write_table(table)
        self._written += table.num_rows

    # ------------------------------------------------------------ ending
    def commit(self) -> str:
        """Close and move the finished file into place; returns its path."""
        with self._part.naming_errors():  # closing flushes the last bytes
            self._close()
        if self._written != self.n_rows:
            self.abort()
            raise DataError(f"{self.path}: {self._written} rows written, expected {self.n_rows}; nothing was written")
        return self._part.commit()

    def abort(self) -> None:
        """Close and delete the temporary file: the target is left as it was. Called as
        an error propagates: closing may fail again (a full disk refuses the flush), and
        the temporary goes all the same."""
        try:
            self._close()
        except OSError:
            pass
        finally:
            self._part.abort()

    def _close(self) -> None:
        writer, file = self._writer, self._file
        self._writer = self._file = None  # closed once, even when closing fails
        try:
            if writer is not None:
                writer.close()
        finally:
            if file is not None:
                file.close()

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, kind, value, tb) -> None:
        if kind is not None:
            self.abort()


def _arrow_column(col: object):
    import pyarrow as pa

    if isinstance(col, (pa.Array, pa.ChunkedArray)):
        return col
    return pa.array(np.asarray(col))

