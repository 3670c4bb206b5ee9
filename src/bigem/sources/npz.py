"""A sparse matrix in a ``.npz`` file written by ``scipy.sparse.save_npz``, streamed by rows.

The file is a zip of .npy arrays: ``indptr`` (rows + 1), ``indices`` and ``data`` (one
per stored value), ``shape`` and ``format``. A block of rows needs its slice of
``indptr`` and the matching slices of ``indices`` and ``data``, so nothing is ever read
whole:

* uncompressed (``save_npz(..., compressed=False)``, zip members stored as they are):
  each slice is one positioned read at its byte offset in the file, which also serves
  random access (the rows initialisation samples);
* compressed (the default): the three members are decompressed side by side, front to
  back, once per pass; random access reads a pass and keeps the rows asked for.

Memory stays within a few chunks either way. Only CSR files stream by rows; a CSC or COO
file is refused with the conversion that fixes it. Reads are plain reads, not memory
maps (mapped pages count as resident memory).
"""

from __future__ import annotations

import copy
import os
import struct
import sys
import threading
import zipfile
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .._core.errors import DataError
from .._core.sparse import SparseRows
from .._core.types import Chunk
from . import identity
from .counts import MEMO_SHARE, RowMemos, canonical, check_counts, chunk_rows_for, stored_bytes, to_rows
from .parts import CutByRows

_LOCAL_HEADER = 30  # bytes of a zip local file header before its name and extra field
_NAMES = ("indptr", "indices", "data")


def is_npz_path(X: object) -> bool:
    """A path (or a one-element list of paths) ending in .npz."""
    if isinstance(X, (list, tuple)) and len(X) == 1:
        X = X[0]
    return isinstance(X, (str, os.PathLike)) and os.fspath(X).lower().endswith(".npz")


@dataclass(frozen=True)
class _Member:
    """One .npy array inside the zip: its element type and count, and, when stored
    uncompressed, the byte offset of its first element in the file."""

    name: str
    dtype: np.dtype
    count: int
    offset: int | None  # None: compressed, read as a stream

    def native(self) -> np.dtype:
        return self.dtype.newbyteorder("=")


def _npy_header(f) -> tuple[tuple[int, ...], bool, np.dtype]:
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f".npy format version {version} is not supported")


class NpzSource(CutByRows):
    """Rows of a CSR matrix saved by ``scipy.sparse.save_npz``, read a block at a time."""

    feature_names = None
    shift = None
    weight_blocks = None
    decodes = True  # reading (and decompressing) a block is real work for the read-ahead thread

    def __init__(self, path: str, dtype: torch.dtype, device: torch.device, memory_budget: int,
                 chunk_size: int | None = None) -> None:
        self.path = path
        self._unchanged = identity.Unchanged([path])  # each pass checks the file is as it was
        self.dtype, self.device = dtype, device
        self.weight: Tensor | None = None
        self.checked = False
        self._duplicates = False  # a row seen to repeat a column id (or to list ids out of order)
        try:
            with zipfile.ZipFile(path) as zf, open(path, "rb") as raw:
                names = {os.path.splitext(n)[0]: n for n in zf.namelist()}
                missing = [n for n in ("format", "shape") if n not in names]
                if missing:
                    raise DataError(f"{path}: not a sparse matrix saved by scipy.sparse.save_npz (no "
                                    f"{' or '.join(m + '.npy' for m in missing)} inside); save it with "
                                    "scipy.sparse.save_npz(path, X)")
                fmt = self._small(zf, names["format"]).item()
                fmt = fmt.decode() if isinstance(fmt, bytes) else str(fmt)
                if fmt != "csr":
                    raise DataError(
                        f"{path}: holds a {fmt.upper()} matrix; bigem streams CSR files by rows: save it as "
                        "scipy.sparse.save_npz(path, X.tocsr()) (compressed=False lets bigem read any rows directly)"
                    )
                lacking = [n for n in _NAMES if n not in names]
                if lacking:
                    raise DataError(f"{path}: the CSR matrix has no {', '.join(lacking)} array; the file is damaged")
                shape = tuple(int(v) for v in self._small(zf, names["shape"]))
                self.members = {n: self._member(zf, raw, names[n]) for n in _NAMES}
        except DataError:
            raise
        except FileNotFoundError:
            raise DataError(f"{path}: no such file; check the path") from None
        except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError, struct.error) as exc:
            raise DataError(f"{path}: not a readable .npz file ({exc}); write it with scipy.sparse.save_npz") from None
        if len(shape) != 2:
            raise DataError(f"{path}: the matrix has shape {shape}; expected (documents, words)")
        self.n_rows, self.n_features = shape
        ptr, idx, dat = (self.members[n] for n in _NAMES)
        if ptr.count != self.n_rows + 1 or idx.count != dat.count or ptr.dtype.kind not in "iu" or idx.dtype.kind not in "iu":
            raise DataError(f"{path}: indptr, indices and data do not form a CSR matrix of shape {shape}; "
                            "the file is damaged")
        self.nnz = dat.count  # the file's entries (a part's rows hold some of them: see part)
        self.first_row, self.rows_in_file = 0, self.n_rows
        self.random_access = all(m.offset is not None for m in self.members.values())
        itemsize = torch.finfo(dtype).bits // 8
        # ids of int32 or int64 and counts as wide as the compute dtype become the chunk's
        # own arrays (to_rows converts them in place): no raw batch beside the chunks
        in_place = dat.dtype.isnative and dat.dtype.kind in "iuf" and dat.dtype.itemsize == itemsize and \
            idx.dtype.isnative and idx.dtype.kind == "i" and idx.dtype.itemsize in (4, 8)
        raw_entry = 0 if in_place else idx.dtype.itemsize + dat.dtype.itemsize
        self.chunk_rows = max(1, int(chunk_size or chunk_rows_for(memory_budget, self.nnz / max(1, self.n_rows),
                                                                  raw_entry, itemsize)))
        self._fd: int | None = None
        self._recycled = _Recycled()
        self._memo_limit = memory_budget // MEMO_SHARE
        self._memos = RowMemos(self._memo_limit)

    # ------------------------------------------------------------------ the file's layout
    @staticmethod
    def _small(zf: zipfile.ZipFile, name: str) -> np.ndarray:
        with zf.open(name) as f:
            return np.load(f, allow_pickle=False)

    @staticmethod
    def _member(zf: zipfile.ZipFile, raw, name: str) -> _Member:
        info = zf.getinfo(name)
        with zf.open(name) as f:
            shape, fortran, dtype = _npy_header(f)
            header = f.tell()
        if len(shape) != 1 or dtype.hasobject:
            raise ValueError(f"{name} holds an array of shape {shape} and dtype {dtype}, not one of numbers")
        offset = None
        if info.compress_type == zipfile.ZIP_STORED:
            raw.seek(info.header_offset)
            local = raw.read(_LOCAL_HEADER)
            name_len, extra_len = struct.unpack("<HH", local[26:30])
            offset = info.header_offset + _LOCAL_HEADER + name_len + extra_len + header
        return _Member(name, dtype, int(shape[0]) if shape else 1, offset)

    # ------------------------------------------------------------------ reading
    def _pread(self, m: _Member, start: int, stop: int, out: np.ndarray | None = None) -> np.ndarray:
        """Elements start..stop of a stored member, one positioned read (into ``out``, of
        the member's dtype, when given), native byte order."""
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        out = np.empty(max(0, stop - start), dtype=m.dtype) if out is None else out
        view = memoryview(out.view(np.uint8))
        offset, done = m.offset + start * m.dtype.itemsize, 0
        while done < len(view):
            n = os.preadv(self._fd, [view[done:]], offset + done)
            if n <= 0:
                raise DataError(f"{self.path}: ends inside {m.name} (element {start + done // m.dtype.itemsize}); "
                                "the file is truncated")
            done += n
        return out if m.dtype.isnative else out.astype(m.native())

    def _blocks(self, check: bool) -> Iterator[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]]:
        """(first row, last row + 1, indptr slice, indices, data) per chunk, in row order."""
        ptr_m, idx_m, dat_m = (self.members[n] for n in _NAMES)
        with ExitStack() as stack:
            streams = None
            if not self.random_access:
                zf = stack.enter_context(zipfile.ZipFile(self.path))
                streams = [stack.enter_context(_Stream(zf, m)) for m in (ptr_m, idx_m, dat_m)]
                last = streams[0].read(1)
            first, end = self.first_row, self.first_row + self.n_rows
            if streams is not None and first:  # a part of a compressed file: decompress past the rows before it
                last = self._skip(streams, first, last)
            for s in range(first, end, self.chunk_rows):
                e = min(s + self.chunk_rows, end)
                if streams is None:
                    ptr = self._pread(ptr_m, s, e + 1).astype(np.int64, copy=False)
                else:
                    ptr = np.concatenate([last, streams[0].read(e - s)]).astype(np.int64, copy=False)
                    last = ptr[-1:]
                lo, hi = int(ptr[0]), int(ptr[-1])
                if (s == 0 and lo != 0) or hi > self.nnz or bool((ptr[1:] < ptr[:-1]).any()):
                    raise DataError(f"{self.path}: indptr is not a valid CSR row index near row {s}; the file is damaged")
                if streams is None:  # both into memory a chunk gave back, if one has
                    count = hi - lo
                    split = -(-count * idx_m.dtype.itemsize // 16) * 16  # data aligned for any dtype
                    memory = self._recycled.take(split + count * dat_m.dtype.itemsize)
                    idx = self._pread(idx_m, lo, hi, memory[: count * idx_m.dtype.itemsize].view(idx_m.dtype))
                    dat = self._pread(dat_m, lo, hi, memory[split:].view(dat_m.dtype))
                else:
                    idx, dat = streams[1].read(hi - lo), streams[2].read(hi - lo)
                if check:
                    check_counts(ptr - lo, idx, dat, s, self.n_features, self.dtype, self.path)
                if check or self._duplicates:  # rows are checked on the first pass, and summed on every one
                    rel = ptr - lo
                    fixed = canonical(rel, idx, dat, self.n_features)
                    if fixed[0] is not rel:
                        self._duplicates = True
                        ptr, idx, dat = fixed
                yield s, e, ptr, idx, dat

    @staticmethod
    def _skip(streams: list[_Stream], rows: int, first: np.ndarray) -> np.ndarray:
        """Read the compressed members past the first ``rows`` rows (a bounded piece at a
        time), indptr[0] (``first``) read already; return indptr[rows], where the next
        read starts."""
        ptr_s, idx_s, dat_s = streams
        piece, last = 1 << 20, first
        for done in range(0, rows, piece):
            last = ptr_s.read(min(piece, rows - done))[-1:]
        entries = int(last[0]) - int(first[0])
        for stream in (idx_s, dat_s):
            for done in range(0, entries, piece):
                stream.read(min(piece, entries - done))
        return last.astype(np.int64)

    def chunks(self) -> Iterator[Chunk]:
        self._unchanged.check()
        first = self.first_row
        for s, e, ptr, idx, dat in self._blocks(not self.checked):
            w = None if self.weight is None else self.weight[s - first : e - first]
            rows = to_rows(ptr - ptr[0], idx, dat, self.n_features, self.dtype, self.device, owned=True)
            yield Chunk(self._memos.attach(rows, s), w, s)

    def take(self, rows: Tensor) -> SparseRows:
        """Rows by sorted index: positioned reads (uncompressed), or one pass (compressed);
        before the first complete pass (an initialisation's sample) what is read is checked."""
        idx = rows.cpu().numpy().astype(np.int64) + self.first_row
        parts = []
        if self.random_access:
            ptr_m, idx_m, dat_m = (self.members[n] for n in _NAMES)
            for r in idx:
                ptr = self._pread(ptr_m, int(r), int(r) + 2).astype(np.int64)
                lo, hi = int(ptr[0]), int(ptr[1])
                ix, dat = self._pread(idx_m, lo, hi), self._pread(dat_m, lo, hi)
                if not self.checked:
                    check_counts(ptr - lo, ix, dat, int(r), self.n_features, self.dtype, self.path)
                parts.append(to_rows(*canonical(ptr - lo, ix, dat, self.n_features), self.n_features, self.dtype,
                                     self.device))
        else:
            for s, e, ptr, ix, dat in self._blocks(not self.checked):
                local = idx[(idx >= s) & (idx < e)] - s
                if len(local):
                    block = to_rows(ptr - ptr[0], ix, dat, self.n_features, self.dtype, self.device)
                    parts.append(block[torch.from_numpy(local)])
        return SparseRows.cat(parts) if parts else SparseRows.empty(self.n_features, self.dtype, self.device)

    # ------------------------------------------------------------------ the rest of the protocol
    @property
    def weighted(self) -> bool:
        return self.weight is not None

    def read_in(self, rows: int) -> None:
        self.chunk_rows = max(1, int(rows))
        self._memos = RowMemos(self._memo_limit)

    def fingerprint(self) -> dict:
        weights = None if self.weight is None else identity.digest(self.weight)
        return {"files": identity.files([self.path]), "weights": weights,
                **({"rows": [self.first_row, self.n_rows]} if self.n_rows != self.rows_in_file else {})}

    def stored_bytes(self) -> int:
        """Bytes of this source's rows held as SparseRows (a part's entries in proportion
        to its rows)."""
        return stored_bytes(self.n_rows, self.nnz * self.n_rows // max(1, self.rows_in_file), self.dtype)

    # ------------------------------------------------------------------ parts (engine='torch')
    def boundaries(self) -> None:
        """Any row is a cut: an uncompressed file reads a part's rows where they lie; a
        compressed one decompresses past the rows before it (never converting them)."""
        return None

    def part(self, start: int, stop: int) -> NpzSource:
        """Rows [start, stop) of this source; its chunks say where their rows lie in the file."""
        part = copy.copy(self)
        part.first_row, part.n_rows = self.first_row + int(start), int(stop) - int(start)
        part.weight = None if self.weight is None else self.weight[start:stop]
        part.checked, part._fd = False, None  # its own first pass and file descriptor
        part._recycled, part._memos = _Recycled(), RowMemos(self._memo_limit)
        return part


    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)
            self._fd = None


class _Recycled:
    """Memory for chunks' entries, handed out again once no chunk holds it.

    A read into fresh memory also pays the kernel for mapping in (and zeroing) every page
    of it, pass after pass: 13 against 9 ms for 60 MB read from the page cache into
    memory read into before (one thread). A block is reused only while this pool's
    reference is its last (every array and tensor made from it holds one, views
    included), so rows a caller keeps (a cache, a sample) keep their memory to
    themselves; the pool holds no more blocks than chunks were alive at once.
    """

    def __init__(self) -> None:
        self._blocks: list[np.ndarray] = []
        self._lock = threading.Lock()
        blocks, i = [np.empty(1, dtype=np.uint8)], 0
        self._free = sys.getrefcount(blocks[i])  # what a block only the list holds counts, as take reads it

    def take(self, nbytes: int) -> np.ndarray:
        """``nbytes`` bytes (uint8) that nothing else refers to."""
        with self._lock:
            blocks = self._blocks
            for i in range(len(blocks)):
                if sys.getrefcount(blocks[i]) <= self._free:  # no reference but the list's
                    if blocks[i].nbytes >= nbytes:
                        return blocks[i][:nbytes]
                    del blocks[i]  # too small for the chunks now read: let it go
                    break
            block = np.empty(nbytes + nbytes // 16, dtype=np.uint8)  # room for the next, slightly larger chunks
            blocks.append(block)
            return block[:nbytes]


class _Stream:
    """A compressed member read front to back, a given number of elements at a time."""

    def __init__(self, zf: zipfile.ZipFile, member: _Member) -> None:
        self.member = member
        self.f = zf.open(member.name)
        _npy_header(self.f)

    def __enter__(self) -> _Stream:
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()

    def read(self, count: int) -> np.ndarray:
        m = self.member
        out = np.empty(count, dtype=m.dtype)
        view = memoryview(out.view(np.uint8))
        done = 0
        while done < len(view):
            n = self.f.readinto(view[done:])
            if not n:
                raise DataError(f"{m.name}: ends early (the .npz file is truncated or damaged)")
            done += n
        return out if m.dtype.isnative else out.astype(m.native())
