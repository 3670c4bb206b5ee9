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
- A small function that several kernels share is a :func:`helper`: plain Python
  when called from Python, and compiled into each kernel that calls it (inlined), so
  a kernel's loop pays no call for it.
- ``BIGEM_JIT=0`` in the environment, or :func:`off` in code, takes the tensor path
  everywhere: to compare the two, or to rule a kernel out when hunting a problem.
"""

from __future__ import annotations

import os
import threading
import types
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


class _Helper:
    """A function that kernels call: Python here, compiled and inlined into each kernel
    that names it (see :func:`_with_helpers`)."""

    def __init__(self, fn: Callable) -> None:
        self.fn, self.compiled = fn, None
        self.__doc__, self.__name__ = fn.__doc__, fn.__name__

    def __call__(self, *args):
        return self.fn(*args)

    def dispatcher(self, numba):
        """numba's dispatcher for the function (made once), to be inlined where called."""
        with _LOCK:
            if self.compiled is None:
                self.compiled = _compile(numba, self.fn, {"inline": "always"})
            return self.compiled


def _with_helpers(numba, fn: Callable) -> Callable:
    """``fn`` with every :class:`_Helper` it names swapped for numba's dispatcher of it
    in a copy of its globals (numba compiles only what it can see as compiled); ``fn``
    itself where it names none. Helpers are kept in the module of the kernels that call
    them: numba's disk cache checks a kernel's own file, not its callees'."""
    helpers = {name: value for name in fn.__code__.co_names
               if isinstance(value := fn.__globals__.get(name), _Helper)}
    if not helpers:
        return fn
    names = dict(fn.__globals__)
    names.update({name: h.dispatcher(numba) for name, h in helpers.items()})
    copy = types.FunctionType(fn.__code__, names, fn.__name__, fn.__defaults__, fn.__closure__)
    copy.__qualname__, copy.__module__, copy.__doc__ = fn.__qualname__, fn.__module__, fn.__doc__
    return copy


def _compile(numba, fn: Callable, options: dict):
    """numba.njit(fn), cached on disk where numba finds a writable place (the package's
    folder, else the user's cache folder); where it finds none (a read-only install and
    home), numba refuses to cache at all, and the kernel compiles every run instead."""
    settings = dict(nogil=True, error_model="numpy", **options)
    fn = _with_helpers(numba, fn)
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


def helper(fn: Callable) -> _Helper:
    """Decorator: ``fn`` callable from kernels (compiled and inlined into each) and from
    Python (as itself). Keep it in the kernels' module (see :func:`_with_helpers`)."""
    return _Helper(fn)
