"""Rows of one source with columns of the same rows beside them: a structural model's
indicators (as its measurement model reads them) and its outcomes or covariates.

:class:`Beside` reads a source's chunks and gives each one, in float64 on the host,
``features(chunk)`` (the caller's map of the rows: the rows themselves, or terms
computed from them) followed by the chunk's rows of the other columns: an in-memory
array, sliced by the chunk's first row, or columns the source carries through
(``Chunk.extra``: the columns of the same files that were named to be kept). So the
other columns stream with the rows, from the same files or beside them, and never need
the whole data in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.types import Chunk


class Beside:
    """``inner``'s chunks mapped by ``features(chunk)`` (to ``width`` float64 columns), with the
    columns ``beside`` after them: an (n, q) float64 array, or the names of columns
    ``inner`` carries in ``Chunk.extra``. ``what`` names those columns in messages. A
    value that is not a number, or is infinite, is a DataError naming its row and
    column; a missing one (null, NaN) is NaN, for the model to treat as a gap."""

    shift = None  # the features are the caller's, in its own coordinates
    weight_blocks = None

    def __init__(self, inner, features: Callable[[Chunk], Tensor], width: int, beside, what: str = "Y",
                 names: list[str] | None = None) -> None:
        self.inner, self.features, self.what = inner, features, what
        self.array = beside if isinstance(beside, np.ndarray) else None
        self.kept = None if self.array is not None else [str(n) for n in beside]
        self.names = names if names is not None else self.kept
        q = self.array.shape[1] if self.array is not None else len(self.kept)
        self.n_rows, self.n_features, self.width = int(inner.n_rows), int(width) + q, int(width)
        if self.array is not None and self.array.shape[0] != self.n_rows:
            raise DataError(f"X has {self.n_rows} rows but {what} has {self.array.shape[0]}; give {what} one row per "
                            "row of X")
        self.feature_names = None
        self.weight = getattr(inner, "weight", None)
        self.weighted = bool(getattr(inner, "weighted", self.weight is not None))
        self.decodes = bool(getattr(inner, "decodes", False))

    def read_in(self, rows: int) -> None:
        self.inner.read_in(rows)

    def fingerprint(self) -> dict:
        return self.inner.fingerprint()

    def chunks(self) -> Iterator[Chunk]:
        for chunk in self.inner.chunks():
            block = self._beside(chunk)  # a frame's read-only values are copied (torch warns of them): q columns
            other = torch.from_numpy(block if block.flags.writeable else block.copy())
            x = torch.cat([self.features(chunk).to("cpu", torch.float64), other], 1)
            weight = None if chunk.weight is None else chunk.weight.to("cpu", torch.float64)
            label = None if chunk.label is None else chunk.label.cpu()
            yield replace(chunk, x=x, weight=weight, label=label, extra=None)

    def _beside(self, chunk: Chunk) -> np.ndarray:
        """The chunk's rows of the other columns, (n, q) float64, checked."""
        first, n = chunk.row_start, chunk.n_rows
        if self.array is not None:
            block = self.array[first:first + n]
        else:
            columns = []
            for name in self.kept:
                values = chunk.extra[name]
                values = values.to_numpy(zero_copy_only=False) if hasattr(values, "to_numpy") and not isinstance(
                    values, np.ndarray) else np.asarray(values)
                try:
                    columns.append(np.asarray(values, dtype=np.float64))
                except (TypeError, ValueError):
                    raise DataError(f"{self.what}: column {name!r} is not numeric (near row {first}); encode a "
                                    "categorical outcome as the codes 0, 1, ...") from None
            block = np.stack(columns, 1) if columns else np.zeros((n, 0))
        bad = np.argwhere(np.isinf(block))
        if bad.size:
            row, col = (int(v) for v in bad[0])
            label = repr(self.names[col]) if self.names else str(col)
            raise DataError(f"{self.what} holds an infinite value at row {first + row}, column {label}; drop or "
                            "correct the row")
        return np.ascontiguousarray(block)

    def take(self, rows: Tensor) -> Tensor:
        raise DataError("the structural model's rows are read in order, not sampled")
