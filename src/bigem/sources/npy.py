"""A ``.npy`` file opened as a memory map and streamed in chunks (data larger than memory)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.types import Chunk
from .validate import check_shape

_MAGIC = b"\x93NUMPY"


class NpySource:
    """Rows of a 2-D numeric ``.npy`` file, read chunk by chunk, never all at once."""

    has_weights = False
    feature_names = None

    def __init__(self, path: str | os.PathLike, dtype: torch.dtype, device: torch.device, chunk_rows: int) -> None:
        self.path = os.fspath(path)
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
        if not isinstance(self._mm, np.ndarray) or self._mm.dtype.kind not in "fiu":
            kind = getattr(self._mm, "dtype", type(self._mm))
            raise DataError(f"{self.path}: holds {kind}, expected a numeric (float or integer) 2-D array")
        check_shape(self._mm.shape, name=f"{self.path}")
        self.n_rows, self.n_features = (int(s) for s in self._mm.shape)
        self.dtype, self.device = dtype, device
        self.chunk_rows = max(1, int(chunk_rows))

    def _load(self, index) -> Tensor:
        """Copy rows out of the map, converting to the compute dtype in the same pass."""
        np_dtype = np.float32 if self.dtype == torch.float32 else np.float64
        block = self._mm[index].astype(np_dtype, copy=True)
        return torch.from_numpy(block).to(self.device)

    def _read(self, start: int, stop: int) -> Tensor:
        return self._load(slice(start, stop))

    def chunks(self) -> Iterator[Chunk]:
        for s in range(0, self.n_rows, self.chunk_rows):
            yield Chunk(self._read(s, min(s + self.chunk_rows, self.n_rows)), None, s)

    def take(self, rows: Tensor) -> Tensor:
        return self._load(rows.cpu().numpy())
