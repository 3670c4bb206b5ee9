"""In-memory sources: numpy arrays, torch tensors, pandas DataFrames."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core.types import READ_AHEAD, Chunk
from . import identity
from .parts import CutByRows


class TensorSource(CutByRows):
    """Rows of a tensor in the compute dtype, on the compute device.

    Chunks are views (no copy); chunking only bounds the E-step's working set. Rows held
    on the host for another ``device`` (one process of a group holding the whole array)
    move there a chunk at a time, and a :meth:`part` moves its rows there once.
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
        shift: Tensor | None = None,
        first_row: int = 0,
        device: torch.device | None = None,
        labels: Tensor | None = None,
    ) -> None:
        self.x = x
        self.labels = labels  # (n,) int64 class codes (-1: unlabelled) of semi-supervised fitting, or None
        self.shift = shift  # the rows are the data minus this (see choose_shift), or None
        self.first_row = first_row  # where these rows start in the whole data set (a part of it)
        self.device = x.device if device is None else torch.device(device)
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
        """The rows' sampled digest; class labels whole (one int per row, and a few
        relabelled rows change the fit)."""
        found = identity.edges(self.x, self.weight)
        return found if self.labels is None else {**found, "labels": identity.digest(self.labels)}

    def chunks(self) -> Iterator[Chunk]:
        for s in range(0, self.n_rows, self.chunk_rows):
            w = None if self.weight is None else self.weight[s : s + self.chunk_rows].to(self.device)
            kept = None if self.extra is None else {k: v[s : s + self.chunk_rows] for k, v in self.extra.items()}
            label = None if self.labels is None else self.labels[s : s + self.chunk_rows].to(self.device)
            yield Chunk(self.x[s : s + self.chunk_rows].to(self.device), w, self.first_row + s, kept, label)

    def take(self, rows: Tensor) -> Tensor:
        return self.x[rows.to(self.x.device)].to(self.device)

    def boundaries(self) -> None:
        return None  # a view cuts anywhere

    def part(self, start: int, stop: int) -> TensorSource:
        """Rows [start, stop) as a source of their own: views, moved to the compute
        device (once) if they are held elsewhere."""
        w = None if self.weight is None else self.weight[start:stop].to(self.device)
        kept = None if self.extra is None else {k: v[start:stop] for k, v in self.extra.items()}
        labels = None if self.labels is None else self.labels[start:stop].to(self.device)
        return TensorSource(self.x[start:stop].to(self.device), w, self.chunk_rows, self.feature_names, kept,
                            self.shift, self.first_row + start, labels=labels)



def chunk_rows_for_budget(budget_bytes: int, n_features: int, bytes_per_value: int) -> int:
    """Rows per chunk so that everything in flight, ``bytes_per_value`` for each of a
    chunk's values, stays within the memory budget."""
    return max(1024, budget_bytes // max(1, n_features * bytes_per_value))


def streamed_bytes_per_value(itemsize: int, decode_itemsize: int) -> int:
    """Bytes in flight per value of a chunk read from files: READ_AHEAD decoded chunks
    and the one computing, in the compute dtype, plus the reader's raw batch."""
    return (READ_AHEAD + 1) * itemsize + decode_itemsize


# Rows of data at most this far beyond float32's digits are moved by a shift before the
# cast: see :func:`choose_shift`.
PROBE_ROWS = 1024
_SHIFT_BLOCK = 1 << 16  # rows converted at a time when shifting (a float64 temporary each)


def beyond_float32(dtype) -> bool:
    """Whether values stored in ``dtype`` (numpy or torch) carry more digits than float32
    keeps: float64, and integers wider than 16 bits."""
    if isinstance(dtype, torch.dtype):
        return dtype in (torch.float64, torch.int32, torch.int64)
    dtype = np.dtype(dtype)
    return (dtype.kind == "f" and dtype.itemsize > 4) or (dtype.kind in "iu" and dtype.itemsize > 2)


@dataclass(frozen=True)
class Centre:
    """A shift as "auto" chooses one (only where float32 would lose digits), but this
    vector rather than the first rows' mean: a fitted model's centre, for inference.
    The rows scored must not set the coordinates: one far row among them would move
    the shift to it, and every other row would lose its digits in the cast."""

    vector: Tensor


def choose_shift(first_rows, stored_dtype, dtype: torch.dtype, shift) -> Tensor | None:
    """The vector subtracted from every row before the cast to ``dtype`` (float64, (D,)),
    or None. ``shift``: None (no shift), a vector (that one, always: the caller's
    coordinates), "auto": the mean of the first rows, when the data is stored with
    more digits than a float32 computation keeps, or a :class:`Centre`: its vector,
    when "auto" would shift.

    Data far from the origin (timestamps, coordinates: an offset of 1e6 times the
    spread) loses its digits in the cast to float32 itself, before any kernel can centre
    it; subtracted in float64 first, a row keeps them. Models that allow it (Gaussians)
    move their parameters by the same vector.
    """
    if shift is None:
        return None
    if isinstance(shift, Centre):  # host data: moved, not read back
        if dtype != torch.float32 or not beyond_float32(stored_dtype):
            return None
        vector = shift.vector.to("cpu", torch.float64)
        return vector if first_rows is None or vector.shape[0] == first_rows.shape[-1] else None
    if not isinstance(shift, str):  # the caller's coordinates (another width: theirs to refuse)
        vector = torch.as_tensor(np.asarray(shift.cpu() if isinstance(shift, Tensor) else shift, dtype=np.float64))
        return vector if first_rows is None or vector.shape[0] == first_rows.shape[-1] else None
    if dtype != torch.float32 or not beyond_float32(stored_dtype):
        return None
    # row-major whatever the input's layout, so the sum rounds alike for every source
    rows = first_rows.detach().to("cpu", torch.float64).contiguous() if isinstance(first_rows, Tensor) else (
        torch.from_numpy(np.array(first_rows, dtype=np.float64, order="C")))
    # NaN, inf and values beyond float32's range (inf once cast) are for validation to
    # report, not to shift by: a 1e300 in the mean made every row of its column inf
    finite = torch.isfinite(rows) & (rows.abs() <= torch.finfo(torch.float32).max)
    total = torch.where(finite, rows, torch.zeros_like(rows)).sum(0)
    mean = total / finite.sum(0).clamp(min=1)
    return _unless_far(mean, torch.where(finite, rows, torch.full_like(rows, float("nan"))))


def _unless_far(mean: Tensor, rows: Tensor) -> Tensor:
    """The mean, but the median for a feature whose mean a few far rows have pulled out
    of the bulk (beyond the 5-95% range by its own width): one row at 1e12 among the
    probe's would set the shift to 1e9, and every other row would lose its digits in
    the cast. The mean elsewhere, so ordinary data keeps its coordinates bit for bit."""
    if rows.shape[0] < 3:
        return mean
    with warnings.catch_warnings():  # a column of NaN alone: its quantiles are NaN, and it keeps the mean
        warnings.simplefilter("ignore", RuntimeWarning)  # (numpy's: torch's quantile caps its input's size)
        low, high, median = torch.from_numpy(np.nanquantile(rows.numpy(), [0.05, 0.95, 0.5], axis=0))
    width = high - low
    far = (mean < low - width) | (mean > high + width)
    return torch.where(far, median, mean)


def as_tensor(x, dtype: torch.dtype, device: torch.device, shift: Tensor | None = None) -> Tensor:
    """numpy/torch -> torch in dtype on device; shares memory when nothing changes.

    Read-only arrays (memmaps, broadcast views) are shared too: bigem never writes
    to its input, so torch's warning about non-writable arrays does not apply. With
    ``shift``, the rows minus it, subtracted in float64 before the cast, a block of rows
    at a time (no float64 copy of the whole data).
    """
    if shift is not None:
        out = torch.empty(tuple(x.shape), dtype=dtype, device=device)
        for s in range(0, x.shape[0], _SHIFT_BLOCK):
            block = x[s : s + _SHIFT_BLOCK]
            if isinstance(block, Tensor):
                block = block.detach().to("cpu", torch.float64)
            else:  # a float64 copy of the block, writable (the input may be a read-only map)
                block = torch.from_numpy(np.array(block, dtype=np.float64))
            out[s : s + _SHIFT_BLOCK] = (block - shift).to(device=device, dtype=dtype)
        return out
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
