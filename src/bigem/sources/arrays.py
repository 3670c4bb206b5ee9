"""In-memory sources: numpy arrays, torch tensors, pandas DataFrames."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .._core.types import READ_AHEAD, Chunk
from . import identity


class TensorSource:
    """Rows of a tensor already in the compute dtype and on the compute device.

    Chunks are views (no copy); chunking only bounds the E-step's working set.
    """

    decodes = False
    weight_blocks = None

    def __init__(
        self,
        x: Tensor,
        weight: Tensor | None,
        chunk_rows: int,
        feature_names: list[str] | None = None,
        extra: dict | None = None,
    ) -> None:
        self.x = x
        self.extra = extra
        self.weight = weight
        self.chunk_rows = max(1, int(chunk_rows))
        self.n_rows, self.n_features = (int(s) for s in x.shape)
        self.feature_names = feature_names

    @property
    def weighted(self) -> bool:
        return self.weight is not None

    def read_in(self, rows: int) -> None:
        self.chunk_rows = max(1, int(rows))

    def fingerprint(self) -> dict:
        return identity.edges(self.x, self.weight)

    def chunks(self) -> Iterator[Chunk]:
        for s in range(0, self.n_rows, self.chunk_rows):
            w = None if self.weight is None else self.weight[s : s + self.chunk_rows]
            kept = None if self.extra is None else {k: v[s : s + self.chunk_rows] for k, v in self.extra.items()}
            yield Chunk(self.x[s : s + self.chunk_rows], w, s, kept)

    def take(self, rows: Tensor) -> Tensor:
        return self.x[rows.to(self.x.device)]



def chunk_rows_for_budget(budget_bytes: int, n_features: int, bytes_per_value: int) -> int:
    """Rows per chunk so that everything in flight, ``bytes_per_value`` for each of a
    chunk's values, stays within the memory budget."""
    return max(1024, budget_bytes // max(1, n_features * bytes_per_value))


def streamed_bytes_per_value(itemsize: int, decode_itemsize: int) -> int:
    """Bytes in flight per value of a chunk read from files: READ_AHEAD decoded chunks
    and the one computing, in the compute dtype, plus the reader's raw batch."""
    return (READ_AHEAD + 1) * itemsize + decode_itemsize


def as_tensor(x, dtype: torch.dtype, device: torch.device) -> Tensor:
    """numpy/torch -> torch in dtype on device; shares memory when nothing changes.

    Read-only arrays (memmaps, broadcast views) are shared too: bigem never writes
    to its input, so torch's warning about non-writable arrays does not apply.
    """
    if isinstance(x, Tensor):
        return x.to(device=device, dtype=dtype).contiguous()
    if x.dtype.byteorder not in "=|":
        x = x.astype(x.dtype.newbyteorder("="))
    if any(stride < 0 for stride in x.strides):  # a reversed view (e.g. DataFrame columns picked in reverse)
        x = np.ascontiguousarray(x)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        t = torch.from_numpy(x)
    # row-major, so a chunk is one contiguous slice (a DataFrame's values are column-major)
    return t.to(device=device, dtype=dtype).contiguous()
