"""Save and load fitted estimators as safetensors + JSON metadata. Never pickle.

One writer and one reader for every kind: the tensors are the estimator's fitted
arrays (``_fitted_arrays``: attribute -> tensor name), those it holds only after some
fits (``_kept_arrays``, written when set) and any array hyper-parameter (``init.<name>``); the metadata are the hyper-parameters (``_hyper_parameters``) and
the fitted scalars (``_fitted_state``); and partial_fit's running state where there is
one (``_online_file``: ``online.*`` tensors and an ``online`` section). Loading validates the hyper-parameters as the
constructor does, then hands the arrays back to the estimator, which checks them as
it checks user-set parameters (``_restore``).
"""

from __future__ import annotations

import os
import re
import sys
import warnings

import numpy as np
import torch

from .. import __version__
from .._core.errors import DeviceWarning, ModelFileError, NumericalError, ParameterError
from .._core.numerics import device_here, parse_device
from ..io import read_model_file, write_model_file
from . import _online_file
from ._by_column import per_column_from_json

FORMAT = "bigem-model"
FORMAT_VERSION = 1

# Where, and in what pieces, a fit runs on this machine. A model file is data, never
# instructions: these are not written to it, and a file that holds them is read with the
# defaults, so it cannot make a process connect anywhere, start a cluster, read one row
# at a time or claim the machine's memory.
MACHINE_SETTINGS = ("client", "engine", "chunk_size", "memory_budget", "cache_budget")


def kinds() -> dict[str, type]:
    """Every estimator a model file can hold, by name: the concrete estimators of the
    package (a new family's façade is found once ``bigem.estimators`` imports it)."""
    import inspect

    from . import __all__ as public  # noqa: F401 - imports every façade
    from ._base import EstimatorBase

    found, todo = {}, list(EstimatorBase.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if not inspect.isabstract(cls) and not cls.__name__.startswith("_") and hasattr(cls, "save"):
            found[cls.__name__] = cls
    return found


def save(est, path) -> None:
    """Write ``est`` (fitted) to ``path``: its arrays, hyper-parameters and fitted state,
    and those of the estimators it is made of (``_parts``: a classifier's class
    densities), each under ``part<i>.``. In a torch.distributed group (engine='torch'),
    the primary process alone writes."""
    from ._base import writes_files

    if not writes_files(est):
        return
    _warn_unsaved_random_state(est)
    tensors, meta = _record(est)
    state = getattr(est, "_online_", None)
    saved = None if state is None else _online_file.record(state)
    if saved is not None:  # partial_fit's running state: after load it goes on as in est
        tensors.update(saved[0])
        meta["online"] = dict(saved[1], reported=hasattr(est, "n_steps_"))  # (an exact fit reports no n_steps_)
    parts = est._parts()
    if parts:
        meta["parts"] = []
        for i, part in enumerate(parts):
            part_tensors, part_meta = _record(part)
            tensors.update({f"part{i}.{name}": value for name, value in part_tensors.items()})
            meta["parts"].append({k: part_meta[k] for k in ("kind", "hyper_parameters", "fitted")})
    write_model_file(path, tensors, meta)


def _warn_unsaved_random_state(est) -> None:
    """A numpy RandomState or Generator as ``random_state`` is no JSON value: the file
    holds None, and the loaded model draws (``sample``, a refit) from fresh numbers."""
    states = [m.get_params(deep=False).get("random_state") for m in (est, *est._parts())]
    state = next((s for s in states if isinstance(s, (np.random.RandomState, np.random.Generator))), None)
    if state is not None:  # (one warning for the estimator and the estimators it is made of)
        warnings.warn(
            f"random_state is a numpy {type(state).__name__}, which a model file cannot hold: the file holds "
            "random_state=None, so the loaded model's sample() and refits draw other numbers; pass an int "
            "random_state to keep them reproducible (pickle keeps the object)",
            UserWarning,
            stacklevel=_outside_bigem(),
        )


def _outside_bigem() -> int:
    """The stacklevel, for a warning raised by the caller, of the first frame outside
    bigem: ``save`` is reached through one or more of the estimators' own methods."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(root):
        frame, level = frame.f_back, level + 1
    return level


def _record(est) -> tuple[dict, dict]:
    """(tensors, metadata) of one fitted estimator."""
    hyper, arrays = est._hyper_parameters()
    hyper = {name: value for name, value in hyper.items() if name not in MACHINE_SETTINGS}
    tensors = {f"init.{name}": value for name, value in arrays.items()}
    for attr, name in {**est._fitted_arrays, **est._arrays_kept()}.items():
        tensors[name] = torch.from_numpy(np.asarray(est._saved_array(attr), dtype=np.float64).copy())
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": type(est).__name__,
        "bigem_version": __version__,
        "hyper_parameters": hyper,
        "fitted": est._fitted_state(),
    }
    return tensors, meta


def load(path: str | os.PathLike, device=None):
    """Read a model written by ``save``; validates everything, runs no code from the file.

    Parameters
    ----------
    path : str or path-like
        The model file.
    device : str, torch.device or None, default=None
        Where the model computes from now on ('cpu', 'cuda', ...). None: the device it
        was fitted on when this machine has it; else 'cuda' if there is one, else 'cpu',
        with a DeviceWarning.

    Returns
    -------
    estimator
        The fitted estimator of the kind the file holds (a ModelFileError says what is
        wrong with a damaged or forged file).
    """
    if device is not None:
        device = str(parse_device(device))
    tensors, meta = read_model_file(path)
    where = os.fspath(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{where}: not a bigem model file (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: model file format version {meta.get('format_version')!r} is not supported by bigem "
            f"{__version__} (expects {FORMAT_VERSION}); upgrade bigem"
        )
    parts = meta.get("parts", [])
    if not isinstance(parts, list) or not all(isinstance(p, dict) for p in parts):
        raise ModelFileError(f"{where}: invalid model contents (the 'parts' section is not a list of objects)")
    revived = []
    for i, part in enumerate(parts):
        prefix = f"part{i}."
        own = {name[len(prefix):]: tensors.pop(name) for name in list(tensors) if name.startswith(prefix)}
        revived.append(_revive(part, own, f"{where} (part {i})", device))
    if any(name.startswith("part") and "." in name and name.split(".")[0][4:].isdigit() for name in tensors):
        raise ModelFileError(f"{where}: tensors of a part the metadata does not list; the file is damaged")
    return _revive(meta, tensors, where, device, revived)


def _revive(meta: dict, tensors: dict, where: str, device, parts: list | None = None):
    """One estimator from its metadata and tensors (and, for a composite one, its parts)."""
    known = kinds()
    if not isinstance(meta.get("kind"), str) or meta["kind"] not in known:
        raise ModelFileError(f"{where}: unknown model kind {meta.get('kind')!r}; known: {sorted(known)}")
    est = known[meta["kind"]]()
    try:
        hyper, state = meta["hyper_parameters"], meta["fitted"]
        for section, value in (("hyper_parameters", hyper), ("fitted", state)):
            if not isinstance(value, dict):
                raise ModelFileError(f"{where}: invalid model contents (the {section!r} section is not a JSON object)")
        hyper = dict(hyper)
        unknown = set(hyper) - set(est.get_params(deep=False))
        if unknown:
            writer = meta.get("bigem_version")
            newer = (f" (written by bigem {writer}, this is bigem {__version__}: upgrade bigem to read it)"
                     if _release(writer) > _release(__version__) else "")
            raise ModelFileError(f"{where}: unknown hyper-parameters {sorted(unknown)}{newer}")
        for name in MACHINE_SETTINGS:
            hyper.pop(name, None)
        for name in est._per_column:
            if name in hyper:
                hyper[name] = per_column_from_json(hyper[name])
        for name in list(tensors):
            if name.startswith("init."):
                hyper[name[5:]] = tensors.pop(name).numpy()
        if "device" in est.get_params(deep=False):  # a model that computes somewhere (a StructuralModel's part does)
            hyper["device"] = device or _device_here(hyper.get("device"), where)
        est.set_params(**hyper)
        est._settings()
    except ModelFileError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ModelFileError(f"{where}: invalid model contents ({type(exc).__name__}: {exc})") from None
    kept = {attr: name for attr, name in est._kept_arrays.items() if name in tensors}
    for attr, name in {**est._fitted_arrays, **kept}.items():
        if name not in tensors:
            raise ModelFileError(f"{where}: tensor {name!r} is missing; the file is damaged")
        if not bool(torch.isfinite(tensors[name]).all()):
            raise ModelFileError(f"{where}: invalid parameters: {name} contain NaN or infinity; the file is damaged")
        setattr(est, attr, tensors[name].to(torch.float64).numpy())
    try:
        if parts:
            est._restore_parts(state, parts)
        else:
            est._restore(state)
    except ModelFileError as exc:  # a field of the fitted state, named
        raise ModelFileError(f"{where}: invalid model contents ({exc}); the file is damaged") from None
    except NumericalError as exc:
        raise ModelFileError(
            f"{where}: invalid parameters: {str(exc).split(';')[0]}; the file is damaged "
            "(bigem only saves valid parameters)"
        ) from None
    except ParameterError as exc:  # the arrays do not fit together: the estimator's message
        damaged = "" if str(exc).endswith("the file is damaged") else "; the file is damaged"
        raise ModelFileError(f"{where}: {exc}{damaged}") from None
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        raise ModelFileError(f"{where}: invalid model contents ({type(exc).__name__}: {exc})") from None
    if "online" in meta and hasattr(est, "partial_fit"):
        est._online_ = _online_file.revive(meta["online"], tensors, where)
        if meta["online"].get("reported") is True:  # the mini-batches seen, as the saved estimator reported them
            est.n_steps_ = est._online_.steps
    return est


def _release(version: object) -> tuple[int, ...]:
    """The release of a version ('0.2.0rc1' -> (0, 2, 0)), for comparing; () for what
    is no version. (A pre-release reads as its release: never "newer" than it.)"""
    found = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version) if isinstance(version, str) else None
    return tuple(int(p or 0) for p in found.groups()) if found else ()


def _device_here(saved, where: str):
    """The saved device if this machine has it, else the nearest one, with a warning."""
    here = device_here(saved)
    if here is None:
        return saved
    warnings.warn(
        f"{where}: the model was fitted on device {saved!r}, which this machine does not have; it is loaded on "
        f"{here!r} (pass load(path, device=...) to choose)",
        DeviceWarning,
        stacklevel=3,
    )
    return here
