"""Files the command line reads and writes.

Reading goes through :mod:`bigem.sources` (Parquet, CSV, Arrow IPC and .npy files, a
folder or a glob), streamed by the estimators: :func:`read_data` only opens the data
set to learn its size and column names. Columns are chosen by name; a ``.npy`` file
has no names, so its columns are chosen by 0-based index (and read into memory).
Prediction output is written by the estimators' streaming sinks; the small outputs
here (samples, tables) are written atomically too: a temporary file in the
destination folder, renamed over the target only once complete.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass

import numpy as np
import torch

from .._core.errors import DataError, ParameterError
from ..io.files import check_model_path, check_output_path, is_url, local_path, target_of, write_atomically


FORMAT_NAMES = {"parquet": "a Parquet file", "ipc": "an Arrow file", "npy": "a .npy file",
                "npz": "a .npz sparse matrix"}


@dataclass
class Data:
    """What the estimators are given: ``X`` (a path or an array) with ``columns`` (names
    for the estimator to read, or None), the row count and the feature names."""

    X: object
    columns: list[str] | None
    n_rows: int
    n_features: int
    names: list[str] | None
    path: str
    weight: str | None = None  # the column of row weights, if any


def _open(X, columns=None, weight=None, numeric: bool = True):
    """The source over X (its rows and columns are learnt; no row is read). ``numeric=False``
    admits text and categorical columns (read as categories), for the discrete families."""
    from ..sources import open_source

    schema = None
    if not numeric:
        from ..sources.columns import describe_columns
        from ..sources.schema import Schema

        names, types = describe_columns(X, columns, () if weight is None else (weight,))
        kinds = tuple("category" if t in ("string", "category") else "real" for t in types)
        schema = Schema(kinds, tuple(np.array([]) if k == "category" else None for k in kinds), "ignore",
                        names=None if names is None else tuple(names))
    return open_source(X, dtype=torch.float64, device=torch.device("cpu"), memory_budget=64 << 20, columns=columns,
                       sample_weight=weight, schema=schema)


def read_data(path: str, columns: list[str] | None = None, weight: str | None = None, *,
              delimiter: str | None = None, header: bool = True, numeric: bool = True) -> Data:
    """Open a data set (file, folder or glob) and learn its shape; ``columns`` picks
    features by name (by 0-based index for a .npy file); ``weight`` names the column
    of row weights (not a feature); ``delimiter`` and ``header`` say how to read CSV
    (``Data.X`` is then a :class:`bigem.Files` that carries them to the estimator);
    ``numeric=False`` admits text and categorical columns (the discrete families)."""
    check_exists(path)
    if path.lower().endswith(".npz"):  # a sparse matrix of counts: the multinomial family's
        raise DataError(f"{path}: a .npz file holds a sparse matrix of counts, which --family multinomial reads "
                        "(documents x words); pass --family multinomial, or write the rows as .npy, Parquet or CSV")
    X = data_spec(path, delimiter, header)
    if path.lower().endswith(".npy") and os.path.isfile(path):
        if weight is not None:
            raise DataError(f"{path}: a .npy file has no column names, so it has no weight column; "
                            "write the rows and their weights to Parquet or CSV")
        return _read_npy(path, columns)
    source = _open(X, columns, weight, numeric)
    names = list(source.feature_names) if source.feature_names is not None else None
    return Data(X, columns, source.n_rows, source.n_features, names, path, weight)


def data_spec(path: str, delimiter: str | None = None, header: bool = True):
    """DATA as the estimators read it: the path, or a Files with the CSV options given
    (refused, naming the flags, for data that is not CSV)."""
    if delimiter is None and header:
        return path
    from ..sources import Files
    from ..sources.paths import expand_paths

    check_exists(path)
    fmt = "npz" if path.lower().endswith(".npz") else expand_paths(path)[1]
    if fmt != "csv":
        given = [f for f, on in (("--delimiter", delimiter is not None), ("--no-header", not header)) if on]
        flags = " and ".join(given)
        raise ParameterError(f"{path}: {flags} {'apply' if len(given) > 1 else 'applies'} to CSV files, and this is "
                             f"{FORMAT_NAMES.get(fmt, fmt)}; drop {'them' if len(given) > 1 else 'it'}")
    return Files(path, delimiter=delimiter, header=header)


def check_exists(path: str) -> None:
    """A local path (not a glob) must exist before anything is read."""
    if not is_url(path) and not any(c in path for c in "*?[") and not os.path.exists(path):
        raise DataError(f"{path}: no such data file; check the path")


def _read_npy(path: str, columns: list[str] | None) -> Data:
    from ..sources.npy import column_indices

    try:
        with open(path, "rb") as f:
            magic = f.read(6)
        if magic != b"\x93NUMPY":
            raise DataError(f"{path}: not a .npy file (it does not start with the .npy magic bytes)")
        mm = np.load(path, mmap_mode="r", allow_pickle=False)
    except DataError:
        raise
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy file ({exc})") from None
    if mm.ndim == 1:  # one column, read into memory
        column_indices(["0"] if columns is None else columns, 1, path)
        return Data(np.asarray(mm)[:, None], None, mm.shape[0], 1, None, path)
    if mm.ndim != 2:
        raise DataError(f"{path}: holds an array of shape {mm.shape}; expected (rows, columns)")
    if columns is None:
        return Data(path, None, mm.shape[0], mm.shape[1], None, path)  # streamed by the estimator
    idx = column_indices(columns, mm.shape[1], path)  # checked here, before any work
    return Data(path, [str(i) for i in idx], mm.shape[0], len(idx), None, path)  # streamed, those columns


def sample_rows(data: Data, max_points: int, seed: int = 0) -> np.ndarray:
    """At most ``max_points`` rows of the data set, a uniform sample without replacement,
    in file order, as a float64 array (for pictures); only those rows are read."""
    from ..plot._common import as_rows
    from ..sources import Files

    if data.columns is not None and isinstance(data.X, str) and data.X.lower().endswith(".npy"):
        return as_rows(Files(data.X, columns=data.columns), max_points, seed)  # a .npy file's columns by index
    return as_rows(data.X, max_points, seed, data.columns)


def check_output(path: str, inputs: tuple[str, ...] = (), formats: tuple[str, ...] | None = None, what: str = "output") -> str:
    """Fail before any work when ``path`` cannot be written (``io.files``); a model is
    not written to a path that names data, and no output where a later read of an
    input (a folder or glob) would take it as data."""
    from ..sources.inputs import input_files, refuse_read_later

    read = tuple(inputs) + tuple(f for spec in inputs for f in input_files(spec))  # a folder's files too (links)
    if what == "model":
        return check_model_path(path, read)
    path = check_output_path(path, formats, read, what)
    for spec in inputs:
        refuse_read_later(path, spec, what)
    return path


def check_distinct_outputs(outputs: dict[str, str | None]) -> None:
    """A command's outputs (flag -> path, None where not asked for) go to different files:
    two at one path (or links to one file) would overwrite each other."""
    seen: dict[str, str] = {}
    for flag, path in outputs.items():
        if path is None:
            continue
        target = target_of(local_path(path))
        if target in seen:
            raise ParameterError(f"{flag} {path}: {seen[target]} writes to the same file; give each output a path "
                                 "of its own")
        seen[target] = flag


def write_array(path: str, values: np.ndarray, header: list[str]) -> None:
    """Write a (n,) or (n, m) array to .npy, or with a header to .csv or .parquet, atomically."""
    values = np.asarray(values)
    if not path.lower().endswith(".npy"):
        table = values[:, None] if values.ndim == 1 else values
        write_columns(path, {h: table[:, j] for j, h in enumerate(header)})
        return

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            np.save(f, values, allow_pickle=False)

    write_atomically(path, write)


def write_columns(path: str, columns: dict[str, np.ndarray]) -> None:
    """Named 1-D columns, of one dtype or mixed (floats, integer labels), to .csv (with a
    header row) or .parquet, atomically."""
    ext = os.path.splitext(path)[1].lower()
    values = [np.asarray(v) for v in columns.values()]

    def write(tmp: str) -> None:
        if ext == ".csv" and any(v.dtype.kind in "OUS" for v in values):  # text (categories): quoted as needed
            cells = [[str(x) if v.dtype.kind in "OUS" else int(x) if v.dtype.kind in "iub" else f"{x:.17g}" for x in v]
                     for v in values]
            with open(tmp, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(list(columns))
                w.writerows(zip(*cells))
        elif ext == ".csv":
            fmt = ["%d" if v.dtype.kind in "iub" else "%.17g" for v in values]
            mixed = len({v.dtype for v in values}) > 1  # one numeric table unless the kinds differ
            table = np.column_stack([v.astype(object) if mixed else v for v in values])
            np.savetxt(tmp, table, fmt=fmt, delimiter=",", header=",".join(columns), comments="")
        elif ext == ".parquet":
            from .._core.optional import require

            pa = require("pyarrow", f"{path}: writing .parquet files")
            pq = require("pyarrow.parquet", f"{path}: writing .parquet files")
            pq.write_table(pa.table(dict(zip(columns, values))), tmp)
        else:
            raise ParameterError(f"{path}: unsupported file type {ext!r}; use .npy, .csv or .parquet")

    write_atomically(path, write)


def write_rows(path: str, rows: list[dict], columns: list[str]) -> None:
    """A list of dicts as a CSV table, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)

    write_atomically(path, write)
