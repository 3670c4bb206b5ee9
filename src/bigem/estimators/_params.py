"""Hyper-parameters, declared: each estimator lists a constraint per constructor
parameter, and :func:`settings` checks them all into one frozen dataclass.

Messages keep scikit-learn's wording where it has one ("The 'n_components' parameter of
GaussianMixture must be ..."), so code matching its messages keeps working. The same
declarations validate a model file's hyper-parameters on load; the rest of a file is
checked here too: its fitted state field by field (:class:`Stored`), and its parameters
against what the arithmetic can carry (:func:`check_scale`, :func:`check_density_at_centres`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from .._core.draws import Draws, state_digest
from .._core.errors import ModelFileError, NumericalError, ParameterError
from .._core.numerics import parse_device, parse_dtype

_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _bad(name: str, owner: str, expected: str, value: object) -> ParameterError:
    return ParameterError(f"The {name!r} parameter of {owner} must be {expected}. Got {value!r} instead.")


class Constraint:
    """Checks one hyper-parameter and returns the value the fit uses."""

    def check(self, value: object, name: str, owner: str) -> Any:
        return value


# Sanity bounds, for the constructor and model files alike: far beyond any real fit, so
# that a typo or a forged model file cannot ask for a fit that never ends.
MAX_ITER = 1_000_000  # EM iterations (max_iter, n_iter)
MAX_INIT = 1_000  # restarts (n_init)
MAX_ROWS = 2**31 - 1  # rows per chunk or mini-batch (chunk_size, batch_size)


@dataclass(frozen=True)
class Int(Constraint):
    """An int in [low, high]; ``at_most``: a sanity bound above the mathematical range,
    with its own message (the range keeps scikit-learn's wording)."""

    low: int
    high: int | None = None
    at_most: int | None = None
    bools: bool = False  # True and False count as 1 and 0 (scikit-learn's ``verbose``)

    def check(self, value, name, owner):
        if isinstance(value, (bool, np.bool_)) and self.bools:
            value = int(value)
        if (isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral) or value < self.low
                or (self.high is not None and value > self.high)):
            high = "inf)" if self.high is None else f"{self.high}]"
            also = ", an instance of 'bool' or an instance of 'numpy.bool'" if self.bools else ""
            raise _bad(name, owner, f"an int in the range [{self.low}, {high}{also}", value)
        if self.at_most is not None and value > self.at_most:
            raise _bad(name, owner, f"at most {self.at_most}, far beyond any real fit", value)
        return int(value)


@dataclass(frozen=True)
class Float(Constraint):
    low: float
    closed: bool = True  # whether ``low`` itself is allowed
    high: float | None = None  # inclusive

    def check(self, value, name, owner):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool) and _finite(value)
        if not ok or (value < self.low if self.closed else value <= self.low) or (
            self.high is not None and value > self.high
        ):
            interval = f"{'[' if self.closed else '('}{self.low}, {'inf)' if self.high is None else f'{self.high:g}]'}"
            raise _bad(name, owner, f"a float in the range {interval}", value)
        return float(value)


class Real(Constraint):
    """Any float but NaN, infinities included (hmmlearn's ``tol``: negative or -inf runs
    every iteration)."""

    def check(self, value, name, owner):
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        try:
            value = float(value) if ok else value
        except OverflowError:  # an integer beyond any float
            ok = False
        if not ok or math.isnan(value):
            raise _bad(name, owner, "a float (not NaN; -inf runs every iteration)", value)
        return value


# other libraries' words for an option, named in the error (pomegranate's 'sphere')
ELSEWHERE = {"sphere": "'spherical' (pomegranate's 'sphere')"}


@dataclass(frozen=True)
class Choice(Constraint):
    options: tuple[str, ...]

    def check(self, value, name, owner):
        if not isinstance(value, str) or value not in self.options:
            options = ", ".join(repr(c) for c in self.options)
            error = _bad(name, owner, f"a str among {{{options}}}", value)
            hint = ELSEWHERE.get(value) if isinstance(value, str) else None
            if hint is not None and hint.split("'")[1] in self.options:
                raise ParameterError(f"{str(error).rstrip('.')}; use {hint}.")
            raise error
        return value


class Flag(Constraint):
    """True or False (numpy booleans too)."""

    def check(self, value, name, owner):
        if not isinstance(value, (bool, np.bool_)):
            raise ParameterError(f"The {name!r} parameter of {owner} must be an instance of 'bool' or an instance of "
                                 f"'numpy.bool'. Got {value!r} instead.")
        return bool(value)


class Truthy(Constraint):
    """Anything, read as a bool (hmmlearn's ``verbose``)."""

    def check(self, value, name, owner):
        return bool(value)


@dataclass(frozen=True)
class Memory(Constraint):
    """Bytes from an int or a string such as '256MB', '1.5GiB' (0 only if ``allow_zero``);
    with ``auto`` also 'auto' (kept as the string: measured chunks, see ``_core.chunking``)."""

    allow_zero: bool = False
    auto: bool = False

    def check(self, value, name, owner):
        if self.auto and value == "auto":
            return value
        return parse_memory_budget(value, owner, name, self.allow_zero, self.auto)


class Device(Constraint):
    def check(self, value, name, owner):
        return parse_device(value)


class Dtype(Constraint):
    def check(self, value, name, owner):
        return parse_dtype(value)


# scikit-learn's words for a seed, and its range (numpy's RandomState takes no other int)
SEED_TYPES = ("an int in the range [0, 4294967295], an instance of 'numpy.random.mtrand.RandomState', "
              "an instance of 'numpy.random.Generator' or None")


class Seed(Constraint):
    """None, an int in [0, 2^32), a numpy RandomState or Generator (scikit-learn's types
    and range, and numpy's Generator), kept as given."""

    def check(self, value, name, owner):
        if _is_seed(value):
            return value
        raise _bad(name, owner, SEED_TYPES, value)


def _is_seed(value: object) -> bool:
    return value is None or isinstance(value, (np.random.RandomState, np.random.Generator)) or (
        isinstance(value, numbers.Integral) and not isinstance(value, bool) and 0 <= value < 2**32)


class Client(Constraint):
    """A distributed.Client, a scheduler address, or None."""

    def check(self, value, name, owner):
        if value is None or isinstance(value, (str, os.PathLike)):
            return value
        if hasattr(value, "scheduler_info") and hasattr(value, "compute"):
            return value
        raise ParameterError(
            f"The 'client' parameter of {owner} must be a distributed.Client, a scheduler address such as "
            f"'tcp://host:8786', or None. Got {value!r} instead."
        )


@dataclass(frozen=True)
class Optional(Constraint):
    """None, or what ``inner`` takes; its refusal says None is allowed too, where
    scikit-learn lists it (``none_first``: "None or a float ...", as its constraints
    [None, Interval] read; else "... or None")."""

    inner: Constraint
    none_first: bool = False

    def check(self, value, name, owner):
        if value is None:
            return None
        try:
            return self.inner.check(value, name, owner)
        except ParameterError as exc:
            head, sep, tail = str(exc).partition(" must be ")
            expected, got, rest = tail.rpartition(". Got ")
            if not sep or not got or not expected.startswith(("a ", "an ")):  # not a kind of value (a bound): as it is
                raise
            expected = f"None or {expected}" if self.none_first else f"{expected} or None"
            raise ParameterError(f"{head} must be {expected}. Got {rest}") from None


class PerColumn(Constraint):
    """'auto', or a setting per column: a list (one entry per column) or a dict keyed by
    column; the entries are checked against X at fit, where its columns are known."""

    def check(self, value, name, owner):
        if isinstance(value, (list, tuple, dict)) or isinstance(value, str) and value == "auto":
            return value
        raise _bad(name, owner, "'auto', a list (one entry per column) or a dict {column: value}", value)


class Passed(Constraint):
    """Kept as given; checked where it is used (initial parameters, whose shapes need the data)."""


class Mapping(Constraint):
    """None or a dict (StepMix's ``measurement_params``), kept as given; its keys are
    checked where they are used."""

    def check(self, value, name, owner):
        if value is None or isinstance(value, dict):
            return value
        raise _bad(name, owner, "a dict or None", value)


class ArrayLike(Passed):
    """None or an array-like (not a string or a lone number), scikit-learn's check of
    initial parameters; kept as given, its values checked where they are used."""

    def check(self, value, name, owner):
        if value is None or (hasattr(value, "__len__") or hasattr(value, "shape") or hasattr(value, "__array__")) \
                and not np.isscalar(value):
            return value
        raise _bad(name, owner, "an array-like or None", value)


@dataclass(frozen=True)
class Letters(Constraint):
    """A string of letters from ``allowed`` (hmmlearn's ``params`` and ``init_params``);
    ``ignoring_others``: any string, the letters not allowed ignored (hmmlearn's
    ``init_params``, which code shared between models fills with all their letters)."""

    allowed: str
    ignoring_others: bool = False

    def check(self, value, name, owner):
        if not isinstance(value, str) or not self.ignoring_others and set(value) - set(self.allowed):
            raise ParameterError(
                f"The {name!r} parameter of {owner} must be a string of letters from {self.allowed!r}. "
                f"Got {value!r} instead."
            )
        return value


@dataclass(frozen=True)
class FiniteArray(Constraint):
    """A finite float or array (hmmlearn's priors), as float or float64 ndarray;
    ``non_negative``: every value >= 0 (a prior's pseudo-counts: a negative one gave a
    negative Poisson rate, or a mixture weight of 0, without a word)."""

    non_negative: bool = False

    def check(self, value, name, owner):
        arr = None if isinstance(value, str) else np.asarray(value, dtype=np.float64) if _numeric(value) else None
        if arr is None or not np.isfinite(arr).all():
            raise ParameterError(f"The {name!r} parameter of {owner} must be a finite float or array. Got {value!r}.")
        if self.non_negative and bool((arr < 0).any()):
            raise ParameterError(f"The {name!r} parameter of {owner} must be finite and non-negative. Got {value!r}.")
        return arr if arr.ndim else float(arr)


def _finite(value: numbers.Real) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an integer beyond any float
        return False


def _numeric(value: object) -> bool:
    try:
        np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond any float
        return False
    return True


# ------------------------------------------------------------------ settings
_TYPES: dict[type, type] = {}


def settings(est: object, settle: Callable[[dict], None] | None = None) -> Any:
    """Every constructor parameter of ``est`` checked by its class's ``_constraints``,
    as a frozen dataclass (``s.n_components``, ...). ``settle`` may adjust the checked
    values before freezing (rules that tie two parameters together)."""
    cls = type(est)
    owner = cls.__name__
    values = {name: c.check(getattr(est, name), name, owner) for name, c in cls._constraints.items()}
    if settle is not None:
        settle(values)
    kind = _TYPES.get(cls)
    if kind is None:
        kind = _TYPES[cls] = dataclasses.make_dataclass(f"{owner}Settings", list(values), frozen=True)
    return kind(**values)


def check_stopping(values: dict, owner: str) -> None:
    """Aitken's rule extrapolates a linearly converging sequence; SQUAREM's accepted
    values are not one (a fit so stopped landed 1e-7 per row short, where the gain rule
    reached 1e-10: BENCHMARKS.md), so the pair is refused."""
    if values.get("stopping") == "aitken" and values.get("accelerate") is not None:
        raise ParameterError(
            f"{owner}: stopping='aitken' assumes plain EM's linear convergence, which "
            f"accelerate={values['accelerate']!r} replaces; use stopping='gain' with it, or accelerate=None"
        )


def check_client(values: dict, owner: str) -> None:
    """``client`` names engine='dask''s cluster: with engine 'local' or 'torch' it would go
    unused without a word, so the pair is refused."""
    if values.get("client") is not None and values.get("engine") in ("local", "torch"):
        where = "in this process" if values["engine"] == "local" else "on the torch.distributed group"
        raise ParameterError(
            f"{owner}: client={values['client']!r} is the cluster of engine='dask', but engine={values['engine']!r} "
            f"runs {where}, so the client would go unused; set engine='dask' to run on the cluster, or client=None"
        )


def parse_memory_budget(value: object, owner: str, name: str = "memory_budget", allow_zero: bool = False,
                        auto: bool = False) -> int:
    """Bytes from an int or a string such as '256MB', '1.5GiB' (0 only if ``allow_zero``)."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and (value > 0 or allow_zero and value == 0):
        return int(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMG]i?B?|B?)\s*", value, flags=re.IGNORECASE)
        if m:
            unit = m.group(2).upper()
            unit = unit if unit.endswith("B") or unit == "" else unit + "B"
            size = int(float(m.group(1)) * _UNITS[unit]) if unit in _UNITS else -1
            if size > 0 or allow_zero and size == 0:  # '0.5' bytes is no budget
                return size
    sign = "a non-negative" if allow_zero else "a positive"
    raise _bad(name, owner, f"{sign} number of bytes or a string like '256MB' or '2GiB'" + (", or 'auto'" if auto else ""),
               value)


def check_n_samples(n_samples: object) -> None:
    """sample()'s count: scikit-learn's message for fewer than one; a count that is not a
    whole number (which numpy would truncate) is named as such."""
    whole = isinstance(n_samples, (int, np.integer)) and not isinstance(n_samples, bool)
    if not whole or n_samples < 1:
        reason = "at least one sample" if whole else f"an int, at least one (got a {type(n_samples).__name__})"
        raise ParameterError(f"Invalid value for 'n_samples': {n_samples} . The sampling requires {reason}.")


def check_sample_size(n_samples: int, n_columns: int, what: str = "n_samples") -> int:
    """``n_samples`` draws of ``n_columns`` float64 values and an int64 label each must fit
    in this machine's memory; a larger request is refused before any allocation."""
    need = int(n_samples) * (n_columns + 1) * 8
    total = _physical_memory()
    check_memory(need, f"{what}={int(n_samples):,} draws of {n_columns} value(s) and a label",
                 f"draw at most about {(total or 0) // ((n_columns + 1) * 8):,} at a time (in several calls with "
                 "different seeds)")
    return int(n_samples)


def check_memory(need: int, what: str, fix: str) -> None:
    """Refuse, before allocating, what would need more than this machine's memory."""
    total = _physical_memory()
    if total is not None and need > total:
        raise ParameterError(f"{what} would need {_bytes(need)} of memory, more than this machine's {_bytes(total)}; "
                             f"{fix}")


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):  # not on this platform
        return None


def _bytes(n: int) -> str:
    for unit, size in (("PB", 10**15), ("TB", 10**12), ("GB", 10**9), ("MB", 10**6)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n} bytes"


def check_int(value: object, name: str, owner: str, low: int) -> int:
    return Int(low).check(value, name, owner)


def check_choice(value: object, name: str, owner: str, choices: tuple[str, ...]) -> str:
    return Choice(tuple(choices)).check(value, name, owner)


def draws(random_state: object) -> Draws:
    """A fit's random numbers (``_core.draws.Draws``): seeded from ``random_state``, and
    carrying the numpy RandomState scikit-learn's ``check_random_state`` gives for it
    (None: numpy's global one), see ``Draws``. Call its ``settle()`` once done."""
    if random_state is None:
        random_state = np.random.mtrand._rand
    if isinstance(random_state, np.random.RandomState):  # read, not drawn from: its numbers are the start's
        return Draws.of(state_digest(random_state), random_state)
    return Draws.of(random_seed(random_state), random_state)


def shared_state(random_state: object, engine) -> object:
    """``random_state`` as every process of the engine's group draws from it. An int is
    the same everywhere (the processes' settings are compared when they open their
    data); None (numpy's global state), a RandomState or a Generator differ between
    processes not seeded alike, so the primary process draws a seed from it and every
    process uses that. One process: as given (scikit-learn's draws from it)."""
    if getattr(engine, "world", 1) == 1 or (isinstance(random_state, numbers.Integral)
                                            and not isinstance(random_state, bool)):
        return random_state
    return engine.share(lambda: random_seed(random_state))


def check_seed(random_state: object) -> object:
    """``random_state`` as given, where it is one (scikit-learn's types and range, and
    numpy's Generator); otherwise scikit-learn's message. For the seeds methods take
    (``sample``, ``bootstrap``, ...): an estimator's own is checked with its parameters."""
    if _is_seed(random_state):
        return random_state
    raise ParameterError(f"The 'random_state' parameter must be {SEED_TYPES}. Got {random_state!r} instead.")


def random_seed(random_state: object) -> int:
    """A 63-bit seed from None, an int, a numpy RandomState or Generator (scikit-learn's types)."""
    check_seed(random_state)
    if random_state is None:
        return int(np.random.randint(0, 2**31 - 1))
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state) & ((1 << 63) - 1)
    if isinstance(random_state, np.random.RandomState):
        return int(random_state.randint(0, 2**31 - 1))
    return int(random_state.integers(0, 2**63 - 1))  # a numpy Generator


# ------------------------------------------------------------------ user-given arrays
def as_f64(value: object, name: str) -> torch.Tensor:
    try:
        arr = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"The parameter {name!r} must be numeric: {exc}") from None
    if not np.isfinite(arr).all():
        raise ParameterError(f"The parameter {name!r} contains NaN or infinity; pass finite values.")
    return torch.from_numpy(arr.copy())


def check_shape(t: torch.Tensor, shape: tuple[int, ...], name: str) -> None:
    if tuple(t.shape) != shape:
        raise ParameterError(f"The parameter '{name}' should have the shape of {shape}, but got {tuple(t.shape)}")


def check_weights_init(value: object, K: int) -> torch.Tensor:
    w = as_f64(value, "weights")
    check_shape(w, (K,), "weights")
    if bool((w < 0).any()) or bool((w > 1).any()):
        raise ParameterError(
            f"The parameter 'weights' should be in the range [0, 1], but got max value "
            f"{float(w.max()):.5f}, min value {float(w.min()):.5f}"
        )
    total, atol = _sum_as_given(value, w)
    if abs(1.0 - total) > atol:
        raise ParameterError(
            f"The parameter 'weights' should be normalized, but got sum(weights) = {float(w.sum()):.5f}; "
            "divide weights_init by its sum"
        )
    return w


def _sum_as_given(value: object, w: torch.Tensor) -> tuple[float, float]:
    """The weights' sum in their own float type and the tolerance of 1 scikit-learn gives
    it (1e-6 in float32, else 1e-8): pomegranate's float32 [0.4, 0.6] is 1 + 3e-8 in float64."""
    dtype = getattr(value, "dtype", None)
    if isinstance(dtype, torch.dtype):
        dtype = torch.empty(0, dtype=dtype).numpy().dtype if dtype in (torch.float32, torch.float16) else None
    if dtype is not None and np.dtype(dtype) in (np.float32, np.float16):
        return float(w.numpy().astype(dtype).sum(dtype=dtype)), 1e-6
    return float(w.sum()), 1e-8


def check_means_init(value: object, K: int, D: int) -> torch.Tensor:
    m = as_f64(value, "means")
    check_shape(m, (K, D), "means")
    return m


# ------------------------------------------------------------------ parameters bigem did not choose
# What float64 arithmetic can carry, for parameters read from a model file: a mean's
# square, and a distance of that size divided by a variance, stay far from overflow
# (1.8e308), and so do log-determinants and precision factors. A fit never comes near.
LARGEST_MEAN = 1e150
VARIANCES = (1e-250, 1e250)


def variances_of(covariances: torch.Tensor, covariance_type: str, rows: int) -> torch.Tensor:
    """The variances a covariance holds, in ``rows`` rows (one per component, state, or
    tied matrix): the eigenvalues of full and tied matrices, the values of diag and
    spherical ones."""
    cov = torch.as_tensor(covariances, dtype=torch.float64)
    if covariance_type in ("full", "tied"):
        cov = torch.linalg.eigvalsh(cov)
    return cov.reshape(rows, -1)


def check_scale(what: str, means: torch.Tensor | None = None, variances: torch.Tensor | None = None,
                rates: torch.Tensor | None = None, tied: bool = False) -> None:
    """NumericalError when means, variances or (Poisson) rates lie beyond what float64
    arithmetic can carry (:data:`LARGEST_MEAN`, :data:`VARIANCES`). Each has one row per
    component, named ``what`` ("component", "state"), or variances one row when ``tied``."""
    low, high = VARIANCES
    checks = [
        ("means", means, lambda v: v.abs() > LARGEST_MEAN, f"beyond the {LARGEST_MEAN:g} that float64 arithmetic can square"),
        ("variances", variances, lambda v: (v < low) | (v > high),
         f"outside the [{low:g}, {high:g}] that float64 arithmetic can carry"),
        ("rates", rates, lambda v: v > high, f"beyond the {high:g} that float64 arithmetic can carry"),
    ]
    for name, values, test, limit in checks:
        if values is None:
            continue
        rows = values.to(torch.float64).reshape(values.shape[0], -1)
        bad = test(rows)
        if bool(bad.any()):
            k = int(torch.nonzero(bad.any(1))[0])
            picked = rows[k][bad[k]]
            worst = float(picked[picked.abs().log().abs().argmax()])  # furthest from 1 in magnitude
            where = "the tied covariance" if name == "variances" and tied else f"{what} {k}"
            raise NumericalError(f"{name} of {where} reach {worst:.3g}, {limit}")


def check_density_at_centres(log_density: torch.Tensor, dtype: torch.dtype, what: str = "component") -> None:
    """NumericalError unless the model can evaluate its own density at its means:
    ``log_density`` (one row per mean, one column per component named ``what``), in the
    model's compute ``dtype``, holds no NaN or +inf and a finite value in every row."""
    bad = torch.isnan(log_density) | (log_density == float("inf")) | ~torch.isfinite(log_density).any(1, keepdim=True)
    if bool(bad.any()):
        row = int(torch.nonzero(bad.any(1))[0])
        values = ", ".join(f"{float(v):.3g}" for v in log_density[row, :4])
        more = ", ..." if log_density.shape[1] > 4 else ""
        raise NumericalError(
            f"the {what}s' log-densities at their own means are not finite in {str(dtype).replace('torch.', '')} "
            f"(at mean {row}: {values}{more})"
        )


# ------------------------------------------------------------------ a model file's fitted state
_MISSING = object()


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class Stored:
    """A model file's fitted state (a JSON object), read field by field with its type
    checked: a missing or mistyped field is a ModelFileError naming it (``load`` adds
    the path). ``section`` names the object in messages."""

    def __init__(self, state: object, section: str = "fitted state") -> None:
        if not isinstance(state, dict):
            raise ModelFileError(f"the {section} is not a JSON object, got {_show(state)}")
        self._state, self._section = state, section

    def _get(self, name: str, default: object) -> object:
        if name in self._state:
            return self._state[name]
        if default is _MISSING:
            raise ModelFileError(f"field {name!r} of the {self._section} is missing")
        return default

    def _bad(self, name: str, expected: str, value: object) -> ModelFileError:
        return ModelFileError(f"field {name!r} of the {self._section} must be {expected}, got {_show(value)}")

    def flag(self, name: str, default: object = _MISSING) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self._bad(name, "true or false", value)
        return value

    def count(self, name: str, default: object = _MISSING, low: int = 0, high: int | None = None) -> int:
        value = self._get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < low or (high is not None and value > high):
            raise self._bad(name, f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]", value)
        return value

    def number(self, name: str, default: object = _MISSING) -> float:
        value = self._get(name, default)
        if not _is_number(value):
            raise self._bad(name, "a number", value)
        return float(value)

    def numbers(self, name: str, default: object = _MISSING) -> list[float] | None:
        value = self._get(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, list) or not all(_is_number(v) for v in value):
            raise self._bad(name, "a list of numbers", value)
        return [float(v) for v in value]

    def flags(self, name: str, default: object = _MISSING) -> list[bool]:
        value = self._get(name, default)
        if not isinstance(value, list) or not all(isinstance(v, bool) for v in value):
            raise self._bad(name, "a list of true or false", value)
        return list(value)

    def strings(self, name: str, default: object = _MISSING) -> list[str] | None:
        value = self._get(name, default)
        if value is None and default is None:
            return None
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(name, "a list of strings", value)
        return list(value)

    def records(self, name: str, default: object = _MISSING) -> list[Stored]:
        value = self._get(name, default)
        if not isinstance(value, list):
            raise self._bad(name, "a list of JSON objects", value)
        return [Stored(v, f"{self._section}'s {name}[{i}]") for i, v in enumerate(value)]


def _is_number(value: object) -> bool:
    """A JSON number (an int or a float, not a boolean) that a float holds and is not NaN
    (infinities are kept: a log-likelihood may be -inf)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return not math.isnan(float(value))
    except OverflowError:  # an integer beyond any float
        return False
