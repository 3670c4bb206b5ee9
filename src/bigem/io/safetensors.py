"""A small, strict reader/writer of the safetensors format (no pickle, no code execution).

Layout: 8-byte little-endian header length, a JSON header mapping each tensor name to
{"dtype", "shape", "data_offsets"} (plus "__metadata__": str -> str), then the raw
little-endian bytes. Files we write open with the ``safetensors`` library too. We read
them ourselves to validate every offset and shape and to report corruption clearly.
"""

from __future__ import annotations

import json
import math
import os
import struct

import numpy as np
import torch
from torch import Tensor

from .._core.errors import ModelFileError
from .files import check_output_path, write_atomically

_DTYPES = {"F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "I64": np.dtype("<i8")}
_NAMES = {v: k for k, v in _DTYPES.items()}
_MAX_HEADER = 100 << 20


def write_model_file(path: str | os.PathLike, tensors: dict[str, Tensor], metadata: dict) -> None:
    """Write atomically (``files.Partial``): the file appears whole or not at all."""
    path = check_output_path(path)
    header: dict = {"__metadata__": {"bigem": json.dumps(metadata, sort_keys=True)}}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name].detach().cpu().numpy())
        dt = np.dtype(arr.dtype).newbyteorder("<")
        if dt not in _NAMES:
            raise ValueError(f"cannot store tensor {name!r} of dtype {arr.dtype}")
        data = arr.astype(dt, copy=False).tobytes()
        header[name] = {"dtype": _NAMES[dt], "shape": list(arr.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
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
    """Tensors (float64/float32/int64) and the bigem metadata; ModelFileError on any defect."""
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise ModelFileError(f"{path}: no such model file; check the path") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a folder, not a model file") from None
    bad = f"{path}: not a valid bigem model file"
    if len(raw) < 8:
        raise ModelFileError(f"{bad} (only {len(raw)} bytes; truncated or empty)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > min(_MAX_HEADER, len(raw) - 8):
        raise ModelFileError(f"{bad} (header length {n} exceeds the file size {len(raw)}; truncated or not safetensors)")
    try:
        header = json.loads(raw[8 : 8 + n].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{bad} (unreadable header: {exc})") from None
    if not isinstance(header, dict):
        raise ModelFileError(f"{bad} (header is not a JSON object)")
    extra = header.pop("__metadata__", None)
    text = extra.get("bigem") if isinstance(extra, dict) else None
    if not isinstance(text, str):
        raise ModelFileError(f"{bad} (no bigem metadata in the header; write model files with the estimator's save)")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{bad} (unreadable bigem metadata: {exc})") from None
    if not isinstance(meta, dict):
        raise ModelFileError(f"{bad} (bigem metadata is not a JSON object)")
    body = raw[8 + n :]
    tensors = {}
    end_max = 0
    for name, info in header.items():
        try:
            dt = _DTYPES[info["dtype"]]
            shape = tuple(_integer(s) for s in info["shape"])
            start, end = (_integer(o) for o in info["data_offsets"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{bad} (tensor {name!r}: malformed entry {exc})") from None
        count = math.prod(shape)  # Python ints: a crafted shape cannot overflow to a small count
        if min(shape, default=0) < 0 or not 0 <= start <= end <= len(body) or end - start != count * dt.itemsize:
            raise ModelFileError(
                f"{bad} (tensor {name!r}: shape {shape} does not match bytes {start}..{end} of {len(body)}; "
                "the file is truncated or was modified)"
            )
        end_max = max(end_max, end)
        tensors[name] = torch.from_numpy(np.frombuffer(body[start:end], dtype=dt).reshape(shape).copy())
    if end_max != len(body):
        raise ModelFileError(f"{bad} ({len(body) - end_max} trailing bytes; the file was modified)")
    return tensors, meta


def _integer(value: object) -> int:
    """A JSON integer of the header (shapes, offsets); floats and booleans are rejected."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{value!r} is not an integer")
    return value
