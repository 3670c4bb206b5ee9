"""A warning for a column that looks like a row identifier but is about to be a feature.

With no ``columns=``, every numeric column of a file or DataFrame is a feature, so an
``event_id`` column silently becomes one (and drags every component along it). A column
of whole numbers, all different and in order (strictly increasing or decreasing), is
almost surely an identifier or a row number: it is warned about, never dropped (the user
decides). Checked in memory at once, and for files on their first pass, at no extra read.
"""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .._core.errors import IdentifierColumnWarning

MIN_ROWS = 20  # fewer rows are in order by chance too often to say anything


class IdentifierWatch:
    """Follows candidate columns (index, name) over row blocks in order and warns, at
    :meth:`finish`, about those that stayed strictly monotone."""

    def __init__(self, candidates: list[tuple[int, str]], where: str) -> None:
        self.where = where
        self._alive = {j: name for j, name in candidates}
        self._direction: dict[int, int] = {}  # +1 increasing, -1 decreasing; unknown before two values
        self._last: dict[int, float] = {}
        self.rows = 0

    def update(self, x: Tensor) -> None:
        """The next block of rows, (n, D), in the coordinates of any shift (differences are kept)."""
        if not self._alive or x.shape[0] == 0:
            self.rows += x.shape[0]
            return
        idx = list(self._alive)
        cols = x[:, idx].double().cpu()
        self.rows += x.shape[0]
        for i, j in enumerate(idx):
            col = cols[:, i]
            if j in self._last:
                col = torch.cat([col.new_tensor([self._last[j]]), col])
            self._last[j] = float(col[-1])
            if col.shape[0] < 2:
                continue
            steps = torch.diff(col)
            up, down = bool((steps > 0).all()), bool((steps < 0).all())
            direction = 1 if up else -1 if down else 0
            if direction == 0 or self._direction.setdefault(j, direction) != direction:
                del self._alive[j]

    def finish(self) -> None:
        if self.rows < MIN_ROWS:
            return
        for name in self._alive.values():
            warnings.warn(
                f"{self.where}: column {name!r} looks like a row identifier (whole numbers, all different, in "
                "order) but is fitted as a feature, because no columns= were given; pass columns= naming the "
                "features (predictions can carry an id column to their output with id_column=)",
                IdentifierColumnWarning,
                stacklevel=2,
            )
        self._alive.clear()


def frame_candidates(frame) -> list[tuple[int, str]]:
    """The integer columns of a DataFrame (booleans are not identifiers)."""
    out = []
    for j, (name, dtype) in enumerate(zip(frame.columns, frame.dtypes)):
        kind = getattr(getattr(dtype, "numpy_dtype", dtype), "kind", "")
        if kind in "iu" and kind:
            out.append((j, str(name)))
    return out
