"""The compiled-kernel switch: kernels compile lazily, turn off, and say when numba is missing."""

import numpy as np
import pytest
import torch

from bigem._core import jit


@jit.kernel
def _dot(a, b):
    total = 0.0
    for i in range(a.shape[0]):
        total += a[i] * b[i]
    return total


def test_a_kernel_compiles_on_first_call_and_computes_what_python_does():
    pytest.importorskip("numba")
    a, b = np.arange(5.0), np.arange(5.0) + 1
    assert _dot(a, b) == pytest.approx(float(a @ b))
    assert _dot.compiled is not None


def test_off_routes_every_caller_to_the_tensor_path_and_restores():
    pytest.importorskip("numba")
    assert jit.runs_on("cpu") and not jit.runs_on(torch.device("meta"))
    with jit.off():
        assert not jit.available() and not jit.runs_on("cpu")
    assert jit.available()


def test_without_numba_a_kernel_call_says_so(monkeypatch):
    monkeypatch.setitem(jit._STATE, "numba", False)
    fresh = jit.kernel(lambda x: x)
    assert not jit.available()
    with pytest.raises(RuntimeError, match="numba is not installed"):
        fresh(1)


def test_a_kernel_compiles_uncached_where_numba_finds_no_writable_cache(monkeypatch):
    """A read-only install and home: numba refuses cache=True; the kernel still runs."""
    numba = pytest.importorskip("numba")
    asked, real = [], numba.njit

    def njit(cache=False, **settings):
        asked.append(cache)
        if cache:
            raise RuntimeError("cannot cache function 'f': no locator available for file 'f.py'")
        return real(cache=False, **settings)

    monkeypatch.setattr(numba, "njit", njit)

    @jit.kernel
    def twice(x):
        return 2 * x

    assert twice(21) == 42 and asked == [True, False]


@jit.helper
def _square(x):
    return x * x


@jit.kernel
def _sum_of_squares(a):
    total = 0.0
    for i in range(a.shape[0]):
        total += _square(a[i])
    return total


def test_a_helper_runs_inside_a_kernel_and_from_python():
    """numba compiles only what it sees as compiled: the kernel gets the helper's
    dispatcher in its globals, while Python callers keep the plain function."""
    pytest.importorskip("numba")
    a = np.arange(6.0)
    assert _sum_of_squares(a) == float((a * a).sum()) and _square(3.0) == 9.0
    assert _sum_of_squares.compiled is not None and _square.compiled is not None
    assert globals()["_square"] is not _square.compiled  # the module's own name is untouched
