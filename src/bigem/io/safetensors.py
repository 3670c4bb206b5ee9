"""A small, strict reader/writer of the safetensors format (no pickle, no code execution).

Layout: 8-byte little-endian header length, a JSON header mapping each tensor name to
{"dtype", "shape", "data_offsets"} (plus "__metadata__": str -> str), then the raw
little-endian bytes. Files we write open with the ``safetensors`` library too. We read
them ourselves to validate every offset and shape and to report corruption clearly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import struct

import numpy as np
import torch
from torch import Tensor

from .._core.errors import ModelFileError
from .files import check_model_path, write_atomically

_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
_NAMES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 << 20


def write_model_file(path: str | os.PathLike, tensors: dict[str, Tensor], metadata: dict) -> None:
    """Write atomically (``files.Partial``): the file appears whole or not at all."""
    path = check_model_path(path)
    text = json.dumps(metadata, sort_keys=True)
    header: dict = {"__metadata__": {"bigem": text}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        # torch's contiguous copy keeps a 0-d tensor 0-d (numpy's ascontiguousarray makes it (1,): a
        # spherical prior came back of another shape than its model's, and its file would not load)
        arr = tensors[name].detach().cpu().contiguous().numpy()
        dt = np.dtype(arr.dtype).newbyteorder("<")
        if dt not in _NAMES:
            raise ValueError(f"cannot store tensor {name!r} of dtype {arr.dtype}")
        data = arr.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[dt], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    header["__metadata__"]["sha256"] = _checksum(text, blobs)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:
            f.write(struct.pack("<Q", len(head)))
            f.write(head)
            for data in blobs:
                f.write(data)

    write_atomically(path, write)


def read_model_file(path: str | os.PathLike) -> tuple[dict[str, Tensor], dict]:
    """Tensors (float64/float32/int64) and the bigem metadata; ModelFileError on any defect.

    Only a regular file is read (a FIFO would block, a device never end), and never more
    than it declares: the 8-byte length, a header of at most 100 MB, then the tensors'
    bytes, whose total must be the rest of the file."""
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise ModelFileError(f"a model file's path must be a str or os.PathLike, got {type(path).__name__}")
    path = os.fsdecode(path)
    bad = f"{path}: not a valid bigem model file"
    with _open_regular(path) as f:
        size = os.fstat(f.fileno()).st_size
        head = _read(f, min(size, 8), path)
        n = struct.unpack("<Q", head)[0] if size >= 8 else None
        data = _data_format(head) if n is None or n > min(_MAX_HEADER, size - 8) else ""  # (no model file is one)
        if data:
            raise ModelFileError(f"{bad}: it is {data}, not a model file (a model file is what an estimator's save or "
                                 "`bigem fit -o` writes; on the command line the model comes before the data)")
        if n is None:
            raise ModelFileError(f"{bad} (only {size} bytes; truncated or empty)")
        if n > min(_MAX_HEADER, size - 8):
            raise ModelFileError(f"{bad} (header length {n} exceeds the file size {size}; truncated or not safetensors)")
        header = _json(_read(f, n, path), bad, "header")
        if not isinstance(header, dict):
            raise ModelFileError(f"{bad} (header is not a JSON object)")
        extra = header.pop("__metadata__", None)
        text = extra.get("bigem") if isinstance(extra, dict) else None
        if not isinstance(text, str):
            raise ModelFileError(f"{bad} (no bigem metadata in the header; write model files with the estimator's save)")
        meta = _json(text, bad, "bigem metadata")
        if not isinstance(meta, dict):
            raise ModelFileError(f"{bad} (bigem metadata is not a JSON object)")
        body_size = size - 8 - n
        layout = {}
        end_max = 0
        for name, info in header.items():
            try:
                dt = _DTYPES[info["dtype"]]
                shape = tuple(_integer(s) for s in info["shape"])
                start, end = (_integer(o) for o in info["data_offsets"])
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelFileError(f"{bad} (tensor {name!r}: malformed entry {exc})") from None
            count = math.prod(shape)  # Python ints: a crafted shape cannot overflow to a small count
            if min(shape, default=0) < 0 or not 0 <= start <= end <= body_size or end - start != count * dt.itemsize:
                raise ModelFileError(
                    f"{bad} (tensor {name!r}: shape {shape} does not match bytes {start}..{end} of {body_size}; "
                    "the file is truncated or was modified)"
                )
            end_max = max(end_max, end)
            layout[name] = (dt, shape, start, end)
        if end_max != body_size:
            raise ModelFileError(f"{bad} ({body_size - end_max} trailing bytes; the file was modified)")
        body = _read(f, body_size, path)
    written = extra.get("sha256")  # absent from files of earlier versions, which are read unchecked
    if written is not None and written != _checksum(text, [body]):
        raise ModelFileError(f"{bad} (its bytes do not match the checksum written with them: the file was damaged or "
                             "modified after it was written; save the model again)")
    tensors = {
        name: torch.from_numpy(np.frombuffer(body[start:end], dtype=dt).reshape(shape).copy())
        for name, (dt, shape, start, end) in layout.items()
    }
    return tensors, meta


def _data_format(head: bytes) -> str:
    """What a data file whose first bytes are ``head`` is ('' if none it knows), asked
    only of a file that cannot be a model file (a model file's first 8 bytes are its
    header's length, which must fit in the file)."""
    for magic, name in ((b"\x93NUMPY", "a .npy array"), (b"PAR1", "a Parquet file"), (b"ARROW1", "an Arrow IPC file"),
                        (b"PK\x03\x04", "a zip archive (.npz?)")):
        if head.startswith(magic):
            return name
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file (CSV?)"
    return ""


def _checksum(metadata: str, blobs: list[bytes]) -> str:
    """SHA-256 of the bigem metadata and the tensors' bytes: one flipped bit in a
    parameter or a hyper-parameter is a defect, not a different model."""
    h = hashlib.sha256(metadata.encode())
    for blob in blobs:
        h.update(blob)
    return h.hexdigest()


def _open_regular(path: str):
    """``path`` opened for reading if it is a regular file (through any symbolic link);
    a FIFO, device or socket is refused before it is opened, and checked again once open
    (without blocking) in case it was swapped in between."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file; check the path") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model file ({exc.strerror})") from None
    if stat.S_ISDIR(mode):
        raise ModelFileError(f"{path}: is a folder, not a model file")
    _refuse_special(path, mode)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file; check the path") from None
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model file ({exc.strerror})") from None
    try:
        _refuse_special(path, os.fstat(fd).st_mode)
    except BaseException:
        os.close(fd)
        raise
    return os.fdopen(fd, "rb")


def _refuse_special(path: str, mode: int) -> None:
    if not stat.S_ISREG(mode):
        kind = ("a FIFO (named pipe)" if stat.S_ISFIFO(mode) else "a character device" if stat.S_ISCHR(mode)
                else "a block device" if stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) else "not a file")
        raise ModelFileError(f"{path}: is {kind}, not a model file; give the path of a file written by save")


def _read(f, n: int, path: str) -> bytes:
    """Exactly ``n`` bytes, or a ModelFileError (the file shrank while being read)."""
    data = f.read(n)
    if len(data) != n:
        raise ModelFileError(f"{path}: not a valid bigem model file (the file ended early; it is being written or "
                             "was truncated)")
    return data


def _json(raw: bytes | str, bad: str, what: str) -> object:
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{bad} (unreadable {what}: {exc})") from None
    except RecursionError:
        raise ModelFileError(f"{bad} (unreadable {what}: nested too deeply)") from None


def _integer(value: object) -> int:
    """A JSON integer of the header (shapes, offsets); floats and booleans are rejected."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value
