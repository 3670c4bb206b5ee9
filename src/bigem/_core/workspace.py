"""Reusable per-thread scratch buffers for the hot loops.

On CPU a fresh large allocation costs page faults that rival the matrix product
itself (docs/architecture.md, Speed), so kernels ask the workspace for a buffer by name and
get the same memory back on every chunk and iteration. Buffers are per thread,
so concurrent E-steps (Dask threads, the prefetching engine) never share one.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
from torch import Tensor

T = TypeVar("T")

_TURNS = threading.local()


@contextlib.contextmanager
def in_turn(count: int) -> Iterator[None]:
    """Within it, this thread asks the memos of :meth:`Workspace.derived` for the sources
    of ``count`` runs in turn (restarts in lockstep: each run's parameters chunk after
    chunk, then each run's M-step its old and its new ones), so that each memo keeps
    every run's, not only the last run's."""
    before = getattr(_TURNS, "count", 1)
    _TURNS.count = max(int(count), 1)
    try:
        yield
    finally:
        _TURNS.count = before


class Workspace:
    """Named buffers, grown on demand, never shrunk; one set per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    def get(self, name: str, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
        """A tensor of ``shape`` whose contents are undefined (callers overwrite it)."""
        pool = self._local.__dict__.setdefault("pool", {})
        numel = 1
        for s in shape:
            numel *= s
        key = (name, dtype, device)
        buf = pool.get(key)
        if buf is None or buf.numel() < numel:
            buf = torch.empty(numel, dtype=dtype, device=device)
            pool[key] = buf
        return buf[:numel].view(shape)

    def capacity(self, name: str, dtype: torch.dtype, device: torch.device) -> int:
        """How many elements the buffer ``name`` holds now (0: none yet), so that a store
        that grows can take all of it at once rather than grow into it step by step."""
        buf = self._local.__dict__.get("pool", {}).get((name, dtype, device))
        return 0 if buf is None else buf.numel()

    def claim(self, name: str, owner: object) -> bool:
        """Make ``owner`` the user of the buffers that ``name`` stands for on this thread.
        False when it was not the last to claim them (or never did): their contents are
        then another's, and ``owner`` must write them anew before it reads them. For
        buffers whose contents live longer than one call (a cache filled as it goes)."""
        holders = self._local.__dict__.setdefault("holders", {})
        if holders.get(name) is owner:
            return True
        holders[name] = owner
        return False

    def derived(self, name: str, source: object, device: torch.device, make: Callable[[], T]) -> T:
        """``make()``, remembered while asked with the same ``source`` (by identity, held
        alive here) and device: a pass's parameters are prepared for the kernels once, not
        once a chunk (a GPU would wait on the preparation's checks every chunk). Sources
        must be immutable, as parameters are.

        Several sources may be live at once: restarts in lockstep ask for each run's
        parameters in turn, chunk after chunk, and each run's M-step for its old and new
        ones (a prior's gain) and an extrapolated point (SQUAREM), saying how many runs
        within :func:`in_turn` (one elsewhere). A miss forgets the entries not asked for
        within the last three requests a run, so that the memo holds each run's sources
        in use and the last it left, one run or many. (An entry is not kept for having
        been asked before: where each pass asks once, a fit of small data, a rule that
        counted the entries held kept every pass's parameters.)"""
        memos = self._local.__dict__.setdefault("memo", {})
        memo = memos.setdefault(name, {"tick": 0, "entries": []})
        memo["tick"] = tick = memo["tick"] + 1
        entries = memo["entries"]
        for entry in entries:
            if entry[0] is source and entry[1] == device:
                entry[3] = tick
                return entry[2]
        turns = getattr(_TURNS, "count", 1)
        entries[:] = [e for e in entries if tick - e[3] < 3 * turns]
        value = make()
        entries.append([source, device, value, tick])
        return value

    def __getstate__(self) -> dict:
        return {}  # buffers are scratch: never pickled, never shipped to workers

    def __setstate__(self, state: dict) -> None:
        self._local = threading.local()
