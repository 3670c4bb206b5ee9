"""Validation of estimator hyper-parameters and user-given initial parameters.

Messages keep scikit-learn's wording where it has one ("The 'n_components' parameter of
GaussianMixture must be ..."), so code matching its messages keeps working.
"""

from __future__ import annotations

import numbers
import re

import numpy as np
import torch

from .._core.errors import ParameterError
from .._core.numerics import covariance_from_precision

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _bad(name: str, owner: str, expected: str, value: object) -> ParameterError:
    return ParameterError(f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead.")


def check_int(value: object, name: str, owner: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise _bad(name, owner, f"an int in the range [{low}, inf)", value)
    return int(value)


def check_float(value: object, name: str, owner: str, low: float, closed: bool = True) -> float:
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value)
    if not ok or (value < low if closed else value <= low):
        interval = f"[{low}, inf)" if closed else f"({low}, inf)"
        raise _bad(name, owner, f"a float in the range {interval}", value)
    return float(value)


def check_choice(value: object, name: str, owner: str, choices: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise _bad(name, owner, f"a str among {{{options}}}", value)
    return value


def parse_memory_budget(value: object, owner: str, name: str = "memory_budget", allow_zero: bool = False) -> int:
    """Bytes from an int or a string such as '256MB', '1.5GiB' (0 only if ``allow_zero``)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and (value > 0 or allow_zero and value == 0):
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMG]i?B?|B?)\s*", value, flags=re.IGNORECASE)
        if m:
            unit = m.group(2).upper()
            unit = unit if unit.endswith("B") or unit == "" else unit + "B"
            if unit in _UNITS and (float(m.group(1)) > 0 or allow_zero):
                return int(float(m.group(1)) * _UNITS[unit])
    sign = "a non-negative" if allow_zero else "a positive"
    raise _bad(name, owner, f"{sign} number of bytes or a string like '256MB' or '2GiB'", value)


def random_seed(random_state: object) -> int:
    """A 63-bit seed from None, an int, a numpy RandomState or Generator (scikit-learn's types)."""
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state) & ((1 << 63) - 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(0, 2**63 - 1))
    raise ParameterError(
        f"The 'random_state' parameter must be an int, a numpy RandomState or Generator, or None. "
        f"Got {random_state!r} instead."
    )


def _as_f64(value: object, name: str) -> torch.Tensor:
    try:
        arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"The parameter {name!r} must be numeric: {exc}") from None
    if not np.isfinite(arr).all():
        raise ParameterError(f"The parameter {name!r} contains NaN or infinity; pass finite values.")
    return torch.from_numpy(arr.copy())


def _check_shape(t: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if tuple(t.shape) != shape:
        raise ParameterError(f"The parameter '{name}' should have the shape of {shape}, but got {tuple(t.shape)}")


def check_weights_init(value: object, K: int) -> torch.Tensor:
    w = _as_f64(value, "weights")
    _check_shape(w, (K,), "weights")
    if bool((w < 0).any()) or bool((w > 1).any()):
        raise ParameterError(
            f"The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{float(w.max()):.5f}, min value {float(w.min()):.5f}"
        )
    if abs(1.0 - float(w.sum())) > 1e-8:
        raise ParameterError(
            f"The parameter 'weights' should be normalized, but got sum(weights) = {float(w.sum()):.5f}; "
            "divide weights_init by its sum"
        )
    return w


def check_means_init(value: object, K: int, D: int) -> torch.Tensor:
    m = _as_f64(value, "means")
    _check_shape(m, (K, D), "means")
    return m


def check_precisions_init(value: object, covariance_type: str, K: int, D: int) -> torch.Tensor:
    """Validated precisions -> the matching covariances (float64)."""
    p = _as_f64(value, f"{covariance_type} precision")
    shapes = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}
    _check_shape(p, shapes[covariance_type], f"{covariance_type} precision")
    if covariance_type in ("full", "tied"):
        if not torch.allclose(p, p.transpose(-1, -2), rtol=1e-8, atol=1e-12):
            raise ParameterError(f"'{covariance_type} precision' should be symmetric, positive-definite")
        try:
            return covariance_from_precision(p, covariance_type)
        except ValueError:
            raise ParameterError(
                f"'{covariance_type} precision' should be symmetric, positive-definite: a precisions_init "
                "matrix has a non-positive eigenvalue"
            ) from None
    if bool((p <= 0).any()):
        raise ParameterError(f"'{covariance_type} precision' should be positive")
    return covariance_from_precision(p, covariance_type)
