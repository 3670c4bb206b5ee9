"""Checks that turn bad input into errors that say what, where and how to fix.

Wording follows scikit-learn's where it has a message for the same mistake (so code
and tests matching its messages keep working), followed by bigem's specifics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core import numerics
from .._core.errors import DataError
from .._core.types import Chunk


class NonNumericDataError(DataError, TypeError):
    """X holds values that are not numbers. Both a ValueError (scikit-learn raises one for
    strings) and a TypeError (numpy raises one for objects such as dicts)."""


class ColumnNamesError(DataError, TypeError):
    """A DataFrame's column names mix strings with other types. A TypeError, as
    scikit-learn raises, and a ValueError like every other DataError."""


class SparseDataError(DataError, TypeError):
    """X is a sparse matrix. A TypeError, as scikit-learn raises, and a ValueError like
    every other DataError."""


def refuse_sparse(X: object) -> None:
    """A scipy.sparse matrix or array is refused as scikit-learn refuses one (a family
    that reads sparse counts opens them before this)."""
    if hasattr(X, "toarray") and hasattr(X, "nnz"):
        raise SparseDataError(
            "Sparse data was passed for X, but dense data is required. Use '.toarray()' to convert to a "
            f"dense numpy array if it fits in memory (X is a {type(X).__name__}; "
            "bigem does not read sparse input)."
        )


def describe(name: str) -> str:
    return "Input X" if name == "X" else f"Input {name}"


def check_shape(shape: tuple[int, ...], name: str = "X", min_rows: int = 1, by: str | None = None) -> None:
    """2-D, at least ``min_rows`` rows and one feature. ``by``: the estimator that asks,
    named in the message as scikit-learn names it ("... is required by GaussianMixture")."""
    required = "is required" if by is None else f"is required by {by}"
    if len(shape) == 1:
        raise DataError(
            f"Expected 2D array, got 1D array instead: {name} has shape {shape}. "
            "Reshape your data either using array.reshape(-1, 1) if your data has a single feature "
            "or array.reshape(1, -1) if it contains a single sample."
        )
    if len(shape) != 2:
        stacked = ("; sequences stacked as (n_sequences, length, n_features), as pomegranate takes them, go one "
                   f"under another: {name}.reshape(-1, {name}.shape[-1]), with an HMM's lengths=[length] * n_sequences"
                   if len(shape) == 3 else "")
        raise DataError(
            f"Found array with dim {len(shape)}, while dim <= 2 {required}: {name} has shape {shape}; "
            f"pass a 2-D array of shape (n_samples, n_features){stacked}."
        )
    if shape[0] < min_rows:
        said = f"Found array with {shape[0]} sample(s) (shape={shape}) while a minimum of {min_rows} {required}"
        if by is not None and name == "X":  # scikit-learn's sentence, whole: it says what to do
            raise DataError(f"{said}.")
        held = "is empty" if shape[0] == 0 else f"has {shape[0]} row(s)"
        raise DataError(f"{said}: {name} {held}; pass at least {min_rows} row(s).")
    if shape[1] < 1:
        raise DataError(
            f"Found array with {shape[1]} feature(s) (shape={shape}) while a minimum of 1 {required}: "
            f"{name} has no columns."
        )


def to_numeric_array(x: object, name: str = "X") -> np.ndarray:
    """np.asarray with clear errors for complex, string and object data. No copy if numeric."""
    try:
        arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{name} could not be converted to an array: {exc}. Pass a 2-D array in which every row "
            "has the same number of numeric values."
        ) from None
    if np.iscomplexobj(arr):
        raise DataError(f"Complex data not supported: {name} has dtype {arr.dtype}; pass real numbers.")
    if arr.dtype.kind in "fiub":
        return arr
    if arr.dtype.kind in "mM":  # numpy would give days (or seconds) since 1970, without a word
        raise NonNumericDataError(f"{name} is not numeric (dtype {arr.dtype}): dates and times are not features as "
                                  "they are; convert them to numbers you choose (days since an origin, a day of the "
                                  "week, ...), or drop them")
    try:
        return arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise NonNumericDataError(
            f"{name} is not numeric (dtype {arr.dtype}): {exc}. Encode or drop non-numeric columns before fitting."
        ) from None


def check_finite(x: Tensor, row_start: int = 0, name: str = "X") -> tuple[int, int, int, int] | None:
    """None if all finite, else (NaN count, inf count, first bad row, its first bad
    column) for this block.

    A sum is finite only if every term is (NaN and inf propagate; inf - inf is NaN), so
    one reduction answers the common case: 20x cheaper than the element-wise mask,
    which had cost a third of a streamed iteration's first pass (4 vs 90 ms per 1.4M
    rows of 16 features). A non-finite sum, overflow included, falls back to the mask.
    """
    if bool(torch.isfinite(x.sum())):
        return None
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return None
    n_nan = int(torch.isnan(x).sum())
    row, column = _first(bad)
    return n_nan, int(bad.sum()) - n_nan, row_start + row, column


def check_values(x: Tensor, row_start: int = 0, gaps: bool = False) -> tuple[int, int, int, int] | None:
    """:func:`check_finite`, or with ``gaps`` (NaN: a missing value, allowed) the same
    for infinities alone: (0, inf count, first row with one, its column) or None."""
    if not gaps:
        return check_finite(x, row_start)
    if bool(torch.isfinite(x.sum())):
        return None
    inf = torch.isinf(x)
    if not bool(inf.any()):
        return None
    row, column = _first(inf)
    return 0, int(inf.sum()), row_start + row, column


def _first(bad: Tensor) -> tuple[int, int]:
    """The (row, column) of the first True of a 2-D mask, reading row by row."""
    row = int(torch.nonzero(bad.any(1))[0])
    return row, int(torch.nonzero(bad[row])[0])


# How a user who has gaps in the data can fit them: named wherever NaN or nulls are
# refused by an estimator that offers missing_values='fiml' ...
MISSING_HINT = ("or pass missing_values='fiml' (bigem: --missing fiml) to treat them as values missing at random "
                "(the exact EM, full-information maximum likelihood)")
# ... and what to do where the estimator has no such option.
NO_MISSING_HINT = ("this estimator does not model missing values; "
                   "DataFrame.dropna() drops such rows, sklearn.impute.SimpleImputer fills them in")


def missing_fix(offer_fiml: bool) -> str:
    """What follows "Drop or impute them first" where NaN or nulls are refused: the
    estimator's missing_values='fiml' where it offers it (``offer_fiml``), else how to
    drop or fill them."""
    return f", {MISSING_HINT}" if offer_fiml else f": {NO_MISSING_HINT}"


def raise_not_finite(n_nan: int, n_inf: int, first_row: int, name: str = "X", where: str = "",
                     offer_fiml: bool = True, column: int | str | None = None, file_row: int | None = None) -> None:
    """The scikit-learn message ("Input X contains NaN.") plus count, place and fix: the
    first bad value's row (of the data set, and ``file_row``, of its file, where the data
    are several files) and ``column`` (a name, or an index where the columns have none).
    The fix names missing_values='fiml' only where the estimator offers it (``offer_fiml``)."""
    what = "NaN" if n_nan else "infinity or a value too large for dtype('float64')"
    counts = ", ".join(p for p in (f"{n_nan} NaN" if n_nan else "", f"{n_inf} inf" if n_inf else "") if p)
    hint = ("; with dtype='float32', finite values beyond float32's range (about 3.4e38) are infinite too: "
            "rescale them, or pass dtype='float64'") if n_inf and not n_nan else ""
    if n_nan:  # fit or predict alike: "first", not "before fitting"
        fix = f"Drop or impute these values first{missing_fix(offer_fiml)}"
    else:
        fix = "Drop or impute these values first" + (
            " (infinity is not a missing value: NaN is, with missing_values='fiml')" if offer_fiml else "")
    at = f"row {first_row}" if file_row is None else f"row {first_row} of the data set (row {file_row} of this file)"
    if column is not None:
        at += f", column {column!r}"
    raise DataError(f"{describe(name)} contains {what}. ({counts}{where}; first at {at}). {fix}{hint}.")


def column_label(names: list[str] | None, index: int) -> int | str:
    """A column for messages: its name, or its index where the columns have none."""
    return names[index] if names is not None and index < len(names) else index


class DeviceCheck:
    """Finiteness of a pass's chunks, kept where the rows are, and one read back to the
    host when the pass ends, not one per chunk (on a GPU each read would stall the copies
    and kernels queued behind it). A non-finite value then fails the pass before its
    results are used, and a second pass (the error path only) finds the rows.

    On a GPU the element-wise test, not check_finite's sum: it costs a fraction of the
    chunk's copy, and a sum that overflows is no false alarm. On the CPU the sum (a NaN
    or infinity makes it non-finite; with gaps the sum that skips NaN), whose rare false
    alarm (finite values overflowing) the error pass clears."""

    def __init__(self, gaps: bool = False) -> None:
        self.gaps = gaps  # NaN is a missing value, allowed: infinities alone are bad (see check_values)
        self.bad: Tensor | None = None

    def add(self, x: Tensor) -> None:
        if x.is_cuda:
            bad = torch.isinf(x).any() if self.gaps else ~torch.isfinite(x).all()
        else:
            bad = ~torch.isfinite(x.nansum() if self.gaps else x.sum())
        self.flag(bad)

    def flag(self, bad: Tensor | None) -> None:
        """OR in a 0-d bool a rule computed where the rows are (None: nothing to check)."""
        if bad is not None:
            self.bad = bad if self.bad is None else self.bad | bad

    def any_bad(self) -> bool:
        return self.bad is not None and bool(self.bad)


class ColumnsSeen:
    """How many values each column observed (not NaN), summed as chunks are read, so a fit
    with gaps can refuse a feature that no row observes (nothing can estimate it)."""

    def __init__(self, n_features: int) -> None:
        self.n_features = n_features
        self.seen: Tensor | None = None

    def add(self, x: Tensor) -> None:
        # summed where the rows are (a GPU's chunks wait on no read-back, nor an upload:
        # the first chunk's count starts the total there), read in check
        self.add_counts((~torch.isnan(x)).sum(0))

    def add_counts(self, counts: Tensor) -> None:
        """Each column's count of observed values in some rows (int64, (n_features,))."""
        self.seen = counts if self.seen is None else self.seen + counts

    def check(self, names: list[str] | None, name: str = "X") -> None:
        seen = torch.zeros(self.n_features, dtype=torch.int64) if self.seen is None else self.seen.cpu()
        empty = torch.nonzero(seen == 0).reshape(-1).tolist()
        if not empty:
            return
        which = [repr(str(names[j])) if names else str(j) for j in empty]
        label = "column" if len(empty) == 1 else "columns"
        raise DataError(
            f"{describe(name)}: {label} {', '.join(which)} {'is' if len(empty) == 1 else 'are'} missing in every row: "
            "no value observed there, so nothing can estimate its parameters; drop "
            f"{'it' if len(empty) == 1 else 'them'} (select the others with columns=[...])"
        )


def check_weight_not_a_feature(weight_column: str | None, columns: list[str] | None) -> None:
    """A column named as sample_weight cannot also be one of the features in ``columns``."""
    if weight_column is not None and columns is not None and weight_column in [str(c) for c in columns]:
        raise DataError(
            f"sample_weight={weight_column!r} is also in columns=; a column is either a feature or the row "
            "weights: leave it out of columns="
        )


@dataclass(frozen=True)
class RowRule:
    """A family's rule for every chunk of rows (such as non-negative integer counts):
    ``check(chunk)`` (also calling the rule) raises the DataError that names the first row
    that breaks it; ``broken(chunk)`` says whether any row does, as a 0-d bool on the
    chunk's device, with no read-back (see :class:`RulePass`)."""

    check: Callable[[Chunk], None]
    broken: Callable[[Chunk], Tensor | None]

    def __call__(self, chunk: Chunk) -> None:
        self.check(chunk)


class RulePass:
    """A rule checked over one pass's chunks: each at once where a read is free (the
    CPU); where reads are deferred (a GPU's chunks, see ``numerics.defers_reads``) and
    the rule has a ``broken`` flag, the flags are ORed on the device and read once in
    :meth:`finish`, which then checks the rows again (``again``) to raise the error that
    names the first. Code that consumes the unchecked rows of such a pass must be safe on
    any value (no index out of range); the error comes before the pass's results are used."""

    def __init__(self, rule: Callable[[Chunk], None]) -> None:
        self.rule = rule
        self.broken = getattr(rule, "broken", None)
        self.pending = DeviceCheck()

    def see(self, chunk: Chunk) -> None:
        if self.broken is not None and numerics.defers_reads(chunk.x.device):
            self.pending.flag(self.broken(chunk))
        else:
            self.rule(chunk)

    def finish(self, again: Callable[[], Iterable[Chunk]]) -> None:
        if self.pending.any_bad():
            for chunk in again():
                self.rule(chunk)


class CheckedSource:
    """A source whose chunks must pass ``check(chunk)`` (a family's rules, such as
    non-negative integer counts, a :class:`RowRule` or a plain function), checked as they
    are read (:class:`RulePass`): the first complete pass validates, later passes only
    read. Everything else is the inner source's."""

    def __init__(self, inner, check) -> None:
        self.inner, self.check = inner, check
        self.checked = False

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def chunks(self):
        if self.checked:
            yield from self.inner.chunks()
            return
        rule = RulePass(self.check)
        for chunk in self.inner.chunks():
            rule.see(chunk)
            yield chunk
        rule.finish(self.inner.chunks)
        self.checked = True

    def take(self, rows):
        return self.inner.take(rows)

    def part(self, start: int, stop: int) -> CheckedSource:
        return CheckedSource(self.inner.part(start, stop), self.check)

    def split(self, count: int) -> list[CheckedSource]:
        return [CheckedSource(p, self.check) for p in self.inner.split(count)]


def files_disagree(first: str, first_names: list, path: str, names: list, missing: list, extra: list) -> DataError:
    """The error for a file whose columns are not the first file's, where the features are
    the first file's columns (no columns= given): both files named, and what differs."""
    differ = f"no {missing}" if missing else f"also {extra}"
    return DataError(
        f"the files disagree on their columns: with no columns= given, the features are the columns of the first "
        f"file, {first} ({list(first_names)}), but {path} has {list(names)} ({differ}). Read files of one data set "
        "(a folder of them alone, or a glob such as 'data/*.parquet'), or pass columns= naming the columns to use")
