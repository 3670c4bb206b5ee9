"""What the columns of X are before a model reads them: their names and coarse types
(from a file's schema or a DataFrame's dtypes, no rows read), and the distinct values
of some of them (the categories of categorical columns, the classes of a label
column) in one pass that reads those columns only. Dask collections: ``sources.dask``.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .labels import learn_classes
from .npy import column_indices
from .paths import expand_paths
from .schema import coarse_type, observed
from .validate import check_shape
from .validate import refuse_sparse


def _files(X):
    from .inputs import Files

    spec = X if isinstance(X, Files) else Files(X)
    files, fmt = expand_paths(spec.path, spec.format)
    return spec, files, fmt


def _csv(spec):
    from .tables import CsvOptions

    return CsvOptions(spec.delimiter, spec.header)


def _object_type(column: np.ndarray) -> str:
    """The coarse type of an object column: that of its first value that is not missing."""
    for v in column:
        if v is None or (isinstance(v, float) and v != v):
            continue
        if isinstance(v, (bool, np.bool_)):
            return "bool"
        if isinstance(v, (int, np.integer)):
            return "integer"
        if isinstance(v, (float, np.floating)):
            return "float"
        return "string"
    return "string"


def describe_columns(X, columns: list[str] | None = None, exclude: tuple[str, ...] = ()) -> tuple[list[str] | None, list[str]]:
    """(feature names, or None where X has none; each feature's coarse type: 'float',
    'integer', 'bool', 'string', 'category' or 'other'). ``columns`` picks features by
    name; ``exclude``: columns that are not features (the weights, the labels)."""
    from .frames import native_frame
    from .inputs import is_file_input, is_source

    if is_file_input(X):
        spec, files, fmt = _files(X)
        columns = columns if columns is not None else (None if spec.columns is None else list(spec.columns))
        if fmt == "npy":
            mm = np.load(files[0], mmap_mode="r", allow_pickle=False)
            width = mm.shape[1] if mm.ndim == 2 else 1
            chosen = width if columns is None else len(column_indices(columns, width, files[0]))
            return None, [coarse_type(mm.dtype)] * chosen
        from .tables import column_names, column_types

        names = [n for n in column_names(files[0], fmt, _csv(spec)) if n not in exclude] if columns is None else list(columns)
        types = column_types(files[0], fmt, names, _csv(spec))
        missing = [n for n in names if n not in types]
        if missing:  # the file's own columns (types holds only the names asked for)
            raise DataError(f"{files[0]}: no column(s) {missing}; the file has {column_names(files[0], fmt, _csv(spec))}. "
                            "Check the columns= you passed, or that the model was fitted on data with these columns")
        return names, [types[n] for n in names]
    if is_source(X):
        return getattr(X, "feature_names", None), ["float"] * int(X.n_features)
    refuse_sparse(X)
    X = native_frame(X)
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        names = [str(c) for c in X.columns if str(c) not in exclude] if columns is None else [str(c) for c in columns]
        have = {str(c): dt for c, dt in X.dtypes.items()}
        missing = [n for n in names if n not in have]
        if missing:
            raise DataError(f"X has no column(s) {missing}; it has {list(have)}. Check the columns= you passed")
        return names, [coarse_type(have[n]) for n in names]
    if columns is not None:
        raise DataError("columns= selects by name, but X has no column names; pass a DataFrame or a file with a header")
    if isinstance(X, Tensor):
        kind = "bool" if X.dtype == torch.bool else "float" if X.is_floating_point() else "integer"
        return None, [kind] * (int(X.shape[1]) if X.ndim == 2 else 1)
    from .inputs import as_table

    arr = as_table(X)  # None, a ragged list: the message the other families give
    if arr.ndim != 2:
        check_shape(arr.shape)
    width = arr.shape[1]
    if arr.dtype.kind == "O":
        return None, [_object_type(arr[:, j]) for j in range(width)]
    return None, [coarse_type(arr.dtype)] * width


def distinct_values(X, names: list[str] | None, categorical: list[int], label_column: str | None = None
                    ) -> tuple[dict[int, set], set]:
    """(the distinct values of each ``categorical`` feature, by index; the classes of the
    ``label_column``), in one pass over those columns. ``names``: the features' names
    (as :func:`describe_columns` gave them; None for X without names)."""
    from .frames import native_frame
    from .inputs import is_file_input, is_source

    def label(j: int) -> str:
        return f"column {names[j]!r}" if names is not None else f"column {j}"

    def no_names(what: str) -> DataError:
        return DataError(f"y={label_column!r} names a label column, but X is {what}, whose columns have no names; "
                         "pass y as labels, one per row (-1 where unlabelled), or X as a DataFrame or a Parquet or "
                         "CSV file holding that column")

    if is_file_input(X):
        spec, files, fmt = _files(X)
        if fmt == "npy":
            if label_column is not None:
                raise no_names("a .npy file")
            return _npy_values(files[0], categorical, label, spec.columns), set()
        from .tables import distinct_values as table_values

        found = table_values(files, fmt, [names[j] for j in categorical], label_column=label_column, csv=_csv(spec))
        return {j: found[names[j]] for j in categorical}, found.get(label_column, set()) if label_column else set()
    if is_source(X) and label_column is not None:
        raise no_names("a source of rows")
    if is_source(X):
        seen: dict[int, set] = {j: set() for j in categorical}
        for chunk in X.chunks():
            for j in categorical:
                seen[j] |= observed(chunk.x[:, j].detach().cpu().double().numpy(), label(j))
        return seen, set()
    X = native_frame(X)
    if hasattr(X, "columns") and hasattr(X, "dtypes"):
        by_name = {str(c): c for c in X.columns}  # names are strings; a frame's own may be integers
        if label_column is not None and label_column not in by_name:
            raise DataError(f"y={label_column!r} names a label column, but X has no column {label_column!r}; it has "
                            f"{list(by_name)}")
        cats = {j: observed(X[by_name[names[j]]], label(j)) for j in categorical}
        classes = set() if label_column is None else learn_classes(X[by_name[label_column]],
                                                                   f"label column {label_column!r}")
        return cats, classes
    if label_column is not None:
        raise no_names("an array")
    if isinstance(X, Tensor):
        X = X.detach().cpu().numpy()
    arr = np.asarray(X)
    if arr.ndim == 1:
        arr = arr[:, None]
    return {j: observed(arr[:, j], label(j)) for j in categorical}, set()


def _npy_values(path: str, categorical: list[int], label, columns=None) -> dict[int, set]:
    """The distinct values of each ``categorical`` feature of a .npy file; feature j is
    the file's column ``columns[j]`` where columns are chosen (by index), else column j."""
    mm = np.load(os.fspath(path), mmap_mode="r", allow_pickle=False)
    if mm.ndim == 1:
        mm = mm[:, None]
    at = np.arange(mm.shape[1]) if columns is None else column_indices(columns, mm.shape[1], os.fspath(path))
    seen: dict[int, set] = {j: set() for j in categorical}
    for s in range(0, mm.shape[0], 1 << 20):
        block = np.asarray(mm[s : s + (1 << 20)])
        for j in categorical:
            seen[j] |= observed(block[:, at[j]], label(j))
    return seen
