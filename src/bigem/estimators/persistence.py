"""Save and load fitted estimators as safetensors + JSON metadata. Never pickle."""

from __future__ import annotations

import os

import numpy as np
import torch

from .. import __version__
from .._core.errors import ModelFileError, NumericalError
from .._core.types import COVARIANCE_TYPES
from ..io import read_model_file, write_model_file

FORMAT = "bigem-model"
FORMAT_VERSION = 1
_FITTED_SCALARS = ("converged_", "n_iter_", "lower_bound_", "n_features_in_")


def save_estimator(est, path) -> None:
    """Tensors: weights, means, covariances (+ any init arrays); metadata: kind, hyper-parameters."""
    params = est._fitted()
    hyper = {}
    tensors = {"weights": params.weights, "means": params.means, "covariances": params.covariances}
    for name, value in est.get_params().items():
        if name in ("weights_init", "means_init", "precisions_init") and value is not None:
            tensors[f"init.{name}"] = torch.as_tensor(np.asarray(value, dtype=np.float64))
        elif isinstance(value, torch.dtype):
            hyper[name] = str(value).replace("torch.", "")
        elif isinstance(value, torch.device):
            hyper[name] = str(value)
        elif value is None or isinstance(value, (bool, int, float, str)):
            hyper[name] = value
        elif isinstance(value, np.integer):
            hyper[name] = int(value)
        else:
            hyper[name] = None  # e.g. a RandomState: not reproducible from a file
    fitted = {k: getattr(est, k) for k in _FITTED_SCALARS}
    fitted["converged_"] = bool(fitted["converged_"])
    fitted["lower_bounds_"] = list(est.lower_bounds_)
    fitted["history_"] = [
        {"log_likelihood": [float(v) for v in r["log_likelihood"]], "seconds": [float(v) for v in r["seconds"]],
         "converged": bool(r["converged"]), "n_iter": int(r["n_iter"])}
        for r in getattr(est, "history_", [])
    ]
    if hasattr(est, "feature_names_in_"):
        fitted["feature_names_in_"] = [str(n) for n in est.feature_names_in_]
    _write(path, est, tensors, hyper, fitted)


def _write(path, est, tensors: dict, hyper: dict, fitted: dict) -> None:
    """One model file: tensors plus the metadata every kind of model carries."""
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "kind": type(est).__name__,
        "bigem_version": __version__,
        "hyper_parameters": hyper,
        "fitted": fitted,
    }
    write_model_file(path, tensors, meta)


def _hyper_parameters(est, tensors: dict) -> dict:
    """JSON-able constructor parameters; arrays go to ``tensors`` as ``init.<name>``."""
    hyper = {}
    for name, value in est.get_params().items():
        if isinstance(value, torch.dtype):
            hyper[name] = str(value).replace("torch.", "")
        elif isinstance(value, torch.device):
            hyper[name] = str(value)
        elif value is None or isinstance(value, (bool, int, float, str)):
            hyper[name] = value
        elif isinstance(value, (np.integer, np.floating)):
            hyper[name] = value.item()
        elif isinstance(value, (np.ndarray, list, tuple, torch.Tensor)):
            tensors[f"init.{name}"] = torch.as_tensor(np.asarray(value, dtype=np.float64))
        else:
            hyper[name] = None  # e.g. a RandomState: not reproducible from a file
    return hyper


def save_hmm(est, path) -> None:
    """Hidden Markov models: the fitted arrays by attribute name, hyper-parameters, monitor."""
    tensors = est._tensors()
    hyper = _hyper_parameters(est, tensors)
    monitor = est.monitor_ if hasattr(est, "monitor_") else None
    fitted = {
        "n_features": int(est.n_features),
        "history": [float(v) for v in monitor.history] if monitor else [],
        "iter": int(monitor.iter) if monitor else 0,
        "converged": bool(monitor.converged) if monitor else False,
    }
    _write(path, est, tensors, hyper, fitted)


def load(path: str | os.PathLike):
    """Read a model written by ``save``; validates everything, runs no code from the file."""
    from .gaussian_mixture import GaussianMixture
    from .hmm import HMM_KINDS, restore_hmm

    tensors, meta = read_model_file(path)
    where = os.fspath(path)
    if meta.get("format") != FORMAT:
        raise ModelFileError(f"{where}: not a bigem model file (format {meta.get('format')!r})")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ModelFileError(
            f"{where}: model file format version {meta.get('format_version')!r} is not supported by bigem "
            f"{__version__} (expects {FORMAT_VERSION}); upgrade bigem"
        )
    kinds = {"GaussianMixture": GaussianMixture, **HMM_KINDS}
    if meta.get("kind") not in kinds:
        raise ModelFileError(f"{where}: unknown model kind {meta.get('kind')!r}; known: {sorted(kinds)}")
    if meta["kind"] in HMM_KINDS:
        try:
            hyper = dict(meta["hyper_parameters"])
            for name in list(tensors):
                if name.startswith("init."):
                    hyper[name[5:]] = tensors.pop(name).numpy()
            return restore_hmm(meta["kind"], tensors, hyper, dict(meta["fitted"]), where)
        except ModelFileError:
            raise
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelFileError(f"{where}: invalid model contents ({type(exc).__name__}: {exc})") from None
    try:
        hyper = dict(meta["hyper_parameters"])
        fitted = dict(meta["fitted"])
        est = kinds[meta["kind"]]()
        unknown = set(hyper) - set(est.get_params())
        if unknown:
            raise ModelFileError(f"{where}: unknown hyper-parameters {sorted(unknown)}")
        for name in ("weights_init", "means_init", "precisions_init"):
            if f"init.{name}" in tensors:
                hyper[name] = tensors[f"init.{name}"].numpy()
        est.set_params(**hyper)
        settings = est._settings()
        model = est._model(settings)
        weights, means, cov = (tensors[k].to(torch.float64) for k in ("weights", "means", "covariances"))
        _check_shapes(where, settings["covariance_type"], settings["n_components"], weights, means, cov)
        _check_values(where, settings["covariance_type"], weights, means, cov)
        params = model.make_params(weights, means, cov)
    except ModelFileError:
        raise
    except NumericalError as exc:
        raise ModelFileError(
            f"{where}: invalid parameters: {str(exc).split(';')[0]}; the file is damaged "
            "(bigem only saves positive-definite covariances)"
        ) from None
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: invalid model contents ({type(exc).__name__}: {exc})") from None
    est._set_fitted(params, int(means.shape[1]), fitted.get("feature_names_in_"))
    est.converged_ = bool(fitted["converged_"])
    est.n_iter_ = int(fitted["n_iter_"])
    est.lower_bound_ = float(fitted["lower_bound_"])
    est.lower_bounds_ = [float(v) for v in fitted.get("lower_bounds_", [])]
    est.history_ = _history(where, fitted.get("history_", []))
    return est


def _history(where: str, runs) -> list[dict]:
    """Per-restart log-likelihood and time per iteration (for convergence pictures)."""
    try:
        return [
            {"log_likelihood": [float(v) for v in r["log_likelihood"]], "seconds": [float(v) for v in r.get("seconds", [])],
             "converged": bool(r["converged"]), "n_iter": int(r["n_iter"])}
            for r in runs
        ]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{where}: invalid model contents (history_: {type(exc).__name__}: {exc})") from None


def _check_values(where: str, covariance_type: str, weights, means, cov) -> None:
    """Finite values, weights a distribution, symmetric matrices: a saved model always is."""
    damaged = "the file is damaged"
    for name, t in (("weights", weights), ("means", means), ("covariances", cov)):
        if not bool(torch.isfinite(t).all()):
            raise ModelFileError(f"{where}: invalid parameters: {name} contain NaN or infinity; {damaged}")
    total = float(weights.sum())
    if bool((weights < 0).any()) or abs(total - 1) > 1e-6:
        raise ModelFileError(
            f"{where}: invalid parameters: weights must be non-negative and sum to 1, got sum {total:.6g} "
            f"and minimum {float(weights.min()):.6g}; {damaged}"
        )
    if covariance_type in ("full", "tied") and not torch.allclose(cov, cov.transpose(-1, -2), rtol=1e-10, atol=0.0):
        raise ModelFileError(f"{where}: invalid parameters: covariances are not symmetric; {damaged}")


def _check_shapes(where: str, ct: str, K: int, weights, means, cov) -> None:
    if ct not in COVARIANCE_TYPES or weights.shape != (K,) or means.ndim != 2 or means.shape[0] != K:
        raise ModelFileError(f"{where}: tensor shapes do not match n_components={K}")
    D = means.shape[1]
    expected = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ct]
    if tuple(cov.shape) != expected:
        raise ModelFileError(f"{where}: covariances have shape {tuple(cov.shape)}, expected {expected} for {ct!r}")
