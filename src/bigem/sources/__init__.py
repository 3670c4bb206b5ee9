"""Where rows come from: arrays, tensors, DataFrames and ``.npy`` files, as validated chunks.

:func:`open_source` is the one entry point the estimators use: it accepts whatever a
user passes as X, converts and validates it, and returns a :class:`Source`.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.types import Source
from .arrays import TensorSource, as_tensor, chunk_rows_for_budget
from .npy import NpySource
from .validate import (
    NonNumericDataError,
    SparseDataError,
    check_finite,
    check_shape,
    raise_not_finite,
    to_numeric_array,
)

__all__ = ["Source", "TensorSource", "NpySource", "open_source", "check_sample_weight", "feature_names_of"]


def feature_names_of(x: object) -> list[str] | None:
    """Column names of a DataFrame-like X when they are all strings (scikit-learn's rule)."""
    cols = getattr(x, "columns", None)
    if cols is None or not hasattr(x, "dtypes"):
        return None
    names = list(cols)
    return [str(c) for c in names] if names and all(isinstance(c, str) for c in names) else None


def _dataframe_to_numpy(x: object) -> np.ndarray:
    """DataFrame -> float64 array; names the non-numeric columns; missing values become NaN.

    An object, category or string column is accepted when all its values convert to
    float, as scikit-learn accepts it; otherwise the error names every such column and
    quotes the first conversion error (scikit-learn's wording). Datetimes are refused.
    """
    bad, first = [], None
    for c, dt in x.dtypes.items():
        kind = getattr(dt, "kind", "O")
        if kind in "fiub":
            continue
        if kind != "O":  # datetimes, timedeltas: convertible to float, but not measurements
            bad.append(str(c))
            first = first or f"column {str(c)!r} has dtype {dt}"
            continue
        try:
            x[c].to_numpy(dtype=np.float64, na_value=np.nan)
        except (TypeError, ValueError) as exc:
            bad.append(str(c))
            first = first or exc
    if bad:
        raise NonNumericDataError(
            f"X has non-numeric column(s) {bad}: {first}. Encode or drop these columns before fitting."
        )
    return x.to_numpy(dtype=np.float64, na_value=np.nan)


def open_source(
    X: object,
    *,
    dtype: torch.dtype,
    device: torch.device,
    memory_budget: int,
    chunk_size: int | None = None,
    sample_weight: object | None = None,
    min_rows: int = 1,
    validate: bool = True,
) -> Source:
    """A validated source over X (array, tensor, DataFrame, or path to a .npy file)."""
    itemsize = torch.finfo(dtype).bits // 8
    if isinstance(X, (str, os.PathLike)):
        path = os.fspath(X)
        if not path.endswith(".npy"):
            raise DataError(f"{path}: unsupported file type; bigem reads .npy files here (save with numpy.save)")
        source: Source = NpySource(path, dtype, device, chunk_rows=1)
        source.chunk_rows = chunk_size or chunk_rows_for_budget(
            memory_budget, source.n_features, itemsize + source.file_itemsize
        )
        check_shape((source.n_rows, source.n_features), name=path, min_rows=min_rows)
        if sample_weight is not None:
            raise DataError("sample_weight is not supported with a file source yet; pass the data as an array")
    else:
        if hasattr(X, "toarray") and hasattr(X, "nnz"):
            raise SparseDataError(
                "Sparse data was passed for X, but dense data is required. Use '.toarray()' to convert to a "
                f"dense numpy array if it fits in memory (X is a {type(X).__name__}; "
                "bigem does not read sparse input)."
            )
        names = feature_names_of(X)
        if X is None or isinstance(X, (str, bytes)):
            raise DataError(f"X must be an array, tensor, DataFrame or a path to a .npy file; got {X!r}")
        if isinstance(X, Tensor):
            if X.is_complex():
                raise DataError(f"Complex data not supported: X has dtype {X.dtype}; pass real numbers.")
            check_shape(tuple(X.shape), min_rows=min_rows)
            x = X.detach().to(device=device, dtype=dtype)
        else:
            is_frame = hasattr(X, "columns") and hasattr(X, "dtypes")
            arr = _dataframe_to_numpy(X) if is_frame else to_numeric_array(X)
            check_shape(arr.shape, min_rows=min_rows)
            x = as_tensor(np.asarray(arr), dtype, device)
        weight = None if sample_weight is None else check_sample_weight(sample_weight, x.shape[0], dtype, device)
        rows = chunk_size or chunk_rows_for_budget(memory_budget, x.shape[1], itemsize)
        source = TensorSource(x, weight, rows, names)
    if validate:
        validate_finite(source, "X" if not isinstance(X, (str, os.PathLike)) else os.fspath(X))
    return source


def validate_finite(source: Source, name: str = "X") -> None:
    """One pass: raise with the count of NaN/inf and the first offending row."""
    n_nan = n_inf = 0
    first = None
    for chunk in source.chunks():
        found = check_finite(chunk.x, chunk.row_start)
        if found:
            n_nan += found[0]
            n_inf += found[1]
            first = found[2] if first is None else first
    if first is not None:
        raise_not_finite(n_nan, n_inf, first, name)


def check_sample_weight(sample_weight: object, n_rows: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """1-D, one weight per row, finite, non-negative, not all zero (scikit-learn's messages)."""
    w = np.asarray(sample_weight.cpu() if isinstance(sample_weight, Tensor) else sample_weight, dtype=np.float64)
    if w.ndim == 0:
        w = np.full(n_rows, float(w))
    if w.ndim != 1:
        raise DataError(f"Sample weights must be 1D array or scalar: got sample_weight with {w.ndim} dimensions.")
    if w.shape != (n_rows,):
        raise DataError(f"sample_weight.shape == {w.shape}, expected {(n_rows,)}! Pass one weight per row of X.")
    if not np.isfinite(w).all():
        raise DataError(f"Input sample_weight contains NaN or infinity (first at row {int(np.argmin(np.isfinite(w)))}).")
    if (w < 0).any():
        raise DataError(f"Negative values in data passed to `sample_weight` (first at row {int(np.argmax(w < 0))}).")
    if w.sum() <= 0:
        raise DataError(
            "Sample weights must contain at least one non-zero number: sample_weight sums to zero; "
            "give at least one row a positive weight."
        )
    return torch.from_numpy(w).to(device=device, dtype=dtype)
