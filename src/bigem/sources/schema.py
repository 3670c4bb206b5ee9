"""Feature columns that are not plain measurements: categories, binary values, counts.

A :class:`Schema` says how each feature column of X is read:

* ``'real'``: a number (floats, integers, booleans), as every Gaussian column is;
* ``'binary'``: 0/1 or booleans (Bernoulli columns);
* ``'count'``: non-negative integers (Poisson columns);
* ``'category'``: any value (strings, integers, booleans, pandas categoricals, Arrow
  dictionaries), read as its code: its index among the column's known categories
  (sorted, learnt at fit: see :class:`Vocabulary`). A value outside them is an error,
  or with ``handle_unknown='ignore'`` the code -1: an entry that carries no information.

Sources turn every category column into codes where they read it (Arrow for files,
pandas or numpy for in-memory data, the workers for Dask), so the rows a model sees
are numbers as always; the other kinds' rules are checked on the rows as they stream.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError, ParameterError

KINDS = ("real", "binary", "count", "category")
# what each kind takes, for messages
_TAKES = {"binary": "0/1 (or boolean) values", "count": "counts: non-negative integers"}
# A category column's values are all of one of these types.
_TYPES = {bool: "bool", int: "int", str: "str"}


def category_key(value: object) -> object:
    """A value as a category: bool, int (integral floats too) or str; None for a missing
    value; a ValueError for anything else (a fractional number, bytes, a list, ...)."""
    if value is None:
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        f = float(value)
        if math.isnan(f):
            return None
        if f.is_integer():
            return int(f)
        raise ValueError(f"the number {value!r}, which is not a whole number")
    if isinstance(value, (str, np.str_)):
        return str(value)
    if type(value).__name__ in ("NAType", "NaTType"):
        return None
    raise ValueError(f"a {type(value).__name__} value ({value!r})")


def type_name(values: np.ndarray) -> str:
    """'bool', 'int' or 'str': the type of a column's categories (sorted, non-empty)."""
    return _TYPES[type(values[0].item() if isinstance(values[0], np.generic) else values[0])]


def as_categories(values: list | tuple | np.ndarray, what: str) -> np.ndarray:
    """Categories as a sorted array of one type (bool, int64 or str); a ValueError naming
    the two types when they are mixed."""
    keys = [category_key(v) for v in values]
    if any(k is None for k in keys):
        raise ValueError(f"{what} holds a missing value among its categories")
    kinds = {type(k) for k in keys}
    if len(kinds) > 1:
        raise ValueError(f"{what} mixes categories of types {sorted(_TYPES[t] for t in kinds)}; a column's "
                         "categories are all strings, all integers or all booleans")
    keys = sorted(set(keys))
    kind = next(iter(kinds), str)
    return np.array(keys, dtype={bool: bool, int: np.int64, str: str}[kind])


def declared_categories(values, found: set, label: str) -> np.ndarray:
    """A column's categories as the user declared them (``categories=``), sorted: a
    ParameterError when the list itself is no list of categories, a DataError naming
    the values X holds outside it (a declared list is the whole vocabulary)."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or not len(values):
        raise ParameterError(f"categories for {label} must be a non-empty list of its categories (or 'auto'); "
                             f"got {values!r}")
    try:
        cats = as_categories(list(values), f"categories for {label}")
    except ValueError as exc:
        raise ParameterError(str(exc)) from None
    if found:
        kind = type_name(cats)
        seen = as_categories(list(found), label)
        if type_name(seen) != kind:
            raise DataError(f"{label} holds {type_name(seen)} values ({_listed(seen)}) but its declared categories "
                            f"are {kind} ({_listed(cats)}); declare them as X holds them")
        outside = np.setdiff1d(seen, cats)
        if len(outside):
            them = "it" if len(outside) == 1 else "them"
            raise DataError(f"{label} holds {_listed(outside)}, which its declared categories ({_listed(cats)}) do "
                            f"not list; add {them} to categories=, or leave the column's categories to be learnt "
                            "from X")
    return cats


def _listed(values: np.ndarray, most: int = 10) -> str:
    shown = ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in values[:most])
    return shown + (f", ... ({len(values)} in all)" if len(values) > most else "")


@dataclass
class Vocabulary:
    """The categories seen so far in each category column (by feature index): a monoid
    (``+`` merges), so files, chunks and Dask partitions are learnt in one pass each and
    merged in any grouping."""

    seen: dict[int, set] = field(default_factory=dict)

    def add(self, j: int, keys: set) -> None:
        self.seen.setdefault(j, set()).update(keys)

    def __add__(self, other: Vocabulary) -> Vocabulary:
        out = Vocabulary({j: set(v) for j, v in self.seen.items()})
        for j, keys in other.seen.items():
            out.add(j, keys)
        return out

    def scale(self, factor: float) -> Vocabulary:
        return self

    def to(self, device) -> Vocabulary:
        return self

    def categories(self, j: int, label: str) -> np.ndarray:
        """Column j's categories, sorted; a DataError naming the column when it has none
        or mixes types."""
        keys = self.seen.get(j, set())
        if not keys:
            raise DataError(f"{label} has no values (missing in every row): a categorical column needs at least one "
                            "category; drop it (select the others with columns=[...])")
        try:
            return as_categories(list(keys), label)
        except ValueError as exc:
            raise DataError(f"{exc}; convert it first, e.g. X[col].astype(str)") from None


def observed(values, label: str) -> set:
    """The distinct categories of one column's values (a numpy array, pandas Series or
    Arrow array); missing values are skipped (encoding reports them with their row)."""
    if hasattr(values, "type") and hasattr(values, "null_count"):  # Arrow
        import pyarrow.compute as pc

        unique = pc.unique(values)
        if hasattr(unique, "dictionary_decode"):
            unique = unique.dictionary_decode()
        items = unique.to_pylist()
    elif hasattr(values, "dtype") and getattr(values.dtype, "name", "") == "category":  # pandas categorical
        items = list(values.dropna().unique())
    else:
        arr = np.asarray(values)
        if arr.dtype.kind == "c":
            raise DataError(f"Complex data not supported: {label} holds complex numbers ({arr.dtype}); a categorical "
                            "column takes strings, integers or booleans")
        if arr.dtype.kind == "f":
            arr = arr[~np.isnan(arr)]
            frac = arr != np.round(arr)
            if frac.any():
                raise DataError(f"{label} holds {arr[frac][0].item()!r}, which is not a whole number: a categorical "
                                "column takes strings, integers or booleans; round or bin it, or model it as a "
                                "Gaussian column")
            huge = np.abs(arr) > 2.0**53  # beyond the whole numbers a float holds exactly (and int64's range)
            if huge.any():
                raise DataError(f"{label} holds {arr[huge][0].item()!r}, too large to be a category's code (codes "
                                "are integers up to 2**53 in a float column); recode the column, or model it as a "
                                "Gaussian column")
        if arr.dtype.kind in "biuf":
            items = np.unique(arr).tolist()
        else:
            items = _unique_objects(arr, label)
    out = set()
    for v in items:
        try:
            key = category_key(v)
        except ValueError as exc:
            raise DataError(f"{label} holds {exc}: a categorical column takes strings, integers or booleans") from None
        if key is not None:
            out.add(key)
    return out


def _unique_objects(arr: np.ndarray, label: str = "X") -> list:
    try:
        try:
            import pandas as pd
        except ImportError:  # pragma: no cover - pandas is there wherever object columns come from
            return list(set(arr.tolist()))
        return list(pd.unique(arr.reshape(-1)))
    except TypeError:  # an unhashable value (a dict, a list): name it
        from .validate import NonNumericDataError

        odd = next(v for v in arr.reshape(-1) if not _hashable(v))
        raise NonNumericDataError(f"{label} holds a {type(odd).__name__} ({odd!r:.60}), which is not a category: a categorical "
                                  "column takes strings, integers or booleans") from None


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _unknown(label: str, value: object, row: int, cats: np.ndarray, where: str) -> DataError:
    shown = ", ".join(repr(c.item() if isinstance(c, np.generic) else c) for c in cats[:8])
    more = ", ..." if len(cats) > 8 else ""
    return DataError(
        f"{where}: {label} has category {value!r} at row {row}, which the model did not see at fit (it knows "
        f"{len(cats)}: {shown}{more}); pass handle_unknown='ignore' to read it as missing information, refit "
        "on data that has it, or (for partial_fit batches that bring new categories) declare every category "
        "up front with categories={column: [...]}"
    )


def _missing(label: str, row: int, where: str) -> DataError:
    from .validate import missing_fix

    return DataError(
        f"{where}: {label} has a missing (null/NaN) value at row {row}; drop or impute it first{missing_fix(True)}"
    )


def _finish(codes: np.ndarray, values_at, missing: np.ndarray, label: str, cats: np.ndarray, handle_unknown: str,
            row0: int, where: str, gaps: bool = False) -> np.ndarray:
    """Codes (float64) from indices (-1: unknown), raising for (unless ``gaps``) missing
    and (unless ignored) unknown values with their row; with ``gaps`` a missing value's
    code is NaN."""
    if missing.any() and not gaps:
        raise _missing(label, row0 + int(np.argmax(missing)), where)
    unknown = (codes < 0) & ~missing
    if unknown.any() and handle_unknown == "error":
        row = int(np.argmax(unknown))
        raise _unknown(label, values_at(row), row0 + row, cats, where)
    out = codes.astype(np.float64)
    if gaps and missing.any():
        out[missing] = np.nan
    return out


def encode_values(values, cats: np.ndarray, label: str, handle_unknown: str = "error", row0: int = 0,
                  where: str = "X", gaps: bool = False) -> np.ndarray:
    """One column's codes (float64; -1 for an ignored unknown category; with ``gaps``, NaN
    for a missing value): its index in the sorted ``cats``. ``values``: a numpy array, a
    pandas Series or an Arrow array."""
    if hasattr(values, "type") and hasattr(values, "null_count"):
        return _encode_arrow(values, cats, label, handle_unknown, row0, where, gaps)
    kind = type_name(cats)
    if hasattr(values, "dtype") and getattr(values.dtype, "name", "") == "category":  # pandas categorical
        values = values.astype(object)
    arr = np.asarray(values)
    if arr.dtype.kind in "biuf" and kind == "str" or arr.dtype.kind in "US" and kind != "str":
        have = "numbers" if arr.dtype.kind in "biuf" else "strings"
        raise DataError(f"{where}: {label} holds {have}, but the model's categories are of type {kind}; convert "
                        "the column to the type it had at fit")
    if arr.dtype.kind in "biuf":
        missing = np.isnan(arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
        if arr.dtype.kind == "f":
            frac = ~missing & (arr != np.round(np.where(missing, 0, arr)))
            if frac.any():
                row = int(np.argmax(frac))
                raise DataError(f"{where}: {label} holds {arr[row]!r} at row {row0 + row}, which is not a whole "
                                "number: a categorical column takes strings, integers or booleans")
        lookup = cats.astype(np.float64) if kind != "str" else cats
        numeric = np.where(missing, np.nan, arr).astype(np.float64)
        idx = np.searchsorted(lookup, numeric).clip(0, len(cats) - 1)
        codes = np.where(lookup[idx] == numeric, idx, -1)
        return _finish(codes, lambda r: arr[r].item(), missing, label, cats, handle_unknown, row0, where, gaps)
    if arr.dtype.kind in "US":
        arr = arr.astype(str)
        idx = np.searchsorted(cats, arr).clip(0, len(cats) - 1)
        codes = np.where(cats[idx] == arr, idx, -1)
        return _finish(codes, lambda r: str(arr[r]), np.zeros(arr.shape, bool), label, cats, handle_unknown, row0, where)
    return _encode_objects(arr, cats, label, handle_unknown, row0, where, gaps)


def _encode_objects(arr: np.ndarray, cats: np.ndarray, label: str, handle_unknown: str, row0: int, where: str,
                    gaps: bool = False):
    """Object values (strings, Python numbers, None): by hashing through pandas when it is
    there, else a dictionary lookup per value."""
    keys = cats.tolist()
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas is there wherever object columns come from
        pd = None
    if pd is not None:
        missing = np.asarray(pd.isna(arr))
        codes = pd.Index(keys).get_indexer(arr).astype(np.int64)
    else:  # pragma: no cover
        position = {k: i for i, k in enumerate(keys)}
        missing = np.array([v is None or (isinstance(v, float) and v != v) for v in arr])
        codes = np.array([position.get(category_key(v) if v is not None else None, -1) for v in arr], np.int64)
    kind = type_name(cats)
    bad = (codes < 0) & ~missing
    if bad.any():  # another type, or a number 1.0 for the int 1, or a bool for an int: the keys decide
        for r in np.flatnonzero(bad):
            try:
                key = category_key(arr[r])
            except ValueError as exc:
                raise DataError(f"{where}: {label} holds {exc} at row {row0 + int(r)}: a categorical column takes "
                                "strings, integers or booleans") from None
            if key is not None and _TYPES.get(type(key)) != kind:
                raise DataError(f"{where}: {label} holds {arr[r]!r} ({_TYPES.get(type(key), type(key).__name__)}) "
                                f"at row {row0 + int(r)}, but the model's categories are of type {kind}; convert "
                                "the column to the type it had at fit")
            pos = int(np.searchsorted(cats, key)) if key is not None else len(cats)
            if pos < len(cats) and cats[pos] == key:
                codes[r] = pos
    return _finish(codes, lambda r: arr[r], missing, label, cats, handle_unknown, row0, where, gaps)


def _encode_arrow(col, cats: np.ndarray, label: str, handle_unknown: str, row0: int, where: str,
                  gaps: bool = False) -> np.ndarray:
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = type_name(cats)
    t = col.type.value_type if pa.types.is_dictionary(col.type) else col.type
    is_text = pa.types.is_string(t) or pa.types.is_large_string(t)
    if is_text != (kind == "str") or (pa.types.is_boolean(t) != (kind == "bool") and not pa.types.is_integer(t)):
        raise DataError(f"{where}: {label} holds values of type {t}, but the model's categories are of type {kind}; "
                        "convert the column to the type it had at fit")
    if pa.types.is_floating(t):
        col = _integral(col, label, row0, where)
    value_set = pa.array(cats.tolist(), type=pa.string() if kind == "str" else pa.bool_() if kind == "bool" else pa.int64())
    idx = pc.index_in(col, value_set=value_set)
    missing = col.is_null().to_numpy(zero_copy_only=False)
    codes = idx.fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    return _finish(codes, lambda r: col[r].as_py(), missing, label, cats, handle_unknown, row0, where, gaps)


def _integral(col, label: str, row0: int, where: str):
    import pyarrow as pa
    import pyarrow.compute as pc

    values = col.to_numpy(zero_copy_only=False)
    frac = ~np.isnan(values) & (values != np.round(np.nan_to_num(values)))
    if frac.any():
        row = int(np.argmax(frac))
        raise DataError(f"{where}: {label} holds {values[row]!r} at row {row0 + row}, which is not a whole number: a "
                        "categorical column takes strings, integers or booleans")
    return pc.cast(col, pa.int64(), safe=False)


# ---------------------------------------------------------------------------- CSV text
# A CSV's category columns are read as text: pyarrow types a column from the file's first
# block, so a column of numbers there and a word far below failed half-way through a
# read. The categories are typed from all the column's values instead, by pyarrow's
# rules (integers, else booleans, else numbers, else text), and each batch's text is
# then read in that type (``text_as``).
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_TRUE_TEXT = frozenset(("1", "True", "TRUE", "true"))  # pyarrow's ConvertOptions.true_values
BOOLEAN_TEXT = _TRUE_TEXT | {"0", "False", "FALSE", "false"}  # and its false_values: what it reads as booleans


def text_categories(texts: set, label: str) -> set:
    """The categories of a column read as text (``texts``: its distinct values), typed as
    pyarrow types a column: integers if every value is one, else booleans, else numbers
    (whole ones, as :func:`observed` takes them), else the text itself."""
    if all(_INTEGER_TEXT.fullmatch(t) for t in texts):
        return {int(t) for t in texts}
    if texts <= BOOLEAN_TEXT:
        return {t in _TRUE_TEXT for t in texts}
    numbers = [_number(t) for t in texts]
    if all(v is not None for v in numbers):
        return observed(np.array(numbers, np.float64), label)
    return set(texts)


def text_as(col, cats: np.ndarray):
    """A column read as text (an Arrow string array) in the type of its categories
    ``cats``: an Arrow array when every value reads as that type, else an object array of
    each value read by :func:`text_categories`' rules (text that is no number stays text,
    which :func:`encode_values` names with its row)."""
    if not len(cats) or type_name(cats) == "str":
        return col
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = type_name(cats)
    try:
        return pc.cast(col, pa.int64() if kind == "int" else pa.bool_())
    except pa.ArrowInvalid:
        pass
    coded = pc.dictionary_encode(col)
    values = [_text_value(t, kind) for t in coded.dictionary.to_pylist()]
    by_code = np.array(values + [None], dtype=object)  # the last: a null
    return by_code[coded.indices.fill_null(len(values)).to_numpy(zero_copy_only=False)]


def _text_value(text: str, kind: str) -> object:
    if kind == "bool" and text in BOOLEAN_TEXT:
        return text in _TRUE_TEXT
    if _INTEGER_TEXT.fullmatch(text):
        return int(text)
    if text in BOOLEAN_TEXT:
        return text in _TRUE_TEXT
    number = _number(text)
    return text if number is None else number


def _number(text: str) -> float | None:
    """The number a text is, or None (pyarrow reads no blanks or underscores in numbers)."""
    if text != text.strip() or "_" in text:
        return None
    try:
        return float(text)
    except ValueError:
        return None


@dataclass(frozen=True)
class Schema:
    """How each feature column is read (see the module docstring): ``kinds`` per feature,
    ``categories`` per feature (the sorted known values of a category column, None for
    the others), ``handle_unknown`` ('error' or 'ignore'), ``owner`` (the estimator, for
    messages) and ``names`` (the features' names, for messages; None: by index)."""

    kinds: tuple[str, ...]
    categories: tuple = ()
    handle_unknown: str = "error"
    owner: str = "the model"
    names: tuple[str, ...] | None = None
    gaps: bool = False  # a missing value is allowed (missing_values='fiml'): a category column's code is then NaN

    def __post_init__(self) -> None:
        if not self.categories:
            object.__setattr__(self, "categories", (None,) * len(self.kinds))

    @property
    def n_features(self) -> int:
        return len(self.kinds)

    def label(self, j: int) -> str:
        return f"column {self.names[j]!r}" if self.names is not None else f"column {j}"

    def columns_of(self, kind: str) -> list[int]:
        return [j for j, k in enumerate(self.kinds) if k == kind]

    def encodes(self) -> bool:
        return "category" in self.kinds

    def with_categories(self, categories: tuple) -> Schema:
        return Schema(self.kinds, tuple(categories), self.handle_unknown, self.owner, self.names, self.gaps)

    # ------------------------------------------------------------ reading
    def encode_column(self, j: int, values, row0: int = 0, where: str = "X") -> np.ndarray:
        """Feature j's values as read (codes for a category column, float64 otherwise)."""
        if self.kinds[j] == "category":
            return encode_values(values, self.categories[j], self.label(j), self.handle_unknown, row0, where, self.gaps)
        return _numbers(values, self.label(j), where)

    def encode_frame(self, frame, where: str = "X") -> np.ndarray:
        """A DataFrame's feature columns (in order) as a float64 (n, D) array."""
        out = np.empty((len(frame), self.n_features), np.float64)
        for j in range(self.n_features):
            out[:, j] = self.encode_column(j, frame.iloc[:, j], 0, where)
        return out

    def encode_array(self, arr: np.ndarray, where: str = "X", row0: int = 0) -> np.ndarray:
        """A 2-D array's columns (numeric or object) as a float64 (n, D) array."""
        if not self.encodes() and arr.dtype.kind in "biuf":
            return arr
        out = np.empty(arr.shape, np.float64)
        for j in range(self.n_features):
            out[:, j] = self.encode_column(j, arr[:, j], row0, where)
        return out

    def encode_codes(self, x: Tensor, where: str = "X", row0: int = 0) -> Tensor:
        """Rows of numbers whose category columns hold category values (integers or 0/1
        for booleans), as rows of codes: for sources that read numbers only (.npy files,
        Source objects, dask arrays)."""
        cols = self.columns_of("category")
        if not cols:
            return x
        x = x.clone()
        for j in cols:
            x[:, j] = torch.from_numpy(encode_values(x[:, j].cpu().double().numpy(), self.categories[j], self.label(j),
                                                     self.handle_unknown, row0, where, self.gaps)).to(x)
        return x

    # ------------------------------------------------------------ rules
    def check(self, x: Tensor, row0: int = 0, where: str = "X", rows: Tensor | None = None) -> None:
        """Every binary column holds 0/1 and every count column non-negative integers: a
        DataError naming the column, the row (``row0`` + position, or ``rows[position]``
        for rows taken by index), the value and the fix."""
        for kind, cols, bad in self._broken_entries(x):
            if bool(bad.any()):
                r, c = (int(i) for i in torch.nonzero(bad)[0])
                row = row0 + r if rows is None else int(rows[r])
                raise DataError(self._broken(kind, cols[c], float(x[r, cols[c]]), row, where))

    def rule(self, where: Callable[[int], str] = lambda row: "X"):
        """The rules as a chunk rule (``validate.RowRule``): :meth:`check`, its message
        naming ``where(first row)`` (a file, say), and :meth:`broken`."""
        from .validate import RowRule

        return RowRule(lambda c: self.check(c.x, c.row_start, where(c.row_start)), lambda c: self.broken(c.x))

    def broken(self, x: Tensor) -> Tensor | None:
        """Whether any row of ``x`` breaks :meth:`check`'s rules, as a 0-d bool where the
        rows are (no read-back: a GPU's first pass ORs these and reads the answer once,
        then :meth:`check` finds the row); None when no column has a rule."""
        flags = [bad.any() for _, _, bad in self._broken_entries(x)]
        return functools.reduce(operator.or_, flags) if flags else None

    def _broken_entries(self, x: Tensor):
        """(kind, columns, (n, len(columns)) mask of the entries that break the kind's rule)
        for the kinds with a rule that have columns."""
        for kind in ("binary", "count"):
            cols = self.columns_of(kind)
            if cols:  # NaN is no broken value: refused before (finiteness), or a gap (missing_values='fiml')
                v = x[:, cols]
                bad = ((v != 0) & (v != 1)) if kind == "binary" else ((v < 0) | (v != torch.round(v)))
                yield kind, cols, bad & ~torch.isnan(v)

    def _broken(self, kind: str, j: int, value: float, row: int, where: str) -> str:
        shown = f"{value:g}" if math.isfinite(value) else str(value)
        fix = {"binary": "recode it as 0/1 (e.g. X[col] > 0), or model it as a categorical column",
               "count": "round it, or model it as a Gaussian column"}[kind]
        negative = " (Negative values in data)" if value < 0 else ""  # scikit-learn's words
        return (f"{where}: {self.label(j)} holds {shown} at row {row}: {self.owner} takes {_TAKES[kind]} "
                f"there{negative}; {fix}")


def _numbers(values, label: str, where: str) -> np.ndarray:
    """A numeric column (numbers or booleans) as float64; strings are refused, naming the column."""
    if hasattr(values, "type") and hasattr(values, "null_count"):
        values = values.to_numpy(zero_copy_only=False)
    try:
        if hasattr(values, "to_numpy"):
            return values.to_numpy(dtype=np.float64, na_value=np.nan)
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:  # numpy's reason kept: scikit-learn's message for the same mistake
        from .validate import NonNumericDataError

        raise NonNumericDataError(f"{where}: {label} is not numeric ({exc}); it holds text or other values: encode or "
                                  "drop it, or read it as a categorical column") from None


def coarse_type(dtype) -> str:
    """A column's type as the mixed-type default reads it, from a numpy/pandas dtype or an
    Arrow type: 'float', 'integer', 'bool', 'string' (text or objects), 'category'
    (pandas categorical, Arrow dictionary) or 'other' (dates, ...)."""
    if type(dtype).__module__.startswith("pyarrow"):  # (an Arrow string type has no bit_width to ask)
        import pyarrow as pa

        if pa.types.is_dictionary(dtype):
            return "category"
        if pa.types.is_floating(dtype) or pa.types.is_decimal(dtype):
            return "float"
        if pa.types.is_integer(dtype):
            return "integer"
        if pa.types.is_boolean(dtype):
            return "bool"
        if pa.types.is_string(dtype) or pa.types.is_large_string(dtype) or getattr(pa.types, "is_string_view",
                                                                                     lambda t: False)(dtype):
            return "string"
        return "other"
    if getattr(dtype, "name", "") == "category":
        return "category"
    kind = getattr(dtype, "kind", "O")
    return {"f": "float", "i": "integer", "u": "integer", "b": "bool", "O": "string", "U": "string",
            "S": "string"}.get(kind, "other")
