"""Files the command line reads and writes: one function each way, so the file sources
of ``bigem.sources`` can take over reading without touching the commands.

Reading: ``.npy`` files are passed to the estimators as paths (memory-mapped and
streamed); ``.csv`` and ``.parquet`` are read into memory here for now. Writing is
atomic: a temporary file in the destination folder, renamed over the target only once
complete, so a failed command leaves no partial output.
"""

from __future__ import annotations

import csv
import os
import secrets
from dataclasses import dataclass

import numpy as np

from .._core.errors import DataError, ParameterError

DATA_FORMATS = (".npy", ".csv", ".parquet")


@dataclass
class Data:
    """What the estimators are given: ``X`` (a .npy path or an array), its row count and
    column names (None when the file has none)."""

    X: object
    n_rows: int
    n_features: int
    names: list[str] | None
    path: str


def read_data(path: str, columns: list[str] | None = None) -> Data:
    """Open a data file; ``columns`` (names, or 0-based indices) picks and orders columns."""
    if not os.path.exists(path):
        raise DataError(f"{path}: no such data file; check the path")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a folder, not a data file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".npy":
        return _read_npy(path, columns)
    if ext == ".csv":
        names, values = _read_csv(path)
    elif ext == ".parquet":
        names, values = _read_parquet(path)
    else:
        raise DataError(f"{path}: unsupported data file type {ext or '(none)'!r}; use {', '.join(DATA_FORMATS)}")
    if columns is not None:
        idx = [_column_index(c, names, values.shape[1], path) for c in columns]
        values = values[:, idx]
        names = [names[i] for i in idx] if names is not None else None
    if values.shape[0] == 0:
        raise DataError(f"{path}: has no data rows")
    return Data(values, values.shape[0], values.shape[1], names, path)


def _read_npy(path: str, columns: list[str] | None) -> Data:
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
    if mm.ndim == 1:  # one column
        mm = mm[:, None]
        if columns is None:
            return Data(np.asarray(mm), mm.shape[0], 1, None, path)
    if mm.ndim != 2:
        raise DataError(f"{path}: holds an array of shape {mm.shape}; expected (rows, columns)")
    if columns is None:
        return Data(path, mm.shape[0], mm.shape[1], None, path)  # streamed by the estimator
    idx = [_column_index(c, None, mm.shape[1], path) for c in columns]
    return Data(np.asarray(mm[:, idx]), mm.shape[0], len(idx), None, path)


def _column_index(c: str, names: list[str] | None, width: int, path: str) -> int:
    if names is not None and c in names:
        return names.index(c)
    if c.isdigit():
        j = int(c)
        if j >= width:
            raise DataError(f"{path}: column index {j} is out of range; the file has {width} columns (0..{width - 1})")
        return j
    known = f"known columns: {', '.join(names)}" if names else f"this file has no column names; use indices 0..{width - 1}"
    raise DataError(f"{path}: unknown column {c!r}; {known}")


def _read_csv(path: str) -> tuple[list[str] | None, np.ndarray]:
    """A header row (any cell not a number) is optional. Every other cell must be a number."""
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f) if r]
    if not rows:
        raise DataError(f"{path}: is empty")
    names = None
    if not all(_is_number(c) for c in rows[0]):
        names, rows = [c.strip() for c in rows[0]], rows[1:]
    width = len(names) if names is not None else len(rows[0]) if rows else 0
    out = np.empty((len(rows), width))
    first_line = 2 if names is not None else 1
    for i, r in enumerate(rows):
        if len(r) != width:
            raise DataError(f"{path}: line {i + first_line} has {len(r)} fields, expected {width}")
        for j, cell in enumerate(r):
            try:
                out[i, j] = float(cell)
            except ValueError:
                col = names[j] if names is not None else str(j)
                raise DataError(
                    f"{path}: line {i + first_line}, column {col!r}: {cell!r} is not a number; "
                    "clean or drop this column (pick numeric ones with --columns)"
                ) from None
    return names, out


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_parquet(path: str) -> tuple[list[str], np.ndarray]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading .parquet files needs pyarrow: pip install pyarrow") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises its own ArrowInvalid/OSError for a damaged file
        raise DataError(f"{path}: not a readable Parquet file ({exc})") from None
    names = list(table.column_names)
    cols = []
    for name in names:
        col = table.column(name).to_numpy()
        if col.dtype.kind not in "fiub":
            raise DataError(f"{path}: column {name!r} is not numeric ({col.dtype}); pick numeric ones with --columns")
        cols.append(col.astype(np.float64))
    return names, np.column_stack(cols) if cols else np.empty((table.num_rows, 0))


def check_output(path: str, inputs: tuple[str, ...] = (), formats: tuple[str, ...] | None = None, what: str = "output") -> str:
    """Fail before any work when ``path`` cannot be written: unknown format, missing folder,
    or the same file as an input."""
    ext = os.path.splitext(path)[1].lower()
    if formats is not None and ext not in formats:
        raise ParameterError(f"{what} {path}: unsupported file type {ext or '(none)'!r}; use {', '.join(formats)}")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DataError(f"{what} {path}: folder {folder!r} does not exist; create it first")
    if os.path.isdir(path):
        raise DataError(f"{what} {path}: is a folder; give a file name")
    for other in inputs:
        if os.path.realpath(path) == os.path.realpath(other):
            raise ParameterError(f"{what} {path} is the input file; choose a different output path")
    return path


def write_array(path: str, values: np.ndarray, header: list[str]) -> None:
    """Write a (n,) or (n, m) array to .npy, .csv (with a header row) or .parquet, atomically."""
    ext = os.path.splitext(path)[1].lower()
    values = np.asarray(values)
    table = values[:, None] if values.ndim == 1 else values

    def write(tmp: str) -> None:
        if ext == ".npy":
            with open(tmp, "wb") as f:
                np.save(f, values, allow_pickle=False)
        elif ext == ".csv":
            fmt = "%d" if values.dtype.kind in "iub" else "%.17g"
            np.savetxt(tmp, table, fmt=fmt, delimiter=",", header=",".join(header), comments="")
        elif ext == ".parquet":
            try:
                import pyarrow as pa
                import pyarrow.parquet as pq
            except ImportError:
                raise DataError(f"{path}: writing .parquet files needs pyarrow: pip install pyarrow") from None
            pq.write_table(pa.table({h: table[:, j] for j, h in enumerate(header)}), tmp)
        else:
            raise ParameterError(f"{path}: unsupported file type {ext!r}; use .npy, .csv or .parquet")

    atomic_write(path, write)


def write_rows(path: str, rows: list[dict], columns: list[str]) -> None:
    """A list of dicts as a CSV table, atomically."""

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)

    atomic_write(path, write)


def atomic_write(path: str, write) -> None:
    """``write(tmp)`` to a hidden file next to ``path``, then rename it over ``path``."""
    folder, name = os.path.split(os.path.abspath(path))
    tmp = os.path.join(folder, f".{name}.{secrets.token_hex(4)}.partial{os.path.splitext(name)[1]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
