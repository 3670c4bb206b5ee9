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
from ..sources import Files, is_file_input
from ..sources.paths import expand_paths


def is_npy(X) -> bool:
    """Whether X names .npy data: a .npy path, a Files of format 'npy', or a folder or
    glob of .npy files (by their extension, as reading them decides)."""
    if not is_file_input(X):
        return False
    if isinstance(X, Files) and X.format is not None:
        return X.format == "npy"
    try:
        return expand_paths(X.path if isinstance(X, Files) else X)[1] == "npy"
    except (DataError, OSError, TypeError, ValueError):
        return False  # reading X says what is wrong with it


def npy_indices(X, columns) -> list[int] | None:
    """The 0-based indices of .npy data X that ``columns`` (else a Files' own columns)
    pick (None: X is no .npy data, no columns are given, or they are not indices, which
    reading X then refuses)."""
    if columns is None and isinstance(X, Files):
        columns = X.columns
    if columns is None or isinstance(columns, (str, bytes)) or not is_npy(X):
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
    if fitted is None or not is_npy(X):
        return None
    fitted = [int(i) for i in fitted]
    given = npy_indices(X, columns)
    if columns is None and given is None:
        return fitted
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
