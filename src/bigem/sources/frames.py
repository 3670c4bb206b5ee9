"""Data frames of other libraries as X: polars DataFrames, pyarrow Tables and
RecordBatches, and any frame that speaks the Arrow PyCapsule stream interface
(``__arrow_c_stream__``: DuckDB relations, ...). Each is read through Arrow into a
pandas DataFrame, the one frame the sources read (its categoricals, nulls and column
checks), so every estimator takes them wherever it takes a pandas DataFrame. Their
column names are read without converting anything.

A one-shot stream (a pyarrow RecordBatchReader) and a lazy frame (a polars LazyFrame)
are refused: EM reads X once a pass, and they can be read once, or not at all until
collected."""

from __future__ import annotations

from .._core.errors import DataError
from .._core.optional import require


def _is_pandas_or_dask(X: object) -> bool:
    module = type(X).__module__
    return module.startswith(("pandas", "dask")) or hasattr(X, "__dask_graph__")


def _is_arrow(X: object) -> bool:
    """A pyarrow Table or RecordBatch (its ``columns`` are arrays; its names, the schema's)."""
    return type(X).__module__.startswith("pyarrow") and hasattr(X, "schema") and hasattr(X, "to_pandas")


def is_foreign_frame(X: object) -> bool:
    """Whether X is a data frame of another library than pandas (see the module docstring)."""
    if _is_pandas_or_dask(X):
        return False
    return _is_arrow(X) or (hasattr(X, "__arrow_c_stream__") and hasattr(X, "columns"))


def frame_columns(X: object) -> list | None:
    """The column names of a data frame of any library, as it gives them (a pandas
    frame's may be integers); None for X without (an array, a tensor)."""
    if _is_arrow(X):
        return list(X.schema.names)
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "dtypes"):
        return None
    return list(columns)


def _refuse_unreadable(X: object) -> None:
    kind = type(X).__name__
    if kind == "RecordBatchReader":
        raise DataError("X is a pyarrow RecordBatchReader, a stream that can be read once, and EM reads X once a "
                        "pass: read it into a Table (reader.read_all()), or write it to Parquet and pass the path")
    if kind == "LazyFrame":
        raise DataError(f"X is a lazy frame ({kind}), which holds no rows until it is collected: pass X.collect(), "
                        "or write it to Parquet (X.sink_parquet(path)) and pass the path to stream it")


def native_frame(X: object) -> object:
    """X as a pandas DataFrame when it is a data frame of another library (through Arrow:
    dictionary columns arrive as categoricals, nulls as missing values); anything else as
    it is."""
    _refuse_unreadable(X)
    if not is_foreign_frame(X):
        return X
    what = f"X as a {type(X).__module__.split('.')[0]} {type(X).__name__}"
    require("pandas", what)
    if _is_arrow(X):
        return X.to_pandas()
    pa = require("pyarrow", what)
    return pa.table(X).to_pandas()
