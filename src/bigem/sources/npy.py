"""A ``.npy`` file streamed in chunks by positioned reads (data larger than memory)."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.types import READ_AHEAD, Chunk
from . import identity
from .arrays import PROBE_ROWS, choose_shift
from .buffers import BufferPool
from .parts import CutByRows
from .validate import check_shape

_MAGIC = b"\x93NUMPY"


class NpySource(CutByRows):
    """Rows of a 2-D numeric ``.npy`` file, read chunk by chunk, never all at once.
    ``weight``: sample weights held in memory, one per row (float64, CPU), or None.
    ``columns``: the features, by 0-based index (None: every column). A row-major file
    is read whole rows at a time, and the chunk keeps those columns; a column-major one
    reads those columns only."""

    weight: Tensor | None = None
    feature_names = None
    decodes = True  # positioned reads and a dtype conversion per chunk: CPU work for the engine to overlap
    shift: torch.Tensor | None = None  # subtracted from every row in float64 before the cast

    def set_shift(self, shift) -> None:
        """Choose the shift (see ``arrays.choose_shift``) from the file's first rows."""
        first = self._select(np.asarray(self._mm[: min(self.n_rows, PROBE_ROWS)]))
        self.shift = choose_shift(first, self._mm.dtype, self.dtype, shift)
        self._shift_np = None if self.shift is None else self.shift.numpy()

    def read_in(self, rows: int) -> None:
        self.chunk_rows = max(1, int(rows))

    def fingerprint(self) -> dict:
        weights = None if self.weight is None else identity.digest(self.weight)
        seen = {"files": identity.files([self.path]), "weights": weights}
        return seen if self.columns is None else dict(seen, columns=[int(c) for c in self.columns])

    @property
    def weighted(self) -> bool:
        return self.weight is not None

    def weight_blocks(self) -> Iterator[tuple[Tensor, int]]:
        """(weights, first row): the in-memory weights in one block (weighted row sampling)."""
        yield from ([] if self.weight is None else [(self.weight.cpu(), 0)])

    def _weights(self, start: int, stop: int) -> Tensor | None:
        if self.weight is None:
            return None
        return self.weight[start - self.first_row : stop - self.first_row].to(self.device, non_blocking=True)

    def __init__(self, path: str | os.PathLike, dtype: torch.dtype, device: torch.device, chunk_rows: int,
                 columns=None) -> None:
        self.path = os.fspath(path)
        self._unchanged = identity.Unchanged([self.path])  # each pass checks the file is as it was
        try:
            with open(self.path, "rb") as f:
                magic = f.read(len(_MAGIC))
            # Without the magic bytes np.load takes the file for a pickle and suggests unpickling it.
            if magic != _MAGIC:
                why = "it is empty" if not magic else "it does not start with the .npy magic bytes"
                raise DataError(
                    f"{self.path}: not a .npy file ({why}); "
                    "write it with numpy.save from a numeric 2-D array"
                )
            self._mm = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            raise DataError(f"{self.path}: no such file; check the path") from None
        except DataError:
            raise
        except (ValueError, OSError, EOFError) as exc:
            raise DataError(
                f"{self.path}: not a readable .npy file ({exc}); write it with numpy.save from a numeric 2-D array"
            ) from None
        if not isinstance(self._mm, np.ndarray) or self._mm.dtype.kind not in "biuf":  # booleans read as 0 and 1
            kind = getattr(self._mm, "dtype", type(self._mm))
            raise DataError(f"{self.path}: holds {kind}, expected a numeric (float, integer or boolean) 2-D array")
        check_shape(self._mm.shape, name=f"{self.path}", min_rows=0)  # rows: by the caller, who knows its minimum
        self.n_rows, width = (int(s) for s in self._mm.shape)
        self.columns = None if columns is None else column_indices(columns, width, self.path)
        self.n_features = width if self.columns is None else len(self.columns)
        self.dtype, self.device = dtype, device
        self.first_row = 0  # a part of the file starts here (see part)
        self.chunk_rows = max(1, int(chunk_rows))
        self._fortran = bool(self._mm.flags.f_contiguous and not self._mm.flags.c_contiguous)
        self._row_bytes = width * self._mm.dtype.itemsize
        self._buffers = BufferPool.for_device(READ_AHEAD + 2, device)  # the chunks in flight, and one filling
        self._fd: int | None = None

    @property
    def file_itemsize(self) -> int:
        """Bytes per value in the file (before conversion to the compute dtype)."""
        return int(self._mm.dtype.itemsize)

    @property
    def file_width(self) -> int:
        """Columns per row in the file (read whole, in a row-major file)."""
        return int(self._mm.shape[1])

    def _select(self, raw: np.ndarray) -> np.ndarray:
        """raw's chosen columns (raw itself when every column is chosen)."""
        return raw if self.columns is None else raw[:, self.columns]

    def _chosen(self, raw: np.ndarray) -> np.ndarray:
        """A pooled array of raw's chosen columns; raw goes back to the pool at once."""
        if self.columns is None:
            return raw
        out = self._buffers.array((raw.shape[0], len(self.columns)), raw.dtype)
        np.take(raw, self.columns, axis=1, out=out)
        self._buffers.give_back(raw)
        return out

    @property
    def _np_dtype(self):
        return np.float32 if self.dtype == torch.float32 else np.float64

    def _convert(self, raw: np.ndarray) -> Tensor:
        with _beyond_the_dtype_is_infinite():
            if self.shift is not None:
                block = np.subtract(raw, self._shift_np, dtype=np.float64).astype(self._np_dtype)
            else:
                block = raw if raw.dtype == self._np_dtype else raw.astype(self._np_dtype)
        return torch.from_numpy(block).to(self.device)

    def _compute_dtype_array(self, raw: np.ndarray) -> np.ndarray:
        """A pooled array of raw's values in the compute dtype, less the shift if any (raw
        itself if it is one already and there is none); raw, when converted, goes back
        to the pool at once."""
        if raw.dtype == self._np_dtype and self.shift is None:
            return raw
        out = self._buffers.array(raw.shape, self._np_dtype)
        with _beyond_the_dtype_is_infinite():
            if self.shift is None:
                np.copyto(out, raw, casting="unsafe")
            else:  # in float64, a block of rows at a time, cast into the pooled array
                np.subtract(raw, self._shift_np, out=out, dtype=np.float64, casting="unsafe")
        self._buffers.give_back(raw)
        return out

    def _pread(self, out: np.ndarray, first_row: int) -> None:
        """Read consecutive rows straight into ``out`` with one positioned read.

        Plain reads, not the memory map: pages of a map count towards the process's
        resident memory until the kernel drops them, which would make a streamed fit
        of a file larger than memory look (and be accounted) as large as the file.
        """
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        view = memoryview(out).cast("B")
        offset = self._mm.offset + first_row * self._row_bytes
        done = 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], offset + done)
            if n <= 0:
                raise DataError(f"{self.path}: file ended at byte {offset + done}, before row {first_row + done // self._row_bytes}; it is truncated")
            done += n

    def _read(self, start: int, stop: int) -> Tensor:
        if self._fortran:  # column-major: the chosen columns' runs of rows, through the map
            return self._convert(np.array(self._select(self._mm[start:stop])))
        raw = self._buffers.array((stop - start, self.file_width), self._mm.dtype.newbyteorder("="))
        self._pread(raw, start)
        if self._mm.dtype.byteorder not in "=|":
            raw.byteswap(inplace=True)  # the file's byte order, read into a native-order array
        block = self._compute_dtype_array(self._chosen(raw))
        # asynchronous from a pinned block (see buffers): the engine orders it before the E-step
        return self._buffers.lend(block).to(self.device, non_blocking=True)

    def chunks(self) -> Iterator[Chunk]:
        self._unchanged.check()
        first, stop = self.first_row, self.first_row + self.n_rows
        for s in range(first, stop, self.chunk_rows):
            end = min(s + self.chunk_rows, stop)
            yield Chunk(self._read(s, end), self._weights(s, end), s)

    def boundaries(self) -> None:
        return None  # positioned reads start at any row

    def part(self, start: int, stop: int) -> NpySource:
        """Rows [start, stop) of this source, read by positioned reads of that range only."""
        part = copy.copy(self)
        part.first_row, part.n_rows = self.first_row + start, stop - start
        part.weight = None if self.weight is None else self.weight[start:stop]
        part._fd = None  # its own descriptor and buffers: parts are read by other threads
        part._buffers = BufferPool.for_device(READ_AHEAD + 2, self.device)
        return part


    def take(self, rows: Tensor) -> Tensor:
        idx = rows.cpu().numpy() + self.first_row
        if self._fortran:
            return self._convert(np.array(self._select(self._mm[idx])))
        return torch.cat([self._read(int(r), int(r) + 1) for r in idx]) if len(idx) else self._read(0, 0)

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


def column_indices(columns, width: int, path: str) -> np.ndarray:
    """A .npy file's chosen columns as 0-based indices: ints, or strings of digits (as
    the command line gives them), each once and within the file's ``width``."""
    if isinstance(columns, (str, bytes)) or not len(columns):
        raise DataError(f"{path}: columns= must be a non-empty list of 0-based column indices; got {columns!r}")
    indices = []
    for c in columns:
        if isinstance(c, str) and c.isascii() and c.isdigit():  # "²" is a digit to str.isdigit, not to int()
            c = int(c)
        if isinstance(c, (bool, np.bool_)) or not isinstance(c, (int, np.integer)) or c < 0:
            raise DataError(f"{path}: unknown column {c!r}; a .npy file has no column names: use indices "
                            f"0..{width - 1}")
        if c >= width:
            raise DataError(f"{path}: column index {c} is out of range; the file has {width} columns (0..{width - 1})")
        indices.append(int(c))
    twice = sorted({c for c in indices if indices.count(c) > 1})
    if twice:
        raise DataError(f"{path}: columns= lists {twice} more than once; name each feature once")
    return np.asarray(indices, dtype=np.intp)


def _beyond_the_dtype_is_infinite():
    """Values beyond the compute dtype's range (1e200 in float32) cast to infinity without
    numpy's overflow warning: the finiteness check then refuses them, saying to rescale
    or to pass dtype='float64'."""
    return np.errstate(over="ignore", invalid="ignore")
