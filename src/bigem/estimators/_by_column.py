"""Settings given per column: a dict keyed by column name (or position, for arrays and
unnamed files), or a list with one entry per column. ``families`` and ``categories``
read this way, so a user who names columns for one names them alike for the other."""

from __future__ import annotations

import numpy as np

from .._core.errors import ParameterError


def by_column(value, names: list[str] | None, width: int, what: str, entry: str) -> dict:
    """``value`` (a dict {column: x} or a list of one x per column) by column index.
    ``what`` is the parameter's name and ``entry`` what one x is, for messages
    (ParameterError for a column X does not have, or a list of another length)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
                j = int(key)
                if not 0 <= j < width:
                    raise ParameterError(f"{what} names column {j}, but X has columns 0..{width - 1}")
            elif names is not None and str(key) in names:
                j = names.index(str(key))
            else:
                have = names if names is not None else f"positions 0..{width - 1} (X has no column names)"
                raise ParameterError(f"{what} names column {key!r}, which X does not have; it has {have}")
            out[j] = item
        return out
    if isinstance(value, (list, tuple)):
        if len(value) != width:
            raise ParameterError(f"{what} lists {len(value)} {'entry' if len(value) == 1 else 'entries'} but X has {width} columns; give one {entry} per "
                                 f"column, or a dict {{column: {entry}}}")
        return dict(enumerate(value))
    raise ParameterError(f"{what} must be a dict {{column: {entry}}} or a list (one per column); "
                         f"got {value!r}")


# A dict keyed by column is written to a model file as this tag and its (key, value)
# pairs: JSON would make integer keys (positions) strings (names). A list written as it
# is never starts with the tag, since no entry of a per-column list is that string.
_BY_COLUMN = "by-column"


def per_column_to_json(value):
    """A per-column setting ('auto', a list or a dict of lists) as JSON values."""
    if isinstance(value, str) or value is None:
        return value
    if isinstance(value, dict):
        return [_BY_COLUMN, [[_plain(k), _entry(v)] for k, v in value.items()]]
    return [_entry(v) for v in value]


def per_column_from_json(value):
    """The setting :func:`per_column_to_json` wrote."""
    if isinstance(value, list) and value[:1] == [_BY_COLUMN] and len(value) == 2:
        return {key: entry for key, entry in value[1]}
    return value


def _entry(value):
    if value is None or isinstance(value, str):
        return value
    return [_plain(v) for v in (value.tolist() if hasattr(value, "tolist") else value)]


def _plain(value):
    return value.item() if isinstance(value, np.generic) else value
