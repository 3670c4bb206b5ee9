"""Class labels of semi-supervised fitting, read beside the rows.

scikit-learn's convention (``sklearn.semi_supervised``): y holds each row's class label,
or -1 for an unlabelled row; bigem also reads a missing value (None, NaN, an Arrow null)
as unlabelled. The classes are the distinct labels, sorted; a row's code is its label's
index among them (-1: unlabelled). Codes travel with the rows, in ``Chunk.label``, from
memory (:class:`LabelledSource`, ``TensorSource``), from a column of files or
DataFrames, and from Dask partitions.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.types import Chunk
from .identity import digest
from .parts import CutByRows
from .schema import as_categories, category_key, encode_values, observed

UNLABELLED = -1


def _unlabelled(values) -> np.ndarray:
    """Which entries are unlabelled: -1, None, NaN or null."""
    if hasattr(values, "type") and hasattr(values, "null_count"):  # Arrow
        import pyarrow as pa
        import pyarrow.compute as pc

        t = values.type.value_type if pa.types.is_dictionary(values.type) else values.type
        nulls = values.is_null().to_numpy(zero_copy_only=False)
        if pa.types.is_integer(t) or pa.types.is_floating(t):
            flat = values.dictionary_decode() if pa.types.is_dictionary(values.type) else values
            return nulls | pc.equal(flat, -1).fill_null(False).to_numpy(zero_copy_only=False)
        return nulls
    arr = np.asarray(values)
    if arr.dtype.kind in "iu":
        return arr == UNLABELLED
    if arr.dtype.kind == "f":
        return np.isnan(arr) | (arr == UNLABELLED)
    if arr.dtype.kind == "b":
        return np.zeros(arr.shape, bool)
    if arr.dtype.kind in "US":
        return np.zeros(arr.shape, bool)
    out = np.empty(arr.shape, bool)
    for i, v in enumerate(arr.reshape(-1)):
        out[i] = v is None or (isinstance(v, float) and v != v) or (
            not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer, float, np.floating)) and v == -1
        ) or type(v).__name__ == "NAType"
    return out


def as_labels(y, n_rows: int | None = None, name: str = "y") -> np.ndarray:
    """y as a 1-D numpy array (a list, array, Series or tensor), of ``n_rows`` entries."""
    if isinstance(y, Tensor):
        y = y.detach().cpu().numpy()
    if hasattr(y, "to_numpy") and not hasattr(y, "columns"):
        y = y.to_numpy()
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name} could not be read as one label per row ({exc}); pass a 1-D array") from None
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise DataError(f"{name} must be 1-D, one class label per row (-1: unlabelled); got shape {arr.shape}")
    if n_rows is not None and arr.shape[0] != n_rows:
        raise DataError(f"{name} has {arr.shape[0]} labels but X has {n_rows} rows; pass one label per row of X "
                        "(-1 for an unlabelled row)")
    if arr.dtype.kind == "c":
        raise DataError(f"{name} holds complex numbers; class labels are integers, strings or booleans")
    return arr


def learn_classes(values, name: str = "y") -> set:
    """The distinct class labels among the labelled entries of one block of labels."""
    unl = _unlabelled(values)
    if unl.all():
        return set()
    if hasattr(values, "type") and hasattr(values, "null_count"):
        import pyarrow as pa

        labelled = values.filter(pa.array(~unl))
    else:
        labelled = np.asarray(values)[~unl]
    try:
        keys = observed(labelled, name)
    except DataError as exc:
        text = f"{exc}".replace("a categorical column takes", "class labels are")
        # a label is no column of the model: its advice is the labels' own
        raise DataError(text.replace("; round or bin it, or model it as a Gaussian column",
                                     "; give each class one label (-1 or None where a row is unlabelled)")) from None
    _refuse_text_unlabelled(keys, name)
    return keys


def _refuse_text_unlabelled(keys: set, name: str) -> None:
    """The text "-1" (or "") among text labels is a mistake, not a class: a text column
    written with -1 for its unlabelled rows (a CSV's, or ``np.where(labelled, names, "-1")``)
    made a class named "-1" that took every unlabelled row. scikit-learn's
    semi-supervised estimators refuse text y for the same reason."""
    for key in keys:
        text = key.decode() if isinstance(key, bytes) else key
        if isinstance(text, str) and text.strip() in ("-1", ""):
            raise DataError(
                f"{name} holds the text {text!r} as a class label; an unlabelled row is the number -1, NaN, None "
                "or an empty field, not text: in memory, pass an object array (y = names.astype(object); "
                "y[~labelled] = -1), and in a file leave the field empty")


def classes_of(keys: set, name: str = "y") -> np.ndarray:
    """Sorted classes from the labels seen (an empty array when none was labelled)."""
    if not keys:
        return np.array([], dtype=np.int64)
    try:
        return as_categories(list(keys), name)
    except ValueError as exc:
        raise DataError(f"{exc}; convert the labels first, e.g. y.astype(str)") from None


def label_codes(values, classes: np.ndarray, name: str = "y", row0: int = 0, where: str = "y") -> np.ndarray:
    """int64 codes of one block of labels: the index among ``classes``, -1 unlabelled; a
    label outside the classes is a DataError naming its row."""
    unl = _unlabelled(values)
    codes = np.full(unl.shape[0], UNLABELLED, dtype=np.int64)
    if unl.all() or len(classes) == 0:
        if not unl.all():
            row = int(np.argmin(unl))
            raise DataError(f"{where}: {name} labels row {row0 + row}, but the model was fitted without classes; "
                            "refit with labels, or pass -1 for every row")
        return codes
    if hasattr(values, "type") and hasattr(values, "null_count"):
        import pyarrow as pa

        values = values.dictionary_decode() if pa.types.is_dictionary(values.type) else values
        values = values.to_numpy(zero_copy_only=False)
    arr = np.asarray(values)
    if arr.dtype.kind == "f" or arr.dtype.kind == "O":
        arr = arr.astype(object)
        arr[unl] = classes[0].item()
    else:
        arr = np.where(unl, np.asarray(classes[0]).astype(arr.dtype) if arr.dtype.kind in "iub" else classes[0], arr)
    try:
        found = encode_values(arr, classes, f"{name}", "error", row0, where).astype(np.int64)
    except DataError as exc:  # the categories' message, with the classes' words and fixes
        head = str(exc).split("; pass handle_unknown=")[0].replace("category", "class")
        head = head.replace("the model's categories are of type", "the classes are of type").replace(
            "; convert the column to the type it had at fit", f"; give {name} labels of the classes' type")
        raise DataError(f"{head}; pass -1 for that row to leave it unlabelled, refit with every class, or "
                        "(partial_fit) list every class on the first call with classes=[...]") from None
    codes[~unl] = found[~unl]
    return codes


def label_key(value: object) -> object:
    """A class label as stored (bool, int or str)."""
    return category_key(value)


class LabelledSource(CutByRows):
    """A source whose chunks carry class codes from memory (``codes`` (n,) int64, -1
    unlabelled), matched to the rows by their index. Everything else is the inner source's."""

    def __init__(self, inner, codes: np.ndarray | Tensor) -> None:
        self.inner = inner
        self.codes = codes if isinstance(codes, Tensor) else torch.from_numpy(np.ascontiguousarray(codes, dtype=np.int64))

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def chunks(self) -> Iterator[Chunk]:
        for chunk in self.inner.chunks():
            label = self.codes[chunk.row_start : chunk.row_start + chunk.n_rows].to(chunk.x.device)
            yield Chunk(chunk.x, chunk.weight, chunk.row_start, chunk.extra, label)

    def take(self, rows: Tensor) -> Tensor:
        return self.inner.take(rows)

    def part(self, start: int, stop: int) -> LabelledSource:
        """Rows [start, stop) with their codes (a part's chunks say where their rows lie in
        the whole data set, so the codes stay indexed by that)."""
        return LabelledSource(self.inner.part(start, stop), self.codes)

    def fingerprint(self) -> dict:
        """The inner source's, and the codes whole (a checkpoint resumes only its labels)."""
        return {**self.inner.fingerprint(), "labels": digest(self.codes)}


class LabelColumn:
    """The column of X (files, DataFrames, Dask dataframes) that holds the class labels,
    and the ``classes`` their codes index. The column is not a feature."""

    def __init__(self, name: str, classes: np.ndarray) -> None:
        self.name, self.classes = str(name), classes

    def codes(self, values, row0: int = 0, where: str = "X") -> np.ndarray:
        return label_codes(values, self.classes, f"label column {self.name!r}", row0, where)
