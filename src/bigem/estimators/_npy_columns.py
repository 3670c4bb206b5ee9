"""The columns of a .npy file a fit read by index, kept as ``feature_indices_``.

A file with a header keeps its feature names (``feature_names_in_``), and inference on
such a file reads those columns unless told. A .npy file has no names: ``columns=[2, 0]``
picks columns by position, and without this a model fitted so read any two columns at
prediction, swapped ones included, without a word. The fit keeps the indices; inference
on a .npy file reads them where no columns are given and refuses others.
"""

from __future__ import annotations

import numpy as np

from .._core.errors import DataError, ModelFileError
from ..sources import has_column_names, is_file_input


def npy_indices(X, columns) -> list[int] | None:
    """``columns`` as the 0-based indices of a .npy file X (None: X is no .npy file, no
    columns were given, or they are not indices, which reading X then refuses)."""
    if columns is None or isinstance(columns, (str, bytes)) or not is_file_input(X) or has_column_names(X):
        return None
    try:
        return [int(c) for c in columns]
    except (TypeError, ValueError):
        return None


def remember(est, X, columns) -> None:
    """After a fit: ``feature_indices_`` when X was a .npy file read by ``columns``."""
    indices = npy_indices(X, columns)
    if indices is not None:
        est.feature_indices_ = np.asarray(indices, dtype=np.int64)
    else:
        est.__dict__.pop("feature_indices_", None)


def to_read(est, X, columns) -> list[int] | None:
    """At inference on a .npy file: the fitted indices where ``columns`` is None; a
    DataError where other columns are given; None (read as asked) otherwise."""
    fitted = getattr(est, "feature_indices_", None)
    if fitted is None or not is_file_input(X) or has_column_names(X):
        return None
    fitted = [int(i) for i in fitted]
    if columns is None:
        return fitted
    given = npy_indices(X, columns)
    if given is not None and given != fitted:
        raise DataError(f"{type(est).__name__} was fitted on columns {fitted} of a .npy file, but columns={given} "
                        f"were given; pass columns={fitted}, or give no columns= to read those")
    return None


def state(est) -> dict:
    """The model file's field (none when the fit did not read a .npy file by index)."""
    indices = getattr(est, "feature_indices_", None)
    return {} if indices is None else {"feature_indices_": [int(i) for i in indices]}


def restore(est, stored, width: int) -> None:
    """``feature_indices_`` from a model file's fitted state (``stored``: a _params.Stored)."""
    indices = stored.numbers("feature_indices_", None)
    if indices is None:
        est.__dict__.pop("feature_indices_", None)
        return
    if len(indices) != width or any(i < 0 or i != int(i) for i in indices):
        raise ModelFileError(f"feature_indices_ {indices} are not {width} column indices")
    est.feature_indices_ = np.asarray(indices, dtype=np.int64)
