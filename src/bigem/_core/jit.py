"""Compiled CPU kernels through numba, when it is installed (``bigem[fast]``).

Some loops cannot be written as a few large tensor operations: an HMM's recursion
steps through time, a sparse E-step wants one pass over the nonzeros instead of
several. On the CPU these run as numba kernels when numba is importable; everything
else (GPUs, or numba absent or turned off) takes the tensor path, which computes the
same quantities. Execution only: a kernel's caller decides what it computes.

- Kernels compile on their first call (numba is imported then, never by
  ``import bigem``), are cached on disk where the package's folder is writable, and
  release the GIL, so the callers spread them over :mod:`bigem._core.parallel`'s
  threads in parts fixed by the data (the same bits on any thread count).
- ``BIGEM_JIT=0`` in the environment, or :func:`off` in code, takes the tensor path
  everywhere: to compare the two, or to rule a kernel out when hunting a problem.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch

_LOCK = threading.RLock()  # a kernel compiling looks numba up under it
_STATE: dict[str, Any] = {"numba": None, "off": os.environ.get("BIGEM_JIT", "1").strip() == "0"}


def _numba():
    """numba, or False where it is not installed (looked up once)."""
    if _STATE["numba"] is None:
        with _LOCK:
            if _STATE["numba"] is None:
                try:
                    import numba
                except ImportError:
                    numba = False
                _STATE["numba"] = numba
    return _STATE["numba"]


def available() -> bool:
    """Whether compiled kernels run: numba is installed and they are not turned off."""
    return not _STATE["off"] and bool(_numba())


def runs_on(device: torch.device | str) -> bool:
    """Whether work on ``device`` takes the compiled kernels (CPU only)."""
    return torch.device(device).type == "cpu" and available()


@contextmanager
def off() -> Iterator[None]:
    """Within the block, every caller takes the tensor path (process-wide)."""
    before = _STATE["off"]
    _STATE["off"] = True
    try:
        yield
    finally:
        _STATE["off"] = before


class _Kernel:
    """A Python function compiled by numba on its first call (nopython, GIL released)."""

    def __init__(self, fn: Callable, options: dict) -> None:
        self.fn, self.options, self.compiled = fn, options, None
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def __call__(self, *args):
        if self.compiled is None:
            with _LOCK:
                if self.compiled is None:
                    numba = _numba()
                    if not numba:
                        raise RuntimeError(f"{self.__name__} is a compiled kernel and numba is not installed")
                    self.compiled = _compile(numba, self.fn, self.options)
        return self.compiled(*args)


def _compile(numba, fn: Callable, options: dict):
    """numba.njit(fn), cached on disk where numba finds a writable place (the package's
    folder, else the user's cache folder); where it finds none (a read-only install and
    home), numba refuses to cache at all, and the kernel compiles every run instead."""
    settings = dict(nogil=True, error_model="numpy", **options)
    try:
        return numba.njit(cache=True, **settings)(fn)
    except RuntimeError as exc:  # "cannot cache function ...: no locator available"
        if "cannot cache" not in str(exc):
            raise
        return numba.njit(cache=False, **settings)(fn)


def kernel(fn: Callable | None = None, **options):
    """Decorator: ``fn`` compiled with ``numba.njit(nogil=True, cache=True)`` (plus
    ``options``) on its first call. Callers check :func:`runs_on` first: without
    numba, calling the kernel raises."""
    if fn is None:
        return lambda f: _Kernel(f, options)
    return _Kernel(fn, options)
