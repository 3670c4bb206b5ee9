"""What identifies a data set cheaply, for checkpoints: a fit resumes only on the data
it was saved from. Files are known by their paths, sizes and modification times; rows
in memory by their count and a digest of their first and last rows and of rows
sampled evenly between them (reading every row would cost a pass: an edit of a few
rows in the middle can pass unseen, a change to many rows cannot); a cluster's
partitions by their graph keys."""

from __future__ import annotations

import hashlib
import os

import torch
from torch import Tensor

from .._core.errors import DataError
from ..io.files import is_url

_EDGE_ROWS = 1024  # rows hashed at each end of data in memory
_SAMPLED_ROWS = 8192  # rows hashed between the ends, evenly spaced


def digest(*tensors: Tensor | None) -> str:
    """A short SHA-256 of the tensors' bytes (CPU, contiguous)."""
    h = hashlib.sha256()
    for t in tensors:
        if t is not None:
            h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def edges(x: Tensor, weight: Tensor | None = None) -> dict:
    """Rows in memory: their count and a digest of the first and last rows and of rows
    sampled evenly between them (and of their weights)."""
    n = x.shape[0]
    count = min(_SAMPLED_ROWS, max(0, n - 2 * _EDGE_ROWS))
    picked = torch.linspace(_EDGE_ROWS, max(_EDGE_ROWS, n - _EDGE_ROWS - 1), count).round().long().to(x.device)

    def rows(t: Tensor | None) -> Tensor | None:
        if t is None:
            return None
        return torch.cat([t[:_EDGE_ROWS], t[picked.to(t.device)], t[max(_EDGE_ROWS, n - _EDGE_ROWS) :]])

    return {"rows": int(n), "digest": digest(rows(x), rows(weight))}


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


class Unchanged:
    """Files that must stay as they were while a fit reads them, once a pass: each pass
    starts by comparing their sizes and modification times with those they had when
    they were opened. A file rewritten between passes (a writer still at work, a job that
    refreshes the folder) would otherwise mix two data sets in one fit, silently."""

    def __init__(self, paths: list[str]) -> None:
        self.paths = list(paths)
        self.seen = [_stamp(p) for p in self.paths]  # None for one that cannot be read: opening it says why

    def check(self) -> None:
        """Raise a DataError naming the first file that changed or went away."""
        for path, seen in zip(self.paths, self.seen):
            now = _stamp(path)
            if now == seen:
                continue
            what = "was removed" if now is None else (
                f"changed (its size went from {seen[1]} to {now[1]} bytes)" if now[1] != seen[1]
                else "was rewritten (its modification time changed)")
            raise DataError(f"{path}: {what} while bigem was reading it; a fit reads its files once a pass, and they "
                            "must stay as they were until it ends: let the writer finish first, or fit a copy")


def _stamp(path: str) -> list | None:
    try:
        return files([path])[0]
    except OSError:
        return None
