"""What a user passes as X, opened as a validated :class:`Source`: arrays, tensors,
DataFrames, Parquet/CSV/Arrow/.npy files (a path, folder, glob, list or :class:`Files`),
or a Source object. :func:`open_source` is the one entry point the estimators use."""

from __future__ import annotations

import dataclasses
import numbers
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core.chunking import AUTO, MeasuredChunks, host_budget
from .._core.errors import DataError, OutputPathError, ParameterError
from .._core.types import READ_AHEAD, Source
from .arrays import PROBE_ROWS, TensorSource, as_tensor, choose_shift, chunk_rows_for_budget, streamed_bytes_per_value
from .firstpass import FirstPassSource
from .frames import frame_columns, native_frame
from .labels import LabelColumn, LabelledSource
from .identifiers import IdentifierWatch, frame_candidates
from .npy import NpySource
from .paths import expand_paths, read_later
from .remote import is_url
from .schema import Schema
from .validate import (
    ColumnNamesError,
    ColumnsSeen,
    DeviceCheck,
    NonNumericDataError,
    RulePass,
    SparseDataError,  # noqa: F401 (re-exported where code imported it from here)
    refuse_sparse,
    check_shape,
    check_values,
    check_weight_not_a_feature,
    column_label,
    raise_not_finite,
    to_numeric_array,
)



def checked_columns(columns: object) -> list | None:
    """``columns=`` as a list of column names (0-based indices for a .npy file), or None;
    one name alone, a number alone, or anything else is refused with the fix."""
    if columns is None:
        return None
    if isinstance(columns, (str, bytes, numbers.Number)) or not hasattr(columns, "__iter__") or isinstance(columns, dict):
        raise DataError(f"columns= must be a list of column names (0-based indices for a .npy file), got "
                        f"{columns!r}; for one column pass a list of it, columns=[{columns!r}]")
    listed = list(columns)
    bad = [c for c in listed if not isinstance(c, (str, numbers.Integral)) or isinstance(c, bool)]
    if bad:
        raise DataError(f"columns= lists {bad[0]!r}, which is neither a column name nor a 0-based index; give names "
                        "(strings), or indices for a .npy file")
    return listed


def feature_names_of(x: object) -> list[str] | None:
    """Column names of a DataFrame-like X when they are all strings (scikit-learn's rule:
    names that mix strings with other types are refused, None when none is a string)."""
    names = frame_columns(x)
    if names is None:
        return None
    types = sorted({type(c).__name__ for c in names})
    if len(types) > 1 and "str" in types:
        raise ColumnNamesError(
            "Feature names are only supported if all input features have string names, but your input has "
            f"{types} as feature name / column name types. If you want feature names to be stored and validated, "
            "you must convert them all to strings, by using X.columns = X.columns.astype(str) for example. "
            "Otherwise you can remove feature / column names from your input data, or convert them all to a "
            "non-string data type."
        )
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


@dataclass(frozen=True)
class Files:
    """A data set on disk, with the options to read it. A plain path passed as X means
    ``Files(path)``.

    Parameters
    ----------
    path : str, path-like or list
        A file, a folder (read recursively, in sorted order), a glob, or a list of them:
        Parquet, CSV (also .tsv/.txt, optionally .gz), Arrow IPC/Feather or .npy.
    columns : list of str or None, default=None
        The features, by name; None: every column, which must then be numeric. A .npy
        file has no names: its columns are chosen by 0-based index (ints, or strings of
        digits), and it still streams.
    format : {'parquet', 'csv', 'ipc', 'npy'} or None, default=None
        The files' format; None: by extension.
    delimiter : str or None, default=None
        CSV only: the field separator, one character; None: a tab for .tsv files, else
        a comma.
    header : bool, default=True
        CSV only: False when the first line is data (the columns are then called f0,
        f1, ...).
    """

    path: object
    columns: tuple[str | int, ...] | list[str | int] | None = None
    format: str | None = None
    delimiter: str | None = None
    header: bool = True

    def __post_init__(self) -> None:
        if not _is_paths(self.path):
            raise ParameterError(
                f"Files(path=...) must be a path, a folder, a glob or a non-empty list of them; got {self.path!r}"
            )
        if isinstance(self.columns, (str, bytes)) or self.columns is not None and not all(
            isinstance(c, str) or _is_index(c) for c in self.columns
        ):
            raise ParameterError(f"Files(columns=...) must be a list of column names (0-based indices for a .npy file) "
                                 f"or None; got {self.columns!r}")
        if self.format is not None and self.format not in FILE_FORMATS:
            raise ParameterError(f"Files(format=...) must be one of {list(FILE_FORMATS)} or None; got {self.format!r}")
        if self.delimiter is not None:
            check_delimiter(self.delimiter, "Files(delimiter=...)")
        if not isinstance(self.header, (bool, np.bool_)):
            raise ParameterError(f"Files(header=...) must be True or False; got {self.header!r}")


FILE_FORMATS = ("parquet", "csv", "ipc", "npy")
FORMAT_NAMES = {"parquet": "a Parquet file", "csv": "a CSV file", "ipc": "an Arrow file", "npy": "a .npy file"}


def check_delimiter(delimiter: object, what: str = "delimiter") -> str:
    """One character other than a newline, quote or carriage return (pyarrow's rule)."""
    if not isinstance(delimiter, str) or len(delimiter) != 1 or delimiter in "\n\r\"":
        raise ParameterError(
            f"{what} must be one character such as ',', ';' or '\\t' (not a quote or a line break); got {delimiter!r}"
        )
    return delimiter


def _is_index(c: object) -> bool:
    """Whether c is a column index (an int, not a bool); the .npy reader refuses one
    outside 0..width-1 with the file's range (``npy.column_indices``)."""
    return isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_))


def _is_paths(X: object) -> bool:
    if isinstance(X, (str, os.PathLike)):
        return True
    return isinstance(X, (list, tuple)) and bool(X) and all(isinstance(p, (str, os.PathLike)) for p in X)


def is_source(X: object) -> bool:
    """Whether X is a Source object (has the protocol's chunks, take, n_rows, n_features)."""
    return not isinstance(X, Tensor) and all(hasattr(X, a) for a in ("chunks", "take", "n_rows", "n_features"))


def is_file_input(X: object) -> bool:
    """Whether X names files (a path, glob, folder, list of paths or a Files)."""
    return isinstance(X, Files) or _is_paths(X)


def has_column_names(X: object) -> bool:
    """Whether X is files whose columns have names (every format but .npy)."""
    if not is_file_input(X):
        return False
    if isinstance(X, Files) and X.format is not None:
        return X.format != "npy"
    first = X.path if isinstance(X, Files) else X
    first = first if isinstance(first, (str, os.PathLike)) else first[0]
    return not os.fspath(first).lower().endswith(".npy")


def input_files(X: object) -> list[str]:
    """The existing files X reads ([] for in-memory data or paths that do not resolve)."""
    if not is_file_input(X):
        return []
    try:
        return expand_paths(X.path, X.format)[0] if isinstance(X, Files) else expand_paths(X)[0]
    except DataError:
        return []


def refuse_read_later(path: str, X: object, name: str = "output") -> None:
    """Refuse an output at ``path`` that a later run on the same input X (a folder or a
    glob, or a list or Files of them) would read as data beside the data's own files:
    predictions, imputed rows or a table added to the data set without a word, or a
    format that no longer mixes. Raises :class:`OutputPathError` naming the input."""
    if not is_file_input(X) and not isinstance(X, (str, os.PathLike)):
        return
    every = isinstance(X, Files) and X.format is not None
    specs = X.path if isinstance(X, Files) else X
    for spec in [specs] if isinstance(specs, (str, os.PathLike)) else specs:
        if read_later(path, os.fspath(spec), every):
            folder = os.path.isdir(os.fspath(spec))
            place = "inside the input folder" if folder else "matched by the input pattern"
            other = "a name starting with '.' or '_', which a folder's reads skip" if folder else \
                "a name the pattern does not match"
            raise OutputPathError(f"{name} {path}: is {place} {os.fspath(spec)!r}, so a later run on that data would "
                                  f"read it as data too; write it elsewhere, or under {other}")


def describe_input(X: object) -> str:
    """How error messages name X: the path for files, "X" otherwise."""
    if isinstance(X, Files):
        X = X.path
    if isinstance(X, (str, os.PathLike)):
        return os.fspath(X)
    if _is_paths(X):
        return f"{os.fspath(X[0])} (and {len(X) - 1} more)" if len(X) > 1 else os.fspath(X[0])
    return "X"


def _open_files(
    spec: Files, *, dtype, device, memory_budget: int, chunk_size: int | None, keep: list[str], sample_weight=None,
    shift=None, gaps: bool = False, schema: Schema | None = None, labels=None, offer_fiml: bool = True,
) -> Source:
    files, fmt = expand_paths(spec.path, spec.format)
    _check_csv_options(spec, fmt, files[0])
    itemsize = torch.finfo(dtype).bits // 8
    if fmt == "npy":
        if len(files) > 1:
            raise DataError(f"{files[0]} and {len(files) - 1} more .npy files: bigem reads one .npy file at a time; "
                            "concatenate them or write Parquet")
        if keep or isinstance(sample_weight, str):
            raise DataError(f"{files[0]}: a .npy file has no column names, so id columns and a sample_weight "
                            "column do not apply; pick its features with columns= as 0-based indices")
        if isinstance(labels, LabelColumn):
            raise DataError(f"{files[0]}: a .npy file has no column names, so it has no label column; pass y as an "
                            "array (one label per row, -1 unlabelled)")
        if is_url(files[0]):
            raise DataError(f"{files[0]}: bigem reads .npy files from a local disk only (by positioned reads); "
                            "copy it to a local path, or write the rows to Parquet")
        source: Source = NpySource(files[0], dtype, device, chunk_rows=1, columns=spec.columns)
        if sample_weight is not None:  # in memory, one per row
            source.weight = check_sample_weight(sample_weight, source.n_rows, torch.float64, torch.device("cpu"))
        source.chunk_rows = chunk_size or chunk_rows_for_budget(  # whole rows of the file are read
            memory_budget, source.file_width, streamed_bytes_per_value(itemsize, source.file_itemsize)
        )
        source.set_shift(shift)
        return source
    from .tables import CsvOptions, TableSource

    if spec.columns is not None and not all(isinstance(c, str) for c in spec.columns):
        raise DataError(f"{files[0]}: columns={list(spec.columns)} holds indices, but {FORMAT_NAMES.get(fmt, fmt)} "
                        f"has column names: choose its columns by name")
    table = TableSource(
        files,
        fmt,
        dtype=dtype,
        device=device,
        chunk_rows=1,
        columns=None if spec.columns is None else list(spec.columns),
        keep=keep,
        csv=CsvOptions(spec.delimiter, spec.header),
        weight_column=sample_weight if isinstance(sample_weight, str) else None,
        gaps=gaps,
        schema=schema,
        labels=labels if isinstance(labels, LabelColumn) else None,
        offer_fiml=offer_fiml,
    )
    if sample_weight is not None and not isinstance(sample_weight, str):  # in memory, one per row
        table.weight = check_sample_weight(sample_weight, table.n_rows, torch.float64, torch.device("cpu"))
    # beside our chunks, pyarrow's decoded batch (up to float64) is in flight
    table.chunk_rows = chunk_size or chunk_rows_for_budget(memory_budget, table.n_features, streamed_bytes_per_value(itemsize, 8))
    table.set_shift(shift)
    return table


def _check_csv_options(spec: Files, fmt: str, first: str) -> None:
    if fmt != "csv" and (spec.delimiter is not None or not spec.header):
        what = FORMAT_NAMES.get(fmt, fmt)
        raise DataError(f"{first}: delimiter= and header= apply to CSV files, and this is {what}; "
                        "leave them out (a Parquet, Arrow or .npy file says its own columns)")


def _id_values(name: str, series) -> object:
    """A DataFrame's id column for an output file: one Arrow array of one type, its
    missing values null (NaN in a column of strings too), typed once for the whole
    column so that every chunk writes the same schema. A column pyarrow cannot type (ints
    and strings mixed) is refused before any computing, naming the first two types."""
    try:
        import pyarrow as pa
    except ImportError:  # pragma: no cover - output files need pyarrow, and say so
        return series.to_numpy()
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        pass
    firsts: dict[str, int] = {}
    for row, v in enumerate(series.to_numpy()):
        if v is None or isinstance(v, float) and v != v:
            continue
        firsts.setdefault(type(v).__name__, row)
    found = sorted(firsts.items(), key=lambda kv: kv[1])
    if len(found) > 1:
        (a, i), (b, j) = found[:2]
        what = f"mixes values of different types ({a} at row {i}, {b} at row {j}); an output column holds one type"
    else:
        what = f"holds values an output file cannot store ({found[0][0]} at row {found[0][1]})" if found else "cannot be stored"
    raise DataError(f"id column {name!r} {what}: convert it first, e.g. X[{name!r}].astype(str)")


def _weight_column_of_frame(frame, name: str, columns: list[str] | None):
    """A DataFrame's weight column as an array, and the frame without it (unless columns=
    picks the features anyway)."""
    available = [str(c) for c in frame.columns]
    if name not in available:
        raise DataError(f"sample_weight={name!r}: X has no such column; it has {available}")
    check_weight_not_a_feature(name, columns)
    weights = _dataframe_to_numpy(_select_frame_columns(frame, [name]))[:, 0]
    rest = frame if columns is not None else frame[[c for c in frame.columns if str(c) != name]]
    return rest, weights


def _select_frame_columns(X, columns: list[str]):
    available = [str(c) for c in X.columns]
    missing = [c for c in columns if c not in available]
    if missing:
        raise DataError(f"X has no column(s) {missing}; it has {available}. Check the columns= you passed")
    listed = sorted({c for c in columns if list(columns).count(c) > 1})
    if listed:
        raise DataError(f"columns lists {listed} more than once; name each feature once")
    twice = sorted({c for c in columns if available.count(c) > 1})
    if twice:
        where = ", ".join(f"{c!r} at positions {[i for i, a in enumerate(available) if a == c]}" for c in twice)
        raise DataError(
            f"X has more than one column named {where}; selecting by name is ambiguous: rename or drop the "
            "duplicates (df.loc[:, ~df.columns.duplicated()] keeps the first of each)"
        )
    return X[list(columns)]


def unmasked(X):
    """A torch ``MaskedTensor`` (pomegranate's missing values) as a tensor with NaN where
    its mask hides an entry: bigem's gaps, which ``missing_values='fiml'`` models (and
    the NaN check refuses otherwise, saying so). Anything else as it is."""
    if type(X).__name__ != "MaskedTensor" or not isinstance(X, torch.Tensor):
        return X
    data, mask = X.get_data(), X.get_mask()
    if not data.is_floating_point():
        data = data.double()
    return torch.where(mask, data, torch.full_like(data, float("nan"))).detach()


def open_source(
    X: object,
    *,
    dtype: torch.dtype,
    device: torch.device,
    memory_budget: int | str,
    chunk_size: int | None = None,
    sample_weight: object | None = None,
    min_rows: int = 1,
    columns: list[str] | None = None,
    keep: list[str] | None = None,
    cache_bytes: int = 0,
    shift: object = None,
    identify: bool = False,
    missing_values: str | None = "error",
    every_column: bool = False,
    hold_on_host: bool = False,
    schema: Schema | None = None,
    labels: np.ndarray | LabelColumn | None = None,
    by: str | None = None,
) -> Source:
    """A validated source over X: an array, tensor, DataFrame, a path/glob/folder/list of
    paths, a :class:`Files`, or any object with the Source protocol.

    ``missing_values``: 'error' refuses NaN and nulls (and names missing_values='fiml'
    in the error); 'fiml' reads them as missing values (NaN in the chunks), refusing only
    infinities, and with ``every_column`` (a fit) a column that no row observes; None
    (an estimator without that option) refuses them and says to drop or fill them.

    In-memory data is checked for NaN/inf now; streamed data on its first pass (see
    :mod:`.firstpass`), which then also keeps it in memory if it fits ``cache_bytes``.
    ``columns`` selects features by name; ``keep`` names columns carried through to
    ``Chunk.extra`` (files and DataFrames only). ``sample_weight``: one weight per row
    (an array, also beside files), or the name of a column of X that holds them (files
    and DataFrames; then not a feature). ``shift``: None, "auto" or a vector, subtracted
    from the rows before the cast to ``dtype`` (see :func:`.arrays.choose_shift`); the
    source's ``shift`` says which vector was (None: none). ``identify``: warn about a
    feature that looks like a row identifier when ``columns`` is None (fitting: see
    :mod:`.identifiers`). ``memory_budget``: bytes, or 'auto' (see
    :mod:`bigem._core.chunking`): the default host budget, and on a CUDA device (without
    ``chunk_size``) a request, ``source.measure_chunks``, that the engine size the chunks
    by measuring the first task of each kind. ``hold_on_host``: in-memory data stays in host memory and
    moves to ``device`` a chunk or a part at a time (each process of a group moves only
    its own part).

    ``schema`` (see :mod:`.schema`): how feature columns that are not plain numbers are
    read (categories as codes; binary and count columns checked). ``labels``: the class
    codes of semi-supervised fitting, an (n,) int64 array (-1: unlabelled), or a
    :class:`.labels.LabelColumn` of X (files and DataFrames; then not a feature); the
    chunks carry them in ``Chunk.label``. ``by``: the estimator, named in shape errors.
    """
    keep = list(keep or [])
    X = unmasked(X)
    name = describe_input(X)
    gaps, offer = missing_values == "fiml", missing_values is not None
    measure = memory_budget == AUTO and chunk_size is None and torch.device(device).type == "cuda"
    memory_budget = host_budget(memory_budget)
    if _is_paths(X) or isinstance(X, Files):
        spec = X if isinstance(X, Files) else Files(X)
        if columns is not None:
            if spec.columns is not None and list(spec.columns) != list(columns):
                raise DataError(f"columns={list(columns)} disagrees with the Files' columns {list(spec.columns)}; give one")
            spec = dataclasses.replace(spec, columns=list(columns))
        source = _open_files(spec, dtype=dtype, device=device, memory_budget=memory_budget,
                             chunk_size=chunk_size, keep=keep, sample_weight=sample_weight, shift=shift, gaps=gaps,
                             schema=schema, labels=labels, offer_fiml=offer)
        check_shape((source.n_rows, source.n_features), name=name, min_rows=min_rows, by=by)
        outer = FirstPassSource(source, name, cache_bytes, dtype, device, identify=identify, gaps=gaps,
                                every_column=every_column, schema=schema, offer_fiml=offer)
        if measure:  # a file's chunks: within the host budget, copied ahead to the device
            outer.measure_chunks = MeasuredChunks(torch.device(device), source.chunk_rows, READ_AHEAD + 2)
        return _labelled(outer, labels)
    if is_source(X):
        if columns is not None or keep or sample_weight is not None or isinstance(labels, LabelColumn):
            raise DataError("columns=, id columns, sample_weight and label columns do not apply to a Source object; "
                            "build the source with them")
        check_shape((X.n_rows, X.n_features), name=name, min_rows=min_rows, by=by)
        return _labelled(FirstPassSource(X, name, cache_bytes, dtype, device, shift, gaps=gaps,
                                         every_column=every_column, schema=schema, offer_fiml=offer), labels)
    refuse_sparse(X)
    if X is None or isinstance(X, bytes):
        raise DataError(
            f"X must be an array, tensor, DataFrame, a path (file, folder or glob) or a Source; got {X!r}"
        )
    if type(X).__name__ == "Tokens" and type(X).__module__.startswith("bigem."):
        raise DataError("Tokens (documents as lists of word ids) are read by MultinomialMixture and MultinomialHMM, "
                        "the families of word counts; this estimator reads rows of numbers")
    X = native_frame(X)  # polars, Arrow: read as a pandas frame (dictionary columns as categoricals)
    is_frame = hasattr(X, "columns") and hasattr(X, "dtypes")
    if isinstance(labels, LabelColumn):
        if not is_frame:
            raise DataError(f"y={labels.name!r} names a column, but X has no column names; pass the labels as an "
                            "array (one per row, -1 unlabelled), or X as a DataFrame or files")
        X, labels = _label_column_of_frame(X, labels, columns, sample_weight)
    if isinstance(sample_weight, str):
        if not is_frame:
            raise DataError(f"sample_weight={sample_weight!r} names a column, but X has no column names; pass "
                            "the weights as an array (one per row), or X as a DataFrame or files")
        X, sample_weight = _weight_column_of_frame(X, sample_weight, columns)
    extra = None
    if columns is not None or keep:
        if not is_frame:
            raise DataError("columns= and id columns select by name, but X has no column names; "
                            "pass a DataFrame or a file with a header, or slice the array yourself")
        frame = X
        if keep:
            _select_frame_columns(frame, keep)
            extra = {k: _id_values(k, frame[k]) for k in keep}
        if columns is not None:
            X = _select_frame_columns(frame, list(columns))
        else:  # an id column carried beside the rows is no feature
            X = _select_frame_columns(frame, [c for c in frame.columns if c not in keep])
    names = feature_names_of(X)
    watch = IdentifierWatch(frame_candidates(X), "X") if identify and is_frame and columns is None else None
    held = torch.device("cpu") if hold_on_host else device
    if isinstance(X, Tensor):
        if X.is_complex():
            raise DataError(f"Complex data not supported: X has dtype {X.dtype}; pass real numbers.")
        check_shape(tuple(X.shape), min_rows=min_rows, by=by)
        offset = choose_shift(X[:PROBE_ROWS], X.dtype, dtype, shift)
        x = X.detach().to(device=held, dtype=dtype) if offset is None else as_tensor(X, dtype, held, offset)
        if schema is not None and schema.encodes():
            x = schema.encode_codes(X.detach().to("cpu", torch.float64)).to(device=held, dtype=dtype)
    elif schema is not None:
        arr = as_table(X, is_frame)
        check_shape(arr.shape, min_rows=min_rows, by=by)
        _check_width(schema, arr.shape[1])
        arr = schema.encode_frame(X) if is_frame else schema.encode_array(arr)
        offset = None
        x = as_tensor(arr, dtype, held)
    else:
        arr = np.asarray(_dataframe_to_numpy(X) if is_frame else to_numeric_array(X))
        check_shape(arr.shape, min_rows=min_rows, by=by)
        offset = choose_shift(arr[:PROBE_ROWS], arr.dtype, dtype, shift)
        x = as_tensor(arr, dtype, held, offset)
    # weights stay float64 whatever the compute dtype: a model normalises each chunk's
    # weights before its arithmetic, so 1e-50 or 1e37 lose nothing (float32 lost both)
    weight = None if sample_weight is None else check_sample_weight(sample_weight, x.shape[0], torch.float64, device)
    itemsize = torch.finfo(dtype).bits // 8
    rows = chunk_size or chunk_rows_for_budget(memory_budget, x.shape[1], 3 * itemsize)  # a view and the E-step's scratch
    codes = None
    if labels is not None:
        codes = _check_codes(labels, x.shape[0])
        codes = torch.from_numpy(codes).to(held)
    source = TensorSource(x, weight, rows, names, extra, offset, device=device, labels=codes)
    if measure:  # rows on the device are views; rows held on the host are copied ahead
        source.measure_chunks = MeasuredChunks(torch.device(device), None, 0 if x.is_cuda else READ_AHEAD + 2)
    # messages name a frame's column by its label, whatever its type (a frame whose labels are
    # not all strings has no feature names, but its reader finds column 20 as df[20])
    labels = names if names is not None or not is_frame else frame_columns(X)
    try:
        validate_finite(TensorSource(x, None, rows, labels), "X", gaps, every_column, offer)  # where the rows are held
    except DataError:
        _refuse_beyond_the_dtype(X, x.dtype, labels, gaps)  # a finite value the cast made infinite, named as it is
        raise
    if watch is not None:
        watch.update(x)
        watch.finish()
    if schema is not None:
        _check_schema(source, schema, x.shape[1])
    return source


def _refuse_beyond_the_dtype(X: object, dtype: torch.dtype, names, gaps: bool = False) -> None:
    """On the error path of a NaN/inf check: where X itself is finite at the first value
    the cast to ``dtype`` made infinite (1e39 in float32), say so, and how to keep it (a
    NaN, unless ``gaps`` allows it, is said first, as it is without the cast)."""
    if dtype == torch.float64:
        return
    values = X.detach().cpu().double().numpy() if isinstance(X, Tensor) else None
    if values is None:
        try:
            values = np.asarray(_dataframe_to_numpy(X) if hasattr(X, "columns") and hasattr(X, "dtypes") else X,
                                dtype=np.float64)
        except (TypeError, ValueError):
            return
    if values.ndim != 2 or not gaps and np.isnan(values).any():
        return
    top = float(torch.finfo(dtype).max)
    with np.errstate(invalid="ignore"):
        beyond = np.isfinite(values) & (np.abs(values) > top)
    if beyond.any():
        row, col = (int(i) for i in np.argwhere(beyond)[0])
        raise DataError(f"X holds {values[row, col]:.6g} at row {row}, column {column_label(names, col)!r}, beyond "
                        f"the range of {str(dtype).replace('torch.', '')} (about {top:.3g}), which the fit computes in: "
                        "pass dtype='float64', or rescale X") from None


def as_table(X: object, is_frame: bool = False) -> np.ndarray:
    """X as a 2-D array for shape checks and encoding (objects kept: strings are categories)."""
    if is_frame:
        return np.empty((len(X), len(X.columns)), dtype=np.uint8)  # the shape only; encode_frame reads the columns
    if X is None or isinstance(X, (bytes, dict)):
        raise DataError(f"X must be an array, tensor, DataFrame, a path (file, folder or glob) or a Source; got "
                        f"{type(X).__name__}")
    try:
        arr = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise DataError(f"X could not be converted to an array: {exc}. Pass a 2-D array in which every row has the "
                        "same number of values.") from None
    if np.iscomplexobj(arr):
        raise DataError(f"Complex data not supported: X has dtype {arr.dtype}; pass real numbers.")
    return arr


def _check_width(schema: Schema, width: int) -> None:
    if width != schema.n_features:
        raise DataError(f"X has {width} features, but {schema.owner} is expecting {schema.n_features} features as input.")


def _check_schema(source: TensorSource, schema: Schema, width: int) -> None:
    """The schema's rules over the rows held in memory, in one pass (on a GPU, read back
    once: see ``validate.RulePass``)."""
    _check_width(schema, width)
    rules = RulePass(schema.rule())
    for chunk in source.chunks():
        rules.see(chunk)
    rules.finish(source.chunks)


def _check_codes(codes: np.ndarray, n_rows: int) -> np.ndarray:
    codes = np.asarray(codes, dtype=np.int64)
    if codes.shape != (n_rows,):
        raise DataError(f"y has {codes.shape[0]} labels but X has {n_rows} rows; pass one label per row of X "
                        "(-1 for an unlabelled row)")
    return codes


def _labelled(source: Source, labels) -> Source:
    """The source with in-memory class codes attached to its chunks (a label column of files
    is read by the files' source itself)."""
    if labels is None or isinstance(labels, LabelColumn):
        return source
    return LabelledSource(source, _check_codes(labels, source.n_rows))


def _label_column_of_frame(frame, labels: LabelColumn, columns: list[str] | None, sample_weight):
    """A DataFrame's label column as codes, and the frame without it (unless columns= picks
    the features anyway)."""
    available = [str(c) for c in frame.columns]
    if labels.name not in available:
        raise DataError(f"y={labels.name!r}: X has no such column; it has {available}")
    if columns is not None and labels.name in [str(c) for c in columns]:
        raise DataError(f"y={labels.name!r} is also in columns=; a column is either a feature or the labels: leave "
                        "it out of columns=")
    if sample_weight == labels.name:
        raise DataError(f"y and sample_weight both name column {labels.name!r}; the labels and the weights are "
                        "different columns")
    series = _select_frame_columns(frame, [labels.name]).iloc[:, 0]
    codes = labels.codes(series)
    rest = frame if columns is not None else frame[[c for c in frame.columns if str(c) != labels.name]]
    return rest, codes


def sequence_lengths(X: object, column: str) -> tuple[np.ndarray, list[str]]:
    """The lengths of the sequences of X, runs of equal values of its ``column`` in row
    order (one pass over that column only), and X's other columns (the default features).

    X: a DataFrame, or files with column names (Parquet, CSV, Arrow, or a :class:`Files`).
    """
    from .sequences import lengths_from_ids

    column = str(column)
    if is_file_input(X):
        from .tables import column_names, column_values

        files, fmt, csv = _named_files(X, "so it has no sequence id column; pass lengths= (an array or a .npy file "
                                          "of sequence lengths) instead")
        lengths = lengths_from_ids(column_values(files, fmt, column, csv=csv), column)
        return lengths, [n for n in column_names(files[0], fmt, csv) if n != column]
    X = native_frame(X)
    if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
        raise DataError(
            f"sequence_column={column!r} names a column, but X has no column names; pass a DataFrame or files "
            "with a header, or pass lengths= instead"
        )
    available = [str(c) for c in X.columns]
    if column not in available:
        raise DataError(f"X has no column {column!r}; it has {available}. Check the sequence_column you passed")
    _select_frame_columns(X, [column])  # one column of that name
    series = X[X.columns[available.index(column)]]
    missing = np.asarray(series.isna())
    if missing.any():
        raise DataError(
            f"X: column {column!r} has a null (missing) value at row {int(np.argmax(missing))} (0-based); "
            "every row needs a sequence id"
        )
    lengths = lengths_from_ids([(series.to_numpy(), "X", 0)], column)
    return lengths, [c for c in available if c != column]


def id_column_blocks(X: object, name: str):
    """The values of X's id column ``name`` in row order, block by block (Arrow arrays of
    one type for the column), for outputs computed elsewhere (on a Dask cluster) and
    written beside them here. X: files with column names, a DataFrame or a Dask
    DataFrame."""
    from .dask import PartitionIds, is_dask_collection

    if is_file_input(X):
        from .tables import column_batches

        files, fmt, csv = _named_files(X, "so it has no id column; leave id_column out")
        for values, _, _ in column_batches(files, fmt, name, csv=csv):
            yield values
        return
    if is_dask_collection(X):
        ids = PartitionIds(X, name)
        for i in range(ids.series.npartitions):
            yield ids.values(ids.series.partitions[i].compute())
        return
    X = native_frame(X)
    if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
        raise DataError(f"id_column={name!r} selects a column by name, but X has no column names; pass a DataFrame "
                        "or files with a header, or leave id_column out")
    available = [str(c) for c in X.columns]
    if name not in available:
        raise DataError(f"X has no column {name!r} (the id_column); it has {available}")
    yield _id_values(name, X[X.columns[available.index(name)]])


class RowsInOrder:
    """Blocks of one column (numpy or Arrow arrays), handed out ``n`` rows at a time in
    row order, whatever the blocks' sizes."""

    def __init__(self, blocks) -> None:
        self._blocks = iter(blocks)
        self._held = None

    def take(self, n: int):
        from .sequences import _joined

        parts, have, held = [], 0, self._held
        while have < n:
            held = next(self._blocks) if held is None else held
            need = n - have
            parts.append(held[:need])
            have += min(need, len(held))
            held = held[need:] if len(held) > need else None
        self._held = held
        return _joined(parts) if parts else np.zeros(0)


def _named_files(X: object, instead: str):
    """(files, format, CSV options) of file input X, whose columns are read by name; a
    .npy file has none: a DataError that says what to do ``instead``."""
    from .tables import CsvOptions

    spec = X if isinstance(X, Files) else Files(X)
    files, fmt = expand_paths(spec.path, spec.format)
    _check_csv_options(spec, fmt, files[0])
    if fmt == "npy":
        raise DataError(f"{files[0]}: a .npy file has no column names, {instead}")
    return files, fmt, CsvOptions(spec.delimiter, spec.header)


def named_columns(X: object, names: list[str]) -> tuple[np.ndarray | None, list[str]]:
    """The columns ``names`` of X and X's other columns. X a DataFrame: the columns as
    one (n, len(names)) float64 array, a null read as NaN. X files with column names:
    None, as the columns stay in the files, to be read with the rows (a source's
    ``keep``) or alone (:func:`named_column_blocks`). A missing column is a DataError
    naming it, and so is a non-numeric one of a DataFrame."""
    names = [str(n) for n in names]
    if is_file_input(X):
        from .tables import column_names

        files, fmt, csv = _named_files(X, "pass the structural columns as an array")
        available = column_names(files[0], fmt, csv)
        absent = [n for n in names if n not in available]
        if absent:
            raise DataError(f"{files[0]}: no column {absent[0]!r}; the file has {available}")
        return None, [n for n in available if n not in names]
    X = native_frame(X)
    if not (hasattr(X, "columns") and hasattr(X, "dtypes")):
        raise DataError("the structural columns are named, but X has no column names; pass a DataFrame or files with "
                        "a header, or pass them as an array")
    available = [str(c) for c in X.columns]
    absent = [n for n in names if n not in available]
    if absent:
        raise DataError(f"X has no column {absent[0]!r}; it has {available}")
    frame = _select_frame_columns(X, names)
    out = [_numeric(frame.iloc[:, j].to_numpy(dtype=np.float64, na_value=np.nan), names[j], "X") for j in
           range(len(names))]
    return np.stack(out, 1), [c for c in available if c not in names]


def named_column_blocks(X: object, name: str) -> Iterator[tuple[np.ndarray, int]]:
    """One named column of files X, in row order, without reading any other: (float64
    values, a null as NaN; the first row's index in the whole input) blocks. A column that
    is not numeric is a DataError naming it and its file."""
    from .tables import column_values

    files, fmt, csv = _named_files(X, "pass the structural columns as an array")
    row = 0
    for values, path, _ in column_values(files, fmt, name, csv=csv, nulls=True):
        yield _numeric(values, name, path), row
        row += len(values)


def _numeric(values: np.ndarray, name: str, where: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise DataError(f"{where}: column {name!r} is not numeric; encode a categorical outcome as the codes 0, 1, "
                        "...") from None


def validate_finite(source: Source, name: str = "X", gaps: bool = False, every_column: bool = False,
                    offer_fiml: bool = True) -> None:
    """One pass: raise with the count of NaN/inf and the first offending row. With ``gaps``
    NaN is a missing value and only infinities are refused; with ``every_column`` too, a
    column that no row observes is refused, by name. ``offer_fiml``: the error may name
    missing_values='fiml' (the estimator has it)."""
    seen = ColumnsSeen(source.n_features) if gaps and every_column else None
    pending = DeviceCheck(gaps)  # kept where the rows are, read back once (no wait per chunk on a GPU)
    for chunk in source.chunks():
        pending.add(chunk.x)
        if seen is not None:
            seen.add(chunk.x)
    if pending.any_bad():  # the error path: count them and find the first
        n_nan = n_inf = 0
        first = None
        for chunk in source.chunks():
            found = check_values(chunk.x, chunk.row_start, gaps)
            if found:
                n_nan += found[0]
                n_inf += found[1]
                first = found[2:] if first is None else first
        if first is not None:  # else finite values whose sum overflowed
            raise_not_finite(n_nan, n_inf, first[0], name, offer_fiml=offer_fiml,
                             column=column_label(getattr(source, "feature_names", None), first[1]))
    if seen is not None:
        seen.check(source.feature_names, name)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def check_sample_weight(sample_weight: object, n_rows: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """1-D, one weight per row, finite, non-negative, not all zero (scikit-learn's messages)."""
    if isinstance(sample_weight, (dict, set, frozenset, bytes)):
        raise NonNumericDataError(
            f"sample_weight must be an array of numbers, one per row of X, or the name of a column of X; "
            f"got a {type(sample_weight).__name__}"
        )
    try:
        w = np.asarray(sample_weight.cpu() if isinstance(sample_weight, Tensor) else sample_weight, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise NonNumericDataError(
            f"sample_weight could not be converted to an array of numbers ({_first_line(exc)}); pass one number "
            f"per row of X ({n_rows} rows), or the name of a column of X"
        ) from None
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
    with np.errstate(over="ignore"):  # an overflowing total is refused below, by name
        total = w.sum()
    if total <= 0:
        raise DataError(
            "Sample weights must contain at least one non-zero number: sample_weight sums to zero; "
            "give at least one row a positive weight."
        )
    if not np.isfinite(total):
        raise DataError(
            f"sample_weight sums to more than float64 holds (its largest is {w.max():.3g}): the total weight, n in "
            "the criteria, cannot be represented; rescale the weights (frequency weights count rows)"
        )
    if not w.flags.writeable:  # a pandas Series' own read-only values (torch warns on those)
        w = w.copy()
    return torch.from_numpy(w).to(device=device, dtype=dtype)
