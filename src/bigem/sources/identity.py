"""What identifies a data set cheaply, for checkpoints: a fit resumes only on the data
it was saved from. Files are known by their paths, sizes and modification times; rows
in memory by a digest of their first and last rows (reading every row would cost a
pass); a cluster's partitions by their graph keys."""

from __future__ import annotations

import hashlib
import os

import torch
from torch import Tensor

from ..io.files import is_url

_EDGE_ROWS = 1024  # rows hashed at each end of data in memory


def digest(*tensors: Tensor | None) -> str:
    """A short SHA-256 of the tensors' bytes (CPU, contiguous)."""
    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def edges(x: Tensor, weight: Tensor | None = None) -> dict:
    """Rows in memory: their count and a digest of the first and last rows (and weights)."""
    n = x.shape[0]
    ends = lambda t: None if t is None else torch.cat([t[:_EDGE_ROWS], t[max(_EDGE_ROWS, n - _EDGE_ROWS) :]])  # noqa: E731
    return {"rows": int(n), "digest": digest(ends(x), ends(weight))}


def files(paths: list[str]) -> list:
    """Each file's path, size and modification time (a URL: its path only)."""
    out = []
    for p in paths:
        if is_url(p):
            out.append([p])
            continue
        st = os.stat(p)
        out.append([os.path.abspath(p), st.st_size, st.st_mtime_ns])
    return out
